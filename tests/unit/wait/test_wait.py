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

"""Waiter behaviour beyond the shared cases: bad input, auth, budgets."""

import random

from oslo_config import cfg

from bdm_guard import exception
from bdm_guard.internal.wait import poll
from bdm_guard.internal.wait import schedule
from bdm_guard import opts
from bdm_guard import testing
from bdm_guard import wait
from tests.unit.create import base as create_base
from tests.unit import fake_cinder


def backoff_conf():
    """Options with ``poll_schedule = backoff`` (bdm-guard 1.0's)."""
    conf = opts.get_conf(None)
    conf.set_override('poll_schedule', 'backoff', group='bdm_guard')
    return conf


class WaitTestCase(create_base.FakeCinderTest):

    def wait(self, vid, **kw):
        kw.setdefault('sleep', self.clock.sleep)
        kw.setdefault('clock', self.clock)
        kw.setdefault('rng', random.Random(1))
        return wait.wait_for_volume(self.client, vid, **kw)

    def gets(self):
        return [r for r in self.fake.requests if r[1] == 'GET']


class TestBadInput(WaitTestCase):

    def test_malformed_ids_sent_nothing(self):
        for bad in ('', 'abc', '../../etc', None, 42,
                    '12345678-1234-1234-1234-1234567890zz',
                    'a' * 10000, '\x00\xff'):
            self.assertRaises(exception.InvalidVolumeId, self.wait, bad)
        self.assertEqual([], self.fake.requests)

    def test_non_json_body_is_transient(self):
        vid = self.fake.add_volume(
            timeline=[(0, 'creating'), (10, 'available')])
        calls = []
        real = self.fake.get

        def flaky(request, volume_id):
            calls.append(1)
            if len(calls) < 3:
                return self.fake.respond(request, 200,
                                         html='<html>proxy</html>')
            return real(request, volume_id)
        self.fake.get = flaky
        report = self.wait(vid)
        self.assertEqual('available', report.volume['status'])
        self.assertEqual(2, report.retries['unknown'])

    def test_missing_status_is_transient_then_times_out(self):
        vid = self.fake.add_volume()
        self.fake.get = lambda request, v: self.fake.respond(
            request, 200, {'volume': {'id': v}})
        exc = self.assertRaises(exception.VolumeWaitTimeout, self.wait,
                                vid)
        self.assertGreater(exc.report.retries['malformed'], 3)
        self.assertIn('never seen', str(exc))

    def test_unreachable_cinder_says_so(self):
        vid = self.fake.add_volume()

        def refuse(request, volume_id):
            raise fake_cinder.lost_request_error()
        self.fake.get = refuse
        retried = []
        exc = self.assertRaises(
            exception.VolumeWaitTimeout, self.wait, vid,
            on_retry=lambda cause, t: retried.append(cause))
        self.assertIn('never seen (%d connection failures)' % exc.polls,
                      str(exc))
        self.assertEqual(['not_sent'] * exc.polls, retried)

    def test_unknown_status_fails_fast_with_reason(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating'),
                                             (1, 'maintenance')])
        self.fake.messages = [{'resource_uuid': vid, 'event_id': 'X',
                               'user_message': 'backend went away',
                               'created_at': '2026-01-01T00:00:01'}]
        exc = self.assertRaises(exception.VolumeWaitFailed, self.wait, vid)
        self.assertEqual('maintenance', exc.status)
        self.assertIn('backend went away', str(exc))

    def test_error_without_messages(self):
        vid = self.fake.add_volume(status='error')
        exc = self.assertRaises(exception.VolumeWaitFailed, self.wait, vid)
        self.assertIn('cinder gave no reason', str(exc))
        self.assertEqual(1, exc.polls)

    def test_out_of_range_options_rejected(self):
        conf = cfg.ConfigOpts()
        opts.register_opts(conf)
        conf([], default_config_files=[])
        for name, value in (('poll_initial_interval', 0),
                            ('poll_multiplier', 0.5),
                            ('per_gib_allowance', -1),
                            ('deadline_ceiling', 10),
                            ('create_max_posts', 0)):
            self.assertRaises(ValueError, conf.set_override, name, value,
                              group='bdm_guard')

    def test_list_opts_are_copies(self):
        first = dict(opts.list_opts())['bdm_guard']
        second = dict(opts.list_opts())['bdm_guard']
        self.assertIsNot(first[0], second[0])
        for opt in first:
            self.assertTrue(opt.help)


