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

"""Creator edge cases: ranking, terminal answers, conflicts, the deadline.

F3 (error volumes), F4 (413/400 after an unknown POST), F5 (conflict after
this call's POST), F6 (no sleep past create_timeout), F11/F12 (malformed
metadata); every test counts the volumes carrying the key afterwards.
"""

from bdm_guard import exception
from bdm_guard.internal.create import dedupe
from bdm_guard.internal.create import lookup
from tests.unit.create import base as create_base

KEY = create_base.KEY
KEY_META = create_base.KEY_META
fault = create_base.fault


class TestRanking(create_base.FaultTest):
    """F3: an error volume is never kept while a usable one exists."""

    resume = True

    def test_older_error_volume_is_deleted(self):
        bad = self.add(status='error', age=30)
        good = self.add(status='available', age=29)
        result = self.create()
        self.assertEqual(good, result.volume['id'])
        self.assertEqual([bad], result.deleted_duplicates)
        self.assertEqual([good], self.with_key())

    def test_creating_beats_error(self):
        bad = self.add(status='error', age=30)
        good = self.add(status='creating', age=2)
        result = self.create()
        self.assertEqual(good, result.volume['id'])
        self.assertEqual([good], self.with_key())
        self.assertIn(bad, self.fake.deleted)

    def test_attached_error_volume_is_left(self):
        bad = self.add(status='error', age=30)
        self.fake.volumes[bad]['attachments'] = [{'server_id': 'x'}]
        good = self.add(status='available', age=29)
        result = self.create()
        self.assertEqual(good, result.volume['id'])
        self.assertEqual([bad], result.undeleted_duplicates)

    def test_only_error_volumes_keeps_oldest(self):
        first = self.add(status='error', age=30)
        second = self.add(status='error', age=29)
        result = self.create()
        self.assertEqual(first, result.volume['id'])
        self.assertEqual([second], result.deleted_duplicates)

    def test_usability_order(self):
        pending = ['creating', 'downloading']
        vols = [{'id': s, 'status': s, 'created_at': '1'} for s in
                ('error', 'maintenance', 'creating', 'in-use', 'available',
                 'error_restoring')]
        ranked = sorted(vols, key=lambda v: dedupe.usability(v, pending))
        self.assertEqual(['available', 'in-use', 'creating', 'maintenance',
                          'error', 'error_restoring'],
                         [v['id'] for v in ranked])


class TestTerminalAfterUnknown(create_base.FaultTest):
    """F4: a 413/400 after an unknown POST never hides the first volume."""

    def test_volume_showing_by_then_is_adopted(self):
        self.fake.posts = ['gateway_504', 'over_quota']
        self.fake.visible_after = 10 ** 6
        # The row replicates just as cinder answers 413.
        self.on_post(2, lambda: setattr(self.fake, 'visible_after', 0))
        result = self.create()
        self.assertEqual('adopted', result.how)
        self.assertEqual(2, self.fake.post_count)
        self.assertEqual([result.volume['id']], self.with_key())

    def test_over_quota_carries_the_key(self):
        self.fake.posts = ['gateway_504', 'over_quota']
        self.fake.visible_after = 25
        exc = self.assertRaises(exception.OverQuota, self.create)
        self.assertEqual(KEY, exc.key)
        self.assertTrue(exc.uncertain)
        self.assertEqual('gigabytes', exc.quota)
        self.assertEqual(1, len(self.with_key()))
        self.settle_and_repair()

    def test_rejected_carries_the_key(self):
        self.fake.posts = ['lost_response', 'rejected']
        self.fake.visible_after = 25
        exc = self.assertRaises(exception.VolumeCreateRejected, self.create)
        self.assertEqual(KEY, exc.key)
        self.assertTrue(exc.uncertain)
        self.assertEqual(400, exc.code)
        self.assertEqual(1, len(self.with_key()))
        self.settle_and_repair()

    def test_plain_rejection_is_certain(self):
        self.fake.posts = ['rejected']
        exc = self.assertRaises(exception.VolumeCreateRejected, self.create)
        self.assertEqual(KEY, exc.key)
        self.assertFalse(exc.uncertain)
        self.assertEqual([], self.with_key())


