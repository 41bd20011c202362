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

"""The event waker on a virtual clock, and the listener on ``fake:``."""

import random
import threading

from oslo_config import cfg
import oslo_messaging
from oslotest import base

from bdm_guard import create
from bdm_guard import events
from bdm_guard.internal.events import listener
from bdm_guard.internal.events import watch as watch_mod
from bdm_guard.internal.wait import completion
from bdm_guard.internal.wait import schedule
from bdm_guard import opts
from bdm_guard import testing
from bdm_guard import wait
from tests.unit.create import base as create_base
from tests.unit import fake_cinder

PROJECT = fake_cinder.PROJECT
OTHER = '0ther000-0000-4000-8000-000000000000'


class Health:
    """A listener health the test sets."""

    def __init__(self, healthy=True):
        self.healthy, self.epoch, self.suspected = healthy, 0, 0

    def __call__(self):
        return self.healthy, self.epoch

    def suspect(self):
        self.suspected += 1


class Script:
    """Deliver events at virtual times while a watch sleeps."""

    def __init__(self, clock, registry):
        self.clock, self.registry = clock, registry
        self.events = []

    def at(self, when, kind, volume_id, tenant=PROJECT):
        self.events.append((when, watch_mod.Event(kind, volume_id, tenant,
                                                  when)))
        self.events.sort(key=lambda item: item[0])

    def __call__(self, news, seconds):
        end = self.clock() + seconds
        while self.events and self.events[0][0] <= end:
            when, event = self.events.pop(0)
            self.clock.now = max(self.clock.now, when)
            self.registry.dispatch(event)
            if news.is_set():
                return True
        self.clock.sleep(max(0.0, end - self.clock()))
        return news.is_set()


class EventWaitTest(create_base.FakeCinderTest):

    def setUp(self):
        super().setUp()
        self.health = Health()
        self.registry = watch_mod.Registry(health=self.health,
                                           suspect=self.health.suspect,
                                           clock=self.clock)
        self.script = Script(self.clock, self.registry)
        self.conf = opts.get_conf(None)

    def watch(self, volume_id=None, project=PROJECT):
        made = watch_mod.Watch(
            self.registry, project,
            self.conf.bdm_guard_events.backstop_interval,
            schedule.confirm_intervals(self.conf), wait=self.script)
        return self.registry.add(made, volume_id)

    def wait(self, vid, waker, **kw):
        return wait.wait_for_volume(
            self.client, vid, sleep=self.clock.sleep, clock=self.clock,
            rng=random.Random(1), waker=waker, conf=self.conf,
            created_at=self.clock(), **kw)

    def gets(self):
        return len([r for r in self.fake.requests if r[1] == 'GET'])

    def poll_only(self, timeline):
        report, times = self.poll_only_times(timeline)
        return report, len(times)

    def poll_only_times(self, timeline):
        """Polling alone: its report and its GETs' times since the create."""
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock)
        client = fake_cinder.make_client(self, fake)
        vid = fake.add_volume(timeline=timeline)
        report = wait.wait_for_volume(client, vid, sleep=clock.sleep,
                                      clock=clock, rng=random.Random(1),
                                      conf=self.conf, created_at=clock(),
                                      learner=completion.Learner())
        created = fake.volumes[vid]['created']
        return report, [r[0] - created for r in fake.requests
                        if r[1] == 'GET']

    def get_times(self, vid):
        """This test's GETs' times since ``vid``'s create."""
        created = self.fake.volumes[vid]['created']
        return [r[0] - created for r in self.fake.requests if r[1] == 'GET']


