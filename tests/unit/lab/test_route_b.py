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

"""The demo's route-b arm as records: series, shims, its figures.

No lab service runs; the shims are applied to copies of the installed
clients (``git apply``), as the arm applies them.
"""

import importlib.util
import os

import fixtures
import testtools

from bdm_guard_lab.arms import guard
from bdm_guard_lab.arms import modes
from bdm_guard_lab.arms import nova_mode
from bdm_guard_lab.bench import matrix
from bdm_guard_lab import exception
from bdm_guard_lab.nova import patched
from bdm_guard_lab import shims


def _write(path, text=''):
    with open(path, 'w') as stream:
        stream.write(text)
    return path


class TestDefaultArms(testtools.TestCase):

    def test_route_b_runs_only_when_named(self):
        self.assertIn('route-b', nova_mode.ARMS)
        self.assertEqual(('stock', 'launcher', 'patched', 'events'),
                         nova_mode.DEFAULT_ARMS)
        self.assertEqual(nova_mode.DEFAULT_ARMS, modes.NOVA.default_arms)
        self.assertNotIn('route-b', matrix._arms(modes.NOVA))
        self.assertEqual(modes.LIBRARY.arms, matrix._arms(modes.LIBRARY))
        self.assertEqual('route-b', guard.BY_NAME['route-b'].nova)
        self.assertEqual((guard.NOVA,), guard.BY_NAME['route-b'].modes)


