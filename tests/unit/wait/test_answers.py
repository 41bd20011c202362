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

"""Field findings for the waiter: answers checked, reasons that belong to
the volume, authentication that never clears, budgets for large volumes.

Each fault is put on the HTTP boundary (requests-mock); each test also
checks that no volume is duplicated or leaked.
"""

import random

import requests_mock

from bdm_guard import exception
from bdm_guard import opts
from bdm_guard import wait
from tests.unit.create import base as create_base
from tests.unit import fake_cinder


class AnswerTest(create_base.FakeCinderTest):

    def wait(self, vid, **kw):
        kw.setdefault('sleep', self.clock.sleep)
        kw.setdefault('clock', self.clock)
        kw.setdefault('rng', random.Random(1))
        return wait.wait_for_volume(self.client, vid, **kw)

    def answer_with(self, make_body, times):
        """The first ``times`` GETs of a volume answer ``make_body(vid)``."""
        real = self.fake.get
        calls = []

        def get(request, vid):
            calls.append(vid)
            if len(calls) <= times:
                return self.fake.respond(request, 200, make_body(vid))
            return real(request, vid)
        self.fake.get = get
        return calls

    def assert_one_volume(self, vid):
        self.assertEqual([vid], list(self.fake.volumes))
        self.assertEqual([], self.fake.deleted)


class TestAnswersChecked(AnswerTest):
    """16.3: an answer is checked before it is believed."""

    def test_another_volumes_answer_is_never_available(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating'),
                                             (20, 'available')])
        other = '11111111-2222-4333-8444-555555555555'
        self.answer_with(lambda v: {'volume': {'id': other,
                                               'status': 'available'}}, 4)
        report = self.wait(vid)
        # Available only once cinder says so about *this* volume.
        self.assertGreaterEqual(self.clock.now, 20)
        self.assertEqual(vid, report.volume['id'])
        self.assertEqual(4, report.retries['malformed'])
        self.assert_one_volume(vid)

    def test_status_that_is_not_a_string_is_retried(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating'),
                                             (5, 'available')])
        for bad in ([], {'a': 1}, 7, None, ''):
            self.answer_with(
                lambda v, bad=bad: {'volume': {'id': v, 'status': bad}}, 1)
            report = self.wait(vid)
            self.assertEqual('available', report.volume['status'])
        self.assert_one_volume(vid)

    def test_deeply_nested_json_is_malformed_not_a_crash(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating'),
                                             (5, 'available')])
        deep = '[' * 100000 + ']' * 100000
        real = self.fake.get
        calls = []

        def get(request, v):
            calls.append(v)
            if len(calls) <= 2:
                return requests_mock.create_response(
                    request, status_code=200, text=deep,
                    headers={'Content-Type': 'application/json'})
            return real(request, v)
        self.fake.get = get
        report = self.wait(vid)
        self.assertEqual('available', report.volume['status'])
        self.assertEqual(2, report.retries['malformed'])
        self.assert_one_volume(vid)


