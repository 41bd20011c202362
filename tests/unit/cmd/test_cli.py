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

"""``bdm-guard create`` and ``bdm-guard wait`` end to end (fake cinder)."""

import argparse
import inspect
import json
import os
from unittest import mock

import fixtures
from keystoneauth1 import fixture
from oslotest import base
from requests_mock.contrib import fixture as rm_fixture
import yaml

from bdm_guard.cmd import auth
from bdm_guard import create
from bdm_guard import exception
from bdm_guard import testing
from bdm_guard import wait
from tests.unit import cases
from tests.unit import fake_cinder

AUTH = ['--os-auth-type', 'admin_token', '--os-endpoint',
        fake_cinder.ENDPOINT, '--os-token', 'user:%s' % fake_cinder.PROJECT,
        '--os-volume-endpoint', fake_cinder.ENDPOINT]
KEY = 'cli-key-1'
KEYSTONE = 'http://keystone.test/v3'


class TestCli(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.clock = testing.VirtualClock()
        self.fake = fake_cinder.FakeCinder(self.clock)
        fake_cinder.make_client(self, self.fake)
        # The CLI runs on real time: swap the library's time defaults
        # (on the functions inside 0.x's keyword-form wrappers).
        for func in (create.create_volume, create.create_and_wait,
                     wait.wait_for_volume):
            patcher = mock.patch.dict(inspect.unwrap(func).__kwdefaults__, {
                'sleep': self.clock.sleep, 'clock': self.clock})
            patcher.start()
            self.addCleanup(patcher.stop)

    def run_cli(self, *argv):
        return cases.run_cli(*argv)

    def test_create_wait_json(self):
        rc, out, err = self.run_cli(
            'create', '--size', '2', '--idempotency-key', KEY, '--wait',
            '-f', 'json', *AUTH)
        self.assertEqual(0, rc, err)
        data = json.loads(out)
        self.assertEqual('available', data['status'])
        self.assertEqual('created', data['outcome'])
        self.assertEqual(create.request_id_for_key(KEY), data['request_id'])
        self.assertIn('creating', err)   # progress on stderr
        # A second run with the same key adopts, never duplicates.
        rc, out, err = self.run_cli(
            'create', '--size', '2', '--idempotency-key', KEY, '-f', 'json',
            *AUTH)
        self.assertEqual(0, rc, err)
        self.assertEqual('adopted', json.loads(out)['outcome'])
        self.assertEqual(1, len(self.fake.volumes))

    def test_wait_error_is_clean(self):
        vid = self.fake.add_volume(status='error')
        rc, out, err = self.run_cli('wait', vid, '-f', 'yaml', *AUTH)
        self.assertEqual(1, rc)
        self.assertIn('error', err)
        self.assertNotIn('Traceback', err)

    def test_bad_input_is_clean(self):
        # Malformed and out-of-range arguments are usage errors (exit 2,
        # CLI reference), caught before anything is sent.
        rc, out, err = self.run_cli('wait', 'not-a-uuid', *AUTH)
        self.assertEqual(2, rc)
        self.assertIn('Invalid volume id', err)
        self.assertNotIn('Traceback', err)
        rc, out, err = self.run_cli('create', '--size', '0',
                                    '--idempotency-key', KEY, *AUTH)
        self.assertEqual(2, rc)
        self.assertIn('argument --size: 0 is outside [1, 2147483647]', err)
        self.assertEqual({}, self.fake.volumes)
        self.assertEqual([], self.fake.requests)

    def test_negative_numbers_are_clean_errors(self):
        vid = self.fake.add_volume(status='available')
        for argv, needle in (
                (('wait', vid, '--size-gb', '-5'),
                 'argument --size-gb: -5 is outside [0, '),
                (('wait', vid, '--nova-retries', '-1'),
                 'argument --nova-retries: -1 is outside [0, '),
                (('create', '--size', '1', '--idempotency-key', KEY,
                  '--wait', '--nova-interval', '-3'),
                 'argument --nova-interval: -3.0 is outside [0, ')):
            rc, out, err = self.run_cli(*(argv + tuple(AUTH)))
            self.assertEqual(2, rc, argv)
            self.assertIn(needle, err)
            self.assertNotIn('Traceback', err)
        self.assertEqual([], self.fake.requests)

    def test_out_of_range_arguments_exit_2(self):
        vid = self.fake.add_volume(status='available')
        huge = '9' * 5000
        cases = (
            (('wait', vid, '--size-gb', '2147483648'), 'is outside'),
            (('wait', vid, '--size-gb', huge), '(5002 characters)'),
            (('wait', vid, '--nova-retries', '1000001'), 'is outside'),
            (('wait', vid, '--nova-interval', 'nan'), 'not a finite'),
            (('wait', vid, '--nova-interval', '1e400'), 'not a finite'),
            (('wait', vid, '--nova-interval', '3601'), 'is outside'),
            (('create', '--size', huge, '--idempotency-key', KEY),
             '(5002 characters) is outside [1, 2147483647]'),
            (('create', '--size', 'two', '--idempotency-key', KEY),
             "'two' is not a whole number"),
            (('create', '--size', '1', '--idempotency-key', ''),
             "Invalid idempotency key '': empty"),
            (('create', '--size', '1', '--idempotency-key', 'k' * 10 ** 6),
             '(1000002 characters): longer than 255'),
            (('create', '--size', '1', '--idempotency-key', KEY,
              '--property', '5'), "wants KEY=VALUE, got '5' (no \"=\")"),
            (('create', '--size', '1', '--idempotency-key', KEY,
              '--property', '=v'), "'=v' has an empty key"),
            (('create', '--size', '1', '--idempotency-key', KEY,
              '--property', 'k=' + 'v' * 300), 'the value'),
            (('create', '--size', '1', '--idempotency-key', KEY,
              '--image', 'i' * 10 ** 5), '(100002 characters) is not a '),
            (('create', '--size', '1', '--bdm', '5', vid), "id '5' is not"),
            (('create', '--size', '1', '--idempotency-key', KEY,
              '--name', 'n' * 256), 'longer than 255'),
            (('wait', 'x' * 10 ** 5), '(100002 characters): a cinder'),
        )
        for argv, needle in cases:
            rc, out, err = self.run_cli(*(argv + tuple(AUTH)))
            self.assertEqual(2, rc, argv[:3])
            self.assertIn(needle, err)
            self.assertNotIn('Traceback', err)
            self.assertLess(len(err), 4000, argv[:3])
        self.assertEqual([], self.fake.requests)
        # A key "5" is a good key: the create runs.
        rc, out, err = self.run_cli('create', '--size', '1',
                                    '--idempotency-key', '5', '-f', 'json',
                                    *AUTH)
        self.assertEqual(0, rc, err)
        self.assertEqual('created', json.loads(out)['outcome'])

    def test_create_shows_undeleted_duplicates(self):
        rc, out, err = self.run_cli(
            'create', '--size', '2', '--idempotency-key', KEY, '-f', 'json',
            *AUTH)
        self.assertEqual(0, rc, err)
        self.assertEqual('', json.loads(out)['undeleted_duplicates'])

    def test_failed_wait_prints_the_cleanup_verdict(self):
        self.fake.ready_after = 10 ** 6       # stuck in "creating"
        rc, out, err = self.run_cli(
            'create', '--size', '2', '--idempotency-key', KEY, '--wait',
            *AUTH)
        self.assertEqual(1, rc)
        (vid,) = self.fake.volumes
        self.assertIn('Volume %s: cleanup kept (status creating' % vid, err)
        self.assertNotIn('Traceback', err)
        self.fake.volumes[vid]['timeline'] = [(0, 'error')]
        rc, out, err = self.run_cli(
            'create', '--size', '2', '--idempotency-key', KEY, '--wait',
            *AUTH)
        self.assertEqual(1, rc)
        self.assertIn('Volume %s: cleanup deleted.' % vid, err)
        self.assertEqual({}, self.fake.volumes)


class TestCloudsYaml(base.BaseTestCase):

    def test_os_cloud_uses_region_and_interface(self):
        # The cloud's region/interface pick cinder's endpoint from the
        # catalog; the wrong ones would pick another host.
        token = fixture.V3Token()
        token.set_project_scope()
        token.add_service('identity').add_standard_endpoints(
            public=KEYSTONE)
        token.add_service('volumev3').add_standard_endpoints(
            public='http://wrong.test/v3/p', region='RegionOne')
        token.add_service('volumev3').add_standard_endpoints(
            public='http://wrong.test/v3/p',
            internal='http://right.test:8776/v3/p', region='RegionTwo')
        mocker = self.useFixture(rm_fixture.Fixture())
        mocker.get(KEYSTONE, json=fixture.V3Discovery(KEYSTONE))
        mocker.post(KEYSTONE + '/auth/tokens', json=token,
                    headers={'X-Subject-Token': 'tok'})
        vid = '6018366c-f658-47a7-9ed3-4fe53a096533'
        # keystoneauth's version discovery on the catalog URL: no document.
        mocker.get('http://right.test:8776/v3/p', status_code=404)
        mocker.get('http://right.test:8776/v3/p/volumes/' + vid,
                   json={'volume': {'id': vid, 'status': 'available'}})
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'clouds.yaml')
        with open(path, 'w') as f:
            yaml.safe_dump({'clouds': {'two': {
                'region_name': 'RegionTwo', 'interface': 'internal',
                'auth': {'auth_url': KEYSTONE, 'username': 'u',
                         'password': 'p', 'project_name': 'p',
                         'user_domain_name': 'Default',
                         'project_domain_name': 'Default'}}}}, f)
        for name in ('OS_REGION_NAME', 'OS_INTERFACE', 'OS_CLOUD',
                     'OS_VOLUME_ENDPOINT'):
            self.useFixture(fixtures.EnvironmentVariable(name))
        self.useFixture(fixtures.EnvironmentVariable('OS_CLIENT_CONFIG_FILE',
                                                     path))
        parser = argparse.ArgumentParser()
        auth.add_arguments(parser, [])
        client = auth.client_from_args(parser.parse_args(['--os-cloud',
                                                          'two']))
        report = wait.wait_for_volume(client, vid, sleep=lambda s: None)
        self.assertEqual('available', report.volume['status'])
        hosts = {r.hostname for r in mocker.request_history}
        self.assertEqual({'keystone.test', 'right.test'}, hosts)
        # An explicit flag still wins over the cloud's value.
        mocker.get('http://wrong.test/v3/p', status_code=404)
        mocker.get('http://wrong.test/v3/p/volumes/' + vid, status_code=404,
                   json={'itemNotFound': {'message': 'not here'}})
        args = parser.parse_args(['--os-cloud', 'two', '--os-interface',
                                  'public'])
        result = auth.client_from_args(args).get_volume(vid.upper())
        self.assertEqual('not_found', result.kind)
        self.assertEqual('http://wrong.test/v3/p/volumes/' + vid,
                         mocker.last_request.url)

    def test_unknown_cloud_is_a_clean_error(self):
        self.useFixture(fixtures.EnvironmentVariable(
            'OS_CLIENT_CONFIG_FILE', '/nonexistent/clouds.yaml'))
        parser = argparse.ArgumentParser()
        auth.add_arguments(parser, [])
        self.assertRaises(exception.InvalidInput, auth.client_from_args,
                          parser.parse_args(['--os-cloud', 'nope']))