class TestConflictAfterPost(create_base.FaultTest):
    """F5: a conflict seen after this call's POST deletes its own volume."""

    def test_own_volume_deleted_other_left(self):
        self.fake.visible_after = 3
        other = self.add(size=20, status='available')
        self.fake.posts = ['lost_response']
        exc = self.assertRaises(exception.IdempotencyConflict, self.create)
        self.assertEqual(other, exc.volume_id)
        self.assertEqual([other], self.with_key())
        self.assertEqual(1, len(exc.deleted_volumes))
        self.assertEqual(exc.deleted_volumes, self.fake.deleted)
        self.assertEqual([], exc.undeleted_volumes)

    def test_conflict_before_post_deletes_nothing(self):
        other = self.add(size=20, status='available')
        exc = self.assertRaises(exception.IdempotencyConflict, self.create,
                                resume=True)
        self.assertEqual([], exc.deleted_volumes)
        self.assertEqual([other], self.with_key())
        self.assertEqual([], self.fake.deleted)


class TestDeadline(create_base.FaultTest):
    """F6: no sleep of a create goes past create_timeout."""

    def throttle(self, retry_after):
        self.fake.posts = ['throttled']
        self.fake.retry_after = retry_after
        self.assertRaises(exception.VolumeCreateNotSent, self.create)
        self.assertLessEqual(self.clock.now, 120)
        self.assertLessEqual(sum(self.clock.sleeps), 120)
        self.assertEqual([], self.with_key())

    def test_retry_after_past_deadline_stops_at_once(self):
        self.throttle('3600')
        self.assertEqual(1, self.fake.post_count)
        self.assertEqual([], self.clock.sleeps)

    def test_retry_after_is_honoured_until_the_deadline(self):
        self.throttle('50')
        self.assertEqual([50.0, 50.0], self.clock.sleeps)
        self.assertEqual(3, self.fake.post_count)

    def test_non_finite_retry_after(self):
        for value in ('inf', 'nan', '1e400'):
            self.throttle(value)

    def test_grace_longer_than_timeout(self):
        self.conf.set_override('reconcile_grace', 300, group='bdm_guard')
        self.conf.set_override('create_timeout', 20, group='bdm_guard')
        self.fake.posts = ['gateway_504']
        self.fake.visible_after = 10 ** 6
        self.assertRaises(exception.VolumeCreateUnknown, self.create)
        self.assertLessEqual(self.clock.now, 20)
        self.assertEqual(1, self.fake.post_count)
        self.settle_and_repair()

    def test_duplicate_delete_stops_at_deadline(self):
        self.conf.set_override('create_timeout', 20, group='bdm_guard')
        kept = self.add(status='available', age=30)
        self.fake.ready_after = 10 ** 6
        stuck = self.add(status='creating', age=29)
        result = self.create(resume=True)
        self.assertEqual(kept, result.volume['id'])
        self.assertEqual([stuck], result.undeleted_duplicates)
        self.assertLessEqual(self.clock.now, 20)


class TestMalformed(create_base.FaultTest):
    """F11, F12: bad metadata in a request or in a list answer."""

    def test_metadata_not_a_mapping(self):
        for metadata in (['a'], 'ab', 5, [('a', 'b')]):
            self.assertRaises(exception.InvalidInput, self.create,
                              metadata=metadata)
        self.assertEqual([], self.fake.requests)

    def test_list_entries_with_bad_metadata_are_skipped(self):
        self.fake.list_extra = [
            {'id': 'x1', 'status': 'available', 'metadata': [KEY_META]},
            {'id': 'x2', 'status': 'available', 'metadata': KEY},
            {'id': 'x3', 'status': 'available', 'metadata': None},
            'junk', None, {'metadata': {KEY_META: KEY}}]
        result = self.create(resume=True)
        self.assertEqual('created', result.how)
        self.assertEqual([result.volume['id']], self.with_key())
        self.assertEqual([], self.fake.deleted)

    def test_list_by_key_tells_failure_from_none(self):
        self.assertEqual([], lookup.list_by_key(self.client, KEY))
        for kind in ('haproxy_503', 'reset', 'garbage_200', 'http_404'):
            self.fake.faults = [fault(kind)]
            self.assertIsNone(lookup.list_by_key(self.client, KEY))
