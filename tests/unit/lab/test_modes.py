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

"""The demo's modes and guarded arms, as records (no lab service runs)."""

import contextlib

import fixtures
import testtools

from bdm_guard_lab.arms import guard
from bdm_guard_lab.arms import library_mode
from bdm_guard_lab.arms import modes
from bdm_guard_lab.arms import nova_mode
from bdm_guard_lab.cmd import demo
from bdm_guard_lab.faults import scenario as lab_scenario
from tests.unit import cases


class TestGuardArms(testtools.TestCase):

    def test_arms_of_each_mode(self):
        self.assertEqual(('stock', 'guard', 'events'),
                         guard.names(guard.LIBRARY))
        self.assertEqual(('stock', 'launcher', 'patched', 'events',
                          'route-b'), guard.names(guard.NOVA))
        self.assertEqual(guard.names(guard.LIBRARY), library_mode.ARMS)
        self.assertEqual(guard.names(guard.NOVA), nova_mode.ARMS)

    def test_stock_starts_nothing(self):
        with contextlib.ExitStack() as stack:
            run = guard.start('stock', guard.NOVA, stack)
        self.assertIsNone(run.arm)
        self.assertEqual('stock', run.nova_mode)
        self.assertEqual(({}, {}, {}, None, {}), (
            run.cinder, run.nova, run.about, run.waker,
            run.extra_figures()))

    def test_unknown_arm(self):
        with contextlib.ExitStack() as stack:
            self.assertRaises(ValueError, guard.start, 'guard', guard.NOVA,
                              stack)
            self.assertRaises(ValueError, guard.start, 'nope',
                              guard.LIBRARY, stack)

    def test_parts_run_in_order_and_hand_on(self):
        calls = []

        def service(run):
            calls.append(('service', run.mode, run.options))
            run.cinder['notification_url'] = 'rabbit://lab'
            run.nova['events_url'] = 'rabbit://lab'

        def waker(run):
            calls.append(('waker', run.mode, run.options))
            run.waker = lambda project_id, scale: None
            run.figures.append(lambda: {'event_counts': {'seen': 1}})

        arm = guard.GuardArm('relay', nova='events', parts=(service,),
                             library_parts=(waker,))
        with contextlib.ExitStack() as stack:
            nova = arm.start(guard.NOVA, stack, nova_series='s')
            library = arm.start(guard.LIBRARY, stack)
        self.assertEqual([('service', 'nova', {'nova_series': 's'}),
                          ('service', 'library', {}),
                          ('waker', 'library', {})], calls)
        self.assertEqual('events', nova.nova_mode)
        self.assertEqual({'events_url': 'rabbit://lab'}, nova.nova)
        self.assertIsNone(nova.waker)
        self.assertEqual({'notification_url': 'rabbit://lab'},
                         library.cinder)
        self.assertIsNotNone(library.waker)
        self.assertEqual({'event_counts': {'seen': 1}},
                         library.extra_figures())


def _library_figures(arm, volumes):
    figures = {
        'boots': volumes, 'succeeded': volumes, 'failed': 0,
        'failures_by_reason': {}, 'volumes_created': volumes,
        'duplicates': 0, 'leaked': 0, 'gets_per_boot': 3.0,
        'gets_per_success': 3.0, 'detect_lag_p50_s': 0.5,
        'detect_lag_p95_s': 1.0, 'detect_lag_p95_pct': 4.0, 'wall_s': 2.0,
        'faults_injected': {'lost_response': 1}}
    if arm == 'stock':
        figures['stock_impl'] = 'model'
    return figures


class TestModes(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.calls = []

        def run_arm(arm, scenario, **kwargs):
            self.calls.append((arm, scenario.name, kwargs))
            return dict(_library_figures(arm, kwargs.get('volumes') or 5),
                        server_records=[])

        self.useFixture(fixtures.MockPatchObject(library_mode, 'run_arm',
                                                 run_arm))
        self.useFixture(fixtures.MockPatchObject(nova_mode, 'run_arm',
                                                 run_arm))

    def test_run_names_the_count_and_drops_the_records(self):
        seed = lab_scenario.load('seed')
        figures = modes.LIBRARY.run('guard', seed, 3, time_scale=0.5)
        modes.NOVA.run('launcher', seed, 4)
        self.assertEqual([('guard', 'seed', {'volumes': 3,
                                             'time_scale': 0.5}),
                          ('launcher', 'seed', {'servers': 4})], self.calls)
        self.assertNotIn('server_records', figures)

    def test_only_nova_has_a_healthy_case(self):
        self.assertEqual((), modes.LIBRARY.healthy_arms)
        self.assertRaises(ValueError, modes.LIBRARY.run_cases, 'guard', [])
        self.assertEqual(set(modes.NOVA.healthy_arms) - set(modes.NOVA.arms),
                         set())

    def test_every_default_arm_is_an_arm(self):
        for mode in modes.MODES.values():
            self.assertLessEqual(set(mode.default_arms), set(mode.arms))
            self.assertEqual('stock', mode.arms[0])

    def test_library_table(self):
        rc, out, err = cases.run_cli(
            'demo', '--mode', 'library', '--volumes', '2',
            commands={'demo': demo.Demo})
        self.assertEqual(0, rc, err)
        self.assertEqual(['stock', 'guard'],
                         [call[0] for call in self.calls])
        self.assertEqual({'volumes': 2, 'use_nova': True},
                         {k: self.calls[0][2][k]
                          for k in ('volumes', 'use_nova')})
        self.assertIn('stock (model)', out)
        self.assertIn('guard (bdm-guard)', out)
        self.assertIn('lost_response: 1', out)
        self.assertIn('detection lag p95 (% of creation time)', out)
