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

"""nova's services on its functional framework, talking to real cinder.

Imported only in the nova child process (:mod:`bdm_guard_lab.nova.server`),
once it has applied the release's concurrency model: importing
``nova.tests`` applies nova's own choice, and nova's ``CONF`` must not meet
cinder's. :class:`LabNova` sets nova up the way
``_IntegratedTestBase.setUp`` does, minus ``CinderFixture``, and runs the
boots and deletes the parent asks for through nova's own API
(``POST /servers``, ``GET /servers/detail``, ``DELETE /servers/<id>``).
What differs between nova releases is a column of
:data:`bdm_guard_lab.nova.releases.RELEASES`.
"""

import concurrent.futures
import contextlib
import datetime
import importlib
import json
import logging as std_logging
import os
import socketserver
import sys
import threading
import time
import traceback
import uuid
from wsgiref import simple_server

from bdm_guard_lab.nova import protocol

# The nova under test is chosen before nova's services are imported: the
# launcher installs the guard before nova.cmd.compute.main runs.
_MODE = os.environ.get('BDM_GUARD_LAB_NOVA_MODE', 'stock')
INSTALLED = None
if _MODE in ('launcher', 'events'):
    from bdm_guard.nova import guard

    INSTALLED = guard.install(mode='launcher')

import bdm_guard  # noqa: E402
import fixtures  # noqa: E402
import nova.conf  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova import test  # noqa: E402
from nova.tests import fixtures as nova_fixtures  # noqa: E402
from nova.tests.functional.api import client as api_client  # noqa: E402
from nova.tests.functional import fixtures as func_fixtures  # noqa: E402
from nova.tests.functional import integrated_helpers  # noqa: E402

CONF = nova.conf.CONF
LOG = std_logging.getLogger(__name__)

#: In nova's GlanceFixture and in the lab cinder's fake image service.
IMAGE_ID = 'a2459075-d96c-40d5-893e-577ff92e721c'
#: m1.tiny of nova's DefaultFlavorsFixture (1 vCPU, 512 MB).
FLAVOR_ID = '1'
_NAMESPACE = uuid.UUID('6c1f7a52-94f1-5d3e-8b0a-1e2d3c4b5a69')


def request_id(seed, index):
    """The ``X-OpenStack-Request-ID`` of server ``index`` (stable per seed).

    nova keeps it as the global request id of the build and sends it to
    cinder with every call; the fault proxy and the lab's volume driver key
    their draws by it, so a server meets the same faults and durations in
    every arm.
    """
    return 'req-%s' % uuid.uuid5(_NAMESPACE, '%s:%d' % (seed, index))


def compute_host(index, computes):
    """The nova-compute that server ``index`` asks for (str).

    Servers go round the computes, ``lab-compute-<index mod computes>``,
    as a requested destination (``host`` in ``POST /servers``, microversion
    2.74: the scheduler still runs its filters and placement still claims).
    Left to itself, nova's scheduler sends a burst to one or two computes:
    requests scheduled at once all see the hosts as they were before any of
    them (equal weights), and the first host wins each tie. In one seed run
    a compute held 37 of 50 builds, ran 10 at a time (``[DEFAULT]
    max_concurrent_builds``) and queued the rest, in an order that differs
    between arms, so a server's boot time measured the queue, not the
    volume wait. Going round puts at most
    :data:`bdm_guard_lab.arms.nova_mode.BOOTS_PER_COMPUTE` builds on a
    compute and a server on the same compute in every arm.

    :param index: the server's index (int, from 0).
    :param computes: how many computes run (int, at least 1).
    """
    return 'lab-compute-%d' % (index % computes)


