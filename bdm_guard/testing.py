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

"""Test helpers for code that calls bdm-guard, shipped with it.

As oslo.db ships ``oslo_db.sqlalchemy.test_fixtures``: other tooling that
drives bdm-guard's waiter or creator in its own tests uses the same virtual
clock as bdm-guard's tests, so nothing in a unit test really sleeps.
"""


class VirtualClock:
    """A monotonic clock that only moves when someone sleeps.

    Pass ``clock=vc`` and ``sleep=vc.sleep`` to
    :func:`bdm_guard.wait.wait_for_volume` or
    :func:`bdm_guard.create.create_volume`.

    :param now: the start time in seconds.
    :ivar now: the current time in seconds (tests may set it).
    :ivar sleeps: every sleep asked for, in seconds, in order.
    """

    def __init__(self, now: float = 0.0):
        self.now = float(now)
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward at once.

        :raises ValueError: a negative sleep (a deadline bug in the caller).
        """
        if seconds < 0:
            raise ValueError('negative sleep: %r' % (seconds,))
        self.sleeps.append(seconds)
        self.now += seconds


def forget_attempts() -> None:
    """Forget which keys this process's creates may have left volumes for.

    The creator remembers, per process, the idempotency keys an earlier or
    running create may have made a volume for
    (:mod:`bdm_guard.internal.create.attempts`), and looks those up before
    its POST. Tests that reuse one key against a fresh fake cinder call
    this between cases (``self.addCleanup(testing.forget_attempts)``).
    """
    from bdm_guard.internal.create import attempts
    attempts.forget_all()
