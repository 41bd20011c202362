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

"""The simulation's events arm and its broker fan-out (small runs)."""

from oslotest import base

from bdm_guard_lab.sim import model as sim_model
from bdm_guard_lab.sim import run as sim_run

WORK = sim_model.Workload(boots=200, hosts=10)


class TestEventsArm(base.BaseTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.results = sim_run.simulate(
            WORK, sim_model.load_faults('seed'), seed=11,
            arms=('stock', 'guard', 'events'))

    def test_events_arm_is_safe_and_cheaper(self):
        guard, events = self.results['guard'], self.results['events']
        self.assertEqual(200, events['succeeded'])
        self.assertEqual(0, events['duplicates'])
        self.assertEqual(0, events['leaked'])
        self.assertLess(events['gets_per_boot'], 2)
        self.assertLess(events['gets_per_boot'], guard['gets_per_boot'])
        self.assertLess(events['detect_lag_p95_s'], 0.25)

    def test_fanout(self):
        fan = self.results['events']['fanout']
        self.assertEqual(10, fan['hosts'])
        # Two create notifications per volume made, each to every pool.
        self.assertEqual(2 * self.results['events']['volumes_created'],
                         fan['notifications'])
        self.assertEqual(fan['notifications_peak_per_s'] * 10 + 2,
                         fan['deliveries_peak_per_s'])
        self.assertGreater(fan['gets_saved_per_s_vs_guard'], 0)
        self.assertNotIn('fanout', self.results['guard'])

    def test_default_arms_unchanged(self):
        self.assertEqual(('stock', 'guard'), sim_run.DEFAULT_ARMS)
