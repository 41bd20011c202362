#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""The scenario parser and the proxy's fault decisions (no sockets)."""

import http.client
import http.server
import json
import os
import shutil
import tempfile
import threading
import time

import testtools

from bdm_guard_lab import exception
from bdm_guard_lab.faults import proxy as lab_proxy
from bdm_guard_lab.faults import scenario as lab_scenario
from bdm_guard_lab.faults import wire as faults

VOLUME_ID = '0b1e3f36-4a51-4a0e-9c77-5c3f0b8c2f10'


class TestParse(testtools.TestCase):

    def test_packaged(self):
        self.assertEqual(['harsh', 'none', 'seed', 'slow'],
                         lab_scenario.packaged())
        seed = lab_scenario.load('seed')
        self.assertEqual(50, seed.volumes)
        self.assertEqual(2, seed.size_gb)
        kinds = {r.fault: r for r in seed.rules}
        self.assertEqual(0.10, kinds['lost_request'].probability)
        self.assertEqual(0.05, kinds['lost_response'].probability)
        self.assertEqual(3, kinds['visibility_lag'].seconds)
        self.assertEqual(('POST',), kinds['lost_request'].methods)
        self.assertEqual((), lab_scenario.load('none').rules)
        harsh = {r.fault for r in lab_scenario.load('harsh').rules}
        self.assertEqual(set(lab_scenario.FAULTS), harsh)

    def test_defaults_per_fault(self):
        scen = lab_scenario.parse({'rules': [{'fault': 'reset'}]})
        self.assertEqual(('GET',), scen.rules[0].methods)
        self.assertTrue(scen.rules[0].matches('GET', '/volumes/' + VOLUME_ID))
        self.assertFalse(scen.rules[0].matches('POST', '/volumes'))

    def test_file(self):
        with tempfile.NamedTemporaryFile('w', suffix='.yaml',
                                         delete=False) as stream:
            stream.write('name: mine\nseed: 3\nrules:\n'
                         '  - {fault: no_server_503, probability: 0.5}\n')
        self.addCleanup(os.unlink, stream.name)
        scen = lab_scenario.load(stream.name)
        self.assertEqual(('mine', 3), (scen.name, scen.seed))

    def test_bad_input(self):
        bad = [
            [],
            {'rules': [{'fault': 'meteor'}]},
            {'rules': [{'fault': 'reset', 'probability': 2}]},
            {'rules': [{'fault': 'reset', 'probability': 'often'}]},
            {'rules': [{'fault': 'reset', 'methods': 'GET'}]},
            {'rules': [{'fault': 'reset', 'path': '('}]},
            {'rules': [{'fault': 'reset', 'colour': 'red'}]},
            {'rules': 'all'},
            {'volumes': 0},
            {'flavour': 'x'},
        ]
        for data in bad:
            self.assertRaises(exception.InvalidScenario, lab_scenario.parse,
                              data)

    def test_unknown_name_and_missing_file(self):
        self.assertRaises(exception.InvalidScenario, lab_scenario.load,
                          'tornado')
        self.assertRaises(exception.InvalidScenario, lab_scenario.load,
                          '/nonexistent/x.yaml')

    def _write(self, name, content, mode='w'):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, name)
        with open(path, mode) as stream:
            stream.write(content)
        return folder, path

    def test_existing_file_without_slash_or_suffix(self):
        folder, path = self._write('myscen', 'name: mine\nseed: 4\n')
        cwd = os.getcwd()
        os.chdir(folder)
        self.addCleanup(os.chdir, cwd)
        scen = lab_scenario.load('myscen')
        self.assertEqual(('mine', 4), (scen.name, scen.seed))

    def test_binary_file_is_a_typed_error_naming_it(self):
        for content in (b'\x7fELF\x02\x01\xd0\xff\xfe\x00' * 50,
                        b'seed: 1\x00\x00\n'):
            _, path = self._write('scen.bin', content, 'wb')
            exc = self.assertRaises(exception.InvalidScenario,
                                    lab_scenario.load, path)
            self.assertIn(path, str(exc))

    def test_bad_yaml_and_directory_are_typed_errors(self):
        folder, path = self._write('bad.yaml', 'rules: [unclosed\n')
        for arg in (path, folder):
            exc = self.assertRaises(exception.InvalidScenario,
                                    lab_scenario.load, arg)
            self.assertIn(arg, str(exc))

    def test_draw_is_deterministic(self):
        scen = lab_scenario.parse({'seed': 5})
        self.assertEqual(scen.draw(0, 'POST a', 1), scen.draw(0, 'POST a', 1))
        self.assertNotEqual(scen.draw(0, 'POST a', 1),
                            scen.draw(0, 'POST a', 2))
        self.assertNotEqual(scen.draw(0, 'POST a', 1),
                            scen.with_seed(6).draw(0, 'POST a', 1))
        values = [scen.draw(0, 'x', i) for i in range(2000)]
        share = sum(v < 0.1 for v in values) / len(values)
        self.assertTrue(0.07 < share < 0.13, share)


