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

"""The nova arms side by side on the slots every arm finished."""

import collections
import json
import types

import fixtures
import testtools

from bdm_guard_lab.arms import compare
from bdm_guard_lab.arms import nova_mode
from bdm_guard_lab.cmd import demo
from bdm_guard_lab.faults import scenario as lab_scenario
from tests.unit import cases


def _server(status='ACTIVE', boot=None, lag=None, gets=0):
    return {'status': status, 'boot_s': boot, 'lag_s': lag, 'gets': gets}


def _arm(servers, **extra):
    figures = {'per_server': servers, 'servers': len(servers),
               'active': sum(s['status'] == 'ACTIVE'
                             for s in servers.values()),
               'duplicates': 0, 'leaked': 0}
    figures.update(extra)
    return figures


class TestPerServer(testtools.TestCase):

    def test_slots_from_records_and_proxy(self):
        records = [
            {'name': 'lab-boot-0000', 'status': 'ACTIVE', 'volumes': ['v1'],
             'posted_at': 100.0, 'active_at': 130.5},
            {'name': 'lab-boot-0001', 'status': 'ERROR', 'volumes': [],
             'posted_at': 100.0},
            {'name': 'lab-boot-0002', 'id': None, 'posted_at': 100.0,
             'post_error': 'boom'},
        ]
        proxy = types.SimpleNamespace(
            available_at={'v1': 110.0}, noticed_at={'v1': 111.25},
            volume_gets=collections.Counter({'v1': 7, 'v9': 3}))
        self.assertEqual({
            'lab-boot-0000': _server('ACTIVE', 30.5, 1.25, 7),
            'lab-boot-0001': _server('ERROR'),
            'lab-boot-0002': _server('POST failed'),
        }, nova_mode.per_server(records, proxy))


class TestCompare(testtools.TestCase):

    def setUp(self):
        super().setUp()
        # Stock fails slot 1 fast; the launcher finishes it slowly. Only
        # slots 0 and 2 are compared.
        self.results = {
            'stock': _arm({'a0': _server(boot=10.0, lag=1.0, gets=10),
                           'a1': _server('ERROR', gets=1),
                           'a2': _server(boot=20.0, lag=3.0, gets=14)}),
            'launcher': _arm({'a0': _server(boot=11.0, lag=1.5, gets=8),
                              'a1': _server(boot=90.0, lag=9.0, gets=30),
                              'a2': _server(boot=20.0, lag=2.0, gets=9)}),
            'patched': {'servers': 3, 'arm_error': 'does not apply',
                        'per_server': None},
        }

    def test_common_slots_leave_out_failures_and_arms_that_did_not_run(self):
        self.assertEqual(['a0', 'a2'], compare.common(self.results))
        self.assertEqual([], compare.common({}))

    def test_figures_over_the_compared_slots(self):
        case = compare.compare(self.results)
        self.assertEqual(['a0', 'a2'], case['slots'])
        self.assertEqual(3, case['servers'])
        self.assertNotIn('patched', case['arms'])
        stock, guard = case['arms']['stock'], case['arms']['launcher']
        self.assertEqual(2, stock['boots'])
        self.assertEqual(10.0, stock['boot_s_p50'])
        self.assertEqual(20.0, stock['boot_s_p95'])
        self.assertEqual(12.0, stock['gets_per_boot'])
        self.assertEqual(8.5, guard['gets_per_boot'])
        self.assertEqual(1.1, guard['x_stock']['boot_s_p50'])
        self.assertEqual(1.0, guard['x_stock']['boot_s_p95'])
        self.assertEqual(0.71, guard['x_stock']['gets_per_boot'])
        self.assertEqual(1.0, stock['x_stock']['lag_s_p95'])

    def test_no_stock_no_ratio(self):
        del self.results['stock']
        case = compare.compare(self.results)
        self.assertEqual(['a0', 'a1', 'a2'], case['slots'])
        self.assertIsNone(case['arms']['launcher']['x_stock']['boot_s_p50'])

    def test_healthy_verdicts(self):
        verdicts = compare.healthy_verdicts(compare.compare(self.results))
        self.assertEqual([False, True, True, True],
                         [v['met'] for v in verdicts])
        self.assertEqual(
            "[MISSED] healthy: boot to ACTIVE p50 within 5% of stock's "
            "(10.0 s): launcher 11.0 s (1.100x) MISSED", verdicts[0]['text'])
        self.assertIn('launcher 1.5 s (+0.50 s) met', verdicts[2]['text'])
        self.assertEqual(
            "[met] healthy: GETs per boot <= 0.8x stock's (12.0): "
            "launcher 8.5 (0.708x) met", verdicts[3]['text'])

    def test_healthy_verdicts_compare_unrounded_ratios(self):
        # 84.12 / 79.95 rounds to 1.05 but is above 1.05: missed.
        for slot in ('a0', 'a2'):
            self.results['stock']['per_server'][slot]['boot_s'] = 79.95
            self.results['launcher']['per_server'][slot]['boot_s'] = 84.12
        case = compare.compare(self.results)
        self.assertEqual(1.05, case['arms']['launcher']['x_stock'][
            'boot_s_p50'])
        verdict = compare.healthy_verdicts(case)[0]
        self.assertFalse(verdict['met'])
        self.assertIn('84.12 s (1.052x) MISSED', verdict['text'])

    def test_healthy_verdicts_without_stock(self):
        del self.results['stock']
        verdicts = compare.healthy_verdicts(compare.compare(self.results))
        self.assertEqual([None] * 4, [v['met'] for v in verdicts])

    def test_fault_verdicts(self):
        self.results['launcher']['leaked'] = 1
        verdicts = compare.fault_verdicts(self.results, 'seed')
        self.assertEqual([False, False, False],
                         [v['met'] for v in verdicts])
        self.assertEqual(
            '[MISSED] seed faults: 100% ACTIVE: launcher 3 / 3 met; '
            'patched did not run MISSED', verdicts[0]['text'])
        self.assertIn('launcher 1 MISSED', verdicts[2]['text'])
        del self.results['patched']
        self.assertEqual([True, True, False], [
            v['met'] for v in compare.fault_verdicts(self.results, 'seed')])


