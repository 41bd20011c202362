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

"""The verdict of ``tox -e nova-compat``'s real-nova boot (the boot itself
runs there, on each release)."""

import testtools

from bdm_guard_lab.nova import compat


def _good():
    ready = {'guard': 'launcher', 'bdm_guard': '/nova-venv/bdm_guard'}
    figures = {'volumes': 1, 'duplicates': 0, 'leaked': 0,
               'left_after_delete': 0,
               'faults_injected': {'lost_response': 1, 'visibility_lag': 3}}
    records = [{'name': 'lab-boot-0000', 'status': 'ACTIVE',
                'volumes': ['v1']}]
    deleted = {'remaining': [], 'errors': []}
    return ready, figures, records, deleted


class TestVerdict(testtools.TestCase):

    def test_clean_boot(self):
        self.assertEqual([], compat.verdict(*_good(), lab_guard='/lab'))

    def test_stock_nova_is_not_the_launcher(self):
        ready, figures, records, deleted = _good()
        ready['guard'] = None
        self.assertEqual(['the guard is not installed (guard=None)'],
                         compat.verdict(ready, figures, records, deleted))

    def test_the_labs_own_guard(self):
        problems = compat.verdict(*_good(), lab_guard='/nova-venv/bdm_guard')
        self.assertEqual(1, len(problems))
        self.assertIn("nova ran the lab's bdm_guard", problems[0])

    def test_faults_must_have_been_injected(self):
        ready, figures, records, deleted = _good()
        figures['faults_injected'] = {}
        self.assertEqual(['lost_response injected 0 times, not once',
                          'no read saw the read-after-write lag'],
                         compat.verdict(ready, figures, records, deleted))

    def test_duplicate_left_behind(self):
        # What stock nova does with a lost answer: a second volume that
        # nobody owns outlives the server.
        ready, figures, records, deleted = _good()
        figures.update(volumes=2, duplicates=1, leaked=1,
                       left_after_delete=1)
        self.assertEqual(['cinder: volumes = 2, not 1',
                          'cinder: duplicates = 1, not 0',
                          'cinder: leaked = 1, not 0',
                          'cinder: left_after_delete = 1, not 0'],
                         compat.verdict(ready, figures, records, deleted))

    def test_failed_server_says_why(self):
        ready, figures, records, deleted = _good()
        records[0].update(status='ERROR', volumes=[],
                          fault_message='Build of instance aborted',
                          fault_details='nova.exception.VolumeNotCreated: x')
        problems = compat.verdict(ready, figures, records, deleted)
        self.assertEqual('server lab-boot-0000 is ERROR: Build of instance '
                         'aborted [VolumeNotCreated]', problems[0])

    def test_two_volumes_attached(self):
        ready, figures, records, deleted = _good()
        records[0]['volumes'] = ['v1', 'v2']
        self.assertEqual(['server lab-boot-0000 has 2 volumes attached, '
                          'not 1'],
                         compat.verdict(ready, figures, records, deleted))

    def test_server_not_deleted(self):
        ready, figures, records, deleted = _good()
        deleted['remaining'] = ['s1']
        self.assertEqual(["delete left servers ['s1'] (errors: [])"],
                         compat.verdict(ready, figures, records, deleted))

    def test_scenario_loses_one_answer_and_lags(self):
        rules = compat.scenario().rules
        self.assertEqual(['lost_response', 'visibility_lag'],
                         [r.fault for r in rules])
        self.assertEqual(1, rules[0].times)
        self.assertEqual(['POST'], list(rules[0].methods))
        self.assertEqual(compat.LAG_SECONDS, rules[1].seconds)
