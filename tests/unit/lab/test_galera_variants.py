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

"""The Galera variants, their haproxy, and the database figures."""

import os
import tempfile

import testtools

from bdm_guard_lab.arms import metrics
from bdm_guard_lab.cinder import service
from bdm_guard_lab.db import haproxy
from bdm_guard_lab.db import variants

BACKENDS = [('node1', 1001), ('node2', 1002), ('node3', 1003)]


class VariantsTestCase(testtools.TestCase):

    def test_names(self):
        self.assertEqual(('multi-writer', 'sync-wait', 'single-writer'),
                         variants.NAMES)
        self.assertEqual({'mysql_wsrep_sync_wait': 3}, dict(
            variants.get('sync-wait').database_options))
        self.assertTrue(variants.get('single-writer').single_writer)
        self.assertFalse(variants.get('multi-writer').single_writer)
        self.assertEqual((), variants.get('multi-writer').database_options)

    def test_unknown(self):
        self.assertRaises(ValueError, variants.get, 'sync_wait')


class HaproxyRenderTestCase(testtools.TestCase):

    def _servers(self, text):
        return [line.strip() for line in text.splitlines()
                if line.strip().startswith('server ')]

    def test_roundrobin_has_no_backup(self):
        text = haproxy.render('galera', 3306, BACKENDS)
        self.assertIn('balance roundrobin', text)
        self.assertEqual(
            ['server node%d 127.0.0.1:100%d check inter 1s' % (i, i)
             for i in (1, 2, 3)], self._servers(text))

    def test_single_writer_marks_the_others_backup(self):
        text = haproxy.render('galera', 3306, BACKENDS, backup_after=1)
        self.assertEqual(
            ['server node1 127.0.0.1:1001 check inter 1s',
             'server node2 127.0.0.1:1002 check inter 1s backup',
             'server node3 127.0.0.1:1003 check inter 1s backup'],
            self._servers(text))


class LatencyTestCase(testtools.TestCase):

    def test_split_by_lag_window(self):
        latencies = [(0.5, 0.010), (1.0, 2.0), (2.0, 4.0), (4.9, 6.0),
                     (5.0, 0.020), (9.0, 0.030)]
        figures = metrics.get_latency(latencies, {'start': 1.0, 'end': 5.0})
        self.assertEqual((3, 2), (figures['gets_lag'], figures['gets']))
        self.assertEqual(4000.0, figures['get_ms_lag_p50'])
        self.assertEqual(6000.0, figures['get_ms_lag_p95'])
        self.assertEqual(6000.0, figures['get_ms_lag_max'])
        self.assertEqual(20.0, figures['get_ms_p50'])
        self.assertEqual(30.0, figures['get_ms_p95'])
        self.assertEqual('4000.0 / 6000.0 (6000.0)',
                         metrics.format_latency(figures, True))

    def test_no_lag_counts_every_get_as_without(self):
        figures = metrics.get_latency([(1.0, 0.01), (2.0, 0.02)])
        self.assertEqual((0, 2), (figures['gets_lag'], figures['gets']))
        self.assertIsNone(figures['get_ms_lag_p50'])
        self.assertEqual('-', metrics.format_latency(figures, True))

    def test_db_figures(self):
        volumes = [{'status': 'error'}, {'status': 'creating'},
                   {'status': 'available'}, {'status': 'downloading'}]
        figures = metrics.db_figures(
            volumes, {'db_retry_limit': 2, 'db_deadlocks': 5}, [],
            None, 'sync-wait')
        self.assertEqual(('sync-wait', 1, 2, 2, 5), (
            figures['db_variant'], figures['volumes_in_error'],
            figures['volumes_stuck'], figures['db_retry_limit'],
            figures['db_deadlocks']))
        self.assertIsNone(metrics.db_figures([])['db_deadlocks'])


class CountDbErrorsTestCase(testtools.TestCase):

    def test_counts_records_and_tracebacks(self):
        prefix = '2026-12-02 01:00:00.000 123 ERROR oslo_db.api '
        lines = [
            prefix + 'DB exceeded retry limit.',
            prefix + 'Traceback (most recent call last):',
            prefix + '    raise exception.DBDeadlock(error)',
            prefix + 'oslo_db.exception.DBDeadlock: (pymysql.err.'
                     'OperationalError) (1213, \'Deadlock found\')',
            '2026-12-02 01:00:01.000 123 INFO cinder.api hit',
        ]
        with tempfile.NamedTemporaryFile('w', delete=False) as log:
            log.write('\n'.join(lines) + '\n')
        self.addCleanup(os.unlink, log.name)
        self.assertEqual({'db_retry_limit': 1, 'db_deadlocks': 1},
                         service.count_db_errors(log.name))

    def test_missing_log(self):
        self.assertEqual({'db_retry_limit': 0, 'db_deadlocks': 0},
                         service.count_db_errors('/nonexistent/cinder.log'))
