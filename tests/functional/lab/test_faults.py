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

"""The creator and the waiter against real cinder 29 through each fault.

Every test boots one image-backed volume with
:func:`bdm_guard.create.create_and_wait` through a fault proxy that injects
one kind of fault, then counts the volumes carrying the test's idempotency
key through cinder's own API (not through the proxy): exactly one, the one
returned, ``available`` -- no duplicate, no leak.
"""


from bdm_guard import create
from tests.functional import fixtures as lab_fixtures

POST = {'methods': ['POST'], 'path': '^/volumes$'}


class TestFaults(lab_fixtures.LabTestCase):

    def _boot(self, rules, **conf):
        faults = self.useFixture(lab_fixtures.Faults(self.svc, rules))
        key = lab_fixtures.new_key()
        result, report = create.create_and_wait(
            faults.client, 1, idempotency_key=key,
            image_id=self.svc.image_id, name='functional',
            conf=lab_fixtures.guard_conf(**conf))
        self.svc.wait_settled(timeout=60)
        found = lab_fixtures.volumes_with_key(self.svc, key)
        self.assertEqual([result.volume['id']], [v['id'] for v in found],
                         'exactly one volume with the key must exist')
        self.assertEqual('available', found[0]['status'])
        return faults.proxy, result, report

    def test_lost_request(self):
        proxy, result, _ = self._boot(
            [dict(POST, fault='lost_request', probability=1.0, times=1)])
        self.assertEqual(1, proxy.injected['lost_request'])
        self.assertEqual(2, proxy.requests[('POST', '/volumes')])
        self.assertEqual(2, result.posts)

    def test_lost_response(self):
        proxy, result, _ = self._boot(
            [dict(POST, fault='lost_response', probability=1.0, times=1)])
        self.assertEqual(1, proxy.injected['lost_response'])
        self.assertEqual('adopted', result.how)
        self.assertEqual(1, proxy.requests[('POST', '/volumes')])

    def test_lost_response_behind_lagging_reads(self):
        proxy, result, _ = self._boot(
            [dict(POST, fault='lost_response', probability=1.0, times=1),
             {'fault': 'visibility_lag', 'probability': 1.0,
              'seconds': 2}])
        self.assertEqual('adopted', result.how)
        self.assertGreater(proxy.injected['visibility_lag'], 0)

    def test_gateway_504(self):
        proxy, result, _ = self._boot(
            [dict(POST, fault='gateway_504', probability=1.0, times=1,
                  seconds=1.0, forward=True)])
        self.assertEqual(1, proxy.injected['gateway_504'])
        self.assertEqual('adopted', result.how)

    def test_no_server_503(self):
        proxy, result, _ = self._boot(
            [dict(POST, fault='no_server_503', probability=1.0, times=2)])
        self.assertEqual(2, proxy.injected['no_server_503'])
        self.assertEqual('created', result.how)
        self.assertEqual(3, result.posts)

    def test_visibility_lag(self):
        # Longer than the completion schedule's first look (2 s after the
        # create), so that the wait does meet the lag's 404s.
        proxy, _, report = self._boot(
            [{'fault': 'visibility_lag', 'probability': 1.0,
              'seconds': 6}])
        self.assertGreater(proxy.injected['visibility_lag'], 0)
        self.assertGreater(report.retries['not_found'], 0)

    def test_get_resets(self):
        proxy, _, report = self._boot(
            [{'fault': 'reset', 'probability': 1.0, 'times': 3,
              'methods': ['GET'], 'path': '^/volumes/[0-9a-f-]{36}$'}])
        self.assertEqual(3, proxy.injected['reset'])
        self.assertEqual(3, sum(report.retries.values()))
