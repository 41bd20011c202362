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

"""Unit tests of bdm_guard.db's oslo.db enginefacade front end.

A real enginefacade with ``connection`` and ``slave_connection`` on two
sqlite files; the slave lacks the rows, the way a replica lags.
"""

import os

import fixtures
from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa
import sqlalchemy.exc
import testtools

from bdm_guard import db
from tests.unit.db import test_engine as test_db

VOLUMES = test_db.VOLUMES


@enginefacade.transaction_context_provider
class Context:
    """A request context, as nova's and cinder's RequestContext."""


class VolumeNotFound(Exception):
    pass


class FacadeBase(testtools.TestCase):
    """Two sqlite files as primary and slave, and a cinder-like API."""

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.primary_url = 'sqlite:///' + os.path.join(tmp, 'primary.db')
        self.replica_url = 'sqlite:///' + os.path.join(tmp, 'replica.db')
        for url in (self.primary_url, self.replica_url):
            engine = sa.create_engine(url)
            test_db.META.create_all(engine)
            engine.dispose()
        self.context = Context()

    def manager(self, slave=True):
        cm = enginefacade.transaction_context()
        cm.configure(connection=self.primary_url,
                     slave_connection=self.replica_url if slave else None)
        self.addCleanup(lambda: cm.writer.get_engine().dispose())
        return cm

    def insert_on_primary(self, cm):
        with cm.writer.using(self.context) as session:
            session.execute(VOLUMES.insert().values(id='v1',
                                                    status='available'))

    def api(self, cm, **overrides):
        """A cinder-like DB API on cm and a guard for it."""
        guard = db.FacadeReadYourWrites(cm,
                                        conf=test_db.make_conf(**overrides))

        @guard.reader()
        def volume_get_fresh(context, volume_id):
            return context.session.execute(sa.select(VOLUMES).where(
                VOLUMES.c.id == volume_id)).one()

        @cm.reader.async_
        def volume_get_async(context, volume_id):
            row = context.session.execute(sa.select(VOLUMES).where(
                VOLUMES.c.id == volume_id)).first()
            if row is None:
                raise VolumeNotFound(volume_id)
            return row

        @guard.writer()
        def volume_set_status(context, volume_id, status):
            return context.session.execute(VOLUMES.update().where(
                VOLUMES.c.id == volume_id).values(status=status)).rowcount

        @cm.writer
        def volume_update(context, volume_id, values):
            if not context.session.execute(VOLUMES.update().where(
                    VOLUMES.c.id == volume_id).values(**values)).rowcount:
                raise VolumeNotFound(volume_id)
        return guard, volume_get_fresh, volume_get_async, (
            volume_set_status, volume_update)


