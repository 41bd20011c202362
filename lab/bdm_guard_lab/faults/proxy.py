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

"""A fault-injecting HTTP proxy between the clients and cinder-api.

It stands where haproxy stands in an HA cloud and does, on the wire only,
what a lossy path and a lagging database do (rules in
:mod:`bdm_guard_lab.faults.scenario`, effects in
:mod:`bdm_guard_lab.faults.wire`).
Every decision is a deterministic draw from the scenario's seed and the
request's identity (the volume's name and how many such requests came
before), so the same boot meets the same faults in both arms of a
comparison, whatever the thread interleaving.

Stdlib only: :class:`http.server.ThreadingHTTPServer` with HTTP/1.1
keep-alive towards the clients, one :class:`http.client.HTTPConnection` to
cinder per client connection.
"""

import collections
import http.client
import http.server
import json
import re
import threading
import time
import urllib.parse

import fixtures
from oslo_log import log as logging

from bdm_guard_lab.faults import wire as faults

LOG = logging.getLogger(__name__)

_VOLUME_PATH = re.compile(r'^/volumes/([0-9a-f-]{36})$')
_HOP_HEADERS = frozenset(['connection', 'keep-alive', 'transfer-encoding',
                          'proxy-connection', 'te', 'upgrade', 'trailer'])


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'bdm-guard-lab-proxy'

    def log_message(self, fmt, *args):
        LOG.debug('proxy: ' + fmt, *args)

    def _upstream(self):
        conn = getattr(self, '_conn', None)
        if conn is None:
            conn = http.client.HTTPConnection(
                self.server.target_host, self.server.target_port, timeout=600)
            self._conn, self._reused = conn, False
        return conn

    def _forward(self, body):
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in _HOP_HEADERS}
        while True:
            conn = self._upstream()
            reused = self._reused
            try:
                conn.request(self.command, self.path, body=body,
                             headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self._reused = True
                return resp.status, resp.reason, resp.getheaders(), data
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError):
                conn.close()
                self._conn = None
                if not reused:
                    raise
                # cinder had closed this idle keep-alive connection before
                # the request: send it again on a new one.

    def _respond(self, status, reason, headers, data):
        self.send_response(status, reason)
        for key, value in headers:
            if key.lower() not in _HOP_HEADERS and key.lower() != (
                    'content-length'):
                self.send_header(key, value)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def _handle(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else None
        proxy = self.server.proxy
        split = urllib.parse.urlsplit(self.path)
        path = proxy.api_path(split.path)
        request_id = self.headers.get('X-OpenStack-Request-ID')
        decision = proxy.decide(self.command, path, split.query, body,
                                request_id)
        fault = decision.fault
        keyed = (self.command == 'POST' and path == '/volumes'
                 and bool(self.headers.get('Idempotency-Key')))
        if keyed:
            proxy.count_keyed('sent')
        if fault in ('lost_request', 'reset'):
            faults.drop(self, reset=(fault == 'reset'))
            return
        if fault == 'no_server_503':
            faults.send_haproxy_page(self, 503)
            return
        if fault == 'gateway_504' and not decision.rule.forward:
            time.sleep(decision.rule.seconds * proxy.time_scale)
            faults.send_haproxy_page(self, 504)
            return
        started, arrived = time.monotonic(), time.time()
        status, reason, headers, data = self._forward(body)
        if keyed and any(
                name.lower() == 'idempotent-replayed'
                and value.strip().lower() == 'true'
                for name, value in headers):
            proxy.count_keyed('replayed')
        proxy.record_latency(self.command, path, started,
                             time.monotonic() - started)
        proxy.observe(self.command, path, status, data, body, request_id,
                      arrived=arrived)
        if fault == 'lost_response':
            faults.drop(self, reset=True)
            return
        if fault == 'gateway_504':
            left = decision.rule.seconds * proxy.time_scale - (
                time.monotonic() - started)
            time.sleep(max(0.0, left))
            faults.send_haproxy_page(self, 504)
            return
        if self.command == 'GET':
            status, data = proxy.apply_lag(path, status, data, started)
            proxy.answered(path, status, data)
        self._respond(status, reason, headers, data)

    def _dispatch(self):
        try:
            self._handle()
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            LOG.warning('proxy: %s %s failed: %s', self.command, self.path,
                        exc)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _dispatch


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


class FaultProxy(fixtures.Fixture):
    """A fault-injecting proxy on 127.0.0.1 in front of cinder-api.

    :param target: cinder's base URL, ``http://127.0.0.1:<port>``.
    :param scenario: a :class:`bdm_guard_lab.faults.scenario.Scenario`.
    :param time_scale: factor applied to the rules' seconds.
    :param project_id: the project in the endpoint.

    After ``setUp``: ``base_url``, ``endpoint``
    (``http://127.0.0.1:<port>/v3/<project>``), :attr:`injected` (Counter
    of faults by kind), :attr:`requests` (Counter of ``(method, route)``),
    :meth:`gets_for` (volume GETs per volume id), :attr:`available_at`
    (volume id -> cinder's ``updated_at`` of the first ``available`` answer
    to a GET of it or a list, epoch seconds), :attr:`noticed_at` (volume id
    -> ``time.time()`` when a ``GET`` of it first answered ``available``:
    see :meth:`answered`) and :attr:`attached_at`
    (volume id -> ``time.time()`` when the first ``POST /attachments`` for
    it arrived: the moment a nova-compute went on with the attach).

    A volume's identity, which the fault draws are keyed by, is its name;
    for an unnamed volume (nova names image-backed ones ``''``) it is the
    request's ``X-OpenStack-Request-ID``: the lab's nova sends a stable one
    per server, which nova passes on to cinder as the global request id.
    :attr:`get_latencies` holds ``[(monotonic start, seconds)]`` of
    cinder's answers to ``GET /volumes/<id>``.
    """

    def __init__(self, target, scenario, *, time_scale=1.0, project_id=None):
        super().__init__()
        parsed = urllib.parse.urlsplit(target)
        self.target_host, self.target_port = parsed.hostname, parsed.port
        self.scenario = scenario
        self.time_scale = time_scale
        self.project_id = project_id
        self.lock = threading.Lock()
        self.injected = collections.Counter()
        self.requests = collections.Counter()
        self.volume_gets = collections.Counter()
        #: ``POST /volumes`` carrying cinder's ``Idempotency-Key``
        #: (``'sent'``), and their answers cinder marked
        #: ``Idempotent-Replayed: true`` (``'replayed'``): the check that
        #: an arm's creates went through cinder's key (``patches/cinder``
        #: 0003), not only through the client's guard.
        self.keyed_creates = collections.Counter()
        self.get_latencies = []
        self.created = {}           # volume id -> monotonic creation time
        self.names = {}             # volume id -> volume name
        self.available_at = {}
        self.noticed_at = {}
        self.attached_at = {}
        self.seen = collections.Counter()   # request identity -> count
        #: Set when the first ``POST /volumes`` arrives.
        self.first_create = threading.Event()

    def _setUp(self):
        server = _Server(('127.0.0.1', 0), _Handler)
        server.proxy = self
        server.target_host = self.target_host
        server.target_port = self.target_port
        self.server = server
        thread = threading.Thread(target=server.serve_forever,
                                  name='lab-proxy', daemon=True)
        thread.start()
        self.addCleanup(thread.join, 10)
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.base_url = 'http://127.0.0.1:%d' % server.server_address[1]
        self.endpoint = '%s/v3/%s' % (self.base_url, self.project_id)

    @staticmethod
    def api_path(path):
        """The path after ``/v3/<project>`` (``/volumes/<id>``...)."""
        parts = path.split('/', 3)
        if len(parts) >= 3 and parts[1].startswith('v'):
            return '/' + (parts[3] if len(parts) > 3 else '')
        return path

    @staticmethod
    def _posted_name(body, request_id):
        """The name of the volume a ``POST /volumes`` body asks for.

        :returns: the name, else ``request_id`` for an unnamed volume, else
            None.
        """
        try:
            name = json.loads(body)['volume'].get('name')
        except (ValueError, KeyError, TypeError, AttributeError):
            name = None
        return name or request_id or name

    def _identity(self, method, path, query, body, request_id=None):
        match = _VOLUME_PATH.match(path)
        if match:
            volume_id = match.group(1)
            return '%s %s' % (method, self.names.get(volume_id, volume_id))
        if method == 'POST' and body:
            return 'POST %s' % self._posted_name(
                body, request_id if path == '/volumes' else None)
        return '%s %s?%s' % (method, path, query)

    def decide(self, method, path, query, body, request_id=None):
        """Choose the fault (or none) for one request; count it.

        :param request_id: the request's ``X-OpenStack-Request-ID``, or
            None.
        :returns: a :class:`bdm_guard_lab.faults.wire.Decision`.
        """
        with self.lock:
            route = faults.route(path)
            self.requests[(method, route)] += 1
            if method == 'POST' and route == '/volumes':
                self.first_create.set()
            match = _VOLUME_PATH.match(path)
            if method == 'GET' and match:
                self.volume_gets[match.group(1)] += 1
            identity = self._identity(method, path, query, body, request_id)
            self.seen[identity] += 1
            count = self.seen[identity]
            for index, rule in enumerate(self.scenario.rules):
                if rule.fault == 'visibility_lag' or not rule.matches(
                        method, path) or (rule.times and count > rule.times):
                    continue
                if self.scenario.draw(index, identity, count) < (
                        rule.probability):
                    self.injected[rule.fault] += 1
                    return faults.Decision(rule.fault, rule, identity, count)
            return faults.Decision(None, None, identity, count)

    def observe(self, method, path, status, data, body, request_id=None,
                arrived=None):
        """Learn volume ids, names and creation times from cinder's answers.

        Also notes when a volume was first seen ``available`` and when its
        first attachment was asked for (:attr:`available_at`,
        :attr:`attached_at`).

        :param method: the request's method.
        :param path: the API path.
        :param status: cinder's HTTP status.
        :param data: cinder's response body (bytes).
        :param body: the request body (bytes or None).
        :param request_id: the request's ``X-OpenStack-Request-ID``, or
            None.
        :param arrived: ``time.time()`` when the request reached the proxy
            (default: now): an attachment counts from its arrival, not from
            cinder's answer.
        """
        if method == 'POST' and path == '/attachments' and status < 300:
            self._observe_attachment(
                body, time.time() if arrived is None else arrived)
            return
        if method == 'GET' and status == 200 and (
                _VOLUME_PATH.match(path) or path == '/volumes/detail'):
            self._observe_available(data)
            return
        if not (method == 'POST' and path == '/volumes' and status == 202):
            return
        try:
            volume = json.loads(data)['volume']
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            self.created.setdefault(volume['id'], time.monotonic())
            self.names[volume['id']] = (
                volume.get('name') or self._posted_name(body, request_id)
                or volume['id'])

    def answered(self, path, status, data):
        """Note when a client was first told a volume is ``available``.

        Called with the answer the client gets (after any lag fault), for
        ``GET /volumes/<id>`` only: :attr:`noticed_at` (volume id ->
        ``time.time()``) is when the waiter could first know. Lists do not
        count: nova waits with GETs, and the lab's own lists come after.
        """
        match = _VOLUME_PATH.match(path)
        if not match or status != 200:
            return
        try:
            volume = json.loads(data)['volume']
            if volume['status'] != 'available':
                return
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            self.noticed_at.setdefault(match.group(1), time.time())

    def _observe_attachment(self, body, arrived):
        try:
            volume_id = json.loads(body)['attachment']['volume_uuid']
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            self.attached_at.setdefault(volume_id, arrived)

    def _observe_available(self, data):
        """Note the ``available`` volumes of a GET's or a list's answer."""
        try:
            body = json.loads(data)
            volumes = body.get('volumes') or [body['volume']]
        except (ValueError, KeyError, TypeError, AttributeError):
            return
        for volume in volumes:
            try:
                if volume['status'] != 'available':
                    continue
                when = faults.timestamp(volume['updated_at'])
            except (KeyError, TypeError, ValueError):
                continue
            with self.lock:
                self.available_at.setdefault(volume['id'], when)

    def record_latency(self, method, path, started, seconds):
        """Keep how long cinder took to answer a ``GET /volumes/<id>``.

        :param method: the request's method.
        :param path: the API path.
        :param started: ``time.monotonic()`` when it was forwarded.
        :param seconds: float, until cinder's answer was read.
        """
        if method == 'GET' and _VOLUME_PATH.match(path):
            with self.lock:
                self.get_latencies.append((started, seconds))

    def apply_lag(self, path, status, data, at=None):
        """Hide young volumes from GETs and lists (read-after-write lag).

        :param at: ``time.monotonic()`` when the read arrived (see
            :func:`bdm_guard_lab.faults.wire.apply_lag`).
        :returns: ``(status, data)``, possibly a 404 or a shortened list.
        """
        return faults.apply_lag(self, path, status, data, at)

    def count_keyed(self, what):
        """Count a keyed create (``'sent'``) or its replay (``'replayed'``)."""
        with self.lock:
            self.keyed_creates[what] += 1

    def gets_for(self, volume_ids):
        """Volume GETs (``GET /volumes/<id>``) the proxy saw for these ids."""
        with self.lock:
            return sum(self.volume_gets[v] for v in volume_ids)

    def reset_counters(self):
        """Forget counts and learned volumes (between runs)."""
        with self.lock:
            for counter in (self.injected, self.requests, self.volume_gets,
                            self.seen, self.keyed_creates):
                counter.clear()
            self.created.clear()
            self.names.clear()
            self.available_at.clear()
            self.noticed_at.clear()
            self.attached_at.clear()
            del self.get_latencies[:]
            self.first_create.clear()
