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

"""Bound the whole of one exchange with cinder, first byte to last.

requests' ``timeout`` bounds each socket operation, not the answer: a
cinder-api (or haproxy) that accepts the connection and then sends one byte
a second never trips it, and a stuck backend behind haproxy holds a call
for haproxy's ``timeout server``. :func:`bounded` arms a timer for one call;
when it fires, the sockets that call opened or took from the pool are shut
down, so the blocked read returns at once and the call ends with a
transport error (an ``unknown`` outcome: the request may have been sent).

The hook is a :class:`keystoneauth1.session.TCPKeepAliveAdapter` whose
connection pools record, per thread, the connections they hand out while a
call is bounded. Calls made outside :func:`bounded` (nova's own cinderclient
calls on the same session) are untouched.
"""

import contextlib
import socket
import threading
import typing

from keystoneauth1 import session as ks_session
from urllib3 import connectionpool

_LOCAL = threading.local()


class _Watch:
    """The connections of one bounded call; shut when its time is up."""

    def __init__(self, seconds: float):
        self.connections = []
        self.expired = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True

    def add(self, connection):
        with self._lock:
            self.connections.append(connection)
            if self.expired:
                _shut(connection)

    def expire(self):
        with self._lock:
            self.expired = True
            for connection in self.connections:
                _shut(connection)


def _shut(connection):
    sock = getattr(connection, 'sock', None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass   # already closed


class _Recording:
    def _get_conn(self, timeout=None):
        connection = super()._get_conn(timeout=timeout)
        watch = getattr(_LOCAL, 'watch', None)
        if watch is not None:
            watch.add(connection)
        return connection


class _HTTPPool(_Recording, connectionpool.HTTPConnectionPool):
    pass


class _HTTPSPool(_Recording, connectionpool.HTTPSConnectionPool):
    pass


class BoundedAdapter(ks_session.TCPKeepAliveAdapter):
    """keystoneauth's adapter, with pools that :func:`bounded` can cut."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {'http': _HTTPPool,
                                                   'https': _HTTPSPool}


def install(session: ks_session.Session) -> None:
    """Mount :class:`BoundedAdapter` on a keystoneauth session, once.

    The adapter it replaces keeps its settings (TLS ciphers and minimum
    version, pool sizes, retries).

    :param session: a :class:`keystoneauth1.session.Session`.
    """
    requests_session = getattr(session, 'session', None)
    if requests_session is None:
        return
    for prefix in ('https://', 'http://'):
        old = requests_session.adapters.get(prefix)
        if isinstance(old, BoundedAdapter):
            continue
        kwargs = dict(
            pool_connections=getattr(old, '_pool_connections', 10),
            pool_maxsize=getattr(old, '_pool_maxsize', 10),
            max_retries=getattr(old, 'max_retries', 0),
            pool_block=getattr(old, '_pool_block', False))
        # The TLS settings are newer than 2024.1's keystoneauth1 (5.6.1),
        # whose adapter has and takes neither.
        for name in ('tls_ciphers', 'tls_min_version'):
            if hasattr(old, name):
                kwargs[name] = getattr(old, name)
        requests_session.mount(prefix, BoundedAdapter(**kwargs))


@contextlib.contextmanager
def bounded(seconds: float) -> typing.Iterator[_Watch]:
    """Cut the calls made in this block ``seconds`` from now.

    :param seconds: the most the block's HTTP exchanges may take (> 0).
    :returns: a watch whose ``expired`` says whether the time ran out.
    """
    watch = _Watch(max(seconds, 0.0))
    previous = getattr(_LOCAL, 'watch', None)
    _LOCAL.watch = watch
    watch._timer.start()
    try:
        yield watch
    finally:
        watch._timer.cancel()
        _LOCAL.watch = previous
