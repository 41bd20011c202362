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

"""What the relay forwards, and to which host: no broker, no clock.

A waiting host names itself in the volume's metadata
(:data:`HOST_METADATA_KEY`, written by the creator in its POST), and
cinder copies the volume's metadata into every create notification
(``metadata`` in ``volume_utils._usage_from_volume``: a list of
``{'key', 'value'}`` rows, or a dict; ``volume_properties.metadata`` in
``scheduler.create_volume``). The relay needs no state and no database:
each notification names its one destination, or none.

Only what wakes a wait is forwarded (``volume.create.end``,
``volume.create.error``, ``scheduler.create_volume``): the waits of a
relayed host do not expect ``volume.create.start``, so one create costs
the broker its two notifications into the relay's pool plus one copy to
the host, whatever the number of hosts.
"""

import dataclasses
import re
import typing

from bdm_guard.internal.events import watch as watch_mod

#: The volume metadata key naming the compute host that waits.
HOST_METADATA_KEY = 'bdm_guard_host'
#: The self-ping a host sends through the relay.
PING_EVENT = 'bdm_guard.ping'
#: The topic (on ``relay_exchange``) the hosts' self-pings are sent to.
PING_TOPIC = 'bdm_guard_relay_ping'
#: A host name usable in a routing key: no AMQP wildcard, no empty word.
HOST_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$')
#: Longest host name (a routing key is at most 255 bytes).
HOST_MAX = 200

#: The kinds forwarded (those that wake a wait).
FORWARDED = (watch_mod.ENDED, watch_mod.FAILED)


@dataclasses.dataclass(frozen=True)
class Forward:
    """One notification to send on.

    :ivar host: the destination host (its routing key's last part).
    :ivar priority: ``info`` or ``error``, as it came.
    :ivar event_type: as it came.
    :ivar payload: as it came (dict).
    :ivar ping: whether it is a host's self-ping.
    """

    host: str
    priority: str
    event_type: str
    payload: dict
    ping: bool = False


def host_topic(group, host: str) -> str:
    """The topic a host's forwarded notifications are published to.

    :param group: the ``[bdm_guard_events]`` group.
    :param host: the host.
    """
    return '%s.%s' % (group.relay_topic, host)


def valid_host(host) -> bool:
    """Whether ``host`` can name a routing key (str, no wildcard)."""
    return (isinstance(host, str) and len(host) <= HOST_MAX
            and HOST_PATTERN.match(host) is not None)


def _metadata_value(metadata, key):
    if isinstance(metadata, dict):
        return metadata.get(key)
    if isinstance(metadata, list):
        for row in metadata:
            if isinstance(row, dict) and row.get('key') == key:
                return row.get('value')
    return None


def host_of(payload) -> typing.Optional[str]:
    """The host a create notification's volume names, or None."""
    if not isinstance(payload, dict):
        return None
    places = [payload.get('metadata')]
    props = payload.get('volume_properties')
    if isinstance(props, dict):
        places.append(props.get('metadata'))
    spec = payload.get('request_spec')
    if isinstance(spec, dict) and isinstance(
            spec.get('volume_properties'), dict):
        places.append(spec['volume_properties'].get('metadata'))
    for metadata in places:
        host = _metadata_value(metadata, HOST_METADATA_KEY)
        if host is not None:
            return host if valid_host(host) else None
    return None


def decide(priority, event_type, payload) -> typing.Optional[Forward]:
    """Where one notification of the relay's pool goes, or None (dropped).

    :param priority: oslo.messaging's priority (``info``, ``error``...).
    :param event_type: the notification's event type.
    :param payload: its payload.
    :returns: a :class:`Forward`, or None for anything else: another
        event type, ``volume.create.start``, a volume naming no host or a
        host that cannot be a routing key, a malformed payload.
    """
    if event_type == PING_EVENT:
        host = payload.get('host') if isinstance(payload, dict) else None
        if not valid_host(host):
            return None
        return Forward(host, 'info', event_type, payload, ping=True)
    event = watch_mod.event_from(priority, event_type, payload, now=0.0)
    if event is None or event.kind not in FORWARDED:
        return None
    host = host_of(payload)
    if host is None:
        return None
    return Forward(host, priority.lower(), event_type, payload)
