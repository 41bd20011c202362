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

"""What a deployer installs: the wheel, the lab's own distribution, the
deployment files shipped for the launcher (systemd drop-in, Kolla).

The Kolla layer's Python environment is built on every nova release by
``tox -e nova-compat``; here only its shape is checked.
"""

import configparser
import glob
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import unittest
import zipfile

import fixtures
from oslotest import base

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DROPIN = os.path.join(REPO, 'etc', 'systemd', 'nova-compute.service.d',
                      'bdm-guard.conf')
DOCKERFILE = os.path.join(REPO, 'tools', 'kolla',
                          'Dockerfile.nova-compute-bdm-guard')
LAUNCHER = '/usr/local/bin/bdm-guard-nova-compute'
UNIT = '''[Unit]
Description=OpenStack Compute (as a distribution ships it)

[Service]
ExecStart=%s --config-file /etc/nova/nova.conf
Restart=on-failure

[Install]
WantedBy=multi-user.target
'''


def _entries(path):
    """``[(section, key, value)]`` in order; systemd repeats keys."""
    entries, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in '#;':
                continue
            if line.startswith('['):
                section = line.strip('[]')
                continue
            key, _, value = line.partition('=')
            entries.append((section, key.strip(), value.strip()))
    return entries


class TestSystemdDropIn(base.BaseTestCase):

    def test_execstart_is_reset_then_the_launcher(self):
        entries = _entries(DROPIN)
        execs = [v for s, k, v in entries if (s, k) == ('Service',
                                                        'ExecStart')]

        self.assertEqual(['', LAUNCHER], [e.split(' ')[0] for e in execs])
        self.assertEqual(['--config-file', '/etc/nova/nova.conf'],
                         shlex.split(execs[1])[1:])
        self.assertEqual({'Service'}, {s for s, _, _ in entries})

    def test_a_refusal_is_not_restarted(self):
        # Exit 2 means "this nova cannot be guarded, nothing changed".
        from bdm_guard.nova import launcher
        values = [v for s, k, v in _entries(DROPIN)
                  if k == 'RestartPreventExitStatus']

        self.assertEqual([str(launcher.EXIT_INCOMPATIBLE)], values)

    @unittest.skipIf(not shutil.which('systemd-analyze'),
                     'systemd-analyze is not installed')
    def test_systemd_analyze_verify(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        stub = os.path.join(tmp, 'bin')
        os.mkdir(stub)
        for name in ('nova-compute', 'bdm-guard-nova-compute'):
            path = os.path.join(stub, name)
            with open(path, 'w') as f:
                f.write('#!/bin/sh\nexit 0\n')
            os.chmod(path, 0o755)
        with open(os.path.join(tmp, 'nova-compute.service'), 'w') as f:
            f.write(UNIT % os.path.join(stub, 'nova-compute'))
        os.mkdir(os.path.join(tmp, 'nova-compute.service.d'))
        with open(DROPIN) as f:
            text = f.read()

        def verify(launcher):
            with open(os.path.join(tmp, 'nova-compute.service.d',
                                   'bdm-guard.conf'), 'w') as f:
                f.write(text.replace(LAUNCHER, launcher))
            return subprocess.run(
                ['systemd-analyze', 'verify',
                 os.path.join(tmp, 'nova-compute.service')],
                env=dict(os.environ, SYSTEMD_UNIT_PATH=tmp + ':'),
                capture_output=True, text=True, timeout=60)

        good = verify(os.path.join(stub, 'bdm-guard-nova-compute'))
        # The same drop-in with a launcher that is not there: proves that
        # systemd read the drop-in (and took its ExecStart).
        missing = verify(os.path.join(stub, 'missing'))

        self.assertEqual((0, ''), (good.returncode,
                                   good.stdout + good.stderr))
        self.assertNotEqual(0, missing.returncode)
        self.assertIn(os.path.join(stub, 'missing'),
                      missing.stdout + missing.stderr)


class TestKollaLayer(base.BaseTestCase):

    def test_one_pip_install_into_the_kolla_venv(self):
        with open(DOCKERFILE) as f:
            text = f.read().replace('\\\n', ' ')
        runs = [line for line in text.splitlines()
                if line.startswith('RUN ') and 'pip install ' in line]

        self.assertEqual(1, len(runs))
        args = shlex.split(runs[0][len('RUN '):].split('&&')[0])
        self.assertEqual(['/var/lib/kolla/venv/bin/pip', 'install'],
                         args[:2])
        # The image's own constraints: nothing nova uses is upgraded.
        self.assertIn('-c', args)
        self.assertEqual('/requirements/upper-constraints.txt',
                         args[args.index('-c') + 1])
        self.assertIn('/tmp/bdm-guard', args)
        self.assertIn('USER nova', text.splitlines())


def _tool(name):
    """A module of ``tools/nova-compat`` (not a package: loaded by path)."""
    path = os.path.join(REPO, 'tools', 'nova-compat', name)
    spec = importlib.util.spec_from_file_location(
        'nova_compat_' + name[:-3].replace('-', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestNovaCompat(base.BaseTestCase):
    """``tox -e nova-compat``'s inputs (the runs themselves are CI's)."""

    def test_one_row_per_supported_release(self):
        run = _tool('run.py')
        from bdm_guard.nova import guard
        self.assertEqual(sorted(guard.SUPPORTED_NOVA), sorted(run.RELEASES))
        for release, (uc, nova, python, _) in run.RELEASES.items():
            row = guard.SUPPORTED_NOVA[release]
            self.assertEqual(row.checked, nova)
            self.assertEqual(row.name, uc if uc != 'master' else '2026.2')
            self.assertTrue(os.path.exists(run.constraints_file(release)))
            self.assertRegex(python, r'^3\.(9|1[0-3])$')

    def test_overrides_only_raise_a_pin_of_the_release(self):
        from packaging import version
        run = _tool('run.py')
        tmp = self.useFixture(fixtures.TempDir()).path
        for release, overrides in run.OVERRIDES.items():
            own = run.constraints_file(release)
            derived = run.constraints_file(release, tmp)
            with open(own) as f:
                own_lines = [line for line in f.read().splitlines()
                             if not line.startswith('# ')]
            with open(derived) as f:
                derived_lines = [line for line in f.read().splitlines()
                                 if not line.startswith('# ')]
            changed = [(a, b) for a, b in zip(own_lines, derived_lines)
                       if a != b]
            self.assertEqual(len(own_lines), len(derived_lines))
            self.assertEqual(len(overrides), len(changed))
            for before, after in changed:
                name, old = before.split(';')[0].split('===')
                self.assertEqual('%s===%s' % (name, overrides[name][0]),
                                 after)
                self.assertGreater(version.Version(overrides[name][0]),
                                   version.Version(old))

    def test_each_release_pins_its_own_placement(self):
        run = _tool('run.py')
        majors = [int(run.RELEASES[r][3].split('.')[0])
                  for r in sorted(run.RELEASES, key=int)]
        # placement N+? follows nova's release by release, one major each.
        self.assertEqual(list(range(majors[0], majors[0] + len(majors))),
                         majors)

    def test_boot_layer_adds_the_lab_nova_child(self):
        run = _tool('run.py')
        names = [re.split(r'[<>=!~;\s]', r, 1)[0] for r in run.boot_extra()]
        self.assertIn('openstack-placement', names)
        self.assertIn('wsgi-intercept', names)
        # The release venv brings its own nova; cinder stays in the lab's.
        self.assertNotIn('nova', names)
        self.assertNotIn('cinder', names)


def _setup_cfg(path):
    parser = configparser.ConfigParser()
    parser.read(path)
    return parser


def _lines(text):
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith('#')]


class TestDistributions(base.BaseTestCase):
    """bdm-guard ships the library only; the lab is bdm-guard-lab."""

    def test_library_packages_only(self):
        cfg = _setup_cfg(os.path.join(REPO, 'setup.cfg'))
        self.assertEqual(['bdm_guard'], _lines(cfg.get('files', 'packages')))
        self.assertNotIn('lab', cfg['extras'])
        self.assertNotIn('bdm_guard_lab', cfg.get('entry_points',
                                                  'bdm_guard.cli'))
        self.assertEqual('>=3.9', cfg.get('metadata', 'python_requires'))

    def test_data_files_exist(self):
        cfg = _setup_cfg(os.path.join(REPO, 'setup.cfg'))
        for line in _lines(cfg.get('files', 'data_files')):
            target, _, sources = line.partition('=')
            self.assertTrue(target.strip().startswith('etc/bdm-guard'))
            for source in sources.split():
                self.assertTrue(os.path.isfile(os.path.join(REPO, source)),
                                source)

    def test_lab_distribution_registers_its_commands(self):
        cfg = _setup_cfg(os.path.join(REPO, 'lab', 'setup.cfg'))
        self.assertEqual('bdm-guard-lab', cfg.get('metadata', 'name'))
        self.assertEqual(['bdm_guard_lab'],
                         _lines(cfg.get('files', 'packages')))
        commands = {
            k.strip(): v.strip() for k, _, v in (
                line.partition('=') for line in
                _lines(cfg.get('entry_points', 'bdm_guard.cli')))}
        self.assertEqual({'demo': 'bdm_guard_lab.cmd.demo:Demo',
                          'simulate': 'bdm_guard_lab.cmd.simulate:Simulate'},
                         commands)
        self.assertTrue(os.path.isdir(os.path.join(REPO, 'lab',
                                                   'bdm_guard_lab')))
        self.assertFalse(os.path.exists(os.path.join(REPO, 'bdm_guard_lab')))

    def test_license_is_apache_2(self):
        for where in (REPO, os.path.join(REPO, 'lab')):
            with open(os.path.join(where, 'LICENSE')) as f:
                text = f.read()
            self.assertIn('Apache License\n                           '
                          'Version 2.0, January 2004', text)
            self.assertIn('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND '
                          'DISTRIBUTION', text)

    def test_versions_are_pre_versioned(self):
        for path in (os.path.join(REPO, 'setup.cfg'),
                     os.path.join(REPO, 'lab', 'setup.cfg')):
            self.assertEqual('0.1.0', _setup_cfg(path).get('metadata',
                                                           'version'))

    def test_python_m_bdm_guard(self):
        out = subprocess.run([sys.executable, '-m', 'bdm_guard', '--version'],
                             capture_output=True, text=True, cwd=REPO,
                             timeout=120)
        self.assertEqual(0, out.returncode, out.stderr)
        self.assertRegex(out.stdout + out.stderr,
                         r'^bdm[-_]guard 0\.1\.0(\.dev\d+)?\n$')

    @unittest.skipIf(not shutil.which('git'), 'git is not installed')
    def test_wheel_holds_the_library_and_data_files(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        out = subprocess.run(
            [sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps',
             '--no-build-isolation', '-w', tmp, REPO],
            capture_output=True, text=True, timeout=600)
        if out.returncode and 'No module named' in out.stderr:
            self.skipTest('cannot build here: %s' % out.stderr[-300:])
        self.assertEqual(0, out.returncode, out.stderr[-2000:])
        [wheel] = glob.glob(os.path.join(tmp, 'bdm_guard-*.whl'))
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
            dist_info = next(n.split('/')[0] for n in names
                             if n.endswith('.dist-info/METADATA'))
            metadata = z.read(dist_info + '/METADATA').decode()
            entry_points = z.read(dist_info + '/entry_points.txt').decode()
        tops = {n.split('/')[0] for n in names}
        data = dist_info.replace('.dist-info', '.data')
        self.assertEqual({'bdm_guard', dist_info, data}, tops)
        self.assertIn(data + '/data/etc/bdm-guard/'
                      'bdm_guard-config-generator.conf', names)
        self.assertIn(data + '/data/etc/bdm-guard/systemd/'
                      'nova-compute.service.d/bdm-guard.conf', names)
        self.assertIn(data + '/data/etc/bdm-guard/systemd/debian/'
                      'nova-compute.service.d/bdm-guard.conf', names)
        self.assertIn(data + '/data/etc/bdm-guard/systemd/rdo/'
                      'openstack-nova-compute.service.d/bdm-guard.conf',
                      names)
        self.assertIn('bdm_guard/__main__.py', names)
        self.assertTrue(any(n.endswith('/LICENSE') for n in names), names)
        self.assertIn('Requires-Python: >=3.9', metadata)
        self.assertIn("Requires-Dist: nova<35,>=29.0.0; extra == 'nova'",
                      metadata.replace('"', "'"))
        self.assertRegex(metadata, r'\nVersion: 0\.1\.0(\.dev\d+)?\n')
        self.assertNotIn('bdm_guard_lab', entry_points)
