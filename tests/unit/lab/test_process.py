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

"""The lab's child processes: how a service child starts, where logs go."""

import json
import os
import subprocess

import fixtures
import testtools

from bdm_guard_lab import process


_PROBE = """import os, sys
print(os.environ['PYTHONPATH'])
print(os.environ['PYTHONWARNINGS'])
print(os.getcwd())
sys.stderr.write('boom\\n')
"""


class TestStartChild(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.state = self.useFixture(fixtures.TempDir()).path
        self.probe = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(self.probe, 'lab_probe.py'), 'w') as stream:
            stream.write(_PROBE)

    def _run(self, module, settings, **kwargs):
        proc = process.start_child(module, self.state, settings, **kwargs)
        out, _ = proc.communicate(timeout=60)
        self.assertEqual(0, proc.returncode)
        return out

    def test_the_child_reads_its_settings_file(self):
        # json.tool prints the file it is given: the settings, as written.
        out = self._run('json.tool', {'port': 1, 'debug': False})
        self.assertEqual({'port': 1, 'debug': False}, json.loads(out))

    def test_environment_and_folders(self):
        env = {'PATH': os.environ.get('PATH', ''), 'PYTHONPATH': '/caller'}
        cwd = self.useFixture(fixtures.TempDir()).path
        out = self._run('lab_probe', {}, env=env,
                        paths=(None, self.probe), cwd=cwd)
        path, warnings, where = out.splitlines()
        # The given folders first, None skipped, the caller's path last.
        self.assertEqual(os.pathsep.join([self.probe, '/caller']), path)
        self.assertEqual('ignore', warnings)
        self.assertEqual(os.path.realpath(cwd), os.path.realpath(where))
        # stderr goes to the state folder, for the error messages.
        with open(os.path.join(self.state, 'stderr.log')) as stream:
            self.assertEqual('boom\n', stream.read())
        # The caller's environment is not changed.
        self.assertEqual('/caller', env['PYTHONPATH'])

    def test_stdin_pipe(self):
        proc = process.start_child('json.tool', self.state, {},
                                   stdin=subprocess.PIPE)
        self.addCleanup(process.stop_process, proc)
        self.addCleanup(proc.stdout.close)
        self.assertIsNotNone(proc.stdin)
        proc.stdin.close()
        self.assertEqual('{}', proc.stdout.read().strip())
        self.assertEqual(0, proc.wait(60))


class TestKeepLogs(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.state = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(self.state, 'cinder.log'), 'w') as stream:
            stream.write('a line\n')

    def test_not_set_keeps_nothing(self):
        self.useFixture(fixtures.EnvironmentVariable(
            process.LOG_DIR_VARIABLE))
        self.assertIsNone(process.keep_logs(
            self.state, ('cinder.log',), 'cinder'))

    def test_copies_what_exists(self):
        keep = os.path.join(self.useFixture(fixtures.TempDir()).path, 'new')
        self.useFixture(fixtures.EnvironmentVariable(
            process.LOG_DIR_VARIABLE, keep))
        target = process.keep_logs(self.state,
                                   ('cinder.log', 'stderr.log'), 'cinder')
        self.assertEqual(keep, os.path.dirname(target))
        self.assertTrue(os.path.basename(target).startswith('cinder-'))
        self.assertEqual(['cinder.log'], os.listdir(target))


class TestSeriesFolders(testtools.TestCase):
    """The patched arms find the checkout's series wherever the lab lives."""

    def test_series_folders_exist(self):
        from bdm_guard_lab.nova import patched as patched_nova

        self.assertTrue(os.path.isfile(os.path.join(
            process.REPO_ROOT, 'lab', 'setup.cfg')), process.REPO_ROOT)
        nova = patched_nova.series_dir()
        self.assertTrue(os.path.isfile(os.path.join(nova, 'series')), nova)
        self.assertTrue(patched_nova.read_series(nova))
