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

"""bdm_guard.nova.guard and the launcher, on the real code of the installed
nova (34 in the default envs; 29 to 34 under ``tox -e nova-compat``)."""

import dataclasses
import importlib.metadata
import inspect
import json
import os
import re
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
    NOVA = None
else:
    SKIP = None
    NOVA = importlib.metadata.version('nova')

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _dist_requires():
    """bdm-guard's installed requirements without extras (list of str)."""
    try:
        lines = importlib.metadata.requires('bdm-guard') or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [line for line in lines if 'extra ==' not in line]


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

    def test_installed_release(self):
        self.assertEqual(NOVA, guard.check())
        self.assertEqual(NOVA.split('.')[0], guard.release().series)

    def test_other_release(self):
        self.versions['nova'] = '35.0.0'
        exc = self.assertRaises(exception.NovaIncompatible, guard.check)
        self.assertIn('nova 35.0.0 is not supported: its code has not been '
                      'checked', str(exc))
        self.assertIn('34.x (2026.2)', str(exc))
        self.assertIn('Nothing was changed', str(exc))

    def test_older_release(self):
        self.versions['nova'] = '28.3.1'
        exc = self.assertRaises(exception.NovaIncompatible, guard.check)
        self.assertIn('nova 28.3.1 is not supported: it is older than the '
                      'oldest release checked', str(exc))
        self.assertIn('29.x (2024.1)', str(exc))

    def test_rows_are_checked_against_the_code(self):
        # The installed code faked as a release that keeps its cinder
        # session elsewhere: that row's expectations fail, by name.
        mine = guard.release()
        other = [r for r in guard.SUPPORTED_NOVA.values()
                 if r.cinder_session != mine.cinder_session][-1]
        self.versions['nova'] = other.checked
        exc = self.assertRaises(exception.NovaIncompatible, guard.check)
        missing = guard.EXPECTED_SESSION[other.cinder_session][0][1]
        self.assertIn('nova %s (%s.x, %s): ' % (other.checked, other.series,
                                                other.name), str(exc))
        self.assertIn('%s is missing' % missing, str(exc))

    def test_sleep_style_is_checked_against_the_code(self):
        mine = guard.release()
        other = [r for r in guard.SUPPORTED_NOVA.values()
                 if r.wait_sleep != mine.wait_sleep
                 and r.cinder_session == mine.cinder_session]
        if not other:
            # 33 and 34 share a session kind and a sleep: fake the other
            # sleep on the installed row instead.
            other = [dataclasses.replace(
                mine, wait_sleep=(guard.TIME_SLEEP
                                  if mine.wait_sleep == guard.EVENTLET_SLEEP
                                  else guard.EVENTLET_SLEEP))]
            self.useFixture(fixtures.MonkeyPatch(
                'bdm_guard.nova.releases.SUPPORTED_NOVA',
                dict(guard.SUPPORTED_NOVA, **{mine.series: other[0]})))
        self.versions['nova'] = other[0].checked
        exc = self.assertRaises(exception.NovaIncompatible, guard.check)
        self.assertIn('was checked to sleep with %s' % other[0].wait_sleep,
                      str(exc))

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

    def _run(self, sitecustomize=None, wait_for=None, conf_extra='',
             args=()):
        """Run the launcher with a nova.conf logging to a file.

        :param sitecustomize: code run first in the child (to fake a nova
            release).
        :param wait_for: a log text after which the child is stopped
            (nova-compute itself never ends); None to wait for its exit.
        :param conf_extra: text appended to nova.conf.
        :param args: more arguments after ``--config-file``.
        :returns: ``(returncode, stderr, log)``.
        """
        tmp = self.useFixture(fixtures.TempDir()).path
        log_file = os.path.join(tmp, 'nova-compute.log')
        conf = os.path.join(tmp, 'nova.conf')
        with open(conf, 'w') as f:
            # A message bus that refuses at once, on loopback.
            f.write('[DEFAULT]\nlog_file = %s\n'
                    'transport_url = rabbit://guest:guest@127.0.0.1:1/\n'
                    % log_file + conf_extra)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [tmp, REPO] + sys.path[1:]))
        env.pop('OS_NOVA_DISABLE_EVENTLET_PATCHING', None)
        if sitecustomize:
            with open(os.path.join(tmp, 'sitecustomize.py'), 'w') as f:
                f.write(textwrap.dedent(sitecustomize))
        proc = subprocess.Popen(
            [sys.executable, '-c', 'import sys\n'
             'from bdm_guard.nova import launcher\n'
             'sys.exit(launcher.main())', '--config-file', conf, *args],
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
                              + re.escape(NOVA) +
                              r' \(mode: launcher\); guarded: '
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

        self.assertRefused(code, stderr, log, 'This nova cannot be guarded: '
                           'nova 35.0.0 is not supported')
        self.assertIn('bdm-guard needs nova>=29.0.0,<35', stderr)

    def assertRefused(self, code, stderr, log, text):
        """Exit 2, one line on stderr, the same line in nova's log only.

        Other lines on stderr may be warnings of nova's own imports (nova
        29 under setuptools 80: pkg_resources is deprecated).
        """
        self.assertEqual(2, code, stderr)
        lines = [line for line in stderr.splitlines()
                 if line.startswith('bdm-guard-nova-compute')]
        self.assertEqual(1, len(lines), stderr)
        self.assertNotIn('Traceback', stderr)
        self.assertIn(text, lines[0])
        self.assertTrue(lines[0].endswith('; nova-compute was not started'))
        logged = log.splitlines()
        self.assertEqual(1, len(logged), log)
        self.assertRegex(logged[0], r'^\d{4}-\d\d-\d\d [\d:.]+ \d+ CRITICAL '
                         r'bdm_guard\.nova\.launcher \[-\] ')
        self.assertTrue(logged[0].endswith(lines[0]), log)

    def test_refuses_an_option_out_of_range(self):
        code, stderr, log = self._run(
            conf_extra='[bdm_guard]\npoll_multiplier = 9\n'
                       '[bdm_guard_events]\nping_interval = fast\n')

        self.assertRefused(code, stderr, log,
                           '[bdm_guard] poll_multiplier = 9 in ')
        self.assertIn('nova.conf is refused: Should be less than or equal '
                      'to 4 (and 1 more: [bdm_guard_events] '
                      'ping_interval)', stderr)

    def test_refuses_without_nova(self):
        code, stderr, log = self._run(sitecustomize='''
            import sys
            class NoNova:
                def find_spec(self, name, path=None, target=None):
                    if name == 'nova' or name.startswith('nova.'):
                        raise ModuleNotFoundError("No module named 'nova'",
                                                  name='nova')
            sys.meta_path.insert(0, NoNova())
            ''')

        self.assertRefused(code, stderr, log, 'nova cannot be imported '
                           "(ModuleNotFoundError: No module named 'nova'): "
                           'bdm-guard needs nova>=29.0.0,<35')

    @unittest.skipIf(not _dist_requires(), 'bdm-guard is not installed')
    def test_refuses_an_old_library(self):
        code, stderr, log = self._run(sitecustomize='''
            import importlib.metadata
            _version = importlib.metadata.version
            def version(name):
                return ('5.4.0' if name == 'keystoneauth1'
                        else _version(name))
            importlib.metadata.version = version
            ''')

        needed = next(r for r in _dist_requires()
                      if r.startswith('keystoneauth1'))
        self.assertRefused(code, stderr, log,
                           'keystoneauth1 5.4.0 is installed: bdm-guard ')
        self.assertIn(' needs %s;' % needed, stderr)

    def test_refuses_when_a_library_does_not_import(self):
        code, stderr, log = self._run(sitecustomize='''
            import sys
            class NoCinderclient:
                def find_spec(self, name, path=None, target=None):
                    if name.split('.')[0] == 'cinderclient':
                        raise ModuleNotFoundError(
                            "No module named 'cinderclient'",
                            name='cinderclient')
            sys.meta_path.insert(0, NoCinderclient())
            ''')

        self.assertRefused(code, stderr, log, 'bdm_guard.cinder cannot be '
                           'imported (ModuleNotFoundError: No module named '
                           "'cinderclient'): bdm-guard needs "
                           'python-cinderclient')

    def test_version_names_both(self):
        out = subprocess.run(
            [sys.executable, '-c', 'import sys\n'
             'from bdm_guard.nova import launcher\n'
             'sys.exit(launcher.main())', '--version'],
            capture_output=True, text=True, timeout=120,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                [REPO] + sys.path[1:])))
        self.assertEqual(0, out.returncode, out.stderr)
        self.assertEqual('bdm-guard %s (nova %s)\n' % (
            guard._version('bdm-guard') or 'unknown', NOVA), out.stdout)


