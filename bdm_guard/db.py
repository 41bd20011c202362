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

"""Read-your-writes: run a read again when it misses a row known to be fresh.

A service that has just written a row may look it up on a replica
(``slave_connection``) or on another Galera node behind a VIP before that
database has applied the write. :class:`EngineReadYourWrites` (plain
SQLAlchemy) and :class:`FacadeReadYourWrites` (oslo.db enginefacade) run the
read as usual and, only when it *misses*, once more where the row must be:

* on Galera (``wsrep_on=ON``), in a new transaction with ``wsrep_sync_wait``
  set for that one read (``[bdm_guard_db] wsrep_sync_wait_read``), then
  restored: the node first applies what the cluster had committed;
* elsewhere, on the primary (the writer engine).

An ``UPDATE``/``DELETE`` that matched no row is re-run the same way on
Galera (``wsrep_sync_wait_write``); on a real primary it is final, since a
primary has every committed row. A miss is a ``None`` result, an exception in
``not_found``, a row ``stale(row)`` calls old (see :func:`older_than`,
:func:`version_below`), or, for writes, a rowcount of 0. There is exactly one
extra statement round per miss and no sleeping: a real NotFound stays
NotFound and returns after one re-read. Every re-read is counted in
:class:`Stats`. Options: ``[bdm_guard_db]`` in :mod:`bdm_guard.opts`.

.. deprecated::
   Configuration fixes the cases this module was written for, and it does
   not beat configuration on any case OpenStack services have (measured in
   ``doc/source/admin/database.rst``). On Galera, use a single-writer
   haproxy backend, or ``[database] mysql_wsrep_sync_wait = 3`` with a
   multi-writer VIP. On an async replica, read what was just written with
   oslo.db's ``reader`` (the writer engine), as cinder and nova do: a
   re-read on a miss repairs a missing row but returns an updated row old.
   Creating :class:`EngineReadYourWrites` or :class:`FacadeReadYourWrites`
   emits a ``DeprecationWarning``; the module will be removed in a later
   release.
"""

import functools

from debtcollector import removals
from oslo_log import log as logging
import sqlalchemy.exc

from bdm_guard.internal.db import galera
from bdm_guard.internal.db import reread as db_base

LOG = logging.getLogger(__name__)

NOT_FOUND = db_base.NOT_FOUND
Stats = db_base.Stats
older_than = db_base.older_than
version_below = db_base.version_below
_name = db_base._name

DEPRECATION = (
    'bdm_guard.db is deprecated: configuration fixes read-after-write lag '
    'without code. On Galera, use a single-writer haproxy backend (the other '
    'nodes "backup", as kolla-ansible and OpenStack-Ansible deploy it) or '
    '[database] mysql_wsrep_sync_wait = 3; on an async replica, read what '
    'was just written with oslo.db\'s reader (the writer engine). See '
    'doc/source/admin/database.rst.')


@removals.removed_class('EngineReadYourWrites', message=DEPRECATION,
                        category=DeprecationWarning)
