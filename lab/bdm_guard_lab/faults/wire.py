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

"""What each fault does on the wire (used by
:mod:`bdm_guard_lab.faults.proxy`).

* ``lost_request``: the request is read, never forwarded, and the
  connection is closed with no answer (the client sees a remote
  disconnect).
* ``lost_response``: cinder gets the request and acts; the client's
  connection is then reset (RST, SO_LINGER 0) with no answer.
* ``reset``: the connection is reset before forwarding.
* ``gateway_504`` / ``no_server_503``: haproxy's own error pages (haproxy
  2.6 ``src/http_htx.c`` default errorfiles), ``Connection: close``.
* ``visibility_lag``: a GET of a volume younger than the rule's seconds
  answers cinder's own 404; a list leaves it out.
"""

import dataclasses
import datetime
import json
import re
import socket
import struct
import time

_VOLUME_PATH = re.compile(r'^/volumes/([0-9a-f-]{36})$')
_LIST_PATH = re.compile(r'^/volumes(/detail)?$')
_ID_SEGMENT = re.compile(r'/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                         r'[0-9a-f]{12}(?=/|$)')

HAPROXY_PAGES = {
    503: ('Service Unavailable',
          '<html><body><h1>503 Service Unavailable</h1>\n'
          'No server is available to handle this request.\n'
          '</body></html>\n'),
    504: ('Gateway Time-out',
          '<html><body><h1>504 Gateway Time-out</h1>\n'
          'The server didn\'t respond in time.\n</body></html>\n'),
}


@dataclasses.dataclass(frozen=True)
class Decision:
    """The proxy's choice for one request.

    :ivar fault: the fault kind, or None to pass the request through.
    :ivar rule: the :class:`bdm_guard_lab.faults.scenario.Rule` that fired.
    :ivar identity: the request's identity (``POST <name>`` ...).
    :ivar count: how many requests with that identity came so far.
    """

    fault: str = None
    rule: object = None
    identity: str = ''
    count: int = 0


def route(path):
    """A path with ids replaced, for request counters.

    ``/volumes/<uuid>`` -> ``/volumes/{id}``, ``/attachments/<uuid>/action``
    -> ``/attachments/{id}/action``: one counter per route, not per id.
    """
    return _ID_SEGMENT.sub('/{id}', path)


def drop(handler, *, reset):
    """Close the client's connection with no answer.

    :param handler: the request handler.
    :param reset: True to send a TCP RST (SO_LINGER 0), False for a FIN.
    """
    handler.close_connection = True
    sock = handler.connection
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack('ii', 1, 0))
        handler.rfile.close()
        sock.close()
    except OSError:
        pass


def send_haproxy_page(handler, status):
    """Answer with haproxy's error page for ``status`` and close."""
    reason, page = HAPROXY_PAGES[status]
    data = page.encode('ascii')
    handler.close_connection = True
    handler.send_response(status, reason)
    handler.send_header('Content-Length', str(len(data)))
    handler.send_header('Cache-Control', 'no-cache')
    handler.send_header('Content-Type', 'text/html')
    handler.send_header('Connection', 'close')
    handler.end_headers()
    handler.wfile.write(data)


def timestamp(text):
    """Epoch seconds of one of cinder's ISO 8601 times (UTC if naive).

    :raises ValueError: not an ISO 8601 time.
    :raises TypeError: not a str.
    """
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def _age(proxy, volume, at):
    """The volume's age (seconds) when the read arrived at the proxy."""
    born = proxy.created.get(volume.get('id'))
    if born is not None:
        return at - born
    created = volume.get('created_at')
    try:
        when = datetime.datetime.fromisoformat(created)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return time.time() - (time.monotonic() - at) - when.timestamp()


def _hidden(proxy, index, rule, volume, at):
    age = _age(proxy, volume, at)
    if age is None or age >= rule.seconds * proxy.time_scale:
        return False
    name = proxy.names.get(volume.get('id'), volume.get('id'))
    key = 'lag %s' % name
    proxy.seen[key] += 1
    if rule.times and proxy.seen[key] > rule.times:
        return False
    return proxy.scenario.draw(index, key, proxy.seen[key]) < rule.probability


def apply_lag(proxy, path, status, data, at=None):
    """Hide volumes younger than a ``visibility_lag`` rule's seconds.

    The age is taken when the read *arrived* at the proxy (``at``), the
    moment a load balancer picks the lagging node, not when cinder's
    answer comes back: under load cinder-api may queue a read for longer
    than the lag, and the read must still land on the lagging node.

    :param proxy: the :class:`bdm_guard_lab.faults.proxy.FaultProxy`.
    :param path: the API path of a GET.
    :param status: cinder's status.
    :param data: cinder's body (bytes).
    :param at: ``time.monotonic()`` when the request arrived, or None for
        now.
    :returns: ``(status, data)``.
    """
    if at is None:
        at = time.monotonic()
    rules = [(i, r) for i, r in enumerate(proxy.scenario.rules)
             if r.fault == 'visibility_lag' and r.matches('GET', path)]
    if status != 200 or not rules:
        return status, data
    try:
        body = json.loads(data)
    except ValueError:
        return status, data
    with proxy.lock:
        if _VOLUME_PATH.match(path) and isinstance(body.get('volume'), dict):
            volume = body['volume']
            if any(_hidden(proxy, i, r, volume, at) for i, r in rules):
                proxy.injected['visibility_lag'] += 1
                fault = {'itemNotFound': {
                    'code': 404,
                    'message': 'Volume %s could not be found.' % volume['id']}}
                return 404, json.dumps(fault).encode('utf-8')
            return status, data
        if _LIST_PATH.match(path) and isinstance(body.get('volumes'), list):
            kept = [v for v in body['volumes']
                    if not any(_hidden(proxy, i, r, v, at)
                               for i, r in rules)]
            hidden = len(body['volumes']) - len(kept)
            if hidden:
                proxy.injected['visibility_lag'] += hidden
                body['volumes'] = kept
                return status, json.dumps(body).encode('utf-8')
    return status, data
