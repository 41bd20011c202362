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

"""bdm_guard.db on a real 3-node Galera cluster, node 3 lagging on demand.

Rows are written through node 1 and looked up through node 3, the way a VIP
in ``balance roundrobin`` sends two requests to two nodes.
"""

import time
import uuid

from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa
import testtools

from bdm_guard import db
from bdm_guard.internal.db import galera
from tests.functional.db import fixtures as db_fixtures
from tests.unit.db import test_engine as test_db

VOLUMES = test_db.VOLUMES
LAG = 3.0


class VolumeNotFound(Exception):
    pass


@enginefacade.transaction_context_provider
class Context:
    """A request context, as cinder's RequestContext."""


class GaleraTestCase(testtools.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cluster = db_fixtures.GaleraCluster()
        cls.cluster.setUp()
        cls.node1, _, cls.node3 = cls.cluster.nodes
        cls.engine1 = sa.create_engine(cls.node1.url())
        cls.engine3 = sa.create_engine(cls.node3.url())
        test_db.META.create_all(cls.engine1)

    @classmethod
    def tearDownClass(cls):
        cls.engine1.dispose()
        cls.engine3.dispose()
        cls.cluster.cleanUp()
        super().tearDownClass()

    def insert(self, status='creating'):
        volume_id = str(uuid.uuid4())
        with self.engine1.begin() as conn:
            conn.execute(VOLUMES.insert().values(id=volume_id, status=status,
                                                 version=1))
        return volume_id

    def plain_get(self, volume_id):
        with self.engine3.connect() as conn:
            return test_db.get(conn, volume_id)

    def test_detects_galera(self):
        self.assertTrue(galera.is_galera(self.engine3))

    def test_a_read_on_lagging_node_is_reread_causally(self):
        guard = db.EngineReadYourWrites(self.engine1, self.engine3)
        with self.cluster.lag(self.node3, LAG):
            volume_id = self.insert()
            self.assertIsNone(self.plain_get(volume_id))
            row = guard.read(lambda conn: test_db.get(conn, volume_id))
        self.assertEqual(volume_id, row.id)
        stats = guard.stats.as_dict()
        self.assertEqual((1, 1, 1, 1), (
            stats['read_misses'], stats['rereads'], stats['rereads_causal'],
            stats['rereads_found']))
        self.assertEqual('0', self._session_sync_wait(guard))

    def _session_sync_wait(self, guard):
        # the pooled connection the re-read used has its value restored
        with guard.replica.connect() as conn:
            return str(conn.exec_driver_sql(
                'SELECT @@SESSION.wsrep_sync_wait').scalar())

    def test_a_write_on_lagging_node_is_redone_causally(self):
        guard = db.EngineReadYourWrites(self.engine3)
        with self.cluster.lag(self.node3, LAG, method='commit'):
            volume_id = self.insert()
            with self.engine3.connect() as conn:
                self.assertEqual(0, test_db.set_status(
                    conn, 'available', volume_id).rowcount)
                conn.rollback()
            result = guard.write(lambda conn: test_db.set_status(
                conn, 'available', volume_id).rowcount)
        self.assertEqual(1, result)
        self.assertEqual((1, 1, 1), (guard.stats.write_misses,
                                     guard.stats.rewrites_causal,
                                     guard.stats.rewrites_found))
        with self.engine1.connect() as conn:
            self.assertEqual('available', test_db.get(conn, volume_id).status)

    def test_a_facade_update_and_get_on_lagging_vip(self):
        # cinder's shape: connection = a VIP that reached node 3
        cm = enginefacade.transaction_context()
        cm.configure(connection=self.node3.url())
        self.addCleanup(lambda: cm.writer.get_engine().dispose())

        @cm.writer
        def volume_update(context, volume_id, values):
            if not context.session.execute(VOLUMES.update().where(
                    VOLUMES.c.id == volume_id).values(**values)).rowcount:
                raise VolumeNotFound(volume_id)

        @cm.reader
        def volume_get(context, volume_id):
            return context.session.execute(sa.select(VOLUMES).where(
                VOLUMES.c.id == volume_id)).one()

        guard = db.FacadeReadYourWrites(cm, not_found=(VolumeNotFound,))
        context = Context()
        with self.cluster.lag(self.node3, LAG, method='commit'):
            volume_id = self.insert()
            self.assertRaises(VolumeNotFound, volume_update, context,
                              volume_id, {'status': 'available'})
            guard.write(context, volume_update, volume_id,
                        {'status': 'available'})
        with self.cluster.lag(self.node3, LAG):
            volume_id2 = self.insert()
            row = guard.read(context, volume_get, volume_id2,
                             not_found=(sa.exc.NoResultFound,))
        self.assertEqual(volume_id2, row.id)
        self.assertEqual('available', volume_get(context, volume_id).status)
        self.assertEqual((1, 1), (guard.stats.rewrites_found,
                                  guard.stats.rereads_found))

    def test_c_true_miss_stays_a_miss_promptly(self):
        guard = db.EngineReadYourWrites(self.engine1, self.engine3)
        start = time.monotonic()
        self.assertIsNone(guard.read(
            lambda conn: test_db.get(conn, 'no-such-volume')))
        self.assertRaises(sa.exc.NoResultFound, guard.read,
                          lambda conn: test_db.get_one(conn, 'no-such'))
        elapsed = time.monotonic() - start
        self.assertEqual((2, 2, 0), (guard.stats.rereads,
                                     guard.stats.rereads_causal,
                                     guard.stats.rereads_found))
        self.addDetail('elapsed', testtools.content.text_content(
            '%.3f s for two true misses' % elapsed))
        self.assertLess(elapsed, LAG)

    def test_causal_timeout_falls_back_to_primary(self):
        self.node3.query("SET GLOBAL wsrep_provider_options="
                         "'repl.causal_read_timeout=PT1S'")
        self.addCleanup(self.node3.query, "SET GLOBAL wsrep_provider_options"
                        "='repl.causal_read_timeout=PT30S'")
        guard = db.EngineReadYourWrites(self.engine1, self.engine3)
        with self.cluster.lag(self.node3, LAG):
            volume_id = self.insert()
            row = guard.read(lambda conn: test_db.get(conn, volume_id))
        self.assertEqual(volume_id, row.id)
        # two re-reads: the causal one that timed out, then the primary's
        self.assertEqual((1, 2, 1, 1), (guard.stats.causal_timeouts,
                                        guard.stats.rereads,
                                        guard.stats.rereads_causal,
                                        guard.stats.rereads_found))
