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

"""A discrete-event simulation on a virtual clock, with greenlets.

The waiter and the creator are blocking functions that take ``sleep`` and
``clock`` callables. Here every task (one boot) runs in its own greenlet;
:meth:`Simulation.sleep` parks the calling greenlet in a heap of wake-up
times and switches to the hub, which pops the earliest wake-up, advances the
virtual clock to it and switches back. Nothing really sleeps, so thousands
of boots that would take an hour run in seconds, and the same code that runs
against real cinder runs here unchanged.

Ties are broken by scheduling order, so a run is deterministic for a given
seed.
"""

import collections
import heapq
import itertools

import greenlet
from oslo_log import log as logging

from bdm_guard_lab import exception

LOG = logging.getLogger(__name__)


class Task:
    """One simulated activity, run in its own greenlet.

    :ivar done: True once the function returned or raised.
    :ivar result: what the function returned.
    :ivar error: the exception it raised (the simulation goes on), or None.
    """

    __slots__ = ('func', 'args', 'done', 'result', 'error', 'greenlet')

    def __init__(self, func, args):
        self.func = func
        self.args = args
        self.done = False
        self.result = None
        self.error = None
        self.greenlet = None

    def _main(self):
        try:
            self.result = self.func(*self.args)
        except Exception as exc:  # a task's bug must not stop the others
            LOG.exception('Simulated task %s failed.', self.func)
            self.error = exc
        finally:
            self.done = True


class Simulation:
    """The scheduler and the virtual clock (seconds, starting at 0).

    Use :meth:`spawn` to add tasks, then :meth:`run`. Inside a task,
    :meth:`sleep` and :meth:`clock` replace :func:`time.sleep` and
    :func:`time.monotonic`.
    """

    def __init__(self):
        self.now = 0.0
        self._queue = []
        self._seq = itertools.count()
        self._hub = None

    def clock(self):
        """The virtual time in seconds (float)."""
        return self.now

    def _push(self, when, item):
        heapq.heappush(self._queue, (when, next(self._seq), item))

    def spawn(self, func, *args, delay=0.0):
        """Start ``func(*args)`` in a new greenlet ``delay`` seconds from now.

        :param func: the task's function; it may call :meth:`sleep`.
        :param delay: virtual seconds (float >= 0) before it starts.
        :returns: a :class:`Task`.
        """
        task = Task(func, args)
        self._push(self.now + max(0.0, delay), task)
        return task

    def sleep(self, seconds):
        """Suspend the calling task for ``seconds`` of virtual time.

        :param seconds: float; negative values count as 0.
        :raises bdm_guard_lab.exception.SimulationError: when called outside a
            task of a running simulation.
        """
        current = greenlet.getcurrent()
        if self._hub is None or current is self._hub:
            raise exception.SimulationError(
                reason='sleep() called outside a simulated task')
        self._push(self.now + max(0.0, seconds), current)
        self._hub.switch()

    def wake(self, glet):
        """Make a parked greenlet runnable now (for :class:`Semaphore`)."""
        self._push(self.now, glet)

    def park(self):
        """Suspend the calling task until someone calls :meth:`wake`."""
        self._hub.switch()

    def run(self, until=None):
        """Run until no task is left, or until virtual time ``until``.

        :param until: seconds of virtual time, or None for no limit.
        :returns: the virtual time at the end (seconds).
        :raises bdm_guard_lab.exception.SimulationError: when called from
            inside a task.
        """
        if self._hub is not None:
            raise exception.SimulationError(reason='run() is not reentrant')
        self._hub = greenlet.getcurrent()
        queue = self._queue
        try:
            while queue:
                if until is not None and queue[0][0] > until:
                    self.now = until
                    break
                self.now, _, item = heapq.heappop(queue)
                if isinstance(item, Task):
                    item.greenlet = greenlet.greenlet(item._main,
                                                      parent=self._hub)
                    item.greenlet.switch()
                else:
                    item.switch()
        finally:
            self._hub = None
        return self.now

    @property
    def pending(self):
        """How many wake-ups are still scheduled."""
        return len(self._queue)


class Semaphore:
    """A counting semaphore in virtual time, first come first served.

    It models nova-compute's ``max_concurrent_builds`` slots.

    :param sim: the :class:`Simulation`.
    :param value: the number of slots (int >= 1).
    """

    def __init__(self, sim, value):
        self.sim = sim
        self.value = value
        self._waiters = collections.deque()

    def acquire(self):
        """Take a slot, waiting (in virtual time) until one is free."""
        if self.value > 0 and not self._waiters:
            self.value -= 1
            return
        self._waiters.append(greenlet.getcurrent())
        self.sim.park()

    def release(self):
        """Give a slot back; the longest waiter gets it."""
        if self._waiters:
            self.sim.wake(self._waiters.popleft())
        else:
            self.value += 1

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()
