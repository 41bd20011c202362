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

"""A hung TLS handshake and a hung resolver.

A real TCP listener on loopback accepts the connection and never answers
the TLS ClientHello (a cinder-api or haproxy frontend whose TLS worker is
stuck): nothing of the request was written, so a create must end
:class:`~bdm_guard.exception.VolumeCreateNotSent` (safe to retry), never
"unknown". A resolver that does not answer is made at the boundary, by a
``socket.getaddrinfo`` that blocks for one host name (no network here):
each call must still end within ``request_timeout``, ``not_sent``.
"""

import socket
import threading
import time

import fixtures
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from oslotest import base

from bdm_guard import cinder
from bdm_guard import create
from bdm_guard import exception
from bdm_guard import opts
from bdm_guard import outcome as oc
from bdm_guard import wait
from tests.functional.transport import test_silent_cinder

PROJECT = '9d2e4b7a1c3f4e5d8a6b0c2e4f6a8b0d'
VOLUME = '6018366c-f658-47a7-9ed3-4fe53a096533'
KEY = 'c0ffee00-0000-4000-8000-00000000000c'
REQUEST_TIMEOUT = 1.5
#: Slack for the machine (thread start, a loaded CI host): seconds.
SLACK = 3.0
HUNG_NAME = 'cinder.hung-resolver.test'


class MuteTLSServer(test_silent_cinder.LoopbackServer):
    """Accepts TCP on 127.0.0.1, reads the ClientHello, never answers."""

    def __init__(self):
        self.received = 0
        super().__init__()

    def _handle(self, conn):
        conn.settimeout(0.2)
        try:
            while not self.stopped.is_set():
                try:
                    chunk = conn.recv(4096)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                self.received += len(chunk)
        except OSError:
            return
        finally:
            conn.close()


def client_for(endpoint, verify=True):
    sess = ks_session.Session(auth=token_endpoint.Token(
        endpoint, 'user:%s' % PROJECT), verify=verify)
    return cinder.VolumeClient(sess, endpoint_override=endpoint,
                               request_timeout=REQUEST_TIMEOUT)


def guard_conf():
    conf = opts.get_conf(None)
    conf.set_override('base_deadline', 10, group='bdm_guard')
    conf.set_override('create_timeout', 6, group='bdm_guard')
    conf.set_override('reconcile_grace', 2, group='bdm_guard')
    return conf


class TestHungHandshake(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.server = MuteTLSServer()
        self.addCleanup(self.server.stop)
        self.client = client_for('https://127.0.0.1:%d/v3/%s'
                                 % (self.server.port, PROJECT), verify=False)

    def test_post_is_not_sent(self):
        start = time.monotonic()
        result = self.client.create_volume({'size': 1})
        self.assertLess(time.monotonic() - start, REQUEST_TIMEOUT + SLACK)
        self.assertEqual(oc.NOT_SENT, result.kind, result.message)
        self.assertGreater(self.server.received, 0, 'a ClientHello came')

    def test_create_ends_not_sent(self):
        start = time.monotonic()
        exc = self.assertRaises(exception.VolumeCreateNotSent,
                                create.create_volume, self.client, 1,
                                idempotency_key=KEY, conf=guard_conf())
        self.assertLess(time.monotonic() - start, 6 + REQUEST_TIMEOUT + SLACK)
        # Each POST was provably never sent, so resending was safe.
        self.assertGreaterEqual(exc.kwargs['posts'], 2)
        self.assertEqual(exc.kwargs['posts'], self.server.connections)


class TestHungResolver(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.release = threading.Event()
        self.addCleanup(self.release.set)
        self.lookups = []
        real = socket.getaddrinfo

        def getaddrinfo(host, *args, **kwargs):
            if host == HUNG_NAME:
                self.lookups.append(host)
                # A resolver that never answers (until the test ends).
                self.release.wait(60)
                raise socket.gaierror(socket.EAI_AGAIN, 'Temporary failure '
                                      'in name resolution')
            return real(host, *args, **kwargs)

        self.useFixture(fixtures.MonkeyPatch('socket.getaddrinfo',
                                             getaddrinfo))
        self.client = client_for('http://%s:8776/v3/%s'
                                 % (HUNG_NAME, PROJECT))

    def test_call_bounded_and_not_sent(self):
        start = time.monotonic()
        result = self.client.get_volume(VOLUME)
        self.assertLess(time.monotonic() - start, REQUEST_TIMEOUT + SLACK)
        self.assertEqual(oc.NOT_SENT, result.kind, result.message)
        self.assertEqual([HUNG_NAME], self.lookups)

    def test_create_ends_not_sent(self):
        start = time.monotonic()
        self.assertRaises(exception.VolumeCreateNotSent,
                          create.create_volume, self.client, 1,
                          idempotency_key=KEY, conf=guard_conf())
        self.assertLess(time.monotonic() - start, 6 + REQUEST_TIMEOUT + SLACK)

    def test_wait_ends_by_its_deadline(self):
        start = time.monotonic()
        self.assertRaises(exception.VolumeWaitTimeout,
                          wait.wait_for_volume, self.client, VOLUME,
                          conf=guard_conf())
        self.assertLess(time.monotonic() - start, 10 + REQUEST_TIMEOUT + SLACK)
