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

"""The event routes at scale on the lab's real RabbitMQ:
``python -m bdm_guard_lab.bench.events``.

One broker per run; for each H in ``--hosts`` (default 1, 100, 500) and
each route, H simulated compute hosts (one bound queue each with its own
consumer, all on one kombu connection: what a host's listener costs the
broker) receive a boot storm's notifications, published by cinder's
side through oslo.messaging (``messagingv2``, a 1.2 KB
``volume.create.start`` and ``volume.create.end`` per create, at
``--rate`` notifications per second for ``--seconds``):

* ``pools``: every host's pool is bound to cinder's topic (route A as
  shipped): every notification is copied to every host;
* ``relay``: two real ``bdm-guard-relay`` processes
  (:class:`bdm_guard_lab.relay.Relays`) share one pool and forward each
  end notification to the one host its volume's metadata names
  (``route = relay``); every notification published is delivered once to
  that pool, which the deliveries count;
* ``route-b``: route B's message pattern: no notification on the bus,
  one targeted message per create on nova's exchange to
  ``compute.<host>`` (nova-api's RPC cast of the external event).

Per run: notifications routed per second (what the publisher got
through, the broker's flow control included), broker deliveries per
create (messages delivered to a consumer or left queued, relay pool
included), event-to-wake lag (publish of the end notification to its
arrival at the waiting host) p50/p95, and the broker's peak memory
(``erlang:memory(total)``). A run fails where the hosts do not get their
end notifications within ``--drain`` seconds after the storm, or the lag
p95 is over 0.25 s. The hosts' self-pings are not replayed (with the
relay they cross it only while no forwarded event comes: see
``doc/source/admin/events.rst``).
"""

import argparse
import json
import os
import sys
import threading
import time
import uuid

import kombu
from oslo_config import cfg
import oslo_messaging

from bdm_guard.internal.relay import route
from bdm_guard_lab import broker
from bdm_guard_lab import relay as lab_relay

ROUTES = ('pools', 'relay', 'route-b')
LAG_TARGET = 0.25
PAD = 'x' * 700


def percentile(values, share):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def payload(index, host, kind, sent):
    """A cinder 29 ``volume.create.*`` payload of about 1.2 KB."""
    return {
        'volume_id': str(uuid.UUID(int=index + 1, version=4)),
        'tenant_id': 'bench', 'user_id': 'bench', 'host': 'cinder@lvm#lvm',
        'availability_zone': 'nova', 'volume_type': 'lvm', 'size': 2,
        'status': 'available' if kind == 'end' else 'creating',
        'display_name': PAD, 'created_at': '2026-01-01T00:00:00',
        'metadata': [{'key': route.HOST_METADATA_KEY, 'value': host},
                     {'key': 'bdm_guard_idempotency_key', 'value': PAD[:36]}],
        'bench_sent': sent, 'bench_index': index}


class Hosts:
    """H queues with one consumer each, on one kombu connection."""

    def __init__(self, url, bindings):
        self.conn = kombu.Connection(url)
        self.channel = self.conn.channel()
        self.channel.basic_qos(0, 2000, False)
        self.lags = {}
        self.received = 0
        self.queues = []
        for name, host, exchange, keys in bindings:
            ex = kombu.Exchange(exchange, type='topic', durable=False)
            # As oslo.messaging declares them (no auto-delete, no
            # arguments): a relayed host's queue is its notifier's default
            # queue, which must not differ.
            queue = kombu.Queue(name, exchange=ex, routing_key=keys[0],
                                durable=False, auto_delete=False)
            bound = queue(self.channel)
            bound.declare()
            for key in keys[1:]:
                bound.bind_to(ex, routing_key=key)
            self.queues.append(bound)
            kombu.Consumer(self.channel, queues=[bound], no_ack=True,
                           accept=['json'],
                           callbacks=[self._callback(host)]).consume()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _callback(self, host):
        def received(body, message):
            self.received += 1
            inner = body.get('oslo.message') if isinstance(body, dict) \
                else None
            msg = json.loads(inner) if inner else body
            data = msg.get('payload') or {}
            if (msg.get('event_type') == 'volume.create.end'
                    and route.host_of(data) == host):
                self.lags.setdefault(data['bench_index'],
                                     time.time() - data['bench_sent'])
        return received

    def _run(self):
        while not self.stopping.is_set():
            try:
                self.conn.drain_events(timeout=0.2)
            except TimeoutError:
                pass
            except OSError:
                if not self.stopping.is_set():
                    raise

    def stop(self):
        self.stopping.set()
        self.thread.join(5)

    def left(self):
        """Messages still queued (call after :meth:`stop`)."""
        return sum(q.queue_declare(passive=True).message_count
                   for q in self.queues)

    def close(self):
        self.stop()
        for queue in self.queues:
            try:
                queue.delete()
            except Exception:  # the broker goes away next
                pass
        self.conn.release()


def broker_memory(rabbit):
    try:
        return int(rabbit.ctl('eval', 'erlang:memory(total).').strip())
    except Exception:  # a busy node: no sample
        return 0


def cinder_notifier(url):
    conf = cfg.ConfigOpts()
    conf([], project='bench', default_config_files=[])
    return oslo_messaging.Notifier(
        oslo_messaging.get_notification_transport(conf, url=url),
        publisher_id='volume.bench', driver='messagingv2',
        topics=['notifications'])


