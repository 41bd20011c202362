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

"""The seed's last fault, for real: cinder on Galera behind haproxy.

A burst of volume creates through real cinder 29 on a 3-node Galera cluster
behind haproxy in ``balance roundrobin``, node 3 lagging for the whole
burst. Stock cinder and nova lose volumes to "not found" after the create;
cinder with ``patches/cinder`` and bdm-guard lose none, and every one of the
series' second attempts finds its row. Every count is read through cinder's
API. ``BDM_GUARD_CINDER_SERIES`` names another series folder than
``patches/cinder`` for the guard arm.
"""

import json
import os

import testtools
from testtools import content

from bdm_guard_lab.arms import run as arms
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
#: leaves volumes in creating for good, and by the time nova gives up every
#: create that can finish has (1 scenario second each): waiting longer there
#: only counts the same stuck volumes. The guard arm settles at once.
STOCK_SETTLE_SECONDS = 15.0
GUARD_SETTLE_SECONDS = 60.0


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
        cls.lab = galera_lab.GaleraLab(
            lag_seconds=LAG_SECONDS,
            series_dir=os.environ.get('BDM_GUARD_CINDER_SERIES'))
        cls.lab.setUp()

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanUp()
        super().tearDownClass()

    def test_stock_loses_volumes_patched_and_guard_do_not(self):
        stock = arms.run_arm('stock', _scenario(), galera=self.lab,
                             time_scale=TIME_SCALE,
                             settle_timeout=STOCK_SETTLE_SECONDS)
        guard = arms.run_arm('guard', _scenario(), galera=self.lab,
                             time_scale=TIME_SCALE,
                             settle_timeout=GUARD_SETTLE_SECONDS)
        # Both arms' figures go with the result, pass or fail (subunit).
        for arm, figures in (('stock', stock), ('guard', guard)):
            self.addDetail(arm, content.text_content(json.dumps(
                figures, default=str, sort_keys=True)))
        self.assertEqual(BOOTS, stock['boots'])
        self.assertGreaterEqual(stock['failed'], 1, stock)
        self.assertIsNone(stock['db_rereads'])
        self.assertEqual({}, guard['failures_by_reason'], guard)
        self.assertEqual(BOOTS, guard['succeeded'])
        self.assertEqual(BOOTS, guard['volumes_created'])
        self.assertEqual(0, guard['duplicates'])
        self.assertEqual(0, guard['leaked'])
        self.assertEqual(0, guard['volumes_in_error'])
        self.assertGreater(guard['db_rereads'], 0, guard['db_stats'])
        # No second attempt missed a row that exists (every volume does):
        # the causal re-read waited for node 3, and no uncovered path hit
        # it. Database errors on a second attempt would show here too.
        stats = guard['db_stats']
        self.assertEqual(guard['db_rereads'],
                         stats['rereads_found'] + stats['rewrites_found'],
                         stats)
        self.assertEqual(0, stats.get('reread_errors', 0), stats)
