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

import io
import json
from unittest import mock

from oslotest import base

from bdm_guard.cmd import main
from bdm_guard import create
from bdm_guard import wait
from tests.unit import fake_cinder

AUTH = ['--os-auth-type', 'admin_token', '--os-endpoint',
        fake_cinder.ENDPOINT, '--os-token', 'user:%s' % fake_cinder.PROJECT,
        '--os-volume-endpoint', fake_cinder.ENDPOINT]
KEY = 'cli-key-1'


class TestCli(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.clock = fake_cinder.VirtualClock()
        self.fake = fake_cinder.FakeCinder(self.clock)
        fake_cinder.make_client(self, self.fake)
        # The CLI runs on real time: swap the library's time defaults.
        for func in (create.create_volume, create.create_and_wait,
                     wait.wait_for_volume):
            patcher = mock.patch.dict(func.__kwdefaults__, {
                'sleep': self.clock.sleep, 'clock': self.clock})
            patcher.start()
            self.addCleanup(patcher.stop)

    def run_cli(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        app = main.BdmGuardApp()
        app.stdout, app.stderr = out, err
        with mock.patch('sys.stdout', out), mock.patch('sys.stderr', err):
            rc = app.run(list(argv))
        return rc, out.getvalue(), err.getvalue()

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
        rc, out, err = self.run_cli('wait', 'not-a-uuid', *AUTH)
        self.assertEqual(1, rc)
        self.assertIn('Invalid volume id', err)
        self.assertNotIn('Traceback', err)
        rc, out, err = self.run_cli('create', '--size', '0',
                                    '--idempotency-key', KEY, *AUTH)
        self.assertEqual(1, rc)
        self.assertIn('size_gb', err)
        self.assertEqual({}, self.fake.volumes)
