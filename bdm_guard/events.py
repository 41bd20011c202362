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

"""Wake waits on cinder's notifications; poll only as a backstop.

One :class:`EventSource` per process listens to cinder's create
notifications in this host's pool; every wait in the process shares it.
A wait takes a :class:`Watch` before the POST (:meth:`EventSource.expect`)
or for a volume id it is given (:meth:`EventSource.watch`) and passes it as
the waker of :func:`bdm_guard.wait.wait_for_volume` or
:func:`bdm_guard.create.create_and_wait`::

    source = events.get_source(conf)          # None: not configured
    with source.expect(project_id) as watch:  # before the POST
        create.create_and_wait(client, create.VolumeRequest(size),
                               idempotency_key=key, conf=conf,
                               waker=watch, ...)

``volume.create.end``, ``volume.create.error`` (ERROR) and
``scheduler.create_volume`` (ERROR) wake the one wait for that volume,
which confirms with one GET; ``volume.create.start`` is only noted (a GET
would show nothing new). While the listener is healthy (its self-ping comes
back through the broker) a wait polls every ``backstop_interval`` at most;
when it is not, and for a wait that missed an event it expected, the wait
polls on the ``[bdm_guard]`` schedule. The deadline is the schedule's in
every case. Without ``[bdm_guard_events] transport_url``, nothing here
runs.
"""

import re
import threading
import time
import typing

from debtcollector import removals

from bdm_guard.internal.events import listener as listener_mod
from bdm_guard.internal.events import watch as watch_mod
from bdm_guard.internal.relay import route as relay_route
from bdm_guard.internal.wait import schedule
from bdm_guard import opts

__all__ = ['EventSource', 'Watch', 'get_source', 'queue_policy',
           'reset_source']

Watch = watch_mod.Watch

_SOURCE = None
_SOURCE_LOCK = threading.Lock()


