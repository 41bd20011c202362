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

"""The audit reports every refused bdm-guard value, as the launcher does."""

import os

import fixtures
from oslotest import base

from bdm_guard.audit import api as audit
from bdm_guard import opts
from tests.unit import test_opts


class TestBdmGuardOptions(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def write(self, text):
        path = os.path.join(self.tmp, 'nova.conf')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def test_every_refused_value_is_one_finding(self):
        lines, expected = [], {}
        for group, options in opts.list_opts():
            lines.append('[%s]' % group)
            for opt in options:
                bad = test_opts._bad_values(opt)
                if bad:
                    lines.append('%s = %s' % (opt.name, bad[-1][0]))
                    expected[len(lines)] = (group, opt.name)
        nova = self.write('\n'.join(lines) + '\n')

        found = [f for f in audit.audit(nova_conf=nova)
                 if f.line in expected]
        # One finding per line, even where another check reads the option.
        self.assertEqual(sorted(expected), sorted(f.line for f in found))
        self.assertEqual({'critical'}, {f.severity for f in found})
        mine = [f for f in found if 'bdm-guard-nova-compute refuses' in
                f.message]
        self.assertGreater(len(mine), len(expected) // 2)
        for f in mine:
            group, name = expected[f.line]
            self.assertEqual('option_value_out_of_range', f.kind)
            self.assertTrue(f.message.startswith('[%s] %s = ' % (group,
                                                                 name)))

    def test_the_same_problems_as_the_launcher(self):
        from bdm_guard.nova import launcher
        nova = self.write('[bdm_guard]\npoll_multiplier = 9\n'
                          '[bdm_guard_events]\nping_interval = fast\n')
        conf, _ = launcher.read_config(['--config-file', nova])
        launcher_sees = [(p.group, p.name) for p in opts.check_config(conf)]
        found = [f for f in audit.audit(nova_conf=nova)
                 if f.kind == 'option_value_out_of_range']
        self.assertEqual([('bdm_guard', 'poll_multiplier'),
                          ('bdm_guard_events', 'ping_interval')],
                         launcher_sees)
        self.assertEqual([2, 4], sorted(f.line for f in found))
        self.assertIn('Should be less than or equal to 4',
                      ' '.join(f.message for f in found))

    def test_valid_values_give_nothing(self):
        nova = self.write('[bdm_guard]\npoll_multiplier = 2\n')
        self.assertEqual([], [f for f in audit.audit(nova_conf=nova)
                              if f.kind == 'option_value_out_of_range'])

    def test_references_to_nova_options_are_not_refused(self):
        # nova's own CONF resolves $state_path; the launcher's ConfigOpts
        # (and the audit's) does not know it, and must not refuse for it.
        from bdm_guard.nova import launcher
        nova = self.write('[DEFAULT]\nstate_path = /var/lib/nova\n'
                          'log_dir = $state_path/log\n'
                          '[bdm_guard_metrics]\n'
                          'textfile = $state_path/bdm-guard.prom\n')
        conf, log_path = launcher.read_config(['--config-file', nova])
        self.assertEqual([], opts.check_config(conf))
        self.assertIsNone(log_path)
        self.assertEqual([], [f for f in audit.audit(nova_conf=nova)
                              if f.kind == 'option_value_out_of_range'])
