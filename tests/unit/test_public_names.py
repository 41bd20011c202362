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

"""Every public name 0.x documented still imports and works.

The names are those of ``doc/source/reference/index.rst`` in 0.x (``git
log -p -- doc/source/reference``: the modules' ``:members:``, and the
attributes their docstrings listed). A name renamed since answers under
its 0.x name too, with a ``DeprecationWarning`` (debtcollector), until the
release that removes it. Not here: ``bdm_guard.policy``,
``bdm_guard.reconcile`` and the lab's exceptions (``SimulationError``,
``LabError``, ``InvalidScenario``), removed from the library before 0.1.0
with an upgrade note (``layout-one-path``).
"""

import importlib
import uuid
import warnings

from oslotest import base

from bdm_guard import create
from bdm_guard import exception
from bdm_guard import testing
from bdm_guard import wait
from tests.unit.create import base as create_base

#: ``{module: [name]}`` that 0.x documented and that still stand as they
#: were.
NAMES = {
    'bdm_guard.create': ['create_volume', 'create_and_wait', 'CreateResult',
                         'key_for_bdm', 'request_id_for_key',
                         'IDEMPOTENCY_METADATA_KEY'],
    'bdm_guard.wait': ['wait_for_volume', 'WaitReport', 'Waiter'],
    'bdm_guard.cinder': ['VolumeClient', 'check_volume_id'],
    'bdm_guard.client': ['VolumeClient'],
    'bdm_guard.outcome': ['Outcome', 'classify_response',
                          'classify_exception', 'parse_retry_after'],
    'bdm_guard.testing': ['VirtualClock'],
    'bdm_guard.db': ['EngineReadYourWrites', 'FacadeReadYourWrites',
                     'NOT_FOUND', 'Stats', 'older_than', 'version_below'],
    'bdm_guard.exception': [
        'BdmGuardException', 'InvalidInput', 'InvalidVolumeId',
        'InvalidIdempotencyKey', 'VolumeWaitError', 'VolumeVanished',
        'VolumeWaitUnauthorized', 'VolumeCreateError', 'OverQuota',
        'IdempotencyConflict', 'VolumeCreateRejected', 'VolumeCreateNotSent',
        'VolumeCreateUnknown', 'VolumeLookupFailed', 'CinderUnavailable',
        'CinderConfigError', 'NovaIncompatible', 'UnreadableInput',
        'InvalidLogFormat'],
}

#: ``{(module, 0.x name): the name now}``: deprecated, same object.
RENAMED = {
    ('bdm_guard.exception', 'VolumeCreateFailed'): 'VolumeWaitFailed',
    ('bdm_guard.exception', 'VolumeCreateTimeout'): 'VolumeWaitTimeout',
}

#: 0.x's attributes of the documented classes, as ``{class: [name]}``.
ATTRIBUTES = {
    create.CreateResult: ['volume', 'posts', 'deleted_duplicates',
                          'undeleted_duplicates', 'created_at', 'key'],
    wait.WaitReport: ['volume', 'polls', 'elapsed', 'statuses', 'retries',
                      'deadline'],
}

#: ``{(class, 0.x attribute): the attribute now}``: deprecated.
RENAMED_ATTRIBUTES = {
    (create.CreateResult, 'outcome'): 'how',
    (create.CreateResult, 'reconciles'): 'lookups',
}


def _deprecations(seen):
    return [w for w in seen if issubclass(w.category, DeprecationWarning)]


class TestNames(base.BaseTestCase):

    def _import(self, module, name):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter('always')
            found = getattr(importlib.import_module(module), name)
        return found, _deprecations(seen)

    def test_documented_names_import_without_warning(self):
        for module, names in NAMES.items():
            for name in names:
                found, seen = self._import(module, name)
                self.assertIsNotNone(found, '%s.%s' % (module, name))
                self.assertEqual([], seen, '%s.%s' % (module, name))

    def test_from_import_works(self):
        namespace = {}
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter('always')
            exec('from bdm_guard.exception import VolumeCreateFailed',
                 namespace)
        self.assertIs(exception.VolumeWaitFailed,
                      namespace['VolumeCreateFailed'])
        self.assertEqual(1, len(_deprecations(seen)))

    def test_renamed_names_warn_and_are_the_same(self):
        for (module, old), new in RENAMED.items():
            found, seen = self._import(module, old)
            self.assertIs(getattr(importlib.import_module(module), new),
                          found, old)
            self.assertEqual(1, len(seen), old)
            self.assertIn(new, str(seen[0].message))
            self.assertIn('0.3.0', str(seen[0].message))
            self.assertEqual(__file__, seen[0].filename)

    def test_wait_errors_are_no_create_errors(self):
        for name in ('VolumeWaitFailed', 'VolumeWaitTimeout',
                     'VolumeWaitUnauthorized', 'VolumeVanished'):
            cls = getattr(exception, name)
            self.assertTrue(issubclass(cls, exception.VolumeWaitError))
            self.assertFalse(issubclass(cls, exception.VolumeCreateError))

    def test_documented_attributes(self):
        result = create.CreateResult({'id': 'v'}, 'adopted', posts=2,
                                     lookups=3, key='k')
        report = wait.WaitReport()
        for cls, names in ATTRIBUTES.items():
            instance = result if cls is create.CreateResult else report
            for name in names:
                self.assertTrue(hasattr(instance, name), name)
        for (cls, old), new in RENAMED_ATTRIBUTES.items():
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter('always')
                value = getattr(result, old)
            self.assertEqual(getattr(result, new), value, old)
            self.assertEqual(1, len(_deprecations(seen)), old)
            self.assertEqual(__file__, seen[0].filename)

    def test_renamed_exception_value(self):
        exc = exception.VolumeCreateUnknown(key='k', posts=1, lookups=4,
                                            reason='r')
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter('always')
            self.assertEqual(4, exc.reconciles)
        self.assertEqual(1, len(_deprecations(seen)))
        self.assertRaises(AttributeError, getattr, exc, 'no_such_value')


class TestTheyStillWork(create_base.FakeCinderTest):
    """0.x's documented calls, as 0.x's documentation wrote them."""

    def test_create_and_wait_as_0x_documented(self):
        key = create.key_for_bdm(str(uuid.uuid4()), str(uuid.uuid4()))
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter('always')
            result, report = create.create_and_wait(
                self.client, 20, image_id=str(uuid.uuid4()),
                idempotency_key=key, allocate_retries=60,
                allocate_retries_interval=3, sleep=self.clock.sleep,
                clock=self.clock)
            self.assertEqual('created', result.outcome)
        self.assertEqual('available', report.volume['status'])
        self.assertEqual(3, len(_deprecations(seen)))

    def test_old_except_clause_catches_the_wait_failure(self):
        vid = self.fake.add_volume(timeline=[(0.0, 'creating'),
                                             (2.0, 'error')])
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)
            failed = exception.VolumeCreateFailed
            timeout = exception.VolumeCreateTimeout
        self.assertRaises(failed, wait.wait_for_volume, self.client, vid,
                          sleep=self.clock.sleep, clock=self.clock)
        vid = self.fake.add_volume(timeline=[(0.0, 'creating')])
        self.assertRaises(timeout, wait.wait_for_volume, self.client, vid,
                          sleep=self.clock.sleep, clock=self.clock)

    def test_virtual_clock(self):
        clock = testing.VirtualClock()
        clock.sleep(2.5)
        self.assertEqual(2.5, clock() - testing.VirtualClock()())
