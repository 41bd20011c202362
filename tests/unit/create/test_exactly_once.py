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

"""Exactly once without ``resume``, and under races.

A create told nothing (``resume`` False, as nova's drop-in calls it) must
not make a second volume for a key an earlier create of this process may
have made one for, and two creates with one key in flight at once must end
with one live volume. Every fault is at the HTTP boundary (the fake cinder
behind requests-mock); two creators are interleaved one HTTP request or
sleep at a time on one virtual clock.
"""

import threading

import fixtures
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from oslotest import base
import testtools

from bdm_guard import create
from bdm_guard import exception
from bdm_guard.internal.create import attempts
from bdm_guard import opts
from bdm_guard import testing
from tests.unit.create import base as create_base
from tests.unit import fake_cinder

KEY = create_base.KEY
KEY_META = create_base.KEY_META
SNAPSHOT = '7018366c-f658-47a7-9ed3-4fe53a096533'
SOURCE_IMAGE = '6018366c-f658-47a7-9ed3-4fe53a096533'


def lists(fake):
    return [r for r in fake.requests
            if r[1] == 'GET' and r[2].startswith('/volumes/detail')]


class TestWithoutResume(create_base.FaultTest):
    """A later create of a key this process already sent a POST for."""

    def test_first_create_of_a_key_costs_no_lookup(self):
        result = self.create()
        self.assertEqual('created', result.how)
        self.assertEqual(1, self.fake.post_count)
        self.assertEqual([], lists(self.fake))

    def test_late_volume_of_an_unknown_create_is_adopted(self):
        self.conf.set_override('create_max_posts', 1, 'bdm_guard')
        self.fake.posts = ['gateway_504', 'ok']
        self.fake.visible_after = 1e9
        self.assertRaises(exception.VolumeCreateUnknown, self.create)
        # The volume shows after the first create gave up (lag).
        self.fake.visible_after = 0
        result = self.create()
        self.assertEqual('adopted', result.how)
        self.assertEqual(1, self.fake.post_count)
        self.assertEqual([result.volume['id']], self.with_key())

    def test_second_create_after_success_sends_no_post(self):
        first = self.create()
        second = self.create()
        self.assertEqual(first.volume['id'], second.volume['id'])
        self.assertEqual('adopted', second.how)
        self.assertEqual(1, self.fake.post_count)

    def test_volume_of_another_size_is_a_conflict_not_a_post(self):
        first = self.create(size=10)
        exc = self.assertRaises(exception.IdempotencyConflict, self.create,
                                size=20)
        self.assertEqual(first.volume['id'], exc.kwargs['volume_id'])
        self.assertEqual(1, self.fake.post_count)
        self.assertEqual([first.volume['id']], self.with_key())

    def test_not_sent_create_leaves_the_key_unsuspected(self):
        self.conf.set_override('create_max_posts', 2, 'bdm_guard')
        self.fake.posts = ['lost_request']
        self.assertRaises(exception.VolumeCreateNotSent, self.create)
        self.fake.posts = ['ok']
        lists_before = len(lists(self.fake))
        self.create()
        self.assertEqual(lists_before, len(lists(self.fake)))


class TestSnapshotAdoption(create_base.FaultTest):
    """cinder copies the source's image_id to the volume.

    A volume made from a snapshot of a bootable volume carries the source
    image's id in its ``volume_image_metadata``. Adoption must go by the key
    and the request hash, never by ``image_id``.
    """

    def test_lost_answer_adopts_the_snapshot_volume(self):
        self.fake.snapshot_image_metadata = {'image_id': SOURCE_IMAGE}
        self.fake.posts = ['lost_response', 'ok']
        result = self.create(snapshot_id=SNAPSHOT)
        self.assertEqual('adopted', result.how)
        self.assertEqual(1, self.fake.post_count)
        self.assertEqual({'image_id': SOURCE_IMAGE},
                         result.volume['volume_image_metadata'])
        self.assertEqual([result.volume['id']], self.with_key())

    def test_retried_create_adopts_the_snapshot_volume(self):
        self.fake.snapshot_image_metadata = {'image_id': SOURCE_IMAGE}
        first = self.create(snapshot_id=SNAPSHOT)
        second = self.create(snapshot_id=SNAPSHOT, resume=True)
        self.assertEqual(first.volume['id'], second.volume['id'])
        self.assertEqual(1, self.fake.post_count)


class Interleaver:
    """Run creators in threads, one at a time, on one virtual clock.

    A creator gives up its turn before each HTTP request and at each
    sleep; the next turn goes to the creator due first, ties broken
    by ``choose(n) -> index`` (hypothesis draws them). Nothing runs at once,
    so a run is a function of the choices.
    """

    def __init__(self, clock, choose):
        self.clock = clock
        self.choose = choose
        self.cond = threading.Condition()
        self.due = {}
        self.turn = None
        self.names = {}
        self.results = {}

    def _next(self):
        if not self.due:
            self.turn = None
            self.cond.notify_all()
            return
        earliest = min(self.due.values())
        ready = sorted(n for n, t in self.due.items() if t <= earliest)
        pick = ready[self.choose(len(ready))] if len(ready) > 1 else ready[0]
        del self.due[pick]
        self.clock.now = max(self.clock.now, earliest)
        self.turn = pick
        self.cond.notify_all()

    def _pause(self, until):
        name = self.names[threading.get_ident()]
        with self.cond:
            self.due[name] = until
            self._next()
            while self.turn != name:
                self.cond.wait()

    def sleep(self, seconds):
        self._pause(self.clock() + max(0.0, seconds))

    def point(self):
        self._pause(self.clock())

    def _body(self, name, job):
        self.names[threading.get_ident()] = name
        with self.cond:
            while self.turn != name:
                self.cond.wait()
        try:
            self.results[name] = job()
        except BaseException as exc:  # checked by the test
            self.results[name] = exc
        finally:
            with self.cond:
                self._next()

    def run(self, jobs):
        threads = []
        with self.cond:
            for name, (delay, job) in jobs.items():
                self.due[name] = self.clock() + delay
                thread = threading.Thread(target=self._body,
                                          args=(name, job), daemon=True)
                threads.append(thread)
        for thread in threads:
            thread.start()
        with self.cond:
            self._next()
        for thread in threads:
            thread.join(60)
            assert not thread.is_alive(), 'a creator hung'
        for result in self.results.values():
            if not isinstance(result, (create.CreateResult,
                                       exception.BdmGuardException)):
                raise result
        return self.results


