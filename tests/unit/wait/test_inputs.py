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

"""Waiter arguments and Retry-After values that must never break a wait."""

import time

from bdm_guard import exception
from bdm_guard.internal import retry
from bdm_guard.internal.wait import schedule
from bdm_guard import opts
from bdm_guard import testing
from tests.unit.wait import test_wait


class TestArguments(test_wait.WaitTestCase):

    def test_bad_numbers_are_refused_before_any_request(self):
        vid = self.fake.add_volume(status='downloading')
        for kw in ({'size_gb': '20'}, {'size_gb': -100}, {'size_gb': 1.5},
                   {'size_gb': True}, {'allocate_retries': -1,
                                       'allocate_retries_interval': 3},
                   {'allocate_retries': '60'},
                   {'allocate_retries_interval': -3},
                   {'allocate_retries_interval': float('inf')},
                   {'allocate_retries_interval': float('nan')},
                   {'created_at': 'now'}, {'created_at': float('nan')}):
            exc = self.assertRaises(exception.InvalidInput, self.wait, vid,
                                    **kw)
            self.assertIn(next(iter(kw)), str(exc))
        self.assertEqual([], self.fake.requests)
        self.assertEqual([], self.clock.sleeps)

    def test_created_at_from_another_clock_is_refused(self):
        # time.time() against a monotonic (here virtual) clock is in the
        # future: the first sleep would have been the whole budget.
        vid = self.fake.add_volume(status='available')
        exc = self.assertRaises(exception.InvalidInput, self.wait, vid,
                                created_at=time.time())
        self.assertIn('same clock', str(exc))
        self.assertEqual([], self.fake.requests)

    def test_valid_edge_values_are_accepted(self):
        vid = self.fake.add_volume(status='available')
        self.clock.now = 50.0
        report = self.wait(vid, size_gb=0, allocate_retries=0,
                           allocate_retries_interval=2.5, created_at=50.0)
        self.assertEqual('available', report.volume['status'])
        self.assertEqual(180, report.deadline)

    def test_report_gives_the_budget_not_a_float_difference(self):
        # (start + 180) - start is 180.0000000000009 in floating point
        # for this start: the report is the budget the formula gives.
        vid = self.fake.add_volume(status='available')
        self.clock.now = 8174.326235239371
        self.assertNotEqual(180.0, (self.clock.now + 180.0) - self.clock.now)
        report = self.wait(vid, size_gb=0)
        self.assertEqual(180.0, report.deadline)

    def test_deadline_formula_matches_the_docs(self):
        conf = opts.get_conf()
        conf.set_override('deadline_ceiling', 600, group='bdm_guard')
        # min(ceiling, base + per_gib * size) ...
        self.assertEqual(600, schedule.wait_deadline(conf, 100))
        # ... and nova's budget wins over the ceiling.
        self.assertEqual(3003, schedule.wait_deadline(conf, 100, 1000, 3))
        self.assertIs(conf, opts.get_conf(conf))


class TestRetryAfter(test_wait.WaitTestCase):

    def test_retry_after_3600_is_capped_at_the_deadline(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating')])
        self.fake.faults = [{'from': 1, 'to': 10 ** 6, 'kind': 'http_429',
                             'retry_after': 3600}]
        exc = self.assertRaises(exception.VolumeWaitTimeout, self.wait,
                                vid)
        self.assertGreater(exc.report.retries['throttled'], 0)
        self.assertLessEqual(max(self.clock.sleeps), exc.report.deadline)
        self.assertLessEqual(self.clock.now, exc.report.deadline)

    def test_non_finite_retry_after_is_ignored(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating'),
                                             (20, 'available')])
        self.fake.faults = [{'from': 1, 'to': 10, 'kind': 'http_429',
                             'retry_after': '1e400'}]
        report = self.wait(vid)
        self.assertEqual('available', report.volume['status'])
        self.assertGreater(report.retries['throttled'], 0)
        self.assertLessEqual(max(self.clock.sleeps), 15.0 + 1e-9)

    def test_post_retry_after_can_be_capped(self):
        class Attempt:
            attempt_number = 1
        clock = testing.VirtualClock(100.0)
        strategy = retry.wait_capped(retry.wait_retry_after(
            lambda state: 1.0, lambda state: 3600.0),
            retry.Deadline(clock, 30.0))
        self.assertEqual(30.0, strategy(Attempt()))
        clock.now = 140.0
        self.assertEqual(0.0, strategy(Attempt()))
        # Without a deadline the longer Retry-After still wins.
        self.assertEqual(3600.0, retry.wait_retry_after(
            lambda state: 1.0, lambda state: 3600.0)(Attempt()))
