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

"""The relay's routing and the relayed waits, on a virtual clock."""

import random

import oslo_messaging
from oslotest import base

from bdm_guard import create
from bdm_guard import events
from bdm_guard.internal.events import listener
from bdm_guard.internal.events import watch as watch_mod
from bdm_guard.internal.relay import route
from bdm_guard.internal.wait import schedule
from bdm_guard import opts
from bdm_guard import relay as relay_mod
from tests.unit.events import test_events

HOST = 'compute-7.example'
VID = '6f1c3c4e-2d2a-4a8e-9c59-5b1e7f0e1a01'


def end_payload(host=HOST, vid=VID, rows=True):
    meta = ([{'key': route.HOST_METADATA_KEY, 'value': host},
             {'key': 'other', 'value': 'x'}] if rows
            else {route.HOST_METADATA_KEY: host})
    return {'volume_id': vid, 'tenant_id': test_events.PROJECT,
            'status': 'available', 'metadata': meta}


class TestDecide(base.BaseTestCase):

    def test_end_goes_to_the_named_host_only(self):
        for rows in (True, False):
            fwd = route.decide('INFO', 'volume.create.end',
                               end_payload(rows=rows))
            self.assertEqual(HOST, fwd.host)
            self.assertEqual('info', fwd.priority)
            self.assertFalse(fwd.ping)

    def test_errors_are_forwarded_as_errors(self):
        fwd = route.decide('ERROR', 'volume.create.error', end_payload())
        self.assertEqual(('error', HOST), (fwd.priority, fwd.host))
        sched = {'volume_id': VID, 'state': 'error', 'request_spec': {
            'volume_properties': {'project_id': test_events.PROJECT,
                                  'metadata': {
                                      route.HOST_METADATA_KEY: HOST}}}}
        self.assertEqual(HOST, route.decide(
            'ERROR', 'scheduler.create_volume', sched).host)

    def test_start_and_others_are_dropped(self):
        self.assertIsNone(route.decide('INFO', 'volume.create.start',
                                       end_payload()))
        self.assertIsNone(route.decide('INFO', 'volume.delete.end',
                                       end_payload()))

    def test_nobody_waits_dropped(self):
        payload = end_payload()
        payload['metadata'] = [{'key': 'other', 'value': 'x'}]
        self.assertIsNone(route.decide('INFO', 'volume.create.end', payload))
        payload['metadata'] = None
        self.assertIsNone(route.decide('INFO', 'volume.create.end', payload))

    def test_bad_hosts_and_payloads_dropped(self):
        for host in ('', '#', 'a.*', 'a..b', '.a', 'x' * 201, 7, None,
                     'a b'):
            self.assertIsNone(route.decide(
                'INFO', 'volume.create.end', end_payload(host=host)), host)
        for payload in (None, [], 'x', {'volume_id': 3}):
            self.assertIsNone(route.decide('INFO', 'volume.create.end',
                                           payload))
        self.assertIsNone(route.decide(None, 'volume.create.end',
                                       end_payload()))

    def test_pings_go_back_to_their_host(self):
        fwd = route.decide('INFO', route.PING_EVENT,
                           {'nonce': 'n', 'seq': 1, 'host': HOST})
        self.assertEqual((HOST, True), (fwd.host, fwd.ping))
        self.assertIsNone(route.decide('INFO', route.PING_EVENT, {}))
        self.assertIsNone(route.decide('INFO', route.PING_EVENT, 'x'))

    def test_topic(self):
        conf = opts.get_conf(None)
        self.assertEqual('bdm_guard_relay.' + HOST,
                         route.host_topic(conf.bdm_guard_events, HOST))


class Sent:
    def __init__(self, fail=False):
        self.fail, self.sent = fail, []

    def send(self, topic, priority, event_type, payload):
        if self.fail:
            raise oslo_messaging.MessageDeliveryFailure('broker down')
        self.sent.append((topic, priority, event_type, payload['volume_id']
                          if 'volume_id' in payload else None))


