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

"""The haproxy.cfg reader."""

import os
import shutil
import subprocess

import fixtures
import hypothesis
from hypothesis import strategies as st
from oslotest import base

from bdm_guard.audit.parsers import haproxy
from bdm_guard import exception

CASES = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                     'data', 'configs')

SPLIT = '''\
global
  log /dev/log local0 # a comment

defaults base
  mode http
  timeout client 90s
  timeout server 300s

defaults
  timeout server 1m

frontend api
  bind *:13776 ssl crt "/etc/pki/my cert.pem"
  bind 192.0.2.10:8776,192.0.2.11:8777
  default_backend volume_api

backend volume_api from base
  server a 192.0.2.11:8776 check
  server b 192.0.2.12:8776 backup check
  server c 192.0.2.13:8776 disabled
  server d unix@/run/cinder.sock

backend other
  timeout server 2000
'''


class TestParseTime(base.BaseTestCase):

    def test_units(self):
        for text, seconds in (('2000', 2.0), ('30s', 30.0), ('90m', 5400.0),
                              ('1h', 3600.0), ('1d', 86400.0),
                              ('500ms', 0.5), ('10us', 1e-5)):
            self.assertAlmostEqual(seconds, haproxy.parse_time(text))

    def test_invalid(self):
        for text in ('', 's', '30 s', '-1s', '1.5s', '30sec', None):
            self.assertRaises(ValueError, haproxy.parse_time, text)


class TestSplitLine(base.BaseTestCase):

    def test_words(self):
        self.assertEqual(['server', 'a', '1.2.3.4:80', 'check'],
                         haproxy.split_line('  server a\t1.2.3.4:80 check',
                                            1))

    def test_comment_quotes_escapes(self):
        self.assertEqual(['a', 'b c', 'd#e', 'f g'], haproxy.split_line(
            'a "b c" \'d#e\' f\\ g # comment "x', 1))
        self.assertEqual(['x"y'], haproxy.split_line('"x\\"y"', 1))
        self.assertEqual([''], haproxy.split_line('""', 1))
        self.assertEqual([], haproxy.split_line('   # only a comment', 1))

    def test_unterminated_quote(self):
        self.assertRaises(ValueError, haproxy.split_line, 'a "b c', 3)

    @hypothesis.given(st.text())
    @hypothesis.settings(max_examples=300, deadline=None)
    def test_fuzz_split(self, text):
        try:
            words = haproxy.split_line(text, 1)
        except ValueError:
            return
        self.assertIsInstance(words, list)


