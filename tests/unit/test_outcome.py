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

"""The transport table: one typed outcome per response or error."""

import http.client

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session
from keystoneauth1 import token_endpoint
from oslotest import base
import requests
import requests_mock
import urllib3

from bdm_guard import cinder
from bdm_guard import outcome as oc
from bdm_guard import testing
from tests.unit import fake_cinder

JSON = {'Content-Type': 'application/json'}
HTML = {'Content-Type': 'text/html'}


def response(code, body=None, html=None, headers=None):
    resp = requests.Response()
    resp.status_code = code
    resp.reason = http.client.responses.get(code, '')
    resp.headers.update(headers or {})
    if html is not None:
        resp._content = html.encode()
        resp.headers.update(HTML)
        return resp, None
    resp._content = b'{}' if body is not None else b''
    if body is not None:
        resp.headers.update(JSON)
    return resp, body


class TestClassifyResponse(base.BaseTestCase):

    def kind(self, *args, **kw):
        return oc.classify_response(*response(*args, **kw))

    def test_table(self):
        fault = {'computeFault': {'code': 500, 'message': 'boom'}}
        for expected, args, kw in [
                (oc.OK, (200, {'volume': {'id': 'x'}}), {}),
                (oc.OK, (202,), {}),
                (oc.UNKNOWN, (200,), {'html': '<html>login</html>'}),
                (oc.AUTH, (401, {'error': {'message': 'no'}}), {}),
                (oc.NOT_FOUND, (404, {'itemNotFound': {'message': 'x'}}),
                 {}),
                (oc.NOT_SENT, (408,), {'html': '<h1>408</h1>'}),
                (oc.REJECTED, (400, {'badRequest': {'message': 'bad'}}),
                 {}),
                (oc.NOT_SENT, (503,), {'html': fake_cinder.HAPROXY_503}),
                (oc.UNKNOWN, (503,), {'html': '<h1>503</h1> maintenance'}),
                (oc.SERVER_ERROR, (503, fault), {}),
                (oc.SERVER_ERROR, (500, fault), {}),
                (oc.UNKNOWN, (500,), {'html': '<h1>Internal</h1>'}),
                (oc.UNKNOWN, (502,), {'html': '<h1>502 Bad Gateway</h1>'}),
                (oc.UNKNOWN, (504,), {'html': fake_cinder.HAPROXY_504}),
                (oc.UNKNOWN, (504, fault), {}),
        ]:
            result = self.kind(*args, **kw)
            self.assertEqual(expected, result.kind, (args, kw))

    def test_quota_names(self):
        for message, quota in [
                ('Requested volume or snapshot exceeds allowed gigabytes '
                 'quota. Requested 10G, quota is 10G and 5G has been '
                 'consumed.', 'gigabytes'),
                ('Requested volume or snapshot exceeds allowed '
                 'gigabytes_ssd quota. Requested 1G', 'gigabytes_ssd'),
                ("Maximum number of volumes allowed (10) exceeded for quota "
                 "'volumes'.", 'volumes'),
                ('Requested volume size 2000G is larger than maximum '
                 'allowed limit 1000G.', 'per_volume_gigabytes'),
                ('Quota exceeded: code=QuotaError', 'unknown')]:
            result = self.kind(413, {'overLimit': {'code': 413,
                                                   'message': message,
                                                   'retryAfter': '0'}},
                               headers={'Retry-After': '0'})
            self.assertEqual((oc.OVER_QUOTA, quota),
                             (result.kind, result.quota))

    def test_rate_limits_are_throttled(self):
        result = self.kind(413, {'overLimit': {'message': 'slow down'}},
                           headers={'Retry-After': '7'})
        self.assertEqual((oc.THROTTLED, 7.0),
                         (result.kind, result.retry_after))
        result = self.kind(429, html='<h1>Too many</h1>',
                           headers={'Retry-After': '3'})
        self.assertEqual(oc.THROTTLED, result.kind)

    def test_retry_after_forms(self):
        self.assertEqual(3.0, oc.parse_retry_after('3'))
        self.assertEqual(0.0, oc.parse_retry_after('0'))
        self.assertIsNone(oc.parse_retry_after(None))
        self.assertIsNone(oc.parse_retry_after('soon'))
        # RFC 9110 delay-seconds is a non-negative integer: a negative or
        # non-finite number is malformed (time.sleep(inf) would raise
        # OverflowError), so it counts as absent.
        for bad in ('-5', '1e400', 'inf', '-inf', 'nan', 'Infinity'):
            self.assertIsNone(oc.parse_retry_after(bad), bad)
        # RFC 9110 HTTP-date form.
        self.assertEqual(
            60.0, oc.parse_retry_after('Thu, 01 Jan 2026 00:01:00 GMT',
                                       now=1767225600.0))

    def test_html_message_is_short_and_clean(self):
        result = self.kind(503, html=fake_cinder.HAPROXY_503 * 1000)
        self.assertNotIn('<', result.message)
        self.assertLessEqual(len(result.message), 512)


