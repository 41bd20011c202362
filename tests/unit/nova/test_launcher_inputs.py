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

"""The launcher's pre-start checks against what real compute nodes have."""

import io
import os
import sys

import fixtures
import testtools

from bdm_guard.nova import launcher


class TestLauncherInputs(testtools.TestCase):
    """The launcher's pre-start checks on what real nodes have."""

    def test_version_finds_escaped_dist_info_names(self):
        # Recent oslo wheels name their folder oslo_config-X.dist-info;
        # Python 3.9's importlib.metadata does not map '.' to '_' itself.
        tmp = self.useFixture(fixtures.TempDir()).path
        info = os.path.join(tmp, 'oslo_fakelib-9.7.2.dist-info')
        os.mkdir(info)
        with open(os.path.join(info, 'METADATA'), 'w') as f:
            f.write('Metadata-Version: 2.1\nName: oslo.fakelib\n'
                    'Version: 9.7.2\n')
        self.useFixture(fixtures.MonkeyPatch('sys.path',
                                             [tmp] + sys.path))
        self.assertEqual('9.7.2', launcher._version('oslo.fakelib'))
        self.assertIsNone(launcher._version('oslo.not-installed'))

    def test_refusal_creates_the_log_only_in_a_folder_of_its_own(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        mine = os.path.join(tmp, 'nova-compute.log')
        err = io.StringIO()
        self.assertEqual(launcher.EXIT_INCOMPATIBLE,
                         launcher.refuse('why', mine, stderr=err))
        self.assertIn('why; nova-compute was not started', err.getvalue())
        with open(mine) as f:
            self.assertIn('CRITICAL', f.read())

    @testtools.skipUnless(hasattr(os, 'geteuid') and os.geteuid() == 0,
                          'needs root, to own a folder as another user')
    def test_refusal_never_creates_a_log_in_another_users_folder(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        folder = os.path.join(tmp, 'nova')
        os.mkdir(folder)
        os.chown(folder, 65534, 65534)
        missing = os.path.join(folder, 'nova-compute.log')
        launcher.refuse('why', missing, stderr=io.StringIO())
        self.assertFalse(os.path.exists(missing))
        link = os.path.join(tmp, 'link.log')
        os.symlink(os.path.join(tmp, 'elsewhere'), link)
        launcher.refuse('why', link, stderr=io.StringIO())
        self.assertFalse(os.path.exists(os.path.join(tmp, 'elsewhere')))
