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

"""Real nova on loopback, as a fixture: one child process per nova.

:class:`NovaService` starts :mod:`bdm_guard_lab.nova.server` (nova's API,
conductor, scheduler and computes on nova's functional framework, with real
HTTP to cinder) and drives it over the JSON-lines protocol of
:mod:`bdm_guard_lab.nova.protocol`. One nova per process: nova's ``CONF``,
its globals and the nova package itself (the ``patched`` arm runs another
copy) differ from one arm to the next. The child runs nova 34 in this
interpreter by default, or another interpreter's nova (``python``: ``tox
-e nova-compat`` boots each release's nova virtualenv this way, while cinder
and the fault proxy stay here).
"""

import importlib.util
import os
import queue
import subprocess
import sys
import threading
import time

import fixtures
from oslo_log import log as logging

from bdm_guard_lab import exception
from bdm_guard_lab.nova import protocol
from bdm_guard_lab import process

LOG = logging.getLogger(__name__)

#: The arms: which nova runs.
MODES = ('stock', 'launcher', 'patched', 'events', 'route-b')


def nova_etc_dir():
    """Where pip put nova's ``api-paste.ini`` (``<prefix>/etc/nova``).

    :returns: the directory (str).
    :raises bdm_guard_lab.exception.LabError: nova or the file is missing.
    """
    spec = importlib.util.find_spec('nova')
    if spec is None:
        raise exception.LabError(reason='nova is not installed; install '
                                        'bdm-guard[lab]')
    candidates = [os.path.join(sys.prefix, 'etc', 'nova'),
                  os.path.join(os.path.dirname(spec.origin), '..', '..', '..',
                               '..', 'etc', 'nova')]
    for path in candidates:
        if os.path.exists(os.path.join(path, 'api-paste.ini')):
            return os.path.abspath(path)
    raise exception.LabError(reason='nova api-paste.ini not found in %s' %
                             ', '.join(candidates))