class TestDecisions(testtools.TestCase):

    def _proxy(self, rules, seed=1):
        scen = lab_scenario.parse({'seed': seed, 'rules': rules})
        return lab_proxy.FaultProxy('http://127.0.0.1:1', scen,
                                    project_id='p')

    def test_api_path(self):
        self.assertEqual('/volumes/detail', lab_proxy.FaultProxy.api_path(
            '/v3/p/volumes/detail'))
        self.assertEqual('/', lab_proxy.FaultProxy.api_path('/v3/p'))

    def test_times_limits_to_first_requests(self):
        prox = self._proxy([{'fault': 'lost_request', 'probability': 1.0,
                             'times': 1}])
        body = json.dumps({'volume': {'name': 'b1', 'size': 1}}).encode()
        first = prox.decide('POST', '/volumes', '', body)
        second = prox.decide('POST', '/volumes', '', body)
        self.assertEqual('lost_request', first.fault)
        self.assertIsNone(second.fault)
        self.assertEqual(1, prox.injected['lost_request'])
        self.assertEqual(2, prox.requests[('POST', '/volumes')])

    def test_same_boot_same_fault_whatever_the_order(self):
        rules = [{'fault': 'lost_request', 'probability': 0.5}]
        names = ['b%d' % i for i in range(40)]

        def faults_for(order):
            prox = self._proxy(rules)
            out = {}
            for name in order:
                body = json.dumps({'volume': {'name': name}}).encode()
                out[name] = prox.decide('POST', '/volumes', '', body).fault
            return out

        self.assertEqual(faults_for(names), faults_for(reversed(names)))

    def test_volume_gets_counted(self):
        prox = self._proxy([])
        for _ in range(3):
            prox.decide('GET', '/volumes/' + VOLUME_ID, '', None)
        self.assertEqual(3, prox.gets_for([VOLUME_ID]))

    def test_visibility_lag_hides_young_volumes(self):
        prox = self._proxy([{'fault': 'visibility_lag', 'probability': 1.0,
                             'seconds': 5}])
        created = json.dumps({'volume': {'id': VOLUME_ID, 'name': 'b'}})
        prox.observe('POST', '/volumes', 202, created.encode(), None)
        volume = json.dumps({'volume': {'id': VOLUME_ID}}).encode()
        status, data = prox.apply_lag('/volumes/' + VOLUME_ID, 200, volume)
        self.assertEqual(404, status)
        self.assertIn('itemNotFound', json.loads(data))
        listing = json.dumps({'volumes': [{'id': VOLUME_ID}]}).encode()
        status, data = prox.apply_lag('/volumes/detail', 200, listing)
        self.assertEqual((200, []), (status, json.loads(data)['volumes']))
        self.assertEqual(2, prox.injected['visibility_lag'])
        prox.created[VOLUME_ID] = time.monotonic() - 6
        self.assertEqual((200, volume), prox.apply_lag(
            '/volumes/' + VOLUME_ID, 200, volume))

    def test_lag_age_is_taken_when_the_read_arrived(self):
        # A read that cinder-api queued past the lag window still went to
        # the lagging node: the age is the one at arrival.
        prox = self._proxy([{'fault': 'visibility_lag', 'probability': 1.0,
                             'seconds': 5}])
        prox.created[VOLUME_ID] = time.monotonic() - 8
        volume = json.dumps({'volume': {'id': VOLUME_ID}}).encode()
        arrived = prox.created[VOLUME_ID] + 1
        self.assertEqual(404, prox.apply_lag('/volumes/' + VOLUME_ID, 200,
                                             volume, arrived)[0])
        self.assertEqual(200, prox.apply_lag('/volumes/' + VOLUME_ID, 200,
                                             volume)[0])

    def test_lag_learns_age_from_created_at(self):
        prox = self._proxy([{'fault': 'visibility_lag', 'probability': 1.0,
                             'seconds': 5}])
        old = json.dumps({'volume': {
            'id': VOLUME_ID, 'created_at': '2020-01-01T00:00:00.000000'}})
        self.assertEqual(200, prox.apply_lag('/volumes/' + VOLUME_ID, 200,
                                             old.encode())[0])

    def test_route(self):
        self.assertEqual('/volumes/{id}', faults.route('/volumes/' +
                                                       VOLUME_ID))
        self.assertEqual('/volumes/detail', faults.route('/volumes/detail'))
        self.assertEqual('/attachments/{id}/action', faults.route(
            '/attachments/0f3c84b9-285e-4c96-b109-0b2fca84dc5c/action'))
        self.assertEqual('/volumes/None', faults.route('/volumes/None'))


class _Cinder(http.server.BaseHTTPRequestHandler):
    """A cinder-api stand-in: 202, replayed when the body says so."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        self.send_response(202)
        if b'again' in body:
            self.send_header('Idempotent-Replayed', 'true')
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'{}')

    def log_message(self, *args):
        pass


class TestKeyedCreates(testtools.TestCase):
    """The proxy counts creates sent with cinder's key, and replays."""

    def test_counts_keyed_and_replayed(self):
        upstream = http.server.HTTPServer(('127.0.0.1', 0), _Cinder)
        thread = threading.Thread(target=upstream.serve_forever,
                                  daemon=True)
        thread.start()
        self.addCleanup(thread.join, 10)
        self.addCleanup(upstream.server_close)
        self.addCleanup(upstream.shutdown)
        scen = lab_scenario.parse({'seed': 1, 'rules': []})
        prox = self.useFixture(lab_proxy.FaultProxy(
            'http://127.0.0.1:%d' % upstream.server_address[1], scen,
            project_id='p'))
        port = int(prox.base_url.rsplit(':', 1)[1])
        for name, key in (('b1', None), ('b2', 'k2'), ('again', 'k2')):
            conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
            self.addCleanup(conn.close)
            headers = {'Content-Type': 'application/json'}
            if key:
                headers['Idempotency-Key'] = key
            conn.request('POST', '/v3/p/volumes', headers=headers,
                         body=json.dumps({'volume': {'name': name}}))
            self.assertEqual(202, conn.getresponse().status)
        self.assertEqual({'sent': 2, 'replayed': 1},
                         dict(prox.keyed_creates))
        self.assertEqual(3, prox.requests[('POST', '/volumes')])
        prox.reset_counters()
        self.assertEqual({}, dict(prox.keyed_creates))
