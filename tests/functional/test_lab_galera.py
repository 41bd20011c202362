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

Seven volumes at once (the seed's reproduction) through real cinder 29 on a
3-node Galera cluster behind haproxy in ``balance roundrobin``, node 3
lagging for the whole burst. Stock cinder and nova lose volumes to "not
found" after the create; cinder with ``patches/cinder`` and bdm-guard lose
none. Every count is read through cinder's API. ``BDM_GUARD_CINDER_SERIES``
names another series folder than ``patches/cinder`` for the guard arm.
"""

import os

import testtools

from bdm_guard.lab import arms
from bdm_guard.lab import galera_lab
from bdm_guard.lab import scenario as lab_scenario
from tests.functional import db_fixtures

BOOTS = 7
#: Node 3 lags for the whole burst (every create's first statements run in
#: it); below bdm-guard's not_found_grace in real seconds (30 x TIME_SCALE).
LAG_SECONDS = 8.0
#: Stock nova gives up on a volume stuck in creating after 180 scenario
#: seconds: 72 real ones.
TIME_SCALE = 0.4


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
                             time_scale=TIME_SCALE, settle_timeout=60.0)
        guard = arms.run_arm('guard', _scenario(), galera=self.lab,
                             time_scale=TIME_SCALE, settle_timeout=60.0)
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
