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

"""Events that stay honest about health and cost.

Health means "this process receives its own pings". Events never cost
more GETs than polling alone, a stopped source is unhealthy, one wait's
miss costs no other wait its health, a shared pool is detected, memory is
bounded and malformed notifications are dropped without raising.
"""

import logging

import fixtures
from oslotest import base

from bdm_guard.internal.events import listener
from bdm_guard.internal.events import watch as watch_mod
from bdm_guard import testing
from tests.unit.events import test_events
from tests.unit import fake_cinder

PROJECT = fake_cinder.PROJECT
OTHER = test_events.OTHER


class TestCost(test_events.EventWaitTest):

    def test_unconfirmed_event_storm_costs_no_more_than_polling(self):
        # 10 "available" events a second, all ahead of what the API shows.
        timeline = [(0, 'creating'), (2, 'downloading'), (100, 'available')]
        vid = self.fake.add_volume(timeline=timeline)
        for i in range(10, 1000):
            self.script.at(i / 10.0, watch_mod.ENDED, vid)
        with self.watch(vid) as waker:
            report = self.wait(vid, waker)
        _, polled = self.poll_only(timeline)
        self.assertEqual('available', report.volume['status'])
        self.assertLessEqual(self.gets(), polled + 1)

    def test_unconfirmed_event_is_an_extra_look_not_a_new_plan(self):
        # The event wakes the wait at 1 s, before its first planned look
        # (2 s): that GET shows "creating". The wait then keeps polling
        # alone's plan: the same GETs at the same times, the same end.
        timeline = [(0, 'creating'), (2, 'downloading'), (100, 'available')]
        vid = self.fake.add_volume(timeline=timeline)
        self.script.at(1.0, watch_mod.ENDED, vid)
        with self.watch(vid) as waker:
            report = self.wait(vid, waker)
        expected, polled = self.poll_only_times(timeline)
        times = self.get_times(vid)
        self.assertEqual(1.0, times[0])
        self.assertEqual([round(t, 6) for t in polled],
                         [round(t, 6) for t in times[1:]])
        self.assertAlmostEqual(expected.elapsed, report.elapsed, places=6)
        self.assertEqual(len(polled) + 1, report.polls)

    def test_event_after_the_planned_look_is_that_look(self):
        # Healthy events stretch the sleep to the backstop; an event that
        # comes after the look polling alone planned is that look, late:
        # the schedule plans from it (no extra GET at the old plan).
        timeline = [(0, 'creating'), (10, 'available')]
        vid = self.fake.add_volume(timeline=timeline)
        self.script.at(5.0, watch_mod.ENDED, vid)
        with self.watch(vid) as waker:
            report = self.wait(vid, waker)
        times = self.get_times(vid)
        self.assertEqual(5.0, times[0])
        self.assertEqual('available', report.volume['status'])
        _, polled = self.poll_only_times(timeline)
        self.assertLessEqual(len(times), len(polled) + 1)

    def test_confirmed_event_still_wakes_at_once(self):
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (30, 'available')])
        self.script.at(30.01, watch_mod.ENDED, vid)
        with self.watch(vid) as waker:
            report = self.wait(vid, waker)
        self.assertEqual(1, self.gets())
        self.assertAlmostEqual(30.01, report.elapsed, places=2)


class TestMissedIsPerWait(test_events.EventWaitTest):

    def test_volume_already_available_is_no_miss(self):
        vid = self.fake.add_volume(status='available')
        with self.watch(vid) as waker:
            wait_report = test_events.wait.wait_for_volume(
                self.client, vid, sleep=self.clock.sleep, clock=self.clock,
                conf=self.conf, waker=waker)
            self.assertFalse(waker.missed)
        self.assertEqual('available', wait_report.volume['status'])
        self.assertEqual(0, self.health.suspected)

    def test_volume_already_downloading_is_no_miss(self):
        vid = self.fake.add_volume(
            timeline=[(0, 'downloading'), (20, 'available')])
        self.script.at(20.01, watch_mod.ENDED, vid)
        with self.watch(vid) as waker:
            test_events.wait.wait_for_volume(
                self.client, vid, sleep=self.clock.sleep, clock=self.clock,
                conf=self.conf, waker=waker)
            self.assertFalse(waker.missed)
        self.assertEqual(0, self.health.suspected)

    def test_change_seen_without_its_event_is_a_miss(self):
        vid = self.fake.add_volume(
            timeline=[(0, 'downloading'), (20, 'available')])
        with self.watch(vid) as waker:
            test_events.wait.wait_for_volume(
                self.client, vid, sleep=self.clock.sleep, clock=self.clock,
                conf=self.conf, waker=waker)
            self.assertTrue(waker.missed)

    def test_a_miss_costs_no_other_wait_its_health(self):
        live = listener.Liveness(5.0, clock=testing.VirtualClock())
        live.pong(live.sending())
        fake_listener = listener.Listener.__new__(listener.Listener)
        fake_listener.liveness = live
        fake_listener.kick = type('Kick', (), {'set': lambda self: None})()
        fake_listener.suspect()
        self.assertEqual((True, 0), live.health())


