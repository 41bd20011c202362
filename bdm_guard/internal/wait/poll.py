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

"""Observations of a volume, and the poll source that makes them.

An :class:`Observation` is what the waiter decides on; a source makes
them. :class:`PollSource` makes one from one ``GET /volumes/{id}``. A
second source (cinder's notifications) only has to wake the waiter through
its :class:`Waker`: the waiter confirms with one GET, so every decision
still rests on what cinder's API says.
"""

import dataclasses
import time
import typing

import debtcollector

from bdm_guard.internal import statuses
from bdm_guard import outcome as oc

AVAILABLE = 'available'
PENDING = 'pending'
FAILED = 'failed'
VANISHED = 'vanished'


@dataclasses.dataclass(frozen=True)
class Observation:
    """One look at the volume: all a schedule decides on.

    :ivar state: ``available``, ``pending``, ``failed`` or ``vanished``.
    :ivar phase: the pending status the schedule ramps for (``creating``
        until the volume is seen in another pending status).
    :ivar status: the status cinder reported, or None (no status seen).
    :ivar volume: the volume dict cinder returned, or None.
    :ivar cause: why a pending observation brought no status (an outcome
        kind: ``not_found``, ``not_sent``, ``unknown``, ``server_error``,
        ``auth``, ``throttled``, ``malformed``), else None.
    :ivar retry_after: seconds cinder asked to wait, or None.
    :ivar polls: volume GETs since the status last changed (0 on the GET
        that saw the change; GETs that brought no status count too).
    :ivar at: the clock value (seconds) when the answer came.
    :ivar phase_after: the clock value of the last GET that showed the
        volume in another status before ``phase`` began, or None (the
        phase was seen from the first status on).
    :ivar phase_seen: the clock value of the first GET that showed
        ``phase``, or None (``creating`` not seen yet).
    :ivar previous_at: the clock value of the last GET before this one
        that brought a status, or None.
    :ivar failures: GETs in a row, this one included, that brought no
        status (0 when this one did).
    """

    state: str
    phase: str = statuses.CREATING
    status: typing.Optional[str] = None
    volume: typing.Optional[dict] = None
    cause: typing.Optional[str] = None
    retry_after: typing.Optional[float] = None
    polls: int = 0
    at: float = 0.0
    phase_after: typing.Optional[float] = None
    phase_seen: typing.Optional[float] = None
    previous_at: typing.Optional[float] = None
    failures: int = 0

    @property
    def pending(self) -> bool:
        """Whether the wait goes on."""
        return self.state == PENDING


@typing.runtime_checkable
class Waker(typing.Protocol):
    """What the waiter sleeps on between two looks, and tells what it saw.

    A waker is a sleep callable that may wake early on news, like
    tenacity's ``nap.sleep_using_event``, plus three hooks. The null waker
    is :class:`SleepWaker`; the event waker is
    :class:`bdm_guard.events.Watch`.

    :ivar fresh: True when the waker was taken before the volume's POST
        and will see every event of it, so the wait's first look may wait
        (as with ``created_at``).
    :ivar volume_id: the volume the waker is bound to, or None.
    """

    fresh: bool
    volume_id: typing.Optional[str]

    def sleep(self, seconds: float) -> typing.Optional[bool]:
        """Return after ``seconds``, or earlier when there is news.

        :returns: True when news ended the sleep early; False or None
            otherwise (a waker that returns None is never taken as woken,
            so each of its looks is a planned one).
        """

    def bind(self, volume_id: str) -> None:
        """Say which volume the wait is for (after its POST)."""

    def observed(self, observation: Observation) -> None:
        """Be told what each GET showed."""

    def backstop(self, interval: float) -> float:
        """The interval (seconds) to sleep instead of ``interval``."""


class SleepWaker:
    """The null :class:`Waker`: it only sleeps (polling alone).

    :param sleep: ``sleep(seconds)``.
    """

    fresh = False

    def __init__(self, sleep: typing.Callable[[float], None] = time.sleep):
        self._sleep = sleep
        self.volume_id = None

    def sleep(self, seconds: float) -> bool:
        self._sleep(seconds)
        return False

    def bind(self, volume_id: str) -> None:
        self.volume_id = volume_id

    def observed(self, observation: Observation) -> None:
        """Nothing to compare: polling alone."""

    def backstop(self, interval: float) -> float:
        return interval


