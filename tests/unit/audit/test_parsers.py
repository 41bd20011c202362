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

"""The INI readers behind the audit, and fuzzing of the whole audit."""

import os

import fixtures
import hypothesis
from hypothesis import strategies as st
from oslotest import base

from bdm_guard.audit import api as audit
from bdm_guard.audit.parsers import ini
from bdm_guard import exception

NOVA = '''\
[DEFAULT]
# comment
debug = true
transport_url = rabbit://a:b@h/
multi = first
  second

[cinder]
http_retries = 1
http_retries = 2
'''

GALERA = '''\
[client]
password = NotAServerOption

[mysqld]
  skip-name-resolve
wsrep-sync-wait = 1
wsrep_cluster_address = "gcomm://a,b"
!includedir /etc/mysql/conf.d/
'''


class TestIni(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def write(self, text, name='f.conf'):
        path = os.path.join(self.tmp, name)
        with open(path, 'wb' if isinstance(text, bytes) else 'w') as f:
            f.write(text)
        return path

    def test_oslo_syntax(self):
        conf = ini.read(self.write(NOVA))
        self.assertEqual(('true', 3), (conf.get('DEFAULT', 'debug').value,
                                       conf.get('DEFAULT', 'debug').line))
        self.assertEqual('first\nsecond', conf.get('DEFAULT', 'multi').value)
        self.assertEqual(5, conf.get('DEFAULT', 'multi').line)
        # The last assignment wins, with its own line.
        self.assertEqual(('2', 10), (conf.get('cinder', 'http_retries').value,
                                     conf.get('cinder', 'http_retries').line))
        self.assertEqual(8, conf.section_lines['cinder'])
        self.assertIsNone(conf.get('cinder', 'nothing'))
        self.assertIsNone(conf.get('nothing', 'nothing'))

    def test_mysql_syntax(self):
        conf = ini.read(self.write(GALERA), mysql=True)
        self.assertEqual('', conf.get('mysqld', 'skip_name_resolve').value)
        option = conf.get('mysqld', 'wsrep_sync_wait')
        self.assertEqual(('1', 6), (option.value, option.line))
        self.assertEqual('gcomm://a,b',
                         conf.get('mysqld', 'wsrep_cluster_address').value)
        self.assertEqual([('!includedir', '/etc/mysql/conf.d/', 8)],
                         conf.includes)

    def test_errors(self):
        for text, needle in (('x = 1\n', 'line 1'),
                             ('[DEFAULT\n', 'line 1'),
                             ('[]\n', 'line 1'),
                             ('[a]\n = 1\n', 'line 2'),
                             ('[a]\nno value here\n', 'line 2'),
                             ('  indented first\n', 'line 1')):
            exc = self.assertRaises(exception.UnreadableInput, ini.read,
                                    self.write(text))
            self.assertIn(needle, str(exc))

    def test_line_numbers_ignore_unicode_separators(self):
        conf = ini.read(self.write('[a]\nx = a\u2028b\ny = 1\n'))
        self.assertEqual(3, conf.get('a', 'y').line)

    def test_bad_files(self):
        self.assertRaises(exception.UnreadableInput, ini.read,
                          os.path.join(self.tmp, 'missing'))
        self.assertRaises(exception.UnreadableInput, ini.read, self.tmp)
        self.assertRaises(exception.UnreadableInput, ini.read,
                          self.write(b'[a]\nx = \x00\x01\n'))
        self.assertEqual({}, ini.read(self.write('')).sections)

    @hypothesis.given(st.binary(max_size=300) | st.text(max_size=300),
                      st.booleans())
    @hypothesis.settings(max_examples=300, deadline=None)
    def test_fuzz(self, data, mysql):
        path = self.write(data)
        try:
            ini.read(path, mysql=mysql)
        except exception.UnreadableInput:
            pass


_LINES = st.sampled_from([
    '[DEFAULT]', '[cinder]', '[database]', '[mysqld]', '[galera]',
    '[bdm_guard]', 'block_device_allocate_retries = 10',
    'block_device_allocate_retries = -1', 'block_device_allocate_retries = x',
    'block_device_allocate_retries_interval = 0',
    'block_device_allocate_retries_interval = 1e9', 'http_retries = 3',
    'per_gib_allowance = 0', 'per_gib_allowance = -5', 'wsrep_sync_wait = 3',
    'wsrep_sync_wait = x', 'innodb_flush_log_at_trx_commit = 0',
    'connection = mysql://u:p@h:99999/x', 'connection = mysql://[::1/x',
    'rpc_response_timeout = 0', 'connection_recycle_time = 5',
    'mysql_wsrep_sync_wait = 2', 'listen galera', 'listen cinder_api',
    'defaults', 'frontend f', 'backend b from nowhere', ' bind :3306',
    ' bind :8776', ' server a 1.1.1.1:3306', ' server b 1.1.1.2:8776 check',
    ' timeout client 1s', ' timeout server x', ' balance first',
    ' retry-on 504', ' default_backend b', '']) | st.text(max_size=40)


class TestAuditFuzz(base.BaseTestCase):
    """Any input: findings or a typed error, never another exception."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    @hypothesis.given(st.lists(_LINES, max_size=25),
                      st.lists(_LINES, max_size=25),
                      st.lists(_LINES, max_size=25),
                      st.integers(min_value=-2, max_value=100000))
    @hypothesis.settings(max_examples=200, deadline=None)
    def test_fuzz_audit(self, nova, haproxy, galera, image_gb):
        paths = []
        for name, lines in (('nova.conf', nova), ('haproxy.cfg', haproxy),
                            ('galera.cnf', galera)):
            path = os.path.join(self.tmp, name)
            with open(path, 'w') as f:
                f.write('\n'.join(lines))
            paths.append(path)
        try:
            result = audit.audit(nova_conf=paths[0], haproxy_cfg=paths[1],
                                 galera_cnf=paths[2], cinder_conf=paths[0],
                                 image_gb=image_gb)
        except exception.InvalidInput:
            return
        for finding in result:
            self.assertNotIn(':p@', finding.message + finding.fix)