class TestExtraLook(WaitTestCase):
    """A look news brought early leaves the schedule's history alone."""

    def test_extra_look_is_counted_but_not_planned_from(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating'),
                                             (2, 'downloading')])
        source = poll.PollSource(self.client, vid, ('creating',
                                                    'downloading'),
                                 10.0, self.clock(), self.clock)
        self.clock.sleep(1.0)
        source.observe()
        self.clock.sleep(2.0)
        extra = source.observe(extra=True)
        self.assertEqual(('downloading', 3.0, 1.0),
                         (extra.phase, extra.phase_seen, extra.phase_after))
        self.clock.sleep(1.0)
        planned = source.observe()
        # As if the extra look at 3 s never was: the change is seen at 4 s,
        # after the last planned look at 1 s.
        self.assertEqual(
            ('downloading', 0, 4.0, 1.0, 1.0, 0),
            (planned.phase, planned.polls, planned.phase_seen,
             planned.phase_after, planned.previous_at, planned.failures))
        self.assertEqual(3, source.polls)


class TestBehaviour(WaitTestCase):

    def test_401_reauthenticates_and_continues(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating'),
                                             (20, 'available')])
        self.fake.faults = [{'from': 2, 'to': 6, 'kind': 'http_401'}]
        report = self.wait(vid)
        self.assertEqual('available', report.volume['status'])
        self.assertGreater(report.retries['auth'], 0)

    def test_nova_budget_is_a_floor(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating')])
        exc = self.assertRaises(
            exception.VolumeWaitTimeout, self.wait, vid,
            allocate_retries=200, allocate_retries_interval=3)
        self.assertEqual(603, exc.report.deadline)
        self.assertGreaterEqual(exc.elapsed, 603)

    def test_deadline_grows_with_size_and_respects_ceiling(self):
        conf = opts.get_conf(None)
        self.assertEqual(180, schedule.wait_deadline(conf))
        self.assertEqual(380, schedule.wait_deadline(conf, 10))
        # No default ceiling: a 500 GiB copy gets its per-GiB budget.
        self.assertEqual(10180, schedule.wait_deadline(conf, 500))
        # nova's reimage_timeout_per_gb is a floor on the allowance.
        self.assertEqual(180 + 30 * 500,
                         schedule.wait_deadline(conf, 500, per_gib_floor=30))
        # An operator's ceiling caps the sum, never nova's own budget.
        conf.set_override('deadline_ceiling', 3600, group='bdm_guard')
        self.assertEqual(3600, schedule.wait_deadline(conf, 1000))
        self.assertEqual(6001, schedule.wait_deadline(conf, 1000, 6000, 1))
        self.assertEqual(183, schedule.nova_budget(60, 3))
        self.assertEqual(3, schedule.nova_budget(0, 3))

    def test_status_change_resets_backoff_and_reports(self):
        vid = self.fake.add_volume(timeline=[
            (0, 'creating'), (30, 'downloading'), (60, 'available')])
        seen = []
        report = self.wait(vid, size_gb=2, conf=backoff_conf(),
                           on_status=lambda s, t, v: seen.append(s))
        self.assertEqual(['creating', 'downloading', 'available'], seen)
        self.assertEqual(['creating', 'downloading', 'available'],
                         [s for _, s in report.statuses])
        # Right after the change the ramp restarts at the phase's first
        # step (downloading_initial_interval, 5 s, plus at most 10% jitter),
        # not where the creating ramp had got to (15 s).
        first_after = [t for t, m, p in self.gets() if t >= 30][:2]
        self.assertGreaterEqual(first_after[1] - first_after[0], 5.0)
        self.assertLessEqual(first_after[1] - first_after[0], 5.5)

    def test_first_get_after_create_waits_one_step(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating'),
                                             (2, 'available')])
        self.clock.now = 100.0
        self.wait(vid, created_at=99.8, conf=backoff_conf())
        self.assertAlmostEqual(100.3, self.gets()[0][0])

    def test_first_get_after_create_waits_the_first_look(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating'),
                                             (2, 'available')])
        self.clock.now = 100.0
        self.wait(vid, created_at=99.8)
        self.assertAlmostEqual(101.8, self.gets()[0][0])

    def test_jitter_never_adds_polls(self):
        vid_a = self.fake.add_volume(timeline=[(0, 'downloading'),
                                               (300, 'available')])
        conf = backoff_conf()
        conf.set_override('poll_jitter', 0, group='bdm_guard')
        base = self.wait(vid_a, conf=conf, size_gb=10).polls
        for seed in range(20):
            clock = testing.VirtualClock()
            fake = fake_cinder.FakeCinder(clock)
            vid = fake.add_volume(timeline=[(0, 'downloading'),
                                            (300, 'available')])
            client = fake_cinder.make_client(self, fake)
            report = wait.wait_for_volume(client, vid, sleep=clock.sleep,
                                          clock=clock, size_gb=10,
                                          rng=random.Random(seed),
                                          conf=backoff_conf())
            self.assertLessEqual(report.polls, base)
            self.assertLessEqual(max(clock.sleeps), 15.0 + 1e-9)

    def test_vanished_after_being_seen(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating')])
        self.fake.faults = [{'from': 40, 'to': 10 ** 6, 'kind': 'http_404'}]
        exc = self.assertRaises(exception.VolumeVanished, self.wait, vid)
        self.assertEqual('creating', exc.status)
