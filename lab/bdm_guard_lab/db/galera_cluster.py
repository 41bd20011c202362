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

"""A Galera cluster on loopback, with lag on demand.

:class:`GaleraCluster` runs N :class:`~bdm_guard_lab.db.mariadb.MariaDBServer`
nodes (default 3), each with its own datadir, socket and loopback ports
(found free at start), the first one bootstrapping the cluster
(``doc/source/admin/database.rst``). :meth:`GaleraCluster.lag` makes one
node stop applying write-sets, the way a slow node does. Used by
``bdm-guard demo --db galera`` (:mod:`bdm_guard_lab.db.lagging_galera`) and by
the
functional tests.
"""

import contextlib
import threading
import time

import fixtures
from oslo_log import log as logging

from bdm_guard_lab.db import mariadb
from bdm_guard_lab import exception
from bdm_guard_lab import process

LOG = logging.getLogger(__name__)


class GaleraCluster(fixtures.Fixture):
    """Galera nodes on loopback; ``nodes[0]`` bootstrapped the cluster.

    :param size: number of nodes.
    :param database: a database created at start (None: none).

    ``lag(node, seconds)`` makes one node stop applying write-sets for a
    while. :raises bdm_guard_lab.exception.LabError: from ``setUp`` when a
    binary is missing or a node does not join within 90 s.
    """

    def __init__(self, size=3, database=mariadb.DATABASE):
        super().__init__()
        self.size = size
        self.database = database
        self.nodes = []
        self.last_lag = None

    def _setUp(self):
        mariadb.check_installed()
        basedir = self.useFixture(fixtures.TempDir()).path
        template = mariadb.make_template(basedir)
        ports = process.free_ports(4 * self.size)
        gcomm = ','.join('127.0.0.1:%d' % ports[4 * i + 1]
                         for i in range(self.size))
        for i in range(self.size):
            port, gmcast, ist, sst = ports[4 * i:4 * i + 4]
            options = {
                'port': port, 'binlog_format': 'ROW',
                'default_storage_engine': 'InnoDB',
                'innodb_autoinc_lock_mode': 2, 'wsrep_on': 'ON',
                'wsrep_provider': mariadb.GALERA_PROVIDER,
                'wsrep_cluster_name': 'bdm_guard_lab',
                'wsrep_cluster_address': 'gcomm://' + gcomm,
                'wsrep_node_name': 'node%d' % (i + 1),
                'wsrep_node_address': '127.0.0.1:%d' % gmcast,
                'wsrep_node_incoming_address': '127.0.0.1:%d' % port,
                'wsrep_provider_options': '"base_port=%d;gmcast.listen_addr='
                                          'tcp://127.0.0.1:%d;ist.recv_addr='
                                          '127.0.0.1:%d;gcache.size=64M"'
                                          % (gmcast, gmcast, ist),
                'wsrep_sst_method': 'rsync',
                'wsrep_sst_receive_address': '127.0.0.1:%d' % sst}
            args = ['--wsrep-new-cluster'] if i == 0 else []
            node = self.useFixture(mariadb.MariaDBServer(
                basedir, 'node%d' % (i + 1), template, options, args))
            self.nodes.append(node)
            self.wait_synced(node, i + 1)
            if i == 0:
                mariadb.create_user(node)
                if self.database:
                    self.create_database(self.database)
        for node in self.nodes:
            self.wait_synced(node, self.size)
        LOG.info('Galera cluster of %d nodes on ports %s.', self.size,
                 ', '.join(str(n.port) for n in self.nodes))

    def create_database(self, name, drop=False):
        """Create database ``name`` through node 1 (``drop``: fresh)."""
        statements = ['DROP DATABASE IF EXISTS %s' % name] if drop else []
        self.nodes[0].query(*statements + ['CREATE DATABASE %s' % name])

    def wait_synced(self, node, size=None, timeout=mariadb.START_TIMEOUT):
        """Wait until ``node`` is Synced in a cluster of ``size`` nodes."""
        size = size or self.size

        def synced():
            node.check_alive()
            status = dict(node.query(
                "SHOW STATUS WHERE Variable_name IN ('wsrep_ready', "
                "'wsrep_cluster_size', 'wsrep_local_state_comment')"))
            return (status.get('wsrep_ready') == 'ON'
                    and status.get('wsrep_local_state_comment') == 'Synced'
                    and int(status.get('wsrep_cluster_size', 0)) >= size)
        mariadb.wait_until(synced, timeout,
                           '%s to be Synced in a cluster of %d'
                           % (node.name, size))

    @contextlib.contextmanager
    def lag(self, node, seconds=None, method='ftwrl'):
        """Stop ``node`` applying write-sets while the block runs.

        In a separate session, ``SET GLOBAL wsrep_desync=ON`` (so that flow
        control does not stall the cluster), then for ``method``:

        * ``ftwrl``: ``FLUSH TABLES WITH READ LOCK``. Reads on the node
          miss new rows, but its own UPDATEs wait for the lock too.
        * ``commit``: ``BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT``. The
          applier cannot commit, so an UPDATE of a new row runs at once and
          matches 0 rows, as in the seed's scheduler failure; the node's own
          commits wait.

        The lock is released (``UNLOCK TABLES`` or ``BACKUP STAGE END``,
        then ``wsrep_desync=OFF``) after ``seconds``, or when the block
        exits if ``seconds`` is None. Leaving the block waits for the
        release and for the node to be Synced again. ``last_lag`` is then
        ``{'node': name, 'start': t0, 'end': t1}``: ``time.monotonic()``
        when the lock was taken and when it was released.

        :raises bdm_guard_lab.exception.LabError: the lock was not taken in 30
            s.
        """
        lock, unlock = {
            'ftwrl': (['FLUSH TABLES WITH READ LOCK'], 'UNLOCK TABLES'),
            'commit': (['BACKUP STAGE START', 'BACKUP STAGE BLOCK_COMMIT'],
                       'BACKUP STAGE END')}[method]
        conn = node.connect()
        locked, release = threading.Event(), threading.Event()
        window = {'node': node.name, 'start': None, 'end': None}

        def hold():
            with conn.cursor() as cur:
                for stmt in ['SET GLOBAL wsrep_desync=ON'] + lock:
                    cur.execute(stmt)
                window['start'] = time.monotonic()
                locked.set()
                release.wait(seconds)
                cur.execute(unlock)
                window['end'] = time.monotonic()
                cur.execute('SET GLOBAL wsrep_desync=OFF')
            conn.close()
        thread = threading.Thread(target=hold, daemon=True)
        thread.start()
        if not locked.wait(30):
            raise exception.LabError(reason='could not lock %s for lag'
                                            % node.name)
        LOG.info('%s lags (%s) for %s.', node.name, method,
                 'the block' if seconds is None else '%.0f s' % seconds)
        try:
            yield
        finally:
            if seconds is None:
                release.set()
            thread.join((seconds or 0) + 30)
            self.last_lag = window
            self.wait_synced(node, self.size)
            LOG.info('%s is Synced again.', node.name)
