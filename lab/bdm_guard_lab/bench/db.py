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

"""What :mod:`bdm_guard.db` costs when there is no lag.

Times N plain reads of one existing row against N reads of the same row
through :class:`bdm_guard.db.EngineReadYourWrites` and through
:class:`bdm_guard.db.FacadeReadYourWrites`, in interleaved blocks so that
drift in the database's speed hits both sides alike. A read that hits runs
no extra statement, so the ratio measures the wrapper alone.

Usage::

    python -m bdm_guard_lab.bench.db --url mysql+pymysql://user:pw@host/db \\
        [--replica-url URL] [--reads 2000]
"""

import argparse
import json
import time
import uuid

from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa

from bdm_guard import db

BLOCK = 100

_META = sa.MetaData()
_TABLE = sa.Table('bdm_guard_bench', _META,
                  sa.Column('id', sa.String(36), primary_key=True),
                  sa.Column('status', sa.String(255)))


@enginefacade.transaction_context_provider
class _Context:
    pass


def _timed(fn, count):
    start = time.perf_counter()
    for _ in range(count):
        fn()
    return time.perf_counter() - start


def _compare(plain, guarded, reads):
    totals = [0.0, 0.0]
    for done in range(0, reads, BLOCK):
        count = min(BLOCK, reads - done)
        totals[0] += _timed(plain, count)
        totals[1] += _timed(guarded, count)
    return {'reads': reads, 'plain_s': round(totals[0], 4),
            'guarded_s': round(totals[1], 4),
            'plain_us_per_read': round(1e6 * totals[0] / reads, 1),
            'guarded_us_per_read': round(1e6 * totals[1] / reads, 1),
            'ratio': round(totals[1] / totals[0], 4)}


def measure(url, replica_url=None, reads=2000):
    """Measure both front ends on a hit, with no lag.

    :param url: SQLAlchemy URL of the primary (the table
        ``bdm_guard_bench`` is created there if missing).
    :param replica_url: URL of the replica, or None for ``url``.
    :param reads: int, reads on each side (plain and guarded).
    :returns: ``{'engine': {...}, 'facade': {...}}``, each with ``reads``,
        ``plain_s``, ``guarded_s`` (seconds), per-read microseconds and
        ``ratio`` (guarded / plain).
    """
    primary = sa.create_engine(url)
    replica = sa.create_engine(replica_url) if replica_url else primary
    cm = enginefacade.transaction_context()
    cm.configure(connection=url, slave_connection=replica_url)
    try:
        _META.create_all(primary)
        row_id = str(uuid.uuid4())
        with primary.begin() as conn:
            conn.execute(_TABLE.insert().values(id=row_id, status='x'))
        query = sa.select(_TABLE).where(_TABLE.c.id == row_id)

        def get(conn):
            return conn.execute(query).first()

        def plain_engine():
            with replica.connect() as conn:
                return get(conn)
        guard = db.EngineReadYourWrites(primary, replica)
        results = {'engine': _compare(
            plain_engine, lambda: guard.read(get), reads)}

        @cm.reader.async_
        def facade_get(context):
            return context.session.execute(query).first()
        fguard = db.FacadeReadYourWrites(cm)
        results['facade'] = _compare(
            lambda: facade_get(_Context()),
            lambda: fguard.read(_Context(), facade_get), reads)
        if guard.stats.read_misses or fguard.stats.read_misses:
            raise RuntimeError('The benchmark row was missed: the database '
                               'lags, so this is not the no-lag cost.')
        with primary.begin() as conn:
            conn.execute(_TABLE.delete().where(_TABLE.c.id == row_id))
        return results
    finally:
        primary.dispose()
        replica.dispose()
        cm.writer.get_engine().dispose()
        cm.reader.get_engine().dispose()


def main(argv=None):
    """Command line entry point; prints the results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--url', required=True)
    parser.add_argument('--replica-url')
    parser.add_argument('--reads', type=int, default=2000)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.url, args.replica_url, args.reads),
                     indent=2))


if __name__ == '__main__':
    main()
