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

"""The create deadline and the lookups by key made within it.

Every sleep of one idempotent create (POST back-off, lookups by key,
duplicate deletes) is cut to what is left of ``create_timeout``, whatever a
back-off or a Retry-After header asks for. A lookup that fails (503,
reset, malformed body) is retried; it never counts as "no volume has the
key".
"""

import math
import random

import tenacity

from bdm_guard import policy

#: First wait, in seconds, between lookups by key. A fresh row on a lagging
#: replica or Galera node usually shows within a second (the waiter's
#: ``poll_initial_interval`` default is the same 0.5 s for the same reason).
LIST_WAIT_FIRST = 0.5
#: Longest back-off, in seconds, between lookups by key, so that the default
#: 10 s ``reconcile_grace`` holds at least five lookups.
LIST_WAIT_MAX = 2.0
#: Random jitter, in seconds, added to every wait between lookups, so that
#: many computes that lost their answers at once do not list in lockstep
#: ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
LIST_JITTER = 0.25


def rng_for(seed):
    """A random source for jitter, seeded from ``seed``.

    Seeding from the idempotency key (or volume id) spreads different
    creates apart yet replays one create, or a simulation, exactly.

    :param seed: a str.
    :returns: a :class:`random.Random`.
    """
    return random.Random(seed)


class wait_jitter(tenacity.wait.wait_base):
    """A uniform random wait in ``[0, maximum]`` seconds from ``rng``.

    tenacity's ``wait_random`` draws from the global random source, which
    would make simulations irreproducible.

    :param rng: a :class:`random.Random`.
    :param maximum: seconds.
    """

    def __init__(self, rng, maximum):
        self.rng = rng
        self.maximum = maximum

    def __call__(self, retry_state):
        return self.rng.uniform(0, self.maximum)


class Deadline:
    """The clock value one create must end by.

    :param clock: a zero-argument callable returning seconds (monotonic).
    :param seconds: how long from now, in seconds (``create_timeout``).
    """

    def __init__(self, clock, seconds):
        self.clock = clock
        self.at = clock() + seconds

    def remaining(self):
        """Seconds left (float >= 0)."""
        return max(0.0, self.at - self.clock())

    def cap(self, seconds):
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

    def allows(self, seconds):
        """Whether a wait of ``seconds`` ends before the deadline.

        :returns: False for a non-finite or too long wait.
        """
        return seconds is None or (math.isfinite(seconds)
                                   and seconds <= self.remaining())

    @property
    def stop(self):
        """A tenacity stop that fires once the deadline is reached."""
        return policy.stop_at(self.clock, self.at)


class wait_capped(tenacity.wait.wait_base):
    """A tenacity wait strategy whose every wait ends by the deadline.

    :param base: a tenacity wait strategy.
    :param deadline: a :class:`Deadline`.
    """

    def __init__(self, base, deadline):
        self.base = base
        self.deadline = deadline

    def __call__(self, retry_state):
        return self.deadline.cap(self.base(retry_state))


def list_wait(rng):
    """The wait between lookups by key: 0.5 s doubling to 2 s, plus jitter.

    :param rng: a :class:`random.Random` for the jitter.
    :returns: a tenacity wait strategy (seconds).
    """
    return (tenacity.wait_exponential(multiplier=LIST_WAIT_FIRST,
                                      max=LIST_WAIT_MAX)
            + wait_jitter(rng, LIST_JITTER))


def list_until_answered(lookup, deadline, sleep, rng, settle_until=None):
    """Call ``lookup`` until a list answers, or the deadline is reached.

    :param lookup: ``f() -> list of volume dicts, or None`` when the list
        call failed (see :func:`bdm_guard.reconcile.list_by_key`).
    :param deadline: a :class:`Deadline`; no sleep goes past it.
    :param sleep: ``sleep(seconds)``.
    :param rng: a :class:`random.Random` for the jitter.
    :param settle_until: a clock value, or None. When given, an empty answer
        before it is not final either: the lookup goes on until a volume
        shows, or an answer made at or after it is empty.
    :returns: the last answer: volumes found (non-empty list); ``[]`` when
        an answer showed none (after ``settle_until`` unless the deadline
        came first); None when no list answered before the deadline.
    """
    clock = deadline.clock

    def again(found):
        if found is None:
            return True
        return (not found and settle_until is not None
                and clock() < settle_until)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(again),
        wait=wait_capped(list_wait(rng), deadline),
        stop=deadline.stop,
        sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result())
    return retrying(lookup)
