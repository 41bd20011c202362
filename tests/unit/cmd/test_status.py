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

"""``bdm-guard status``: Nagios-style exit codes on a fake /proc."""

import json
import os
from unittest import mock

import fixtures
from oslotest import base

from bdm_guard import exception
from bdm_guard import metrics
from bdm_guard import wait
from tests.unit import cases


class TestStatus(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.proc = os.path.join(self.tmp, 'proc')
        os.mkdir(self.proc)
        self.bin = os.path.join(self.tmp, 'bin')
        os.mkdir(self.bin)
        self.launcher = os.path.join(self.bin, 'bdm-guard-nova-compute')
        open(self.launcher, 'w').close()
        self.state = os.path.join(self.tmp, 'bdm_guard.state.json')
        self.conf = self.write_conf('')

    def write_conf(self, extra):
        path = os.path.join(self.tmp, 'nova.conf')
        with open(path, 'w') as f:
            f.write('[bdm_guard]\nper_gib_allowance = 25\n'
                    '[bdm_guard_metrics]\nstate_file = %s\n%s'
                    % (self.state, extra))
        return path

    def process(self, pid, *argv):
        os.makedirs(os.path.join(self.proc, str(pid)))
        with open(os.path.join(self.proc, str(pid), 'cmdline'), 'wb') as f:
            f.write(b'\0'.join(a.encode() for a in argv) + b'\0')

    def record(self, outcomes, healthy=None):
        rec = metrics.Recorder(None, self.state, interval=0.0)
        for outcome in outcomes:
            rec.record_wait(wait.WaitReport(polls=2, elapsed=3.0), outcome,
                            'v', healthy)

    def status(self, *args):
        return cases.run_cli('status', '--proc', self.proc,
                             '--config-file', self.conf, *args)

    def test_ok_through_the_launcher(self):
        self.process(10, '/usr/bin/python3', self.launcher,
                     '--config-file', '/etc/nova/nova.conf')
        self.record(['available', 'available'])
        rc, out, err = self.status()
        self.assertEqual(0, rc, out + err)
        self.assertTrue(out.startswith('BDM-GUARD OK - bdm-guard is active'))
        self.assertIn('pid 10', out)
        self.assertIn('bdm_guard.per_gib_allowance=25.0', out)
        self.assertIn('last 2 waits: 2 available, 0 failed', out)

    def test_kolla_symlinked_nova_compute_counts(self):
        link = os.path.join(self.bin, 'nova-compute')
        os.symlink(self.launcher, link)
        self.process(11, '/var/lib/kolla/venv/bin/python3', link)
        rc, out, err = self.status()
        self.assertEqual(0, rc, out)

    def test_stock_nova_compute_warns(self):
        self.process(12, '/usr/bin/python3', '/usr/bin/nova-compute')
        rc, out, err = self.status()
        self.assertEqual(1, rc, out)
        self.assertIn('without the launcher (pid 12)', out.splitlines()[0])

    def test_refused_option_is_critical(self):
        self.process(10, '/usr/bin/python3', self.launcher)
        self.conf = self.write_conf('[bdm_guard_events]\n'
                                    'queue_expiry = -5\n')
        rc, out, err = self.status()
        self.assertEqual(2, rc, out)
        self.assertIn('queue_expiry', out)

    def test_incompatible_nova_is_critical(self):
        self.process(10, '/usr/bin/python3', self.launcher)
        error = exception.NovaIncompatible(reason='nova 99.0.0 is not '
                                           'supported')
        with mock.patch('bdm_guard.nova.guard.release', autospec=True,
                        side_effect=error):
            rc, out, err = self.status()
        self.assertEqual(2, rc, out)
        self.assertIn('refuses this nova', out.splitlines()[0])

    def test_unhealthy_events_and_failing_waits_warn(self):
        self.process(10, '/usr/bin/python3', self.launcher)
        self.conf = self.write_conf('[bdm_guard_events]\n'
                                    'transport_url = rabbit://u:p@h//\n')
        self.record(['VolumeCreateFailed', 'available', 'VolumeNotFound'],
                    healthy=False)
        rc, out, err = self.status('--format', 'json', '--last', '2')
        self.assertEqual(1, rc, out)
        data = json.loads(out)
        self.assertEqual('WARNING', data['state'])
        self.assertEqual(['available', 'VolumeNotFound'],
                         [w['outcome'] for w in data['waits']])
        self.assertNotIn('u:p', out)
        self.assertIn('not healthy', out)

    def test_unreadable_state_is_unknown(self):
        self.process(10, '/usr/bin/python3', self.launcher)
        with open(self.state, 'w') as f:
            f.write('{not json')
        rc, out, err = self.status()
        self.assertEqual(3, rc, out)
