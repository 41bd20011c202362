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

"""The deployment files shipped for the launcher: systemd drop-in, Kolla.

The Kolla layer's Python environment is built on every nova release by
``tox -e nova-compat``; here only its shape is checked.
"""

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import unittest

import fixtures
from oslotest import base

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DROPIN = os.path.join(REPO, 'etc', 'systemd', 'nova-compute.service.d',
                      'bdm-guard.conf')
DOCKERFILE = os.path.join(REPO, 'tools', 'kolla',
                          'Dockerfile.nova-compute-bdm-guard')
LAUNCHER = '/usr/bin/bdm-guard-nova-compute'
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

    def test_constraints_are_generated(self):
        # A stale file tests a world that upper-constraints.txt left.
        make = _tool('make-constraints.py')
        for release in make.RELEASES:
            path = os.path.join(REPO, 'tools', 'nova-compat',
                                'constraints-%s.txt' % release)
            with open(path) as f:
                self.assertEqual(make.render(release), f.read(),
                                 'run tools/nova-compat/make-constraints.py')

    def test_each_release_pins_its_own_placement(self):
        make = _tool('make-constraints.py')
        from bdm_guard.nova import guard
        for release, (version, series) in make.PLACEMENT.items():
            self.assertEqual(guard.SUPPORTED_NOVA[release].name, series)
            self.assertIn('\nopenstack-placement==%s\n' % version,
                          make.render(release))

    def test_boot_layer_adds_the_lab_nova_extra(self):
        run = _tool('run.py')
        names = [re.split(r'[<>=!~;\s]', r, 1)[0] for r in run.boot_extra()]
        self.assertIn('openstack-placement', names)
        self.assertIn('wsgi-intercept', names)
        # The release venv brings its own nova; cinder stays in the lab's.
        self.assertNotIn('nova', names)
        self.assertNotIn('cinder', names)
