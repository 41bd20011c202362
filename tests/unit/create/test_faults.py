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

"""Creator fault paths, F2: a failed list is never "no volume has the key".

Lists fail (503, reset, malformed body) before, between and after POSTs;
every test counts the volumes carrying the key afterwards.
"""

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from bdm_guard import exception
from tests.unit.create import base as create_base

KEY = create_base.KEY
fault = create_base.fault


class TestFailedLists(create_base.FaultTest):
    """F2: a failed list is never "no volume has the key"."""

    resume = True

    def _first_lookup_fails(self, kind):
        old = self.add(status='creating', age=20)
        self.fake.faults = [fault(kind, end=5)]
        result = self.create()
        self.assertEqual('adopted', result.how)
        self.assertEqual(old, result.volume['id'])
        self.assertEqual(0, self.fake.post_count)
        self.assertEqual([old], self.with_key())
        self.assertGreater(result.lookups, 1)

    def test_first_lookup_503_then_adopts(self):
        self._first_lookup_fails('haproxy_503')

    def test_first_lookup_reset_then_adopts(self):
        self._first_lookup_fails('reset')

    def test_first_lookup_malformed_then_adopts(self):
        self._first_lookup_fails('garbage_200')

    def test_lists_never_answer_before_post(self):
        old = self.add(status='available', age=20)
        self.fake.faults = [fault('haproxy_503')]
        exc = self.assertRaises(exception.VolumeLookupFailed, self.create)
        self.assertIsInstance(exc, exception.VolumeCreateUnknown)
        self.assertEqual(KEY, exc.key)
        self.assertEqual(0, exc.posts)
        self.assertEqual(0, self.fake.post_count)
        self.assertLessEqual(self.clock.now, 120)
        self.assertEqual([old], self.with_key())
        self.assertEqual(old, self.settle_and_repair().volume['id'])

    def test_lists_fail_through_grace_no_resend(self):
        self.fake.posts = ['lost_response', 'ok']
        self.fake.faults = [fault('haproxy_503', end=60)]
        result = self.create()
        self.assertEqual('adopted', result.how)
        self.assertEqual(1, self.fake.post_count)
        self.assertEqual([result.volume['id']], self.with_key())

    def test_lists_never_answer_after_unknown_post(self):
        self.fake.posts = ['gateway_504', 'ok']
        self.fake.visible_after = 5
        self.fake.faults = [fault('reset', start=0.001)]
        exc = self.assertRaises(exception.VolumeLookupFailed, self.create)
        self.assertEqual(KEY, exc.key)
        self.assertEqual(1, self.fake.post_count)
        self.assertLessEqual(self.clock.now, 120)
        # The one volume is not duplicated and is found by its key.
        self.assertEqual(1, len(self.with_key()))
        self.settle_and_repair()

    def test_no_resend_until_a_list_after_the_grace_answers(self):
        # A list answered (empty) before the grace ended; lists then fail
        # until well after the volume shows: no resend, it is adopted.
        self.fake.posts = ['lost_response', 'ok']
        self.fake.visible_after = 15
        self.fake.faults = [fault('haproxy_503', start=0.001, end=40)]
        result = self.create()
        self.assertEqual('adopted', result.how)
        self.assertEqual(1, self.fake.post_count)
        self.assertEqual([result.volume['id']], self.with_key())

    def test_lookup_after_ok_post_is_retried(self):
        # 504 made a volume that shows late; the resend's 201 is followed by
        # failing lists: the creator keeps listing and keeps one volume.
        self.fake.posts = ['gateway_504', 'ok']
        self.fake.visible_after = 30
        self.on_post(2, lambda: self.fake.faults.append(
            fault('haproxy_503', start=self.clock(), end=self.clock() + 30)))
        result = self.create()
        self.assertEqual(2, self.fake.post_count)
        self.assertEqual([result.volume['id']], self.with_key())
        self.assertEqual(1, len(result.deleted_duplicates))

    def test_lookup_after_ok_post_never_answers(self):
        self.fake.posts = ['gateway_504', 'ok']
        self.fake.visible_after = 30
        self.on_post(2, lambda: self.fake.faults.append(
            fault('haproxy_503', start=self.clock())))
        exc = self.assertRaises(exception.VolumeLookupFailed, self.create)
        self.assertEqual(2, exc.posts)
        self.assertIn(exc.volume_id, self.with_key())
        self.assertLessEqual(self.clock.now, 120)
        # Two volumes carry the key; the retry the error asks for keeps one.
        self.assertEqual(2, len(self.with_key()))
        result = self.settle_and_repair()
        self.assertEqual(1, len(result.deleted_duplicates))


class TestListOutageProperty(create_base.FaultTest):
    """Random POST faults, lag and list outages: never two survivors."""

    @settings(max_examples=150, deadline=None)
    @given(posts=st.lists(st.sampled_from(
        ['ok', 'lost_request', 'lost_response', 'gateway_504',
         'no_server_503']), min_size=1, max_size=5),
        lag=st.floats(min_value=0, max_value=9.5),
        outage=st.tuples(st.floats(min_value=0, max_value=60),
                         st.floats(min_value=0, max_value=200)),
        kind=st.sampled_from(['haproxy_503', 'reset', 'garbage_200']))
    def test_one_volume_per_key(self, posts, lag, outage, kind):
        with create_base.example_logs():
            self._one_volume(posts, lag, outage, kind)

    def _one_volume(self, posts, lag, outage, kind):
        self.reset()
        self.fake.posts = posts
        self.fake.visible_after = lag
        self.fake.faults = [fault(kind, outage[0], outage[0] + outage[1])]
        try:
            result = self.create()
        except exception.VolumeCreateUnknown:
            result = None
        except exception.VolumeCreateNotSent:
            self.assertEqual([], self.with_key())
            return
        self.fake.faults = []
        self.clock.sleep(3600)
        if result is not None:
            self.assertEqual([result.volume['id']], self.with_key())
        else:
            self.assertLessEqual(len(self.with_key()), 2)
            if self.with_key():
                self.settle_and_repair()
