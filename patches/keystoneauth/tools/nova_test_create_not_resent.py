# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Regression test: a lost answer to POST /volumes creates a second volume.

nova builds its cinder client with ``connect_retries=[cinder]http_retries``
(3 by default). keystoneauth retries a request on any connection failure
or timeout, whatever the HTTP method, and that includes a connection
reset or a read timeout after the request was sent. For ``POST
/volumes`` the first request may have created the volume already, so the
resend creates a second one: the BDM gets the second volume and the first
one is leaked.
"""

from oslo_utils.fixture import uuidsentinel as uuids
import requests
from requests_mock.contrib import fixture as requests_fixture

from nova import context
from nova import exception
from nova import service_auth
from nova import test
from nova.volume import cinder


class TestCinderCreateNotResent(test.NoDBTestCase):

    URL = 'http://localhost:8776/v3/project_id'
    CATALOG = [{
        'type': 'volumev3',
        'name': 'cinderv3',
        'endpoints': [{'publicURL': URL}],
    }]

    def setUp(self):
        super().setUp()
        service_auth.reset_globals()
        self.addCleanup(service_auth.reset_globals)
        # One connect retry: enough to show the resend, and keystoneauth
        # waits only half a second before it.
        self.flags(http_retries=1, group='cinder')
        self.requests = self.useFixture(requests_fixture.Fixture())
        self.context = context.RequestContext(
            'user_id', 'project_id', auth_token='token',
            service_catalog=self.CATALOG)

    def _volume(self, volume_id):
        return {'volume': {
            'id': volume_id, 'status': 'creating', 'size': 1,
            'availability_zone': 'nova', 'created_at': '2026-01-01T00:00:00',
            'attachments': [], 'name': 'vol', 'description': None,
            'volume_type': None, 'snapshot_id': None, 'bootable': 'false',
            'metadata': {}, 'multiattach': False,
            'volume_image_metadata': {}, 'shared_targets': False,
            'service_uuid': None, 'migration_status': None}}

    def test_create_not_resent_after_lost_response(self):
        # cinder-api accepts the first POST and creates the volume, but the
        # connection is reset before its 202 reaches nova-compute.
        self.requests.post(self.URL + '/volumes', [
            {'exc': requests.exceptions.ConnectionError(
                'Connection aborted.', 'RemoteDisconnected')},
            {'status_code': 202, 'json': self._volume(uuids.second)},
        ])

        self.assertRaises(exception.CinderConnectionFailed,
                          cinder.API().create, self.context, 1, 'vol', None)

        # The POST was sent once: keystoneauth did not resend it, so cinder
        # holds at most one volume for this request, and the failure is
        # raised to the caller.
        self.assertEqual(1, self.requests.call_count)
