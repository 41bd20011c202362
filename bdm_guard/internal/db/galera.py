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

"""Galera detection and causal statements (``wsrep_sync_wait``).

A Galera node applies the write-sets of the other nodes asynchronously, so a
row committed through node 1 may be missing from node 3 for a while. With the
session variable ``wsrep_sync_wait`` set, the node first applies every
write-set the cluster had committed when the statement arrived, then runs it
(a *causal* read). The bits, from MariaDB's ``wsrep_sync_wait`` reference:

====  ===================================================
 1    READ: ``SELECT``, ``SHOW``, ``BEGIN``/``START TRANSACTION``
 2    ``UPDATE`` and ``DELETE``
 4    ``INSERT`` and ``REPLACE``
 8    ``SHOW``
====  ===================================================

Two facts from MariaDB's ``wsrep_sync_wait()`` (``sql/wsrep_mysqld.cc``)
shape this module: the node does not wait inside an active multi-statement
transaction, so a causal statement must open its transaction; and a wait
longer than ``repl.causal_read_timeout`` (30 s by default) fails with
``ER_LOCK_WAIT_TIMEOUT`` (1205).

Nothing here runs on a database that is not Galera: :func:`is_galera` is
False for every non-MySQL dialect without a query, and for MySQL/MariaDB
servers whose ``wsrep_on`` is not ``ON``.
"""

import contextlib
import weakref

from oslo_log import log as logging
import sqlalchemy
import sqlalchemy.exc

LOG = logging.getLogger(__name__)

READ = 1
UPDATE_DELETE = 2
INSERT_REPLACE = 4
SHOW = 8

ER_LOCK_WAIT_TIMEOUT = 1205

_SAVE_AND_SET = sqlalchemy.text(
    'SET @bdm_guard_wsrep_sync_wait = @@SESSION.wsrep_sync_wait, '
    'SESSION wsrep_sync_wait = @@SESSION.wsrep_sync_wait | :bits')
_RESTORE = sqlalchemy.text(
    'SET SESSION wsrep_sync_wait = @bdm_guard_wsrep_sync_wait')

_detected = weakref.WeakKeyDictionary()


def _engine(bind):
    return getattr(bind, 'engine', bind)


def is_galera(bind):
    """Tell whether a database is a Galera node, once per engine.

    Runs ``SHOW VARIABLES LIKE 'wsrep_on'`` on a separate pooled connection
    the first time an engine is asked (so that it never opens a transaction
    on the caller's connection), and caches the answer for the engine's life.

    :param bind: a :class:`sqlalchemy.engine.Engine` or
        :class:`sqlalchemy.engine.Connection`.
    :returns: True when ``wsrep_on`` is ``ON``; False for any other dialect
        than MySQL/MariaDB (without a query), for MySQL (no such variable)
        and for MariaDB without wsrep.
    :raises sqlalchemy.exc.DBAPIError: when the database cannot be asked;
        nothing is cached then.
    """
    engine = _engine(bind)
    try:
        return _detected[engine]
    except KeyError:
        pass
    galera = False
    if engine.dialect.name == 'mysql':
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SHOW VARIABLES LIKE 'wsrep_on'").first()
        galera = row is not None and str(row[1]).upper() == 'ON'
    _detected[engine] = galera
    LOG.debug('Database %s is%s a Galera node.',
              engine.url.render_as_string(hide_password=True),
              '' if galera else ' not')
    return galera


@contextlib.contextmanager
def causal(connection, bits=READ):
    """Run the enclosed statements with ``wsrep_sync_wait`` bits set.

    The session's value is saved in a user variable, OR-ed with ``bits``, and
    restored on exit, whatever happens inside; when the restore itself fails
    the connection is invalidated, so that no pooled connection keeps the
    changed value. Use it on a connection that has no active transaction
    (Galera does not wait inside one): a new one, or right after a commit or
    rollback.

    :param connection: a :class:`sqlalchemy.engine.Connection` to a Galera
        node (see :func:`is_galera`).
    :param bits: int, 1-15, the ``wsrep_sync_wait`` bits to add (for example
        :data:`READ` or ``READ | UPDATE_DELETE``).
    :raises ValueError: for bits outside 1-15.
    :raises sqlalchemy.exc.DBAPIError: when setting the variable fails, or
        from the enclosed statements (a wait longer than
        ``repl.causal_read_timeout`` raises error 1205, see
        :func:`is_causal_timeout`).
    """
    if not isinstance(bits, int) or not 1 <= bits <= 15:
        raise ValueError('wsrep_sync_wait bits must be an int in 1-15, '
                         'not %r' % (bits,))
    connection.execute(_SAVE_AND_SET, {'bits': bits})
    try:
        yield connection
    finally:
        try:
            connection.execute(_RESTORE)
        except sqlalchemy.exc.DBAPIError:
            LOG.warning('Could not restore wsrep_sync_wait; discarding the '
                        'connection.', exc_info=True)
            connection.invalidate()


def is_causal_timeout(exc):
    """Tell whether an exception is a causal wait that timed out.

    :param exc: any exception; a :class:`sqlalchemy.exc.DBAPIError` (or an
        oslo.db exception wrapping one in ``inner_exception``) carrying MySQL
        error 1205 is a timeout.
    :returns: bool.
    """
    inner = getattr(exc, 'inner_exception', None) or exc
    orig = getattr(inner, 'orig', None)
    args = getattr(orig, 'args', ())
    return bool(args) and args[0] == ER_LOCK_WAIT_TIMEOUT
