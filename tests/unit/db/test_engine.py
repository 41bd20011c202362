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

"""Unit tests of bdm_guard.db's SQLAlchemy front end, on two real sqlite files.

The "replica" is a second database that lacks the rows written to the
"primary", the way a replica lags; Galera paths run in tests/functional.
"""

import datetime
import logging
import os
import warnings

import fixtures
from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa
import sqlalchemy.exc
import testtools

from bdm_guard import db
from bdm_guard.internal.db import galera
from bdm_guard import opts

META = sa.MetaData()
VOLUMES = sa.Table('volumes', META,
                   sa.Column('id', sa.String(36), primary_key=True),
                   sa.Column('status', sa.String(255)),
                   sa.Column('version', sa.Integer),
                   sa.Column('updated_at', sa.DateTime))
T0 = datetime.datetime(2025, 1, 1, 12, 0, 0)
T1 = T0 + datetime.timedelta(seconds=5)


def get(conn, volume_id='v1'):
    return conn.execute(sa.select(VOLUMES).where(
        VOLUMES.c.id == volume_id)).first()


def get_one(conn, volume_id='v1'):
    return conn.execute(sa.select(VOLUMES).where(
        VOLUMES.c.id == volume_id)).one()


def set_status(conn, status='in-use', volume_id='v1'):
    return conn.execute(VOLUMES.update().where(
        VOLUMES.c.id == volume_id).values(status=status))


def make_conf(**overrides):
    conf = cfg.ConfigOpts()
    conf([], project='bdm_guard', default_config_files=[])
    opts.register_opts(conf)
    for name, value in overrides.items():
        conf.set_override(name, value, group=opts.DB_GROUP)
    return conf


class DbTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.primary = self._engine(os.path.join(tmp, 'primary.db'))
        self.replica = self._engine(os.path.join(tmp, 'replica.db'))

    def _engine(self, path):
        engine = sa.create_engine('sqlite:///' + path)
        self.addCleanup(engine.dispose)
        META.create_all(engine)
        return engine

    def insert(self, engine, status='available', version=2, updated_at=T1):
        with engine.begin() as conn:
            conn.execute(VOLUMES.insert().values(
                id='v1', status=status, version=version,
                updated_at=updated_at))


class EngineReadTestCase(DbTestCase):

    def guard(self, replica=True, **overrides):
        return db.EngineReadYourWrites(
            self.primary, self.replica if replica else None,
            conf=make_conf(**overrides))

    def test_hit_on_replica_needs_no_reread(self):
        self.insert(self.primary)
        self.insert(self.replica)
        guard = self.guard()
        self.assertEqual('available', guard.read(get).status)
        stats = guard.stats.as_dict()
        self.assertEqual((1, 0, 0), (stats['reads'], stats['read_misses'],
                                     stats['rereads']))

    def test_missing_on_replica_is_read_on_primary(self):
        self.insert(self.primary)
        guard = self.guard()
        self.assertEqual('v1', guard.read(get).id)
        self.assertEqual(1, guard.stats.read_misses)
        self.assertEqual(1, guard.stats.rereads)
        self.assertEqual(1, guard.stats.rereads_found)
        self.assertEqual(0, guard.stats.rereads_causal)

    def test_not_found_exception_is_read_on_primary(self):
        self.insert(self.primary)
        guard = self.guard()
        self.assertEqual('v1', guard.read(get_one).id)
        self.assertEqual(1, guard.stats.rereads_found)

    def test_true_miss_stays_a_miss_after_one_reread(self):
        guard = self.guard()
        self.assertIsNone(guard.read(get))
        self.assertRaises(sqlalchemy.exc.NoResultFound, guard.read, get_one)
        self.assertEqual(2, guard.stats.rereads)
        self.assertEqual(0, guard.stats.rereads_found)

    def test_custom_not_found(self):
        class VolumeNotFound(Exception):
            pass

        def lookup(conn, volume_id='v1'):
            row = get(conn, volume_id)
            if row is None:
                raise VolumeNotFound()
            return row
        self.insert(self.primary)
        guard = self.guard()
        self.assertEqual('v1', guard.read(lookup,
                                          not_found=(VolumeNotFound,)).id)
        self.assertRaises(VolumeNotFound, guard.read,
                          lambda conn: lookup(conn, 'v2'),
                          not_found=(VolumeNotFound,))
        self.assertEqual(2, guard.stats.rereads)
        self.assertEqual(1, guard.stats.rereads_found)

    def test_stale_row_by_updated_at(self):
        self.insert(self.primary, status='in-use', updated_at=T1)
        self.insert(self.replica, status='available', updated_at=T0)
        guard = self.guard()
        self.assertEqual('in-use',
                         guard.read(get, stale=db.older_than(T1)).status)
        self.assertEqual(1, guard.stats.rereads_found)

    def test_stale_row_by_version(self):
        self.insert(self.primary, status='in-use', version=3)
        self.insert(self.replica, status='available', version=2)
        guard = self.guard()
        self.assertEqual('in-use',
                         guard.read(get, stale=db.version_below(3)).status)

    def test_still_stale_on_primary_returns_primary_row(self):
        self.insert(self.primary, status='in-use', version=2)
        self.insert(self.replica, status='available', version=2)
        guard = self.guard()
        self.assertEqual('in-use',
                         guard.read(get, stale=db.version_below(9)).status)
        self.assertEqual(0, guard.stats.rereads_found)

    def test_no_replica_and_no_galera_means_no_reread(self):
        guard = self.guard(replica=False)
        self.assertIsNone(guard.read(get))
        self.assertEqual(1, guard.stats.read_misses)
        self.assertEqual(0, guard.stats.rereads)

    def test_disabled_reads_once(self):
        self.insert(self.primary)
        guard = self.guard(read_your_writes=False)
        self.assertIsNone(guard.read(get))
        self.assertEqual(0, guard.stats.rereads)
        self.assertEqual(0, guard.stats.read_misses)

    def test_causal_strategy_warns_once_when_not_galera(self):
        logger = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        self.insert(self.primary)
        guard = self.guard(strategy='causal')
        self.assertEqual('v1', guard.read(get).id)
        self.assertEqual('v1', guard.read(get).id)
        self.assertEqual(1, logger.output.count('not a Galera node'))
        self.assertEqual(0, guard.stats.rereads_causal)

    def test_primary_strategy_rereads_on_primary(self):
        self.insert(self.primary)
        guard = self.guard(strategy='primary')
        self.assertEqual('v1', guard.read(get).id)
        self.assertEqual(1, guard.stats.rereads)


