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

"""Real MariaDB on loopback: a Galera cluster with lag on demand.

:class:`GaleraCluster` runs N ``mariadbd`` nodes (default 3), each with its
own datadir, socket and loopback ports (found free at start), as user
``mysql`` when started by root: with ``user=root`` the rsync state transfer
fails with "Permission denied" (``doc/source/admin/database.rst``).
:meth:`GaleraCluster.lag` makes one node stop applying write-sets, the way a
slow node does. Used by ``bdm-guard demo --db galera`` and by the functional
tests; :mod:`bdm_guard.lab.haproxy` puts a real haproxy in front.

System packages: bindep profile ``functional`` (mariadb-server, galera-4,
rsync, iproute2), installed by ``tools/install-bindep.sh functional``.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading

import fixtures
from oslo_log import log as logging
import pymysql
import tenacity

from bdm_guard import exception

LOG = logging.getLogger(__name__)

DATABASE = 'bdm_guard_test'
USER = PASSWORD = 'bdm'
GALERA_PROVIDER = '/usr/lib/galera/libgalera_smm.so'
START_TIMEOUT = 90.0
PACKAGES = 'mariadb-server galera-4 rsync iproute2'
INSTALL_HINT = ('install the bindep "functional" profile '
                '(tools/install-bindep.sh functional: %s)' % PACKAGES)


def binary(name):
    """Path of a system binary, also looked up in /usr/sbin.

    :raises bdm_guard.exception.LabError: it is not installed.
    """
    path = shutil.which(name, path=os.environ.get('PATH', '') +
                        ':/usr/sbin:/usr/bin')
    if path is None:
        raise exception.LabError(reason='%s not found: %s' % (
            name, INSTALL_HINT))
    return path


def check_installed():
    """Fail early, in one line, when Galera cannot run here.

    :raises bdm_guard.exception.LabError: mariadbd, mariadb-install-db or
        the Galera provider library is missing.
    """
    binary('mariadbd')
    binary('mariadb-install-db')
    if not os.path.exists(GALERA_PROVIDER):
        raise exception.LabError(reason='%s not found: %s' % (
            GALERA_PROVIDER, INSTALL_HINT))


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


def wait_until(predicate, timeout, what, errors=(pymysql.err.MySQLError,)):
    """Poll predicate() every 0.2 s until it is true.

    :param timeout: seconds.
    :param errors: exception classes that mean "not yet".
    :raises bdm_guard.exception.LabError: still false after ``timeout``.
    """
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(0.2),
        retry=(tenacity.retry_if_result(lambda ok: not ok)
               | tenacity.retry_if_exception_type(errors)),
        retry_error_callback=lambda state: False)
    if not retrying(predicate):
        raise exception.LabError(reason='timed out after %.0f s waiting for '
                                        '%s' % (timeout, what))


class MariaDBServer(fixtures.Fixture):
    """One mariadbd on loopback, with its own datadir, socket and port.

    :param basedir: parent folder; the node lives in ``basedir/name``.
    :param name: node name.
    :param template: a datadir made by ``mariadb-install-db`` to copy.
    :param options: ``[mysqld]`` options; ``port`` is required.
    :param args: extra command-line arguments (``--wsrep-new-cluster``).
    """

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
                                'max_connections': 500})
        self.args = list(args)
        self.proc = None

    def _setUp(self):
        os.makedirs(self.dir, exist_ok=True)
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
        """:raises bdm_guard.exception.LabError: mariadbd has exited."""
        if self.proc.poll() is not None:
            raise exception.LabError(
                reason='mariadbd %s exited with %s; log tail:\n%s' % (
                    self.name, self.proc.returncode, self.log_tail()))

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

    def url(self, database=DATABASE, port=None):
        """SQLAlchemy URL over TCP as the lab user; ``port``: haproxy's."""
        return 'mysql+pymysql://%s:%s@127.0.0.1:%d/%s' % (
            USER, PASSWORD, port or self.port, database)

    def wait_connectable(self, timeout=START_TIMEOUT):
        def ready():
            self.check_alive()
            return self.query('SELECT 1') == ((1,),)
        wait_until(ready, timeout, '%s to accept connections' % self.name)

    def stop(self, timeout=60.0):
        """Stop mariadbd: SIGTERM, SIGKILL after ``timeout`` seconds."""
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


def make_template(basedir):
    """Run mariadb-install-db once into basedir/template; return the path.

    :raises bdm_guard.exception.LabError: mariadb-install-db failed.
    """
    path = os.path.join(basedir, 'template')
    os.chmod(basedir, 0o755)
    cmd = [binary('mariadb-install-db'), '--no-defaults', '--datadir=' + path,
           '--auth-root-authentication-method=normal', '--skip-test-db',
           '--skip-name-resolve']
    if os.geteuid() == 0:
        cmd.append('--user=mysql')
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise exception.LabError(reason='%s failed (%d):\n%s%s' % (
            ' '.join(cmd), done.returncode, done.stdout[-2000:],
            done.stderr[-2000:]))
    return path


def create_user(server, *, binlog=True):
    """Create the lab user (``bdm``@``127.0.0.1``, all privileges)."""
    statements = [] if binlog else ['SET SESSION sql_log_bin=0']
    server.query(*statements + [
        "CREATE USER IF NOT EXISTS '%s'@'127.0.0.1' IDENTIFIED BY '%s'"
        % (USER, PASSWORD),
        "GRANT ALL ON *.* TO '%s'@'127.0.0.1' WITH GRANT OPTION" % USER])


class GaleraCluster(fixtures.Fixture):
    """Galera nodes on loopback; ``nodes[0]`` bootstrapped the cluster.

    :param size: number of nodes.
    :param database: a database created at start (None: none).

    ``lag(node, seconds)`` makes one node stop applying write-sets for a
    while. :raises bdm_guard.exception.LabError: from ``setUp`` when a
    binary is missing or a node does not join within 90 s.
    """

    def __init__(self, size=3, database=DATABASE):
        super().__init__()
        self.size = size
        self.database = database
        self.nodes = []

    def _setUp(self):
        check_installed()
        basedir = self.useFixture(fixtures.TempDir()).path
        template = make_template(basedir)
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
            node = self.useFixture(MariaDBServer(
                basedir, 'node%d' % (i + 1), template, options, args))
            self.nodes.append(node)
            self.wait_synced(node, i + 1)
            if i == 0:
                create_user(node)
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

    def wait_synced(self, node, size=None, timeout=START_TIMEOUT):
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
        wait_until(synced, timeout, '%s to be Synced in a cluster of %d'
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
        release and for the node to be Synced again.

        :raises bdm_guard.exception.LabError: the lock was not taken in 30 s.
        """
        lock, unlock = {
            'ftwrl': (['FLUSH TABLES WITH READ LOCK'], 'UNLOCK TABLES'),
            'commit': (['BACKUP STAGE START', 'BACKUP STAGE BLOCK_COMMIT'],
                       'BACKUP STAGE END')}[method]
        conn = node.connect()
        locked, release = threading.Event(), threading.Event()

        def hold():
            with conn.cursor() as cur:
                for stmt in ['SET GLOBAL wsrep_desync=ON'] + lock:
                    cur.execute(stmt)
                locked.set()
                release.wait(seconds)
                cur.execute(unlock)
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
            self.wait_synced(node, self.size)
            LOG.info('%s is Synced again.', node.name)
