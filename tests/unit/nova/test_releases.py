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

"""bdm_guard.nova.releases: the table, its look-ups and the active row."""

import importlib.metadata
import time
from unittest import mock

from oslotest import base

from bdm_guard.nova import guard
from bdm_guard.nova import releases


class TestTable(base.BaseTestCase):

    def test_rows_by_series(self):
        self.assertEqual(['29', '30', '31', '32', '33', '34'],
                         list(releases.SUPPORTED_NOVA))
        self.assertIs(releases.SUPPORTED_NOVA['34'], releases.row(34))
        self.assertIsNone(releases.row('35'))

    def test_for_version(self):
        self.assertEqual('2024.1', releases.for_version('29.4.0').name)
        self.assertIsNone(releases.for_version('28.3.1'))
        self.assertIsNone(releases.for_version(None))

    def test_unsupported(self):
        self.assertEqual('nova is not installed', releases.unsupported(None))
        self.assertIn('nova 28.3.1 is not supported: it is older',
                      releases.unsupported('28.3.1'))
        self.assertIn('its code has not been checked',
                      releases.unsupported('35.0.0'))
        self.assertIn('29.x (2024.1)', releases.unsupported('35.0.0'))

    def test_time_sleep_row_sleeps_with_time_sleep(self):
        self.assertIs(time.sleep, releases.row('34').sleep())

    def test_the_guard_hands_the_table_on(self):
        self.assertIs(releases.SUPPORTED_NOVA, guard.SUPPORTED_NOVA)
        self.assertIs(releases.NovaRelease, guard.NovaRelease)


class TestActive(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.addCleanup(releases.deactivate)
        releases.deactivate()
        patcher = mock.patch.object(importlib.metadata, 'version',
                                    autospec=True, return_value='31.3.1')
        self.version = patcher.start()
        self.addCleanup(patcher.stop)

    def test_installed_nova_before_the_installer(self):
        self.assertEqual('31', releases.active().series)

    def test_the_installers_row_first(self):
        releases.activate(releases.row('33'))
        self.assertEqual('33', releases.active().series)
        releases.deactivate()
        self.assertEqual('31', releases.active().series)

    def test_none_for_an_unsupported_nova(self):
        self.version.return_value = '35.0.0'
        self.assertIsNone(releases.active())

    def test_none_without_nova(self):
        self.version.side_effect = importlib.metadata.PackageNotFoundError(
            'nova')
        self.assertIsNone(releases.installed_version())
        self.assertIsNone(releases.active())
