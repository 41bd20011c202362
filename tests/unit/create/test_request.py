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

"""The named argument groups: VolumeRequest, Budget, and what
create_and_wait forwards to the wait; 0.x's flat forms, with a warning."""

import dataclasses
import uuid
import warnings

from oslotest import base

from bdm_guard import create
from bdm_guard import exception
from bdm_guard import opts
from bdm_guard import wait
from tests.unit.create import base as create_base
from tests.unit import fake_cinder

KEY = create_base.KEY
IMAGE = str(uuid.UUID(int=7, version=4))


class TestVolumeRequest(base.BaseTestCase):

    def test_fields(self):
        request = create.VolumeRequest(3, image_id=IMAGE, name='n',
                                       metadata={'a': 'b'})
        self.assertEqual(3, request.size_gb)
        self.assertTrue(request.sourced)
        self.assertFalse(create.VolumeRequest(1).sourced)

    def test_checked_when_made(self):
        for bad in (dict(size_gb=0), dict(size_gb=True), dict(size_gb='1'),
                    dict(size_gb=1, image_id='x'),
                    dict(size_gb=1, image_id=IMAGE, snapshot_id=IMAGE),
                    dict(size_gb=1, metadata=['a']),
                    dict(size_gb=1, metadata={'a': 1}),
                    dict(size_gb=1, metadata={
                        create.IDEMPOTENCY_METADATA_KEY: 'k'})):
            self.assertRaises(exception.InvalidInput, create.VolumeRequest,
                              **bad)

    def test_metadata_is_a_copy(self):
        meta = {'a': 'b'}
        request = create.VolumeRequest(1, metadata=meta)
        meta['a'] = 'changed'
        self.assertEqual({'a': 'b'}, request.metadata)

    def test_frozen(self):
        request = create.VolumeRequest(1)
        self.assertRaises(dataclasses.FrozenInstanceError, setattr,
                          request, 'size_gb', 2)

    def test_not_a_request_is_refused(self):
        exc = self.assertRaises(exception.InvalidInput, create.create_volume,
                                None, request={'size': 1},
                                idempotency_key=KEY)
        self.assertIn('VolumeRequest', str(exc))
        # Second, anything but a request is 0.x's size, checked as one.
        exc = self.assertRaises(exception.InvalidInput, create.create_volume,
                                None, {'size': 1}, idempotency_key=KEY)
        self.assertIn('size_gb must be an int', str(exc))