class TestCases(testtools.TestCase):
    """Which cases may share one arm's services."""

    def test_seed_and_none_share_cinder(self):
        seed = lab_scenario.load('seed')
        self.assertTrue(nova_mode.same_cinder(seed, lab_scenario.load('none')))
        self.assertFalse(nova_mode.same_cinder(seed, seed.with_seed(7)))
        self.assertFalse(nova_mode.same_cinder(seed,
                                               lab_scenario.load('harsh')))

    def test_run_cases_refuses_what_cannot_share(self):
        seed = lab_scenario.load('seed')
        self.assertRaises(ValueError, nova_mode.run_cases, 'stock',
                          [(seed, 5), (lab_scenario.load('harsh'), 5)])
        self.assertRaises(ValueError, nova_mode.run_cases, 'stock', [])
        self.assertRaises(ValueError, nova_mode.run_cases, 'nope',
                          [(seed, 5)])
        self.assertRaises(ValueError, nova_mode.run_cases, 'stock',
                          [(seed, 5), (seed, 5)], galera=object())

    def test_healthy_scenario(self):
        seed = lab_scenario.load('seed').with_seed(7)
        healthy = demo.healthy_scenario(seed)
        self.assertEqual('none', healthy.name)
        self.assertEqual((), healthy.rules)
        self.assertEqual(7, healthy.seed)
        self.assertTrue(nova_mode.same_cinder(seed, healthy))
        harsh = demo.healthy_scenario(lab_scenario.load('harsh'))
        self.assertEqual('harsh-without-faults', harsh.name)
        self.assertEqual(60, harsh.download_seconds_per_gib)


def _figures(arm, scenario, servers, failed=0, boot=50.0, gets=12):
    per_server = {}
    for index in range(servers):
        status = 'ERROR' if index < failed else 'ACTIVE'
        per_server['lab-boot-%04d' % index] = _server(
            status, None if index < failed else boot + index, 1.0, gets)
    figures = dict.fromkeys(nova_mode.KEYS)
    figures.update({
        'arm': arm, 'scenario': scenario, 'servers': servers,
        'active': servers - failed, 'error': failed, 'faults': {},
        'duplicates': 0, 'leaked': failed, 'faults_injected': {},
        'nova': {'guard': 'launcher'} if arm != 'stock' else {},
        'per_server': per_server, 'server_records': [], 'wall_s': 1.0})
    return figures


