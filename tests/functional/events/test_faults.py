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

"""The event path's faults, on a real RabbitMQ and a real cinder 29.

One broker, one cinder sending its notifications there (``messagingv2``)
and one :class:`bdm_guard.events.EventSource` per class; every test has its
own fault proxy (GET counts) and key. Faults are made on the broker or the
wire (a policy, a binding removed, a restart, a notification published by
another client), never in bdm-guard. Every test checks that the volume
exists once and is available (no duplicate, no leak), and that the wait
never took longer than the polling schedule would allow.
"""

import datetime
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import amqp
from oslo_config import cfg
import oslo_messaging
import testtools

from bdm_guard import cinder
from bdm_guard import create
from bdm_guard import events
from bdm_guard import opts
from bdm_guard_lab import broker
from bdm_guard_lab.cinder import service as cinder_service
from bdm_guard_lab.faults import tcp
from bdm_guard_lab import process
from tests.functional import fixtures as lab

OTHER_PROJECT = 'a7e0b1c2-0000-4000-8000-0000000000f0'
#: 0.5 s creating + 1 s per GiB downloading in the lab's cinder.
SIZE_GB = 3
BACKSTOP = 5.0
PING = 0.5


def events_conf(url):
    conf = lab.guard_conf()
    conf.set_override('transport_url', url, opts.EVENTS_GROUP)
    conf.set_override('backstop_interval', BACKSTOP, opts.EVENTS_GROUP)
    conf.set_override('ping_interval', PING, opts.EVENTS_GROUP)
    conf.set_override('pool', 'bdm_guard-test-%s' % uuid.uuid4().hex[:8],
                      opts.EVENTS_GROUP)
    return conf


def until(predicate, timeout=30.0):
    """Wait for ``predicate()`` (bounded), for the listener's threads."""
    pause = threading.Event()
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        pause.wait(0.05)
    return True


@testtools.skipUnless(broker.installed(), 'rabbitmq-server not installed')
class EventLabTest(testtools.TestCase):
    """A broker, a cinder notifying on it, and an event source, per class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rabbit = broker.RabbitMQ()
        cls.rabbit.setUp()
        cls.svc = cinder_service.CinderService(
            create_seconds=0.5, download_seconds_per_gib=1.0,
            create_jitter=0.0, notification_url=cls.rabbit.url)
        cls.svc.setUp()
        cls.conf = events_conf(cls.rabbit.url)
        cls.source = events.EventSource(cls.conf).start()
        assert cls.source.wait_healthy(60), 'listener never healthy'
        cls.notifier = cls.make_notifier(cls.rabbit.url)

    @staticmethod
    def make_notifier(url):
        """Another client publishing on cinder's topic."""
        pconf = cfg.ConfigOpts()
        pconf([], project='test', default_config_files=[])
        return oslo_messaging.Notifier(
            oslo_messaging.get_notification_transport(pconf, url=url),
            publisher_id='volume.intruder', driver='messagingv2',
            topics=['notifications'])

    @classmethod
    def tearDownClass(cls):
        cls.source.stop()
        cls.svc.cleanUp()
        cls.rabbit.cleanUp()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.faults = self.useFixture(lab.Faults(self.svc, []))
        self.assertTrue(self.source.wait_healthy(60))

    def boot(self, source=None, conf=None, watch_hook=None):
        """Create and wait with an event watch; the figures of the boot."""
        source = source or self.source
        key = lab.new_key()
        watch = source.expect(self.svc.project_id)
        if watch_hook:
            threading.Thread(target=watch_hook, args=(watch,),
                             daemon=True).start()
        start = time.monotonic()
        try:
            result, report = create.create_and_wait(
                self.faults.client, SIZE_GB, idempotency_key=key,
                image_id=self.svc.image_id, conf=conf or self.conf,
                waker=watch)
        finally:
            watch.close()
        done = time.time()
        vid = result.volume['id']
        found = lab.volumes_with_key(self.svc, key)
        self.assertEqual([vid], [v['id'] for v in found])
        self.assertEqual('available', found[0]['status'])
        updated = cinder_service_time(found[0]['updated_at'])
        return {'id': vid, 'elapsed': time.monotonic() - start,
                'lag': done - updated, 'polls': report.polls,
                'gets': self.faults.proxy.gets_for([vid]), 'watch': watch,
                'deadline': report.deadline}

    def publish(self, event_type, volume_id, tenant=None, priority='info',
                **payload):
        payload.update(volume_id=volume_id,
                       tenant_id=tenant or self.svc.project_id)
        getattr(self.notifier, priority)({}, event_type, payload)

    def assert_not_slower_than_polling(self, boot):
        # The polling schedule (caps of 1 s here) finds the volume at most
        # one cap after it is available; the backstop adds at most one
        # BACKSTOP where the events said nothing.
        self.assertLess(boot['lag'], BACKSTOP + 1.5)
        self.assertLessEqual(boot['deadline'], 60.0 + 20.0 * SIZE_GB)


