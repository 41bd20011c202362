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

"""create_and_wait's cleanup after a failed wait: delete or hand back."""

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from oslotest import base
import requests_mock

from bdm_guard import cinder
from bdm_guard import create
from bdm_guard import exception
from bdm_guard import testing
from tests.unit.create import base as create_base
from tests.unit import fake_cinder

KEY = 'cleanup-key-1'


class BreakableToken(token_endpoint.Token):
    """A token plugin whose keystone goes away on demand."""

    broken = False

    def get_headers(self, session, **kwargs):
        if self.broken:
            raise ks_exc.AuthorizationFailure('token revoked')
        return super().get_headers(session, **kwargs)


class TestCleanup(create_base.FakeCinderTest):

    def run_it(self, status_timeline=None, **kw):
        if status_timeline is not None:
            real = self.fake.add_volume

            def scripted(**vkw):
                vkw['timeline'] = status_timeline
                return real(**vkw)
            self.fake.add_volume = scripted
        return create.create_and_wait(
            self.client, 2, idempotency_key=KEY, sleep=self.clock.sleep,
            clock=self.clock, **kw)

    def deletes(self):
        return [r for r in self.fake.requests if r[1] == 'DELETE']

    def test_stuck_creating_is_handed_back_at_the_deadline(self):
        exc = self.assertRaises(exception.VolumeWaitTimeout, self.run_it,
                                [(0, 'creating')])
        vid = exc.create_result.volume['id']
        self.assertEqual('kept', exc.cleanup)
        self.assertIn('status creating', exc.cleanup_reason)
        self.assertEqual((vid, 'creating'),
                         (exc.volume['id'], exc.volume['status']))
        self.assertEqual([], self.deletes())
        self.assertEqual([vid], list(self.fake.volumes))
        # Returned at the deadline, not a settle timeout later.
        self.assertLessEqual(self.clock.now, exc.report.deadline + 1)

    def test_stuck_downloading_is_handed_back(self):
        exc = self.assertRaises(
            exception.VolumeWaitTimeout, self.run_it,
            [(0, 'creating'), (2, 'downloading')],
            image_id='9a0c3b1e-5f2d-4c8e-9b7a-0d1e2f3a4b5c')
        self.assertEqual('kept', exc.cleanup)
        self.assertEqual('downloading', exc.volume['status'])
        self.assertEqual([], self.deletes())
        self.assertEqual(1, len(self.fake.volumes))

    def test_error_volume_is_deleted_once(self):
        exc = self.assertRaises(exception.VolumeWaitFailed, self.run_it,
                                [(0, 'creating'), (3, 'error')])
        self.assertEqual('deleted', exc.cleanup)
        self.assertIsNone(exc.cleanup_reason)
        self.assertEqual(1, len(self.deletes()))
        self.assertEqual({}, self.fake.volumes)

    def test_attached_volume_is_never_deleted(self):
        exc = self.assertRaises(exception.VolumeWaitFailed, self.run_it,
                                [(0, 'creating'), (3, 'in-use')])
        self.assertEqual('kept', exc.cleanup)
        self.assertIn('attached', exc.cleanup_reason)
        self.assertEqual([], self.deletes())
        self.assertEqual(1, len(self.fake.volumes))

    def test_transient_delete_failures_are_retried_briefly(self):
        real = self.fake.delete
        calls = []

        def flaky(request, vid):
            calls.append(self.clock())
            if len(calls) < 3:
                raise fake_cinder.lost_request_error()
            return real(request, vid)
        self.fake.delete = flaky
        exc = self.assertRaises(exception.VolumeWaitFailed, self.run_it,
                                [(0, 'creating'), (3, 'error')])
        self.assertEqual('deleted', exc.cleanup)
        self.assertEqual(3, len(calls))
        self.assertLessEqual(calls[-1] - calls[0], 2.0)
        self.assertEqual({}, self.fake.volumes)

    def test_refused_delete_is_reported_not_retried(self):
        self.fake.delete = lambda request, vid: self.fake.respond(
            request, 400, {'badRequest': {'code': 400,
                                          'message': 'Invalid volume'}})
        exc = self.assertRaises(exception.VolumeWaitFailed, self.run_it,
                                [(0, 'creating'), (3, 'error')])
        self.assertEqual('delete_failed', exc.cleanup)
        self.assertIn('HTTP 400', exc.cleanup_reason)
        self.assertEqual(1, len(self.deletes()))
        self.assertEqual(exc.create_result.volume['id'], exc.volume['id'])

    def test_keep_on_failure_hands_back(self):
        exc = self.assertRaises(exception.VolumeWaitFailed, self.run_it,
                                [(0, 'creating'), (3, 'error')],
                                delete_on_failure=False)
        self.assertEqual('kept', exc.cleanup)
        self.assertIn('delete_on_failure', exc.cleanup_reason)
        self.assertEqual(1, len(self.fake.volumes))


class TestConfigErrorAfterCreate(base.BaseTestCase):

    def test_volume_is_handed_back_with_the_config_error(self):
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock, ready_after=10 ** 6)
        mocker = requests_mock.Mocker()
        mocker.start()
        self.addCleanup(mocker.stop)
        mocker.add_matcher(fake)
        token = BreakableToken(fake_cinder.ENDPOINT, 't')
        client = cinder.VolumeClient(ks_session.Session(auth=token),
                                     endpoint_override=fake_cinder.ENDPOINT)
        real_post = fake.post

        def post(request):
            token.broken = True     # keystone revokes us right after
            return real_post(request)
        fake.post = post
        exc = self.assertRaises(
            exception.CinderConfigError, create.create_and_wait, client, 1,
            idempotency_key=KEY, sleep=clock.sleep, clock=clock)
        self.assertEqual('AuthorizationFailure', exc.error)
        self.assertEqual('delete_failed', exc.cleanup)
        self.assertEqual(list(fake.volumes), [exc.volume['id']])
        self.assertEqual(KEY, exc.create_result.key)
        self.assertEqual([], clock.sleeps[1:])   # only the first-GET step