def _run_demo(*argv):
    """``bdm-guard demo ARGV`` in-process, with the lab's command class."""
    return cases.run_cli('demo', *argv, commands={'demo': demo.Demo})


class TestDemoOutput(testtools.TestCase):
    """The demo's healthy case, its comparison and verdicts (no lab)."""

    def setUp(self):
        super().setUp()
        self.cases, self.single = [], []

        def run_cases(arm, cases, **kwargs):
            self.cases.append((arm, [(s.name, n) for s, n in cases]))
            return [_figures(arm, s.name, n,
                             failed=2 if s.rules and arm == 'stock' else 0,
                             gets=9 if arm != 'stock' else 12)
                    for s, n in cases]

        def run_arm(arm, scenario, servers=None, **kwargs):
            self.single.append((arm, scenario.name, servers))
            return _figures(arm, scenario.name, servers)

        self.useFixture(fixtures.MockPatchObject(nova_mode, 'run_cases',
                                                 run_cases))
        self.useFixture(fixtures.MockPatchObject(nova_mode, 'run_arm',
                                                 run_arm))

    def test_table(self):
        rc, out, err = _run_demo('--volumes', '4',
                                 '--healthy-servers', '3')
        self.assertEqual(0, rc, err)
        self.assertEqual([(arm, [('none', 3), ('seed', 4)])
                          for arm in ('stock', 'launcher', 'events')],
                         self.cases)
        self.assertEqual([('patched', 'seed', 4)], self.single)
        prose = ' '.join(out.split())     # the prose is wrapped
        self.assertIn("healthy case: scenario none, 3 servers per arm "
                      "(fewer than the seed case's 4, to keep the demo "
                      "within 25 minutes)", prose)
        self.assertIn('a slot counts only if it is ACTIVE in every arm',
                      prose)
        # Stock failed slots 0 and 1 of the seed case: 2 of 4 compared.
        self.assertIn('2 of 4', out)
        self.assertIn('3 of 3', out)
        self.assertIn('52.0 / 53.0 (1.00x / 1.00x)', out)
        self.assertIn("[met] healthy: GETs per boot <= 0.8x stock's (12.0): "
                      "launcher 9.0 (0.750x) met; events 9.0 (0.750x) met",
                      out)
        self.assertIn('[met] seed faults: 0 leaked: launcher 0 met; '
                      'patched 0 met; events 0 met', out)
        self.assertIn('demo wall time:', out)

    def test_json(self):
        rc, out, err = _run_demo('--volumes', '4',
                                 '--healthy-servers', '3', '-f', 'json')
        self.assertEqual(0, rc, err)
        data = json.loads(out)
        self.assertEqual({'healthy', 'faulted'}, set(data['compared']))
        self.assertEqual(['lab-boot-0002', 'lab-boot-0003'],
                         data['compared']['faulted']['slots'])
        self.assertEqual('none', data['healthy']['scenario'])
        self.assertEqual(3, data['healthy']['servers'])
        self.assertEqual({'stock', 'launcher', 'events'},
                         set(data['healthy']['arms']))
        self.assertEqual(7, len(data['verdicts']))
        self.assertNotIn('server_records', data['arms']['stock'])

    def test_without_healthy_case(self):
        rc, out, err = _run_demo('--volumes', '4', '--arm',
                                 'stock', '--arm', 'launcher')
        self.assertEqual(0, rc, err)
        self.assertEqual([], self.cases)
        self.assertNotIn('healthy case', out)
        self.assertIn('faulted (seed)', out)

    def test_healthy_case_needs_nova_mode(self):
        rc, out, err = _run_demo('--mode', 'library',
                                 '--healthy-servers', '3')
        self.assertNotEqual(0, rc)
        self.assertIn('--healthy-servers', err)
