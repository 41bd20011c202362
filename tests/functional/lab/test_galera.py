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

"""The seed's last fault, for real, and the configuration that removes it.

A burst of volume creates through real, stock cinder 29 on a 3-node Galera
cluster behind haproxy, node 3 lagging for the whole burst, in the
database variants of :mod:`bdm_guard_lab.db.variants`:

* ``multi-writer`` (haproxy roundrobin, cinder as shipped): stock nova
  loses volumes to "not found" after the create;
* ``sync-wait`` (``[database] mysql_wsrep_sync_wait = 3``) and
  ``single-writer`` (haproxy: node 1, the others ``backup``): no volume
  ends in ``error`` or stuck ``creating``, and no boot is lost to the lag,
  with stock nova;
* ``sync-wait`` with bdm-guard: every boot succeeds, no duplicate, no leak.

Every count is read through cinder's API.
"""

import json

import testtools
from testtools import content

from bdm_guard_lab.arms import library_mode
from bdm_guard_lab.db import lagging_galera as galera_lab
from bdm_guard_lab.faults import scenario as lab_scenario
from tests.functional.db import fixtures as db_fixtures

#: The seed lost 1-2 of 7 volumes. Here 6, 7 and 12 of 20 stock boots failed
#: in three runs (a statement of the create reached node 3 through a pooled
#: connection, or not): with the seed's 7, all succeed now and then
#: (0.7 ** 7 = 8 %) and the test proves nothing; with 20, 0.7 ** 20 is
#: below 0.1 %.
BOOTS = 20
#: Node 3 lags for the whole burst (every create's first statements run in
#: it); below bdm-guard's not_found_grace in real seconds (30 x TIME_SCALE).
LAG_SECONDS = 8.0
#: Stock nova gives up on a volume stuck in creating after 180 scenario
#: seconds: 72 real ones.
TIME_SCALE = 0.4
#: Real seconds to wait for cinder to settle after the boots. Stock cinder
#: on the multi-writer VIP leaves volumes in creating for good, and by the
#: time nova gives up every create that can finish has (1 scenario second
#: each): waiting longer there only counts the same stuck volumes. The
#: other arms settle at once.
SETTLE_SECONDS = 15.0
#: How a boot lost to read-after-write lag ends, in the arms' reasons:
#: a 404 on the GET right after the create (nova's VolumeNotFound, or
#: NotFound in its own create), the volume in error (VolumeNotCreated), or
#: stuck in creating until nova's wait ran out.
LAG_REASONS = ('NotFound', 'VolumeNotFound', 'VolumeNotCreated',
               'volume_missing_in_cinder')


def _scenario():
    return lab_scenario.parse({
        'name': 'galera-seed', 'seed': 7, 'volumes': BOOTS, 'size_gb': 1,
        'image': False, 'create_seconds': 1.0, 'create_jitter': 0.0,
        'rules': []}, 'test')


class TestSeedOnGalera(testtools.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        db_fixtures.skip_unless_enabled()
        cls.lab = galera_lab.GaleraLab(lag_seconds=LAG_SECONDS)
        cls.lab.setUp()

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanUp()
        super().tearDownClass()

    def run_arm(self, arm, variant):
        figures = library_mode.run_arm(
            arm, _scenario(), galera=self.lab, db_variant=variant,
            time_scale=TIME_SCALE, settle_timeout=SETTLE_SECONDS)
        # The figures go with the result, pass or fail (subunit).
        self.addDetail('%s/%s' % (arm, variant), content.text_content(
            json.dumps(figures, default=str, sort_keys=True)))
        self.assertEqual(BOOTS, figures['boots'])
        self.assertEqual(variant, figures['db_variant'])
        self.assertGreater(figures['gets_lag'] + figures['gets'], 0, figures)
        return figures

    def assertNoneLostToLag(self, figures):
        lost = {reason: n for reason, n in
                figures['failures_by_reason'].items()
                if reason.rpartition(':')[2] in LAG_REASONS}
        self.assertEqual({}, lost, figures)
        self.assertEqual(0, figures['volumes_in_error'], figures)
        self.assertEqual(0, figures['volumes_stuck'], figures)

    def test_stock_cinder_multi_writer_loses_volumes(self):
        stock = self.run_arm('stock', 'multi-writer')
        self.assertGreaterEqual(stock['failed'], 1, stock)

    def test_sync_wait_loses_no_boot_to_lag(self):
        stock = self.run_arm('stock', 'sync-wait')
        self.assertNoneLostToLag(stock)
        guard = self.run_arm('guard', 'sync-wait')
        self.assertNoneLostToLag(guard)
        self.assertEqual({}, guard['failures_by_reason'], guard)
        self.assertEqual(BOOTS, guard['succeeded'])
        self.assertEqual(BOOTS, guard['volumes_created'])
        self.assertEqual(0, guard['duplicates'])
        self.assertEqual(0, guard['leaked'])

    def test_single_writer_loses_no_boot_and_never_conflicts(self):
        stock = self.run_arm('stock', 'single-writer')
        self.assertNoneLostToLag(stock)
        self.assertEqual({}, stock['failures_by_reason'], stock)
        self.assertEqual(BOOTS, stock['succeeded'])
        # One writer node: no certification conflict between writers.
        self.assertEqual(0, stock['db_deadlocks'], stock)
        self.assertEqual(0, stock['db_retry_limit'], stock)