class NovaService(fixtures.Fixture):
    """nova's services in a child process, talking to cinder over HTTP.

    :param endpoint_template: nova's ``[cinder] endpoint_template``, e.g.
        ``http://127.0.0.1:<proxy port>/v3/%(project_id)s``.
    :param project_id: the project the lab's servers (and so their volumes)
        belong to.
    :param mode: ``stock``, ``launcher`` (bdm-guard installed as
        ``bdm-guard-nova-compute`` installs it), ``patched`` or
        ``route-b`` (give ``nova_path``; ``route-b`` also gives
        ``api_port``) or ``events`` (the launcher, with
        ``[bdm_guard_events] transport_url`` set to ``events_url``).
    :param events_url: the broker cinder sends its notifications to (the
        ``events`` mode), or None.
    :param events_options: more ``[bdm_guard_events]`` options of the
        ``events`` mode (name -> value, e.g. a relayed host's
        :meth:`bdm_guard_lab.relay.Relays.host_options`), or None.
    :param computes: nova-compute services to start (fake virt driver).
    :param nova_path: a folder put first on the child's ``PYTHONPATH`` whose
        ``nova`` package replaces the installed one, or None.
    :param api_port: also serve nova's compute API on this loopback port
        (route B: cinder-volume posts its events there), or None.
    :param debug: log nova at DEBUG.
    :param start_timeout: seconds to wait for nova to start.
    :param python: the child's interpreter; None: this one
        (``sys.executable``), with this checkout's ``bdm_guard_lab`` on its
        path. Another interpreter runs its own nova (any release of
        :data:`bdm_guard_lab.nova.releases.RELEASES`) and its own installed
        bdm-guard (``bdm_guard`` and ``bdm_guard_lab``, as the wheel
        installs them), plus nova's functional framework (the
        ``lab-nova`` extra: placement, wsgi-intercept, ...).

    After ``setUp``: :attr:`ready` (the child's ``ready`` event: ``mode``,
    ``release``, ``concurrency``, ``guard``, ``replaced``, ``bdm_guard``
    (the folder of the child's ``bdm_guard``), ``computes``),
    :attr:`log_file`. With
    ``BDM_GUARD_LAB_LOG_DIR`` set, ``nova.log`` and ``stderr.log`` are
    copied to ``$BDM_GUARD_LAB_LOG_DIR/nova-<mode>-<time>-*/`` on cleanup.

    :raises bdm_guard_lab.exception.LabError: nova did not start.
    """

    def __init__(self, endpoint_template, project_id, *, mode='stock',
                 computes=1, nova_path=None, debug=False,
                 start_timeout=240.0, events_url=None, python=None,
                 events_options=None, api_port=None):
        super().__init__()
        if mode not in MODES:
            raise ValueError('mode must be one of %s' % (MODES,))
        self.endpoint_template = endpoint_template
        self.project_id = project_id
        self.mode = mode
        self.computes = computes
        self.nova_path = nova_path
        self.events_url = events_url
        self.events_options = dict(events_options or {})
        self.api_port = api_port
        self.debug = debug
        self.start_timeout = start_timeout
        self.python = python
        self.process = None
        self.ready = None
        self._events = queue.Queue()

    def _setUp(self):
        state = self.useFixture(fixtures.TempDir()).path
        self.state_dir = state
        self.addCleanup(process.keep_logs, state,
                        ('nova.log', 'stderr.log'), 'nova-%s' % self.mode)
        self.log_file = os.path.join(state, 'nova.log')
        # The child finds its nova's api-paste.ini: its nova may not be
        # this interpreter's.
        settings = {'endpoint_template': self.endpoint_template,
                    'api_paste_config': None,
                    'project_id': self.project_id,
                    'computes': self.computes, 'log_file': self.log_file,
                    'debug': self.debug, 'events_url': self.events_url,
                    'events_options': self.events_options,
                    'api_port': self.api_port}
        env = dict(os.environ)
        # The child applies its release's concurrency model itself
        # (bdm_guard_lab.nova.releases), setting or clearing
        # OS_NOVA_DISABLE_EVENTLET_PATCHING for nova's test package.
        env.pop('OS_NOVA_DISABLE_EVENTLET_PATCHING', None)
        env['BDM_GUARD_LAB_NOVA_MODE'] = self.mode
        for name in ('OS_TEST_TIMEOUT', 'OS_STDOUT_CAPTURE',
                     'OS_STDERR_CAPTURE', 'OS_LOG_CAPTURE'):
            env.pop(name, None)
        env['OS_DEBUG'] = '1' if self.debug else '0'
        # A release venv's child imports the lab from its own layer.
        paths = [self.nova_path]
        if self.python is None:
            paths.append(process.SOURCE_ROOT)
        self.process = process.start_child(
            'bdm_guard_lab.nova.server', state, settings,
            python=self.python, paths=paths, env=env,
            stdin=subprocess.PIPE, cwd=state)
        self.addCleanup(self.stop)
        reader = threading.Thread(target=self._read, name='lab-nova-reader',
                                  daemon=True)
        reader.start()
        self.ready = self._wait_for('ready', self.start_timeout)
        LOG.info('nova %s (%s, %s) is up with %d computes (log %s).',
                 self.ready.get('release'), self.mode,
                 self.ready.get('concurrency'), self.computes, self.log_file)

    def _read(self):
        for line in self.process.stdout:
            try:
                self._events.put(protocol.decode(line))
            except ValueError:
                LOG.debug('lab nova: %s', line.rstrip())
        self._events.put(None)

    def _wait_for(self, answer, timeout, progress=None):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                event = self._events.get(timeout=max(0.0, left))
            except queue.Empty:
                event = {'event': 'error', 'reason': 'no %s within %.0f s' % (
                    answer, timeout)}
            if event is None:
                event = {'event': 'error', 'reason': self._exited()}
            if event['event'] == answer:
                return event
            if event['event'] == 'progress':
                if progress:
                    progress(event)
                continue
            raise exception.LabError(reason='lab nova: %s; see %s and %s' % (
                event.get('reason'), self.log_file,
                os.path.join(self.state_dir, 'stderr.log')))

    def _exited(self):
        """Why the child's output ended: its status, stderr's last line."""
        try:
            status = self.process.wait(10)
        except subprocess.TimeoutExpired:
            status = None
        last = ''
        try:
            with open(os.path.join(self.state_dir, 'stderr.log'),
                      errors='replace') as stream:
                lines = [line.strip() for line in stream if line.strip()]
            last = lines[-1][:300] if lines else ''
        except OSError:
            pass
        return 'nova exited (status %s)%s' % (status,
                                              ': %s' % last if last else '')

    def _call(self, name, answer, answer_within, progress=None, **args):
        self.process.stdin.write(protocol.command(name, **args))
        self.process.stdin.flush()
        return self._wait_for(answer, answer_within, progress)

    def boot(self, servers, seed, size_gb, *, settle_timeout=900.0,
             progress=None):
        """Boot ``servers`` servers at once and wait for them to settle.

        See :meth:`bdm_guard_lab.nova.harness.LabNova.do_boot`.

        :param servers: int.
        :param seed: the scenario seed (the servers' request ids).
        :param size_gb: each volume's size, GiB.
        :param settle_timeout: seconds until every server is ACTIVE or
            ERROR, after which the others are reported as they are.
        :param progress: ``progress(event)`` for each progress event
            (``phase``, ``done``, ``failed``).
        :returns: one dict per server: ``name``, ``id``, ``request_id``,
            ``posted_at`` and ``active_at`` (epoch seconds), ``status``,
            ``host``, ``fault_message``, ``fault_details``, ``volumes``
            (attached volume ids), ``post_error``.
        :raises bdm_guard_lab.exception.LabError: nova failed or exited.
        """
        event = self._call('boot', 'booted', settle_timeout + 300,
                           progress, servers=servers, seed=seed,
                           size_gb=size_gb, settle_timeout=settle_timeout)
        return event['servers']

    def delete_all(self, *, timeout=300.0, progress=None):
        """Delete every server; wait until nova lists none.

        :returns: ``{"remaining": [server ids], "errors": [str]}``.
        :raises bdm_guard_lab.exception.LabError: nova failed or exited.
        """
        event = self._call('delete', 'deleted', timeout + 60, progress,
                           timeout=timeout)
        return {'remaining': event['remaining'], 'errors': event['errors']}

    def stop(self):
        """Stop the nova process (``stop``, then SIGTERM/SIGKILL)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        try:
            proc.stdin.write(protocol.command('stop'))
            proc.stdin.close()
            proc.wait(30)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        process.stop_process(proc)
        proc.stdout.close()
