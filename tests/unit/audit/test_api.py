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

"""``bdm-guard audit``: every folder of tests/unit/data/configs, and bad input.

Each folder holds some of nova.conf, cinder.conf, haproxy.cfg and
galera.cnf, and an expected.yaml: ``findings`` (kinds that must appear,
optionally with severity, file base name and line), ``absent_kinds`` and
``never_printed`` (secrets that no output format may show).
"""

import json
import os
import shutil
import subprocess

import fixtures
from oslotest import base
import yaml

from bdm_guard.audit import api as audit
from bdm_guard.audit import findings
from tests.unit import cases

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                    'data', 'configs')
OPTIONS = (('nova.conf', '--nova-conf'), ('haproxy.cfg', '--haproxy-cfg'),
           ('galera.cnf', '--galera-cnf'), ('cinder.conf', '--cinder-conf'))
FIELDS = ('kind', 'severity', 'file', 'line', 'message', 'fix')


run_cli = cases.run_cli


def case_args(folder):
    args = []
    for name, option in OPTIONS:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            args += [option, path]
    return args


class TestAuditCases(base.BaseTestCase):
    """One test per folder of tests/unit/data/configs."""

    def _check(self, name):
        folder = os.path.join(DATA, name)
        with open(os.path.join(folder, 'expected.yaml')) as f:
            expected = yaml.safe_load(f)
        rc, out, err = run_cli('audit', *case_args(folder), '-f', 'json')
        self.assertIn(rc, (0, 1), err)
        result = json.loads(out)
        for finding in result:
            self.assertEqual(set(FIELDS), set(finding))
            self.assertIn(finding['severity'], findings.SEVERITIES)
            for field in ('kind', 'file', 'message', 'fix'):
                self.assertTrue(finding[field], finding)
        kinds = [f['kind'] for f in result]
        for want in expected.get('findings') or []:
            matches = [f for f in result if f['kind'] == want['kind']]
            self.assertTrue(matches, '%s missing from %s' % (want['kind'],
                                                             kinds))
            got = matches[0]
            if 'severity' in want:
                self.assertEqual(want['severity'], got['severity'], got)
            if 'file' in want:
                self.assertEqual(want['file'], os.path.basename(got['file']))
            if 'line' in want:
                self.assertEqual(want['line'], got['line'], got)
        for kind in expected.get('absent_kinds', []):
            self.assertNotIn(kind, kinds)
        # rc 1 exactly when a high or critical finding exists.
        worst = max([findings.SEVERITIES.index(f['severity'])
                     for f in result] or [-1])
        self.assertEqual(1 if worst >= 2 else 0, rc)
        for fmt in ('json', 'table', 'yaml', 'csv', 'value'):
            rc, out, err = run_cli('audit', *case_args(folder), '-f', fmt)
            for secret in expected.get('never_printed', []):
                self.assertNotIn(secret, out + err, fmt)


cases.add_case_tests(TestAuditCases, DATA)