class EventFaultTest(EventLabTest):

    def test_events_wake_the_wait(self):
        boot = self.boot()
        self.assertLessEqual(boot['gets'], 2)
        self.assertLess(boot['lag'], 0.5)
        self.assertFalse(boot['watch'].missed)

    def test_ping_queue_expires(self):
        # The pings' notifier declares <pool>.ping.info, which nothing
        # consumes; the pools' expiry policy deletes it (here after 1 s,
        # not queue_expiry) while the pool, consumed, stays, and the
        # pings still come back through the pool.
        ping_queue = self.source.listener.ping_topic + '.info'
        self.assertTrue(until(lambda: ping_queue in self.rabbit.queues()))
        policy = events.queue_policy(self.conf)
        self.rabbit.set_policy(policy['name'], policy['pattern'],
                               {'expires': 1000})
        self.addCleanup(self.rabbit.clear_policy, policy['name'])
        self.assertTrue(until(
            lambda: ping_queue not in self.rabbit.queues()))
        self.assertIn(self.source.pool, self.rabbit.queues())
        self.source.listener.suspect()
        self.assertTrue(self.source.wait_healthy(10 * PING))
        self.assertNotIn(ping_queue, self.rabbit.queues())

    def test_broker_down_at_start(self):
        port = process.free_ports(1)[0]
        conf = events_conf('rabbit://guest:guest@127.0.0.1:%d/' % port)
        down = events.EventSource(conf).start()
        self.addCleanup(down.stop)
        self.assertFalse(down.wait_healthy(3 * PING))
        boot = self.boot(source=down, conf=conf)
        # Polling on the schedule: found within one 1 s cap.
        self.assertLess(boot['lag'], 1.5)
        self.assertGreater(boot['gets'], 2)

    def _binding(self, bind):
        conn = amqp.Connection('127.0.0.1:%d' % self.rabbit.port,
                               userid='guest', password='guest')
        conn.connect()
        try:
            channel = conn.channel()
            (channel.queue_bind if bind else channel.queue_unbind)(
                self.source.pool, 'openstack', 'notifications.info')
        finally:
            conn.close()

    def test_notification_dropped(self):
        # The broker stops routing cinder's INFO notifications to this
        # pool (its pings still arrive): create.start and create.end are
        # lost.
        self._binding(False)
        self.addCleanup(self._binding, True)
        missed = self.source.counts.get('missed', 0)
        boot = self.boot()
        self.assert_not_slower_than_polling(boot)
        self.assertTrue(boot['watch'].missed)
        self.assertEqual(missed + 1, self.source.counts['missed'])
        self.assertTrue(self.source.wait_healthy(30))

    def test_notification_duplicated(self):
        def duplicate_start(watch):
            until(lambda: watch.volume_id is not None)
            for _ in range(3):
                self.publish('volume.create.start', watch.volume_id)

        boot = self.boot(watch_hook=duplicate_start)
        self.assertLessEqual(boot['gets'], 2)
        dropped = self.source.counts.get('dropped', 0)
        for _ in range(3):
            self.publish('volume.create.end', boot['id'], status='available')
        self.assertTrue(until(
            lambda: self.source.counts.get('dropped', 0) >= dropped + 3))
        self.assertEqual(boot['gets'],
                         self.faults.proxy.gets_for([boot['id']]))

    def test_available_ahead_of_the_api(self):
        def early(watch):
            until(lambda: watch.volume_id is not None)
            self.publish('volume.create.end', watch.volume_id,
                         status='available')

        boot = self.boot(watch_hook=early)
        # Woken early, the GET said "creating"/"downloading": the wait
        # confirmed on the schedule, and returned only once cinder said
        # available (checked in boot()).
        self.assertGreater(boot['gets'], 1)
        self.assertLess(boot['lag'], 1.5)

    def test_other_project(self):
        session = self.svc.session(project_id=OTHER_PROJECT)
        client = cinder.VolumeClient(session)

        def not_routed():
            # Dropped, or kept while a watch of ours was not bound yet
            # (between its POST and its answer): never handed to a wait.
            counts = self.source.counts
            return counts.get('dropped', 0) + counts.get('kept', 0)

        before = not_routed()
        theirs = create.create_volume(client, 1,
                                      idempotency_key=lab.new_key(),
                                      conf=self.conf).volume['id']

        def forged(watch):
            until(lambda: watch.volume_id is not None)
            self.publish('volume.create.end', watch.volume_id,
                         tenant=OTHER_PROJECT, status='available')

        boot = self.boot(watch_hook=forged)
        self.assertEqual(1, boot['watch'].ignored)
        self.assertLessEqual(boot['gets'], 2)
        # Their start and end events reach no wait and cost no GET, once
        # the lab cinder has finished their volume (slow on a loaded
        # host). One that comes while our watch is not bound yet is kept
        # for it, not dropped: counting only drops failed whenever their
        # create.start came during our POST.
        self.assertTrue(until(lambda: not_routed() >= before + 2,
                              timeout=120.0), self.source.counts)
        self.assertEqual(0, self.faults.proxy.gets_for([theirs]))
        self.assertNotIn(theirs, self.source.registry.watches)

    def test_connects_but_never_delivers(self):
        # A listener whose broker connection stays up but brings nothing
        # back (a mute relay on the wire): its own pings stop coming back.
        relay = self.useFixture(tcp.MuteRelay(self.rabbit.port))
        conf = events_conf('rabbit://guest:guest@127.0.0.1:%d/'
                           % relay.port)
        mute = events.EventSource(conf).start()
        self.addCleanup(mute.stop)
        self.assertTrue(mute.wait_healthy(60))
        relay.mute = True
        self.assertTrue(until(lambda: not mute.healthy, 10 * PING))
        boot = self.boot(source=mute, conf=conf)
        # Polling on the schedule: found within one 1 s cap.
        self.assertLess(boot['lag'], 1.5)
        self.assertGreater(boot['gets'], 2)

    def test_two_processes_share_a_pool(self):
        # Two processes on one pool (the default
        # bdm_guard-<host> for two services on one host). The broker hands
        # each message to one of them; each must notice the other's pings,
        # say so once and stay unhealthy, so that its waits poll.
        pool = 'bdm_guard-shared-%s' % uuid.uuid4().hex[:8]
        script = textwrap.dedent("""
            import sys, time
            from oslo_config import cfg
            from bdm_guard import events, opts
            conf = cfg.ConfigOpts()
            opts.get_conf(conf)
            conf([], project='bdm_guard', default_config_files=[])
            for name, value in (('transport_url', sys.argv[1]),
                                ('pool', sys.argv[2]),
                                ('ping_interval', float(sys.argv[3]))):
                conf.set_override(name, value, opts.EVENTS_GROUP)
            source = events.EventSource(conf).start()
            end = time.monotonic() + float(sys.argv[4])
            while time.monotonic() < end and not (
                    source.listener.liveness.shared):
                time.sleep(0.1)
            print('shared' if source.listener.liveness.shared else 'alone',
                  source.healthy, flush=True)
            source.stop()
            """)
        other = subprocess.Popen(
            [sys.executable, '-c', script, self.rabbit.url, pool, str(PING),
             '60'], stdout=subprocess.PIPE)
        self.addCleanup(lambda: other.poll() is None and other.kill())
        conf = events_conf(self.rabbit.url)
        conf.set_override('pool', pool, opts.EVENTS_GROUP)
        here = events.EventSource(conf).start()
        self.addCleanup(here.stop)
        self.assertTrue(until(lambda: here.listener.liveness.shared, 60))
        self.assertFalse(here.healthy)
        out, _ = other.communicate(timeout=90)
        self.assertEqual(b'shared False', out.strip())


class BrokerRestartTest(EventLabTest):
    """The broker restart, alone with its broker and cinder.

    A restart leaves the lab's cinder (under eventlet, its notifier
    reconnecting) unable to schedule for a while, which would fail the
    tests after it for reasons of the lab.
    """

    def test_broker_restarts_mid_wait(self):
        def restart(watch):
            until(lambda: watch.volume_id is not None)
            self.rabbit.restart_app()

        boot = self.boot(watch_hook=restart)
        self.assert_not_slower_than_polling(boot)
        # The listener reconnects and proves itself again; the next wait
        # is event-driven.
        self.assertTrue(self.source.wait_healthy(60))
        again = self.boot()
        self.assertLess(again['lag'], 0.5)
        self.assertLessEqual(again['gets'], 2)


def cinder_service_time(text):
    """cinder's ``updated_at`` as a :func:`time.time` stamp."""
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()
