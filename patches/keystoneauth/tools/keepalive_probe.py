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

"""A POST on a pooled connection the server closed while it was idle.

The server answers a POST with keep-alive and closes the connection 0.2 s
later, as haproxy does at "timeout http-keep-alive". The second POST, 1 s
later, must succeed with connect_retries=0 on a new connection: urllib3
found the pooled one dropped before writing anything (LP#1866937's case).
"""

import socket
import threading
import time

from keystoneauth1 import session as ks

conns = []


def serve(lsock):
    while True:
        c, _ = lsock.accept()
        conns.append(c)
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        if not data:
            c.close()
            continue
        c.sendall(b'HTTP/1.1 202 Accepted\r\n'
                  b'Content-Type: application/json\r\n'
                  b'Content-Length: 2\r\n'
                  b'Connection: keep-alive\r\n\r\n{}')
        time.sleep(0.2)  # idle timeout: close the kept-alive connection
        c.close()


lsock = socket.socket()
lsock.bind(('127.0.0.1', 0))
lsock.listen(5)
threading.Thread(target=serve, args=(lsock,), daemon=True).start()
url = 'http://127.0.0.1:%d/v3/volumes' % lsock.getsockname()[1]
sess = ks.Session(connect_retries=0)
first = sess.post(url, json={})
time.sleep(1.0)
second = sess.post(url, json={})
print('statuses', first.status_code, second.status_code,
      'tcp connections', len(conns))
