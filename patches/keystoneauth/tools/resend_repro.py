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

"""Reproduce: a POST whose answer is late is sent connect_retries + 1 times."""
import inspect
import socket
import threading
import time

from keystoneauth1 import exceptions
from keystoneauth1 import session

received = []


def answer_late(conn):
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    received.append(data.split(b' ', 1)[0])
    time.sleep(0.5)  # the answer is later than the client's timeout
    conn.close()


def serve(lsock):
    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=answer_late, args=(conn,), daemon=True).start()


lsock = socket.socket()
lsock.bind(('127.0.0.1', 0))
lsock.listen(5)
threading.Thread(target=serve, args=(lsock,), daemon=True).start()
url = 'http://127.0.0.1:%d/v3/volumes' % lsock.getsockname()[1]

# With the keystoneauth series, the new behaviour is opted into (this
# release's default still resends, with a FutureWarning).
opt_in = {}
if 'idempotent_connect_retries' in inspect.signature(
        session.Session).parameters:
    opt_in['idempotent_connect_retries'] = True
sess = session.Session(timeout=0.2, **opt_in)
try:
    sess.post(url, json={'volume': {'size': 1}}, connect_retries=3,
              connect_retry_delay=0.01)
except exceptions.ConnectionError as e:
    print(type(e).__name__, e)
time.sleep(1.0)
print('requests the server received:', received)