class EngineWriteTestCase(DbTestCase):

    def test_write_hit_commits(self):
        self.insert(self.primary)
        guard = db.EngineReadYourWrites(self.primary, self.replica)
        self.assertEqual(1, guard.write(set_status).rowcount)
        with self.primary.connect() as conn:
            self.assertEqual('in-use', get(conn).status)
        self.assertEqual((1, 0), (guard.stats.writes,
                                  guard.stats.write_misses))

    def test_write_miss_on_a_real_primary_is_final(self):
        guard = db.EngineReadYourWrites(self.primary, self.replica)
        self.assertEqual(0, guard.write(
            lambda conn: set_status(conn).rowcount))
        self.assertEqual(1, guard.stats.write_misses)
        self.assertEqual(0, guard.stats.rewrites)

    def test_write_not_found_rolls_back(self):
        class VolumeNotFound(Exception):
            pass

        def update(conn):
            conn.execute(VOLUMES.insert().values(id='v2', status='x'))
            if not set_status(conn).rowcount:
                raise VolumeNotFound()
        guard = db.EngineReadYourWrites(self.primary,
                                        not_found=(VolumeNotFound,))
        self.assertRaises(VolumeNotFound, guard.write, update)
        with self.primary.connect() as conn:
            self.assertIsNone(get(conn, 'v2'))


class StatsAndStaleTestCase(testtools.TestCase):

    def test_stats(self):
        stats = db.Stats()
        stats.add(reads=2, reread_seconds=0.5)
        self.assertEqual(2, stats.reads)
        self.assertEqual(0.5, stats.as_dict()['reread_seconds'])
        self.assertIn('reads=2', str(stats))
        self.assertRaises(KeyError, stats.add, bogus=1)
        self.assertRaises(AttributeError, getattr, stats, 'bogus')
        self.assertEqual(set(db.Stats.FIELDS), set(stats.as_dict()))

    def test_older_than_with_dicts_and_objects(self):
        stale = db.older_than(T1)
        self.assertTrue(stale({'updated_at': T0}))
        self.assertTrue(stale({'updated_at': None}))
        self.assertFalse(stale({'updated_at': T1}))
        self.assertTrue(db.older_than(T1, 'created_at')(object()))
        self.assertFalse(db.version_below(2)(
            type('Row', (), {'version': 3})()))


class GaleraHelpersTestCase(DbTestCase):

    def test_sqlite_is_not_galera_and_is_cached(self):
        statements = []
        sa.event.listen(self.primary, 'before_cursor_execute',
                        lambda *args: statements.append(args[2]))
        self.assertFalse(galera.is_galera(self.primary))
        with self.primary.connect() as conn:
            self.assertFalse(galera.is_galera(conn))
        self.assertEqual([], statements)

    def test_causal_rejects_bad_bits(self):
        with self.primary.connect() as conn:
            for bits in (0, 16, '1', None):
                ctx = galera.causal(conn, bits)
                self.assertRaises(ValueError, ctx.__enter__)

    def test_is_causal_timeout(self):
        timeout = sqlalchemy.exc.OperationalError(
            'SELECT 1', {}, Exception(1205, 'Lock wait timeout exceeded'))
        other = sqlalchemy.exc.OperationalError(
            'SELECT 1', {}, Exception(2013, 'Lost connection'))
        self.assertTrue(galera.is_causal_timeout(timeout))
        self.assertTrue(galera.is_causal_timeout(
            db_exc.DBDeadlock(inner_exception=timeout)))
        self.assertFalse(galera.is_causal_timeout(other))
        self.assertFalse(galera.is_causal_timeout(ValueError()))


class DeprecationTestCase(testtools.TestCase):

    def test_engine_front_end_warns(self):
        engine = sa.create_engine('sqlite://')
        self.addCleanup(engine.dispose)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            db.EngineReadYourWrites(engine)
        self.assertEqual([DeprecationWarning],
                         [w.category for w in caught])
        self.assertIn('mysql_wsrep_sync_wait', str(caught[0].message))

    def test_facade_front_end_warns(self):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            db.FacadeReadYourWrites(enginefacade.transaction_context())
        self.assertEqual([DeprecationWarning],
                         [w.category for w in caught])
