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

"""Publishing notifications on an exchange of our own.

An oslo.messaging :class:`Notifier` publishes on its transport's default
exchange (``[DEFAULT] control_exchange``: ``nova`` in nova-compute,
``openstack`` in cinder). The relay route publishes on
``[bdm_guard_events] relay_exchange`` instead, from a transport built
on a ConfigOpts of its own: oslo.messaging's options registered, the
caller's configuration files read (TLS, heartbeats, quorum queues...),
and ``control_exchange`` overridden. Nothing of the caller's ConfigOpts
is changed.
"""

import collections
import threading

from oslo_config import cfg
import oslo_messaging
from oslo_messaging import opts as messaging_opts

#: Notifiers kept per topic (one per destination host in the relay).
KEEP_NOTIFIERS = 4096


def exchange_transport(conf, url, exchange):
    """A notification transport whose notifiers publish on ``exchange``.

    :param conf: the caller's ConfigOpts (its ``config_file`` list, when
        it has one, is read again).
    :param url: the transport URL (str).
    :param exchange: the exchange name (str).
    :returns: an oslo.messaging notification transport.
    """
    own = cfg.ConfigOpts()
    for group, options in messaging_opts.list_opts():
        own.register_opts(options, group=group)
    try:
        files = list(conf.config_file or [])
    except (cfg.NoSuchOptError, AttributeError):
        files = []
    own([], project='bdm_guard', default_config_files=files)
    own.set_override('control_exchange', exchange)
    return oslo_messaging.get_notification_transport(own, url=url)


class Notifiers:
    """One messagingv2 Notifier per topic on one transport (bounded).

    :param transport: from :func:`exchange_transport`.
    :param publisher_id: the notifications' publisher id.
    """

    def __init__(self, transport, publisher_id):
        self.transport = transport
        self.publisher_id = publisher_id
        self.cache = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, topic):
        """The Notifier for ``topic`` (no retry: the caller decides)."""
        with self.lock:
            notifier = self.cache.get(topic)
            if notifier is None:
                notifier = oslo_messaging.Notifier(
                    self.transport, publisher_id=self.publisher_id,
                    driver='messagingv2', topics=[topic], retry=0)
                self.cache[topic] = notifier
                while len(self.cache) > KEEP_NOTIFIERS:
                    self.cache.popitem(last=False)
            else:
                self.cache.move_to_end(topic)
            return notifier

    def send(self, topic, priority, event_type, payload):
        """Publish one notification; raises what oslo.messaging raises."""
        getattr(self.get(topic), priority)({}, event_type, payload)