def as_waker(waker, sleep: typing.Callable[[float], None]) -> Waker:
    """The :class:`Waker` to use for a caller's ``waker`` argument.

    :param waker: None (poll alone, sleeping with ``sleep``), a
        :class:`Waker`, or (deprecated) any object with only a ``sleep``
        method, which is wrapped in a :class:`SleepWaker`.
    :param sleep: ``sleep(seconds)`` for the null waker.
    :returns: a :class:`Waker`.
    """
    if waker is None:
        return SleepWaker(sleep)
    if isinstance(waker, Waker):
        return waker
    debtcollector.deprecate(
        'A waker with only a sleep() method', version='0.2.0',
        removal_version='0.3.0',
        message='Implement bdm_guard.internal.wait.poll.Waker (or '
                'subclass SleepWaker).', category=DeprecationWarning)
    return SleepWaker(waker.sleep)


class PollSource:
    """One ``GET /volumes/{id}`` -> one :class:`Observation`.

    :param client: a :class:`bdm_guard.client.VolumeClient`.
    :param volume_id: the canonical volume id.
    :param pending_statuses: statuses that keep the wait going.
    :param grace: seconds after ``created`` during which a 404 is lag.
    :param created: the clock value at which the create returned.
    :param clock: a monotonic clock in seconds.
    :param deadline: a :class:`bdm_guard.internal.retry.Deadline`; each
        GET is given what is left of it, or None.
    """

    def __init__(self, client, volume_id: str,
                 pending_statuses: typing.Collection[str], grace: float,
                 created: float, clock: typing.Callable[[], float],
                 deadline=None):
        self.client = client
        self.volume_id = volume_id
        self.pending_statuses = frozenset(pending_statuses)
        self.grace = grace
        self.created = created
        self.clock = clock
        self.deadline = deadline
        self.phase = statuses.CREATING
        self.polls = 0
        self._status = None
        self._since_change = 0
        self._last_seen = None
        self._phase_after = None
        self._phase_seen = None
        self._failures = 0

    def _make(self, state, status=None, volume=None, cause=None,
              retry_after=None):
        now = self.clock()
        previous = self._last_seen
        if status is not None and status != self._status:
            self._since_change = 0
            if status in self.pending_statuses and (
                    status != self.phase or self._phase_seen is None):
                if status != self.phase:
                    self._phase_after = self._last_seen
                self.phase = status
                self._phase_seen = now
            self._status = status
        else:
            self._since_change += 1
        if status is not None:
            self._last_seen = now
            self._failures = 0
        else:
            self._failures += 1
        return Observation(state, self.phase, status, volume, cause,
                           retry_after, self._since_change, now,
                           self._phase_after, self._phase_seen, previous,
                           self._failures)

    def _volume(self, volume):
        status = volume.get('status')
        if not isinstance(status, str) or not status:
            return self._make(PENDING, cause=oc.MALFORMED)
        if status == statuses.AVAILABLE:
            return self._make(AVAILABLE, status, volume)
        if status in self.pending_statuses:
            return self._make(PENDING, status, volume)
        return self._make(FAILED, status, volume)

    def observe(self, extra: bool = False) -> Observation:
        """Send one GET and say what it showed.

        :param extra: True for a look the schedule did not plan (news woke
            the wait before its planned GET): it is counted in ``polls``
            and its observation made as usual, but the history the
            schedule plans from (GETs since the change, the phase window,
            the last status seen, failures in a row) stays as it was, so
            the planned GETs show what they would have shown without it.
        :raises bdm_guard.exception.CinderConfigError: see
            :meth:`bdm_guard.cinder.VolumeClient.get_volume`.
        """
        if not extra:
            return self._observe()
        history = self._history()
        try:
            return self._observe()
        finally:
            (self.phase, self._status, self._since_change, self._last_seen,
             self._phase_after, self._phase_seen, self._failures) = history

    def _history(self):
        return (self.phase, self._status, self._since_change,
                self._last_seen, self._phase_after, self._phase_seen,
                self._failures)

    def _observe(self):
        self.polls += 1
        timeout = self.deadline.remaining() if self.deadline else None
        result = self.client.get_volume(self.volume_id, timeout=timeout)
        if result.kind == oc.OK:
            return self._volume(result.body)
        if result.kind == oc.NOT_FOUND:
            if self.clock() - self.created < self.grace:
                return self._make(PENDING, cause=oc.NOT_FOUND)
            return self._make(VANISHED)
        if result.kind == oc.AUTH:
            self.client.reauthenticate()
        return self._make(PENDING, cause=result.kind,
                          retry_after=result.retry_after)
