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

"""The requirement floors admit every supported release's upper-constraints.

A deployer installs bdm-guard into nova's environment with that release's
own ``upper-constraints.txt`` (``pip install -c``); a floor above one pin of
one release and pip refuses the install there. The files are the copies in
``tools/nova-compat`` (sources in its README.rst); no network is used.
"""

import configparser
import glob
import os
import re

from oslotest import base
from packaging import requirements
from packaging import utils
from packaging import version

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CONSTRAINTS = sorted(glob.glob(os.path.join(
    REPO, 'tools', 'nova-compat', 'upper-constraints-*.txt')))
#: The releases bdm-guard supports (doc/source/admin/compute-nodes.rst).
RELEASES = ('2024.1', '2024.2', '2025.1', '2025.2', '2026.1', 'master')


def _lines(path):
    with open(path) as f:
        for line in f:
            line = line.split(' #', 1)[0].strip()
            if line and not line.startswith(('#', '-')):
                yield line


def read_requirements(path):
    return [requirements.Requirement(line) for line in _lines(path)]


def read_constraints(path):
    """``{canonical name: [(version, marker or None)]}``.

    Each line is ``name===version[;marker]``: one pin per Python, where a
    release pins differently by ``python_version``.
    """
    pins = {}
    for line in _lines(path):
        spec, _, marker = line.partition(';')
        name, pinned = re.split(r'===|==', spec.strip(), 1)
        pins.setdefault(utils.canonicalize_name(name), []).append(
            (pinned.strip(), marker.strip() or None))
    return pins


def conflicts(reqs, pins):
    """``[(requirement, pinned version, marker)]`` that do not resolve."""
    found = []
    for req in reqs:
        for pinned, marker in pins.get(utils.canonicalize_name(req.name), []):
            if not req.specifier.contains(version.Version(pinned),
                                          prereleases=True):
                found.append((str(req), pinned, marker))
    return found


def _extra(name):
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO, 'setup.cfg'))
    return [requirements.Requirement(line.strip())
            for line in parser.get('extras', name).splitlines()
            if line.strip() and not line.strip().startswith('#')]


class TestFloors(base.BaseTestCase):

    def test_every_release_has_its_file(self):
        self.assertEqual(
            ['upper-constraints-%s.txt' % r for r in sorted(RELEASES)],
            [os.path.basename(p) for p in CONSTRAINTS])

    def test_requirements_resolve_against_every_release(self):
        reqs = read_requirements(os.path.join(REPO, 'requirements.txt'))
        for path in CONSTRAINTS:
            pins = read_constraints(path)
            self.assertEqual([], conflicts(reqs, pins), path)
            # Not vacuous: the floors that matter are pinned everywhere.
            for name in ('tenacity', 'keystoneauth1', 'oslo-config',
                         'python-cinderclient', 'cliff'):
                self.assertIn(name, pins, path)

    def test_test_requirements_resolve_against_every_release(self):
        reqs = read_requirements(os.path.join(REPO,
                                              'test-requirements.txt'))
        for path in CONSTRAINTS:
            self.assertEqual([], conflicts(reqs, read_constraints(path)),
                             path)

    def test_the_nova_extra_is_the_supported_range(self):
        from bdm_guard.nova import guard
        from bdm_guard.nova import launcher
        [nova] = _extra('nova')
        self.assertEqual(requirements.Requirement(launcher.NOVA_REQUIREMENT),
                         nova)
        for series, row in guard.SUPPORTED_NOVA.items():
            self.assertIn(row.checked, nova.specifier)
        self.assertNotIn('%d.0.0' % (max(map(int, guard.SUPPORTED_NOVA))
                                     + 1), nova.specifier)
        self.assertNotIn('%d.99.0' % (min(map(int, guard.SUPPORTED_NOVA))
                                      - 1), nova.specifier)

    def test_the_db_extra_resolves_from_2024_2_on(self):
        # bdm_guard.db needs SQLAlchemy 2.0 (Connection.commit); 2024.1
        # pins 1.4.51, so the [db] extra does not install there (said in
        # doc/source/admin/packaging.rst). Every other release admits it.
        db = _extra('db')
        for path in CONSTRAINTS:
            found = conflicts(db, read_constraints(path))
            if path.endswith('-2024.1.txt'):
                self.assertEqual([('SQLAlchemy>=2.0.0', '1.4.51', None)],
                                 found)
            else:
                self.assertEqual([], found, path)

    def test_a_floor_above_a_pin_is_caught(self):
        # The check itself: tenacity>=9.1.0 (the old floor) against 2024.1.
        pins = read_constraints(os.path.join(
            REPO, 'tools', 'nova-compat', 'upper-constraints-2024.1.txt'))
        self.assertEqual(
            [('tenacity>=9.1.0', '8.2.3', None)],
            conflicts([requirements.Requirement('tenacity>=9.1.0')], pins))

    def test_markers_are_read(self):
        pins = read_constraints(os.path.join(
            REPO, 'tools', 'nova-compat', 'upper-constraints-2025.2.txt'))
        self.assertEqual(2, len(pins['cliff']))
        self.assertTrue(all(m for _, m in pins['cliff']))
