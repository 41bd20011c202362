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

"""Both arms of the demo on real cinder, small: the figures are cinder's.

Every first POST of a boot loses its answer after cinder created the
volume. Stock nova (its real ``nova.volume.cinder.API.create``, with
keystoneauth's blind connect retries) resends and makes a second volume per
boot; bdm-guard adopts the first. Counts come from cinder's API.
"""

import testtools

from bdm_guard_lab.arms import library_mode
from bdm_guard_lab.arms import stock as stock_arm
from bdm_guard_lab.faults import scenario as lab_scenario

BOOTS = 4


def _scenario():
    return lab_scenario.parse({
        'name': 'lost-answers', 'seed': 7, 'volumes': BOOTS, 'size_gb': 1,
        'create_seconds': 1.0, 'create_jitter': 0.0,
        'download_seconds_per_gib': 2.0,
        'rules': [{'fault': 'lost_response', 'probability': 1.0,
                   'times': 1}]}, 'test')


class TestArms(testtools.TestCase):

    def test_stock_duplicates_guard_does_not(self):
        stock = library_mode.run_arm('stock', _scenario(), time_scale=0.5)
        guard = library_mode.run_arm('guard', _scenario(), time_scale=0.5)
        expected = 'nova' if stock_arm.nova_available() else 'model'
        self.assertEqual(expected, stock['stock_impl'])
        self.assertEqual(BOOTS, stock['faults_injected']['lost_response'])
        self.assertEqual(BOOTS, stock['succeeded'])
        self.assertEqual(2 * BOOTS, stock['volumes_created'])
        self.assertEqual(BOOTS, stock['duplicates'])
        self.assertEqual(BOOTS, stock['leaked'])
        self.assertEqual(BOOTS, guard['faults_injected']['lost_response'])
        self.assertEqual(BOOTS, guard['succeeded'])
        self.assertEqual(BOOTS, guard['volumes_created'])
        self.assertEqual(0, guard['duplicates'])
        self.assertEqual(0, guard['leaked'])
        for figures in (stock, guard):
            self.assertGreater(figures['gets_per_boot'], 0)
            self.assertIsNotNone(figures['detect_lag_p95_s'])
