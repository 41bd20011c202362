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

System packages (bindep profile ``functional``): mariadb-server, galera-4,
rsync (the SST method) and iproute2 (``ss``, used by the SST script). Set
``BDM_GUARD_SKIP_DB=1`` to skip these tests; otherwise a missing binary is a
failure, so that CI never passes without running them. Every node has its
own datadir, socket and loopback ports (found free at start), runs as user
``mysql`` when the tests run as root, and is stopped (TERM, then KILL) by its
fixture's cleanup. Recipe: ``doc/source/admin/database.rst``.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

import fixtures
import pymysql
import tenacity

SKIP_ENV = 'BDM_GUARD_SKIP_DB'
DATABASE = 'bdm_guard_test'
USER = PASSWORD = 'bdm'
GALERA_PROVIDER = '/usr/lib/galera/libgalera_smm.so'
START_TIMEOUT = 90.0
PACKAGES = 'mariadb-server galera-4 rsync iproute2'


def skip_unless_enabled():
    """Raise unittest.SkipTest when ``BDM_GUARD_SKIP_DB=1``."""
    if os.environ.get(SKIP_ENV) == '1':
        raise unittest.SkipTest('%s=1: real MariaDB/Galera tests skipped'
                                % SKIP_ENV)


def binary(name):
    path = shutil.which(name, path=os.environ.get('PATH', '') +
                        ':/usr/sbin:/usr/bin')
    if path is None:
        raise RuntimeError('%s not found: install the bindep "functional" '
                           'profile (%s), or set %s=1 to skip the DB tests.'
                           % (name, PACKAGES, SKIP_ENV))
    return path


