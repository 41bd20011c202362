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

"""The completion schedule, the seams it plugs into, and no overflow.

All on the virtual clock: no test sleeps, no figure is a timing.
"""

import math
import random
import threading
from unittest import mock
import warnings

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from oslo_config import cfg
from oslotest import base
import tenacity

from bdm_guard import exception
from bdm_guard.internal.events import watch as watch_mod
from bdm_guard.internal import retry
from bdm_guard.internal.wait import completion
from bdm_guard.internal.wait import poll
from bdm_guard.internal.wait import schedule
from bdm_guard import opts
from bdm_guard import testing
from bdm_guard import wait
from tests.unit.create import base as create_base
from tests.unit import fake_cinder

GROUP = dict(opts.list_opts())[opts.GROUP]


def conf_with(**overrides):
    conf = opts.get_conf(None)
    for name, value in overrides.items():
        conf.set_override(name, value, group=opts.GROUP)
    return conf


def bound(conf, waited):
    """The completion schedule's longest interval after ``waited`` s."""
    group = conf.bdm_guard
    return max(group.completion_max_interval,
               min(group.completion_interval_fraction * waited,
                   group.completion_interval_ceiling))


class Case(create_base.FakeCinderTest):

    def run_wait(self, timeline, size_gb=None, conf=None, **kw):
        vid = self.fake.add_volume(size=size_gb or 1, timeline=timeline)
        kw.setdefault('rng', random.Random(3))
        try:
            report = wait.wait_for_volume(
                self.client, vid, size_gb=size_gb, sleep=self.clock.sleep,
                clock=self.clock, conf=conf, created_at=0.0, **kw)
            return 'available', report.elapsed
        except exception.VolumeWaitFailed as exc:
            return 'failed', exc.elapsed


class TestErrorsAsSoonAsAvailable(Case):
    """``error`` is seen within the bound of ``available``.

    The same volume, the same size, the same moment: once it becomes
    available, once it goes to error. Both are noticed within the
    schedule's interval bound, whatever the phase and the time.
    """

    def test_error_is_noticed_within_the_same_bound(self):
        conf = opts.get_conf(None)
        short = (1.0, 3.0, 14.0, 45.0, 170.0)
        cases = ([(None, 'creating', at) for at in short]
                 + [(10, phase, at) for at in short
                    for phase in ('creating', 'downloading')]
                 + [(200, 'downloading', at)
                    for at in (14.0, 170.0, 900.0, 3000.0)])
        for size_gb, phase, at in cases:
            lags = {}
            for end in ('available', 'error'):
                timeline = [(0, 'creating')]
                if phase == 'downloading':
                    timeline.append((0.7, 'downloading'))
                timeline.append((at, end))
                self.setUp_fake()
                outcome, elapsed = self.run_wait(
                    timeline, size_gb=size_gb, conf=conf)
                self.assertEqual(
                    'available' if end == 'available' else 'failed',
                    outcome)
                lags[end] = elapsed - at
                self.assertGreaterEqual(lags[end], 0)
                self.assertLessEqual(lags[end],
                                     bound(conf, at) + 1e-6,
                                     (size_gb, phase, at, end))

    def setUp_fake(self):
        completion.LEARNER.clear()
        self.clock = testing.VirtualClock()
        self.fake = fake_cinder.FakeCinder(self.clock)
        self.client = fake_cinder.make_client(self, self.fake)


