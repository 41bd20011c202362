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

"""The discrete-event engine: virtual clock, greenlets, semaphores."""

from oslotest import base

from bdm_guard_lab import exception
from bdm_guard_lab.sim import engine as sim


class TestSimulation(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.sim = sim.Simulation()
        self.log = []

    def sleeper(self, name, *delays):
        for delay in delays:
            self.sim.sleep(delay)
            self.log.append((self.sim.clock(), name))
        return name

    def test_sleep_advances_virtual_clock_in_order(self):
        a = self.sim.spawn(self.sleeper, 'a', 5, 5)
        b = self.sim.spawn(self.sleeper, 'b', 3, 4)
        end = self.sim.run()
        self.assertEqual([(3, 'b'), (5, 'a'), (7, 'b'), (10, 'a')],
                         self.log)
        self.assertEqual(10, end)
        self.assertTrue(a.done and b.done)
        self.assertEqual(('a', 'b'), (a.result, b.result))

    def test_ties_run_in_scheduling_order(self):
        for name in 'xyz':
            self.sim.spawn(self.sleeper, name, 1)
        self.sim.run()
        self.assertEqual(['x', 'y', 'z'], [n for _, n in self.log])

    def test_spawn_delay_and_negative_sleep(self):
        self.sim.spawn(self.sleeper, 'late', -4, delay=2.5)
        self.sim.run()
        self.assertEqual([(2.5, 'late')], self.log)

    def test_run_until_stops_early(self):
        task = self.sim.spawn(self.sleeper, 'a', 1, 100)
        self.assertEqual(50, self.sim.run(until=50))
        self.assertFalse(task.done)
        self.assertEqual(1, self.sim.pending)
        self.assertEqual(101, self.sim.run())
        self.assertTrue(task.done)

    def test_task_error_is_kept_and_others_go_on(self):
        def broken():
            self.sim.sleep(1)
            raise ValueError('bug')
        bad = self.sim.spawn(broken)
        good = self.sim.spawn(self.sleeper, 'ok', 2)
        self.sim.run()
        self.assertIsInstance(bad.error, ValueError)
        self.assertTrue(good.done)
        self.assertIsNone(good.error)

    def test_sleep_outside_a_task_is_a_typed_error(self):
        self.assertRaises(exception.SimulationError, self.sim.sleep, 1)

    def test_thousands_of_tasks(self):
        for i in range(5000):
            self.sim.spawn(self.sleeper, i, i % 7, 1, delay=i % 3)
        self.assertEqual(9, self.sim.run())  # 2 + 6 + 1 (i = 20)
        self.assertEqual(10000, len(self.log))


class TestSemaphore(base.BaseTestCase):

    def test_limits_concurrency_first_come_first_served(self):
        s = sim.Simulation()
        slots = sim.Semaphore(s, 2)
        spans = {}

        def job(name, seconds):
            with slots:
                start = s.clock()
                s.sleep(seconds)
                spans[name] = (start, s.clock())

        for name, seconds in (('a', 4), ('b', 2), ('c', 1), ('d', 1)):
            s.spawn(job, name, seconds)
        s.run()
        self.assertEqual({'a': (0, 4), 'b': (0, 2), 'c': (2, 3),
                          'd': (3, 4)}, spans)
        self.assertEqual(2, slots.value)
