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

"""The nova arms' figures, the proxy's request-id identity, the protocol."""

import collections
import contextlib
import json
import os
import re
import threading
import types

import fixtures
import testtools

from bdm_guard_lab.arms import guard
from bdm_guard_lab.arms import nova_mode
from bdm_guard_lab import exception
from bdm_guard_lab.faults import proxy as lab_proxy
from bdm_guard_lab.faults import scenario as lab_scenario
from bdm_guard_lab.nova import patched
from bdm_guard_lab.nova import protocol
from bdm_guard_lab import process

PROJECT = 'p'


def _volume(vid, status='in-use'):
    return {'id': vid, 'status': status,
            'os-vol-tenant-attr:tenant_id': PROJECT}


def _proxy(names, gets=None, available=None, attached=None, noticed=None,
           keyed=None):
    return types.SimpleNamespace(
        names=names, volume_gets=collections.Counter(gets or {}),
        available_at=available or {}, attached_at=attached or {},
        noticed_at=noticed or {},
        injected=collections.Counter(), requests=collections.Counter(),
        keyed_creates=collections.Counter(keyed or {}))


class TestSummarize(testtools.TestCase):

    def test_figures(self):
        records = [
            {'name': 'a', 'status': 'ACTIVE', 'volumes': ['v1'],
             'posted_at': 100.0, 'active_at': 130.0},
            {'name': 'b', 'status': 'ERROR', 'volumes': [],
             'posted_at': 100.0,
             'fault_message': 'Build of instance 6c5c4997-6cdb-46dd-a712-'
                              'b382cf3588b2 aborted: Failure prepping '
                              'block device.',
             'fault_details': 'Traceback\nnova.exception.VolumeNotCreated: '
                              'x\n'},
        ]
        volumes = [_volume('v1'), _volume('v2', 'available'),
                   _volume('v3', 'error'),
                   dict(_volume('other'),
                        **{'os-vol-tenant-attr:tenant_id': 'q'})]
        proxy = _proxy({'v1': 'req-a', 'v2': 'req-a', 'v3': 'req-b'},
                       gets={'v1': 4, 'v3': 2},
                       available={'v1': 110.0}, attached={'v1': 112.5},
                       noticed={'v1': 111.25},
                       keyed={'sent': 3, 'replayed': 1})
        figures = nova_mode.summarize(records, volumes, [_volume('v2')],
                                      proxy, project_id=PROJECT, wall_s=31.0)
        self.assertEqual(3, figures['keyed_creates'])
        self.assertEqual(1, figures['replayed_creates'])
        self.assertEqual(2, figures['servers'])
        self.assertEqual(1, figures['active'])
        self.assertEqual(1, figures['error'])
        self.assertEqual(
            {'Build of instance <uuid> aborted: Failure prepping block '
             'device. [VolumeNotCreated]': 1}, figures['faults'])
        self.assertEqual(3, figures['volumes'])
        self.assertEqual(1, figures['duplicates'])
        self.assertEqual(2, figures['leaked'])
        self.assertEqual(1, figures['left_after_delete'])
        self.assertEqual(1, figures['in_error'])
        self.assertEqual(3.0, figures['gets_per_boot'])
        self.assertEqual(4.0, figures['gets_per_ok_boot'])
        self.assertEqual(1.25, figures['detect_lag_p50_s'])
        self.assertEqual(2.5, figures['attach_lag_p50_s'])
        self.assertEqual(30.0, figures['boot_seconds_p95'])
        for key in nova_mode.KEYS:
            self.assertIn(key, figures)

    def test_no_active_server(self):
        records = [{'name': 'a', 'id': None, 'posted_at': 1.0,
                    'post_error': 'boom'}]
        figures = nova_mode.summarize(records, [], [], _proxy({}),
                                      project_id=PROJECT, wall_s=1.0)
        self.assertIsNone(figures['gets_per_ok_boot'])
        self.assertIsNone(figures['boot_seconds_p50'])
        self.assertEqual(0, figures['keyed_creates'])
        self.assertEqual({'POST /servers failed: boom': 1},
                         figures['faults'])

    def test_computes(self):
        self.assertEqual(1, nova_mode.computes_for(1))
        self.assertEqual(1, nova_mode.computes_for(8))
        self.assertEqual(2, nova_mode.computes_for(9))
        self.assertEqual(7, nova_mode.computes_for(50))