class TestLostAnswers(Case):
    """A GET that brings no status does not push the next look far.

    The look the schedule planned is made again soon. Before, a lost
    answer on the GET that would have seen ``available`` was followed by
    the predicted interval or ``completion_first_look``, whichever was
    longer, so the volume could be seen up to two intervals after it was
    ready, past the interval bound.
    """

    SIZE = 10
    TIMELINE = [(0, 'creating'), (0.7, 'downloading')]

    def setUp(self):
        super().setUp()
        self.fresh()

    def fresh(self):
        completion.LEARNER.clear()
        self.clock = testing.VirtualClock()
        self.fake = fake_cinder.FakeCinder(self.clock)
        self.client = fake_cinder.make_client(self, self.fake)

    def gets(self):
        return [t for t, method, path in self.fake.requests
                if method == 'GET' and path.startswith('/volumes/')]

    def widest_gap(self, conf):
        """The ready time just after a look, and the next look.

        Found on a wait without faults whose volume is ready at 60 s.
        """
        outcome, _ = self.run_wait(self.TIMELINE + [(60.0, 'available')],
                                   size_gb=self.SIZE, conf=conf)
        self.assertEqual('available', outcome)
        times = [t for t in self.gets() if t < 60.0]
        gap, before = max((b - a, a) for a, b in zip(times, times[1:]))
        return before + 0.01, before + gap

    def test_a_lost_answer_is_looked_at_again_within_the_bound(self):
        conf = opts.get_conf(None)
        ready, look = self.widest_gap(conf)
        # The same wait, ready just after a look: the next look sees it.
        self.fresh()
        self.run_wait(self.TIMELINE + [(ready, 'available')],
                      size_gb=self.SIZE, conf=conf)
        self.assertAlmostEqual(look, self.gets()[-1])
        # Now that look's answer is lost.
        self.fresh()
        self.fake.faults.append({'from': look - 1e-3, 'to': look + 1e-3,
                                 'kind': 'reset'})
        outcome, elapsed = self.run_wait(
            self.TIMELINE + [(ready, 'available')], size_gb=self.SIZE,
            conf=conf)
        self.assertEqual('available', outcome)
        retry_after = completion.MIN_INTERVAL * (
            1.0 + conf.bdm_guard.poll_jitter)
        self.assertLessEqual(elapsed, look + retry_after + 1e-6)
        self.assertLessEqual(elapsed - ready,
                             bound(conf, ready) + retry_after + 1e-6)

    def test_an_outage_after_a_status_backs_off_doubling(self):
        conf = opts.get_conf(None)
        self.fake.faults.append({'from': 10.0, 'to': 70.0,
                                 'kind': 'haproxy_503'})
        outcome, _ = self.run_wait(self.TIMELINE + [(80.0, 'available')],
                                   size_gb=self.SIZE, conf=conf)
        self.assertEqual('available', outcome)
        times = [t for t in self.gets() if 10.0 <= t < 70.0]
        gaps = [b - a for a, b in zip(times, times[1:])]
        jitter = 1.0 + conf.bdm_guard.poll_jitter
        # 0.5 s after the first 503, then doubling up to the bound: an
        # outage is not hammered at the minimum interval.
        self.assertLessEqual(len(times), 14)
        for n, gap in enumerate(gaps[:4]):
            self.assertGreaterEqual(gap, completion.MIN_INTERVAL * 2 ** n
                                    - 1e-6)
            self.assertLessEqual(gap, completion.MIN_INTERVAL * 2 ** n
                                 * jitter + 1e-6)
        for gap in gaps:
            self.assertLessEqual(gap, bound(conf, 70.0) + 1e-6)


class TestLongCopies(Case):
    """A 4,000 s copy was noticed 127-140 s late; no longer."""

    def test_a_4000_s_copy_is_noticed_within_the_ceiling(self):
        for seed in range(3):
            completion.LEARNER.clear()
            self.clock = testing.VirtualClock()
            self.fake = fake_cinder.FakeCinder(self.clock)
            self.client = fake_cinder.make_client(self, self.fake)
            outcome, elapsed = self.run_wait(
                [(0, 'creating'), (2, 'downloading'), (4000, 'available')],
                size_gb=200, rng=random.Random(seed))
            self.assertEqual('available', outcome)
            self.assertLessEqual(elapsed - 4000, 30.0)

    def test_the_backoff_schedule_is_unchanged(self):
        # The old schedule, kept as poll_schedule = backoff, still allows
        # 5% of the time waited (so the ceiling above is the fix).
        outcome, elapsed = self.run_wait(
            [(0, 'creating'), (2, 'downloading'), (4000, 'available')],
            size_gb=200, conf=conf_with(poll_schedule='backoff'))
        self.assertEqual('available', outcome)
        self.assertGreater(elapsed - 4000, 30.0)


