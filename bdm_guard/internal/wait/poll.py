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

from bdm_guard.internal import statuses
from bdm_guard import outcome as oc

AVAILABLE = 'available'
PENDING = 'pending'
FAILED = 'failed'
VANISHED = 'vanished'


@dataclasses.dataclass(frozen=True)
class Observation:
    """One look at the volume.

    :ivar state: ``available``, ``pending``, ``failed`` or ``vanished``.
    :ivar phase: the pending status the schedule ramps for (``creating``
        until the volume is seen in another pending status).
    :ivar status: the status cinder reported, or None (no status seen).
    :ivar volume: the volume dict cinder returned, or None.
    :ivar cause: why a pending observation brought no status (an outcome
        kind: ``not_found``, ``not_sent``, ``unknown``, ``server_error``,
        ``auth``, ``throttled``, ``malformed``), else None.
    :ivar retry_after: seconds cinder asked to wait, or None.
    """

    state: str
    phase: str = statuses.CREATING
    status: typing.Optional[str] = None
    volume: typing.Optional[dict] = None
    cause: typing.Optional[str] = None
    retry_after: typing.Optional[float] = None

    @property
    def pending(self) -> bool:
        """Whether the wait goes on."""
        return self.state == PENDING


class Waker(typing.Protocol):
    """What the waiter sleeps on between two looks."""

    def sleep(self, seconds: float) -> None:
        """Return after ``seconds``, or earlier when there is news."""


class SleepWaker:
    """A :class:`Waker` that only sleeps (polling alone).

    :param sleep: ``sleep(seconds)``.
    """

    def __init__(self, sleep: typing.Callable[[float], None] = time.sleep):
        self._sleep = sleep

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)


class PollSource:
    """One ``GET /volumes/{id}`` -> one :class:`Observation`.

    :param client: a :class:`bdm_guard.internal.client.VolumeClient`.
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

    def _pending(self, cause, retry_after=None, volume=None):
        return Observation(PENDING, self.phase, cause=cause,
                           retry_after=retry_after, volume=volume)

    def _volume(self, volume):
        status = volume.get('status')
        if not isinstance(status, str) or not status:
            return self._pending(oc.MALFORMED)
        if status == statuses.AVAILABLE:
            return Observation(AVAILABLE, self.phase, status, volume)
        if status in self.pending_statuses:
            self.phase = status
            return Observation(PENDING, status, status, volume)
        return Observation(FAILED, self.phase, status, volume)

    def observe(self) -> Observation:
        """Send one GET and say what it showed.

        :raises bdm_guard.exception.CinderConfigError: see
            :meth:`bdm_guard.cinder.VolumeClient.get_volume`.
        """
        self.polls += 1
        timeout = self.deadline.remaining() if self.deadline else None
        result = self.client.get_volume(self.volume_id, timeout=timeout)
        if result.kind == oc.OK:
            return self._volume(result.body)
        if result.kind == oc.NOT_FOUND:
            if self.clock() - self.created < self.grace:
                return self._pending(oc.NOT_FOUND)
            return Observation(VANISHED, self.phase)
        if result.kind == oc.AUTH:
            self.client.reauthenticate()
        return self._pending(result.kind, result.retry_after)