class Turns:
    """The real VolumeClient, giving up the turn before each request.

    (Not inside the fake: requests-mock answers one request at a time.)
    """

    def __init__(self, client, runner):
        self._client = client
        self._runner = runner

    def __getattr__(self, name):
        call = getattr(self._client, name)

        def turn(*args, **kwargs):
            self._runner.point()
            return call(*args, **kwargs)
        return turn


class RaceTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        testing.forget_attempts()
        self.addCleanup(testing.forget_attempts)
        self.holder = {}
        self.client = fake_cinder.make_client(
            self, lambda request: self.holder['handler'](request))

    def race(self, clock, fake, choose, resumes, delays, sizes=(10, 10)):
        """Two creates with KEY; returns their results (or exceptions)."""
        testing.forget_attempts()
        conf = opts.get_conf(None)
        runner = Interleaver(clock, choose)

        self.holder['handler'] = fake
        client = Turns(self.client, runner)

        def job(resume, size):
            return lambda: create.create_volume(
                client, size, idempotency_key=KEY, resume=resume,
                sleep=runner.sleep, clock=clock, conf=conf)
        return runner.run({
            'a': (delays[0], job(resumes[0], sizes[0])),
            'b': (delays[1], job(resumes[1], sizes[1]))})

    def check(self, clock, fake, results, before=frozenset()):
        clock.now += 3600   # every lag over, every volume settled
        survivors = {v['id'] for v in fake.volumes.values()
                     if v['metadata'].get(KEY_META) == KEY}
        self.assertLessEqual(len(survivors), 1, 'two live volumes')
        held = {r.volume['id'] for r in results.values()
                if isinstance(r, create.CreateResult)}
        # Every creator that returned holds the one live volume.
        self.assertLessEqual(len(held), 1, 'creators hold different volumes')
        self.assertEqual(held, survivors - set(before) | (held & set(before)))
        if not held:
            # Both failed: nothing they made is left alive.
            self.assertEqual(set(), survivors - set(before))

    def test_both_look_first_then_both_post(self):
        # a and b both list (empty), both POST, then each looks again.
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock)
        choices = iter([0, 1, 0, 1, 0, 1, 0, 1] + [0] * 100)
        results = self.race(clock, fake, lambda n: next(choices) % n,
                            (True, True), (0, 0))
        self.assertEqual(2, fake.post_count)
        self.check(clock, fake, results)
        self.assertEqual(1, len(fake.deleted))

    def test_running_create_makes_a_second_one_look(self):
        # Two threads of one process, neither told to resume.
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock)
        choices = iter([0, 1, 0, 1, 0, 1] + [0] * 100)
        results = self.race(clock, fake, lambda n: next(choices) % n,
                            (False, False), (0, 0))
        self.check(clock, fake, results)

    @settings(max_examples=100, deadline=None)
    @given(turns=st.lists(st.integers(0, 1), max_size=64),
           posts=st.lists(st.sampled_from(
               ['ok', 'lost_request', 'lost_response', 'gateway_504',
                'no_server_503']), min_size=1, max_size=6),
           lag=st.floats(min_value=0, max_value=9.5),
           list_fault=st.sampled_from([None, 'haproxy_503', 'reset']),
           fault_at=st.floats(min_value=0, max_value=20),
           delay=st.floats(min_value=0, max_value=15),
           resumes=st.tuples(st.booleans(), st.booleans()))
    def test_two_creators_one_live_volume(self, turns, posts, lag,
                                          list_fault, fault_at, delay,
                                          resumes):
        with create_base.example_logs():
            self._two_creators(turns, posts, lag, list_fault, fault_at,
                               delay, resumes)

    def _two_creators(self, turns, posts, lag, list_fault, fault_at,
                      delay, resumes):
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock, posts=posts, visible_after=lag)
        if list_fault:
            fake.faults = [create_base.fault(list_fault, fault_at,
                                             fault_at + 3)]
        results = self.race(
            clock, fake,
            lambda n: turns.pop(0) % n if turns else 0,
            resumes, (0, delay))
        fake.faults = []
        self.check(clock, fake, results)


class TestAttemptsBound(testtools.TestCase):
    """The per-process key memory is bounded, and keeps running creates."""

    def setUp(self):
        super().setUp()
        attempts.forget_all()
        self.addCleanup(attempts.forget_all)
        self.useFixture(fixtures.MockPatchObject(attempts, 'LIMIT', 5))

    def test_running_keys_survive_eviction(self):
        self.assertFalse(attempts.begin('running'))
        for n in range(20):
            attempts.begin('done-%d' % n)
            attempts.end('done-%d' % n, may_exist=True)
        self.assertLessEqual(len(attempts._KEYS), 5)
        # The create with 'running' still runs: a second one must look.
        self.assertTrue(attempts.begin('running'))
