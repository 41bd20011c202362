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

"""The process's one notification listener, and its self-ping.

One oslo.messaging notification listener per process, in this host's pool
(its own queue, a full copy of cinder's notifications), feeds a
:class:`bdm_guard.internal.events.watch.Registry`. It proves it is alive
by pinging itself through the broker: a notification on the topic
``<pool>.ping``, which only this pool's queue gets. It is
healthy while every ping sent more than one ``ping_interval`` ago has come
back, so a broker that is down, restarting, or that accepts the
connection and delivers nothing, is noticed within two intervals; every
sleeping wait is then woken and polls on the schedule.
"""

import itertools
import re
import socket
import threading
import time
import uuid

from oslo_log import log as logging
import oslo_messaging
from oslo_utils import strutils

from bdm_guard.internal.events import watch as watch_mod
from bdm_guard.internal.relay import bus
from bdm_guard.internal.relay import route

LOG = logging.getLogger(__name__)

PING_EVENT = route.PING_EVENT
POOL_PREFIX = 'bdm_guard-'
#: A pool's ping topic: ``<pool>.ping``. oslo.messaging's notifier also
#: declares a queue named after what it publishes (``<pool>.ping.info``)
#: that nothing consumes; named under the pool, the pools' expiry policy
#: (:func:`bdm_guard.events.queue_policy`, ``^bdm_guard-``) deletes it
#: ``queue_expiry`` seconds after its declaration, as it does a stopped
#: host's pool, so it collects neither for ever nor after the process.
PING_TOPIC_SUFFIX = '.ping'
#: With no wait in the process, a relayed host pings this many times less
#: often (its pings cross the relay: the broker work stays O(creates)).
IDLE_PING_FACTOR = 12
#: Pings in flight remembered (the broker may be down for hours).
KEEP_PINGS = 64
_URL_CREDENTIALS = re.compile(r'(://|,)([^:@/,]*):([^@/,]*)@')


def mask_url(url):
    """``url`` with every password replaced by ``***``, for logs."""
    if not url:
        return url
    return strutils.mask_password(
        _URL_CREDENTIALS.sub(r'\1\2:***@', str(url)))


def host_name(group, host=None):
    """This host's name: the ``host`` option, ``host``, or the machine's."""
    return group.host or host or socket.gethostname()


def pool_name(group, host=None):
    """This host's pool: the ``pool`` option or ``bdm_guard-<host>``.

    With ``route = relay``: ``<relay_topic>.<host>``, the prefix of the
    host's two queues (``.info``, ``.error``), which are the ones
    oslo.messaging's notifier declares for what the relay forwards (so no
    other queue collects a copy).
    """
    if group.route == 'relay':
        return route.host_topic(group, host_name(group, host))
    if group.pool:
        return group.pool
    return POOL_PREFIX + (host or socket.gethostname())


class _Endpoint:
    """oslo.messaging's notification endpoint: INFO and ERROR."""

    def __init__(self, received):
        self.received = received

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self.received('INFO', event_type, payload)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self.received('ERROR', event_type, payload)


