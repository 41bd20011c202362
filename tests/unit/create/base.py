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

"""Shared set-up for the creator fault tests (a fake cinder, virtual time).

Every test ends by counting the volumes carrying the key in the fake cinder:
none duplicated, none leaked (or, where the creator cannot know, one left
that a later create with the same key reconciles).
"""

import logging

import fixtures
from oslotest import base

from bdm_guard import create
from bdm_guard.internal.wait import completion
from bdm_guard import opts
from bdm_guard import testing
from tests.unit import fake_cinder

KEY = 'c0ffee00-0000-4000-8000-00000000000b'
KEY_META = create.IDEMPOTENCY_METADATA_KEY
LIST = '^/volumes/detail'


def fresh_learner(test):
    """Give ``test`` its own learner: no test learns from another's waits."""
    test.useFixture(fixtures.MockPatchObject(completion, 'LEARNER',
                                             completion.Learner()))


def example_logs():
    """A log capture for one hypothesis example, dropped after it.

    oslotest captures a test's logs (``OS_LOG_CAPTURE``) for the whole
    test method, and a property test runs hundreds of examples in it.
    Their create-path logs reached 13 MB on some draws, past subunit v2's
    packet limit (``ValueError: Length too long``), and stestr failed the
    run though every example passed. Each example logs into its own
    capture instead (WARNING and above); hypothesis reports a failing
    example with its arguments.
    """
    return fixtures.FakeLogger(level=logging.WARNING)


def fault(kind, start=0, end=10 ** 6, path=LIST):
    return {'from': start, 'to': end, 'kind': kind, 'path': path}


class FakeCinderTest(base.BaseTestCase):
    """A fake cinder behind requests-mock, on a virtual clock.

    ``self.clock``, ``self.fake`` (the :class:`fake_cinder.FakeCinder`) and
    ``self.client`` (a VolumeClient on it).
    """

    def setUp(self):
        super().setUp()
        testing.forget_attempts()
        self.addCleanup(testing.forget_attempts)
        fresh_learner(self)
        self.clock = testing.VirtualClock()
        self.fake = fake_cinder.FakeCinder(self.clock)
        self.client = fake_cinder.make_client(self, self.fake)


class FaultTest(base.BaseTestCase):
    """A fake cinder behind requests-mock, a virtual clock, the options.

    ``resume``: whether :meth:`create` says that an earlier attempt may
    have made the volume (True in the classes whose tests put volumes with
    the key in cinder before the call: they model a retried create).
    """

    resume = False

    def setUp(self):
        super().setUp()
        testing.forget_attempts()
        self.addCleanup(testing.forget_attempts)
        fresh_learner(self)
        self.reset()
        # One requests-mock for the test; it answers with the current fake.
        self.client = fake_cinder.make_client(
            self, lambda request: self.fake(request))

    def reset(self):
        """A fresh cinder, clock and configuration."""
        testing.forget_attempts()
        self.clock = testing.VirtualClock()
        self.fake = fake_cinder.FakeCinder(self.clock)
        self.conf = opts.get_conf(None)

    def create(self, size=10, **kw):
        kw.setdefault('resume', self.resume)
        return create.create_volume(self.client, size, idempotency_key=KEY,
                                    sleep=self.clock.sleep, clock=self.clock,
                                    conf=self.conf, **kw)

    def add(self, size=10, **kw):
        return self.fake.add_volume(size=size, metadata={KEY_META: KEY}, **kw)

    def with_key(self):
        return sorted(v['id'] for v in self.fake.volumes.values()
                      if v['metadata'].get(KEY_META) == KEY)

    def on_post(self, number, action):
        """Run ``action()`` right after POST number ``number`` is answered."""
        real = self.fake.post

        def post(request):
            try:
                return real(request)
            finally:
                if self.fake.post_count == number:
                    action()
        self.fake.post = post

    def settle_and_repair(self):
        """Let everything settle, then retry with the key as a caller would.

        :returns: the repairing create's result.
        """
        self.fake.faults = []
        self.fake.visible_after = 0
        self.clock.sleep(3600)
        posts = self.fake.post_count
        result = self.create(resume=True)
        self.assertEqual(posts, self.fake.post_count, 'no new POST')
        self.assertEqual([result.volume['id']], self.with_key())
        return result