def _bindings(rabbit, route_name, names):
    """Each host's queue for ``route_name``, and the relays it needs.

    :returns: ``(bindings, relays)``: ``(queue, host, exchange, keys)``
        tuples, and a set-up :class:`bdm_guard_lab.relay.Relays` for the
        ``relay`` route (else None).
    """
    if route_name == 'pools':
        return [('bench-pool-' + h, h, 'openstack', ['notifications.info'])
                for h in names], None
    if route_name == 'relay':
        relays = lab_relay.Relays(rabbit, count=2)
        relays.setUp()
        return [('bdm_guard_relay.%s.info' % h, h, 'bdm_guard_relay',
                 ['bdm_guard_relay.%s.info' % h]) for h in names], relays
    return [('bench-compute-' + h, h, 'nova', ['compute.%s' % h])
            for h in names], None


def _storm(route_name, url, amqp_url, names, creates, rate):
    """Publish ``creates`` start/end pairs at ``rate`` per second.

    Through cinder's notifier, or (``route-b``) one message per create to
    the host's ``compute.<host>`` key, as nova's external event would.

    :returns: ``(published, seconds spent)``.
    """
    notifier = cinder_notifier(url)
    direct = kombu.Connection(amqp_url)
    producer = kombu.Producer(direct.channel(), exchange=kombu.Exchange(
        'nova', type='topic', durable=False))
    start = time.monotonic()
    published = 0
    for index in range(creates):
        host = names[index % len(names)]
        for kind in ('start', 'end'):
            pause = start + published / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            body = payload(index, host, kind, time.time())
            if route_name != 'route-b':
                notifier.info({}, 'volume.create.%s' % kind, body)
            elif kind == 'end':
                producer.publish(
                    {'oslo.message': json.dumps(
                        {'event_type': 'volume.create.end',
                         'payload': body})},
                    routing_key='compute.%s' % host, serializer='json')
            published += 1
    spent = time.monotonic() - start
    direct.release()
    return published, spent


def run_one(rabbit, route_name, hosts, rate, seconds, drain):
    """One route at ``hosts`` hosts: the bench's figures (dict)."""
    url = rabbit.url
    amqp_url = url.replace('rabbit://', 'amqp://')
    names = ['bench-host-%d' % i for i in range(hosts)]
    bindings, relays = _bindings(rabbit, route_name, names)
    consumers = Hosts(amqp_url, bindings)
    creates = int(rate * seconds / 2)
    memory = [broker_memory(rabbit)]
    sampling = threading.Event()

    def sample():
        while not sampling.wait(0.5):
            memory.append(broker_memory(rabbit))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    published, spent = _storm(route_name, url, amqp_url, names, creates,
                              rate)
    end = time.monotonic() + drain
    while len(consumers.lags) < creates and time.monotonic() < end:
        time.sleep(0.1)
    sampling.set()
    sampler.join(2)
    lags = list(consumers.lags.values())
    consumers.stop()
    left = consumers.left()
    relayed_in = published if relays is not None else 0
    if relays is not None:
        relays.cleanUp()
    deliveries = consumers.received + left + relayed_in
    consumers.close()
    p95 = percentile(lags, 0.95)
    return {
        'route': route_name, 'hosts': hosts, 'creates': creates,
        'offered_per_s': rate,
        'routed_per_s': round(published / spent, 1),
        'deliveries_per_create': round(deliveries / creates, 2),
        'woken': len(lags),
        'lag_p50_s': _round(percentile(lags, 0.5)),
        'lag_p95_s': _round(p95),
        'broker_memory_mb': round(max(memory) / 2 ** 20, 1),
        'ok': (len(lags) == creates and p95 is not None
               and p95 <= LAG_TARGET),
    }


def _round(value):
    return None if value is None else round(value, 3)


def table(rows):
    """The rows as an RST list-table body (for the admin guide)."""
    head = ('route', 'hosts', 'routed/s', 'deliveries/create', 'woken',
            'lag p50 (s)', 'lag p95 (s)', 'broker MB', 'result')
    lines = [' | '.join(head)]
    for r in rows:
        lines.append(' | '.join(str(v) for v in (
            r['route'], r['hosts'], r['routed_per_s'],
            r['deliveries_per_create'], '%d/%d' % (r['woken'], r['creates']),
            r['lag_p50_s'], r['lag_p95_s'], r['broker_memory_mb'],
            'ok' if r['ok'] else 'FAIL')))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='bdm_guard_lab.bench.events')
    parser.add_argument('--hosts', default='1,100,500')
    parser.add_argument('--routes', default=','.join(ROUTES))
    parser.add_argument('--rate', type=float, default=310.0,
                        help='notifications per second offered (the '
                             'seed\'s peak: 310)')
    parser.add_argument('--seconds', type=float, default=5.0,
                        help='storm length in seconds')
    parser.add_argument('--drain', type=float, default=20.0,
                        help='seconds after the storm for the hosts to '
                             'get their end notifications')
    parser.add_argument('--out', default=None, help='JSON file')
    args = parser.parse_args(argv)
    rows = []
    rabbit = broker.RabbitMQ()
    rabbit.setUp()
    try:
        for hosts in [int(h) for h in args.hosts.split(',')]:
            for route_name in args.routes.split(','):
                row = run_one(rabbit, route_name, hosts, args.rate,
                              args.seconds, args.drain)
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        rabbit.cleanUp()
    print(table(rows))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)),
                    exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump({'args': vars(args), 'rows': rows}, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
