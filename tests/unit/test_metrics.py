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

"""bdm_guard.metrics: off by default, cheap when on, and what it writes."""

import json
import os

import fixtures
from oslo_config import cfg
from oslotest import base

from bdm_guard import create
from bdm_guard import metrics
from bdm_guard import opts
from bdm_guard import testing
from bdm_guard import wait


class FakeTimer:
    def __init__(self):
        self.calls = []

    def __call__(self, seconds, func):
        self.calls.append((seconds, func))

    def fire(self):
        calls, self.calls = self.calls, []
        for _, func in calls:
            func()


def report(polls=3, elapsed=6.5, status='available',
           updated_at='2026-04-19T14:34:30.000000'):
    return wait.WaitReport(volume={'id': 'v', 'status': status,
                                   'updated_at': updated_at},
                           polls=polls, elapsed=elapsed)


class TestRecorder(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.clock = testing.VirtualClock()
        self.timer = FakeTimer()
        # 2 s after cinder's updated_at above.
        self.wall = lambda: 1776609272.0
        self.textfile = os.path.join(self.tmp, 'bdm_guard.prom')
        self.state = os.path.join(self.tmp, 'bdm_guard.state.json')

    def recorder(self, **kwargs):
        kwargs.setdefault('interval', 10.0)
        return metrics.Recorder(self.textfile, self.state, clock=self.clock,
                                wall=self.wall, timer=self.timer, **kwargs)

    def test_off_by_default(self):
        conf = opts.get_conf(cfg.ConfigOpts())
        conf([], project='nova', default_config_files=[])
        self.assertIsNone(metrics.get_recorder(conf))
        self.assertIsNone(metrics.state_path(conf))
        self.assertEqual([], os.listdir(self.tmp))

    def test_state_path_follows_textfile(self):
        conf = opts.get_conf(cfg.ConfigOpts())
        conf([], project='nova', default_config_files=[])
        conf.set_override('textfile', self.textfile, opts.METRICS_GROUP)
        self.assertEqual(self.state, metrics.state_path(conf))
        self.addCleanup(metrics.reset)
        first = metrics.get_recorder(conf)
        self.assertIs(first, metrics.get_recorder(conf))

    def test_wait_and_create_counters(self):
        rec = self.recorder()
        rec.record_wait(report(), 'available', 'v', True)
        rec.record_wait(report(polls=1, status='error'), 'VolumeCreateFailed',
                        'w', False)
        rec.record_create(create.CreateResult(
            volume={'id': 'v'}, how='adopted', posts=1, lookups=1,
            deleted_duplicates=['d1']), 'adopted')
        rec.flush()
        text = open(self.textfile).read()
        for line in ('bdm_guard_waits_total{outcome="available"} 1.0',
                     'bdm_guard_waits_total{outcome="VolumeCreateFailed"} '
                     '1.0',
                     'bdm_guard_wait_gets_total 4.0',
                     'bdm_guard_polling_fallbacks_total 1.0',
                     'bdm_guard_lost_posts_found_total 1.0',
                     'bdm_guard_duplicates_deleted_total 1.0',
                     'bdm_guard_creates_total{outcome="adopted"} 1.0',
                     'bdm_guard_detection_lag_seconds_count 1.0',
                     'bdm_guard_detection_lag_seconds_sum 2.0',
                     'bdm_guard_wait_seconds_bucket{le="10.0"} 2.0',
                     'bdm_guard_events_healthy 0.0'):
            self.assertIn(line, text)
        state = json.load(open(self.state))
        self.assertEqual(['available', 'VolumeCreateFailed'],
                         [w['outcome'] for w in state['waits']])
        self.assertEqual(2.0, state['waits'][0]['detection_lag_seconds'])
        self.assertEqual('adopted', state['creates'][0]['outcome'])
        self.assertEqual({'configured': True, 'healthy': False},
                         state['events'])

    def test_writes_are_coalesced(self):
        rec = self.recorder()
        for _ in range(100):
            rec.record_wait(report(), 'available', 'v')
        # One write at once, then one timer for the rest of the interval.
        self.assertEqual(1, rec.writes)
        self.assertEqual(1, len(self.timer.calls))
        self.assertEqual(10.0, self.timer.calls[0][0])
        self.timer.fire()
        self.assertEqual(2, rec.writes)
        state = json.load(open(self.state))
        self.assertEqual(100, state['totals']['waits_total{available}'])
        self.clock.sleep(10.0)
        rec.record_wait(report(), 'available', 'v')
        self.assertEqual(3, rec.writes)

    def test_state_is_bounded(self):
        rec = self.recorder(last=5, interval=0.0)
        for i in range(50):
            rec.record_wait(report(), 'available', 'v%d' % i)
        state = json.load(open(self.state))
        self.assertEqual(['v45', 'v46', 'v47', 'v48', 'v49'],
                         [w['volume_id'] for w in state['waits']])

    def test_no_events_source(self):
        rec = self.recorder(interval=0.0)
        rec.record_wait(report(), 'available', 'v', None)
        self.assertIn('bdm_guard_events_healthy -1.0',
                      open(self.textfile).read())
        self.assertEqual({'configured': False, 'healthy': None},
                         json.load(open(self.state))['events'])

    def test_unwritable_path_is_a_warning(self):
        rec = metrics.Recorder(os.path.join(self.tmp, 'no', 'x.prom'), None,
                               clock=self.clock, timer=self.timer)
        rec.record_wait(report(), 'available', 'v')
        self.assertEqual(1, rec.writes)

    def test_concurrent_writes_never_leave_a_torn_file(self):
        import threading
        path = os.path.join(self.tmp, 'torn.json')
        texts = [json.dumps({'writer': n, 'pad': 'x' * 20000})
                 for n in range(4)]

        def write(text):
            for _ in range(25):
                metrics._write_atomic(path, text)

        threads = [threading.Thread(target=write, args=(t,)) for t in texts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with open(path) as f:
            self.assertIn(f.read(), texts)
        self.assertEqual(['torn.json'], os.listdir(self.tmp))
