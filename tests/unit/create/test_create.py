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

"""Every case of tests/unit/data/create-cases.yaml, plus a property test."""

import os

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from oslotest import base
import yaml

from bdm_guard import create
from bdm_guard import exception
from bdm_guard import opts
from bdm_guard import testing
from tests.unit.create import base as create_base
from tests.unit import fake_cinder

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                    'data', 'create-cases.yaml')
with open(DATA) as f:
    CASES = yaml.safe_load(f)
KEY = 'c0ffee00-0000-4000-8000-00000000000a'
KEY_META = create.IDEMPOTENCY_METADATA_KEY
OUTCOMES = {'created': 'created', 'adopted': 'adopted',
            'adopted_oldest': 'adopted'}
ERRORS = {'over_quota': exception.OverQuota,
          'idempotency_conflict': exception.IdempotencyConflict}


def with_key(fake):
    return [v for v in fake.volumes.values()
            if v['metadata'].get(KEY_META) == KEY]


def run_case(test, case):
    clock = testing.VirtualClock()
    fake = fake_cinder.FakeCinder(clock, posts=case['post'],
                                  visible_after=case.get('visible_after_s',
                                                         0),
                                  quota=case.get('quota', 'gigabytes'))
    existing = []
    for item in case.get('existing', []):
        existing.append(fake.add_volume(
            size=item['size_gb'], metadata={KEY_META: KEY},
            status=item['status'], age=item.get('age_s', 0)))
    client = fake_cinder.make_client(test, fake)
    size = case.get('request', {}).get('size_gb', 10)
    try:
        # A case with volumes already in cinder is a retried create: the
        # caller says so.
        result = create.create_volume(client, size, idempotency_key=KEY,
                                      resume=bool(existing),
                                      sleep=clock.sleep, clock=clock)
    except exception.BdmGuardException as exc:
        result = exc
    # Settle: let every volume finish creating.
    clock.sleep(3600)
    return result, fake, existing


class TestCreateCases(base.BaseTestCase):
    pass


def _make(case):
    def test(self):
        result, fake, existing = run_case(self, case)
        expect = case['expect']
        self.assertEqual(expect['posts'], fake.post_count)
        self.assertEqual(expect['volumes'], len(with_key(fake)))
        if expect['outcome'] in ERRORS:
            self.assertIsInstance(result, ERRORS[expect['outcome']])
            for needle in expect.get('error_mentions', []):
                self.assertIn(needle, str(result))
            # The conflicting volume is left alone.
            self.assertEqual([], fake.deleted)
            return
        self.assertIsInstance(result, create.CreateResult, result)
        self.assertEqual(OUTCOMES[expect['outcome']], result.how)
        survivors = with_key(fake)
        self.assertEqual([result.volume['id']], [v['id'] for v in survivors])
        if expect['outcome'] == 'adopted_oldest':
            self.assertEqual(existing[0], result.volume['id'])
            self.assertEqual(existing[1:], result.deleted_duplicates)
    test.__doc__ = case['source']
    return test


for _case in CASES:
    setattr(TestCreateCases, 'test_%s' % _case['id'], _make(_case))


class TestCreateProperties(base.BaseTestCase):
    """Random fault sequences: no duplicate survives, nothing leaks."""

    @settings(max_examples=500, deadline=None)
    @given(posts=st.lists(st.sampled_from(
        ['ok', 'lost_request', 'lost_response', 'gateway_504',
         'no_server_503']), min_size=1, max_size=6),
        lag=st.floats(min_value=0, max_value=9.5),
        existing=st.integers(min_value=0, max_value=2))
    def test_at_most_one_survivor_nothing_leaked(self, posts, lag,
                                                 existing):
        with create_base.example_logs():
            self._one_survivor(posts, lag, existing)

    def _one_survivor(self, posts, lag, existing):
        testing.forget_attempts()
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock, posts=posts, visible_after=lag)
        for i in range(existing):
            fake.add_volume(size=10, metadata={KEY_META: KEY},
                            age=30 - i)
        created_before = set(fake.volumes)
        client = fake_cinder.make_client(self, fake)
        try:
            result = create.create_volume(client, 10, idempotency_key=KEY,
                                          resume=bool(existing),
                                          sleep=clock.sleep, clock=clock)
        except (exception.VolumeCreateUnknown,
                exception.VolumeCreateNotSent):
            result = None
        clock.sleep(3600)
        survivors = {v['id'] for v in with_key(fake)}
        self.assertLessEqual(len(survivors), 1)
        made = (set(fake.volumes) | set(fake.deleted)) - created_before
        if result is None:
            # Failing never hides a volume that was created.
            self.assertEqual(set(), survivors)
            self.assertEqual(set(), made - set(fake.deleted))
        else:
            self.assertEqual({result.volume['id']}, survivors)
            self.assertEqual(made | (created_before & set(fake.deleted)),
                             (made & {result.volume['id']})
                             | set(fake.deleted))


