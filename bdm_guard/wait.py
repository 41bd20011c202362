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

"""Wait for a new volume to become available, driven by its status.

Replaces nova's fixed 61 x 3 s poll (``ComputeManager.
_await_block_device_map_created``). The behaviour table is in
``doc/source/contributor/design.rst``; the schedule is
:mod:`bdm_guard.internal.wait.schedule`, one look at the volume is
:mod:`bdm_guard.internal.wait.poll`.
"""

import collections
import dataclasses
import random
import time
import typing

from oslo_log import log as logging
import tenacity

from bdm_guard import exception
from bdm_guard.internal import legacy
from bdm_guard.internal import retry
from bdm_guard.internal import statuses
from bdm_guard.internal.wait import completion
from bdm_guard.internal.wait import poll
from bdm_guard.internal.wait import reason as reason_mod
from bdm_guard.internal.wait import schedule
from bdm_guard import opts
from bdm_guard import outcome as oc

LOG = logging.getLogger(__name__)

__all__ = ['Budget', 'WaitReport', 'Waiter', 'wait_for_volume']

UNAUTHORIZED = 'unauthorized'

#: Consecutive HTTP 401 answers, each after a re-authentication, that end
#: a wait: a token that a fresh authentication does not fix is a
#: configuration problem no deadline clears (keystoneauth's own
#: ``Session`` re-authenticates once per 401).
UNAUTHORIZED_LIMIT = 3

#: Seconds slept when a schedule fails on an input nobody foresaw: the wait
#: goes on (``completion_max_interval``'s default), it never crashes.
FALLBACK_INTERVAL = 8.0

_CAUSES = {'not_found': 'HTTP 404', 'auth': 'HTTP 401',
           'throttled': 'rate-limited', 'not_sent': 'connection failures',
           'unknown': 'lost or non-cinder answers',
           'server_error': 'cinder 5xx faults',
           'malformed': 'malformed answers'}


