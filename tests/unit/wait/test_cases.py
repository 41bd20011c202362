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

"""Every case of tests/unit/data/waiter-cases.yaml, against the waiter.

The same timelines are replayed through the model of nova 34's loop
(:mod:`bdm_guard_lab.nova_wait_model`) and printed side by side (data, not
timing
assertions).
"""

import os
from oslotest import base
import random
import sys

import testtools
import yaml

from bdm_guard import exception
from bdm_guard.internal.wait import completion
from bdm_guard import opts
from bdm_guard import testing
from bdm_guard import wait
from bdm_guard_lab import nova_wait_model as stock
from tests.unit.create import base as create_base
from tests.unit import fake_cinder

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                    'data', 'waiter-cases.yaml')
with open(DATA) as f:
    CASES = yaml.safe_load(f)


def build(test, case):
    clock = testing.VirtualClock()
    fake = fake_cinder.FakeCinder(clock)
    timeline = [(e['t'], e['status']) for e in case['timeline']]
    vid = fake.add_volume(size=case['size_gb'], timeline=timeline)
    fake.faults = [dict(f) for f in case.get('faults', [])]
    fake.messages = [dict(m, resource_uuid=vid)
                     for m in case.get('messages', [])]
    client = fake_cinder.make_client(test, fake)
    return clock, fake, client, vid


def final_change(case):
    return case['timeline'][-1]['t']


def run_guard(test, case, seed=0, conf=None):
    clock, fake, client, vid = build(test, case)
    try:
        report = wait.wait_for_volume(
            client, vid, size_gb=case['size_gb'], sleep=clock.sleep,
            clock=clock, rng=random.Random(seed), conf=conf)
        result = ('available', report.polls, clock() - final_change(case),
                  report)
    except exception.VolumeWaitFailed as exc:
        result = ('failed', exc.polls, clock() - final_change(case), exc)
    except exception.VolumeWaitTimeout as exc:
        result = ('timeout', exc.polls, None, exc)
    except exception.VolumeVanished as exc:
        result = ('vanished', exc.polls, clock(), exc)
    gets = [t for t, method, path in fake.requests
            if method == 'GET' and path.startswith('/volumes/')]
    return result, gets


def run_stock(test, case):
    clock, fake, client, vid = build(test, case)
    try:
        attempts, gets = stock.await_volume(client, vid, sleep=clock.sleep,
                                            clock=clock)
        return 'available', gets, clock() - final_change(case)
    except stock.StockFailure as exc:
        lag = None
        if exc.reason == 'failed_without_reason':
            lag = clock() - final_change(case)
        return exc.reason, exc.gets, lag


class TestWaiterCases(base.BaseTestCase):
    """The cases with the default schedule (``poll_schedule = completion``).

    Each case's wait starts with nothing learnt, as in a new process.
    """

    scenarios = None
    schedule = 'completion'

    def setUp(self):
        super().setUp()
        create_base.fresh_learner(self)
        self.conf = opts.get_conf(None)
        self.conf.set_override('poll_schedule', self.schedule,
                               group='bdm_guard')

    def _check(self, case, seed):
        (outcome, polls, lag, detail), gets = run_guard(self, case, seed,
                                                        self.conf)
        expect = case['expect']
        self.assertEqual(expect['outcome'], outcome, detail)
        limit = expect.get('max_polls_%s' % self.schedule,
                           expect.get('max_polls'))
        if limit is not None:
            self.assertLessEqual(polls, limit)
        if 'detect_within_s' in expect:
            self.assertIsNotNone(lag)
            self.assertLessEqual(lag, expect['detect_within_s'])
            self.assertGreaterEqual(lag, 0)
        for needle in expect.get('error_mentions', []):
            self.assertIn(needle, str(detail))
        if case['id'] == 'W08':
            # Vanished once the grace is over, well before the deadline.
            self.assertLess(lag, detail.report.deadline / 2)
        for fault in case.get('faults', []):
            if fault['kind'] == 'http_429':
                # No GET inside a Retry-After window.
                hits = [t for t in gets if fault['from'] <= t < fault['to']]
                later = gets[gets.index(hits[0]) + 1:]
                for before, after in zip(hits, later):
                    # 1e-9: float sums on the virtual clock.
                    self.assertGreaterEqual(after - before + 1e-9,
                                            fault['retry_after'])

    def _check_stock(self, case):
        nova = case['expect'].get('nova_stock')
        if nova is None:
            return
        outcome, gets, lag = run_stock(self, case)
        self.assertTrue(str(nova).startswith(outcome), (nova, outcome))


def _make(case):
    def test(self):
        # Jitter must not break any bound, whatever it draws.
        for seed in range(5):
            completion.LEARNER.clear()
            self._check(case, seed)
        self._check_stock(case)
    test.__name__ = 'test_%s' % case['id']
    test.__doc__ = case['source']
    return test


class TestWaiterCasesBackoff(TestWaiterCases):
    """The same cases with ``poll_schedule = backoff``."""

    schedule = 'backoff'


for _case in CASES:
    setattr(TestWaiterCases, 'test_%s' % _case['id'], _make(_case))


class TestSideBySide(base.BaseTestCase):

    def test_side_by_side(self):
        rows = ['%-4s %-10s %6s %8s | %-22s %6s %8s' % (
            'case', 'guard', 'polls', 'lag_s', 'nova 34 (model)', 'GETs',
            'lag_s')]
        for case in CASES:
            (outcome, polls, lag, _), _ = run_guard(self, case)
            s_outcome, s_gets, s_lag = run_stock(self, case)
            rows.append('%-4s %-10s %6d %8s | %-22s %6d %8s' % (
                case['id'], outcome, polls,
                '-' if lag is None else '%.1f' % lag, s_outcome, s_gets,
                '-' if s_lag is None else '%.1f' % s_lag))
        table = '\n'.join(rows)
        self.addDetail('side_by_side',
                       testtools.content.text_content(table))
        if os.environ.get('BDM_GUARD_PRINT_CASES'):
            print(table, file=sys.stderr)
        self.assertEqual(len(CASES) + 1, len(rows))
