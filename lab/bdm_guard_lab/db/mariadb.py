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

"""Real MariaDB servers on loopback, one process each.

:class:`MariaDBServer` runs one ``mariadbd`` with its own datadir, socket and
loopback port, as user ``mysql`` when started by root: with ``user=root``
the rsync state transfer of a Galera joiner fails with "Permission denied"
(``doc/source/admin/database.rst``). Also here: finding the binaries, free
ports, the datadir template and the lab user. The Galera cluster built from
these servers, with lag on demand, is
:class:`bdm_guard_lab.db.galera_cluster.GaleraCluster`; :mod:`bdm_guard_lab.
haproxy` puts a real haproxy in front.

System packages: bindep profile ``functional`` (mariadb-server, galera-4,
rsync, iproute2), installed by ``tools/install-bindep.sh functional``.
"""

import contextlib
import os
import pwd
import shutil
import subprocess

import fixtures
from oslo_log import log as logging
import pymysql
import tenacity

from bdm_guard_lab import exception
from bdm_guard_lab import process

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

    :raises bdm_guard_lab.exception.LabError: it is not installed.
    """
    path = shutil.which(name, path=os.environ.get('PATH', '') +
                        ':/usr/sbin:/usr/bin')
    if path is None:
        raise exception.LabError(reason='%s not found: %s' % (
            name, INSTALL_HINT))
    return path


def check_installed():
    """Fail early, in one line, when Galera cannot run here.

    :raises bdm_guard_lab.exception.LabError: mariadbd, mariadb-install-db or
        the Galera provider library is missing.
    """
    binary('mariadbd')
    binary('mariadb-install-db')
    if not os.path.exists(GALERA_PROVIDER):
        raise exception.LabError(reason='%s not found: %s' % (
            GALERA_PROVIDER, INSTALL_HINT))


def wait_until(predicate, timeout, what, errors=(pymysql.err.MySQLError,)):
    """Poll predicate() every 0.2 s until it is true.

    :param timeout: seconds.
    :param errors: exception classes that mean "not yet".
    :raises bdm_guard_lab.exception.LabError: still false after ``timeout``.
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
        """:raises bdm_guard_lab.exception.LabError: mariadbd has exited."""
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
        process.stop_process(self.proc, timeout)


def _chown(path):
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam('mysql')
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.lchown(name, user.pw_uid, user.pw_gid)


def make_template(basedir):
    """Run mariadb-install-db once into basedir/template; return the path.

    :raises bdm_guard_lab.exception.LabError: mariadb-install-db failed.
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
