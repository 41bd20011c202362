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

"""The lab's figures from cinder's volume list and the proxy's counters."""

import collections
import datetime
import types

import testtools

from bdm_guard_lab.arms import metrics

PROJECT = 'p'


def _iso(seconds):
    when = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return when.replace(tzinfo=None).isoformat()


def _volume(vid, name, status='available', updated=0.0, created=None):
    volume = {'id': vid, 'name': name, 'status': status,
              'os-vol-tenant-attr:tenant_id': PROJECT,
              'updated_at': _iso(updated)}
    if created is not None:
        volume['created_at'] = _iso(created)
    return volume


class TestSummarize(testtools.TestCase):

    def test_counts_come_from_the_volume_list(self):
        volumes = [_volume('a', 'b0', updated=100.0, created=80.0),
                   _volume('a2', 'b0', updated=101.0),     # duplicate
                   _volume('b', 'b1', updated=100.0, created=50.0),
                   _volume('c', 'b2', status='downloading'),
                   dict(_volume('x', 'other'),
                        **{'os-vol-tenant-attr:tenant_id': 'q'})]
        boots = [metrics.Boot('b0', 'a', None, 102.0),
                 metrics.Boot('b1', 'b', None, 110.0),
                 metrics.Boot('b2', 'c', 'wait:VolumeNotCreated', 0.0),
                 metrics.Boot('b3', 'gone', None, 0.0)]
        proxy = types.SimpleNamespace(
            volume_gets=collections.Counter(a=5, b=7, c=8),
            injected=collections.Counter(lost_response=1),
            requests=collections.Counter({('GET', '/volumes/{id}'): 20}))
        out = metrics.summarize(boots, volumes, proxy, wall_s=12.345,
                                time_scale=0.5, project_id=PROJECT)
        self.assertEqual(4, out['boots'])
        self.assertEqual(2, out['succeeded'])
        self.assertEqual({'volume_missing_in_cinder': 1,
                          'wait:VolumeNotCreated': 1},
                         out['failures_by_reason'])
        self.assertEqual(4, out['volumes_created'])
        self.assertEqual(1, out['duplicates'])
        self.assertEqual(2, out['leaked'])
        self.assertEqual(5.0, out['gets_per_boot'])
        # lags 2 s and 10 s real at scale 0.5 -> 4 and 20 scenario seconds
        self.assertEqual(4.0, out['detect_lag_p50_s'])
        self.assertEqual(20.0, out['detect_lag_p95_s'])
        self.assertEqual(12.3, out['wall_s'])
        # the lags relative to creation: 2 s of 20 s and 10 s of 50 s
        self.assertEqual(20.0, out['detect_lag_p95_pct'])
        # GETs of the two successful boots' volumes: (5 + 7) / 2
        self.assertEqual(6.0, out['gets_per_success'])
        self.assertEqual(set(metrics.KEYS), set(metrics.KEYS) & set(out))

    def test_percentile(self):
        self.assertIsNone(metrics.percentile([], 0.5))
        self.assertEqual(3, metrics.percentile([5, 1, 3, 2, 4], 0.5))
        self.assertEqual(5, metrics.percentile([5, 1, 3, 2, 4], 0.95))


class TestRatios(testtools.TestCase):

    def test_guard_over_stock_per_case(self):
        from bdm_guard_lab.bench import matrix as bench
        rows = [
            {'scenario': 'slow', 'volumes': 10, 'arm': 'stock',
             'gets_per_success': 40.0, 'detect_lag_p95_pct': 2.5,
             'detect_lag_p95_s': 2.9},
            {'scenario': 'slow', 'volumes': 10, 'arm': 'guard',
             'gets_per_success': 10.0, 'detect_lag_p95_pct': 9.0,
             'detect_lag_p95_s': 14.0},
            {'scenario': 'none', 'volumes': 10, 'arm': 'stock',
             'gets_per_success': None, 'detect_lag_p95_pct': None,
             'detect_lag_p95_s': None},
            {'scenario': 'none', 'volumes': 10, 'arm': 'guard',
             'gets_per_success': 9.0, 'detect_lag_p95_pct': 8.0,
             'detect_lag_p95_s': 12.0},
            {'scenario': 'none', 'volumes': 50, 'arm': 'guard',
             'gets_per_success': 9.0},
        ]
        out = bench.ratios(rows)
        self.assertEqual(2, len(out))
        self.assertEqual(0.25, out[0]['gets_per_success_ratio'])
        self.assertEqual({'stock': 2.5, 'guard': 9.0}, out[0]['lag_p95_pct'])
        self.assertIsNone(out[1]['gets_per_success_ratio'])
