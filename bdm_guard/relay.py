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

"""``bdm-guard-relay``: cinder's create notifications, to the host that waits.

Every instance consumes one shared oslo.messaging notification pool
(``[bdm_guard_events] relay_pool``) on cinder's exchange, so each
notification reaches one instance: run two or more for HA (competing
consumers; a message an instance took and did not finish is redelivered
to another when its connection drops). For each ``volume.create.end``,
``volume.create.error`` or ``scheduler.create_volume`` of a volume whose
metadata names a host (:data:`bdm_guard.internal.relay.route.
HOST_METADATA_KEY`), it publishes one copy on ``relay_exchange`` with the
routing key ``<relay_topic>.<host>.<priority>``; the host's listener
(``route = relay``) binds only its own key. Everything else is acked and
dropped. The hosts' self-pings come through the same pool and go back
the same way, so a host's health covers the relay.

Nothing here keeps state: a relay restarted loses nothing but the
messages the broker redelivers.
"""

import collections
import signal
import sys
import threading
import typing

from oslo_config import cfg
from oslo_log import log as logging
import oslo_messaging

from bdm_guard.internal.events import listener as listener_mod
from bdm_guard.internal.relay import bus
from bdm_guard.internal.relay import route
from bdm_guard import opts

LOG = logging.getLogger(__name__)

__all__ = ['Relay', 'main', 'PING_TOPIC']

#: The topic (on ``relay_exchange``) the hosts' self-pings are sent to.
PING_TOPIC = route.PING_TOPIC


class _Endpoint:
    def __init__(self, relay):
        self.relay = relay

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        return self.relay.received('info', event_type, payload)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        return self.relay.received('error', event_type, payload)


class Relay:
    """One relay instance.

    :param conf: a ConfigOpts with ``[bdm_guard_events] transport_url``
        set (bdm-guard's options registered if needed).
    :param name: this instance's name in its publisher id (default: the
        pool's name).
    """

    def __init__(self, conf=None, name: typing.Optional[str] = None):
        self.conf = opts.get_conf(conf)
        self.group = self.conf.bdm_guard_events
        self.name = name or self.group.relay_pool
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.listener = self.pings = None
        self.notifiers = None

    def received(self, priority, event_type, payload):
        """One notification of the pool (the listener's threads).

        :returns: ``oslo_messaging.NotificationResult.REQUEUE`` when the
            copy could not be published (the broker gives the message to
            an instance again), else None (acked).
        """
        forward = route.decide(priority, event_type, payload)
        if forward is None:
            with self.lock:
                self.counts['dropped'] += 1
            return None
        try:
            self.notifiers.send(route.host_topic(self.group, forward.host),
                                forward.priority, forward.event_type,
                                forward.payload)
        except Exception:  # the broker redelivers it
            LOG.warning('Could not forward %(type)s to host %(host)s; '
                        'requeued.', {'type': event_type,
                                      'host': forward.host}, exc_info=True)
            with self.lock:
                self.counts['requeued'] += 1
            return oslo_messaging.NotificationResult.REQUEUE
        with self.lock:
            self.counts['pings' if forward.ping else 'forwarded'] += 1
        return None

    def start(self) -> 'Relay':
        """Connect, declare the pool and consume (blocks until connected).

        :returns: self.
        """
        url = self.group.transport_url
        transport = oslo_messaging.get_notification_transport(
            self.conf, url=url)
        self.notifiers = bus.Notifiers(
            bus.exchange_transport(self.conf, url, self.group.relay_exchange),
            publisher_id='bdm_guard_relay.%s' % self.name)
        endpoints = [_Endpoint(self)]
        # cinder's notifications: one pool shared by every instance.
        self.listener = oslo_messaging.get_notification_listener(
            transport, [oslo_messaging.Target(exchange=self.group.exchange,
                                              topic=self.group.topic)],
            endpoints, executor='threading', pool=self.group.relay_pool,
            allow_requeue=True)
        # The hosts' pings: the queues their notifier declares
        # (bdm_guard_relay_ping.info), shared the same way.
        self.pings = oslo_messaging.get_notification_listener(
            transport, [oslo_messaging.Target(
                exchange=self.group.relay_exchange, topic=PING_TOPIC)],
            endpoints, executor='threading', allow_requeue=True)
        self.listener.start()
        self.pings.start()
        LOG.info('Relaying cinder\'s create notifications from %(url)s, '
                 'exchange %(exchange)s, topic %(topic)s, pool %(pool)s, to '
                 'exchange %(relay)s.',
                 {'url': listener_mod.mask_url(url),
                  'exchange': self.group.exchange, 'topic': self.group.topic,
                  'pool': self.group.relay_pool,
                  'relay': self.group.relay_exchange})
        return self

    def stop(self) -> None:
        """Stop consuming; unfinished messages go back to the pool."""
        for listener in (self.listener, self.pings):
            if listener is None:
                continue
            try:
                listener.stop()
                listener.wait()
            except Exception:  # stopping anyway
                LOG.debug('Relay stop failed.', exc_info=True)
        self.listener = self.pings = None


def main(argv: typing.Optional[typing.Sequence[str]] = None) -> int:
    """The ``bdm-guard-relay`` console script.

    Reads ``--config-file`` (``[bdm_guard_events]``, ``[DEFAULT]``
    logging, ``[oslo_messaging_rabbit]``), runs until SIGTERM or SIGINT.

    :returns: the exit status (0; 1 without ``transport_url``).
    """
    conf = cfg.ConfigOpts()
    logging.register_options(conf)
    opts.register_opts(conf)
    conf(list(sys.argv[1:] if argv is None else argv),
         project='bdm_guard', prog='bdm-guard-relay')
    logging.setup(conf, 'bdm_guard')
    if not conf.bdm_guard_events.transport_url:
        LOG.error('[bdm_guard_events] transport_url is not set.')
        return 1
    done = threading.Event()

    def stop(signum, frame):
        done.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    relay = Relay(conf).start()
    while not done.wait(1.0):
        pass
    relay.stop()
    return 0