class TestEventWait(EventWaitTest):

    def test_end_event_wakes_one_get(self):
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (2, 'downloading'), (40, 'available')])
        self.script.at(1, watch_mod.STARTED, vid)
        self.script.at(40.01, watch_mod.ENDED, vid)
        with self.watch(vid) as waker:
            report = self.wait(vid, waker)
        self.assertEqual(1, self.gets())
        self.assertAlmostEqual(40.01, report.elapsed, places=2)
        _, polled = self.poll_only(
            [(0, 'creating'), (2, 'downloading'), (40, 'available')])
        self.assertGreater(polled, 4)

    def test_other_volumes_and_projects_wake_nothing(self):
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (30, 'available')])
        self.script.at(5, watch_mod.ENDED, fake_cinder.uuid.uuid4().hex)
        self.script.at(6, watch_mod.ENDED, vid, tenant=OTHER)
        self.script.at(30.5, watch_mod.ENDED, vid)
        with self.watch(vid) as waker:
            self.wait(vid, waker)
            self.assertEqual(1, waker.ignored)
        self.assertEqual(1, self.gets())
        self.assertEqual(1, self.registry.counts['dropped'])

    def test_unhealthy_polls_on_the_schedule(self):
        timeline = [(0, 'creating'), (2, 'downloading'), (70, 'available')]
        vid = self.fake.add_volume(timeline=timeline)
        self.health.healthy = False
        with self.watch(vid) as waker:
            report = self.wait(vid, waker)
        expected, polled = self.poll_only(timeline)
        self.assertEqual(polled, self.gets())
        self.assertEqual(expected.elapsed, report.elapsed)

    def test_missed_start_falls_back(self):
        timeline = [(0, 'creating'), (2, 'downloading'), (150, 'available')]
        vid = self.fake.add_volume(timeline=timeline)
        with self.watch(vid) as waker:
            report = self.wait(vid, waker)
            self.assertTrue(waker.missed)
        self.assertEqual(1, self.health.suspected)
        expected, _ = self.poll_only(timeline)
        # The first GET came at the backstop, then the schedule: never
        # later than polling alone by more than the backstop.
        self.assertLessEqual(report.elapsed, expected.elapsed + 60.0)
        self.assertLessEqual(report.deadline, expected.deadline)

    def test_early_available_event_confirms_on_the_schedule(self):
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (20, 'available')])
        self.script.at(10, watch_mod.ENDED, vid)
        with self.watch(vid) as waker:
            report = self.wait(vid, waker)
        self.assertEqual('available', report.volume['status'])
        # Woken at 10 (still creating), then 0.5 s steps ramping: found
        # within one schedule step of 20 s, not at the 60 s backstop.
        self.assertLess(report.elapsed, 26.0)
        self.assertGreaterEqual(report.elapsed, 20.0)

    def test_event_before_the_volume_shows_confirms_on_the_schedule(self):
        # simulate, seed faults: the end event came while the read-after-
        # write lag still hid the volume (GET 404); the wait then slept the
        # 60 s backstop (11 of 10,000 waits, max lag 60.1 s).
        self.fake.visible_after = 3.0
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (1, 'downloading'), (2, 'available')])
        self.script.at(1, watch_mod.STARTED, vid)
        self.script.at(2.05, watch_mod.ENDED, vid)
        with self.watch() as waker:
            waker.bind(vid)
            report = self.wait(vid, waker)
        self.assertEqual('available', report.volume['status'])
        # Woken at 2.05 (404), then the schedule's steps: found within one
        # step of the volume showing at 3 s, not at the backstop.
        self.assertLess(report.elapsed, 6.0)
        _, polled = self.poll_only(
            [(0, 'creating'), (1, 'downloading'), (2, 'available')])
        self.assertLessEqual(self.gets(), polled + 1)

    def test_duplicate_events_one_get(self):
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (10, 'available')])
        for when in (10.1, 10.1, 10.2):
            self.script.at(when, watch_mod.ENDED, vid)
        with self.watch(vid) as waker:
            self.wait(vid, waker)
        self.assertEqual(1, self.gets())

    def test_loss_of_health_mid_wait_resumes_polling(self):
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (100, 'available')])
        with self.watch(vid) as waker:
            self.assertEqual(60.0, waker.backstop(1.0))
            self.health.healthy, self.health.epoch = False, 1
            self.assertEqual(1.0, waker.backstop(1.0))
            self.health.healthy = True
            # Healthy again, but events may have been lost: poll until a
            # GET resyncs.
            self.assertEqual(1.0, waker.backstop(1.0))
            report = self.wait(vid, waker)
        self.assertEqual('available', report.volume['status'])

    def test_unbound_watch_is_bound_by_the_wait(self):
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (12, 'available')])
        self.script.at(12.01, watch_mod.ENDED, vid)
        with self.watch() as waker:
            self.wait(vid, waker)
            self.assertEqual(vid, waker.volume_id)
        self.assertEqual(1, self.gets())

    def test_fresh_watch_spares_the_get_at_once(self):
        # nova's wait function is given only the volume id (no
        # created_at). A watch taken before the POST still says the volume
        # was just created: no GET at once, one GET on the event.
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (12, 'available')])
        self.script.at(12.01, watch_mod.ENDED, vid)
        with self.watch() as waker:
            waker.bind(vid)
            report = wait.wait_for_volume(
                self.client, vid, sleep=self.clock.sleep, clock=self.clock,
                rng=random.Random(1), waker=waker, conf=self.conf)
        self.assertEqual(1, self.gets())
        self.assertEqual(1, report.polls)
        self.assertAlmostEqual(12.01, report.elapsed, places=2)

    def test_watch_for_a_given_id_looks_at_once(self):
        # A watch taken for an id it is given may have missed events sent
        # before: the wait looks at once, then sleeps on the events.
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (12, 'available')])
        self.script.at(12.01, watch_mod.ENDED, vid)
        with self.watch(vid) as waker:
            self.assertFalse(waker.fresh)
            wait.wait_for_volume(
                self.client, vid, sleep=self.clock.sleep, clock=self.clock,
                rng=random.Random(1), waker=waker, conf=self.conf)
        self.assertEqual(2, self.gets())

    def test_fresh_watch_unhealthy_polls_as_with_created_at(self):
        timeline = [(0, 'creating'), (2, 'downloading'), (70, 'available')]
        vid = self.fake.add_volume(timeline=timeline)
        self.health.healthy = False
        with self.watch() as waker:
            waker.bind(vid)
            report = wait.wait_for_volume(
                self.client, vid, sleep=self.clock.sleep, clock=self.clock,
                rng=random.Random(1), waker=waker, conf=self.conf)
        expected, polled = self.poll_only(timeline)
        self.assertEqual(polled, self.gets())
        self.assertEqual(expected.elapsed, report.elapsed)

    def test_pre_registration_replays_events(self):
        self.fake.ready_after = 8.0
        with self.watch() as waker:
            vid = str(fake_cinder.uuid.uuid4())
            self.registry.dispatch(watch_mod.Event(watch_mod.ENDED, vid,
                                                   PROJECT, 0.0))
            self.assertEqual(1, self.registry.counts['kept'])
            waker.bind(vid)
            self.assertEqual(1, waker.seen[watch_mod.ENDED])
        self.assertEqual({}, dict(self.registry.recent))
        self.assertEqual({}, self.registry.watches)

    def test_create_and_wait_binds_the_watch(self):
        with self.watch() as waker:
            self.script.events.append((5.5, None))
            self.script.events.clear()
            result, report = create.create_and_wait(
                self.client, 1, idempotency_key=create_base.KEY,
                sleep=self.clock.sleep, clock=self.clock, conf=self.conf,
                waker=waker)
            self.assertEqual(result.volume['id'], waker.volume_id)
        self.assertEqual('available', report.volume['status'])


