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

"""Routing cinder's notifications to the waits that expect them.

A :class:`Registry` holds the volume ids this process waits for and hands
each event to its :class:`Watch` only; events for other volumes are
dropped on the spot (no lookup, no GET). A watch taken before the POST
(no id yet) makes the registry keep recent events for a short while, so
that an event published between the POST and :meth:`Watch.bind` is
replayed. The watch is the waiter's :class:`bdm_guard.internal.wait.poll.
Waker`: an event wakes it, the waiter confirms with one GET.
"""

import collections
import dataclasses
import threading
import time
import typing

from oslo_log import log as logging

from bdm_guard.internal import statuses

LOG = logging.getLogger(__name__)

#: An event that announces the create has started (no wake: no GET).
STARTED = 'started'
#: An event that announces ``available``.
ENDED = 'ended'
#: An event that announces ``error``.
FAILED = 'failed'

#: ``(priority, event_type) -> kind``: what this source understands.
KINDS = {
    ('INFO', 'volume.create.start'): STARTED,
    ('INFO', 'volume.create.end'): ENDED,
    ('ERROR', 'scheduler.create_volume'): FAILED,
    ('ERROR', 'volume.create.error'): FAILED,
}

#: Seconds an event is kept for a watch not bound yet.
RECENT_SECONDS = 300.0
#: Most volume ids events are kept for, for watches not bound yet.
RECENT_LIMIT = 20000
#: Most events kept per volume id (a wait needs at most one of each kind;
#: a storm of duplicates for one id must not grow the memory).
RECENT_PER_VOLUME = 4
#: Seconds between two WARNINGs about notifications of another project;
#: the ones in between are counted into the next.
FOREIGN_WARNING_INTERVAL = 60.0


@dataclasses.dataclass(frozen=True)
class Event:
    """One notification about one volume.

    :ivar kind: :data:`STARTED`, :data:`ENDED` or :data:`FAILED`.
    :ivar volume_id: the volume it names.
    :ivar tenant_id: the project it names, or None when it names none.
    :ivar received: ``time.monotonic()`` when it arrived.
    """

    kind: str
    volume_id: str
    tenant_id: typing.Optional[str]
    received: float


def event_from(priority, event_type, payload, now=None):
    """The :class:`Event` of a notification, or None for any other one.

    Anything malformed is no event: an ``event_type`` or priority that is
    not a string, a payload that is not a dict, a volume id that is not a
    string, and a project (``tenant_id`` or ``volume_properties.
    project_id``) that is given but is not a string (it is never taken for
    "names no project").
    """
    if not isinstance(event_type, str) or not isinstance(priority, str):
        return None
    kind = KINDS.get((priority.upper(), event_type))
    if kind is None or not isinstance(payload, dict):
        return None
    volume_id = payload.get('volume_id')
    if not isinstance(volume_id, str):
        return None
    tenant = payload.get('tenant_id')
    if tenant is None:
        props = payload.get('volume_properties')
        if not isinstance(props, dict):
            spec = payload.get('request_spec')
            props = (spec or {}).get('volume_properties') if isinstance(
                spec, dict) else None
        if isinstance(props, dict):
            tenant = props.get('project_id')
    if tenant is not None and not isinstance(tenant, str):
        return None
    return Event(kind, volume_id, tenant,
                 time.monotonic() if now is None else now)