class EngineReadYourWrites(db_base.ReadYourWritesBase):
    """Read-your-writes for plain SQLAlchemy engines.

    :param primary: :class:`sqlalchemy.engine.Engine` of the primary (or the
        Galera VIP/node) that takes the writes.
    :param replica: Engine for reads (an async replica or a Galera node), or
        None to read on ``primary``.
    :param conf: ConfigOpts; ``[bdm_guard_db]`` is registered if needed;
        None uses the defaults.
    :param stats: a :class:`Stats` to share, or None for a new one
        (``self.stats``).
    :param not_found: exception classes that mean "no such row", default
        :data:`NOT_FOUND` (``Result.one()``'s NoResultFound).
    :param clock: callable returning seconds, for ``reread_seconds``.
    """

    def __init__(self, primary, replica=None, **kwargs):
        super().__init__(**kwargs)
        self.primary = primary
        self.replica = replica if replica is not None else primary

    def read(self, fn, *, stale=None, not_found=None):
        """Run ``fn(connection)`` on the replica; re-read it once on a miss.

        On a miss the re-read runs on the same replica connection in a new
        transaction with ``wsrep_sync_wait`` when the replica is Galera
        (falling back to the primary if that wait times out), else on the
        primary; with no separate primary and no Galera the miss is final.

        :param fn: callable(Connection) -> row, None or any result; it may
            raise one of ``not_found``. It may run twice.
        :param stale: callable(result) -> bool, True when the row is older
            than the caller's write (:func:`older_than`), or None.
        :param not_found: exception classes meaning a miss; default the
            constructor's.
        :returns: what the last run of fn returned.
        :raises: the last run's ``not_found`` exception; any database error.
        """
        not_found = tuple(not_found or self.not_found)
        self.stats.add(reads=1)
        with self.replica.connect() as conn:
            result, exc, missed = self._attempt(
                lambda: fn(conn), not_found, stale, False)
            if not missed or not self.conf.read_your_writes:
                return self._finish(result, exc)
            self.stats.add(read_misses=1)
            if self._use_causal(conn):
                conn.rollback()
                try:
                    with galera.causal(conn, self.conf.wsrep_sync_wait_read):
                        return self._again('read', fn, lambda: fn(conn),
                                           True, not_found, stale)
                except sqlalchemy.exc.DBAPIError as e:
                    if (self.primary is self.replica
                            or not galera.is_causal_timeout(e)):
                        raise
                    self.stats.add(causal_timeouts=1)
                    LOG.warning('Causal re-read of %s timed out; reading on '
                                'the primary.', _name(fn))
            elif self.primary is self.replica:
                return self._finish(result, exc)
        with self.primary.connect() as conn:
            return self._again('read', fn, lambda: fn(conn), False,
                               not_found, stale)

    def write(self, fn, *, not_found=None):
        """Run ``fn(connection)`` in a primary transaction; re-run on a miss.

        A miss (rowcount 0 or a ``not_found`` exception) is rolled back and
        re-run once in a new transaction with ``wsrep_sync_wait`` when the
        primary is Galera; elsewhere it is final. The transaction commits
        when fn returns.

        :param fn: callable(Connection) -> int rowcount or a CursorResult;
            it may run twice, each time in its own transaction.
        :param not_found: exception classes meaning a miss.
        :returns: what the last run of fn returned.
        :raises: the last run's ``not_found`` exception; any database error.
        """
        not_found = tuple(not_found or self.not_found)
        self.stats.add(writes=1)
        with self.primary.connect() as conn:
            result, exc, missed = self._attempt(
                lambda: fn(conn), not_found, None, True)
            if missed:
                self.stats.add(write_misses=1)
                if self.conf.read_your_writes and self._use_causal(conn):
                    conn.rollback()
                    with galera.causal(conn, self.conf.wsrep_sync_wait_write):
                        result = self._again('write', fn, lambda: fn(conn),
                                             True, not_found, None)
                    exc = None
            result = self._finish(result, exc)
            conn.commit()
            return result


@removals.removed_class('FacadeReadYourWrites', message=DEPRECATION,
                        category=DeprecationWarning)
