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

"""The creator with cinder's own idempotency key (microversion 3.72).

A fake cinder behind requests-mock that keeps the key as the cinder spec
says (``patches/cinder/specs/idempotency-key.rst``): the same key and body
replay the first ``202`` with ``Idempotent-Replayed: true``; another body
is a ``422``; a create in flight is a ``409`` with ``Retry-After``; an
older API node refuses the microversion with a ``406``. The requests go
through the real VolumeClient, python-cinderclient and keystoneauth.

Sending the key needs a python-cinderclient with 3.72
(``patches/python-cinderclient``); the tests that send it skip on the
released client (9.10.0 stops at 3.71), unless
``BDM_GUARD_REQUIRE_CINDER_KEY=1`` (``tox -e cinderclient`` sets it and
runs this module on the patched client), where they fail instead. The
tests of the fallback run on every client. Every test counts the volumes
in the fake cinder: none duplicated, none leaked.
"""

import json
import os
import urllib.parse

import fixtures
from oslotest import base
import testtools

from bdm_guard import cinder
from bdm_guard import create
from bdm_guard import exception
from bdm_guard import opts
from bdm_guard import testing
from tests.unit.create import base as create_base
from tests.unit import fake_cinder

KEY = create_base.KEY
KEY_META = create_base.KEY_META
HAS_KEY = cinder.client_supports_idempotency_key()
REQUIRED = os.environ.get('BDM_GUARD_REQUIRE_CINDER_KEY') == '1'
SKIP_REASON = ('python-cinderclient lacks microversion 3.72 and '
               'volumes.create(idempotency_key=): apply '
               'patches/python-cinderclient (tox -e cinderclient runs this '
               'module on the patched client)')
#: The response header of cinder's upgrade 400 (patches/cinder 0003).
UPGRADE_HEADER = 'OpenStack-Unavailable-During-Upgrade'
ROOT = 'http://cinder.test:8776/'


def needs_key(test):
    """Skip ``test`` without cinderclient's key, unless it is required."""
    if REQUIRED:
        return test
    return testtools.skipUnless(HAS_KEY, SKIP_REASON)(test)


def parse_key(value):
    """The key of an sf-string header value (as cinder parses it)."""
    assert value[0] == value[-1] == '"', value
    return value[1:-1].replace('\\"', '"').replace('\\\\', '\\')


def version_of(request):
    header = request.headers.get('OpenStack-API-Version', 'volume 3.0')
    major, minor = header.split()[1].split('.')
    return int(major), int(minor)