class _ForeignLog:
    """One WARNING a minute about notifications naming another project."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.last = None
        self.pending = 0
        self.lock = threading.Lock()

    def note(self, event, project_id):
        with self.lock:
            self.pending += 1
            now = self.clock()
            if (self.last is not None
                    and now - self.last < FOREIGN_WARNING_INTERVAL):
                count = None
            else:
                count, self.pending, self.last = self.pending, 0, now
        if count is None:
            LOG.debug('Ignored a notification about volume %(id)s naming '
                      'project %(tenant)s, not %(project)s.',
                      {'id': event.volume_id, 'tenant': event.tenant_id,
                       'project': project_id})
            return
        LOG.warning('Ignored %(count)d notification(s) naming another '
                    'project than the wait\'s, the last about volume '
                    '%(id)s naming project %(tenant)s, not %(project)s.',
                    {'count': count, 'id': event.volume_id,
                     'tenant': event.tenant_id, 'project': project_id})


FOREIGN = _ForeignLog()


class Watch:
    """One wait's view of the notifications: the waiter's event waker.

    Made by :meth:`bdm_guard.events.EventSource.expect` or ``watch``;
    pass it as ``waker`` to :func:`bdm_guard.wait.wait_for_volume` or
    :func:`bdm_guard.create.create_and_wait`, and close it (or use it as a
    context manager) when the wait is over.

    :param registry: the :class:`Registry`.
    :param project_id: the project the volume belongs to; an event naming
        another project is ignored. None: not checked.
    :param backstop_interval: seconds, the longest sleep while healthy.
    :param confirm_intervals: ``confirm_intervals(n) -> seconds``; kept
        for callers, no longer used: after an event the next GET did not
        confirm, the wait polls on its own schedule (no more GETs than
        polling alone).
    :param time_scale: real seconds per second of the waiter's clock (1.0
        except in the lab's scaled runs).
    :param wait: ``wait(event, seconds) -> bool``, how a sleep waits on the
        news (default :meth:`threading.Event.wait`; tests pass one on a
        virtual clock).
    :param expect_start: whether ``volume.create.start`` comes (False on
        the relay route, which forwards only the events that wake): a
        volume seen ``downloading`` without it is then no missed event.
    :param metadata: volume metadata the creator adds to its POST (dict of
        str; the relay route's :data:`bdm_guard.internal.relay.route.
        HOST_METADATA_KEY`), or None.

    :ivar fresh: True for a watch taken before its volume's POST
        (:meth:`Registry.add` without an id): it holds every event of that
        volume, so the wait's first look can wait for one. nova's wait,
        which is given only the volume id, learns this way that the volume
        was just created.
    """

    def __init__(self, registry, project_id, backstop_interval,
                 confirm_intervals, time_scale=1.0, wait=None,
                 expect_start=True, metadata=None):
        self.registry = registry
        self.expect_start = expect_start
        self.metadata = dict(metadata or {})
        self.project_id = project_id
        self.backstop_interval = backstop_interval
        self.confirm_intervals = confirm_intervals
        self.time_scale = time_scale
        self.volume_id = None
        self.seen = collections.Counter()
        self.unconfirmed = None
        self.confirming = None
        self.missed = False
        self.ignored = 0
        self.wakes = 0
        self.synced = None
        self.fresh = False
        self.looked = None
        self._news = threading.Event()
        self._wait = wait or (lambda event, seconds: event.wait(seconds))
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def bind(self, volume_id: str) -> None:
        """Say which volume this watch is for; replay what already came."""
        self.registry.bind(self, volume_id)

    def close(self) -> None:
        """Stop routing events here (idempotent)."""
        self.registry.release(self)

    def sync(self) -> bool:
        """Trust the events from now on if the listener is healthy.

        :returns: whether it is.
        """
        healthy, epoch = self.registry.health()
        if healthy and self.synced is None:
            self.synced = epoch
        return healthy

    @property
    def fallback(self) -> bool:
        """Whether the wait polls on the plain schedule.

        It does when it missed an event, when the listener is not healthy,
        and after the listener lost its health while this wait was on
        (events may have been lost), until the next GET resyncs it.
        """
        healthy, epoch = self.registry.health()
        return self.missed or not healthy or self.synced != epoch

    def deliver(self, event: Event) -> None:
        """Take one event for this watch's volume (the listener's thread)."""
        if (self.project_id and event.tenant_id
                and event.tenant_id != self.project_id):
            self.ignored += 1
            FOREIGN.note(event, self.project_id)
            return
        with self._lock:
            self.seen[event.kind] += 1
            if event.kind != STARTED:
                self.unconfirmed = event.kind
                if self.confirming is None:
                    self._news.set()
                # Else an earlier event is not confirmed yet: the wait
                # already polls on the schedule, and one more event must
                # not add a GET (a storm would send one per event).

    def wake(self) -> None:
        """Wake a sleeping wait (the listener's health changed)."""
        self._news.set()

    def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` of the waiter's clock, or until there is news.

        :returns: whether news ended the sleep (the waiter then takes its
            next look as an extra one if its planned GET is not due yet).
        """
        woken = bool(self._wait(self._news,
                                max(0.0, seconds) * self.time_scale))
        if woken:
            self.wakes += 1
        self._news.clear()
        return woken

    def backstop(self, interval: float) -> float:
        """The interval to sleep instead of the schedule's ``interval``."""
        if self.fallback:
            return interval
        if self.confirming is not None:
            # An event the API does not show yet: poll on the schedule
            # itself, so that events never cost more GETs than polling.
            self.confirming += 1
            return interval
        return max(interval, self.backstop_interval)

    def observed(self, observation) -> None:
        """Compare one GET with the events (called after every GET)."""
        status = observation.status
        healthy, epoch = self.registry.health()
        resynced = self.synced != epoch
        if healthy:
            self.synced = epoch
        if status is None:
            # No status (a 404 within the read-after-write lag, a reset):
            # the API does not show the announced change yet either, so
            # confirm it on the schedule, not after the backstop.
            with self._lock:
                if self.unconfirmed is not None and self.confirming is None:
                    self.confirming = 0
            return
        with self._lock:
            announced = self.unconfirmed
            if announced is not None:
                if announced == ENDED:
                    agrees = status == statuses.AVAILABLE
                else:
                    agrees = (not observation.pending
                              and status != statuses.AVAILABLE)
                if agrees:
                    self.unconfirmed = self.confirming = None
                elif observation.pending:
                    # Ahead of what the API shows: confirm on the schedule.
                    if self.confirming is None:
                        self.confirming = 0
                    return
            expected = None
            before, self.looked = self.looked, status
            if not self.fresh and before is None:
                # A watch for a volume it was given: what happened before
                # the watch was taken was never its to see.
                pass
            elif not self.fresh:
                # Only a change this wait saw happen needs its event.
                if (status == statuses.AVAILABLE and before != status
                        and not self.seen[ENDED]):
                    expected = 'volume.create.end'
            elif status == statuses.AVAILABLE and not self.seen[ENDED]:
                expected = 'volume.create.end'
            elif (self.expect_start and observation.pending
                  and status != statuses.CREATING
                  and not self.seen[STARTED]):
                expected = 'volume.create.start'
        if expected and not self.missed and not resynced:
            self.missed = True
            LOG.warning('Volume %(id)s is %(status)s but no %(event)s came: '
                        'this wait falls back to polling.',
                        {'id': self.volume_id, 'status': status,
                         'event': expected})
            self.registry.suspect()


class Registry:
    """The volume ids this process waits for, and their watches.

    :param health: ``health() -> (healthy, epoch)``, the listener's health
        and how many times it was lost (see :meth:`bdm_guard.internal.
        events.listener.Liveness.health`).
    :param suspect: ``suspect()``, told when a wait missed an event.
    :param clock: a monotonic clock in seconds.
    """

    def __init__(self, health=lambda: (False, 0), suspect=lambda: None,
                 clock=time.monotonic):
        self.health = health
        self._suspect = suspect
        self.clock = clock
        self.watches = {}
        self.unbound = set()
        self.recent = collections.OrderedDict()
        self.counts = collections.Counter()
        self.lock = threading.Lock()

    def suspect(self):
        """A wait missed an event: ping now (that wait polls on its own).

        One wait's miss says nothing of the others: health stays what the
        pings say ("this process receives its own pings").
        """
        self.counts['missed'] += 1
        self._suspect()

    def busy(self):
        """Whether any wait is registered (bound or not)."""
        with self.lock:
            return bool(self.watches or self.unbound)

    def add(self, watch, volume_id=None):
        """Register ``watch``, unbound (before the POST) or for an id.

        A watch added unbound is ``fresh``: it sees every event of the
        volume it is bound to next, so its wait need not look at once.
        """
        if volume_id is None:
            watch.fresh = True
            watch.sync()
            with self.lock:
                self.unbound.add(watch)
        else:
            self.bind(watch, volume_id)
        return watch

    def bind(self, watch, volume_id):
        """Route ``volume_id``'s events to ``watch``; replay kept ones."""
        watch.sync()
        with self.lock:
            self.unbound.discard(watch)
            watch.volume_id = volume_id
            self.watches.setdefault(volume_id, set()).add(watch)
            kept = list(self.recent.get(volume_id, ()))
            if not self.unbound:
                self.recent.clear()
        for event in kept:
            watch.deliver(event)

    def release(self, watch):
        """Forget ``watch``."""
        with self.lock:
            self.unbound.discard(watch)
            group = self.watches.get(watch.volume_id)
            if group is not None:
                group.discard(watch)
                if not group:
                    del self.watches[watch.volume_id]
            if not self.unbound:
                self.recent.clear()

    def dispatch(self, event):
        """Hand ``event`` to its watches, keep it, or drop it."""
        with self.lock:
            group = list(self.watches.get(event.volume_id, ()))
            if not group:
                if self.unbound:
                    self._keep(event)
                    self.counts['kept'] += 1
                else:
                    self.counts['dropped'] += 1
                return
            self.counts['routed'] += 1
        for watch in group:
            watch.deliver(event)

    def _keep(self, event):
        kept = self.recent.setdefault(event.volume_id, [])
        # The latest event of each kind is all a wait needs.
        kept[:] = [e for e in kept if e.kind != event.kind][
            -(RECENT_PER_VOLUME - 1):] + [event]
        self.recent.move_to_end(event.volume_id)
        horizon = self.clock() - RECENT_SECONDS
        while self.recent and (
                len(self.recent) > RECENT_LIMIT
                or next(iter(self.recent.values()))[-1].received < horizon):
            self.recent.popitem(last=False)

    def wake_all(self):
        """Wake every wait (the listener's health changed)."""
        with self.lock:
            group = [w for ws in self.watches.values() for w in ws]
        for watch in group:
            watch.wake()