class TestRequestIdIdentity(testtools.TestCase):
    """nova's unnamed volumes are known by the request id it forwards."""

    def setUp(self):
        super().setUp()
        scen = lab_scenario.parse({'name': 't', 'seed': 1, 'rules': [
            {'fault': 'lost_response', 'probability': 1.0, 'times': 1}]})
        self.proxy = lab_proxy.FaultProxy('http://127.0.0.1:1', scen)

    def test_unnamed_volume_takes_the_request_id(self):
        body = json.dumps({'volume': {'name': '', 'size': 1}}).encode()
        first = self.proxy.decide('POST', '/volumes', '', body, 'req-1')
        again = self.proxy.decide('POST', '/volumes', '', body, 'req-1')
        other = self.proxy.decide('POST', '/volumes', '', body, 'req-2')
        self.assertEqual('lost_response', first.fault)
        self.assertIsNone(again.fault)       # times: 1 per identity
        self.assertEqual('lost_response', other.fault)
        self.proxy.observe('POST', '/volumes', 202, json.dumps(
            {'volume': {'id': 'v1', 'name': ''}}).encode(), body, 'req-1')
        self.assertEqual('req-1', self.proxy.names['v1'])

    def test_named_volume_keeps_its_name(self):
        body = json.dumps({'volume': {'name': 'lab-boot-0001'}}).encode()
        decision = self.proxy.decide('POST', '/volumes', '', body, 'req-1')
        self.assertEqual('POST lab-boot-0001', decision.identity)

    def test_available_and_attachment_times(self):
        self.proxy.observe('GET', '/volumes/%s' % ('1' * 36), 200, json.dumps(
            {'volume': {'id': 'v1', 'status': 'creating',
                        'updated_at': '2026-01-01T00:00:00'}}).encode(), None)
        self.assertEqual({}, self.proxy.available_at)
        self.proxy.observe('GET', '/volumes/%s' % ('1' * 36), 200, json.dumps(
            {'volume': {'id': 'v1', 'status': 'available',
                        'updated_at': '2026-01-01T00:00:10'}}).encode(), None)
        self.proxy.observe('POST', '/attachments', 200, b'{}', json.dumps(
            {'attachment': {'volume_uuid': 'v1'}}).encode())
        self.assertEqual(1767225610.0, self.proxy.available_at['v1'])
        self.assertIn('v1', self.proxy.attached_at)

    def test_noticed_counts_the_answer_the_client_got(self):
        path = '/volumes/%s' % ('1' * 36)
        body = json.dumps({'volume': {'id': '1' * 36, 'status': 'available',
                                      'updated_at': '2026-01-01T00:00:10'}})
        self.proxy.answered(path, 404, b'{}')
        self.proxy.answered('/volumes/detail', 200, json.dumps(
            {'volumes': [json.loads(body)['volume']]}).encode())
        self.assertEqual({}, self.proxy.noticed_at)
        self.proxy.answered(path, 200, body.encode())
        first = self.proxy.noticed_at['1' * 36]
        self.proxy.answered(path, 200, body.encode())
        self.assertEqual(first, self.proxy.noticed_at['1' * 36])


class _Galera:
    """A GaleraLab stand-in that counts its lags."""

    def __init__(self):
        self.lags = 0

    @contextlib.contextmanager
    def lag(self):
        self.lags += 1
        yield


class TestLagFromFirstCreate(testtools.TestCase):
    """On Galera, node 3 lags from nova's first volume create."""

    def test_lags_once_the_first_create_arrives(self):
        galera, prox = _Galera(), types.SimpleNamespace(
            first_create=threading.Event())
        with nova_mode._lag_from_first_create(galera, 30, prox):
            self.assertEqual(0, galera.lags)
            prox.first_create.set()
        self.assertEqual(1, galera.lags)

    def test_no_create_no_lag(self):
        galera, prox = _Galera(), types.SimpleNamespace(
            first_create=threading.Event())
        with nova_mode._lag_from_first_create(galera, 30, prox):
            pass
        self.assertEqual(0, galera.lags)

    def test_the_proxy_notes_the_first_create(self):
        scen = lab_scenario.parse({'name': 't', 'seed': 1, 'rules': []})
        prox = lab_proxy.FaultProxy('http://127.0.0.1:1', scen)
        prox.decide('GET', '/volumes/detail', '', None)
        self.assertFalse(prox.first_create.is_set())
        prox.decide('POST', '/volumes', '', b'{}')
        self.assertTrue(prox.first_create.is_set())
        # A run after reset_counters waits for its own first create.
        prox.reset_counters()
        self.assertFalse(prox.first_create.is_set())


class TestProtocol(testtools.TestCase):

    def test_round_trip(self):
        line = protocol.encode('booted', servers=[{'name': 'a'}])
        self.assertEqual({'event': 'booted', 'servers': [{'name': 'a'}]},
                         protocol.decode(line))
        self.assertEqual({'cmd': 'boot', 'args': {'servers': 2}},
                         json.loads(protocol.command('boot', servers=2)))

    def test_not_an_event(self):
        self.assertRaises(ValueError, protocol.decode, '{"x": 1}')
        self.assertRaises(ValueError, protocol.decode, 'not json')