class EventSource:
    """One notification listener and the waits it wakes.

    Nothing connects until :meth:`start`; the connection is made in a
    thread, so neither this nor a wait ever blocks on the broker.

    :param conf: a ConfigOpts (bdm-guard's options registered if needed)
        with ``[bdm_guard_events] transport_url`` set, unless ``transport``
        is given.
    :param host: the host name in the default pool name (default: this
        machine's).
    :param transport: an oslo.messaging notification transport to use
        instead of ``transport_url`` (tests use ``fake:``).
    """

    def __init__(self, conf=None, host: typing.Optional[str] = None,
                 transport=None):
        self.conf = opts.get_conf(conf)
        self.registry = watch_mod.Registry(health=self._health,
                                           suspect=self._suspect)
        self.listener = listener_mod.Listener(self.conf, self.registry,
                                              host=host, transport=transport)
        self._confirm = schedule.confirm_intervals(self.conf)

    @property
    def pool(self) -> str:
        """This host's pool (its queue's name on the broker)."""
        return self.listener.pool

    def _health(self):
        return self.listener.liveness.health()

    def _suspect(self):
        self.listener.suspect()

    @property
    def healthy(self) -> bool:
        """Whether the listener provably delivers (its pings come back)."""
        return self._health()[0]

    @property
    def counts(self) -> typing.Mapping[str, int]:
        """The listener's counters.

        :returns: events ``routed`` to a wait, ``kept`` for one not bound
            yet, ``dropped``, and waits that ``missed`` one.
        """
        return dict(self.registry.counts)

    def start(self) -> 'EventSource':
        """Connect and listen (in a thread); returns self."""
        self.listener.start()
        return self

    def stop(self) -> None:
        """Stop listening; waits in progress go on polling."""
        self.listener.stop()
        self.registry.wake_all()

    def wait_healthy(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until healthy (lab and tests).

        :returns: whether the listener is healthy.
        """
        pause = threading.Event()
        end = time.monotonic() + timeout
        while not self.healthy and time.monotonic() < end:
            pause.wait(0.05)
        return self.healthy

    def _watch(self, project_id, time_scale, wait):
        if wait is None and time_scale not in (None, 1.0):
            scale = time_scale

            def wait(event, seconds):
                return event.wait(seconds * scale)
        relayed = self.listener.relayed
        metadata = ({relay_route.HOST_METADATA_KEY: self.listener.host}
                    if relayed else None)
        if relayed and not self.registry.busy():
            # Idle, the pings were sparse: prove the relay path now.
            self.listener.suspect()
        return Watch(self.registry, project_id,
                     self.conf.bdm_guard_events.backstop_interval,
                     self._confirm, wait=wait, expect_start=not relayed,
                     metadata=metadata)

    @removals.removed_kwarg(
        'time_scale', message='Pass wait= (a scaled wait) instead.',
        version='0.2.0', removal_version='0.3.0')
    def expect(self, project_id: typing.Optional[str],
               time_scale: float = None, wait=None) -> Watch:
        """A watch for a volume about to be created (call before the POST).

        Events arriving before :meth:`Watch.bind` are kept and replayed.

        :param project_id: the project creating the volume; events naming
            another one are ignored (None: not checked).
        :param time_scale: deprecated: real seconds per second of the
            waiter's clock; pass ``wait`` instead.
        :param wait: ``wait(event, seconds) -> bool``, how the watch's sleep
            waits on the news (default :meth:`threading.Event.wait`; the
            lab passes a scaled one, tests one on a virtual clock).
        :returns: an unbound :class:`Watch`.
        """
        return self.registry.add(self._watch(project_id, time_scale, wait))

    @removals.removed_kwarg(
        'time_scale', message='Pass wait= (a scaled wait) instead.',
        version='0.2.0', removal_version='0.3.0')
    def watch(self, volume_id: str, project_id: typing.Optional[str],
              time_scale: float = None, wait=None) -> Watch:
        """A watch for an existing volume id (events from now on).

        :param volume_id: the volume.
        :param project_id: see :meth:`expect`.
        :param time_scale: deprecated, see :meth:`expect`.
        :param wait: see :meth:`expect`.
        :returns: a bound :class:`Watch`.
        """
        return self.registry.add(
            self._watch(project_id, time_scale, wait), volume_id)

    def find(self, volume_id: str) -> typing.Optional[Watch]:
        """A watch already bound to ``volume_id`` in this process, or None.

        nova's create path takes the watch before the POST; its wait
        function, given only the volume id, finds the same watch here.
        """
        with self.registry.lock:
            group = self.registry.watches.get(volume_id)
            return next(iter(group)) if group else None


def get_source(conf=None) -> typing.Optional[EventSource]:
    """The process's one started :class:`EventSource`, or None.

    :param conf: a ConfigOpts; the first call's is used for the process.
    :returns: None when ``[bdm_guard_events] transport_url`` is unset
        (waits then poll, as without this module).
    """
    global _SOURCE
    conf = opts.get_conf(conf)
    if not conf.bdm_guard_events.transport_url:
        return None
    with _SOURCE_LOCK:
        if _SOURCE is None:
            _SOURCE = EventSource(conf).start()
        return _SOURCE


def reset_source() -> None:
    """Stop and forget the process's source (tests, service reload)."""
    global _SOURCE
    with _SOURCE_LOCK:
        source, _SOURCE = _SOURCE, None
    if source is not None:
        source.stop()


def queue_policy(conf=None) -> typing.Optional[dict]:
    """The RabbitMQ policy that expires the pools' queues.

    oslo.messaging declares notification pool queues without arguments, so
    the expiry is set on the broker; for example::

        rabbitmqctl set_policy --apply-to queues bdm-guard-pools \\
            '^bdm_guard-' '{"expires": 600000}'

    With ``route = relay`` the pattern is the relayed hosts' queues
    (``^bdm_guard_relay\\.``); the relay's pool is left alone.

    :param conf: a ConfigOpts.
    :returns: ``{'name', 'pattern', 'definition', 'apply-to'}``, or None
        when ``queue_expiry`` is 0.
    """
    conf = opts.get_conf(conf)
    group = conf.bdm_guard_events
    seconds = group.queue_expiry
    if not seconds:
        return None
    pattern = '^%s' % listener_mod.POOL_PREFIX
    if group.route == 'relay':
        # The hosts' queues, <relay_topic>.<host>.info and .error.
        pattern = '^%s\\.' % re.escape(group.relay_topic)
    return {'name': 'bdm-guard-pools',
            'pattern': pattern,
            'definition': {'expires': seconds * 1000},
            'apply-to': 'queues'}
