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

"""``bdm-guard audit`` on Kolla-Ansible- and OpenStack-Ansible-shaped trees.

The trees in tests/unit/data/deploy are rendered from those projects'
templates (see its README.rst). Also: several haproxy files and a
directory, ProxySQL, the launcher, wrong file kinds, the events
prerequisites, and the audit's cost on a large haproxy.cfg (counted
section visits, no clock).
"""

import os

import fixtures
from oslotest import base

from bdm_guard.audit import api as audit
from bdm_guard.audit.parsers import haproxy
from bdm_guard.audit.parsers import proxysql
from bdm_guard import exception
from tests.unit import cases

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'data',
                    'deploy')
KOLLA = os.path.join(DATA, 'kolla')
OSA = os.path.join(DATA, 'osa')
TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(__file__)))), 'tools')


def kinds(findings):
    return sorted({f.kind for f in findings})


class TestKolla(base.BaseTestCase):

    def run_audit(self, **kwargs):
        args = dict(
            nova_conf=os.path.join(KOLLA, 'nova-compute', 'nova.conf'),
            cinder_conf=os.path.join(KOLLA, 'cinder-api', 'cinder.conf'),
            galera_cnf=os.path.join(KOLLA, 'mariadb', 'galera.cnf'))
        args.update(kwargs)
        return audit.audit(**args)

    def test_main_haproxy_cfg_alone_is_no_all_clear(self):
        found = self.run_audit(
            haproxy_cfg=os.path.join(KOLLA, 'haproxy', 'haproxy.cfg'))
        self.assertIn('haproxy_cinder_api_proxy_not_found', kinds(found))
        self.assertIn('haproxy_file_without_checked_proxies', kinds(found))
        self.assertNotIn('lb_timeout_shorter_than_slow_requests',
                         kinds(found))

    def test_main_file_and_services_d(self):
        found = self.run_audit(haproxy_cfg=[
            os.path.join(KOLLA, 'haproxy', 'haproxy.cfg'),
            os.path.join(KOLLA, 'haproxy', 'services.d')])
        short = [f for f in found
                 if f.kind == 'lb_timeout_shorter_than_slow_requests']
        # services.d inherits the main file's 1m defaults: 60 s < 120 s.
        self.assertEqual(2, len(short), found)
        self.assertTrue(all(f.file.endswith('haproxy.cfg') for f in short))
        self.assertIn('cinder_api_back', short[0].message)
        notes = [f.file for f in found
                 if f.kind == 'haproxy_file_without_checked_proxies']
        self.assertEqual(sorted([
            os.path.join(KOLLA, 'haproxy', 'haproxy.cfg'),
            os.path.join(KOLLA, 'haproxy', 'services.d', 'glance-api.cfg')]),
            sorted(notes))
        self.assertNotIn('haproxy_cinder_api_proxy_not_found', kinds(found))

    def test_second_haproxy_cfg_is_kept(self):
        rc, out, err = cases.run_cli(
            'audit', '--haproxy-cfg',
            os.path.join(KOLLA, 'haproxy', 'haproxy.cfg'), '--haproxy-cfg',
            os.path.join(KOLLA, 'haproxy', 'services.d', 'cinder-api.cfg'),
            '--cinder-conf', os.path.join(KOLLA, 'cinder-api',
                                          'cinder.conf'),
            '-f', 'value', '-c', 'kind')
        self.assertEqual(1, rc, err)
        self.assertIn('lb_timeout_shorter_than_slow_requests', out)

    def test_launcher_deployed_is_not_blind_retries(self):
        found = self.run_audit()
        self.assertIn('blind_post_retries', kinds(found))
        fix = [f.fix for f in found if f.kind == 'blind_post_retries'][0]
        self.assertIn('--launcher yes', fix)
        for kwargs in ({'launcher': True}, {'deployment': [os.path.join(
                KOLLA, 'nova-compute', 'config.json')]}):
            found = self.run_audit(**kwargs)
            self.assertNotIn('blind_post_retries', kinds(found), kwargs)
        rc, out, err = cases.run_cli(
            'audit', '--nova-conf', os.path.join(KOLLA, 'nova-compute',
                                                 'nova.conf'),
            '--launcher', 'yes', '-f', 'value', '-c', 'kind')
        self.assertNotIn('blind_post_retries', out)

    def test_events_need_cinder_notifications(self):
        found = self.run_audit()
        events = [f for f in found
                  if f.kind == 'events_without_cinder_notifications']
        self.assertEqual(1, len(events))
        self.assertEqual('high', events[0].severity)
        self.assertIn('noop', events[0].message)
        self.assertNotIn('password', events[0].message)
        found = audit.audit(nova_conf=os.path.join(KOLLA, 'nova-compute',
                                                   'nova.conf'))
        self.assertIn('events_prerequisites_not_checked', kinds(found))

    def test_proxysql_single_writer(self):
        path = os.path.join(KOLLA, 'proxysql', 'proxysql.yaml')
        config = proxysql.read(path)
        self.assertEqual([(0, 1, 'mysql_galera_hostgroups max_writers = 1')],
                         proxysql.writers(config))
        found = self.run_audit(proxysql_cnf=path)
        self.assertEqual([], [f for f in found
                              if f.kind.startswith('proxysql')])