class TestReadPatches(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path

    def _folder(self, name, patches, series=None):
        folder = os.path.join(self.root, name)
        os.mkdir(folder)
        for patch in patches:
            _write(os.path.join(folder, patch))
        if series is not None:
            _write(os.path.join(folder, 'series'), '\n'.join(series) + '\n')
        return folder

    def test_folders_and_files_in_order(self):
        listed = self._folder('listed', ['b.patch', 'a.patch'],
                              series=['b.patch', '# a comment', 'a.patch'])
        named = self._folder('named', ['2-y.patch', '1-x.patch', 'README'])
        single = _write(os.path.join(self.root, '0001-z.patch'))
        self.assertEqual(
            [single, os.path.join(listed, 'b.patch'),
             os.path.join(listed, 'a.patch'),
             os.path.join(named, '1-x.patch'),
             os.path.join(named, '2-y.patch')],
            patched.read_patches([single, listed, named]))

    def test_one_folder(self):
        listed = self._folder('listed', ['a.patch'], series=['a.patch'])
        self.assertEqual([os.path.join(listed, 'a.patch')],
                         patched.read_patches(listed))

    def test_no_patch(self):
        empty = self._folder('empty', [])
        self.assertRaises(exception.LabError, patched.read_patches, [empty])

    def test_series_names_a_missing_patch(self):
        broken = self._folder('broken', [], series=['gone.patch'])
        self.assertRaises(exception.LabError, patched.read_patches, broken)


class TestRouteBSources(testtools.TestCase):
    """The checkout's route B series, read as the arm reads them."""

    def test_nova_then_route_b(self):
        nova, cinder = guard.route_b_sources()
        self.assertEqual([patched.series_dir(),
                          os.path.join(patched.series_dir(), 'route-b')],
                         nova)
        patches = patched.read_patches(nova)
        base = patched.read_series(patched.series_dir())
        self.assertEqual(base, patches[:len(base)])
        self.assertEqual(
            patched.read_series(nova[1]), patches[len(base):])

    def test_cinder_0001_then_route_b(self):
        _, cinder = guard.route_b_sources()
        route = os.path.join(patched.cinder_series_dir(), 'route-b')
        self.assertEqual(route, cinder[-1])
        listed = [os.path.basename(p) for p in patched.read_patches(route)]
        if len(cinder) == 2:
            # A route-b series of its own patches only: 0001 goes first.
            self.assertTrue(os.path.basename(cinder[0]).startswith('0001-'),
                            cinder)
            self.assertTrue(os.path.isfile(cinder[0]))
            self.assertNotIn(os.path.basename(cinder[0]), listed)
        else:
            # The series carries its base (patches/cinder 0001-0003 today):
            # applied alone, 0001 first.
            self.assertEqual(1, len(cinder))
            self.assertTrue(listed[0].startswith('0001-'), listed)
        self.assertTrue(listed)


class TestShims(testtools.TestCase):
    """The lab's client shims apply to the installed clients."""

    def _apply(self, package, distribution):
        shim = self.useFixture(patched.PatchedPackage(
            package, shims.series_dir(package), distribution=distribution))
        self.assertEqual([os.path.basename(p) for p in patched.read_series(
            shims.series_dir(package))], shim.applied)
        return shim.path

    def _read(self, *parts):
        with open(os.path.join(*parts)) as stream:
            return stream.read()

    def test_cinderclient(self):
        path = self._apply('cinderclient', 'python-cinderclient')
        self.assertIn('MAX_VERSION = "3.73"', self._read(
            path, 'cinderclient', 'api_versions.py'))
        volumes = self._read(path, 'cinderclient', 'v3', 'volumes.py')
        self.assertIn('server_id=None, idempotency_key=None', volumes)
        self.assertIn("body['volume']['server_id'] = server_id", volumes)

    @testtools.skipUnless(importlib.util.find_spec('novaclient'),
                          'python-novaclient is not installed (lab extra)')
    def test_novaclient(self):
        path = self._apply('novaclient', 'python-novaclient')
        self.assertIn('APIVersion("2.105")', self._read(
            path, 'novaclient', '__init__.py'))


class TestEventFigures(testtools.TestCase):

    def test_count_events_from_an_offset(self):
        log = os.path.join(self.useFixture(fixtures.TempDir()).path, 'log')
        line = ('INFO nova.api.openstack.compute.server_external_events '
                'Creating event volume-created:%s for instance i on h\n')
        _write(log, line % 'v1' + 'INFO other\n' + line % 'v2')
        events, offset = guard.count_events(log)
        self.assertEqual(2, events)
        with open(log, 'a') as stream:
            stream.write(line % 'v3' + 'Creating event volume-extended:v\n')
        self.assertEqual((1, os.path.getsize(log)),
                         guard.count_events(log, offset))

    def test_count_events_no_log(self):
        self.assertEqual((0, 5), guard.count_events('/nonexistent/log', 5))

    def _records(self, *statuses):
        return [{'status': status, 'volumes': ['v%d' % n]}
                for n, status in enumerate(statuses)]

    def test_event_path(self):
        figures = {'volume_created_events': 3,
                   'server_records': self._records('ACTIVE', 'ACTIVE',
                                                   'ERROR')}
        nova_mode._check_event_path(figures)
        self.assertIs(True, figures['event_path'])

    def test_event_path_missed(self):
        figures = {'volume_created_events': 1,
                   'server_records': self._records('ACTIVE', 'ACTIVE')}
        nova_mode._check_event_path(figures)
        self.assertIs(False, figures['event_path'])

    def test_no_active_server_is_no_event_path(self):
        figures = {'volume_created_events': 0,
                   'server_records': self._records('ERROR')}
        nova_mode._check_event_path(figures)
        self.assertIs(False, figures['event_path'])

    def test_other_arms_have_no_event_path(self):
        figures = {'server_records': self._records('ACTIVE')}
        nova_mode._check_event_path(figures)
        self.assertNotIn('event_path', figures)

    def test_rows(self):
        rows = dict(modes.NOVA.event_rows)
        self.assertEqual(6, rows['volume-created events (nova-api)'](
            {'volume_created_events': 6}))
        self.assertEqual('yes', rows['waited on the event'](
            {'event_path': True}))
        self.assertEqual('NO', rows['waited on the event'](
            {'event_path': False}))
        self.assertEqual('-', rows['waited on the event']({}))
        self.assertEqual('nova 34 + 8 patches, cinder 29 + 3',
                         modes.NOVA.label({'nova': {
                             'patches': ['p'] * 8,
                             'cinder_patches': ['c'] * 3}}))


class TestCinderSourcesLayouts(testtools.TestCase):
    """A route-b series with or without the base patch in it."""

    def _tree(self, route_lists_base):
        root = self.useFixture(fixtures.TempDir()).path
        route = os.path.join(root, 'route-b')
        os.mkdir(route)
        base = _write(os.path.join(root, '0001-base.patch'))
        names = ['0002-event.patch']
        if route_lists_base:
            names.insert(0, '0001-base.patch')
        for name in names:
            _write(os.path.join(route, name))
        _write(os.path.join(route, 'series'), '\n'.join(names) + '\n')
        self.useFixture(fixtures.MonkeyPatch(
            'bdm_guard_lab.nova.patched.cinder_series_dir', lambda: root))
        return base, route

    def test_base_then_route_b(self):
        base, route = self._tree(False)
        self.assertEqual([base, route], guard.route_b_sources()[1])

    def test_route_b_alone_when_it_lists_the_base(self):
        _, route = self._tree(True)
        self.assertEqual([route], guard.route_b_sources()[1])