class TestAuditCli(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.seed = case_args(os.path.join(DATA, 'seed-ha'))

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, 'wb' if isinstance(data, bytes) else 'w') as f:
            f.write(data)
        return path

    def assertInputError(self, argv, *needles):
        rc, out, err = run_cli('audit', *argv)
        self.assertEqual(2, rc, (out, err))
        self.assertNotIn('Traceback', out + err)
        for needle in needles:
            self.assertIn(needle, err)
        return err

    def test_fail_on(self):
        self.assertEqual(1, run_cli('audit', *self.seed)[0])
        self.assertEqual(0, run_cli('audit', *self.seed, '--fail-on',
                                    'critical')[0])
        self.assertEqual(0, run_cli('audit', *self.seed, '--fail-on',
                                    'never')[0])
        self.assertEqual(1, run_cli('audit', *self.seed, '--fail-on',
                                    'medium')[0])

    def test_files_are_optional(self):
        nova = os.path.join(DATA, 'seed-ha', 'nova.conf')
        rc, out, _ = run_cli('audit', '--nova-conf', nova, '-f', 'value',
                             '-c', 'kind')
        self.assertEqual(['blind_post_retries',
                          'wait_budget_too_small_for_image_volumes'],
                         sorted(out.split()))

    def test_image_size(self):
        nova = self.write('nova.conf', '[DEFAULT]\n'
                          'block_device_allocate_retries = 60\n'
                          'block_device_allocate_retries_interval = 5\n'
                          '[cinder]\nhttp_retries = 0\n')
        self.assertEqual([], audit.audit(nova_conf=nova, image_gb=15))
        found = audit.audit(nova_conf=nova, image_gb=20)
        self.assertEqual([('wait_budget_too_small_for_image_volumes',
                           'medium', 2)],
                         [(f.kind, f.severity, f.line) for f in found])
        self.assertIn('400 s', found[0].fix)

    def test_refused_values_are_findings_of_their_own(self):
        nova = self.write('nova.conf', '[DEFAULT]\n'
                          'block_device_allocate_retries = -5\n'
                          'block_device_allocate_retries_interval = -1\n'
                          '[cinder]\nhttp_retries = -1\n')
        found = audit.audit(nova_conf=nova)
        self.assertEqual([('option_value_out_of_range', 2),
                          ('option_value_out_of_range', 3),
                          ('option_value_out_of_range', 5)],
                         [(f.kind, f.line) for f in found])
        self.assertIn('= -5 is out of range: it must be at least 0',
                      found[0].message)
        # No arithmetic on them: no "-4 checks" or "-5 s" budget anywhere.
        self.assertFalse([f for f in found if '-4' in f.message])

    def test_invalid_number_is_not_the_default(self):
        nova = self.write('nova.conf', '[cinder]\nhttp_retries = 3x\n')
        found = audit.audit(nova_conf=nova, image_gb=5)
        self.assertEqual(['invalid_option_value'], [f.kind for f in found])
        self.assertNotIn('http_retries = 3', found[0].message)
        # The default alone is still a finding, without a line.
        nova = self.write('nova.conf', '[cinder]\n')
        found = [f for f in audit.audit(nova_conf=nova, image_gb=5)
                 if f.kind == 'blind_post_retries']
        self.assertEqual([None], [f.line for f in found])
        self.assertIn('(the default)', found[0].message)

    def test_timeout_haproxy_refuses(self):
        cfg = self.write('haproxy.cfg', 'defaults\n mode http\n'
                         ' timeout connect 5s\n timeout client 2m\n'
                         'listen cinder_api\n bind :8776\n'
                         ' timeout server 30d\n'
                         ' server a 192.0.2.1:8776 check\n')
        found = audit.audit(haproxy_cfg=cfg)
        self.assertEqual([('lb_timeout_invalid', 'critical', 7)],
                         [(f.kind, f.severity, f.line) for f in found])
        self.assertIn('timer overflow', found[0].message)
        binary = shutil.which('haproxy')
        if binary is not None:
            check = subprocess.run([binary, '-c', '-f', cfg],
                                   capture_output=True, text=True,
                                   timeout=60)
            self.assertNotEqual(0, check.returncode)
            self.assertIn('timer overflow', check.stdout + check.stderr)

    def test_sync_wait_one_is_not_enough(self):
        cinder = self.write('cinder.conf', '[database]\n'
                            'mysql_wsrep_sync_wait = 1\n')
        seed = os.path.join(DATA, 'seed-ha', 'haproxy.cfg')
        found = {f.kind: f for f in audit.audit(cinder_conf=cinder,
                                                haproxy_cfg=seed)}
        service = found['service_db_without_causal_reads']
        self.assertEqual((cinder, 2), (service.file, service.line))
        self.assertIn('mysql_wsrep_sync_wait = 3', service.fix)
        self.assertIn('single-writer', service.fix)
        # The figures measured through real nova are quoted.
        self.assertIn('14/20, 8/20, 47/50, 43/50', service.message)
        self.assertIn('single writer all ACTIVE in every run',
                      service.message)
        self.assertIn('galera_causal_reads_miss_writes', found)
        self.assertIn('backup', found['galera_causal_reads_miss_writes'].fix)
        # 3 ends the per-service finding; the multi-writer one stays.
        cinder = self.write('cinder.conf', '[database]\n'
                            'mysql_wsrep_sync_wait = 3\n')
        kinds = [f.kind for f in audit.audit(cinder_conf=cinder,
                                             haproxy_cfg=seed)]
        self.assertNotIn('service_db_without_causal_reads', kinds)
        self.assertIn('multi_writer_galera_deadlocks', kinds)
        for value in ('16', '-1'):
            cinder = self.write('cinder.conf', '[database]\n'
                                'mysql_wsrep_sync_wait = %s\n' % value)
            kinds = [f.kind for f in audit.audit(cinder_conf=cinder,
                                                 haproxy_cfg=seed)]
            self.assertIn('option_value_out_of_range', kinds)
            self.assertNotIn('multi_writer_galera_deadlocks', kinds)

    def test_no_file(self):
        self.assertInputError([], 'at least one config file')

    def test_missing_file(self):
        self.assertInputError(['--nova-conf', os.path.join(self.tmp, 'x')],
                              'No such file')

    def test_binary_file(self):
        path = self.write('ls', b'\x7fELF\x02\x01\x01\x00\x00' * 50)
        for option in ('--nova-conf', '--haproxy-cfg', '--galera-cnf',
                       '--cinder-conf'):
            self.assertInputError([option, path], 'binary')
        path = self.write('latin1', b'password = caf\xe9\n')
        self.assertInputError(['--nova-conf', path], 'not UTF-8')

    def test_empty_files(self):
        path = self.write('empty', '')
        rc, out, err = run_cli('audit', '--galera-cnf', path)
        self.assertEqual(0, rc, err)
        self.assertInputError(['--haproxy-cfg', path], 'no frontend')

    def test_broken_ini_never_quotes_the_line(self):
        path = self.write('nova.conf', '[DEFAULT]\nfoo = 1\n'
                          'admin_password Leaked1\n')
        err = self.assertInputError(['--nova-conf', path], 'line 3')
        self.assertNotIn('Leaked1', err)
        path = self.write('nova2.conf', '  admin_password = Leaked2\n')
        err = self.assertInputError(['--nova-conf', path], 'line 1')
        self.assertNotIn('Leaked2', err)

    def test_galera_only_and_dump(self):
        shutil.copy(os.path.join(DATA, 'seed-ha', 'galera.cnf'), self.tmp)
        found = audit.audit(galera_cnf=os.path.join(self.tmp, 'galera.cnf'))
        self.assertEqual(['durability_traded_for_nothing'],
                         [f.kind for f in found])
        self.assertEqual('medium', audit.worst(found))
        self.assertIsNone(audit.worst([]))


class TestMask(base.BaseTestCase):

    def test_urls_and_options(self):
        cases = {
            'rabbit://nova:s1@h1:5672,nova:s2@h2:5672/':
                'rabbit://nova:***@h1:5672,nova:***@h2:5672/',
            'connection = mysql+pymysql://nova:p@ss@10.0.0.1/nova':
                'connection = mysql+pymysql://nova:***@ss@10.0.0.1/nova',
            'admin_password = hunter2': 'admin_password = ***',
            'http://host:8776/v3/volumes': 'http://host:8776/v3/volumes',
        }
        for text, masked in cases.items():
            self.assertEqual(masked, findings.mask(text))

    def test_finding_masked(self):
        finding = findings.Finding('k', 'low', 'f', 1,
                                   'url mysql://u:pw@h/db', 'password=pw')
        masked = finding.masked()
        self.assertNotIn('pw@', masked.message)
        self.assertEqual('password=***', masked.fix)