class TestRead(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def write(self, text, mode='w'):
        path = os.path.join(self.tmp, 'haproxy.cfg')
        with open(path, mode) as f:
            f.write(text)
        return path

    def test_sections_and_inheritance(self):
        config = haproxy.read(self.write(SPLIT))
        kinds = [(s.kind, s.name, s.line) for s in config.sections]
        self.assertEqual([('global', '', 1), ('defaults', 'base', 4),
                          ('defaults', '', 9), ('frontend', 'api', 12),
                          ('backend', 'volume_api', 17),
                          ('backend', 'other', 23)], kinds)
        backend = config.backend('volume_api')
        # "from base" picks the named defaults, not the last one.
        self.assertEqual(['server', '300s'],
                         backend.find('timeout', 'server').args)
        self.assertEqual(7, backend.find('timeout', 'server').line)
        other = config.backend('other')
        self.assertEqual(['server', '2000'],
                         other.find('timeout', 'server').args)
        self.assertIsNone(other.own('balance'))

    def test_servers_binds_and_routes(self):
        config = haproxy.read(self.write(SPLIT))
        backend = config.backend('volume_api')
        servers = {s.name: s for s in backend.servers()}
        self.assertEqual(8776, servers['a'].port)
        self.assertTrue(servers['a'].check)
        self.assertTrue(servers['b'].backup)
        self.assertTrue(servers['c'].disabled)
        self.assertIsNone(servers['d'].port)
        frontend = config.frontends_of(backend)
        self.assertEqual(['api'], [f.name for f in frontend])
        self.assertEqual({13776, 8776, 8777}, frontend[0].bind_ports())
        self.assertEqual(['/etc/pki/my cert.pem'],
                         frontend[0].all('bind')[0].args[3:])

    def test_timeouts(self):
        config = haproxy.read(self.write(SPLIT))
        found = config.timeouts(config.backend('volume_api'))
        # The frontend inherits from the unnamed defaults: no client timeout.
        self.assertEqual([(300.0, 'server', 7)],
                         [(s, w, d.line) for s, w, d in found])
        # A listen section is its own frontend; bad values are left out.
        config = haproxy.read(self.write(
            'defaults\n timeout client 30x\nlisten db\n timeout server 5m\n'
            ' server a 1.2.3.4:3306\n'))
        found = config.timeouts(config.backend('db'))
        self.assertEqual([(300.0, 'server')], [f[:2] for f in found])

    def test_keyword_outside_section(self):
        exc = self.assertRaises(exception.UnreadableInput, haproxy.read,
                                self.write('[DEFAULT]\nfoo = bar\n'))
        self.assertIn('line 1', str(exc))

    def test_no_proxy(self):
        for text in ('', '\n# nothing\n', 'global\n daemon\n'):
            exc = self.assertRaises(exception.UnreadableInput, haproxy.read,
                                    self.write(text))
            self.assertIn('no frontend, backend or listen', str(exc))

    def test_bad_quote(self):
        exc = self.assertRaises(exception.UnreadableInput, haproxy.read,
                                self.write('listen a\n bind "x\n'))
        self.assertIn('line 2', str(exc))

    def test_binary_and_missing(self):
        path = self.write(b'\x7fELF\x02\x01\x01\x00' + bytes(range(256)),
                          'wb')
        exc = self.assertRaises(exception.UnreadableInput, haproxy.read,
                                path)
        self.assertIn('binary', str(exc))
        self.assertRaises(exception.UnreadableInput, haproxy.read,
                          os.path.join(self.tmp, 'missing.cfg'))
        self.assertRaises(exception.UnreadableInput, haproxy.read, self.tmp)

    @hypothesis.given(st.lists(st.sampled_from([
        'global', 'defaults', 'listen x', 'backend b', 'frontend f',
        ' bind :8776', ' server s 1.2.3.4:3306 backup', ' timeout server 1m',
        ' timeout client 5', ' default_backend b', ' use_backend x',
        ' balance source', ' "unterminated', ' server', ' bind',
        ' retry-on all-retryable-errors', '# c', '']) | st.text(),
        max_size=30))
    @hypothesis.settings(max_examples=200, deadline=None)
    def test_fuzz_read(self, lines):
        path = self.write('\n'.join(lines))
        try:
            config = haproxy.read(path)
        except exception.UnreadableInput:
            return
        for section in config.proxies():
            section.servers()
            section.bind_ports()
            if section.kind != 'frontend':
                config.timeouts(section)


class TestCaseConfigs(base.BaseTestCase):
    """The audit's haproxy.cfg cases are valid for the real haproxy."""

    def test_cases_parse(self):
        for name in sorted(os.listdir(CASES)):
            path = os.path.join(CASES, name, 'haproxy.cfg')
            if os.path.exists(path):
                self.assertTrue(haproxy.read(path).proxies(), name)

    def test_real_haproxy_accepts_them(self):
        binary = shutil.which('haproxy')
        if binary is None:
            self.skipTest('haproxy is not installed (bindep: haproxy)')
        for name in sorted(os.listdir(CASES)):
            path = os.path.join(CASES, name, 'haproxy.cfg')
            if os.path.exists(path):
                check = subprocess.run([binary, '-c', '-f', path],
                                       capture_output=True, text=True,
                                       timeout=60)
                self.assertEqual(0, check.returncode,
                                 (name, check.stdout, check.stderr))


class TestConditionalBlocks(base.BaseTestCase):
    """haproxy 2.4+ ``.if``/``.elif``/``.else``/``.endif`` blocks."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def read(self, text):
        path = os.path.join(self.tmp, 'haproxy.cfg')
        with open(path, 'w') as f:
            f.write(text)
        return haproxy.read(path)

    def test_branches(self):
        config = self.read(
            '.if version_atleast(2.4)\n'
            'global\n'
            '  daemon\n'
            '.endif\n'
            '.notice "reading the api"\n'
            'listen api\n'
            '.if 0\n'
            '  server a 192.0.2.1:8776\n'
            '.elif streq(x,y)\n'
            '  server b 192.0.2.2:8776\n'
            '.elif 1\n'
            '  server c 192.0.2.3:8776 check\n'
            '.if !0\n'
            '  server d 192.0.2.4:8776 check\n'
            '.endif\n'
            '.else\n'
            '  server e 192.0.2.5:8776\n'
            '.endif\n'
            '.if defined(SOME_ENV) && 0\n'
            '  server f 192.0.2.6:8776\n'
            '.else\n'
            '  timeout server 5m\n'
            '.endif\n')
        self.assertEqual(['global', 'listen'],
                         [s.kind for s in config.sections])
        api = config.backend('api')
        self.assertEqual(['c', 'd'], [s.name for s in api.servers()])
        self.assertEqual(['server', '5m'], api.find('timeout', 'server').args)

    def test_host_dependent_conditions_take_the_first_branch(self):
        config = self.read('listen api\n'
                           '.if defined(HAPROXY_LOCALPEER)\n'
                           '  server a 192.0.2.1:8776\n'
                           '.else\n'
                           '  server b 192.0.2.2:8776\n'
                           '.endif\n')
        self.assertEqual(['a'], [s.name for s in
                                 config.backend('api').servers()])

    def test_unbalanced_blocks_are_refused(self):
        for text, needle in (('listen a\n.endif\n', 'line 2: .endif'),
                             ('listen a\n.else\n', 'line 2: .else'),
                             ('listen a\n.if 1\n bind :1\n', 'line 2: .if'),
                             ('listen a\n.include x\n', 'line 2: unknown')):
            exc = self.assertRaises(exception.UnreadableInput, self.read,
                                    text)
            self.assertIn(needle, str(exc))

    def test_conditions(self):
        for words, value in ((['1'], True), (['0'], False), (['!1'], False),
                             (['streq(a,a)'], True), (['strneq(a,a)'], False),
                             (['0', '||', '1'], True), (['1&&0'], False),
                             (['feature(OPENSSL)'], True), ([], False)):
            self.assertEqual(value, haproxy.evaluate_condition(words), words)

    def test_real_haproxy_agrees(self):
        binary = shutil.which('haproxy')
        if binary is None:
            self.skipTest('haproxy is not installed (bindep: haproxy)')
        path = os.path.join(self.tmp, 'haproxy.cfg')
        with open(path, 'w') as f:
            f.write('defaults\n mode http\n timeout connect 1s\n'
                    '.if 0\n timeout client 1s\n.else\n timeout client 1m\n'
                    '.endif\n timeout server 1m\nlisten api\n bind :18776\n'
                    ' server a 127.0.0.1:8776\n')
        check = subprocess.run([binary, '-c', '-f', path],
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(0, check.returncode, check.stderr)
        self.assertEqual(['client', '1m'], haproxy.read(path).backend(
            'api').find('timeout', 'client').args)