class Liveness:
    """Ping bookkeeping: which pings came back, and so whether healthy.

    :param interval: seconds between pings; a ping not back within one
        interval makes the listener unhealthy.
    :param clock: a monotonic clock in seconds.
    """

    def __init__(self, interval, clock=time.monotonic):
        self.interval = interval
        self.clock = clock
        self.nonce = uuid.uuid4().hex
        self.seq = itertools.count(1)
        self.sent = {}
        self.back = 0
        self.must_return = None
        self.epoch = 0
        self.was_healthy = False
        self.lost = False
        self.stopped = False
        self.shared = False
        self.started_at = time.time()
        self.lock = threading.Lock()

    def sending(self):
        """Record a ping about to be sent; return its payload."""
        with self.lock:
            seq = next(self.seq)
            self.sent[seq] = self.clock()
            while len(self.sent) > KEEP_PINGS:
                del self.sent[min(self.sent)]
        return {'nonce': self.nonce, 'seq': seq, 'sent': time.time()}

    def pong(self, payload):
        """A ping came back; True when it is one of ours.

        A ping of another listener, sent after this one started, means the
        pool's queue is shared with another process: the broker hands each
        message to one of them, so neither gets all its events. That makes
        this listener unhealthy for good (:attr:`shared`). Older foreign
        pings are a previous process's, left in the queue.
        """
        if not isinstance(payload, dict):
            return False
        if payload.get('nonce') != self.nonce:
            sent = payload.get('sent')
            if (isinstance(sent, (int, float)) and not isinstance(sent, bool)
                    and sent >= self.started_at):
                with self.lock:
                    self.shared = True
            return False
        seq = payload.get('seq')
        with self.lock:
            if isinstance(seq, int) and seq in self.sent:
                self.back = max(self.back, seq)
                for old in [s for s in self.sent if s <= seq]:
                    del self.sent[old]
        return True

    def suspect(self):
        """Distrust until a ping sent from now on comes back."""
        with self.lock:
            self.must_return = max(self.sent, default=self.back)

    def stop(self):
        """The listener stopped: unhealthy from now on."""
        with self.lock:
            self.stopped = True

    def _healthy(self):
        if not self.back or self.stopped or self.shared:
            return False
        if self.must_return is not None:
            if self.back <= self.must_return:
                return False
            self.must_return = None
        late = self.clock() - self.interval
        return not any(at <= late for at in self.sent.values())

    def health(self):
        """``(healthy, epoch)``: the epoch moves on each loss of health.

        A wait that slept through a loss (its epoch is older) may have
        missed events: it polls on the schedule until a GET resyncs it.
        """
        with self.lock:
            healthy = self._healthy()
            if self.was_healthy and not healthy:
                self.epoch += 1
                self.lost = True
            self.was_healthy = healthy
            return healthy, self.epoch

    def check(self):
        """``(healthy, lost)``: ``lost`` once per loss of health."""
        healthy, _ = self.health()
        with self.lock:
            lost, self.lost = self.lost, False
        return healthy, lost