class TestClassifyException(base.BaseTestCase):

    def wrap(self, inner):
        # What keystoneauth does: raise ConnectFailure inside except.
        try:
            try:
                raise inner
            except requests.exceptions.Timeout:
                raise ks_exc.ConnectTimeout('timed out')
            except requests.exceptions.ConnectionError:
                raise ks_exc.ConnectFailure('failed')
        except ks_exc.ConnectionError as exc:
            return oc.classify_exception(exc)

    def test_not_sent(self):
        self.assertEqual(oc.NOT_SENT,
                         self.wrap(fake_cinder.lost_request_error()).kind)
        self.assertEqual(oc.NOT_SENT, self.wrap(
            requests.exceptions.ConnectTimeout('connect')).kind)

    def test_unknown(self):
        self.assertEqual(oc.UNKNOWN,
                         self.wrap(fake_cinder.lost_response_error()).kind)
        self.assertEqual(oc.UNKNOWN, self.wrap(
            requests.exceptions.ReadTimeout('read')).kind)
        self.assertEqual(oc.UNKNOWN, self.wrap(
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError(
                    'Connection aborted.', ConnectionResetError()))).kind)


class TestVolumeClient(base.BaseTestCase):

    def test_post_is_never_resent_by_keystoneauth(self):
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock, posts=['lost_response'])
        client = fake_cinder.make_client(self, fake)
        result = client.create_volume({'size': 1})
        self.assertEqual(oc.UNKNOWN, result.kind)
        self.assertEqual(1, fake.post_count)

    def test_garbage_bodies(self):
        clock = testing.VirtualClock()
        fake = fake_cinder.FakeCinder(clock)
        client = fake_cinder.make_client(self, fake)
        vid = fake.add_volume()
        for body in ({'volume': 'x'}, {'volume': {}}, {'other': 1}, []):
            fake.get = lambda request, v, body=body: fake.respond(
                request, 200, body)
            self.assertEqual(oc.MALFORMED, client.get_volume(vid).kind)
        fake.list = lambda request, q: fake.respond(request, 200,
                                                    {'volumes': 'x'})
        self.assertEqual(oc.MALFORMED, client.list_volumes().kind)

    def test_binary_answer(self):
        with requests_mock.Mocker() as m:
            m.get(requests_mock.ANY, content=b'\x00\xff\xfe' * 100,
                  status_code=200)
            sess = session.Session(auth=token_endpoint.Token(
                fake_cinder.ENDPOINT, 't'))
            client = cinder.VolumeClient(
                sess, endpoint_override=fake_cinder.ENDPOINT)
            result = client.get_volume(
                '6018366c-f658-47a7-9ed3-4fe53a096533')
            self.assertEqual(oc.UNKNOWN, result.kind)
