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

"""tenacity pieces shared by the waiter and the creator.

tenacity composes small strategies (``stop_a | stop_b``, ``wait_a +
wait_b``); these add what tenacity lacks for bdm-guard: an injected clock
(tenacity's ``stop_after_delay`` reads :func:`time.monotonic`), seeded jitter
(tenacity's ``wait_random`` draws from the global random source) and the one
rule that every sleep ends by the caller's deadline (:class:`Deadline`).
"""

import math
import random
import typing

import tenacity

Clock = typing.Callable[[], float]


def rng_for(seed: str) -> random.Random:
    """A random source for jitter, seeded from ``seed``.

    Seeding from the idempotency key (or volume id) spreads different
    creates apart yet replays one create, or a simulation, exactly.

    :param seed: a str.
    :returns: a :class:`random.Random`.
    """
    return random.Random(seed)


class stop_at(tenacity.stop.stop_base):
    """Stop once an injected clock reaches a deadline.

    :param clock: a zero-argument callable returning seconds.
    :param deadline: the clock value at which to stop.
    """

    def __init__(self, clock: Clock, deadline: float):
        self.clock = clock
        self.deadline = deadline

    def __call__(self, retry_state) -> bool:
        return self.clock() >= self.deadline


class Deadline:
    """The clock value a wait or a create must end by.

    This is the only place that cuts a sleep to the time left: every
    strategy that sleeps is wrapped in :class:`wait_capped` (or calls
    :meth:`cap`), whatever its back-off or a Retry-After header asks for.

    :param clock: a zero-argument callable returning seconds (monotonic).
    :param seconds: how long from now, in seconds.
    :param start: the clock value to count ``seconds`` from (default: now).
    """

    def __init__(self, clock: Clock, seconds: float,
                 start: typing.Optional[float] = None):
        self.clock = clock
        self.start = clock() if start is None else start
        self.seconds = seconds
        self.at = self.start + seconds

    def seconds_from(self, start: float) -> float:
        """The budget in seconds, counted from the clock value ``start``.

        ``at - start`` in floating point is not always the ``seconds`` the
        deadline was made with (``8174.326235239371 + 120.0 -
        8174.326235239371`` is ``120.00000000000091``): from the deadline's
        own start this returns ``seconds`` as given.

        :param start: a clock value (float).
        :returns: float seconds.
        """
        if start == self.start and self.at == self.start + self.seconds:
            return self.seconds
        return self.at - start

    def remaining(self) -> float:
        """Seconds left (float >= 0)."""
        return max(0.0, self.at - self.clock())

    def cap(self, seconds: typing.Optional[float]) -> float:
        """``seconds`` cut to :meth:`remaining`.

        :param seconds: a wanted sleep in seconds; None or a negative value
            gives 0, NaN or infinity gives :meth:`remaining`.
        :returns: seconds to sleep, ``0 <= s <= remaining()``.
        """
        if seconds is None:
            return 0.0
        remaining = self.remaining()
        if not math.isfinite(seconds):
            return remaining
        return min(max(0.0, seconds), remaining)

    def allows(self, seconds: typing.Optional[float]) -> bool:
        """Whether a wait of ``seconds`` ends before the deadline.

        :returns: False for a non-finite or too long wait.
        """
        return seconds is None or (math.isfinite(seconds)
                                   and seconds <= self.remaining())

    def extend_to(self, at: float) -> None:
        """Move the deadline to the clock value ``at`` if that is later."""
        self.at = max(self.at, at)

    @property
    def stop(self) -> 'stop_deadline':
        """A tenacity stop that fires once the deadline is reached."""
        return stop_deadline(self)


class stop_deadline(tenacity.stop.stop_base):
    """Stop once a :class:`Deadline` (which may be extended) is reached.

    :param deadline: the :class:`Deadline`.
    """

    def __init__(self, deadline: Deadline):
        self.deadline = deadline

    def __call__(self, retry_state) -> bool:
        return self.deadline.clock() >= self.deadline.at


class wait_capped(tenacity.wait.wait_base):
    """A tenacity wait strategy whose every wait ends by the deadline.

    :param base: a tenacity wait strategy.
    :param deadline: a :class:`Deadline`.
    """

    def __init__(self, base, deadline: Deadline):
        self.base = base
        self.deadline = deadline

    def __call__(self, retry_state) -> float:
        return self.deadline.cap(self.base(retry_state))


class wait_jitter(tenacity.wait.wait_base):
    """A uniform random wait in ``[0, maximum]`` seconds from ``rng``.

    :param rng: a :class:`random.Random`.
    :param maximum: seconds.
    """

    def __init__(self, rng: random.Random, maximum: float):
        self.rng = rng
        self.maximum = maximum

    def __call__(self, retry_state) -> float:
        return self.rng.uniform(0, self.maximum)


class wait_retry_after(tenacity.wait.wait_base):
    """Wrap a wait strategy so that a longer Retry-After wins.

    Wrap the result in :class:`wait_capped`: a ``Retry-After: 3600`` must
    not hold a create for an hour.

    :param base: a tenacity wait strategy.
    :param get_retry_after: ``f(retry_state) -> seconds or None``.
    """

    def __init__(self, base, get_retry_after):
        self.base = base
        self.get_retry_after = get_retry_after

    def __call__(self, retry_state) -> float:
        return max(self.base(retry_state),
                   self.get_retry_after(retry_state) or 0)