class TestSchedule(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.clock = testing.VirtualClock()
        self.conf = opts.get_conf(None)

    def strategy(self, conf=None, size_gb=10, learner=None, created=0.0):
        deadline = retry.Deadline(self.clock, 10 ** 6, start=0.0)
        return completion.wait_completion(
            conf or self.conf, self.clock, 0.0, deadline,
            random.Random(0), None, created=created, size_gb=size_gb,
            learner=learner or completion.Learner())

    def state(self, observation):
        retry_state = tenacity.RetryCallState(None, None, (), {})
        retry_state.set_result(observation)
        return retry_state

    def test_stamps_that_overflow_or_lie_are_unknown(self):
        self.assertIsNone(completion.parse_stamp('0001-01-01T00:00:00+01:00'))
        self.assertIsNone(completion.parse_stamp('9999-12-31T23:59:59-05:00'))
        self.assertIsNone(completion.parse_stamp('not a time'))
        self.assertIsNone(completion.parse_stamp(5))
        self.assertEqual(4.0, completion.parse_stamp('1970-01-01T00:00:04Z'))
        self.assertIsNone(completion.since_created(
            {'created_at': '0001-01-01T00:00:00+01:00',
             'updated_at': '2026-01-01T00:00:04.000000'}))

    def test_pure_function_of_the_attempt(self):
        strategy = self.strategy()
        self.clock.now = 12.0
        obs = poll.Observation(poll.PENDING, 'downloading', 'downloading',
                               {'size': 10}, polls=3, at=12.0,
                               phase_after=2.0, phase_seen=4.0)
        strategy.rng = random.Random(5)
        first = strategy(self.state(obs))
        strategy.rng = random.Random(5)
        self.assertEqual(first, strategy(self.state(obs)))
        self.assertFalse(hasattr(strategy, 'reset'))

    def test_polls_densest_around_the_predicted_end(self):
        # 10 GiB at the prior's 2 s/GiB: the copy ends about 20 s after
        # it starts. Far before, the interval is the bound; near, short.
        strategy = self.strategy()
        intervals = {}
        for t in (5.0, 22.0):
            self.clock.now = t
            obs = poll.Observation(poll.PENDING, 'downloading',
                                   'downloading', {'size': 10}, at=t,
                                   phase_after=1.0, phase_seen=2.0)
            intervals[t] = strategy.interval(obs, t)
        self.assertLess(intervals[22.0], intervals[5.0])
        self.assertGreaterEqual(intervals[22.0], completion.MIN_INTERVAL)
        self.assertLessEqual(intervals[5.0], 8.0)

    def test_updated_at_places_the_copy_start(self):
        volume = {'size': 10, 'created_at': '2026-01-01T00:00:00.250000',
                  'updated_at': '2026-01-01T00:00:03.000000'}
        obs = poll.Observation(poll.PENDING, 'downloading', 'downloading',
                               volume, at=6.0, previous_at=1.0,
                               phase_after=1.0, phase_seen=6.0)
        self.assertAlmostEqual(2.75, completion.change_time(obs, 0.0))
        # Outside the window of the two GETs: clamped to it.
        obs = poll.Observation(poll.PENDING, 'downloading', 'downloading',
                               dict(volume, updated_at='2026-01-01T01:00'),
                               at=6.0, previous_at=1.0)
        self.assertEqual(6.0, completion.change_time(obs, 0.0))
        for bad in (None, 'yesterday', 42, '2026-13-01T00:00:00', 'x' * 99):
            self.assertIsNone(completion.parse_stamp(bad))
        self.assertEqual(completion.parse_stamp('2026-01-01T00:00:00'),
                         completion.parse_stamp('2026-01-01T00:00:00Z'))

    def test_learner_moves_to_what_it_sees_and_stays_bounded(self):
        learner = completion.Learner(keys=4)
        mu0, sigma0 = learner.estimate('lvm', completion.COPY, 2.0, 0.5)
        self.assertAlmostEqual(math.log(2.0), mu0)
        for _ in range(100):
            learner.learn('lvm', completion.COPY, 8.0)
        mu, sigma = learner.estimate('lvm', completion.COPY, 2.0, 0.5)
        self.assertAlmostEqual(math.log(8.0), mu, delta=0.1)
        self.assertLess(sigma, sigma0)
        for key in range(50):
            learner.learn('type-%d' % key, completion.COPY, 1.0)
        self.assertEqual(4, len(learner._stats))
        for bad in (0, -1, float('nan'), float('inf'), None, 'x'):
            learner.learn('lvm', completion.COPY, bad)

    def test_learner_is_thread_safe(self):
        learner = completion.Learner()

        def feed():
            for i in range(2000):
                learner.learn('k%d' % (i % 80), completion.CREATING, 4.0)
        threads = [threading.Thread(target=feed) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertLessEqual(len(learner._stats), completion.LEARN_KEYS)

    def test_finished_waits_teach_the_process(self):
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock)
        client = fake_cinder.make_client(self, fake)
        learner = completion.Learner()
        vid = fake.add_volume(size=10, timeline=[
            (0, 'creating'), (3, 'downloading'), (83, 'available')])
        wait.wait_for_volume(client, vid, size_gb=10, sleep=clock.sleep,
                             clock=clock, created_at=0.0, learner=learner)
        mu, _ = learner.estimate('', completion.COPY, 2.0, 0.5)
        self.assertGreater(mu, math.log(2.0))


class TestFirstWave(TestSchedule):
    """Nothing finished yet: the censored peers and the prior's cap."""

    def copying(self, vid, t, size=2, begun=2.0):
        return poll.Observation(poll.PENDING, 'downloading', 'downloading',
                                {'id': vid, 'size': size}, at=t,
                                phase_after=begun - 1.0, phase_seen=begun)

    @staticmethod
    def peers(per_gib, learner=None):
        """A learner with ten peers copying for ``per_gib`` s/GiB so far."""
        learner = learner or completion.Learner()
        for i in range(10):
            learner.running('peer-%d' % i, '', completion.COPY, per_gib,
                            until=100.0)
        return learner

    def test_peers_that_outlived_the_prior_move_the_median(self):
        # Ten volumes copying for 30 s at 2 GiB: their copies take at
        # least 15 s/GiB, where the prior says 2.
        learner = completion.Learner()
        prior, _ = learner.estimate('', completion.COPY, 2.0, 0.5)
        self.peers(15.0, learner)
        mu, _ = learner.estimate('', completion.COPY, 2.0, 0.5, now=40.0)
        self.assertGreater(mu, math.log(6.0))
        # Its own sample is not counted twice.
        alone, _ = learner.estimate('', completion.COPY, 2.0, 0.5,
                                    now=40.0, exclude='peer-0')
        self.assertLessEqual(alone, mu)
        # Young peers say nothing: the median only moves towards slower.
        mu_young, _ = self.peers(0.1).estimate('', completion.COPY, 2.0,
                                               0.5, now=1.0)
        self.assertAlmostEqual(prior, mu_young, places=3)

    def test_a_prior_the_peers_contradict_weighs_less(self):
        # The prior on the median is heavy-tailed (CENSORED_NU): peers that
        # all outlived it by far move the median further than a normal
        # prior of the same scale lets them, to the posterior's mode.
        mu_t, _ = self.peers(15.0).estimate('', completion.COPY, 2.0, 0.5,
                                            now=40.0)
        with mock.patch.object(completion, 'CENSORED_NU', 1e12):
            mu_normal, _ = self.peers(15.0).estimate(
                '', completion.COPY, 2.0, 0.5, now=40.0)
        self.assertGreater(mu_t, mu_normal + 0.3)
        self.assertGreater(mu_t, math.log(15.0))
        # The mode of the posterior, by brute force on a grid.
        nu, tau, x = completion.CENSORED_NU, completion.CENSORED_TAU, \
            math.log(15.0)

        def log_posterior(g):
            prior = -0.5 * (nu + 1) * math.log1p(
                (g - math.log(2.0)) ** 2 / (nu * tau * tau))
            return prior + 10 * math.log(
                0.5 * math.erfc((x - g) / 0.5 / math.sqrt(2.0)))
        grid = [math.log(2.0) + i * 1e-3 for i in range(6000)]
        self.assertAlmostEqual(max(grid, key=log_posterior), mu_t,
                               delta=2e-3)
        # Peers at the prior's median: the two priors agree.
        mu_t, _ = self.peers(2.0).estimate('', completion.COPY, 2.0, 0.5,
                                           now=40.0)
        with mock.patch.object(completion, 'CENSORED_NU', 1e12):
            mu_normal, _ = self.peers(2.0).estimate(
                '', completion.COPY, 2.0, 0.5, now=40.0)
        self.assertAlmostEqual(mu_normal, mu_t, delta=0.01)

    def test_the_move_widens_the_spread(self):
        # Peers that outlived the prior bound the median from below only:
        # the spread grows by the distance they moved it, so the next
        # GETs spread out instead of crowding just ahead of the peers.
        mu0, spread0 = completion.Learner().estimate(
            '', completion.COPY, 2.0, 0.5)
        mu, spread = self.peers(15.0).estimate('', completion.COPY, 2.0,
                                               0.5, now=40.0)
        self.assertAlmostEqual(
            math.sqrt(spread0 ** 2
                      + completion.CENSORED_WIDEN * (mu - mu0) ** 2),
            spread, places=6)
        self.assertGreater(spread, spread0)
        # Peers younger than the prior move nothing, nor the spread.
        self.assertAlmostEqual(spread0, self.peers(0.1).estimate(
            '', completion.COPY, 2.0, 0.5, now=1.0)[1], places=6)

    def test_censored_samples_go_with_their_wait(self):
        learner = completion.Learner(keys=1, weight=3)
        prior, _ = learner.estimate('', completion.COPY, 2.0, 0.5)
        for i in range(5):
            learner.running('v%d' % i, '', completion.COPY, 50.0,
                            until=10.0)
        self.assertEqual(3, len(learner._running))
        learner.finished('v4')
        self.assertEqual(2, len(learner._running))
        # Overdue (the wait failed, or sleeps on events): dropped.
        mu, _ = learner.estimate('', completion.COPY, 2.0, 0.5, now=11.0)
        self.assertEqual(prior, mu)
        self.assertEqual(0, len(learner._running))
        for bad in (0, -1, float('nan'), float('inf'), None):
            learner.running('v', '', completion.COPY, bad, until=10.0)
        self.assertEqual(0, len(learner._running))

    def test_the_schedule_reports_its_copy_to_the_learner(self):
        learner = completion.Learner()
        strategy = self.strategy(size_gb=2, learner=learner)
        self.clock.now = 12.0
        strategy(self.state(self.copying('vol-a', 12.0)))
        (key, kind, x, until), = learner._running.values()
        self.assertEqual(('', completion.COPY), (key, kind))
        # No stamps: the copy began mid-way between the GETs at 1 and 2 s,
        # so it has run (12 - 1.5) s on 2 GiB.
        self.assertAlmostEqual(math.log(5.25), x)
        self.assertGreater(until, 12.0)

    def test_prior_cap_until_learnt_or_outlived(self):
        conf = conf_with(completion_max_interval=7.5,
                         completion_prior_max_interval=5.5)
        learner = completion.Learner()
        strategy = self.strategy(conf=conf, size_gb=40, learner=learner)
        # 40 GiB at the prior's 2 s/GiB: about 80 s; at 5 s far before.
        early = self.copying('vol-a', 5.0, size=40, begun=4.0)
        self.assertEqual(5.5, strategy.step(early, 5.0)[1])
        # Past the predicted median the prior is not too slow.
        late = self.copying('vol-a', 150.0, size=40, begun=4.0)
        self.assertEqual(7.5, strategy.step(late, 150.0)[1])
        # Learnt: the longest interval is completion_max_interval.
        for _ in range(completion.LEARNT):
            learner.learn('', completion.COPY, 2.0)
        self.assertEqual(7.5, strategy.step(early, 5.0)[1])
        interval, cap = strategy.step(early, 5.0)
        self.assertLessEqual(interval, cap)


class TestSeams(base.BaseTestCase):

    def test_null_and_event_wakers_are_wakers(self):
        self.assertIsInstance(poll.SleepWaker(), poll.Waker)
        registry = watch_mod.Registry()
        watch = watch_mod.Watch(registry, None, 60.0, lambda n: 1.0)
        self.assertIsInstance(watch, poll.Waker)
        null = poll.SleepWaker()
        self.assertEqual(7.0, null.backstop(7.0))
        self.assertFalse(null.fresh)
        null.bind('x')
        self.assertEqual('x', null.volume_id)

    def test_sleep_only_waker_is_deprecated_not_broken(self):
        slept = []

        class SleepOnly:
            def sleep(self, seconds):
                slept.append(seconds)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            waker = poll.as_waker(SleepOnly(), None)
        self.assertTrue(any(issubclass(w.category, DeprecationWarning)
                            for w in caught))
        waker.sleep(2.0)
        self.assertEqual([2.0], slept)

    def test_ramp_is_the_formula_and_never_overflows(self):
        self.assertEqual(0.5 * 1.5 ** 3, schedule.ramp(0.5, 1.5, 3, 15.0))
        self.assertEqual(15.0, schedule.ramp(0.5, 1.5, 10 ** 12, 15.0))
        self.assertEqual(0.5, schedule.ramp(0.5, 1.0, 10 ** 12, 15.0))
        self.assertEqual(1.0, schedule.ramp(2.0, 4.0, 0, 1.0))
        confirm = schedule.confirm_intervals(opts.get_conf(None))
        self.assertEqual(15.0, confirm(10 ** 9))


def _option_values():
    """Hypothesis: every in-range value of every [bdm_guard] number."""
    fields = {}
    for opt in GROUP:
        if isinstance(opt, cfg.FloatOpt) and opt.type.min is not None:
            high = opt.type.max
            fields[opt.name] = st.floats(
                min_value=opt.type.min, max_value=high, allow_nan=False,
                allow_infinity=False)
        elif isinstance(opt, cfg.IntOpt) and opt.type.min is not None:
            fields[opt.name] = st.integers(opt.type.min, opt.type.max)
    return st.fixed_dictionaries(fields)


def _longest_deadline():
    """The longest per-GiB deadline in range: every option at its max."""
    conf = opts.get_conf(None)
    for opt in GROUP:
        if opt.name in ('base_deadline', 'per_gib_allowance'):
            conf.set_override(opt.name, opt.type.max, group=opts.GROUP)
    return schedule.wait_deadline(conf, 16384)


LONGEST = _longest_deadline()


class TestNoOverflow(base.BaseTestCase):
    """No in-range option overflows or goes NaN."""

    def _conf(self, values, name):
        conf = opts.get_conf(cfg.ConfigOpts())
        for key, value in values.items():
            conf.set_override(key, value, group=opts.GROUP)
        conf.set_override('poll_schedule', name, group=opts.GROUP)
        return conf

    @settings(max_examples=150, deadline=None)
    @given(values=_option_values(),
           name=st.sampled_from(['completion', 'backoff']),
           now=st.floats(0.0, LONGEST),
           polls=st.integers(0, 10 ** 9),
           failures=st.integers(0, 10 ** 9),
           phase=st.sampled_from(['creating', 'downloading']),
           size=st.one_of(st.none(), st.integers(1, 10 ** 30)),
           retry_after=st.one_of(st.none(), st.floats(0.0, 10 ** 6)),
           stamp=st.one_of(st.none(), st.text(max_size=30),
                           st.just('2026-01-01T00:00:00'),
                           st.just('9999-12-31T23:59:59')))
    def test_every_interval_is_finite_and_bounded(
            self, values, name, now, polls, failures, phase, size,
            retry_after, stamp):
        conf = self._conf(values, name)
        clock = testing.VirtualClock()
        clock.now = now
        deadline = retry.Deadline(clock, LONGEST, start=0.0)
        learner = completion.Learner()
        learner.learn('', completion.COPY, 1e-9)
        learner.learn('', completion.COPY, 1e9)
        if name == 'backoff':
            strategy = schedule.wait_status_backoff(
                conf, clock, 0.0, deadline, random.Random(0), None)
        else:
            strategy = completion.wait_completion(
                conf, clock, 0.0, deadline, random.Random(0), None,
                created=0.0, size_gb=size, learner=learner)
        volume = {'size': size, 'created_at': '2026-01-01T00:00:00',
                  'updated_at': stamp}
        obs = poll.Observation(
            poll.PENDING, phase, phase if failures == 0 else None,
            volume if failures == 0 else None, retry_after=retry_after,
            polls=polls, at=now, phase_after=now / 3, phase_seen=now / 2,
            previous_at=now / 4, failures=failures)
        retry_state = tenacity.RetryCallState(None, None, (), {})
        retry_state.set_result(obs)
        interval = strategy(retry_state)
        self.assertTrue(math.isfinite(interval))
        self.assertGreaterEqual(interval, 0.0)
        self.assertLessEqual(interval, deadline.remaining())
        if name == 'completion' and obs.status and not retry_after:
            self.assertLessEqual(interval, bound(conf, now) + 1e-9)

    @settings(max_examples=25, deadline=None)
    @given(values=_option_values(),
           name=st.sampled_from(['completion', 'backoff']))
    def test_503s_to_the_deadline_end_in_a_wait_error(self, values, name):
        # The inputs that overflowed and the whole option space: a
        # volume cinder never shows, until the deadline. Only a
        # VolumeWaitError may come out; never OverflowError or NaN.
        values = dict(values, base_deadline=min(values['base_deadline'],
                                                300.0))
        conf = self._conf(values, name)
        conf.set_override('deadline_ceiling', None, group=opts.GROUP)
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock)
        client = fake_cinder.make_client(self, fake)
        vid = fake.add_volume(timeline=[(0, 'creating')])
        fake.faults = [{'from': 0, 'to': 10 ** 9, 'kind': 'haproxy_503'}]
        self.assertRaises(
            exception.VolumeWaitError, wait.wait_for_volume, client, vid,
            sleep=clock.sleep, clock=clock, conf=conf,
            learner=completion.Learner())

    def test_the_reported_overflow_inputs(self):
        # max_interval_fraction = 0 with 1 s caps and poll_multiplier = 4:
        # 4 ** n overflowed a float after about 512 polls in one status.
        conf = conf_with(poll_schedule='backoff', max_interval_fraction=0.0,
                         creating_max_interval=1.0,
                         downloading_max_interval=1.0, poll_multiplier=4.0,
                         base_deadline=3000.0)
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock)
        client = fake_cinder.make_client(self, fake)
        vid = fake.add_volume(timeline=[(0, 'creating')])
        exc = self.assertRaises(exception.VolumeWaitTimeout,
                                wait.wait_for_volume, client, vid,
                                sleep=clock.sleep, clock=clock, conf=conf)
        self.assertGreater(exc.polls, 2000)