class TestReasonBelongsToTheVolume(AnswerTest):
    """16.2: no reason is better than another volume's."""

    def test_other_volumes_message_is_not_the_reason(self):
        vid = self.fake.add_volume(status='error')
        other = '11111111-2222-4333-8444-555555555555'
        # A cinder that ignores the filter (microversion < 3.5) lists the
        # project's messages: only this volume's may be the reason.
        self.fake.messages = [
            {'resource_uuid': other, 'created_at': '2026-01-01T00:00:09',
             'user_message': 'schedule allocate volume: Could not find any '
                             'available weighted backend.',
             'event_id': 'VOLUME_VOLUME_001_003'}]
        real = self.fake.__class__.__call__

        def unfiltered(request):
            if request.path.endswith('/messages'):
                return self.fake.respond(request, 200, {
                    'messages': self.fake.messages})
            return real(self.fake, request)
        self.client = fake_cinder.make_client(self, unfiltered)
        exc = self.assertRaises(exception.VolumeWaitFailed, self.wait, vid)
        self.assertNotIn('weighted backend', exc.msg)
        self.assertIn('cinder gave no reason', exc.msg)

    def _failed_copy(self):
        """A volume in error with cinder's message for a failed copy."""
        vid = self.fake.add_volume(status='error')
        self.fake.messages = [
            {'resource_uuid': vid, 'created_at': '2026-01-01T00:00:09',
             'user_message': 'copy image to volume: Failed to copy image.',
             'event_id': 'VOLUME_VOLUME_001_006'}]
        return vid

    def test_own_message_is_the_reason_asked_at_3_5(self):
        vid = self._failed_copy()
        versions = []
        real = self.fake.__class__.__call__

        def spy(request):
            if request.path.endswith('/messages'):
                versions.append(request.headers.get('OpenStack-API-Version'))
            return real(self.fake, request)
        self.client = fake_cinder.make_client(self, spy)
        exc = self.assertRaises(exception.VolumeWaitFailed, self.wait, vid)
        self.assertIn('Failed to copy image', exc.msg)
        self.assertEqual(['volume 3.5'], versions)

    def test_old_cinder_is_asked_again_at_3_3(self):
        vid = self._failed_copy()
        versions = []
        real = self.fake.__class__.__call__

        def old(request):
            if request.path.endswith('/messages'):
                version = request.headers.get('OpenStack-API-Version')
                versions.append(version)
                if version == 'volume 3.5':
                    return self.fake.respond(request, 406, {
                        'computeFault': {'code': 406, 'message':
                                         'Version 3.5 is not supported'}})
            return real(self.fake, request)
        self.client = fake_cinder.make_client(self, old)
        exc = self.assertRaises(exception.VolumeWaitFailed, self.wait, vid)
        self.assertIn('Failed to copy image', exc.msg)
        self.assertEqual(['volume 3.5', 'volume 3.3'], versions)


class TestUnauthorized(AnswerTest):
    """16.4: a 401 that re-authentication does not clear fails fast."""

    def test_401s_after_reauth_fail_fast_as_auth(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating'),
                                             (30, 'available')])
        self.fake.faults = [{'from': 2, 'to': 10 ** 6, 'kind': 'http_401',
                             'path': '/volumes/'}]
        reauths = []
        real = self.client.reauthenticate
        self.client.reauthenticate = lambda: reauths.append(1) or real()
        exc = self.assertRaises(exception.VolumeWaitUnauthorized, self.wait,
                                vid)
        self.assertEqual(wait.UNAUTHORIZED_LIMIT, exc.unauthorized)
        self.assertEqual(wait.UNAUTHORIZED_LIMIT, len(reauths))
        self.assertIn('401', exc.msg)
        self.assertNotIn('creating', exc.msg)
        self.assertIsNone(exc.status)
        self.assertLess(self.clock.now, 60)   # not the 180 s deadline
        self.assert_one_volume(vid)

    def test_one_401_then_ok_goes_on(self):
        vid = self.fake.add_volume(timeline=[(0, 'creating'),
                                             (5, 'available')])
        self.fake.faults = [{'from': 0, 'to': 1, 'kind': 'http_401',
                             'path': '/volumes/'}]
        report = self.wait(vid)
        self.assertEqual('available', report.volume['status'])


class TestLargeVolumes(AnswerTest):
    """16.5: a 500 GiB image copy gets its whole per-GiB budget."""

    def test_500_gib_copy_for_two_hours_is_not_cut(self):
        vid = self.fake.add_volume(size=500, timeline=[
            (0, 'creating'), (20, 'downloading'), (7200, 'available')])
        report = self.wait(vid, size_gb=500)
        self.assertEqual('available', report.volume['status'])
        self.assertEqual(10180, report.deadline)

    def test_size_read_from_the_volume_when_the_caller_has_none(self):
        # nova's wait function gets only the volume id.
        vid = self.fake.add_volume(size=250, timeline=[
            (0, 'creating'), (20, 'downloading'), (4000, 'available')])
        report = self.wait(vid, allocate_retries=60,
                           allocate_retries_interval=3, per_gib_floor=20)
        self.assertEqual('available', report.volume['status'])
        self.assertEqual(180 + 20 * 250, report.deadline)

    def test_an_operators_ceiling_still_holds(self):
        conf = opts.get_conf(None)
        conf.set_override('deadline_ceiling', 3600, group='bdm_guard')
        vid = self.fake.add_volume(size=500, timeline=[
            (0, 'creating'), (20, 'downloading'), (7200, 'available')])
        exc = self.assertRaises(exception.VolumeWaitTimeout, self.wait,
                                vid, size_gb=500, conf=conf)
        self.assertLessEqual(exc.elapsed, 3600)
        self.assertEqual('downloading', exc.status)