class KeyedCinder(fake_cinder.FakeCinder):
    """A FakeCinder that keeps ``Idempotency-Key`` as cinder 3.72 does.

    :ivar max_version: what the version document advertises.
    :ivar keyed: key -> ``[volume id, body fingerprint, done]``.
    :ivar key_posts: the ``(key, microversion)`` of every POST.
    :ivar keyed_answers: scripted answers for keyed POSTs, in order,
        before the key is looked at: ``in_flight`` (409), ``refused``
        (406), ``lost_after_create`` (made, key kept, in flight while
        ``in_flight_for`` more POSTs come, answer lost).
    """

    def __init__(self, clock, max_version='3.72', **kwargs):
        super().__init__(clock, **kwargs)
        self.max_version = max_version
        self.keyed = {}
        self.key_posts = []
        self.keyed_answers = []
        self.in_flight_retry_after = '1'
        self.in_flight_for = 0
        self.version_gets = 0

    def __call__(self, request):
        path = urllib.parse.urlsplit(request.url).path
        if request.method == 'GET' and path in ('', '/'):
            self.version_gets += 1
            self.requests.append((self.clock(), 'GET', '/'))
            return self.respond(request, 300, {'versions': [{
                'id': 'v3.0', 'status': 'CURRENT', 'min_version': '3.0',
                'version': self.max_version, 'links': [],
                'updated': '2026-12-01T00:00:00Z'}]})
        return super().__call__(request)

    def answer(self, request, code, message, retry_after=None,
               headers=None):
        headers = dict(headers or {})
        if retry_after:
            headers['Retry-After'] = retry_after
        name = {400: 'badRequest', 406: 'notAcceptable', 409: 'conflict',
                422: 'unprocessableEntity'}[code]
        return self.respond(request, code, {name: {'code': code,
                                                   'message': message}},
                            headers=headers)

    def post(self, request):
        value = request.headers.get('Idempotency-Key')
        version = version_of(request)
        self.key_posts.append((value and parse_key(value), version))
        top = tuple(int(p) for p in self.max_version.split('.'))
        if value is None or version < (3, 72):
            return super().post(request)
        if version > top:
            return self.answer(request, 406, 'Version %d.%d is not '
                               'supported by the API. Minimum is 3.0 and '
                               'maximum is %s.' % (version + (
                                   self.max_version,)))
        key = parse_key(value)
        body = request.json()
        fingerprint = json.dumps(body, sort_keys=True,
                                 separators=(',', ':'))
        script = self.keyed_answers.pop(0) if self.keyed_answers else None
        if script == 'in_flight':
            return self.answer(request, 409, 'in flight',
                               self.in_flight_retry_after)
        if script == 'refused':
            return self.answer(request, 406, 'Version 3.72 is not supported '
                               'by the API. Maximum is 3.71.')
        if script == 'upgrading':
            # patches/cinder 0003: cinder's UnavailableDuringUpgrade 400,
            # marked by a header that names the refused part.
            return self.answer(
                request, 400, 'Cannot perform a volume create with an '
                'Idempotency-Key during system upgrade: every '
                'cinder-volume service must be upgraded first. Send the '
                'request without the Idempotency-Key header.',
                headers={UPGRADE_HEADER: 'Idempotency-Key'})
        entry = self.keyed.get(key)
        if entry is not None and entry[0] not in self.volumes:
            entry = None   # deleting the volume released the key
        if entry is not None:
            vid, first, done = entry
            if first != fingerprint:
                return self.answer(request, 422, 'Idempotency key %s was '
                                   'used for volume %s with another '
                                   'request.' % (key, vid))
            if not done:
                if self.in_flight_for > 0:
                    self.in_flight_for -= 1
                else:
                    entry[2] = True
                return self.answer(request, 409, 'A request with idempotency '
                                   'key %s is in progress.' % key,
                                   self.in_flight_retry_after)
            self.post_count += 1
            return self.respond(request, 202, {'volume': self.view(
                self.volumes[vid])}, headers={'Idempotent-Replayed': 'true'})
        before = set(self.volumes)
        try:
            return super().post(request)
        except Exception:
            if script == 'lost_after_create':
                made = set(self.volumes) - before
                if made:
                    self.keyed[key] = [made.pop(), fingerprint, False]
            raise
        finally:
            made = set(self.volumes) - before
            if made and key not in self.keyed:
                self.keyed[key] = [made.pop(), fingerprint, True]


class CinderKeyTest(base.BaseTestCase):
    """The creator over a :class:`KeyedCinder`, on a virtual clock."""

    max_version = '3.72'

    def setUp(self):
        super().setUp()
        testing.forget_attempts()
        self.addCleanup(testing.forget_attempts)
        cinder.forget_server_versions()
        self.addCleanup(cinder.forget_server_versions)
        create_base.fresh_learner(self)
        self.clock = testing.VirtualClock()
        self.fake = KeyedCinder(self.clock, max_version=self.max_version)
        self.client = fake_cinder.make_client(
            self, lambda request: self.fake(request))
        self.conf = opts.get_conf(None)

    def create(self, size=10, key=KEY, **kw):
        return create.create_volume(
            self.client, create.VolumeRequest(size), idempotency_key=key,
            sleep=self.clock.sleep, clock=self.clock, conf=self.conf, **kw)

    def with_key(self, key=KEY):
        return sorted(v['id'] for v in self.fake.volumes.values()
                      if v['metadata'].get(KEY_META) == key)

    def lookups(self):
        return [r for r in self.fake.requests
                if r[1] == 'GET' and r[2] == '/volumes/detail']

    def posts(self):
        return [r for r in self.fake.requests
                if r[1] == 'POST' and r[2] == '/volumes']