class FacadeTestCase(FacadeBase):

    def test_decorated_reader_rereads_on_writer(self):
        cm = self.manager()
        self.insert_on_primary(cm)
        guard, get_fresh, _, _ = self.api(cm)
        self.assertEqual('available', get_fresh(self.context, 'v1').status)
        self.assertEqual(
            (1, 1, 1, 1, 0),
            tuple(guard.stats.as_dict()[k] for k in (
                'reads', 'read_misses', 'rereads', 'rereads_found',
                'rereads_causal')))

    def test_decorated_reader_true_miss_raises(self):
        cm = self.manager()
        guard, get_fresh, _, _ = self.api(cm)
        self.assertRaises(sqlalchemy.exc.NoResultFound, get_fresh,
                          self.context, 'v1')
        self.assertEqual(1, guard.stats.rereads)
        self.assertEqual(0, guard.stats.rereads_found)

    def test_read_of_an_api_function_with_own_not_found(self):
        cm = self.manager()
        self.insert_on_primary(cm)
        guard, _, get_async, _ = self.api(cm)
        self.assertRaises(VolumeNotFound, get_async, self.context, 'v1')
        row = guard.read(self.context, get_async, 'v1',
                         not_found=(VolumeNotFound,))
        self.assertEqual('v1', row.id)

    def test_reread_is_independent_of_an_outer_async_reader(self):
        cm = self.manager()
        self.insert_on_primary(cm)
        guard, get_fresh, _, _ = self.api(cm)
        with cm.reader.async_.using(self.context):
            self.assertEqual('v1', get_fresh(self.context, 'v1').id)

    def test_no_slave_and_no_galera_means_no_reread(self):
        cm = self.manager(slave=False)
        guard, get_fresh, _, _ = self.api(cm)
        self.assertRaises(sqlalchemy.exc.NoResultFound, get_fresh,
                          self.context, 'v1')
        self.assertEqual(1, guard.stats.read_misses)
        self.assertEqual(0, guard.stats.rereads)

    def test_disabled(self):
        cm = self.manager()
        self.insert_on_primary(cm)
        guard, get_fresh, _, _ = self.api(cm, read_your_writes=False)
        self.assertRaises(sqlalchemy.exc.NoResultFound, get_fresh,
                          self.context, 'v1')
        self.assertEqual(0, guard.stats.rereads)

    def test_write_hit_commits_on_primary(self):
        cm = self.manager()
        self.insert_on_primary(cm)
        guard, _, _, (set_status, update) = self.api(cm)
        self.assertEqual(1, set_status(self.context, 'v1', 'in-use'))
        guard.write(self.context, update, 'v1', {'status': 'error'},
                    not_found=(VolumeNotFound,))
        with cm.writer.using(self.context) as session:
            self.assertEqual('error', session.execute(
                sa.select(VOLUMES.c.status)).scalar_one())
        self.assertEqual((2, 0), (guard.stats.writes,
                                  guard.stats.write_misses))

    def test_write_miss_on_a_real_primary_is_final(self):
        cm = self.manager()
        guard, _, _, (set_status, update) = self.api(cm)
        self.assertEqual(0, set_status(self.context, 'v1', 'in-use'))
        self.assertRaises(VolumeNotFound, guard.write, self.context, update,
                          'v1', {'status': 'x'}, not_found=(VolumeNotFound,))
        self.assertEqual(2, guard.stats.write_misses)
        self.assertEqual(0, guard.stats.rewrites)

    def test_write_inside_a_transaction_is_not_rerun(self):
        cm = self.manager()
        guard, _, _, (set_status, _) = self.api(cm)
        with cm.writer.using(self.context):
            self.assertEqual(0, set_status(self.context, 'v1', 'in-use'))
        self.assertEqual(1, guard.stats.write_misses)
        self.assertEqual(0, guard.stats.rewrites)


class GlanceMetadataNotFound(Exception):
    """An answer about a row that exists, like cinder's."""


class SecondAttemptTestCase(FacadeBase):
    """How the one second attempt of a read is counted."""

    def _read_twice(self, second):
        cm = self.manager()
        guard = db.FacadeReadYourWrites(cm, conf=test_db.make_conf())
        calls = []

        def glance_metadata_get(context, volume_id):
            calls.append(volume_id)
            if len(calls) == 1:
                raise VolumeNotFound(volume_id)
            raise second

        self.assertRaises(type(second), guard.read, self.context,
                          glance_metadata_get, 'v1',
                          not_found=(VolumeNotFound,))
        self.assertEqual(2, len(calls))
        return guard.stats

    def test_an_answer_other_than_not_found_is_found(self):
        # The volume is there; it has no Glance metadata: the lag was
        # absorbed, and the caller gets its answer.
        stats = self._read_twice(GlanceMetadataNotFound('v1'))
        self.assertEqual((1, 1, 0), (stats.rereads, stats.rereads_found,
                                     stats.reread_errors))

    def test_a_database_error_is_neither_found_nor_missed(self):
        stats = self._read_twice(sqlalchemy.exc.OperationalError(
            'SELECT 1', {}, Exception('gone away')))
        self.assertEqual((1, 0, 1), (stats.rereads, stats.rereads_found,
                                     stats.reread_errors))
