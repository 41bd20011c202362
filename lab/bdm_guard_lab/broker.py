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

"""A real RabbitMQ on loopback, for the event path: a fixture.

Debian's ``rabbitmq-server`` (bindep profiles ``functional`` and ``demo``),
run unprivileged from a temporary folder: its own epmd (on its own port,
started here and stopped by pid), a distinct node name, AMQP and Erlang
distribution ports on 127.0.0.1 only, ``guest`` (which RabbitMQ accepts on
loopback only). See ``doc/source/contributor/lab-recipes.rst``,
"Real RabbitMQ for cinder's notifications".
"""

import json
import os
import shutil
import socket
import subprocess
import time

import fixtures
from oslo_log import log as logging

from bdm_guard_lab import exception
from bdm_guard_lab import process

LOG = logging.getLogger(__name__)

SBIN = '/usr/lib/rabbitmq/bin'


def installed():
    """Whether Debian's rabbitmq-server (and epmd) are installed."""
    return (os.path.exists(os.path.join(SBIN, 'rabbitmq-server'))
            and shutil.which('epmd') is not None)


class RabbitMQ(fixtures.Fixture):
    """One RabbitMQ node on 127.0.0.1, started and stopped by the lab.

    :param start_timeout: seconds to wait for AMQP to accept connections.

    After ``setUp``: ``url`` (``rabbit://guest:guest@127.0.0.1:<port>/``),
    ``port``, ``node``.
    """

    def __init__(self, start_timeout=60.0):
        super().__init__()
        self.start_timeout = start_timeout
        self.server = self.epmd = None

    def _setUp(self):
        if not installed():
            raise exception.LabError(
                reason='rabbitmq-server is not installed (bindep profile '
                       '"functional" or "demo": tools/install-bindep.sh)')
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.port, dist, epmd = process.free_ports(3)
        self.node = 'bdmguard%d@localhost' % self.port
        self.env = self._env(dist, epmd)
        self.epmd = subprocess.Popen(
            ['epmd', '-address', '127.0.0.1', '-port', str(epmd)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=self.env)
        self.addCleanup(self._stop_epmd)
        self.start()
        self.addCleanup(self.stop)
        self.url = 'rabbit://guest:guest@127.0.0.1:%d/' % self.port

    def _env(self, dist, epmd):
        env = dict(os.environ)
        home = os.path.join(self.dir, 'home')
        os.makedirs(home)
        with open(os.path.join(self.dir, 'rabbitmq.conf'), 'w') as conf:
            conf.write('listeners.tcp.default = %d\n'
                       'loopback_users.guest = true\n'
                       'log.console = false\n' % self.port)
        with open(os.path.join(self.dir, 'enabled_plugins'), 'w') as f:
            f.write('[].\n')
        env.update({
            'HOME': home,
            'RABBITMQ_NODENAME': self.node,
            'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
            'RABBITMQ_NODE_PORT': str(self.port),
            'RABBITMQ_DIST_PORT': str(dist),
            'ERL_EPMD_ADDRESS': '127.0.0.1',
            'ERL_EPMD_PORT': str(epmd),
            # Loopback only; no scheduler busy-waiting, which burns the
            # CPU cinder and the clients under test need on a small box.
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS':
                '-kernel inet_dist_use_interface {127,0,0,1} '
                '+sbwt none +sbwtdcpu none +sbwtdio none',
            'RABBITMQ_CTL_ERL_ARGS':
                '-kernel inet_dist_use_interface {127,0,0,1}',
            'RABBITMQ_CONFIG_FILE': os.path.join(self.dir, 'rabbitmq'),
            'RABBITMQ_ENABLED_PLUGINS_FILE':
                os.path.join(self.dir, 'enabled_plugins'),
            'RABBITMQ_MNESIA_BASE': os.path.join(self.dir, 'mnesia'),
            'RABBITMQ_LOG_BASE': os.path.join(self.dir, 'log'),
            'RABBITMQ_PID_FILE': os.path.join(self.dir, 'rabbit.pid'),
        })
        return env

    def start(self):
        """Start the node (again) and wait for AMQP."""
        log = open(os.path.join(self.dir, 'server.out'), 'a')
        self.server = subprocess.Popen(
            [os.path.join(SBIN, 'rabbitmq-server')], cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env)
        log.close()
        self._await_amqp()
        LOG.info('RabbitMQ %s is listening on 127.0.0.1:%d.', self.node,
                 self.port)

    def _await_amqp(self):
        end = time.monotonic() + self.start_timeout
        while time.monotonic() < end:
            if self.server.poll() is not None:
                break
            try:
                self.ctl('await_startup', timeout=self.start_timeout)
                return
            except exception.LabError:
                time.sleep(0.5)
        raise exception.LabError(
            reason='RabbitMQ did not start within %.0f s; see %s' % (
                self.start_timeout, os.path.join(self.dir, 'log')))

    def ctl(self, *args, timeout=60.0):
        """Run ``rabbitmqctl -n <node> args``; returns its stdout."""
        done = subprocess.run(
            [os.path.join(SBIN, 'rabbitmqctl'), '-n', self.node] + list(args),
            env=self.env, capture_output=True, text=True, timeout=timeout,
            cwd=self.dir)
        if done.returncode:
            raise exception.LabError(reason='rabbitmqctl %s: %s' % (
                ' '.join(args), (done.stderr or done.stdout).strip()[-300:]))
        return done.stdout

    def stop(self):
        """Stop the node (its epmd stays until cleanup)."""
        proc, self.server = self.server, None
        if proc is None:
            return
        try:
            self.ctl('stop', timeout=60)
        except (exception.LabError, subprocess.TimeoutExpired):
            LOG.warning('rabbitmqctl stop failed; terminating %d.', proc.pid)
        process.stop_process(proc, timeout=20)

    def restart_app(self):
        """Stop and start the RabbitMQ application; the Erlang node stays.

        Connections drop, and transient queues and their messages are
        lost, as in a broker restart.
        """
        self.ctl('stop_app')
        self.ctl('start_app')

    def set_policy(self, name, pattern, definition, apply_to='queues',
                   priority=0):
        """``rabbitmqctl set_policy``."""
        self.ctl('set_policy', '--apply-to', apply_to, '--priority',
                 str(priority), name, pattern, json.dumps(definition))

    def clear_policy(self, name):
        """``rabbitmqctl clear_policy``."""
        self.ctl('clear_policy', name)

    def queues(self):
        """``{queue name: messages ready}``."""
        out = self.ctl('list_queues', '-q', '--no-table-headers', 'name',
                       'messages')
        result = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                result[parts[0]] = int(parts[1])
        return result

    def _stop_epmd(self):
        process.stop_process(self.epmd)

    def reachable(self):
        """Whether the AMQP port accepts a TCP connection."""
        try:
            socket.create_connection(('127.0.0.1', self.port), 1).close()
            return True
        except OSError:
            return False
