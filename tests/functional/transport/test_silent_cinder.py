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

"""16.1: no call outlives its deadline, against real silent sockets.

Two real TCP servers on loopback stand in for a cinder-api behind haproxy
whose backend is stuck: one accepts the connection, reads the request and
never answers; one answers one byte every 0.2 s, for ever. requests' own
timeout never fires on the second (every read gets a byte in time). The
wait and the create must end by their deadline plus one request timeout,
with their typed errors, and must not send a second POST.
"""

import socket
import threading
import time

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from oslotest import base

from bdm_guard import cinder
from bdm_guard import create
from bdm_guard import exception
from bdm_guard import opts
from bdm_guard import testing
from bdm_guard import wait

PROJECT = '9d2e4b7a1c3f4e5d8a6b0c2e4f6a8b0d'
VOLUME = '6018366c-f658-47a7-9ed3-4fe53a096533'
KEY = 'c0ffee00-0000-4000-8000-00000000000b'
REQUEST_TIMEOUT = 2.0
#: Slack for the machine (thread start, a loaded CI host): seconds.
SLACK = 3.0


class LoopbackServer:
    """A TCP listener on 127.0.0.1 that gives each connection a thread.

    Subclasses define ``_handle(conn)``; :meth:`stop` ends the listener and
    every handler (they watch ``stopped``).
    """

    def __init__(self):
        self.connections = 0
        self.stopped = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,),
                             daemon=True).start()

    def _handle(self, conn):
        raise NotImplementedError

    def stop(self):
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()


class SilentServer(LoopbackServer):
    """A TCP server on 127.0.0.1 that hangs or drips on every request.

    :param mode: ``hang`` (read the request, answer nothing) or ``drip``
        (one byte of a never-ending response every ``interval`` s).
    """

    def __init__(self, mode, interval=0.2):
        self.mode = mode
        self.interval = interval
        self.requests = []
        super().__init__()

    def _handle(self, conn):
        conn.settimeout(0.5)
        try:
            head = b''
            while b'\r\n\r\n' not in head and not self.stopped.is_set():
                try:
                    chunk = conn.recv(4096)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                head += chunk
            self.requests.append(head.split(b'\r\n', 1)[0].decode())
            answer = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'
            while not self.stopped.is_set():
                if self.mode == 'drip':
                    conn.sendall(answer[:1])
                    answer = answer[1:] or b'X-Drip: 1\r\n'
                time.sleep(self.interval)
        except OSError:
            return
        finally:
            conn.close()

    def posts(self):
        return [r for r in self.requests if r.startswith('POST ')]


class SilentCinderTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        # Every case reuses KEY: the creator would otherwise remember the
        # last case's unknown outcome and look the key up before its POST.
        testing.forget_attempts()
        self.addCleanup(testing.forget_attempts)

    def client(self, mode):
        server = SilentServer(mode)
        self.addCleanup(server.stop)
        endpoint = 'http://127.0.0.1:%d/v3/%s' % (server.port, PROJECT)
        sess = ks_session.Session(auth=token_endpoint.Token(
            endpoint, 'user:%s' % PROJECT))
        return server, cinder.VolumeClient(
            sess, endpoint_override=endpoint,
            request_timeout=REQUEST_TIMEOUT)

    def conf(self):
        conf = opts.get_conf(None)
        conf.set_override('base_deadline', 10, group='bdm_guard')
        conf.set_override('create_timeout', 6, group='bdm_guard')
        conf.set_override('reconcile_grace', 2, group='bdm_guard')
        return conf

    def check_wait(self, mode):
        server, client = self.client(mode)
        start = time.monotonic()
        exc = self.assertRaises(exception.VolumeWaitTimeout,
                                wait.wait_for_volume, client, VOLUME,
                                conf=self.conf())
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 10 + REQUEST_TIMEOUT + SLACK)
        self.assertGreaterEqual(exc.polls, 2)
        self.assertEqual([], server.posts())

    def check_create(self, mode):
        server, client = self.client(mode)
        start = time.monotonic()
        exc = self.assertRaises(exception.VolumeCreateUnknown,
                                create.create_volume, client, 1,
                                idempotency_key=KEY, conf=self.conf())
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 6 + REQUEST_TIMEOUT + SLACK)
        self.assertEqual(KEY, exc.key)
        # The POST may have reached cinder: it is never sent twice.
        self.assertEqual(1, len(server.posts()))

    def test_hung_server_wait(self):
        self.check_wait('hang')

    def test_dripping_server_wait(self):
        self.check_wait('drip')

    def test_hung_server_create(self):
        self.check_create('hang')

    def test_dripping_server_create(self):
        self.check_create('drip')