class Listener:
    """One notification listener with its pinger thread.

    :param conf: a ConfigOpts with ``[bdm_guard_events]`` registered and
        ``transport_url`` set.
    :param registry: the :class:`bdm_guard.internal.events.watch.Registry`
        events go to.
    :param host: the host name in the default pool name.
    :param transport: an oslo.messaging notification transport (tests pass
        a ``fake:`` one); None builds one from ``transport_url``.
    """

    def __init__(self, conf, registry, host=None, transport=None):
        group = conf.bdm_guard_events
        self.conf = conf
        self.group = group
        self.registry = registry
        self.relayed = group.route == 'relay'
        self.host = host_name(group, host)
        if self.relayed and not route.valid_host(self.host):
            LOG.warning('Host name %s cannot be a routing key: the relay '
                        'route is off and waits poll.', self.host)
        self.pool = pool_name(group, host)
        self.ping_topic = self.pool + PING_TOPIC_SUFFIX
        self.liveness = Liveness(group.ping_interval)
        self.transport = transport
        self.listener = None
        self.notifier = None
        self.stopping = threading.Event()
        self.kick = threading.Event()
        self.thread = None
        self.started = False
        #: ``time.monotonic()`` of the last notification the relay
        #: forwarded here (relay route), or None.
        self.last_relayed = None

    def received(self, priority, event_type, payload):
        """Every notification the pool gets (the listener's thread).

        Never raises: a malformed notification is dropped.
        """
        if event_type == PING_EVENT:
            shared = self.liveness.shared
            self.liveness.pong(payload)
            if self.liveness.shared and not shared:
                LOG.warning('Pool %s is shared with another process (its '
                            'pings arrive here): the broker splits the '
                            'notifications between them, so waits in this '
                            'process poll on the schedule. Give each '
                            'process its own [bdm_guard_events] pool.',
                            self.pool)
                self.registry.wake_all()
            return
        event = watch_mod.event_from(priority, event_type, payload)
        if event is not None:
            if self.relayed:
                self.last_relayed = event.received
            self.registry.dispatch(event)

    def start(self):
        """Connect and listen in a thread (never blocks on the broker)."""
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name='bdm-guard-events')
        self.thread.start()

    def _connect(self):
        if self.transport is None:
            self.transport = oslo_messaging.get_notification_transport(
                self.conf, url=self.group.transport_url)
        if self.relayed:
            self._connect_relayed()
        else:
            targets = [oslo_messaging.Target(exchange=self.group.exchange,
                                             topic=self.group.topic),
                       oslo_messaging.Target(topic=self.ping_topic)]
            self.notifier = oslo_messaging.Notifier(
                self.transport, publisher_id='bdm_guard.%s' % self.pool,
                driver='messagingv2', topics=[self.ping_topic], retry=0)
            self.listener = oslo_messaging.get_notification_listener(
                self.transport, targets, [_Endpoint(self.received)],
                executor='threading', pool=self.pool)
        LOG.info('Listening for cinder notifications on %(url)s, exchange '
                 '%(exchange)s, topic %(topic)s, pool %(pool)s.',
                 {'url': mask_url(self.group.transport_url),
                  'exchange': (self.group.relay_exchange if self.relayed
                               else self.group.exchange),
                  'topic': self.pool if self.relayed else self.group.topic,
                  'pool': self.pool})
        # Blocks until the broker answers (oslo.messaging retries).
        self.listener.start()
        self.started = True

    def _connect_relayed(self):
        """Bind only this host's key on relay_exchange; ping via the relay.

        The ping goes to the relay's pool and comes back on this host's
        key: health then means that the relay forwards.
        """
        group = self.group
        if not route.valid_host(self.host):
            raise ValueError('host %r cannot be a routing key' % self.host)
        targets = [oslo_messaging.Target(
            exchange=group.relay_exchange,
            topic=route.host_topic(group, self.host))]
        self.notifier = oslo_messaging.Notifier(
            bus.exchange_transport(self.conf, group.transport_url,
                                   group.relay_exchange),
            publisher_id='bdm_guard.%s' % self.pool, driver='messagingv2',
            topics=[route.PING_TOPIC], retry=0)
        self.listener = oslo_messaging.get_notification_listener(
            self.transport, targets, [_Endpoint(self.received)],
            executor='threading', pool=None)

    def ping_due(self, now, last):
        """Whether to ping at ``now`` (monotonic s); ``last``: last ping.

        On the relay route, a notification the relay forwarded within
        the period proves the path as well as a ping would: while the
        storm lasts, the pings stay off the broker.
        """
        if last is None:
            return True
        period = self._period()
        if now - last < period:
            return False
        return not (self.relayed and self.last_relayed is not None
                    and now - self.last_relayed < period)

    def _period(self):
        if self.relayed and not self.registry.busy():
            return self.group.ping_interval * IDLE_PING_FACTOR
        return self.group.ping_interval

    def _run(self):
        try:
            self._connect()
        except Exception:  # the waits poll instead
            LOG.exception('The notification listener did not start; waits '
                          'poll on the schedule.')
            self.liveness.stop()
            return
        if self.stopping.is_set():
            self._stop_listener()
            return
        last = None
        while not self.stopping.is_set():
            now = time.monotonic()
            if self.ping_due(now, last) or self.kick.is_set():
                self.kick.clear()
                last = now
                self.ping()
            self.tick()
            self.kick.wait(self.group.ping_interval / 4.0)

    def ping(self):
        """Send one ping to this pool through the broker."""
        payload = self.liveness.sending()
        if self.relayed:
            payload['host'] = self.host
        try:
            self.notifier.info({}, PING_EVENT, payload)
        except Exception:  # a lost ping is the signal
            LOG.debug('Ping not sent.', exc_info=True)

    def tick(self):
        """Check health; wake every wait when it was just lost."""
        healthy, lost = self.liveness.check()
        if lost:
            LOG.warning('The notification listener in pool %s stopped '
                        'delivering its own pings: waits poll on the '
                        'schedule until it does again.', self.pool)
            self.registry.wake_all()
        return healthy

    def suspect(self):
        """A wait missed an event: ping now.

        The wait that missed it polls on its own; the others keep the
        health the pings give them.
        """
        self.kick.set()

    def stop(self, timeout=10.0):
        """Stop pinging and listening (best effort, never blocks long).

        A listener still connecting (the broker never answered) is left to
        its daemon thread, which stops it if the broker ever answers.
        """
        self.stopping.set()
        self.liveness.stop()
        self.kick.set()
        if self.thread is not None:
            self.thread.join(timeout)
        if self.started:
            self._stop_listener()

    def _stop_listener(self):
        try:
            self.listener.stop()
            self.listener.wait()
        except Exception:  # stopping anyway
            LOG.debug('Listener stop failed.', exc_info=True)