def builds_per_process(max_concurrent_builds, computes):
    """``[DEFAULT] max_concurrent_builds`` for the lab's one nova process.

    A cloud runs each nova-compute in a process of its own; the lab runs
    its ``computes`` in one. From nova 34 on native threads, builds run on
    one pool per process (``nova.thread_pool_factory``, ``LONG_TASK``) of
    ``max_concurrent_builds`` threads, where eventlet gave each compute a
    semaphore of that size. Left as shipped, the lab's 7 computes would
    share the 10 threads of one compute: a burst of 50 builds ran 10 at a
    time and queued the rest (39 of 50 in one seed run, each logged as
    "The ... long_task pool does not have free threads"), so a server's
    boot time measured that queue. The lab gives the process what its
    computes would have between them. On eventlet (nova 29 to 33) the
    option also sizes each compute's semaphore, which the lab's servers
    never fill (:func:`compute_host` puts at most
    :data:`bdm_guard_lab.arms.nova_mode.BOOTS_PER_COMPUTE` on each).

    :param max_concurrent_builds: one nova-compute's limit (int; nova's
        default is 10).
    :param computes: how many computes the process runs (int, at least 1).
    :returns: int, ``max_concurrent_builds x computes``.
    """
    return max_concurrent_builds * computes


def _epoch(text):
    if not text:
        return None
    when = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


class ReaderPreferringLock:
    """A reader/writer lock whose readers never wait for a waiting writer.

    nova's ``CellDatabases`` fixture guards its "current cell" with a
    writer-preferring reader/writer lock, and its ``DatabaseWriteLock``
    fixture serialises writers per database with an RLock. On native
    threads, with dozens of builds at once, the two deadlock: a thread
    holding a database's write lock waits for a read lock behind a waiting
    writer, who waits for a reader that waits for that database's write
    lock. nova's own functional tests run a few servers at a time, mostly on
    eventlet, and do not meet it. The lab swaps this lock in for the
    fixture's: a writer here only switches the current cell (it never
    touches a database while holding the lock), so letting readers pass a
    waiting writer breaks the cycle. The fixture's semantics are otherwise
    unchanged; nova's code is not touched.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = None
        self._depth = 0

    @contextlib.contextmanager
    def read_lock(self):
        me = threading.get_ident()
        with self._cond:
            while self._writer not in (None, me):
                self._cond.wait()
            self._readers += 1
        try:
            yield self
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def write_lock(self):
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                while self._writer is not None or self._readers:
                    self._cond.wait()
                self._writer = me
            self._depth += 1
        try:
            yield self
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._writer = None
                self._cond.notify_all()


class _Case(integrated_helpers._IntegratedTestBase):
    """``_IntegratedTestBase`` without CinderFixture, on the lab's cinder."""

    CAST_AS_CALL = False      # builds overlap, as in a real cloud
    ADMIN_API = True          # admins see the faults' details
    microversion = 'latest'
    settings = None
    #: The :class:`bdm_guard_lab.nova.releases.LabRelease` of this nova.
    release = None

    def test_lab(self):
        """Never run: the case only provides the set-up."""

    def setUp(self):
        # _IntegratedTestBase.setUp, minus CinderFixture: nova's real
        # nova.volume.cinder.API sends HTTP to [cinder] endpoint_template.
        test.TestCase.setUp(self)
        settings = self.settings
        self.flags(endpoint_template=settings['endpoint_template'],
                   group='cinder')
        self.flags(api_paste_config=settings['api_paste_config'],
                   group='wsgi')
        self.flags(compute_driver='fake.FakeDriver')
        if settings.get('events_url'):
            # The events arm: the drop-in's waits wake on cinder's
            # notifications, polling as the backstop.
            self.flags(transport_url=settings['events_url'],
                       group='bdm_guard_events',
                       **settings.get('events_options') or {})
        # A burst of 50 servers needs a project quota that allows it (nova's
        # defaults: 10 instances, 20 cores), as any cloud that runs one.
        self.flags(instances=-1, cores=-1, ram=-1, group='quota')
        self.flags(max_concurrent_builds=builds_per_process(
            CONF.max_concurrent_builds, settings['computes']))
        if self.release.response_validation:
            # nova's test configuration fails API responses that break
            # their schema; nova's default (warn) only logs them. A server
            # that failed in the conductor breaks it: keep the lab listing
            # such servers. (nova 29 validates no responses.)
            self.flags(response_validation='warn', group='api')
        self.placement_fixture = self.useFixture(
            func_fixtures.PlacementFixture())
        self.placement = self.placement_fixture.api
        self.neutron = self.useFixture(nova_fixtures.NeutronFixture(self))
        self.glance = self.useFixture(nova_fixtures.GlanceFixture(self))
        self.policy = self.useFixture(nova_fixtures.RealPolicyFixture())
        self.notifier = self.useFixture(
            nova_fixtures.NotificationFixture(self))
        self._setup_services()
        # After OSAPIFixture's own stub: contexts carry the noauth token
        # cinder accepts and the request ids the API middleware read.
        self.useFixture(fixtures.MonkeyPatch(
            'nova.api.auth.NovaKeystoneContext._create_context',
            _lab_context))
        for api in (self.api, self.admin_api):
            api.project_id = settings['project_id']

    def _setup_compute_service(self):
        first = None
        computes = self.settings['computes']
        for index in range(computes):
            compute = self._start_compute(compute_host(index, computes))
            first = first or compute
        return first