class TestBudget(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.conf = opts.get_conf(None)

    def test_checked_when_made(self):
        for bad in (dict(size_gb=-1), dict(size_gb=1.5),
                    dict(allocate_retries=True),
                    dict(allocate_retries_interval=float('nan')),
                    dict(per_gib_floor=-0.1), dict(per_gib_floor='1')):
            self.assertRaises(exception.InvalidInput, wait.Budget, **bad)

    def test_seconds(self):
        self.assertEqual(180.0, wait.Budget().seconds(self.conf))
        self.assertEqual(180.0 + 20.0 * 10,
                         wait.Budget(size_gb=10).seconds(self.conf))
        self.assertEqual(180.0 + 30.0 * 10, wait.Budget(
            size_gb=10, per_gib_floor=30.0).seconds(self.conf))
        # nova's own budget wins when it is longer: 61 x 3 s.
        self.assertEqual(183.0, wait.Budget.nova_defaults().seconds(
            self.conf))

    def test_for_size(self):
        budget = wait.Budget.nova_defaults(per_gib_floor=1.0)
        self.assertEqual(wait.Budget(5, 60, 3, 1.0), budget.for_size(5))
        self.assertIsNone(budget.size_gb)

    def test_not_a_budget_is_refused(self):
        exc = self.assertRaises(exception.InvalidInput, wait.wait_for_volume,
                                None, str(uuid.uuid4()), budget=600)
        self.assertIn('Budget', str(exc))


class TestCreateAndWaitForwards(create_base.FakeCinderTest):
    """create_and_wait passes every wait argument on (0.x dropped two)."""

    def run_it(self, request, **kw):
        return create.create_and_wait(
            self.client, request, idempotency_key=KEY,
            sleep=self.clock.sleep, clock=self.clock, **kw)

    def test_per_gib_floor_reaches_the_wait(self):
        _, report = self.run_it(
            create.VolumeRequest(4, image_id=IMAGE),
            budget=wait.Budget(per_gib_floor=100.0))
        self.assertEqual(180.0 + 100.0 * 4, report.deadline)

    def test_blank_volume_gets_no_per_gib_allowance(self):
        _, report = self.run_it(create.VolumeRequest(4),
                                budget=wait.Budget(size_gb=50,
                                                   per_gib_floor=100.0))
        self.assertEqual(180.0, report.deadline)

    def test_on_retry_reaches_the_wait(self):
        self.fake.faults = [{'from': 0, 'to': 3, 'kind': 'haproxy_503',
                             'path': fake_cinder.VOLUME_GET}]
        retries = []
        _, report = self.run_it(
            create.VolumeRequest(1),
            on_retry=lambda cause, elapsed: retries.append(cause))
        self.assertEqual('available', report.volume['status'])
        self.assertTrue(retries)
        self.assertEqual(sum(report.retries.values()), len(retries))
        self.assertEqual(set(report.retries), set(retries))

    def test_learner_reaches_the_wait(self):
        calls = []

        class Learner(create_base.completion.Learner):
            def learn(self, *args, **kwargs):
                calls.append('learn')
                return super().learn(*args, **kwargs)
        conf = opts.get_conf(None)
        self.addCleanup(conf.clear_override, 'poll_schedule', 'bdm_guard')
        conf.set_override('poll_schedule', 'completion', 'bdm_guard')
        learner = Learner()
        self.run_it(create.VolumeRequest(1), conf=conf, learner=learner)
        self.assertTrue(calls)


class TestFlatForms(create_base.FakeCinderTest):
    """0.x's flat keywords still work, and say they are deprecated."""

    def caught(self, func, *args, **kwargs):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter('always')
            value = func(*args, **kwargs)
        return value, [w for w in seen
                       if issubclass(w.category, DeprecationWarning)]

    def test_create_volume_size_second(self):
        result, seen = self.caught(
            create.create_volume, self.client, 3, idempotency_key=KEY,
            image_id=IMAGE, name='n', sleep=self.clock.sleep,
            clock=self.clock)
        self.assertEqual(3, result.volume['size'])
        self.assertEqual(1, len(seen))
        self.assertIn('image_id, name, size_gb', str(seen[0].message))
        self.assertIn('VolumeRequest', str(seen[0].message))
        self.assertEqual(__file__, seen[0].filename)

    def test_create_and_wait_flat(self):
        (result, report), seen = self.caught(
            create.create_and_wait, self.client, 2, idempotency_key=KEY,
            image_id=IMAGE, allocate_retries=100,
            allocate_retries_interval=3, sleep=self.clock.sleep,
            clock=self.clock)
        self.assertEqual('available', report.volume['status'])
        self.assertEqual(303.0, report.deadline)
        self.assertEqual(2, len(seen))
        self.assertEqual([__file__, __file__], [w.filename for w in seen])

    def test_wait_for_volume_flat(self):
        vid = self.fake.add_volume(size=1)
        report, seen = self.caught(
            wait.wait_for_volume, self.client, vid, size_gb=5,
            allocate_retries=1, allocate_retries_interval=1,
            per_gib_floor=50.0, sleep=self.clock.sleep, clock=self.clock)
        self.assertEqual(180.0 + 50.0 * 5, report.deadline)
        self.assertEqual(1, len(seen))
        self.assertIn('Budget', str(seen[0].message))
        self.assertEqual(__file__, seen[0].filename)

    def test_new_and_flat_together_is_a_type_error(self):
        vid = self.fake.add_volume(size=1)
        self.assertRaises(TypeError, wait.wait_for_volume, self.client, vid,
                          budget=wait.Budget(), size_gb=5)
        self.assertRaises(TypeError, create.create_volume, self.client,
                          create.VolumeRequest(1), idempotency_key=KEY,
                          name='n')
        self.assertRaises(TypeError, create.create_volume, self.client, 1,
                          idempotency_key=KEY, size_gb=1)

    def test_bad_flat_input_is_still_invalid_input(self):
        self.assertRaises(exception.InvalidInput, create.create_volume,
                          self.client, 0, idempotency_key=KEY)
        self.assertRaises(exception.InvalidInput, wait.wait_for_volume,
                          self.client, str(uuid.uuid4()),
                          allocate_retries=-1)
        self.assertEqual([], self.fake.requests)

    def test_new_forms_do_not_warn(self):
        (_, report), seen = self.caught(
            create.create_and_wait, self.client,
            create.VolumeRequest(2, image_id=IMAGE), idempotency_key=KEY,
            budget=wait.Budget.nova_defaults(), sleep=self.clock.sleep,
            clock=self.clock)
        self.assertEqual([], seen)