def _never_seen(retries):
    causes = ', '.join('%d %s' % (count, _CAUSES.get(cause, cause))
                       for cause, count in retries.most_common())
    return 'never seen (%s)' % (causes or 'no answer')


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long a wait may take: nova's budget, and the volume's size.

    The deadline is ``max(min(deadline_ceiling, base_deadline + per_gib *
    size_gb), nova_budget)`` seconds, with ``per_gib =
    max(per_gib_allowance, per_gib_floor)`` and nova's own budget
    ``(allocate_retries + 1) * allocate_retries_interval``
    (:func:`bdm_guard.internal.wait.schedule.wait_deadline`; the options
    are ``[bdm_guard]``'s, see :mod:`bdm_guard.opts`). Every field is
    optional; ``Budget()`` is bdm-guard's own deadline alone.

    :ivar size_gb: the size in GiB (int >= 0) of a volume created from an
        image, snapshot or backup: adds ``per_gib_allowance`` per GiB.
        None for a blank volume, or to read the size from the volume once
        it is seen copying (the deadline is then extended).
    :ivar allocate_retries: nova's ``block_device_allocate_retries``
        (int >= 0); with ``allocate_retries_interval`` the deadline is
        never shorter than nova's own budget.
    :ivar allocate_retries_interval: nova's
        ``block_device_allocate_retries_interval`` (seconds >= 0).
    :ivar per_gib_floor: seconds per GiB the per-GiB allowance never goes
        below (nova's ``reimage_timeout_per_gb``), or None.
    :raises bdm_guard.exception.InvalidInput: a field that is not a
        non-negative number of the right type (checked when made).
    """

    size_gb: typing.Optional[int] = None
    allocate_retries: typing.Optional[int] = None
    allocate_retries_interval: typing.Optional[float] = None
    per_gib_floor: typing.Optional[float] = None

    def __post_init__(self):
        schedule.check_number('size_gb', self.size_gb)
        schedule.check_number('allocate_retries', self.allocate_retries)
        schedule.check_number('allocate_retries_interval',
                              self.allocate_retries_interval, integer=False)
        schedule.check_number('per_gib_floor', self.per_gib_floor,
                              integer=False)

    @classmethod
    def nova_defaults(cls, **fields) -> 'Budget':
        """nova's default budget: 60 retries 3 s apart (nova 34).

        :param fields: other fields (``size_gb``, ``per_gib_floor``).
        """
        fields.setdefault('allocate_retries', schedule.NOVA_DEFAULT_RETRIES)
        fields.setdefault('allocate_retries_interval',
                          schedule.NOVA_DEFAULT_INTERVAL)
        return cls(**fields)

    def for_size(self, size_gb: typing.Optional[int]) -> 'Budget':
        """The same budget for a volume of ``size_gb`` GiB (or None)."""
        return dataclasses.replace(self, size_gb=size_gb)

    def seconds(self, conf) -> float:
        """The deadline in seconds, under ``conf``'s ``[bdm_guard]``.

        :param conf: a ConfigOpts with ``[bdm_guard]`` registered.
        """
        return schedule.wait_deadline(
            conf, self.size_gb, self.allocate_retries,
            self.allocate_retries_interval, self.per_gib_floor)


#: 0.x's flat keywords for a :class:`Budget` (deprecated in 0.2.0).
BUDGET_FIELDS = ('size_gb', 'allocate_retries', 'allocate_retries_interval',
                 'per_gib_floor')


def check_budget(budget) -> Budget:
    """``budget``, or ``Budget()`` for None.

    :raises bdm_guard.exception.InvalidInput: not a :class:`Budget`.
    """
    if budget is None:
        return Budget()
    if not isinstance(budget, Budget):
        raise exception.InvalidInput(
            reason='budget must be a bdm_guard.wait.Budget, got %s'
                   % exception.shorten(budget))
    return budget


@dataclasses.dataclass
class WaitReport:
    """What one wait saw.

    :ivar volume: the last volume dict cinder returned (or None).
    :ivar polls: volume GETs sent (message GETs not counted).
    :ivar elapsed: seconds from the start of the wait to its end.
    :ivar statuses: ``[(seconds since start, status)]``, one entry per
        status change.
    :ivar retries: ``{cause: count}`` of polls that were retried for a
        reason other than a pending status (``not_found``, ``auth``,
        ``throttled``, ``not_sent``, ``unknown``, ``server_error``,
        ``malformed``).
    :ivar deadline: the budget, in seconds.
    """

    volume: typing.Optional[dict] = None
    polls: int = 0
    elapsed: float = 0.0
    statuses: list[tuple[float, str]] = dataclasses.field(
        default_factory=list)
    retries: typing.Counter[str] = dataclasses.field(
        default_factory=collections.Counter)
    deadline: float = 0.0


class Waiter:
    """One wait: look, decide, sleep on the schedule, until decided.

    :param source: a :class:`bdm_guard.internal.wait.poll.PollSource`.
    :param waker: what to sleep on between looks
        (:class:`bdm_guard.internal.wait.poll.Waker`); an event source wakes
        the wait early, and the next look confirms.
    :param backoff: the schedule, a tenacity wait strategy that takes the
        attempt's :class:`bdm_guard.internal.wait.poll.Observation`
        (:class:`bdm_guard.internal.wait.completion.wait_completion` or
        :class:`bdm_guard.internal.wait.schedule.wait_status_backoff`),
        with :meth:`stretch` as its ``stretch`` so that the waiter knows
        its plan; or None, set before :meth:`run`.
    :param deadline: a :class:`bdm_guard.internal.retry.Deadline`.
    :param clock: a monotonic clock in seconds.
    :param on_status: ``on_status(status, elapsed_s, volume)`` or None.
    :param on_retry: ``on_retry(cause, elapsed_s)`` or None.
    :param budget_for: ``budget_for(size_gb) -> seconds`` when the caller
        did not know the size: the first time the volume shows in a pending
        status other than ``creating`` (an image copy), the deadline is
        extended to ``budget_for(volume['size'])`` from the start; or None.
    :param start: the clock value the wait started at (default: now).

    A look that news brought before the schedule's planned GET (an
    event the API does not show yet) is an extra look, not a new plan: it
    ends the wait if it shows a final status; otherwise the wait sleeps on
    until the planned GET, and the schedule never sees the extra look
    (:meth:`bdm_guard.internal.wait.poll.PollSource.observe`). The planned
    GETs are then those of polling alone, so each such wake costs one GET
    at most (field finding: an event storm ahead of the API re-anchored
    the schedule, and the wait cost more GETs than polling alone).

    :ivar copy_start: when the volume entered its first pending status
        other than ``creating`` (clock seconds, from cinder's timestamps),
        or None.
    :ivar planned: the clock value of the next look the schedule planned
        (before the waker's backstop lengthens the sleep), or None.
    """

    def __init__(self, source, waker, backoff, deadline, clock,
                 on_status=None, on_retry=None, budget_for=None, start=None):
        self.source = source
        self.waker = waker
        self.backoff = backoff
        self.deadline = deadline
        self.clock = clock
        self.start = clock() if start is None else start
        self.copy_start = None
        self.on_status = on_status
        self.on_retry = on_retry
        self.budget_for = budget_for
        self.status = None
        self.unauthorized = 0
        self.report = WaitReport(deadline=deadline.seconds_from(self.start))
        self.planned = None
        self._woken = False
        self._extra = False

    def _seen(self, observation):
        report = self.report
        report.volume = observation.volume
        status = observation.status
        if status == self.status and report.statuses:
            return
        self._size_budget(observation)
        elapsed = self.clock() - self.start
        LOG.info('Volume %(id)s is %(status)s after %(t).1f s '
                 '(%(polls)d polls).', {'id': self.source.volume_id,
                                        'status': status, 't': elapsed,
                                        'polls': report.polls})
        report.statuses.append((elapsed, status))
        self.status = status
        if (self.copy_start is None and observation.pending
                and status != statuses.CREATING):
            self.copy_start = completion.change_time(observation,
                                                     self.source.created)
        if self.on_status is not None:
            self.on_status(status, elapsed, observation.volume)

    def _size_budget(self, observation):
        size = (observation.volume or {}).get('size')
        if (self.budget_for is None or not observation.pending
                or observation.phase == statuses.CREATING
                or isinstance(size, bool) or not isinstance(size, int)
                or size <= 0):
            return
        budget = self.budget_for(size)
        self.budget_for = None
        if self.start + budget > self.deadline.at:
            self.deadline.extend_to(self.start + budget)
            self.report.deadline = budget
            LOG.info('Volume %(id)s is %(status)s, %(size)d GiB: the wait '
                     'may take up to %(budget).0f s.',
                     {'id': self.source.volume_id,
                      'status': observation.status, 'size': size,
                      'budget': budget})

    def stretch(self, interval):
        """The schedule's ``stretch``: note the plan, then the backstop.

        :param interval: seconds to the look the schedule plans.
        :returns: seconds to sleep (the waker's
            :meth:`bdm_guard.internal.wait.poll.Waker.backstop`).
        """
        self.planned = self.clock() + interval
        return self.waker.backstop(interval)

    def nap(self, seconds):
        """Sleep on the waker (tenacity's sleep); note if news woke it."""
        self._woken = bool(self.waker.sleep(seconds))

    def first_look(self, seconds):
        """Sleep until the first look, ``seconds`` from now (planned)."""
        self.nap(self._planned(self.deadline.cap(self.stretch(seconds))))

    def _planned(self, seconds):
        """``seconds``; the plan is no later than the end of that sleep.

        A schedule whose ``stretch`` is not :meth:`stretch` notes no plan:
        every look is then a planned one, as before extra looks existed.
        """
        end = self.clock() + seconds
        if self.planned is not None and self.planned > end:
            self.planned = end
        return seconds

    def look(self):
        """One look at the volume (tenacity's attempt)."""
        self._extra = (self._woken and self.planned is not None
                       and self.clock() < self.planned)
        self._woken = False
        observation = self.source.observe(extra=self._extra)
        self.report.polls = self.source.polls
        self.waker.observed(observation)
        if observation.cause == oc.AUTH:
            self.unauthorized += 1
            if self.unauthorized >= UNAUTHORIZED_LIMIT:
                return dataclasses.replace(observation, state=UNAUTHORIZED)
        else:
            self.unauthorized = 0
        if observation.status is not None:
            self._seen(observation)
        elif observation.cause is not None:
            self.report.retries[observation.cause] += 1
            if self.on_retry is not None:
                self.on_retry(observation.cause, self.clock() - self.start)
        return observation

    def run(self):
        """Wait until decided.

        :returns: the final :class:`bdm_guard.internal.wait.poll.
            Observation` (pending when the deadline came first).
        """
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda obs: obs.pending),
            wait=self._interval, stop=self.deadline.stop,
            sleep=self.nap,
            retry_error_callback=lambda state: state.outcome.result())
        final = retrying(self.look)
        self.report.elapsed = self.clock() - self.start
        return final

    def _interval(self, retry_state):
        if self._extra:
            # An extra look: the rest of the planned interval, as the
            # waker lengthens it; the schedule is not asked again.
            rest = max(0.0, self.planned - self.clock())
            return self.deadline.cap(self.waker.backstop(rest))
        self.planned = None
        try:
            seconds = self.backoff(retry_state)
        except (ArithmeticError, ValueError):
            LOG.exception('The poll schedule failed for volume %s; the wait '
                          'goes on at %.0f s intervals.',
                          self.source.volume_id, FALLBACK_INTERVAL)
            seconds = self.deadline.cap(FALLBACK_INTERVAL)
        return self._planned(seconds)

    def error(self, final, client, grace):
        """The exception for a wait that did not end ``available``."""
        report = self.report
        details = {'volume_id': self.source.volume_id,
                   'status': self.status or _never_seen(report.retries),
                   'elapsed': report.elapsed, 'polls': report.polls,
                   'report': report}
        if final.state == poll.FAILED:
            why = (reason_mod.for_volume(client, self.source.volume_id,
                                         self.deadline.remaining())
                   or 'cinder gave no reason')
            return exception.VolumeWaitFailed(reason=why, **details)
        if final.state == poll.VANISHED:
            return exception.VolumeVanished(grace=grace, **details)
        if final.state == UNAUTHORIZED:
            details['status'] = None
            return exception.VolumeWaitUnauthorized(
                unauthorized=self.unauthorized, **details)
        return exception.VolumeWaitTimeout(deadline=report.deadline,
                                           **details)


def _start(created_at, clock):
    schedule.check_number('created_at', created_at, integer=False)
    start = clock()
    if created_at is not None and created_at > start:
        raise exception.InvalidInput(
            reason='created_at %r is after the clock (%r): it must come '
                   'from the same clock as the wait' % (created_at, start))
    return start


def _learn(learner, final, created, copy_start, size_gb, volume_id):
    """Teach the process's learner from a finished wait, never failing it.

    Learning is a hint for later waits: an odd time stamp or size must not
    fail this one, whose volume is available.
    """
    try:
        completion.learn(learner, final, created, copy_start, size_gb)
    except (ArithmeticError, ValueError, TypeError):
        LOG.exception('Volume %s: not learning from this wait', volume_id)


@legacy.folds('budget', BUDGET_FIELDS, Budget)
def wait_for_volume(client, volume_id: str, *,
                    budget: typing.Optional[Budget] = None,
                    created_at: typing.Optional[float] = None, conf=None,
                    sleep: typing.Callable[[float], None] = time.sleep,
                    clock: typing.Callable[[], float] = time.monotonic,
                    rng: typing.Optional[random.Random] = None,
                    on_status=None, on_retry=None, waker=None,
                    learner: typing.Optional[completion.Learner] = None
                    ) -> WaitReport:
    """Wait until a volume is ``available``; fail fast when it cannot be.

    :param client: a :class:`bdm_guard.client.VolumeClient` (the
        real one is :class:`bdm_guard.cinder.VolumeClient`).
    :param volume_id: the volume's UUID (str).
    :param budget: a :class:`Budget` (nova's options, the size); None is
        ``Budget()``. The flat 0.x keywords ``size_gb``,
        ``allocate_retries``, ``allocate_retries_interval`` and
        ``per_gib_floor`` still build one, with a deprecation warning.
    :param created_at: the ``clock`` value at which the create returned
        (seconds, not after ``clock()``: a :func:`time.time` stamp against
        the default monotonic clock is refused); the 404 grace
        (``not_found_grace``) counts from it. Defaults to the start of the
        wait.
    :param conf: a ConfigOpts; ``[bdm_guard]`` is registered if needed.
        None uses the defaults.
    :param sleep: ``sleep(seconds)``; inject a fake for virtual time.
    :param clock: a monotonic clock in seconds; inject with ``sleep``.
    :param rng: a :class:`random.Random` for the jitter (tests seed it).
    :param on_status: ``on_status(status, elapsed_s, volume)`` called on
        every status change.
    :param on_retry: ``on_retry(cause, elapsed_s)`` called on every poll
        that brought no status (``not_found``, ``not_sent``, ``unknown``,
        ``server_error``, ``auth``, ``throttled``, ``malformed``).
    :param waker: a :class:`bdm_guard.internal.wait.poll.Waker` to sleep on
        between polls; None sleeps with ``sleep``. An event waker
        (:class:`bdm_guard.events.Watch`) wakes the wait on cinder's
        notifications and lengthens the intervals to its backstop while its
        listener is healthy; the deadline is the same. A ``fresh`` one
        (taken before the POST) also spares the GET at once, as
        ``created_at`` does. An object with only a ``sleep`` method is
        still taken, with a deprecation warning.
    :param learner: the :class:`bdm_guard.internal.wait.completion.Learner`
        that ``poll_schedule = completion`` predicts with and teaches
        (default: the process's own, :data:`bdm_guard.internal.wait.
        completion.LEARNER`; the simulator gives each simulated host its
        own).
    :returns: a :class:`WaitReport` whose ``volume`` is available.
    :raises bdm_guard.exception.InvalidVolumeId: malformed id, before any
        request.
    :raises bdm_guard.exception.InvalidInput: ``budget`` not a
        :class:`Budget` (or a flat 0.x field not a non-negative number of
        the right type), or ``created_at`` not a number or after
        ``clock()``; before any request.
    :raises bdm_guard.exception.CinderConfigError: keystoneauth cannot reach
        cinder for a reason no retry clears (no endpoint in the catalog,
        credentials refused...); raised at once, not at the deadline.
    :raises bdm_guard.exception.VolumeWaitFailed: the volume reached a
        status that is neither pending nor available (``error`` ...); the
        message carries cinder's user message about this volume, if any.
    :raises bdm_guard.exception.VolumeWaitTimeout: still pending, or
        cinder unreachable, at the deadline.
    :raises bdm_guard.exception.VolumeVanished: 404 past the grace.
    :raises bdm_guard.exception.VolumeWaitUnauthorized: cinder answered 401
        to ``UNAUTHORIZED_LIMIT`` polls in a row, re-authenticating before
        each; the volume's state is unknown.
    """
    volume_id = statuses.check_volume_id(volume_id)
    conf = opts.get_conf(conf)
    group = conf.bdm_guard
    budget = check_budget(budget)
    size_gb = budget.size_gb
    start = _start(created_at, clock)
    created = start if created_at is None else created_at
    deadline = retry.Deadline(clock, budget.seconds(conf), start=start)
    waker = poll.as_waker(waker, sleep)
    if waker.volume_id is None:
        waker.bind(volume_id)
    waiter = Waiter(
        poll.PollSource(client, volume_id, group.pending_statuses,
                        group.not_found_grace, created, clock, deadline),
        waker, None, deadline, clock, on_status=on_status,
        on_retry=on_retry,
        budget_for=None if size_gb is not None else (
            lambda size: budget.for_size(size).seconds(conf)), start=start)
    # The waiter notes each planned look on the way to the waker's backstop.
    if group.poll_schedule == 'backoff':
        backoff = schedule.wait_status_backoff(
            conf, clock, start, deadline, rng or random.Random(),
            waiter.stretch)
    else:
        backoff = completion.wait_completion(
            conf, clock, start, deadline, rng or random.Random(),
            waiter.stretch, created=created, size_gb=size_gb or None,
            learner=learner)
    waiter.backoff = backoff
    if created_at is not None or waker.fresh:
        # Right after a create the volume is "creating": the first GET at
        # once would only say so. A fresh event watch (taken before the
        # POST) says the same for a caller that passes no created_at, as
        # nova's wait function cannot.
        waiter.first_look(created + backoff.first(created) - clock())
    final = waiter.run()
    if final.state == poll.AVAILABLE:
        if group.poll_schedule != 'backoff':
            _learn(backoff.learner, final, created, waiter.copy_start,
                   size_gb or None, volume_id)
        return waiter.report
    raise waiter.error(final, client, group.not_found_grace)
