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

"""The adaptive poll schedule and the wait budget.

The schedule is a tenacity wait strategy; the budget is plain arithmetic
over the ``[bdm_guard]`` options (see :mod:`bdm_guard.opts` for the
formulas).
"""

import math
import numbers
import random

import tenacity

from bdm_guard import exception
from bdm_guard.internal import statuses

#: nova 34 ``[DEFAULT] block_device_allocate_retries`` and
#: ``block_device_allocate_retries_interval`` defaults.
NOVA_DEFAULT_RETRIES = 60
NOVA_DEFAULT_INTERVAL = 3


def nova_budget(retries, interval):
    """Seconds nova's own ``_await_block_device_map_created`` waits at most.

    nova makes ``retries + 1`` GETs when ``retries >= 1`` (else one), each
    followed by a sleep of ``interval`` seconds
    (``nova/compute/manager.py``, nova 34).

    :param retries: ``block_device_allocate_retries`` (int).
    :param interval: ``block_device_allocate_retries_interval`` (seconds).
    :returns: the budget in seconds (float).
    """
    attempts = retries + 1 if retries >= 1 else 1
    return float(attempts * max(interval, 0))


def check_number(name, value, integer=True):
    """Check an optional non-negative number given by a caller.

    :param name: the argument's name, for the message.
    :param value: None, or an int (``integer``) or a finite int/float.
    :returns: ``value``.
    :raises bdm_guard.exception.InvalidInput: a bool, a str, another type,
        a float where an int is needed, NaN, infinity or a negative value.
    """
    kind = numbers.Integral if integer else numbers.Real
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, kind)
            or not math.isfinite(value) or value < 0):
        raise exception.InvalidInput(
            reason='%s must be a non-negative %s, got %r' % (
                name, 'integer' if integer else 'number', value))
    return value


def wait_deadline(conf, size_gb=None, allocate_retries=None,
                  allocate_retries_interval=None, per_gib_floor=None):
    """How long the waiter may wait, in seconds.

    ``max(min(deadline_ceiling, base_deadline + per_gib * size_gb),
    nova_budget)`` with ``per_gib = max(per_gib_allowance,
    per_gib_floor)``; an unset ``deadline_ceiling`` (the default) caps
    nothing, so a 500 GiB image copy gets its whole per-GiB budget. nova's
    own budget wins over the ceiling when nova's options are given (see
    :mod:`bdm_guard.opts`).

    :param conf: a ConfigOpts with ``[bdm_guard]`` registered.
    :param size_gb: the volume size in GiB (int >= 0), for image-, snapshot-
        or backup-backed volumes; None for no per-GiB allowance.
    :param allocate_retries: nova's ``block_device_allocate_retries``
        (int >= 0), or None.
    :param allocate_retries_interval: nova's
        ``block_device_allocate_retries_interval`` (seconds >= 0), or None.
    :param per_gib_floor: seconds per GiB the allowance never goes below
        (nova's ``reimage_timeout_per_gb`` inside nova), or None.
    :returns: seconds (float).
    :raises bdm_guard.exception.InvalidInput: an argument of the wrong type,
        negative, NaN or infinite.
    """
    check_number('size_gb', size_gb)
    check_number('allocate_retries', allocate_retries)
    check_number('allocate_retries_interval', allocate_retries_interval,
                 integer=False)
    check_number('per_gib_floor', per_gib_floor, integer=False)
    group = conf.bdm_guard
    budget = group.base_deadline
    if size_gb:
        per_gib = max(group.per_gib_allowance, per_gib_floor or 0.0)
        budget += per_gib * size_gb
    if group.deadline_ceiling is not None:
        budget = min(budget, group.deadline_ceiling)
    if allocate_retries is not None and allocate_retries_interval is not None:
        budget = max(budget, nova_budget(allocate_retries,
                                         allocate_retries_interval))
    return budget


def ramp(start, multiplier, n, cap):
    """``min(start * multiplier ** n, cap)``, the one back-off ramp.

    Written once for the poll schedule and the events confirm schedule,
    in a form that cannot overflow: ``multiplier ** n`` is never computed
    past the point where it would pass ``cap`` (an ``OverflowError`` after
    about 1,750 steps at ``multiplier = 1.5`` otherwise).

    :param start: the first interval, seconds (> 0).
    :param multiplier: the growth factor (>= 1).
    :param n: steps taken (int >= 0; any size).
    :param cap: the largest interval, seconds (> 0).
    :returns: seconds (float), at most ``cap``.
    """
    if start >= cap:
        return float(cap)
    if multiplier <= 1.0 or n <= 0:
        return float(start)
    steps = math.log(cap / start) / math.log(multiplier)
    if n >= steps:
        return float(cap)
    return min(float(cap), start * multiplier ** n)


