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

"""``bdm-guard-relay`` instances against the lab's RabbitMQ: a fixture.

Each instance is its own process (``bdm_guard.relay.main`` with a config
file written here), as on a controller, so that the fault tests kill
(SIGKILL), freeze (SIGSTOP) and restart a real one. The events arm and
the functional tests start them with::

    relays = self.useFixture(relay.Relays(rabbit, count=2))
    relays.configure(conf)          # a ConfigOpts of the waiting side
    # or, for a nova.conf the arm writes:
    section = relays.host_options()  # {'route': 'relay', ...}
"""

import os
import signal
import subprocess
import sys
import time
import uuid

import fixtures
from oslo_log import log as logging

from bdm_guard_lab import exception
from bdm_guard_lab import process

LOG = logging.getLogger(__name__)

_MAIN = 'import sys; from bdm_guard import relay; sys.exit(relay.main())'


class Relays(fixtures.Fixture):
    """``count`` relay processes sharing one pool on the lab's broker.

    :param rabbit: a set-up :class:`bdm_guard_lab.broker.RabbitMQ`.
    :param count: instances to start.
    :param pool: the shared pool (default: a new ``bdm_guard_relay-<hex>``).
    :param options: more ``[bdm_guard_events]`` options (name -> value).
    :param start_timeout: seconds to wait for each instance to consume.

    After ``setUp``: ``pool``, ``procs`` (one ``Popen`` or None per
    instance), ``conf_file``.
    """

    def __init__(self, rabbit, count=2, pool=None, options=None,
                 start_timeout=60.0):
        super().__init__()
        self.rabbit = rabbit
        self.count = count
        self.pool = pool or 'bdm_guard_relay-%s' % uuid.uuid4().hex[:8]
        self.options = dict(options or {})
        self.start_timeout = start_timeout
        self.procs = []

    def _setUp(self):
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.conf_file = os.path.join(self.dir, 'relay.conf')
        lines = ['[bdm_guard_events]',
                 'transport_url = %s' % self.rabbit.url,
                 'relay_pool = %s' % self.pool]
        lines += ['%s = %s' % item for item in sorted(self.options.items())]
        with open(self.conf_file, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        self.addCleanup(self.stop_all)
        self.procs = [None] * self.count
        for index in range(self.count):
            self.start(index)

    def start(self, index):
        """Start instance ``index`` (again) and wait until it consumes."""
        before = self.consumers()
        log = open(os.path.join(self.dir, 'relay-%d.log' % index), 'a')
        self.procs[index] = subprocess.Popen(
            [sys.executable, '-c', _MAIN, '--config-file', self.conf_file],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        end = time.monotonic() + self.start_timeout
        while self.consumers() <= before:
            if self.procs[index].poll() is not None or (
                    time.monotonic() > end):
                raise exception.LabError(
                    reason='relay %d did not start; see %s' % (
                        index, self.dir))
            time.sleep(0.2)
        LOG.info('Relay %d (pid %d) consumes pool %s.', index,
                 self.procs[index].pid, self.pool)

    def host_options(self, host=None):
        """The ``[bdm_guard_events]`` options of a relayed host (str).

        :param host: the host's name in the route (default: the machine's
            host name; two processes waiting on one machine need two).
        :returns: ``{option: value}``, besides ``transport_url``.
        """
        options = {'route': 'relay', 'relay_pool': self.pool}
        for name in ('relay_exchange', 'relay_topic', 'exchange', 'topic'):
            if name in self.options:
                options[name] = self.options[name]
        if host:
            options['host'] = host
        return options

    def configure(self, conf, host=None):
        """Set :meth:`host_options` (and the broker's URL) on ``conf``."""
        conf.set_override('transport_url', self.rabbit.url,
                          'bdm_guard_events')
        for name, value in self.host_options(host).items():
            conf.set_override(name, value, 'bdm_guard_events')

    def consumers(self):
        """Consumers of the shared pool on the broker (0: no queue)."""
        out = self.rabbit.ctl('list_queues', '-q', '--no-table-headers',
                              'name', 'consumers')
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == self.pool:
                return int(parts[1])
        return 0

    def kill(self, index):
        """SIGKILL instance ``index`` (its unacked messages go back)."""
        proc, self.procs[index] = self.procs[index], None
        if proc is not None:
            proc.kill()
            proc.wait(10)

    def pause(self, index):
        """SIGSTOP instance ``index``: connected, consuming nothing."""
        self.procs[index].send_signal(signal.SIGSTOP)

    def resume(self, index):
        """SIGCONT instance ``index``."""
        self.procs[index].send_signal(signal.SIGCONT)

    def stop_all(self):
        for index, proc in enumerate(self.procs):
            if proc is not None:
                proc.send_signal(signal.SIGCONT)
                process.stop_process(proc, timeout=10)
                self.procs[index] = None
