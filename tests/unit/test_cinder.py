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

"""TLS errors, keystoneauth configuration errors and volume ids.

The TLS handshake failure is a real one (a plain TCP listener on 127.0.0.1
that answers a TLS hello with HTTP); keystone is requests-mock behind the
real keystoneauth identity plugins.
"""

import socket
import ssl
import threading

from keystoneauth1 import fixture
from keystoneauth1 import identity
from keystoneauth1.identity import v3
from keystoneauth1 import session
from keystoneauth1 import token_endpoint
from oslotest import base
import requests
from requests_mock.contrib import fixture as rm_fixture
import urllib3

from bdm_guard import cinder
from bdm_guard import create
from bdm_guard import exception
from bdm_guard import outcome as oc
from bdm_guard import testing
from bdm_guard import wait
from tests.unit import fake_cinder

KEYSTONE = 'http://keystone.test/v3'
VID = '6018366c-f658-47a7-9ed3-4fe53a096533'


def ssl_error_mid_reply():
    """What requests raises when getresponse() hits an SSL error.

    urllib3 2.x wraps the ssl.SSLError of a read in its SSLError, then in
    MaxRetryError, and requests in its SSLError (no handshake frame).
    """
    inner = ssl.SSLError(1, '[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] '
                            'decryption failed or bad record mac')
    return requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(
        None, '/volumes', urllib3.exceptions.SSLError(inner)))


class TestSSL(base.BaseTestCase):

    def test_handshake_failure_is_not_sent(self):
        # A real TLS client hello to a server that speaks plain HTTP fails
        # inside ssl.SSLSocket.do_handshake: nothing was sent.
        server = socket.socket()
        self.addCleanup(server.close)
        server.bind(('127.0.0.1', 0))
        server.listen(1)

        def answer():
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b'HTTP/1.1 400 Bad Request\r\n'
                             b'Content-Length: 0\r\n\r\n')
        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        endpoint = 'https://127.0.0.1:%d/v3/p' % server.getsockname()[1]
        sess = session.Session(auth=token_endpoint.Token(endpoint, 't'),
                               verify=False)
        client = cinder.VolumeClient(sess, endpoint_override=endpoint)
        result = client.create_volume({'size': 1})
        thread.join(10)
        self.assertEqual(oc.NOT_SENT, result.kind, result.message)
        self.assertIn('SSL', result.message)

    def test_certificate_failure_is_not_sent(self):
        cert = ssl.SSLCertVerificationError(
            1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed')
        exc = requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(
            None, '/volumes', urllib3.exceptions.SSLError(cert)))
        self.assertEqual(oc.NOT_SENT, oc.classify_exception(exc).kind)

    def test_ssl_error_after_the_handshake_is_unknown(self):
        self.assertEqual(oc.UNKNOWN,
                         oc.classify_exception(ssl_error_mid_reply()).kind)

        def recv_into():     # raised while reading, with a traceback
            raise ssl.SSLEOFError(8, 'EOF occurred in violation of protocol')
        try:
            recv_into()
        except ssl.SSLError as inner:
            exc = requests.exceptions.SSLError(urllib3.exceptions.SSLError(
                inner))
        self.assertEqual(oc.UNKNOWN, oc.classify_exception(exc).kind)

    def test_post_whose_reply_died_in_tls_is_not_duplicated(self):
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock)
        real_post = fake.post

        def post(request):
            response = real_post(request)   # the volume is created ...
            if fake.post_count == 1:
                raise ssl_error_mid_reply()  # ... and the reply is lost
            return response
        fake.post = post
        client = fake_cinder.make_client(self, fake)
        result = create.create_volume(client, 10, idempotency_key='k-ssl',
                                      sleep=clock.sleep, clock=clock)
        self.assertEqual('adopted', result.how)
        self.assertEqual(1, result.posts)
        self.assertEqual(1, len(fake.live()))


def token_with_catalog():
    token = fixture.V3Token()
    token.set_project_scope()
    token.add_service('identity').add_standard_endpoints(public=KEYSTONE)
    token.add_service('volumev3').add_standard_endpoints(
        public=fake_cinder.ENDPOINT, region='RegionOne')
    return token