class TestWithCinderKey(CinderKeyTest):

    @needs_key
    def test_one_post_carries_the_key_and_nothing_is_looked_up(self):
        result = self.create()
        self.assertTrue(result.cinder_key)
        self.assertFalse(result.replayed)
        self.assertEqual('created', result.how)
        self.assertEqual([(KEY, (3, 72))], self.fake.key_posts)
        self.assertEqual([], self.lookups())
        self.assertEqual([result.volume['id']], self.with_key())
        # The metadata key still goes along, for an older node's fallback.
        self.assertEqual(
            KEY, self.fake.volumes[result.volume['id']]['metadata'][KEY_META])

    @needs_key
    def test_version_document_read_once_per_endpoint(self):
        self.create()
        self.create(key='other-key')
        self.assertEqual(1, self.fake.version_gets)
        self.assertEqual(2, len(self.fake.volumes))

    @needs_key
    def test_lost_answer_resent_and_replayed(self):
        self.fake.posts = ['lost_response', 'ok']
        result = self.create()
        self.assertTrue(result.replayed)
        self.assertEqual('created', result.how)
        self.assertEqual(2, result.posts)
        self.assertEqual(0, result.lookups)
        self.assertEqual([], self.lookups())
        self.assertEqual([result.volume['id']], self.with_key())

    @needs_key
    def test_504_after_create_resent_and_replayed(self):
        self.fake.posts = ['gateway_504', 'ok']
        result = self.create()
        self.assertTrue(result.replayed)
        self.assertEqual([result.volume['id']], self.with_key())

    @needs_key
    def test_earlier_attempt_replayed_and_adopted(self):
        first = self.create()
        testing.forget_attempts()
        again = self.create()
        self.assertTrue(again.replayed)
        self.assertEqual('adopted', again.how)
        self.assertEqual(first.volume['id'], again.volume['id'])
        self.assertEqual([first.volume['id']], self.with_key())
        self.assertEqual([], self.lookups())

    @needs_key
    def test_in_flight_409_sent_again_after_retry_after(self):
        self.fake.keyed_answers = ['lost_after_create']
        self.fake.posts = ['lost_response', 'ok']
        self.fake.in_flight_for = 2
        self.fake.in_flight_retry_after = '3'
        self.conf.set_override('create_max_posts', 2, 'bdm_guard')
        result = self.create()
        # lost, 409, 409, 409 (the first create finishes), replay: the 409s
        # do not count against create_max_posts.
        self.assertEqual(5, result.posts)
        self.assertTrue(result.replayed)
        self.assertEqual('created', result.how)
        # Each wait after a 409 is at least its Retry-After (the back-off
        # may ask for more).
        self.assertEqual(4, len(self.clock.sleeps))
        self.assertTrue(all(s >= 3.0 for s in self.clock.sleeps[1:]),
                        self.clock.sleeps)
        self.assertEqual([result.volume['id']], self.with_key())
        self.assertEqual([], self.lookups())

    @needs_key
    def test_in_flight_without_retry_after_waits_a_second(self):
        self.fake.keyed_answers = ['in_flight']
        self.fake.in_flight_retry_after = None
        result = self.create()
        self.assertIn(1.0, self.clock.sleeps)
        self.assertEqual([result.volume['id']], self.with_key())

    @needs_key
    def test_in_flight_past_the_deadline_then_replayed(self):
        self.fake.keyed_answers = ['lost_after_create']
        self.fake.posts = ['lost_response', 'ok']
        self.fake.in_flight_for = 1
        self.fake.in_flight_retry_after = '100000'
        exc = self.assertRaises(exception.VolumeCreateUnknown, self.create)
        self.assertEqual(KEY, exc.kwargs['key'])
        # Nothing slept past the deadline.
        self.assertLess(sum(self.clock.sleeps),
                        self.conf.bdm_guard.create_timeout)
        made = self.with_key()
        self.assertEqual(1, len(made))
        # The caller's later create with the key gets that volume.
        testing.forget_attempts()
        self.fake.in_flight_retry_after = '1'
        again = self.create()
        self.assertEqual(made, [again.volume['id']])
        self.assertEqual(made, self.with_key())

    @needs_key
    def test_key_used_with_another_request_is_a_conflict(self):
        other = self.create(size=20)
        testing.forget_attempts()
        exc = self.assertRaises(exception.IdempotencyConflict, self.create,
                                size=10)
        self.assertEqual(other.volume['id'], exc.kwargs['volume_id'])
        self.assertEqual([], exc.kwargs['deleted_volumes'])
        # The other request's volume is left alone; none is made.
        self.assertEqual([other.volume['id']], self.with_key())
        self.assertEqual(20, self.fake.volumes[other.volume['id']]['size'])

    @needs_key
    def test_refused_microversion_falls_back_to_metadata(self):
        self.fake.keyed_answers = ['refused']
        result = self.create()
        self.assertFalse(result.cinder_key)
        self.assertEqual([(KEY, (3, 72)), (None, (3, 0))],
                         self.fake.key_posts)
        self.assertEqual([result.volume['id']], self.with_key())
        # Forgotten: the next create reads the version document again.
        self.create(key='other-key')
        self.assertEqual(2, self.fake.version_gets)

    @needs_key
    def test_key_refused_while_cinder_upgrades_falls_back_to_metadata(self):
        # cinder 0003's rolling-upgrade gate: 400 for a keyed create until
        # every scheduler and volume service has the key. Nothing was made.
        self.fake.keyed_answers = ['upgrading']
        result = self.create()
        self.assertFalse(result.cinder_key)
        self.assertEqual([(KEY, (3, 72)), (None, (3, 0))],
                         self.fake.key_posts)
        self.assertEqual([result.volume['id']], self.with_key())
        self.assertEqual(1, len(self.fake.volumes))

    @needs_key
    def test_bad_body_is_final_after_one_metadata_post(self):
        # A 400 the request itself deserves: one keyed and one metadata
        # POST, then the error, and nothing made.
        self.fake.keyed_answers = ['upgrading']
        self.fake.posts = ['rejected']
        self.assertRaises(exception.VolumeCreateRejected, self.create)
        self.assertEqual(2, len(self.fake.key_posts))
        self.assertEqual([], self.with_key())

    @needs_key
    def test_lost_then_refused_finds_the_keyed_volume_by_metadata(self):
        # A keyed POST made a volume, its answer was lost; the resend hit
        # an older node. The metadata path finds the first volume.
        self.fake.posts = ['lost_response', 'ok']
        self.fake.keyed_answers = [None, 'refused']
        result = self.create()
        self.assertFalse(result.cinder_key)
        self.assertEqual([result.volume['id']], self.with_key())

    @needs_key
    def test_over_quota_is_final(self):
        self.fake.posts = ['over_quota']
        exc = self.assertRaises(exception.OverQuota, self.create)
        self.assertFalse(exc.kwargs['uncertain'])
        self.assertEqual([], self.with_key())
        self.assertEqual(1, len(self.posts()))

    @needs_key
    def test_non_ascii_key_goes_by_metadata(self):
        key = 'cl\u00e9-1'
        result = self.create(key=key)
        self.assertFalse(result.cinder_key)
        self.assertEqual([(None, (3, 0))], self.fake.key_posts)
        self.assertEqual([result.volume['id']], self.with_key(key))

    @needs_key
    def test_failed_wait_deletes_and_releases_the_key(self):
        real_add = self.fake.add_volume

        def add_failing(**kw):
            kw.setdefault('timeline', [(0.0, 'creating'), (1.0, 'error')])
            return real_add(**kw)
        self.fake.add_volume = add_failing
        exc = self.assertRaises(
            exception.VolumeWaitError, create.create_and_wait, self.client,
            create.VolumeRequest(10), idempotency_key=KEY,
            sleep=self.clock.sleep, clock=self.clock, conf=self.conf)
        self.assertEqual('deleted', exc.kwargs['cleanup'])
        self.assertEqual([], self.with_key())