_PROBE = '''
import json
import sys
import time

# As the launcher does: nova's own start-up applies the release's
# concurrency model (eventlet monkey patching or native threads) first.
from nova.cmd import compute  # noqa

from bdm_guard.nova import dropin
from bdm_guard.nova import guard

installed = guard.install()
try:
    import eventlet.patcher
    patched = eventlet.patcher.is_monkey_patched('time')
except ImportError:
    patched = False
sleep = dropin._sleep(None)
ran = []
if patched:
    import eventlet
    eventlet.spawn(ran.append, 1)
    sleep(0)
json.dump({'series': installed.release.series, 'patched': patched,
           'sleep': '%s.%s' % (sleep.__module__, sleep.__name__),
           'is_time_sleep': sleep is time.sleep,
           'cooperative': bool(ran)}, sys.stdout)
'''


@unittest.skipIf(SKIP, SKIP)
class TestConcurrency(base.BaseTestCase):
    """The drop-in's waits follow the concurrency model nova starts with."""

    def _probe(self, disable_eventlet=None):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [REPO] + sys.path[1:]))
        env.pop('OS_NOVA_DISABLE_EVENTLET_PATCHING', None)
        if disable_eventlet is not None:
            env['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = disable_eventlet
        proc = subprocess.run([sys.executable, '-c', _PROBE], env=env,
                              cwd=self.useFixture(fixtures.TempDir()).path,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(0, proc.returncode, proc.stderr)
        return json.loads(proc.stdout)

    def _assert_model(self, found, eventlet):
        # What time.sleep is depends on the release: os-brick (imported by
        # nova.cmd.compute from 31 on) replaces it with a wrapper around the
        # sleep of its import time, after nova's monkey patching. So the
        # checks are on behaviour, not on names.
        if eventlet:
            # Green: another green thread runs while the drop-in sleeps.
            self.assertEqual((True, True),
                             (found['patched'], found['cooperative']),
                             found)
        else:
            self.assertEqual((False, True),
                             (found['patched'], found['is_time_sleep']),
                             found)
            self.assertNotIn('eventlet', found['sleep'])

    def test_default_model(self):
        row = guard.release()
        found = self._probe()

        self.assertEqual(row.series, found['series'])
        self._assert_model(found, row.concurrency == 'eventlet')

    def test_other_model(self):
        row = guard.release()
        if row.wait_sleep == guard.EVENTLET_SLEEP:
            # nova 29-31 without monkey patching (only nova's own tests run
            # so): nova's wait still sleeps with greenthread.sleep, and so
            # does the drop-in.
            found = self._probe('true')
            self.assertEqual((False, 'eventlet.greenthread.sleep'),
                             (found['patched'], found['sleep']))
            return
        eventlet = row.concurrency != 'eventlet'
        found = self._probe('false' if eventlet else 'true')

        self._assert_model(found, eventlet)