class TestSeries(testtools.TestCase):

    def test_reads_series_in_order(self):
        folder = self.useFixture(fixtures.TempDir()).path
        for name in ('0002-b.patch', '0001-a.patch'):
            open(os.path.join(folder, name), 'w').close()
        with open(os.path.join(folder, 'series'), 'w') as stream:
            stream.write('# comment\n0002-b.patch\n\n0001-a.patch\n')
        self.assertEqual(['0002-b.patch', '0001-a.patch'],
                         [os.path.basename(p)
                          for p in patched.read_series(folder)])

    def test_missing_patch(self):
        folder = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(folder, 'series'), 'w') as stream:
            stream.write('0001-a.patch\n')
        self.assertRaises(exception.LabError, patched.read_series, folder)


_CHANGE = """diff --git a/bdmlabfake/core.py b/bdmlabfake/core.py
--- a/bdmlabfake/core.py
+++ b/bdmlabfake/core.py
@@ -1 +1 @@
-VALUE = %d
+VALUE = %d
diff --git a/bdmlabfake/tests/test_core.py b/bdmlabfake/tests/test_core.py
new file mode 100644
--- /dev/null
+++ b/bdmlabfake/tests/test_core.py
@@ -0,0 +1 @@
+X = 1
"""


class TestPatchedPackage(testtools.TestCase):
    """The copy-and-apply fixture, on a small package made for the test."""

    def setUp(self):
        super().setUp()
        self.site = self.useFixture(fixtures.TempDir()).path
        package = os.path.join(self.site, 'bdmlabfake')
        os.makedirs(os.path.join(package, 'tests'))
        for name, text in (('__init__.py', ''), ('core.py', 'VALUE = 1\n'),
                           ('other.py', 'OTHER = 1\n'),
                           ('tests/__init__.py', '')):
            with open(os.path.join(package, name), 'w') as stream:
                stream.write(text)
        info = os.path.join(self.site, 'bdmlabfake-1.0.dist-info')
        os.makedirs(info)
        with open(os.path.join(info, 'METADATA'), 'w') as stream:
            stream.write('Metadata-Version: 2.1\nName: bdmlabfake\n'
                         'Version: 1.0\n')
        self.useFixture(fixtures.PythonPathEntry(self.site))
        self.series = self.useFixture(fixtures.TempDir()).path

    def _series(self, patches, base='1.0', folder=None):
        folder = folder or self.series
        with open(os.path.join(folder, 'README.rst'), 'w') as stream:
            stream.write('=====\nfake patch series for bdmlabfake %s\n=====\n'
                         % base)
        names = []
        for index, (old, new) in enumerate(patches, 1):
            names.append('%04d-change.patch' % index)
            with open(os.path.join(folder, names[-1]), 'w') as stream:
                stream.write(_CHANGE % (old, new))
        with open(os.path.join(folder, 'series'), 'w') as stream:
            stream.write('\n'.join(names) + '\n')
        return folder

    def _enter(self, fixture):
        stack = contextlib.ExitStack()
        self.addCleanup(stack.close)
        return guard.enter(stack, fixture)

    def test_applies_in_order_to_a_copy(self):
        copy = self._enter(patched.PatchedPackage(
            'bdmlabfake', self._series([(1, 2), (2, 3)])))
        self.assertEqual(['0001-change.patch', '0002-change.patch'],
                         copy.applied)
        changed = os.path.join(copy.path, 'bdmlabfake', 'core.py')
        self.assertFalse(os.path.islink(changed))
        with open(changed) as stream:
            self.assertEqual('VALUE = 3\n', stream.read())
        self.assertTrue(os.path.islink(
            os.path.join(copy.path, 'bdmlabfake', 'other.py')))
        self.assertFalse(os.path.exists(
            os.path.join(copy.path, 'bdmlabfake', 'tests', 'test_core.py')))
        with open(os.path.join(self.site, 'bdmlabfake', 'core.py')) as stream:
            self.assertEqual('VALUE = 1\n', stream.read())
        self.assertEqual(('1.0', '1.0', None),
                         (copy.installed, copy.base, copy.note))

    def test_two_series_share_one_folder(self):
        first = self._enter(patched.PatchedPackage(
            'bdmlabfake', self._series([(1, 2)])))
        other = os.path.join(self.site, 'bdmlabother')
        os.makedirs(other)
        with open(os.path.join(other, '__init__.py'), 'w') as stream:
            stream.write('')
        series = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(series, 'series'), 'w') as stream:
            stream.write('0001-empty.patch\n')
        with open(os.path.join(series, '0001-empty.patch'), 'w') as stream:
            # Only a test file, as keystoneauth's 0001: nothing to apply.
            tests_only = _CHANGE.split('diff --git')[2]
            stream.write('diff --git' + tests_only.replace('bdmlabfake',
                                                           'bdmlabother'))
        second = self._enter(patched.PatchedPackage(
            'bdmlabother', series, path=first.path))
        self.assertEqual(first.path, second.path)
        self.assertEqual(['0001-empty.patch'], second.applied)
        self.assertEqual({'bdmlabfake', 'bdmlabother'},
                         set(os.listdir(first.path)))
        self.assertIsNone(second.installed)
        self.assertIsNone(second.note)

    def test_other_base_is_noted(self):
        copy = self._enter(patched.PatchedPackage(
            'bdmlabfake', self._series([(1, 2)], base='0.9')))
        self.assertEqual(['0001-change.patch'], copy.applied)
        self.assertEqual(('1.0', '0.9'), (copy.installed, copy.base))
        self.assertIn('bdmlabfake 1.0 is installed', copy.note)
        self.assertIn('against 0.9', copy.note)

    def test_source_folder_and_its_version(self):
        # Another release of the package, not the one Python imports.
        other = self.useFixture(fixtures.TempDir()).path
        os.makedirs(os.path.join(other, 'bdmlabfake'))
        with open(os.path.join(other, 'bdmlabfake', 'core.py'), 'w') as f:
            f.write('VALUE = 7\n')
        os.makedirs(os.path.join(other, 'bdmlabfake-0.9.dist-info'))
        with open(os.path.join(other, 'bdmlabfake-0.9.dist-info',
                               'METADATA'), 'w') as stream:
            stream.write('Metadata-Version: 2.1\nName: bdmlabfake\n'
                         'Version: 0.9\n')
        copy = self._enter(patched.PatchedPackage(
            'bdmlabfake', self._series([(7, 8)], base='0.9'),
            source=os.path.join(other, 'bdmlabfake')))
        with open(os.path.join(copy.path, 'bdmlabfake', 'core.py')) as f:
            self.assertEqual('VALUE = 8\n', f.read())
        self.assertEqual(('0.9', '0.9', None),
                         (copy.installed, copy.base, copy.note))

    def test_patch_that_does_not_apply_is_named(self):
        fixture = patched.PatchedPackage(
            'bdmlabfake', self._series([(1, 2), (5, 6)], base='0.9'))
        exc = self.assertRaises(exception.PatchDoesNotApply,
                                self._enter, fixture)
        self.assertIn('0002-change.patch', str(exc))
        self.assertIn('bdmlabfake 1.0 (the series is against 0.9)', str(exc))
        self.assertEqual(['0001-change.patch'], fixture.applied)

    def test_keystoneauth_defaults(self):
        fixture = patched.PatchedKeystoneauth()
        self.assertEqual('keystoneauth1', fixture.package)
        self.assertEqual(os.path.join(process.REPO_ROOT, 'patches',
                                      'keystoneauth'), fixture.folder)
        self.assertEqual(patched.series_dir(), patched.PatchedNova().folder)
        self.assertTrue(patched.read_series(fixture.folder))

    def test_keystoneauth_base_is_the_series_test_s(self):
        # The README's title and the series test build on one release.
        with open(os.path.join(process.REPO_ROOT, 'tools',
                               'keystoneauth-series-test.sh')) as stream:
            pinned = re.search(r'^KSA_VERSION=(\S+)$', stream.read(),
                               re.MULTILINE).group(1)
        self.assertEqual(pinned, patched.series_base(
            patched.keystoneauth_series_dir(), 'keystoneauth1'))

    def test_cinderclient_defaults(self):
        fixture = patched.PatchedCinderclient()
        self.assertEqual('cinderclient', fixture.package)
        self.assertEqual('python-cinderclient', fixture.distribution)
        self.assertEqual(os.path.join(process.REPO_ROOT, 'patches',
                                      'python-cinderclient'), fixture.folder)
        self.assertTrue(patched.read_series(fixture.folder))

    def test_cinderclient_base_is_the_series_test_s(self):
        with open(os.path.join(process.REPO_ROOT, 'tools',
                               'cinderclient-series-test.sh')) as stream:
            pinned = re.search(r'^CC_VERSION=(\S+)$', stream.read(),
                               re.MULTILINE).group(1)
        self.assertEqual(pinned, patched.series_base(
            patched.cinderclient_series_dir(), 'python-cinderclient'))

    def test_cinderclient_series_applies_to_the_installed_client(self):
        # The lab's venv has the series' base (upper-constraints.txt).
        fixture = self._enter(patched.PatchedCinderclient())
        self.assertEqual([os.path.basename(p) for p in patched.read_series(
            fixture.folder)], fixture.applied)
        with open(os.path.join(fixture.path, 'cinderclient',
                               'api_versions.py')) as stream:
            self.assertIn('MAX_VERSION = "3.73"', stream.read())

    def test_no_readme_no_base(self):
        self.assertIsNone(patched.series_base(self.series, 'bdmlabfake'))