class TestLivenessHonesty(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.clock = testing.VirtualClock()
        self.live = listener.Liveness(5.0, clock=self.clock)

    def test_stopped_is_unhealthy(self):
        self.live.pong(self.live.sending())
        self.assertTrue(self.live.health()[0])
        self.live.stop()
        self.assertEqual((False, 1), self.live.health())

    def test_foreign_ping_after_start_means_shared_pool(self):
        self.live.pong(self.live.sending())
        other = listener.Liveness(5.0, clock=self.clock)
        self.assertFalse(self.live.pong(other.sending()))
        self.assertTrue(self.live.shared)
        self.live.pong(self.live.sending())
        self.assertFalse(self.live.health()[0])

    def test_ping_left_by_an_earlier_process_is_not_sharing(self):
        old = {'nonce': 'earlier', 'seq': 3,
               'sent': self.live.started_at - 30}
        self.assertFalse(self.live.pong(old))
        self.assertFalse(self.live.shared)
        self.live.pong(self.live.sending())
        self.assertTrue(self.live.health()[0])


class TestListenerInput(base.BaseTestCase):
    """What the listener's callback is given, straight from the broker."""

    def setUp(self):
        super().setUp()
        self.logger = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG, format='%(levelname)s %(message)s'))
        # The events below carry virtual receive times: the registry's
        # horizon must use the same clock, not the machine's uptime.
        self.clock = testing.VirtualClock()
        self.registry = watch_mod.Registry(health=lambda: (True, 0),
                                           clock=self.clock)
        self.listener = listener.Listener.__new__(listener.Listener)
        self.listener.registry = self.registry
        self.listener.pool = 'bdm_guard-h1'
        self.listener.liveness = listener.Liveness(5.0)

    def test_unhashable_event_type_is_dropped(self):
        for event_type in (['volume.create.end'], {'a': 1}, None, 7):
            self.listener.received('INFO', event_type, {'volume_id': 'v'})
        self.listener.received(['INFO'], 'volume.create.end',
                               {'volume_id': 'v'})
        self.assertEqual(0, sum(self.registry.counts.values()))

    def test_non_string_tenant_is_not_no_project(self):
        for tenant in (42, ['p'], {'id': PROJECT}, True):
            self.assertIsNone(watch_mod.event_from(
                'INFO', 'volume.create.end',
                {'volume_id': 'v', 'tenant_id': tenant}))
            self.assertIsNone(watch_mod.event_from(
                'INFO', 'volume.create.end',
                {'volume_id': 'v', 'volume_properties': {
                    'project_id': tenant}}))
        event = watch_mod.event_from('INFO', 'volume.create.end',
                                     {'volume_id': 'v'})
        self.assertIsNone(event.tenant_id)

    def test_shared_pool_warns_once_and_wakes_waits(self):
        other = listener.Liveness(5.0)
        woken = []
        self.registry.wake_all = lambda: woken.append(1)
        for _ in range(5):
            self.listener.received('INFO', listener.PING_EVENT,
                                   other.sending())
        self.assertEqual(1, self.logger.output.count(
            'WARNING Pool bdm_guard-h1 is shared with'))
        self.assertEqual([1], woken)
        self.assertFalse(self.listener.liveness.health()[0])

    def test_events_kept_for_one_unknown_id_are_bounded(self):
        watch = watch_mod.Watch(self.registry, PROJECT, 60.0, lambda n: 1.0)
        self.registry.add(watch)
        for i in range(10000):
            kind = (watch_mod.STARTED, watch_mod.ENDED)[i % 2]
            self.registry.dispatch(watch_mod.Event(kind, 'v1', PROJECT,
                                                   float(i)))
        self.assertLessEqual(len(self.registry.recent['v1']),
                             watch_mod.RECENT_PER_VOLUME)
        watch.bind('v1')
        self.assertEqual(1, watch.seen[watch_mod.STARTED])
        self.assertEqual(1, watch.seen[watch_mod.ENDED])
        watch.close()

    def test_other_project_warnings_are_aggregated(self):
        self.useFixture(fixtures.MockPatchObject(
            watch_mod, 'FOREIGN', watch_mod._ForeignLog(
                clock=testing.VirtualClock())))
        watch = watch_mod.Watch(self.registry, PROJECT, 60.0, lambda n: 1.0)
        self.registry.add(watch, 'v1')
        for _ in range(500):
            self.registry.dispatch(watch_mod.Event(watch_mod.ENDED, 'v1',
                                                   OTHER, 0.0))
        self.assertEqual(500, watch.ignored)
        self.assertEqual(1, self.logger.output.count('WARNING Ignored'))
        self.assertEqual(499, self.logger.output.count(
            'DEBUG Ignored a notification'))
        watch.close()