class TestOlderCinder(CinderKeyTest):

    max_version = '3.71'

    def test_client_without_key_never_asks_cinder(self):
        self.useFixture(fixtures.MockPatchObject(
            cinder, 'client_supports_idempotency_key', lambda: False))
        result = self.create()
        self.assertFalse(result.cinder_key)
        self.assertEqual(0, self.fake.version_gets)
        self.assertEqual([(None, (3, 0))], self.fake.key_posts)
        self.assertEqual([result.volume['id']], self.with_key())

    def test_older_cinder_goes_by_metadata_and_is_asked_once(self):
        self.useFixture(fixtures.MockPatchObject(
            cinder, 'client_supports_idempotency_key', lambda: True))
        self.fake.posts = ['lost_response', 'ok']
        result = self.create()
        self.assertFalse(result.cinder_key)
        # No key sent; the lost answer's volume is found by metadata.
        self.assertEqual([(None, (3, 0))], self.fake.key_posts)
        self.assertEqual('adopted', result.how)
        self.assertEqual([result.volume['id']], self.with_key())
        self.assertEqual(1, self.fake.version_gets)
        self.assertNotEqual([], self.lookups())
        self.create(key='other-key')
        self.assertEqual(1, self.fake.version_gets)

    def test_unreadable_version_document_goes_by_metadata(self):
        self.useFixture(fixtures.MockPatchObject(
            cinder, 'client_supports_idempotency_key', lambda: True))
        real = self.fake.__call__

        def broken(request):
            if urllib.parse.urlsplit(request.url).path in ('', '/'):
                self.fake.version_gets += 1
                raise fake_cinder.lost_response_error()
            return real(request)
        self.client = fake_cinder.make_client(self, broken)
        result = self.create()
        self.assertFalse(result.cinder_key)
        self.assertEqual([result.volume['id']], self.with_key())
        # Not remembered: the next create asks again.
        self.create(key='other-key')
        self.assertEqual(2, self.fake.version_gets)

    def test_client_without_the_method_goes_by_metadata(self):
        client = self.client

        class Plain:
            def __getattr__(self, name):
                if name in ('supports_idempotency_key',
                            'forget_idempotency_key_support'):
                    raise AttributeError(name)
                return getattr(client, name)
        self.client = Plain()
        result = self.create()
        self.assertFalse(result.cinder_key)
        self.assertEqual([result.volume['id']], self.with_key())