class TestRelayReceived(base.BaseTestCase):
    """The relay's endpoint with its publisher at the broker boundary."""

    def setUp(self):
        super().setUp()
        self.relay = relay_mod.Relay(opts.get_conf(None))
        self.relay.notifiers = self.sent = Sent()

    def test_one_copy_per_wake(self):
        self.assertIsNone(self.relay.received(
            'info', 'volume.create.start', end_payload()))
        self.assertIsNone(self.relay.received(
            'info', 'volume.create.end', end_payload()))
        self.assertEqual(
            [('bdm_guard_relay.' + HOST, 'info', 'volume.create.end', VID)],
            self.sent.sent)
        self.assertEqual({'dropped': 1, 'forwarded': 1},
                         dict(self.relay.counts))

    def test_publish_failure_requeues(self):
        self.sent.fail = True
        self.assertEqual(oslo_messaging.NotificationResult.REQUEUE,
                         self.relay.received('info', 'volume.create.end',
                                             end_payload()))
        self.assertEqual(1, self.relay.counts['requeued'])


class TestRelayedWatch(test_events.EventWaitTest):
    """A relayed host's wait: no start event, woken by the end."""

    def relayed_watch(self):
        made = watch_mod.Watch(
            self.registry, test_events.PROJECT,
            self.conf.bdm_guard_events.backstop_interval,
            schedule.confirm_intervals(self.conf), wait=self.script,
            expect_start=False, metadata={route.HOST_METADATA_KEY: HOST})
        return self.registry.add(made)

    def test_the_create_names_this_host(self):
        with self.relayed_watch() as watch:
            result, _ = create.create_and_wait(
                self.client,
                create.VolumeRequest(size_gb=1, metadata={'mine': 'kept'}),
                idempotency_key='8d0f7b9e-0000-4000-8000-000000000001',
                conf=self.conf,
                sleep=self.clock.sleep, clock=self.clock,
                rng=random.Random(1), waker=watch)
        meta = self.fake.volumes[result.volume['id']]['metadata']
        self.assertEqual(HOST, meta[route.HOST_METADATA_KEY])
        self.assertEqual('kept', meta['mine'])

    def test_downloading_without_start_is_no_miss(self):
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (1, 'downloading'), (20, 'available')])
        self.script.at(20.05, watch_mod.ENDED, vid)
        with self.relayed_watch() as watch:
            watch.bind(vid)
            report = self.wait(vid, watch)
            self.assertFalse(watch.missed)
        self.assertEqual('available', report.volume['status'])
        self.assertEqual(1, self.gets())


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class TestRelayedListener(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.conf = opts.get_conf(None)
        self.conf.set_override('route', 'relay', 'bdm_guard_events')
        self.conf.set_override('host', HOST, 'bdm_guard_events')
        self.registry = watch_mod.Registry()
        self.listener = listener.Listener(self.conf, self.registry)

    def test_pool_and_host(self):
        self.assertEqual('bdm_guard_relay.' + HOST, self.listener.pool)
        self.assertEqual('^bdm_guard_relay\\.', events.queue_policy(
            self.conf)['pattern'])
        self.assertTrue(self.listener.relayed)

    def test_pings_sparse_while_idle(self):
        interval = self.conf.bdm_guard_events.ping_interval
        self.assertEqual(interval * listener.IDLE_PING_FACTOR,
                         self.listener._period())
        self.registry.unbound.add(object())
        self.assertEqual(interval, self.listener._period())

    def test_forwarded_events_stand_in_for_pings(self):
        self.registry.unbound.add(object())
        lis = self.listener
        self.assertTrue(lis.ping_due(100.0, None))
        self.assertFalse(lis.ping_due(104.0, 100.0))
        self.assertTrue(lis.ping_due(105.0, 100.0))
        lis.received('INFO', 'volume.create.end', {
            'volume_id': VID, 'tenant_id': test_events.PROJECT})
        lis.last_relayed = 103.0
        self.assertFalse(lis.ping_due(105.0, 100.0))
        self.assertTrue(lis.ping_due(108.5, 100.0))

    def test_ping_lost_in_the_relay_makes_unhealthy(self):
        clock = Clock()
        live = listener.Liveness(5.0, clock=clock)
        payload = live.sending()
        clock.now += 0.01
        live.pong(payload)
        self.assertTrue(live.health()[0])
        live.sending()          # the relay is gone: it never comes back
        clock.now += 4.9
        self.assertTrue(live.health()[0])
        clock.now += 0.2
        healthy, lost = live.check()
        self.assertEqual((False, True), (healthy, lost))
