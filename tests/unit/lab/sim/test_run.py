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

"""Small runs of both arms (200 boots): the invariants, not the figures."""

import os

import fixtures
from oslotest import base

from bdm_guard import exception
from bdm_guard_lab.sim import metrics as sim_metrics
from bdm_guard_lab.sim import model as sim_model
from bdm_guard_lab.sim import run as sim_run

WORK = sim_model.Workload(boots=200, hosts=10)
_RUNS = {}
PROFILES = ('none', 'seed', 'harsh')


def results(profile):
    """Both arms over 200 boots with ``profile``'s faults (run once)."""
    if profile not in _RUNS:
        _RUNS[profile] = sim_run.simulate(
            WORK, sim_model.load_faults(profile), seed=11)
    return _RUNS[profile]


class TestArms(base.BaseTestCase):

    def test_every_boot_ends_and_counts_add_up(self):
        for profile in PROFILES:
            for arm, s in results(profile).items():
                self.check_counts('%s/%s' % (profile, arm), s)

    def check_counts(self, arm, s):
        self.assertEqual(200, s['boots'], arm)
        self.assertEqual(200, s['succeeded'] + s['failed'], arm)
        self.assertEqual(s['failed'],
                         sum(s['failures_by_reason'].values()), arm)
        self.assertFalse([r for r in s['failures_by_reason']
                          if r.startswith('crashed')], arm)
        self.assertEqual(s['requests'],
                         sum(s['requests_by_kind'].values()), arm)
        self.assertEqual(s['requests'], sum(s['rate']), arm)
        # gets_per_boot is rounded to 0.01: up to 0.005 x 200 = 1 GET off,
        # plus the float error of that product (9.38 * 200 is
        # 1876.0000000000002).
        self.assertAlmostEqual(s['requests_by_kind']['GET volume'],
                               s['gets_per_boot'] * 200, delta=1 + 1e-9)
        self.assertGreaterEqual(s['peak_rps'], s['mean_rps'], arm)
        # Every volume cinder made is running a boot, was deleted, or
        # is counted as leaked.
        self.assertLessEqual(s['succeeded'] + s['leaked'],
                             s['volumes_created'], arm)

    def test_guard_never_duplicates_or_leaks(self):
        for profile in PROFILES:
            guard = results(profile)['guard']
            self.assertEqual(0, guard['duplicates'], profile)
            self.assertEqual(0, guard['leaked'], profile)
            self.assertEqual(guard['succeeded'], guard['volumes_created'],
                             profile)
        self.assertEqual(200, results('none')['guard']['succeeded'])
        self.assertEqual(200, results('seed')['guard']['succeeded'])

    def test_stock_resends_lost_posts(self):
        stock = results('none')['stock']
        self.assertEqual(200, stock['requests_by_kind']['POST'])
        self.assertEqual(0, stock['duplicates_made'])
        for profile in ('seed', 'harsh'):
            stock = results(profile)['stock']
            # keystoneauth resends POSTs whose answer was lost.
            self.assertGreater(stock['duplicates_made'], 0, profile)
            self.assertGreater(stock['leaked'], 0, profile)


class TestRuns(base.BaseTestCase):

    def test_same_seed_same_figures(self):
        faults = sim_model.load_faults('seed')
        one = sim_run.run_arm('guard', WORK, faults, seed=3)
        two = sim_run.run_arm('guard', WORK, faults, seed=3)
        one.pop('wall_s'), two.pop('wall_s')
        self.assertEqual(one, two)

    def test_both_arms_boot_the_same_volumes(self):
        boots = sim_run.make_boots(WORK, 5)
        again = sim_run.make_boots(WORK, 5)
        self.assertEqual([(b.size, b.arrival) for b in boots],
                         [(b.size, b.arrival) for b in again])

    def test_unknown_arm(self):
        self.assertRaises(exception.InvalidInput, sim_run.run_arm, 'nova',
                          WORK, sim_model.Faults())

    def test_mean_is_taken_over_one_window(self):
        results = sim_run.simulate(WORK, sim_model.Faults(), seed=1)
        span = max(len(s['rate']) for s in results.values())
        for s in results.values():
            self.assertAlmostEqual(s['requests'] / span, s['mean_rps'],
                                   places=2)

    def test_plot_writes_a_png(self):
        results = sim_run.simulate(sim_model.Workload(boots=20, hosts=2),
                                   sim_model.Faults(), seed=1)
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'rate.png')
        sim_metrics.plot(results, path, 'test')
        with open(path, 'rb') as f:
            self.assertEqual(b'\x89PNG', f.read(4))

    def test_percentile(self):
        self.assertIsNone(sim_metrics.percentile([], 0.5))
        self.assertEqual(50, sim_metrics.percentile(list(range(1, 101)),
                                                    0.5))
        self.assertEqual(95, sim_metrics.percentile(list(range(1, 101)),
                                                    0.95))
