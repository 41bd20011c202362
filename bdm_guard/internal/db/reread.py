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

"""The core of :mod:`bdm_guard.db`: counters, stale tests, the re-read.

Shared by both front ends (plain SQLAlchemy and oslo.db enginefacade): the
test for a miss, the one second attempt after it, and its counting and
logging. Import the public names from :mod:`bdm_guard.db`.
"""

import threading
import time
import weakref

from oslo_db import exception as db_exc
from oslo_log import log as logging
import sqlalchemy.exc

from bdm_guard.internal.db import galera
from bdm_guard import opts

LOG = logging.getLogger(__name__)

NOT_FOUND = (sqlalchemy.exc.NoResultFound,)
#: Exceptions that say nothing about the row: the database failed.
DB_ERRORS = (sqlalchemy.exc.SQLAlchemyError, db_exc.DBError)


class Stats:
    """Thread-safe counters of reads, misses and re-reads, for metrics.

    Counters: ``reads``, ``read_misses`` (first reads that missed),
    ``rereads``, ``rereads_causal`` (of which with ``wsrep_sync_wait``),
    ``rereads_found`` (lag absorbed), ``writes``, ``write_misses``,
    ``rewrites``, ``rewrites_causal``, ``rewrites_found``,
    ``causal_timeouts``, ``reread_errors`` (second attempts that failed
    with a database error, so neither found nor missed the row);
    ``reread_seconds`` (float, time spent re-running). Every second attempt
    is counted once in ``*_found``, as a real miss (neither counter) or in
    ``reread_errors``.
    """

    FIELDS = ('reads', 'read_misses', 'rereads', 'rereads_causal',
              'rereads_found', 'writes', 'write_misses', 'rewrites',
              'rewrites_causal', 'rewrites_found', 'causal_timeouts',
              'reread_errors', 'reread_seconds')

    def __init__(self):
        self._lock = threading.Lock()
        self._values = dict.fromkeys(self.FIELDS, 0)
        self._values['reread_seconds'] = 0.0

    def add(self, **increments):
        """Add to counters, e.g. ``add(reads=1)``; unknown names: KeyError."""
        with self._lock:
            for name, value in increments.items():
                if name not in self._values:
                    raise KeyError(name)
                self._values[name] += value

    def as_dict(self):
        """Return a snapshot ``{counter: value}``."""
        with self._lock:
            return dict(self._values)

    def __getattr__(self, name):
        if name in Stats.FIELDS:
            return self.as_dict()[name]
        raise AttributeError(name)

    def __str__(self):
        return ' '.join('%s=%s' % item for item in self.as_dict().items())


def _field(row, name):
    if isinstance(row, dict):
        return row.get(name)
    return getattr(row, name, None)


def older_than(updated_at, field='updated_at'):
    """Return a ``stale`` test: the row's ``field`` is None or < updated_at.

    :param updated_at: datetime the caller wrote (naive UTC, as stored).
    :param field: str, attribute or key of the row.
    """
    def stale(row):
        value = _field(row, field)
        return value is None or value < updated_at
    return stale


def version_below(version, field='version'):
    """Return a ``stale`` test: the row's ``field`` is None or < version."""
    return older_than(version, field)


def _no_rows(result):
    if isinstance(result, int) and not isinstance(result, bool):
        return result == 0
    return getattr(result, 'rowcount', None) == 0


def _name(fn):
    fn = getattr(fn, 'func', fn)
    return getattr(fn, '__qualname__', None) or repr(fn)


class ReadYourWritesBase:
    """The miss test, the one second attempt, and its counting."""

    def __init__(self, conf=None, stats=None, not_found=NOT_FOUND,
                 clock=time.monotonic):
        self.conf = opts.get_conf(conf)[opts.DB_GROUP]
        self.stats = stats if stats is not None else Stats()
        self.not_found = tuple(not_found)
        self._clock = clock
        self._warned = weakref.WeakSet()

    def _attempt(self, fn, not_found, stale, write):
        """Run fn once; return (result, exception or None, missed)."""
        try:
            result = fn()
        except not_found as exc:
            return None, exc, True
        if write:
            return result, None, _no_rows(result)
        missed = result is None or (stale is not None and stale(result))
        return result, None, missed

    @staticmethod
    def _finish(result, exc):
        if exc is not None:
            raise exc
        return result

    def _use_causal(self, bind):
        """Tell whether a second attempt on bind uses wsrep_sync_wait."""
        if self.conf.strategy == 'primary':
            return False
        if galera.is_galera(bind):
            return True
        engine = getattr(bind, 'engine', bind)
        if self.conf.strategy == 'causal' and engine not in self._warned:
            self._warned.add(engine)
            LOG.warning('[%s] strategy is causal, but %s is not a Galera '
                        'node; re-reading on the primary instead.',
                        opts.DB_GROUP,
                        engine.url.render_as_string(hide_password=True))
        return False

    def _again(self, kind, fn, call, causal, not_found, stale):
        """Run the one second attempt of a read or write, count and log it.

        The attempt found the row unless it missed (see :meth:`_attempt`)
        or failed with one of :data:`DB_ERRORS`. Any other exception is the
        function's answer about a row it saw, e.g. cinder's
        ``GlanceMetadataNotFound`` from ``volume_glance_metadata_get``
        after a ``VolumeNotFound`` on a lagging node: found, and raised.
        """
        self.stats.add(**{'re%ss' % kind: 1,
                          're%ss_causal' % kind: int(causal)})
        where = 'causal' if causal else 'primary'
        start = self._clock()
        try:
            result, exc, missed = self._attempt(call, not_found, stale,
                                                kind == 'write')
        except DB_ERRORS:
            self.stats.add(reread_errors=1)
            LOG.debug('The %s re%s of %s failed.', where, kind, _name(fn))
            raise
        except Exception as answer:
            result, exc, missed = None, answer, False
        finally:
            self.stats.add(reread_seconds=self._clock() - start)
        if missed:
            LOG.debug('%s missed a fresh row on the %s %s too: a real miss.',
                      _name(fn), where, kind)
        else:
            self.stats.add(**{'re%ss_found' % kind: 1})
            LOG.info('%s missed a fresh row; the %s re%s found it (%s).',
                     _name(fn), where, kind, self.stats)
        return self._finish(result, exc)