class TestCreateBadInput(create_base.FakeCinderTest):

    def create(self, size=1, **kw):
        kw.setdefault('idempotency_key', KEY)
        return create.create_volume(self.client, size, sleep=self.clock.sleep,
                                    clock=self.clock, **kw)

    def test_bad_keys(self):
        for key in ('', None, 'k' * 256, 'tab\tkey', 42):
            self.assertRaises(exception.InvalidIdempotencyKey, self.create,
                              idempotency_key=key)
        self.assertEqual([], self.fake.requests)

    def test_bad_sizes(self):
        for size in (0, -1, 1.5, '10', True, 2 ** 31):
            self.assertRaises(exception.InvalidInput, self.create, size)
        self.assertEqual([], self.fake.requests)

    def test_conflicting_sources(self):
        image = '6018366c-f658-47a7-9ed3-4fe53a096533'
        snap = '7018366c-f658-47a7-9ed3-4fe53a096533'
        self.assertRaises(exception.InvalidInput, self.create,
                          image_id=image, snapshot_id=snap)
        self.assertRaises(exception.InvalidInput, self.create,
                          image_id='not-a-uuid')
        self.assertRaises(exception.InvalidInput, self.create,
                          metadata={KEY_META: 'x'})
        self.assertEqual([], self.fake.requests)

    def test_key_for_bdm_is_stable(self):
        inst = '0edca4ec-a92d-44a3-9b94-1f4360908405'
        bdm = '6d16328f-e0c9-4f3e-9ae3-df9c5b507a36'
        self.assertEqual(create.key_for_bdm(inst, bdm),
                         create.key_for_bdm(inst.upper(), bdm))
        self.assertNotEqual(create.key_for_bdm(inst, bdm),
                            create.key_for_bdm(bdm, inst))
        rid = create.request_id_for_key(create.key_for_bdm(inst, bdm))
        self.assertRegex(rid, r'^req-[0-9a-f-]{36}$')
        self.assertRaises(exception.InvalidInput, create.key_for_bdm,
                          'x', bdm)

    def test_global_request_id_kept_on_every_call(self):
        # nova's context.global_id rides every POST, lookup and DELETE of
        # the create (oslo's global request id spec); the key travels in
        # the metadata only.
        gid = 'req-0b3510b0-b46e-41da-b170-17a6205738d1'
        self.fake.posts = ['lost_request', 'lost_response', 'ok']
        headers = []

        def spy(request):
            headers.append((request.method,
                            request.headers.get('X-OpenStack-Request-ID')))
            return self.fake(request)
        self.client = fake_cinder.make_client(self, spy)
        self.client.global_request_id = gid
        result = self.create()
        methods = {m for m, _ in headers}
        self.assertEqual({'POST', 'GET'}, methods)
        self.assertEqual({gid}, {h for _, h in headers})
        self.assertEqual(KEY, result.volume['metadata'][KEY_META])

    def test_other_projects_volume_never_adopted(self):
        self.fake.add_volume(size=1, metadata={KEY_META: KEY},
                             status='available',
                             project=fake_cinder.OTHER_PROJECT)
        result = self.create()
        self.assertEqual('created', result.how)
        self.assertEqual(1, self.fake.post_count)

    def test_rejected_and_not_sent(self):
        self.fake.posts = ['no_server_503']
        exc = self.assertRaises(exception.VolumeCreateNotSent, self.create)
        self.assertEqual(5, exc.posts)
        self.assertEqual(0, len(self.fake.volumes))

    def test_unknown_carries_key_and_hides_nothing(self):
        self.fake.posts = ['gateway_504']
        self.fake.visible_after = 10 ** 6   # never visible
        exc = self.assertRaises(exception.VolumeCreateUnknown, self.create)
        self.assertEqual(KEY, exc.key)


class TestCreateAndWait(create_base.FakeCinderTest):

    def run_it(self, **kw):
        return create.create_and_wait(
            self.client, 2, idempotency_key=KEY, sleep=self.clock.sleep,
            clock=self.clock, **kw)

    def test_success(self):
        result, report = self.run_it()
        self.assertEqual('available', report.volume['status'])
        self.assertEqual(1, len(self.fake.volumes))

    def test_error_is_deleted(self):
        self.fake.ready_after = 10 ** 6
        real = self.fake.add_volume

        def erroring(**kw):
            kw['timeline'] = [(0, 'creating'), (4, 'error')]
            return real(**kw)
        self.fake.add_volume = erroring
        exc = self.assertRaises(exception.VolumeWaitFailed, self.run_it)
        self.assertEqual('deleted', exc.cleanup)
        self.assertEqual({}, self.fake.volumes)

    def test_vanished_is_cleaned_up_too(self):
        # Nova 34 only cleans up on VolumeNotCreated: a 404 leaks.
        # The volume's GET 404s (it vanished); lists answer.
        self.fake.faults = [{'from': 0, 'to': 10 ** 6, 'kind': 'http_404',
                             'path': fake_cinder.VOLUME_GET}]
        exc = self.assertRaises(exception.VolumeVanished, self.run_it)
        self.assertEqual('deleted', exc.cleanup)
        self.assertEqual({}, self.fake.volumes)

    def test_keep_when_asked(self):
        # The volume's GET 404s (it vanished); lists answer.
        self.fake.faults = [{'from': 0, 'to': 10 ** 6, 'kind': 'http_404',
                             'path': fake_cinder.VOLUME_GET}]
        exc = self.assertRaises(exception.VolumeVanished, self.run_it,
                                delete_on_failure=False)
        self.assertEqual('kept', exc.cleanup)
        self.assertEqual(1, len(self.fake.volumes))

    def test_conf_defaults(self):
        conf = opts.get_conf(None)
        self.assertEqual(5, conf.bdm_guard.create_max_posts)
