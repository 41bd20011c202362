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

"""bdm_guard.nova.guard and the launcher, on the real nova 34 code."""

import importlib.metadata
import inspect
import os
import subprocess
import sys
import textwrap
import time
import unittest

import fixtures
from oslotest import base

from bdm_guard import exception
from bdm_guard.nova import guard

try:
    from nova.compute import manager
    from nova.virt import block_device
    from nova.volume import cinder as nova_cinder
except ImportError as exc:
    SKIP = ('nova is not importable (%s): install nova==34.0.0 (the [nova] '
            'extra) to run the nova integration tests' % exc)
else:
    SKIP = None

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _methods():
    compute_manager = manager.ComputeManager.__dict__
    driver_bdm = block_device.DriverVolumeBlockDevice.__dict__
    return (compute_manager['_await_block_device_map_created'],
            driver_bdm['_create_volume'])


@unittest.skipIf(SKIP, SKIP)
class TestCheck(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.versions = {}
        real = importlib.metadata.version

        def version(name):
            if name in self.versions:
                if self.versions[name] is None:
                    raise importlib.metadata.PackageNotFoundError(name)
                return self.versions[name]
            return real(name)

        self.useFixture(fixtures.MonkeyPatch(
            'importlib.metadata.version', version))

    def test_nova_34(self):
        self.assertTrue(guard.check().startswith('34.'))

    def test_other_release(self):
        self.versions['nova'] = '35.0.0'
        exc = self.assertRaises(exception.NovaIncompatible, guard.check)
        self.assertIn('nova 35.0.0 is not supported', str(exc))
        self.assertIn('Nothing was changed', str(exc))

    def test_not_installed(self):
        self.versions['nova'] = None
        exc = self.assertRaises(exception.NovaIncompatible, guard.check)
        self.assertIn('nova is not installed', str(exc))

    def test_signature_changed(self):
        def changed(self, context, vol_id, timeout):
            pass

        self.useFixture(fixtures.MockPatchObject(
            manager.ComputeManager, '_await_block_device_map_created',
            changed))
        exc = self.assertRaises(exception.NovaIncompatible, guard.check)
        self.assertIn('_await_block_device_map_created has signature '
                      '(self, context, vol_id, timeout), expected '
                      '(self, context, vol_id)', str(exc))

    def test_helper_missing(self):
        self.useFixture(fixtures.MonkeyPatch(
            'nova.volume.cinder._get_cinderclient_parameters',
            fixtures.MonkeyPatch.delete))
        exc = self.assertRaises(exception.NovaIncompatible, guard.check)
        self.assertIn('_get_cinderclient_parameters is missing', str(exc))


@unittest.skipIf(SKIP, SKIP)
class TestInstall(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.originals = _methods()
        self.addCleanup(guard.uninstall)

    def test_install_replaces_both_with_the_same_signatures(self):
        installed = guard.install()

        self.assertEqual('launcher', installed.mode)
        self.assertEqual(2, len(installed.replaced))
        for original, new in zip(self.originals, _methods()):
            self.assertIsNot(original, new)
            self.assertEqual(inspect.signature(original),
                             inspect.signature(new))

    def test_install_twice_and_uninstall(self):
        guard.install()
        guard.install()

        self.assertEqual(2, len(guard.uninstall()))
        self.assertEqual(self.originals, _methods())

    def test_mismatch_changes_nothing(self):
        # The second method is wrong: the first must not be replaced.
        def changed(self, context, instance, volume_api, size):
            pass

        self.useFixture(fixtures.MockPatchObject(
            block_device.DriverVolumeBlockDevice, '_create_volume',
            changed))
        before = _methods()

        self.assertRaises(exception.NovaIncompatible, guard.install)

        self.assertEqual(before, _methods())
        self.assertIs(self.originals[0], before[0])

    def test_patched_nova_is_left_alone(self):
        self.useFixture(fixtures.MonkeyPatch(
            'nova.volume.cinder.volume_client', lambda context: None))

        installed = guard.install()

        self.assertEqual('patched', installed.mode)
        self.assertEqual([], installed.replaced)
        self.assertEqual(self.originals, _methods())
        self.assertTrue(hasattr(nova_cinder, 'volume_client'))


@unittest.skipIf(SKIP, SKIP)
class TestLauncher(base.BaseTestCase):
    """The console script, run as nova-compute runs: in its own process."""

    def _run(self, sitecustomize=None, wait_for=None):
        """Run the launcher with a nova.conf logging to a file.

        :param sitecustomize: code run first in the child (to fake a nova
            release).
        :param wait_for: a log text after which the child is stopped
            (nova-compute itself never ends); None to wait for its exit.
        :returns: ``(returncode, stderr, log)``.
        """
        tmp = self.useFixture(fixtures.TempDir()).path
        log_file = os.path.join(tmp, 'nova-compute.log')
        conf = os.path.join(tmp, 'nova.conf')
        with open(conf, 'w') as f:
            # A message bus that refuses at once, on loopback.
            f.write('[DEFAULT]\nlog_file = %s\n'
                    'transport_url = rabbit://guest:guest@127.0.0.1:1/\n'
                    % log_file)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [tmp, REPO] + sys.path[1:]))
        env.pop('OS_NOVA_DISABLE_EVENTLET_PATCHING', None)
        if sitecustomize:
            with open(os.path.join(tmp, 'sitecustomize.py'), 'w') as f:
                f.write(textwrap.dedent(sitecustomize))
        proc = subprocess.Popen(
            [sys.executable, '-c', 'import sys\n'
             'from bdm_guard.nova import launcher\n'
             'sys.exit(launcher.main())', '--config-file', conf],
            env=env, cwd=tmp, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.stderr.close)

        def log():
            if not os.path.exists(log_file):
                return ''
            with open(log_file) as f:
                return f.read()

        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline:
            if wait_for and wait_for in log():
                break
            time.sleep(0.2)
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return proc.returncode, proc.stderr.read(), log()

    def test_start_line_then_nova_main(self):
        # os_vif is initialized by nova's own main, after the start line.
        code, stderr, log = self._run(wait_for='Loaded VIF plugins')

        self.assertRegex(log, r'INFO bdm_guard\.nova\.launcher .* '
                              r'bdm-guard \S+ is active in nova-compute '
                              r'34\.\S+ \(mode: launcher\); guarded: '
                              r'nova\.compute\.manager:ComputeManager\.'
                              r'_await_block_device_map_created, '
                              r'nova\.virt\.block_device:'
                              r'DriverVolumeBlockDevice\._create_volume')
        self.assertIn('Loaded VIF plugins', log, stderr)

    def test_refuses_other_nova(self):
        code, stderr, log = self._run(sitecustomize='''
            import importlib.metadata
            _version = importlib.metadata.version
            def version(name):
                return '35.0.0' if name == 'nova' else _version(name)
            importlib.metadata.version = version
            ''')

        self.assertEqual(2, code, stderr)
        self.assertIn('bdm-guard-nova-compute: This nova cannot be guarded: '
                      'nova 35.0.0 is not supported', stderr)
        self.assertEqual('', log)
