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

Neither a socket timeout nor the timer can cut a name resolution short:
``getaddrinfo`` takes no timeout, and a resolver that does not answer holds
the call for its own retries (``resolv.conf``'s ``timeout`` x ``attempts``
x servers). So a bounded call opens each new connection (name resolution
and TCP connect) in a helper thread and gives it up after the connect
timeout or what is left of the call's time, whichever is less: the call
then ends ``not_sent`` (urllib3's ``ConnectTimeoutError``), since nothing
was written. A connection that is made after all is closed at once.
"""

import contextlib
import socket
import threading
import time
import typing

from keystoneauth1 import session as ks_session
from urllib3 import connection as urllib3_connection
from urllib3 import connectionpool
from urllib3 import exceptions as urllib3_exc

_LOCAL = threading.local()


class _Watch:
    """The connections of one bounded call; shut when its time is up."""

    def __init__(self, seconds: float):
        self.connections = []
        self.expired = False
        self.until = time.monotonic() + seconds
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

    def remaining(self) -> float:
        """Seconds left of the call's time (>= 0)."""
        return max(0.0, self.until - time.monotonic())


def _shut(connection):
    sock = getattr(connection, 'sock', None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass   # already closed


class _BoundedConnect:
    """A connection whose name resolution and connect a bounded call cuts.

    Outside :func:`bounded`, urllib3's own ``_new_conn`` runs unchanged.
    """

    def _new_conn(self):
        watch = getattr(_LOCAL, 'watch', None)
        if watch is None:
            return super()._new_conn()
        limit = watch.remaining()
        if isinstance(self.timeout, (int, float)):
            limit = min(limit, self.timeout)
        state = {}
        lock = threading.Lock()
        done = threading.Event()
        make = super()._new_conn

        def connect():
            try:
                state['sock'] = make()
            except BaseException as exc:  # handed over below
                state['error'] = exc
            with lock:
                done.set()
                late = state.get('abandoned')
            if late and 'sock' in state:
                state['sock'].close()

        helper = threading.Thread(target=connect, daemon=True,
                                  name='bdm-guard-connect')
        helper.start()
        done.wait(limit)
        with lock:
            if not done.is_set():
                state['abandoned'] = True
                raise urllib3_exc.ConnectTimeoutError(
                    self, 'Connection to %s not made within %.1f s (name '
                    'resolution or TCP connect); nothing was sent'
                    % (self.host, limit))
        if 'error' in state:
            raise state['error']
        return state['sock']


class _HTTPConnection(_BoundedConnect, urllib3_connection.HTTPConnection):
    pass


class _HTTPSConnection(_BoundedConnect,
                       urllib3_connection.HTTPSConnection):
    pass


class _Recording:
    def _get_conn(self, timeout=None):
        connection = super()._get_conn(timeout=timeout)
        watch = getattr(_LOCAL, 'watch', None)
        if watch is not None:
            watch.add(connection)
        return connection


class _HTTPPool(_Recording, connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_Recording, connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


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
