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

"""Real MariaDB for the functional tests: a 3-node Galera cluster on loopback
and an async primary/replica pair, started and stopped by fixtures.

The cluster itself lives in :mod:`bdm_guard_lab.db.galera_cluster` (the demo
uses it too); this module adds the test switch and the replication pair. System
packages (bindep profile ``functional``): mariadb-server, galera-4, rsync
(the SST method), iproute2 (``ss``, used by the SST script) and haproxy. Set
``BDM_GUARD_SKIP_DB=1`` to skip these tests; otherwise a missing binary is a
failure, so that CI never passes without running them. Recipe:
``doc/source/admin/database.rst``.
"""

import os
import unittest

import fixtures

from bdm_guard_lab.db import galera_cluster
from bdm_guard_lab.db import mariadb
from bdm_guard_lab import process

SKIP_ENV = 'BDM_GUARD_SKIP_DB'
DATABASE = mariadb.DATABASE
USER = mariadb.USER
PASSWORD = mariadb.PASSWORD
PACKAGES = mariadb.PACKAGES
MariaDBServer = mariadb.MariaDBServer
binary = mariadb.binary
free_ports = process.free_ports
wait_until = mariadb.wait_until


def skip_unless_enabled():
    """Raise unittest.SkipTest when ``BDM_GUARD_SKIP_DB=1``."""
    if os.environ.get(SKIP_ENV) == '1':
        raise unittest.SkipTest('%s=1: real MariaDB/Galera tests skipped'
                                % SKIP_ENV)


class GaleraCluster(galera_cluster.GaleraCluster):
    """The lab's Galera cluster, skipped on request (``BDM_GUARD_SKIP_DB``).

    See :class:`bdm_guard_lab.db.galera_cluster.GaleraCluster`.
    """

    def _setUp(self):
        skip_unless_enabled()
        super()._setUp()


class ReplicationPair(fixtures.Fixture):
    """An async MariaDB primary and a replica (GTID), delay on demand."""

    def _setUp(self):
        skip_unless_enabled()
        basedir = self.useFixture(fixtures.TempDir()).path
        template = mariadb.make_template(basedir)
        ports = process.free_ports(2)
        self.primary, self.replica = (
            mariadb.MariaDBServer(basedir, name, template, {
                'port': port, 'server_id': i + 1, 'log_bin': 'binlog',
                'binlog_format': 'ROW', 'relay_log': 'relay'})
            for i, (name, port) in enumerate(zip(('primary', 'replica'),
                                                 ports)))
        for server in (self.primary, self.replica):
            self.useFixture(server)
        for server in (self.primary, self.replica):
            server.wait_connectable()
            mariadb.create_user(server, binlog=False)
        self.primary.query('CREATE DATABASE %s' % DATABASE)
        self.replica.query(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, "
            "MASTER_USER='%s', MASTER_PASSWORD='%s', "
            "MASTER_USE_GTID=slave_pos" % (self.primary.port, USER, PASSWORD),
            'START SLAVE')
        self.wait_caught_up()

    def wait_caught_up(self, timeout=60.0):
        """Wait until the replica has applied every primary transaction."""
        pos = self.primary.query('SELECT @@GLOBAL.gtid_binlog_pos')[0][0]
        mariadb.wait_until(lambda: self.replica.query(
            "SELECT MASTER_GTID_WAIT('%s', 1)" % pos)[0][0] == 0,
            timeout, 'the replica to reach GTID %s' % pos)

    def set_delay(self, seconds):
        """Delay the replica's apply by ``seconds`` (``MASTER_DELAY``).

        Each event is applied ``seconds`` after the primary wrote it; 0
        removes the delay.
        """
        self.replica.query('STOP SLAVE',
                           'CHANGE MASTER TO MASTER_DELAY=%d' % seconds,
                           'START SLAVE')
