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

"""A command that cannot run here says why instead of vanishing."""

from unittest import mock

from oslotest import base

from bdm_guard.cmd import main
from tests.unit import cases


class _BrokenEntryPoint:
    name = 'wait'
    value = 'bdm_guard.cmd.volume:WaitVolume'

    def load(self):
        raise ModuleNotFoundError("No module named 'cinderclient'",
                                  name='cinderclient')


class TestUnavailable(base.BaseTestCase):

    def entry_points(self, drop=(), broken=()):
        real = main.entry_points

        def fake(namespace):
            found = [(n, ep) for n, ep in real(namespace) if n not in drop]
            found += [(b.name, b) for b in broken]
            return sorted(found, key=lambda i: i[0])

        self.patcher = mock.patch.object(main, 'entry_points', fake)
        self.patcher.start()
        self.addCleanup(self.patcher.stop)

    def test_demo_without_the_lab(self):
        self.entry_points(drop=('demo', 'simulate'))
        for name in ('demo', 'simulate'):
            rc, out, err = cases.run_cli(name, '--volumes', '5')
            self.assertEqual(main.EXIT_UNAVAILABLE, rc)
            self.assertEqual('', out)
            self.assertEqual(
                'bdm-guard %s: unavailable: %s needs the lab '
                '(bdm-guard-lab): from a bdm-guard checkout, pip install -e '
                'lab' % (name, name), err.split(' (it brings')[0])

    def test_a_command_that_does_not_import(self):
        self.entry_points(drop=('wait',), broken=(_BrokenEntryPoint(),))
        rc, out, err = cases.run_cli('wait', 'some-volume-id')
        self.assertEqual(main.EXIT_UNAVAILABLE, rc)
        self.assertTrue(err.startswith(
            'bdm-guard wait: unavailable: wait needs '
            'bdm_guard.cmd.volume:WaitVolume does not import '
            "(ModuleNotFoundError: No module named 'cinderclient')"), err)
        self.assertEqual(1, len(err.splitlines()), err)

    def test_help_lists_them_with_the_reason(self):
        self.entry_points(drop=('demo', 'wait'),
                          broken=(_BrokenEntryPoint(),))
        rc, out, err = cases.run_cli('help')
        self.assertEqual(0, rc, err)
        lines = {line.split()[0]: line for line in out.splitlines()
                 if line.startswith('  ') and line.split()}
        self.assertIn('Unavailable here: demo needs the lab', lines['demo'])
        self.assertIn('Unavailable here: wait needs', lines['wait'])
        self.assertNotIn('Unavailable', lines['audit'])

    def test_installed_commands_are_there(self):
        names = [n for n, _ in main.entry_points(main.NAMESPACE)]
        for name in ('wait', 'create', 'audit', 'logscan'):
            self.assertIn(name, names)
