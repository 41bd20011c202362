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

"""A TCP relay that can stop delivering: a broker that connects but is mute.

:class:`MuteRelay` forwards bytes both ways between a client and a server
on loopback. With ``mute`` set, it still accepts connections and forwards
what the client sends, but drops everything the server sends back: to the
client, the server accepted the connection and never answers or delivers
(no handshake, no heartbeat, no message).
"""

import socket
import threading

import fixtures


class MuteRelay(fixtures.Fixture):
    """Relay ``127.0.0.1:<port>`` to ``target_port``.

    :param target_port: the server's port on 127.0.0.1.

    After ``setUp``: ``port``; set ``mute`` to True or False at any time.
    """

    def __init__(self, target_port):
        super().__init__()
        self.target_port = target_port
        self.mute = False
        self.stopping = threading.Event()
        self.sockets = []

    def _setUp(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        self.addCleanup(self._stop)

    def _accept(self):
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(
                    ('127.0.0.1', self.target_port), 5)
            except OSError:
                client.close()
                continue
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True),
                             daemon=True).start()

    def _pump(self, source, sink, from_server):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_server and self.mute:
                    continue
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _stop(self):
        self.stopping.set()
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass
