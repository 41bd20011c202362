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

"""Real cinder 29 on loopback, as a fixture.

:class:`CinderService` starts :mod:`bdm_guard_lab.cinder.server` in a child
process and waits for its port. Cinder runs there under eventlet (its
default concurrency, monkey-patched); the clients under test run in this
process on plain threads, unpatched. A child also keeps cinder's and nova's
global ``oslo_config.cfg.CONF`` apart: both register options there.

Every volume count the lab reports is read through cinder's own API
(:meth:`CinderService.list_volumes`, ``GET /volumes/detail?all_tenants=1``
straight to cinder, never through the fault proxy).
"""

import importlib.util
import json
import os
import re
import select
import sys

import fixtures
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from oslo_log import log as logging
import requests
import tenacity

from bdm_guard_lab import exception
from bdm_guard_lab import process

LOG = logging.getLogger(__name__)

#: The project every lab volume belongs to (cinder's noauth takes it from
#: the token ``<user>:<project>``).
PROJECT_ID = '89afd400-b646-4bbc-b12b-c0a4d63e5bd3'
USER_ID = 'f1a2b3c4-0000-4000-8000-00000000b0a7'
#: cinder.tests.unit.fake_constants.IMAGE_ID, the 12 MB raw image of cinder's
#: fake image service (see bdm_guard_lab.cinder.images).
IMAGE_ID = 'e79161cd-5f9d-4007-8823-81a807a64332'

#: oslo.db's ``wrap_db_retry`` gave up (``LOG.exception``, one record each).
_RETRY_LIMIT = 'DB exceeded retry limit'
#: A traceback's last line for a Galera write conflict or InnoDB deadlock
#: (error 1213) that reached cinder's code as oslo.db's DBDeadlock (oslo.log
#: prefixes every traceback line with the record's time and level).
_DEADLOCK = re.compile(r'oslo_db\.exception\.DBDeadlock: ')


def count_db_errors(path):
    """Count the database write conflicts in a cinder log.

    :param path: cinder's log file.
    :returns: ``{'db_retry_limit': int, 'db_deadlocks': int}``: records of
        oslo.db's "DB exceeded retry limit" (a DB API call that still
        conflicted after its retries: a ``POST /volumes`` answering 500 or
        a failed step of the create), and DBDeadlock tracebacks logged by
        cinder (each logged failure once); both 0 when the log is missing.
    """
    counts = {'db_retry_limit': 0, 'db_deadlocks': 0}
    try:
        with open(path, errors='replace') as stream:
            for line in stream:
                if _RETRY_LIMIT in line:
                    counts['db_retry_limit'] += 1
                elif _DEADLOCK.search(line):
                    counts['db_deadlocks'] += 1
    except OSError:
        pass
    return counts


def cinder_etc_dir():
    """Where pip put cinder's ``api-paste.ini`` and ``resource_filters.json``.

    The wheel installs them under ``<prefix>/etc/cinder``, not next to the
    source tree where cinder's test harness looks
    (``doc/source/contributor/lab-recipes.rst``).

    :returns: the directory (str).
    :raises bdm_guard_lab.exception.LabError: cinder or its files are missing.
    """
    spec = importlib.util.find_spec('cinder')
    if spec is None:
        raise exception.LabError(reason='cinder is not installed; install '
                                        'bdm-guard[lab]')
    candidates = [os.path.join(sys.prefix, 'etc', 'cinder'),
                  os.path.join(os.path.dirname(spec.origin), '..', '..', '..',
                               '..', 'etc', 'cinder')]
    for path in candidates:
        if os.path.exists(os.path.join(path, 'api-paste.ini')):
            return os.path.abspath(path)
    raise exception.LabError(reason='api-paste.ini not found in %s' %
                             ', '.join(candidates))


class CinderService(fixtures.Fixture):
    """Cinder's API, scheduler and volume manager in a child process.

    :param create_seconds: mean seconds the driver takes per volume.
    :param download_seconds_per_gib: mean seconds per GiB an image-backed
        volume spends in ``downloading``.
    :param create_jitter: spread of each duration (fraction of the mean).
    :param time_scale: factor applied to every duration.
    :param seed: seed of the per-volume durations (drawn per volume name, so
        a boot named the same takes the same time in both arms).
    :param db_connection: an SQLAlchemy URL; default a fresh sqlite file.
        For MySQL/Galera pass a URL to an empty database.
    :param debug: log cinder at DEBUG.
    :param start_timeout: seconds to wait for the API to listen.
    :param capacity_gb: the backend's capacity (GiB) as the scheduler
        sees it; 0: infinite. Larger volumes end in ``error``.
    :param service_requests: treat every request as a service's (cinder's
        ``API.is_service_request``), so that nova can delete in-use
        attachments without a keystone catalog to look nova up in (the
        lab's real nova, :mod:`bdm_guard_lab.nova`).
    :param notification_url: an oslo.messaging transport URL (the lab's
        :class:`bdm_guard_lab.broker.RabbitMQ`): cinder sends its
        notifications there with driver ``messagingv2``; None: none sent.
    :param database_options: more ``[database]`` options of cinder.conf,
        ``{name: value}`` (for example ``{'mysql_wsrep_sync_wait': 3}``),
        or None.
    :param cinder_path: a folder put first on the child's ``PYTHONPATH``
        whose packages replace the installed ones (the ``route-b`` arm's
        patched cinder and novaclient shim,
        :class:`bdm_guard_lab.nova.patched.PatchedCinder`), or None.
    :param nova_endpoint: nova's compute API (``http://127.0.0.1:<port>/
        v2.1``): cinder's ``[nova]`` section points at it with
        ``auth_type = none`` (the lab's nova treats the loopback port's
        requests as admin), for the events cinder sends nova; None: no
        ``[nova]`` section.
    :param policy_rules: cinder policy rules, ``{name: check string}``,
        written to cinder's policy file, or None: cinder's defaults.

    The child's state (logs, database) lives in a temporary folder removed
    on cleanup. With ``BDM_GUARD_LAB_LOG_DIR`` set in the environment, its
    ``cinder.log`` and ``stderr.log`` are first copied to
    ``$BDM_GUARD_LAB_LOG_DIR/cinder-<time>-*/`` (one folder per service, in
    start order), so that a demo or a failed functional test can be read
    later.

    After ``setUp``: ``endpoint`` (``http://127.0.0.1:<port>/v3/<project>``),
    ``base_url``, ``project_id``, ``image_id``, ``log_file``,
    ``read_your_writes`` (the child's cinder carries ``patches/cinder``).
    After ``stop``: :meth:`db_stats`, :meth:`db_errors`.
    """

    def __init__(self, *, create_seconds=2.0, download_seconds_per_gib=0.0,
                 create_jitter=0.5, time_scale=1.0, seed=0,
                 db_connection=None, debug=False, start_timeout=120.0,
                 service_requests=False, capacity_gb=0.0,
                 notification_url=None, database_options=None,
                 cinder_path=None, nova_endpoint=None, policy_rules=None):
        super().__init__()
        self.lab = {'create_seconds': create_seconds,
                    'download_seconds_per_gib': download_seconds_per_gib,
                    'create_jitter': create_jitter,
                    'time_scale': time_scale, 'seed': seed,
                    'capacity_gb': capacity_gb}
        self.db_connection = db_connection
        self.debug = debug
        self.start_timeout = start_timeout
        self.project_id = PROJECT_ID
        self.user_id = USER_ID
        self.image_id = IMAGE_ID
        self.process = None
        self.service_requests = service_requests
        self.notification_url = notification_url
        self.read_your_writes = False
        self.database_options = dict(database_options or {})
        self.cinder_path = cinder_path
        self.nova_endpoint = nova_endpoint
        self.policy_rules = dict(policy_rules or {})
        self.stats_file = None
        self._db_stats = None
        self._db_errors = None

    def _setUp(self):
        state = self.useFixture(fixtures.TempDir()).path
        self.state_dir = state
        self.addCleanup(process.keep_logs, state,
                        ('cinder.log', 'stderr.log'), 'cinder')
        self.log_file = os.path.join(state, 'cinder.log')
        settings = {
            'state_dir': state, 'etc_dir': cinder_etc_dir(),
            'db_connection': self.db_connection or 'sqlite:///%s' %
            os.path.join(state, 'cinder.sqlite'),
            'log_file': self.log_file, 'debug': self.debug, 'lab': self.lab,
            'database_options': self.database_options,
            'stats_file': os.path.join(state, 'db-stats.json'),
            'service_requests': self.service_requests,
            'notification_url': self.notification_url,
            'nova_endpoint': self.nova_endpoint,
            'policy_rules': self.policy_rules}
        self.stats_file = settings['stats_file']
        env = dict(os.environ)
        env.pop('OS_CINDER_DISABLE_EVENTLET_PATCHING', None)
        self.process = process.start_child(
            'bdm_guard_lab.cinder.server', state, settings, env=env,
            paths=(self.cinder_path, process.SOURCE_ROOT))
        self.addCleanup(self.stop)
        ready = self._read_ready()
        port = ready['port']
        self.read_your_writes = bool(ready.get('read_your_writes'))
        self.base_url = 'http://127.0.0.1:%d' % port
        self.endpoint = '%s/v3/%s' % (self.base_url, self.project_id)
        LOG.info('Cinder is listening at %s (log %s).', self.endpoint,
                 self.log_file)

    def _read_ready(self):
        ready, _, _ = select.select([self.process.stdout], [], [],
                                    self.start_timeout)
        line = self.process.stdout.readline() if ready else ''
        if not line:
            self.stop()
            raise exception.LabError(
                reason='cinder did not start within %.0f s; see %s and %s' % (
                    self.start_timeout, self.log_file,
                    os.path.join(self.state_dir, 'stderr.log')))
        return json.loads(line)

    def stop(self):
        """Stop the cinder process (SIGTERM, then SIGKILL after 10 s)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        try:
            process.stop_process(proc)
        finally:
            proc.stdout.close()
            # Read now: the state folder goes away with the fixture.
            self._db_stats = self._read_stats()
            self._db_errors = count_db_errors(self.log_file)

    def db_stats(self):
        """The re-read counters the child wrote when it stopped.

        :returns: a dict (:class:`bdm_guard.db.Stats` fields) for a cinder
            carrying ``patches/cinder``; None for a stock cinder or before
            the child has stopped.
        """
        return self._db_stats

    def db_errors(self):
        """The write conflicts in this cinder's log (:func:`count_db_errors`).

        :returns: a dict, or None before the child has stopped.
        """
        return self._db_errors

    def _read_stats(self):
        try:
            with open(self.stats_file) as stream:
                return json.load(stream)
        except (OSError, TypeError, ValueError):
            return None

    def token(self, project_id=None):
        """The noauth token ``<user>:<project>``."""
        return '%s:%s' % (self.user_id, project_id or self.project_id)

    def session(self, endpoint=None, project_id=None):
        """A keystoneauth Session authenticated with the noauth token.

        :param endpoint: the endpoint the auth plugin reports (for example
            the fault proxy's); default cinder's own.
        :param project_id: another project, for isolation tests.
        :returns: a :class:`keystoneauth1.session.Session`.
        """
        project = project_id or self.project_id
        endpoint = endpoint or '%s/v3/%s' % (self.base_url, project)
        auth = token_endpoint.Token(endpoint, self.token(project))
        return ks_session.Session(auth=auth)

    def list_volumes(self):
        """Every volume in cinder, all projects, straight from its API.

        ``GET /v3/<project>/volumes/detail?all_tenants=1`` (noauth contexts
        are admin), following ``volumes_links`` pages.

        :returns: a list of volume dicts.
        :raises requests.HTTPError: cinder answered an error.
        """
        url = '%s/volumes/detail?all_tenants=1&limit=1000' % self.endpoint
        headers = {'X-Auth-Token': self.token(), 'Accept': 'application/json'}
        volumes = []
        while url:
            resp = requests.get(url, headers=headers, timeout=60)
            resp.raise_for_status()
            body = resp.json()
            volumes.extend(body.get('volumes', []))
            links = [link['href'] for link in body.get('volumes_links', [])
                     if link.get('rel') == 'next']
            url = links[0] if links else None
        return volumes

    def wait_settled(self, timeout=120.0, pending=('creating', 'downloading',
                                                   'deleting'), ignore=()):
        """Wait until no volume is in a transitional status.

        :param timeout: seconds.
        :param pending: the transitional statuses.
        :param ignore: volume ids neither waited for nor returned (what an
            earlier run on this cinder left).
        :returns: the final list of volumes.
        """
        def listed():
            return [v for v in self.list_volumes() if v['id'] not in ignore]

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(
                lambda vols: any(v['status'] in pending for v in vols)),
            wait=tenacity.wait_fixed(0.5),
            stop=tenacity.stop_after_delay(timeout),
            retry_error_callback=lambda state: state.outcome.result())
        return retrying(listed)