def free_ports(count):
    """Return ``count`` distinct free TCP ports on 127.0.0.1."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(('127.0.0.1', 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def wait_until(predicate, timeout, what):
    """Poll predicate() every 0.2 s until true; RuntimeError after timeout."""
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(0.2),
        retry=(tenacity.retry_if_result(lambda ok: not ok)
               | tenacity.retry_if_exception_type(pymysql.err.MySQLError)),
        retry_error_callback=lambda state: False)
    if not retrying(predicate):
        raise RuntimeError('Timed out after %.0f s waiting for %s'
                           % (timeout, what))


class MariaDBServer(fixtures.Fixture):
    """One mariadbd on loopback, with its own datadir, socket and port."""

    def __init__(self, basedir, name, template, options, args=()):
        super().__init__()
        self.dir = os.path.join(basedir, name)
        self.name = name
        self.template = template
        self.port = options['port']
        self.socket = os.path.join(self.dir, 'mysqld.sock')
        self.options = dict(options, datadir=os.path.join(self.dir, 'data'),
                            socket=self.socket, **{
                                'bind-address': '127.0.0.1',
                                'pid-file': os.path.join(self.dir, 'pid'),
                                'log-error': os.path.join(self.dir, 'err.log'),
                                'skip-name-resolve': None,
                                'innodb_buffer_pool_size': '64M',
                                'innodb_log_file_size': '16M',
                                'innodb_flush_log_at_trx_commit': 2,
                                'max_connections': 200})
        self.args = list(args)
        self.proc = None

    def _setUp(self):
        shutil.copytree(self.template, self.options['datadir'])
        if os.geteuid() == 0:
            self.options['user'] = 'mysql'
        with open(os.path.join(self.dir, 'my.cnf'), 'w') as cnf:
            cnf.write('[mysqld]\n')
            for key, value in self.options.items():
                cnf.write(key if value is None else '%s=%s' % (key, value))
                cnf.write('\n')
        _chown(self.dir)
        self.proc = subprocess.Popen(
            [binary('mariadbd'), '--defaults-file=' +
             os.path.join(self.dir, 'my.cnf')] + self.args,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self.addCleanup(self.stop)

    def check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError('mariadbd %s exited with %s; log tail:\n%s'
                               % (self.name, self.proc.returncode,
                                  self.log_tail()))

    def log_tail(self, lines=30):
        try:
            with open(self.options['log-error']) as log:
                return ''.join(log.readlines()[-lines:])
        except OSError:
            return '(no log)'

    def connect(self, autocommit=True, **kwargs):
        """A root pymysql connection over the unix socket."""
        self.check_alive()
        return pymysql.connect(unix_socket=self.socket, user='root',
                               autocommit=autocommit, **kwargs)

    def query(self, *statements):
        """Run statements on a new root connection; return the last's rows."""
        with contextlib.closing(self.connect()) as conn:
            with conn.cursor() as cur:
                for stmt in statements:
                    cur.execute(stmt)
                return cur.fetchall()

    def variable(self, name, kind='STATUS'):
        rows = self.query("SHOW %s LIKE '%s'" % (kind, name))
        return rows[0][1] if rows else None

    def url(self, database=DATABASE):
        """SQLAlchemy URL of this node over TCP, as the test user."""
        return 'mysql+pymysql://%s:%s@127.0.0.1:%d/%s' % (
            USER, PASSWORD, self.port, database)

    def wait_connectable(self, timeout=START_TIMEOUT):
        def ready():
            self.check_alive()
            return self.query('SELECT 1') == ((1,),)
        wait_until(ready, timeout, '%s to accept connections' % self.name)

    def stop(self, timeout=60.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _chown(path):
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam('mysql')
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.lchown(name, user.pw_uid, user.pw_gid)


def _template(basedir):
    """Run mariadb-install-db once into basedir/template; return the path."""
    path = os.path.join(basedir, 'template')
    os.chmod(basedir, 0o755)
    cmd = [binary('mariadb-install-db'), '--no-defaults', '--datadir=' + path,
           '--auth-root-authentication-method=normal', '--skip-test-db',
           '--skip-name-resolve']
    if os.geteuid() == 0:
        cmd.append('--user=mysql')
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError('%s failed (%d):\n%s%s' % (
            ' '.join(cmd), done.returncode, done.stdout[-2000:],
            done.stderr[-2000:]))
    return path


def _create_user(server, *, binlog=True):
    statements = [] if binlog else ['SET SESSION sql_log_bin=0']
    server.query(*statements + [
        "CREATE USER IF NOT EXISTS '%s'@'127.0.0.1' IDENTIFIED BY '%s'"
        % (USER, PASSWORD),
        "GRANT ALL ON *.* TO '%s'@'127.0.0.1' WITH GRANT OPTION" % USER])


class GaleraCluster(fixtures.Fixture):
    """Three Galera nodes on loopback; ``nodes[0]`` bootstrapped the cluster.

    ``lag(node, seconds)`` makes one node stop applying write-sets for a
    while, the way a slow or overloaded node does.
    """

    def __init__(self, size=3):
        super().__init__()
        self.size = size
        self.nodes = []

    def _setUp(self):
        skip_unless_enabled()
        binary('mariadbd')
        if not os.path.exists(GALERA_PROVIDER):
            raise RuntimeError('%s not found: install galera-4 (%s)'
                               % (GALERA_PROVIDER, PACKAGES))
        basedir = self.useFixture(fixtures.TempDir()).path
        template = _template(basedir)
        ports = free_ports(4 * self.size)
        gcomm = ','.join('127.0.0.1:%d' % ports[4 * i + 1]
                         for i in range(self.size))
        for i in range(self.size):
            port, gmcast, ist, sst = ports[4 * i:4 * i + 4]
            options = {
                'port': port, 'binlog_format': 'ROW',
                'default_storage_engine': 'InnoDB',
                'innodb_autoinc_lock_mode': 2, 'wsrep_on': 'ON',
                'wsrep_provider': GALERA_PROVIDER,
                'wsrep_cluster_name': 'bdm_guard_test',
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
            node = MariaDBServer(basedir, 'node%d' % (i + 1), template,
                                 options, args)
            os.makedirs(node.dir)
            self.useFixture(node)
            self.nodes.append(node)
            self.wait_synced(node, i + 1)
            if i == 0:
                _create_user(node)
                node.query('CREATE DATABASE %s' % DATABASE)
        for node in self.nodes:
            self.wait_synced(node, self.size)

    def wait_synced(self, node, size, timeout=START_TIMEOUT):
        def synced():
            node.check_alive()
            status = dict(node.query(
                "SHOW STATUS WHERE Variable_name IN ('wsrep_ready', "
                "'wsrep_cluster_size', 'wsrep_local_state_comment')"))
            return (status.get('wsrep_ready') == 'ON'
                    and status.get('wsrep_local_state_comment') == 'Synced'
                    and int(status.get('wsrep_cluster_size', 0)) >= size)
        wait_until(synced, timeout, '%s to be Synced in a cluster of %d'
                   % (node.name, size))

    @contextlib.contextmanager
    def lag(self, node, seconds, method='ftwrl'):
        """Stop ``node`` applying write-sets for ``seconds`` seconds.

        In a separate session, ``SET GLOBAL wsrep_desync=ON`` (so that flow
        control does not stall the cluster), then for ``method``:

        * ``ftwrl``: ``FLUSH TABLES WITH READ LOCK``. Reads on the node
          miss new rows, but its own UPDATEs wait for the lock too.
        * ``commit``: ``BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT``. The
          applier cannot commit, so an UPDATE of a new row runs at once and
          matches 0 rows, as in the seed's scheduler failure.

        The lock is released after ``seconds`` (``UNLOCK TABLES`` or
        ``BACKUP STAGE END``, then ``wsrep_desync=OFF``). The block runs
        while it is held; leaving it waits for the release and for the node
        to be Synced again.
        """
        lock, unlock = {
            'ftwrl': (['FLUSH TABLES WITH READ LOCK'], 'UNLOCK TABLES'),
            'commit': (['BACKUP STAGE START', 'BACKUP STAGE BLOCK_COMMIT'],
                       'BACKUP STAGE END')}[method]
        conn = node.connect()
        locked = threading.Event()

        def hold():
            with conn.cursor() as cur:
                for stmt in ['SET GLOBAL wsrep_desync=ON'] + lock:
                    cur.execute(stmt)
                locked.set()
                time.sleep(seconds)
                cur.execute(unlock)
                cur.execute('SET GLOBAL wsrep_desync=OFF')
            conn.close()
        thread = threading.Thread(target=hold, daemon=True)
        thread.start()
        if not locked.wait(30):
            raise RuntimeError('Could not lock %s for lag' % node.name)
        try:
            yield
        finally:
            thread.join(seconds + 30)
            self.wait_synced(node, self.size)


class ReplicationPair(fixtures.Fixture):
    """An async MariaDB primary and a replica (GTID), delay on demand."""

    def _setUp(self):
        skip_unless_enabled()
        basedir = self.useFixture(fixtures.TempDir()).path
        template = _template(basedir)
        ports = free_ports(2)
        self.primary, self.replica = [
            MariaDBServer(basedir, name, template, {
                'port': port, 'server_id': i + 1, 'log_bin': 'binlog',
                'binlog_format': 'ROW', 'relay_log': 'relay'})
            for i, (name, port) in enumerate(zip(('primary', 'replica'),
                                                 ports))]
        for server in (self.primary, self.replica):
            os.makedirs(server.dir)
            self.useFixture(server)
        for server in (self.primary, self.replica):
            server.wait_connectable()
            _create_user(server, binlog=False)
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
        wait_until(lambda: self.replica.query(
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