class TestClientDetection(base.BaseTestCase):

    def test_released_client_detected_as_without_key(self):
        if HAS_KEY:
            self.skipTest('this python-cinderclient has 3.72')
        self.assertFalse(cinder.client_supports_idempotency_key())
        self.assertRaises(ValueError, cinder.keyed_create_request,
                          {'size': 1}, KEY)

    def test_client_that_builds_the_key_otherwise_is_without_key(self):
        # volumes.create(idempotency_key=) that does not post through its
        # client: taken as a client without the key, not a failed create.
        from cinderclient import api_versions
        from cinderclient.v3 import volumes

        def create(manager, size, idempotency_key=None):
            return manager.api.client.request('/volumes', 'POST')
        self.useFixture(fixtures.MockPatchObject(api_versions,
                                                 'MAX_VERSION', '3.72'))
        self.useFixture(fixtures.MockPatchObject(volumes.VolumeManager,
                                                 'create', create))
        cinder._builds_keyed_request.cache_clear()
        self.addCleanup(cinder._builds_keyed_request.cache_clear)
        self.assertFalse(cinder.client_supports_idempotency_key())

    @needs_key
    def test_keyed_request_built_by_cinderclient(self):
        url, body, headers = cinder.keyed_create_request(
            {'size': 1, 'metadata': {'a': 'b'}, 'extra': 'x'}, 'k"1')
        self.assertEqual('/volumes', url)
        self.assertEqual('"k\\"1"', headers['Idempotency-Key'])
        self.assertEqual('volume 3.72', headers['OpenStack-API-Version'])
        self.assertEqual(1, body['volume']['size'])
        self.assertEqual({'a': 'b'}, body['volume']['metadata'])
        self.assertEqual('x', body['volume']['extra'])