def confirm_intervals(conf):
    """The events confirm schedule: ``confirm(n) -> seconds``.

    After an event that the next GET does not confirm yet, the watch polls
    on the ``[bdm_guard]`` ramp from ``poll_initial_interval``, capped at
    ``creating_max_interval`` (:func:`ramp`).

    :param conf: a ConfigOpts with ``[bdm_guard]`` registered.
    """
    group = conf.bdm_guard
    return lambda n: ramp(group.poll_initial_interval, group.poll_multiplier,
                          n, group.creating_max_interval)


class wait_status_backoff(tenacity.wait.wait_base):
    """A per-status exponential back-off with a cap that grows with time.

    ``interval(n) = min(start * multiplier ** n, cap)`` where ``n`` is the
    observation's ``polls`` (GETs since the status last changed, counted by
    :class:`bdm_guard.internal.wait.poll.PollSource`), ``start`` is the
    phase's first interval (:meth:`start_interval`) and ``cap =
    max(phase_cap, fraction * elapsed)``. While the interval ramps up it is
    lengthened by up to ``jitter`` of itself, never past the cap: jitter
    then adds no polls (no interval gets shorter) and no lag beyond the cap
    (no interval gets longer than it). A Retry-After wins when longer; the
    deadline cuts the last interval short so the final poll lands on it.
    The strategy keeps no state: it is a function of the attempt alone.

    The attempt's result must be a
    :class:`bdm_guard.internal.wait.poll.Observation`.

    :param conf: a ConfigOpts with ``[bdm_guard]`` registered.
    :param clock: a zero-argument callable returning seconds (monotonic).
    :param start: the clock value the wait started at.
    :param deadline: the :class:`bdm_guard.internal.retry.Deadline` the wait
        must end by.
    :param rng: a :class:`random.Random` for the jitter.
    :param stretch: ``stretch(interval) -> seconds``, applied to each
        interval before the deadline cuts it (an event source lengthens the
        interval to its backstop while it is healthy); or None.
    """

    def __init__(self, conf, clock, start, deadline, rng=None, stretch=None):
        self.conf = conf.bdm_guard
        self.clock = clock
        self.start = start
        self.deadline = deadline
        self.rng = rng or random.Random()
        self.stretch = stretch

    def start_interval(self, phase):
        """The first interval, in seconds, of ``phase``'s ramp."""
        if phase == statuses.CREATING:
            return self.conf.poll_initial_interval
        return self.conf.downloading_initial_interval

    def first(self, created):
        """Seconds from ``created`` to the first look after a create."""
        return self.conf.poll_initial_interval

    def cap(self, phase, elapsed):
        """The interval cap, in seconds, for ``phase`` after ``elapsed``."""
        if phase == statuses.CREATING:
            base = self.conf.creating_max_interval
        else:
            base = self.conf.downloading_max_interval
        return max(base, self.conf.max_interval_fraction * max(0.0, elapsed))

    def __call__(self, retry_state):
        observation = retry_state.outcome.result()
        now = self.clock()
        cap = self.cap(observation.phase, now - self.start)
        interval = ramp(self.start_interval(observation.phase),
                        self.conf.poll_multiplier, observation.polls, cap)
        return finish(self, interval, cap, observation)


def finish(strategy, interval, cap, observation):
    """The steps every poll schedule ends with, in seconds.

    Jitter of up to ``poll_jitter`` of the interval, never past ``cap``
    (so it adds no polls and no lag beyond the cap); a longer Retry-After
    wins; the strategy's ``stretch`` (an event source's backstop); and the
    deadline cuts the last interval so the final poll lands on it.

    :param strategy: the schedule, with ``conf`` (the ``[bdm_guard]``
        group), ``rng``, ``stretch`` and ``deadline``.
    :param interval: the schedule's interval (seconds).
    :param cap: the interval cap in force (seconds).
    :param observation: the attempt's observation (its ``retry_after``).
    :returns: seconds (float).
    """
    if interval < cap:
        jitter = 1.0 + strategy.conf.poll_jitter * strategy.rng.random()
        interval = min(cap, interval * jitter)
    if observation.retry_after:
        interval = max(interval, observation.retry_after)
    if strategy.stretch is not None:
        interval = strategy.stretch(interval)
    return strategy.deadline.cap(interval)