class FacadeReadYourWrites(db_base.ReadYourWritesBase):
    """Read-your-writes for oslo.db enginefacade users.

    :param context_manager: the enginefacade transaction context manager
        (``enginefacade.transaction_context()``; cinder's and nova's
        ``main_context_manager``).
    :param kwargs: ``conf``, ``stats``, ``not_found``, ``clock`` as for
        :class:`EngineReadYourWrites`.

    DB API functions passed to :meth:`read`/:meth:`write` take the request
    context first and open their own transaction (enginefacade-decorated),
    like cinder's ``db.volume_get``; :meth:`reader`/:meth:`writer` decorate
    a body that uses ``context.session``.
    """

    def __init__(self, context_manager, **kwargs):
        super().__init__(**kwargs)
        self.context_manager = context_manager

    def read(self, context, fn, *args, stale=None, not_found=None, **kwargs):
        """Call ``fn(context, *args, **kwargs)``; re-read it once on a miss.

        The re-read runs in a new (``independent``) writer transaction, with
        ``wsrep_sync_wait`` when the writer engine is Galera. It is skipped
        when there is no ``slave_connection`` and no Galera: the first read
        was already on the primary.

        :param stale: callable(result) -> bool (:func:`older_than`) or None.
        :param not_found: exception classes meaning a miss (cinder:
            ``exception.NotFound``); default the constructor's.
        :returns: what the last call of fn returned.
        :raises: the last call's ``not_found`` exception; any database error.
        """
        call = functools.partial(fn, context, *args, **kwargs)
        not_found = tuple(not_found or self.not_found)
        self.stats.add(reads=1)
        result, exc, missed = self._attempt(call, not_found, stale, False)
        if not missed or not self.conf.read_your_writes:
            return self._finish(result, exc)
        self.stats.add(read_misses=1)
        writer = self.context_manager.writer
        causal = self._use_causal(writer.get_engine())
        if not causal and (self.context_manager.reader.get_engine()
                           is writer.get_engine()):
            return self._finish(result, exc)
        with writer.independent.using(context) as session:
            if not causal:
                return self._again('read', fn, call, False, not_found, stale)
            with galera.causal(session.connection(),
                               self.conf.wsrep_sync_wait_read):
                return self._again('read', fn, call, True, not_found, stale)

    def write(self, context, fn, *args, not_found=None, **kwargs):
        """Call ``fn(context, *args, **kwargs)``; re-run it once on a miss.

        A miss (rowcount 0 or a ``not_found`` exception such as cinder's
        VolumeNotFound from ``volume_update``) is re-run in a new writer
        transaction with ``wsrep_sync_wait`` when the writer engine is
        Galera. It is final on a real primary, and when the caller is
        already inside a transaction (Galera does not wait inside one).

        :returns: what the last call of fn returned.
        :raises: the last call's ``not_found`` exception; any database error.
        """
        call = functools.partial(fn, context, *args, **kwargs)
        not_found = tuple(not_found or self.not_found)
        in_transaction = getattr(context, 'transaction_ctx', None) is not None
        self.stats.add(writes=1)
        result, exc, missed = self._attempt(call, not_found, None, True)
        if not missed:
            return self._finish(result, exc)
        self.stats.add(write_misses=1)
        writer = self.context_manager.writer
        if (in_transaction or not self.conf.read_your_writes
                or not self._use_causal(writer.get_engine())):
            return self._finish(result, exc)
        with writer.using(context) as session:
            with galera.causal(session.connection(),
                               self.conf.wsrep_sync_wait_write):
                return self._again('write', fn, call, True, not_found, None)

    def reader(self, not_found=None):
        """Decorate a DB API body as an ASYNC_READER read with re-read.

        The body ``fn(context, ...)`` uses ``context.session``; the first
        read runs as ``reader.async_`` (the ``slave_connection`` engine when
        configured), the re-read as in :meth:`read`.
        """
        def decorate(fn):
            body = self.context_manager.reader.async_(fn)

            @functools.wraps(fn)
            def wrapper(context, *args, **kwargs):
                return self.read(context, body, *args, not_found=not_found,
                                 **kwargs)
            return wrapper
        return decorate

    def writer(self, not_found=None):
        """Decorate a DB API body as a WRITER with re-run on a miss."""
        def decorate(fn):
            body = self.context_manager.writer(fn)

            @functools.wraps(fn)
            def wrapper(context, *args, **kwargs):
                return self.write(context, body, *args, not_found=not_found,
                                  **kwargs)
            return wrapper
        return decorate