class TestOSA(base.BaseTestCase):

    def test_osa_tree(self):
        found = audit.audit(
            nova_conf=os.path.join(OSA, 'nova', 'nova.conf'),
            cinder_conf=os.path.join(OSA, 'cinder', 'cinder.conf'),
            haproxy_cfg=os.path.join(OSA, 'haproxy', 'haproxy.cfg'),
            deployment=[os.path.join(TOOLS, 'osa', 'user_variables.yml')])
        got = kinds(found)
        self.assertIn('lb_timeout_shorter_than_slow_requests', got)
        # user_variables.yml starts the launcher; cinder publishes.
        self.assertNotIn('blind_post_retries', got)
        self.assertNotIn('events_without_cinder_notifications', got)
        self.assertNotIn('events_topic_mismatch', got)
        self.assertNotIn('haproxy_cinder_api_proxy_not_found', got)
        self.assertNotIn('multi_writer_galera_without_causal_reads', got)


class TestInputs(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def test_wrong_kinds_are_refused(self):
        nova = os.path.join(KOLLA, 'nova-compute', 'nova.conf')
        galera = os.path.join(KOLLA, 'mariadb', 'galera.cnf')
        for kwargs, words in (
                ({'galera_cnf': nova}, 'not a galera.cnf'),
                ({'nova_conf': galera}, 'not a nova config'),
                ({'cinder_conf': galera}, 'not a cinder config'),
                ({'proxysql_cnf': nova}, 'ProxySQL'),
                ({'haproxy_cfg': nova}, 'haproxy')):
            exc = self.assertRaises(exception.UnreadableInput, audit.audit,
                                    **kwargs)
            self.assertIn(words, str(exc), kwargs)
        rc, out, err = cases.run_cli('audit', '--galera-cnf', nova)
        self.assertEqual(2, rc)
        self.assertIn('not a galera.cnf', err)

    def test_proxysql_cnf_multi_writer_and_read_split(self):
        path = self.write('proxysql.cnf', '''
datadir="/var/lib/proxysql"
mysql_servers =
(
    { address="192.0.2.41", port=3306, hostgroup=10, weight=1 },
    { address="192.0.2.42", port=3306, hostgroup=10, weight=1 },
    { address="192.0.2.43" ; port=3306 ; hostgroup=20 }
)
mysql_users:
(
    { username = "cinder", password = "secret", default_hostgroup = 10 }
)
mysql_query_rules:
(
    { rule_id=1, active=1, match_digest="^SELECT", destination_hostgroup=20,
      apply=1 }
)
''')
        found = audit.audit(proxysql_cnf=path)
        self.assertEqual(['proxysql_multi_writer',
                          'proxysql_reads_split_from_writes'], kinds(found))
        self.assertNotIn('secret', repr(found))
        bad = self.write('broken.cnf', 'mysql_servers = ( { address= } )')
        self.assertRaises(exception.UnreadableInput, proxysql.read, bad)

    def test_proxysql_wrong_shapes_and_deep_nesting_are_unreadable(self):
        for name, text in (('scalar.cnf', 'mysql_servers = 5;\n'),
                           ('scalar.yaml', 'mysql_servers: 5\n'),
                           ('deep.cnf', 'mysql_servers = ' + '(' * 5000),
                           ('deep.yaml', 'mysql_servers: ' + '[' * 5000)):
            path = self.write(name, text)
            self.assertRaises(exception.UnreadableInput, proxysql.read, path)

    def test_directory_without_cfg(self):
        self.assertRaises(exception.UnreadableInput, audit.audit,
                          haproxy_cfg=self.tmp)

    def test_topic_mismatch(self):
        nova = self.write('nova.conf', '[bdm_guard_events]\n'
                          'transport_url = rabbit://u:p@h//\n')
        cinder = self.write('cinder.conf', '[oslo_messaging_notifications]\n'
                            'driver = messagingv2\ntopics = stacktach\n')
        found = audit.audit(nova_conf=nova, cinder_conf=cinder)
        self.assertIn('events_topic_mismatch', kinds(found))


class CountingList(list):
    """A list that counts the items its iterations yield."""

    visits = 0

    def __iter__(self):
        for item in list.__iter__(self):
            CountingList.visits += 1
            yield item


class TestHaproxyScale(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def visits(self, pairs):
        path = os.path.join(self.tmp, '%d.cfg' % pairs)
        with open(path, 'w') as f:
            f.write('defaults\n    timeout client 30s\n'
                    '    timeout server 30s\n')
            for i in range(pairs):
                f.write('frontend svc%d_front\n    bind 192.0.2.10:%d\n'
                        '    default_backend svc%d_back\n'
                        'backend svc%d_back\n    server a 192.0.2.11:%d '
                        'check\n' % (i, 10000 + i, i, i, 10000 + i))
            f.write('frontend cinder_api_front\n    bind 192.0.2.10:8776\n'
                    '    default_backend cinder_api_back\n'
                    'backend cinder_api_back\n'
                    '    server a 192.0.2.11:8776 check\n')
        real = haproxy.read_many

        def counted(paths):
            config = real(paths)
            config.sections = CountingList(config.sections)
            return config

        CountingList.visits = 0
        self.useFixture(fixtures.MonkeyPatch(
            'bdm_guard.audit.parsers.haproxy.read_many', counted))
        found = audit.audit(haproxy_cfg=path)
        self.assertIn('lb_timeout_shorter_than_slow_requests', kinds(found))
        return CountingList.visits

    def test_audit_is_linear_in_sections(self):
        small, large = self.visits(100), self.visits(400)
        # 4x the sections: linear is about 4x the visits, quadratic 16x.
        self.assertLess(large, 6 * small, (small, large))
