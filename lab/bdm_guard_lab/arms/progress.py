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

"""An arm's progress, for the demo's progress line (both modes)."""

import contextlib
import threading
import time


class Progress:
    """Counts finished boots for a progress display, and ticks.

    :param arm: the arm's label (``stock``, ``guard``, ``stock/sync-wait``,
        ``launcher (seed)``...).
    :param total: int, boots in the arm.
    :param callback: ``callback(arm, done, total, failed, elapsed_s,
        phase)`` or None; ``phase`` is ``starting cinder``, ``booting``,
        ``settling`` (waiting for cinder to finish what it was asked) or
        ``done``, and in nova mode also ``starting nova``, ``posting`` and
        ``deleting``.
    :param tick_seconds: float, real seconds between reports while
        :meth:`ticking` (so that the display moves while no boot ends).
    """

    def __init__(self, arm, total, callback=None, tick_seconds=1.0):
        self.arm, self.total, self.callback = arm, total, callback
        self.done = self.failed = 0
        self.phase = 'starting cinder'
        self.tick_seconds = tick_seconds
        self.lock = threading.Lock()
        self.start = time.monotonic()

    def tick(self, failed=False):
        with self.lock:
            self.done += 1
            self.failed += int(failed)
        self.report()

    def set_phase(self, phase):
        self.phase = phase
        self.report()

    def report(self):
        if self.callback:
            self.callback(self.arm, self.done, self.total, self.failed,
                          time.monotonic() - self.start, self.phase)

    @contextlib.contextmanager
    def ticking(self):
        """Report every ``tick_seconds`` in a thread while the block runs."""
        stop = threading.Event()

        def run():
            while not stop.wait(self.tick_seconds):
                self.report()

        thread = threading.Thread(target=run, name='progress', daemon=True)
        if self.callback:
            thread.start()
        try:
            yield self
        finally:
            stop.set()
            if thread.is_alive():
                thread.join()
