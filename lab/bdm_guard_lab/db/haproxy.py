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

"""A real haproxy on loopback in front of TCP backends (Galera nodes).

Debian's haproxy 2.6 runs as whatever user starts it: the generated
configuration has no ``user``, ``chroot`` or privileged port, and the
process stays in the foreground (``-db``) as a child of the fixture. Like a
database VIP of an OpenStack control plane, it balances TCP connections
``roundrobin`` over the nodes (``doc/source/contributor/lab-recipes.rst``,
"Real haproxy").
"""

import os
import socket
import subprocess

import fixtures
from oslo_log import log as logging

from bdm_guard_lab.db import mariadb
from bdm_guard_lab import exception
from bdm_guard_lab import process

LOG = logging.getLogger(__name__)

#: Long idle timeouts: oslo.db keeps pooled connections for an hour
#: (``[database] connection_recycle_time``).
CONFIG = """\
global
    maxconn 2000

defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h

listen %(name)s
    bind 127.0.0.1:%(port)d
    balance %(balance)s
%(servers)s
"""


def render(name, port, backends, balance='roundrobin', backup_after=None):
    """The haproxy.cfg text.

    :param name: the ``listen`` section's name.
    :param port: the loopback port to listen on.
    :param backends: ``[(server_name, port)]`` on 127.0.0.1.
    :param balance: haproxy's ``balance`` algorithm.
    :param backup_after: mark every backend after the first
        ``backup_after`` ones ``backup`` (haproxy uses them only when no
        other is up), or None for none. ``1`` is a single writer, as
        kolla-ansible deploys Galera.
    :returns: str.
    """
    servers = '\n'.join(
        '    server %s 127.0.0.1:%d check inter 1s%s' % (
            backend + (' backup' if backup_after is not None
                       and i >= backup_after else '',))
        for i, backend in enumerate(backends))
    return CONFIG % {'name': name, 'port': port, 'balance': balance,
                     'servers': servers}


class Haproxy(fixtures.Fixture):
    """haproxy in TCP mode on a free loopback port.

    :param backends: ``[(server_name, port)]`` on 127.0.0.1.
    :param balance: ``roundrobin`` (default), ``source``...
    :param name: the listen section's name.
    :param backup_after: see :func:`render`.

    After ``setUp``: ``port``, ``config_file``.
    :raises bdm_guard_lab.exception.LabError: haproxy is not installed, or did
        not listen within 10 s.
    """

    def __init__(self, backends, balance='roundrobin', name='galera',
                 backup_after=None):
        super().__init__()
        self.backends = list(backends)
        self.balance = balance
        self.name = name
        self.backup_after = backup_after
        self.proc = None

    def _setUp(self):
        path = mariadb.binary('haproxy')
        folder = self.useFixture(fixtures.TempDir()).path
        self.port = process.free_ports(1)[0]
        self.config_file = os.path.join(folder, 'haproxy.cfg')
        with open(self.config_file, 'w') as cfg:
            cfg.write(render(self.name, self.port, self.backends,
                             self.balance, self.backup_after))
        self.log_file = os.path.join(folder, 'haproxy.log')
        with open(self.log_file, 'w') as log:
            self.proc = subprocess.Popen(
                [path, '-db', '-f', self.config_file],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        self.addCleanup(self.stop)
        mariadb.wait_until(self._listening, 10.0, 'haproxy to listen',
                           errors=(OSError,))
        LOG.info('haproxy (%s%s) on 127.0.0.1:%d in front of %s.',
                 self.balance, '' if self.backup_after is None else
                 ', backups after %d' % self.backup_after, self.port,
                 ', '.join('%s:%d' % b for b in self.backends))

    def _listening(self):
        if self.proc.poll() is not None:
            with open(self.log_file) as log:
                raise exception.LabError(reason='haproxy exited with %s: %s'
                                         % (self.proc.returncode,
                                            log.read()[-1000:]))
        with socket.create_connection(('127.0.0.1', self.port), 1):
            return True

    def stop(self):
        """Stop haproxy (SIGTERM, SIGKILL after 10 s)."""
        proc, self.proc = self.proc, None
        process.stop_process(proc)


def galera_haproxy(cluster, balance='roundrobin', single_writer=False):
    """A :class:`Haproxy` in front of every node of a GaleraCluster.

    :param single_writer: node 1 takes every connection, the others are
        ``backup`` (kolla-ansible's Galera backend).
    """
    return Haproxy([(node.name, node.port) for node in cluster.nodes],
                   balance=balance, backup_after=1 if single_writer else None,
                   name='galera_single' if single_writer else 'galera')
