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

"""The demo's patched arm: which series it applies by default.

No lab service runs: the series folders are the source tree's, read as the
arm reads them when it starts.
"""

import testtools

from bdm_guard_lab.arms import guard
from bdm_guard_lab.nova import patched


class TestSeriesOption(testtools.TestCase):

    def test_none_is_the_source_tree(self):
        self.assertEqual('/tree', guard.series_option(
            {}, 'cinder_series', lambda: '/tree'))
        self.assertEqual('/tree', guard.series_option(
            {'cinder_series': None}, 'cinder_series', lambda: '/tree'))

    def test_none_word_applies_nothing(self):
        for word in ('none', 'None', ' NONE '):
            self.assertIsNone(guard.series_option(
                {'cinder_series': word}, 'cinder_series', lambda: '/tree'))

    def test_a_folder(self):
        self.assertEqual('/other', guard.series_option(
            {'cinder_series': '/other'}, 'cinder_series', lambda: '/tree'))


class TestDefaultSeries(testtools.TestCase):
    """By default the arm runs all four upstream series of issue 25."""

    def test_each_default_folder_has_patches(self):
        folders = [default() for _, _, _, default in guard.PATCHED_SERIES]
        folders += [patched.series_dir(), patched.cinder_series_dir()]
        for folder in folders:
            self.assertTrue(patched.read_patches([folder]), folder)

    def test_keystoneauth_then_cinderclient(self):
        self.assertEqual(
            [('keystoneauth_series', patched.PatchedKeystoneauth),
             ('cinderclient_series', patched.PatchedCinderclient)],
            [(option, fixture)
             for option, fixture, _, _ in guard.PATCHED_SERIES])

    def test_cinder_default_is_the_key_series(self):
        names = [p.rsplit('/', 1)[-1] for p in patched.read_patches(
            [patched.cinder_series_dir()])]
        self.assertEqual(['0001', '0002', '0003'],
                         [name[:4] for name in names])