def _lab_context(env, **kwargs):
    """``NovaKeystoneContext._create_context`` for the lab.

    As OSAPIFixture's stub, plus ``auth_token='<user>:<project>'`` (cinder's
    noauth token; it rides the context over RPC to conductor and compute)
    and the request ids nova's request-id middleware put in ``env``.
    """
    user_id = env['HTTP_X_AUTH_USER']
    project_id = env['HTTP_X_AUTH_PROJECT_ID']
    roles = env['HTTP_X_ROLES'].split(',')
    extra = {}
    if env.get('openstack.request_id'):
        extra['request_id'] = env['openstack.request_id']
    if env.get('openstack.global_request_id'):
        extra['global_request_id'] = env['openstack.global_request_id']
    return nova_context.RequestContext(
        user_id, project_id, is_admin=(user_id == 'admin'), roles=roles,
        auth_token='%s:%s' % (user_id, project_id), **extra, **kwargs)


class LabNova:
    """The nova child: set-up, the command loop, boots and deletes.

    :param settings: the dict of :class:`bdm_guard_lab.nova.service.
        NovaService` (``endpoint_template``, ``api_paste_config``,
        ``project_id``, ``computes``, ``log_file``, ``debug``).
    :param out: the protocol stream (text, line-buffered).
    :param release: the :class:`bdm_guard_lab.nova.releases.LabRelease` of
        the installed nova.
    """

    def __init__(self, settings, out, release):
        self.settings = settings
        self.out = out
        self.release = release
        self.lock = threading.Lock()
        self.case = None

    def emit(self, event, **fields):
        with self.lock:
            self.out.write(protocol.encode(event, **fields))

    def _log_to_file(self):
        path = self.settings.get('log_file')
        if not path:
            return
        handler = std_logging.FileHandler(path)
        handler.setFormatter(std_logging.Formatter(
            '%(asctime)s %(process)d %(levelname)s %(name)s %(message)s'))
        handler.setLevel(std_logging.DEBUG if self.settings.get('debug')
                         else std_logging.INFO)
        std_logging.getLogger().addHandler(handler)

    def start(self):
        """Start nova's services (the test case's set-up)."""
        _Case.settings = self.settings
        _Case.release = self.release
        if self.release.cell_lock:
            # Before the set-up creates the CellDatabases fixture's lock.
            # (the package nova.tests.fixtures re-exports a name "nova":
            # import the module by its full name).
            module = importlib.import_module('nova.tests.fixtures.nova')
            module.ReaderWriterLock = ReaderPreferringLock
        self.case = _Case('test_lab')
        self.case.setUp()
        self._log_to_file()
        if self.settings.get('api_port'):
            server = self.serve_api(self.settings['api_port'])
            self.case.addCleanup(server.server_close)
            self.case.addCleanup(server.shutdown)
        LOG.info('Lab nova %s up (%s, %s): %d computes, cinder at %s.',
                 self.release.series, _MODE, self.release.concurrency,
                 self.settings['computes'],
                 self.settings['endpoint_template'])

    def serve_api(self, port):
        """Serve nova's compute API on ``127.0.0.1:port`` too (route B).

        The lab's API runs behind ``OSAPIFixture`` on wsgi-intercept,
        which only this process reaches; cinder-volume (another process)
        posts ``os-server-external-events`` to this loopback port. The app
        is loaded as the fixture loads it (its keystone stubs apply), and
        each request that carries no ``X-Auth-User`` is an admin's of the
        lab project: the lab's stand-in for keystone's check of the
        service user cinder's ``[nova]`` section names (``auth_type =
        none`` there). Each request runs on a thread of its own.

        :param port: the TCP port (int).
        :returns: the server (``shutdown()`` stops it).
        """
        from nova.api import wsgi as nova_wsgi

        app = nova_wsgi.Loader().load_app('osapi_compute')
        project = self.settings['project_id']

        def as_admin(environ, start_response):
            environ.setdefault('HTTP_X_AUTH_USER', 'admin')
            environ.setdefault('HTTP_X_AUTH_PROJECT_ID', project)
            environ.setdefault('HTTP_X_ROLES', 'admin,member,reader')
            return app(environ, start_response)

        class Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
            daemon_threads = True

        class Quiet(simple_server.WSGIRequestHandler):
            def log_message(self, *args):
                LOG.debug('nova API (loopback): ' + args[0], *args[1:])

        server = simple_server.make_server('127.0.0.1', port, as_admin,
                                           server_class=Server,
                                           handler_class=Quiet)
        threading.Thread(target=server.serve_forever, name='lab-nova-api',
                         daemon=True).start()
        LOG.info('nova API also on http://127.0.0.1:%d/v2.1.', port)
        return server

    def stop(self):
        if self.case is not None:
            case, self.case = self.case, None
            case.doCleanups()

    def serve(self, commands):
        """Start, then answer commands until ``stop`` or end of input.

        :param commands: a text stream of JSON lines.
        :returns: the process exit status.
        """
        try:
            self.start()
        except Exception as exc:  # reported to the parent
            LOG.exception('Lab nova did not start.')
            # nova's logging fixture keeps the record to itself, and the
            # log file is not set up yet: the traceback goes to stderr.log.
            traceback.print_exc(file=sys.stderr)
            self.emit('error', reason='nova did not start: %s' % exc)
            return 1
        self.emit('ready', mode=_MODE, release=self.release.series,
                  concurrency=self.release.concurrency,
                  guard=(INSTALLED.mode if INSTALLED else None),
                  replaced=(INSTALLED.replaced if INSTALLED else []),
                  bdm_guard=os.path.dirname(os.path.abspath(
                      bdm_guard.__file__)),
                  computes=self.settings['computes'])
        try:
            for line in commands:
                command = json.loads(line)
                name = command.get('cmd')
                if name == 'stop':
                    break
                handler = getattr(self, 'do_%s' % name, None)
                if handler is None:
                    self.emit('error', reason='unknown command %r' % name)
                    continue
                try:
                    handler(**command.get('args', {}))
                except Exception as exc:  # reported
                    LOG.exception('Command %s failed.', name)
                    self.emit('error', reason='%s failed: %s' % (name, exc))
        finally:
            self.stop()
        return 0

    # The commands.

    def _post(self, seed, size_gb, index):
        """``POST /servers`` for server ``index``: ``(name, record)``."""
        name = 'lab-boot-%04d' % index
        rid = request_id(seed, index)
        body = {'server': {
            'name': name, 'imageRef': '', 'flavorRef': FLAVOR_ID,
            'networks': 'none',
            'host': compute_host(index, self.settings['computes']),
            'block_device_mapping_v2': [{
                'source_type': 'image', 'destination_type': 'volume',
                'boot_index': 0, 'volume_size': size_gb,
                'delete_on_termination': True, 'uuid': IMAGE_ID}]}}
        started = time.time()
        try:
            server = self.case.api.api_post(
                '/servers', body,
                headers={'X-OpenStack-Request-ID': rid}).body['server']
        except api_client.OpenStackApiException as exc:
            return name, {'name': name, 'request_id': rid,
                          'posted_at': started, 'id': None,
                          'post_error': str(exc)}
        return name, {'name': name, 'request_id': rid,
                      'posted_at': started, 'id': server['id']}

    def do_boot(self, servers, seed, size_gb, settle_timeout=900.0,
                post_workers=4, poll_seconds=5.0):
        """Boot ``servers`` servers from the image onto new volumes.

        One ``POST /servers`` per server (``lab-boot-<n>``), sent at once
        from ``post_workers`` threads, each with block_device_mapping_v2
        ``source_type=image, destination_type=volume,
        delete_on_termination=true, boot_index=0``; then ``GET
        /servers/detail`` every ``poll_seconds`` until every server is
        ACTIVE or ERROR or ``settle_timeout`` seconds have passed. The poll
        is slow on purpose: a detailed list of every server costs nova's
        one process CPU that its computes need during the burst (each
        boot's ACTIVE time is nova's ``launched_at``, not the poll's).

        Emits ``progress`` events and a ``booted`` event with one record
        per server (see :func:`_record`).
        """
        api = self.case.api
        posted = {}

        def post(index):
            return self._post(seed, size_gb, index)

        self.emit('progress', phase='posting', done=0, failed=0)
        with concurrent.futures.ThreadPoolExecutor(post_workers) as pool:
            for name, record in pool.map(post, range(servers)):
                posted[name] = record
        by_id = {r['id']: r for r in posted.values() if r['id']}
        deadline = time.monotonic() + settle_timeout
        last = None
        while True:
            found = {s['id']: s for s in api.get_servers(detail=True)}
            now = time.time()
            for server_id, record in by_id.items():
                server = found.get(server_id)
                if server is None:
                    continue
                record['status'] = server['status']
                if server['status'] == 'ACTIVE' and 'active_at' not in record:
                    record['active_at'] = (
                        _epoch(server.get('OS-SRV-USG:launched_at')) or now)
            done = sum(1 for r in by_id.values()
                       if r.get('status') in ('ACTIVE', 'ERROR'))
            failed = sum(1 for r in posted.values()
                         if r.get('status') == 'ERROR' or not r['id'])
            state = (done, failed)
            if state != last:
                self.emit('progress', phase='booting', done=done,
                          failed=failed)
                last = state
            if done == len(by_id) or time.monotonic() > deadline:
                break
            time.sleep(poll_seconds)
        records = []
        for name in sorted(posted):
            record = posted[name]
            if record['id']:
                record.update(_record(api.get_server(record['id'])))
            records.append(record)
        self.emit('booted', servers=records)

    def do_delete(self, timeout=300.0, poll_seconds=0.5, delete_workers=4):
        """Delete every server and wait until nova has none left.

        The ``DELETE /servers/<id>`` calls go out from ``delete_workers``
        threads, as the boots' POSTs do: each call waits on nova's API while
        the computes are busy terminating, and sent one at a time they kept
        the last servers' deletes queued behind the first ones'.

        Emits a ``deleted`` event: ``{"remaining": [ids], "errors":
        [...]}``.
        """
        api = self.case.api
        servers = api.get_servers(detail=False)

        def delete(server):
            try:
                api.delete_server(server['id'])
            except api_client.OpenStackApiException as exc:
                return '%s: %s' % (server['id'], exc)
            return None

        with concurrent.futures.ThreadPoolExecutor(delete_workers) as pool:
            errors = [e for e in pool.map(delete, servers) if e]
        deadline = time.monotonic() + timeout
        remaining = servers
        while remaining and time.monotonic() < deadline:
            time.sleep(poll_seconds)
            remaining = api.get_servers(detail=False)
            self.emit('progress', phase='deleting',
                      done=len(servers) - len(remaining), failed=0)
        self.emit('deleted', remaining=[s['id'] for s in remaining],
                  errors=errors)


def _record(server):
    """What the parent needs of one server from ``GET /servers/<id>``."""
    fault = server.get('fault') or {}
    volumes = [v['id'] for v in
               server.get('os-extended-volumes:volumes_attached', [])]
    return {
        'status': server['status'],
        'host': server.get('OS-EXT-SRV-ATTR:host'),
        'fault_message': fault.get('message'),
        'fault_details': (fault.get('details') or '')[-4000:],
        'volumes': volumes,
    }