class TestKeystoneErrors(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.mock = self.useFixture(rm_fixture.Fixture())
        self.clock = testing.VirtualClock()

    def client(self, region='RegionOne', auth_url=KEYSTONE):
        auth = v3.Password(auth_url=auth_url, username='u', password='p',
                           project_id='p', user_domain_id='default')
        return cinder.VolumeClient(session.Session(auth=auth),
                                   region_name=region)

    def keystone(self, **kw):
        self.mock.post(KEYSTONE + '/auth/tokens',
                       headers={'X-Subject-Token': 'tok'}, **kw)

    def test_wrong_region_fails_the_wait_at_once(self):
        self.keystone(json=token_with_catalog())
        client = self.client(region='RegionBad')
        exc = self.assertRaises(
            exception.CinderConfigError, wait.wait_for_volume, client, VID,
            sleep=self.clock.sleep, clock=self.clock)
        self.assertEqual('EndpointNotFound', exc.error)
        self.assertEqual(0, self.clock.now)
        self.assertIsInstance(exc, exception.CinderUnavailable)

    def test_refused_credentials_fail_the_create_at_once(self):
        self.keystone(status_code=401, json={'error': {
            'code': 401, 'message': 'The request you have made requires '
                                    'authentication.'}})
        exc = self.assertRaises(
            exception.CinderConfigError, create.create_volume,
            self.client(), 1, idempotency_key='k-401',
            sleep=self.clock.sleep, clock=self.clock)
        self.assertEqual('Unauthorized', exc.error)
        self.assertEqual([], self.clock.sleeps)
        self.assertFalse(any(r.method == 'POST' and 'volumes' in r.url
                             for r in self.mock.request_history))

    def test_keystone_down_is_transient(self):
        self.keystone(status_code=503, text='busy')
        self.assertEqual(oc.NOT_SENT, self.client().get_volume(VID).kind)
        # Version discovery on an unversioned auth_url that cannot connect:
        # DiscoveryFailure raised from a ConnectFailure.
        self.mock.get('http://keystone.test/',
                      exc=requests.exceptions.ConnectionError('refused'))
        auth = identity.Password(auth_url='http://keystone.test/',
                                 username='u', password='p', project_id='p',
                                 user_domain_id='default')
        result = cinder.VolumeClient(session.Session(auth=auth)).get_volume(
            VID)
        self.assertEqual(oc.NOT_SENT, result.kind)
        self.assertIn('Could not find versioned identity endpoints',
                      result.message)

    def test_keystone_rate_limit_is_transient(self):
        # A 429 from keystone: keystoneauth1 >= 5.16 raises TooManyRequests,
        # older ones (2024.1 to master pin 5.6.1 to 5.15.0) a plain
        # HttpError with http_status 429. Either way nothing reached cinder.
        self.keystone(status_code=429, text='slow down')
        result = self.client().get_volume(VID)
        self.assertEqual(oc.NOT_SENT, result.kind)
        self.assertFalse(any('volumes' in r.url
                             for r in self.mock.request_history))

    def test_429_is_transient_on_every_keystoneauth(self):
        from keystoneauth1 import exceptions as ks_exc
        plain = ks_exc.HttpError(http_status=429)
        self.assertTrue(cinder.is_transient_ks_error(plain))
        self.assertFalse(cinder.is_transient_ks_error(
            ks_exc.HttpError(http_status=418)))
        self.assertFalse(cinder.is_transient_ks_error(ks_exc.Unauthorized()))
        if hasattr(ks_exc, 'TooManyRequests'):
            self.assertTrue(cinder.is_transient_ks_error(
                ks_exc.TooManyRequests()))

    def test_malformed_endpoint_is_a_config_error(self):
        sess = session.Session(auth=token_endpoint.Token('cinder.test', 't'))
        client = cinder.VolumeClient(sess, endpoint_override='cinder.test/v3')
        self.assertRaises(exception.CinderConfigError, client.get_volume,
                          VID)


class TestVolumeId(base.BaseTestCase):

    def test_non_canonical_forms_are_canonicalised(self):
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock)
        client = fake_cinder.make_client(self, fake)
        vid = fake.add_volume(status='available')
        for form in (vid.replace('-', ''), '{%s}' % vid, 'urn:uuid:' + vid,
                     vid.upper()):
            self.assertEqual(vid, cinder.check_volume_id(form))
            report = wait.wait_for_volume(client, form, sleep=clock.sleep,
                                          clock=clock)
            self.assertEqual(vid, report.volume['id'])
        self.assertEqual({'/volumes/%s' % vid},
                         {path for _, method, path in fake.requests})

    def test_non_uuids_are_refused(self):
        for bad in ('', 'abc', VID[:-1], VID + '0', None, 42,
                    b'6018366cf65847a79ed34fe53a096533', ' %s' % VID):
            self.assertRaises(exception.InvalidVolumeId,
                              cinder.check_volume_id, bad)