class TestEventParsing(base.BaseTestCase):

    def test_kinds(self):
        e = watch_mod.event_from('INFO', 'volume.create.end',
                                 {'volume_id': 'v', 'tenant_id': 't'}, 1.0)
        self.assertEqual(('ended', 'v', 't'),
                         (e.kind, e.volume_id, e.tenant_id))
        e = watch_mod.event_from('error', 'scheduler.create_volume', {
            'volume_id': 'v', 'request_spec': {
                'volume_properties': {'project_id': 'p'}}})
        self.assertEqual(('failed', 'p'), (e.kind, e.tenant_id))
        self.assertEqual('failed', watch_mod.event_from(
            'ERROR', 'volume.create.error', {'volume_id': 'v'}).kind)
        for args in (('INFO', 'volume.delete.end', {'volume_id': 'v'}),
                     ('INFO', 'scheduler.create_volume', {'volume_id': 'v'}),
                     ('INFO', 'volume.create.end', {'volume_id': 3}),
                     ('INFO', 'volume.create.end', 'junk')):
            self.assertIsNone(watch_mod.event_from(*args))


class TestLiveness(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.clock = testing.VirtualClock()
        self.live = listener.Liveness(5.0, clock=self.clock)

    def test_never_connected(self):
        self.live.sending()
        self.assertEqual((False, 0), self.live.health())

    def test_pings_back_healthy_late_unhealthy(self):
        self.live.pong(self.live.sending())
        self.assertEqual((True, 0), self.live.health())
        self.live.sending()
        self.clock.sleep(4.9)
        self.assertTrue(self.live.health()[0])
        self.clock.sleep(0.2)
        self.assertEqual((False, 1), self.live.health())
        self.assertEqual((False, True), self.live.check())
        self.assertEqual((False, False), self.live.check())
        self.live.pong(self.live.sending())
        self.assertEqual((True, 1), self.live.health())

    def test_foreign_pong_ignored(self):
        self.live.sending()
        self.assertFalse(self.live.pong({'nonce': 'other', 'seq': 1}))
        self.assertFalse(self.live.health()[0])

    def test_suspect_needs_a_new_ping(self):
        self.live.pong(self.live.sending())
        self.live.suspect()
        self.assertFalse(self.live.health()[0])
        self.live.pong(self.live.sending())
        self.assertTrue(self.live.health()[0])

    def test_lost_reported_once(self):
        self.live.pong(self.live.sending())
        self.live.check()
        self.live.sending()
        self.clock.sleep(6)
        self.assertEqual((False, True), self.live.check())
        self.assertEqual((False, False), self.live.check())


class TestOptions(base.BaseTestCase):

    def test_off_by_default(self):
        conf = opts.get_conf(None)
        self.assertIsNone(conf.bdm_guard_events.transport_url)
        self.assertIsNone(events.get_source(conf))

    def test_listed_and_secret(self):
        listed = dict(opts.list_opts())[opts.EVENTS_GROUP]
        names = {o.name: o for o in listed}
        self.assertTrue(names['transport_url'].secret)
        for name in ('pool', 'queue_expiry', 'backstop_interval'):
            self.assertIn(name, names)

    def test_queue_policy(self):
        conf = opts.get_conf(None)
        self.assertEqual({'expires': 600000},
                         events.queue_policy(conf)['definition'])
        conf.set_override('queue_expiry', 0, opts.EVENTS_GROUP)
        self.assertIsNone(events.queue_policy(conf))

    def test_ping_queue_under_the_pools_policy(self):
        # oslo.messaging's notifier declares a queue named after the ping's
        # routing key, which nothing consumes: the pools' expiry policy
        # must match it, or every ping collects there for ever.
        conf = opts.get_conf(None)
        conf.set_override('pool', 'bdm_guard-host-1', opts.EVENTS_GROUP)
        conf.set_override('transport_url', 'fake:', opts.EVENTS_GROUP)
        source = events.EventSource(conf)
        declared = source.listener.ping_topic + '.info'
        self.assertEqual('bdm_guard-host-1.ping.info', declared)
        self.assertRegex(declared, events.queue_policy(conf)['pattern'])

    def test_mask_url(self):
        masked = listener.mask_url(
            'rabbit://nova:s3cr3t@h1:5672,nova:pw2@h2:5672/vh?x=1')
        self.assertNotIn('s3cr3t', masked)
        self.assertNotIn('pw2', masked)
        self.assertIn('nova:***@h1', masked)


class TestFakeTransport(base.BaseTestCase):
    """The real listener and pinger on oslo.messaging's fake driver."""

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()
        opts.get_conf(self.conf)
        self.conf([], project='bdm_guard', default_config_files=[])
        self.conf.set_override('ping_interval', 0.2, opts.EVENTS_GROUP)
        self.transport = oslo_messaging.get_notification_transport(
            self.conf, url='fake:/')
        self.source = events.EventSource(self.conf, host='h1',
                                         transport=self.transport)
        self.source.start()
        self.addCleanup(self.source.stop)
        self.notifier = oslo_messaging.Notifier(
            self.transport, publisher_id='volume.lab', driver='messagingv2',
            topics=['notifications'])

    def test_pool_and_delivery(self):
        self.assertEqual('bdm_guard-h1', self.source.pool)
        self.assertTrue(self.source.wait_healthy(30))
        woken = threading.Event()
        watch = self.source.watch('v1', PROJECT)
        watch.wake = woken.set
        watch._news = type('News', (), {
            'set': lambda self: woken.set(), 'wait': None,
            'clear': lambda self: None})()
        self.notifier.info({}, 'volume.create.start',
                           {'volume_id': 'v1', 'tenant_id': PROJECT})
        self.notifier.info({}, 'volume.create.end',
                           {'volume_id': 'v2', 'tenant_id': PROJECT})
        self.notifier.error({}, 'volume.create.error',
                            {'volume_id': 'v1', 'tenant_id': PROJECT})
        self.assertTrue(woken.wait(30))
        pause = threading.Event()
        for _ in range(300):
            if watch.seen[watch_mod.STARTED]:
                break
            pause.wait(0.1)
        self.assertEqual(1, watch.seen[watch_mod.STARTED])
        self.assertEqual(1, watch.seen[watch_mod.FAILED])
        watch.close()
