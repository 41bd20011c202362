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

"""What the operator tools' case tests share: the CLI, one test a case."""

import io
import os
from unittest import mock

from bdm_guard.cmd import main


def run_cli(*argv, commands=None):
    """Run ``bdm-guard`` in-process; return (exit code, stdout, stderr).

    :param commands: ``{name: cliff command class}`` added to the app's
        own, for commands whose distribution is not installed in the test
        environment (the lab's ``demo`` in the unit test envs, which import
        ``bdm_guard_lab`` from the tree without installing it).
    """
    out, err = io.StringIO(), io.StringIO()
    app = main.BdmGuardApp()
    for name, command_class in (commands or {}).items():
        app.command_manager.add_command(name, command_class)
    app.stdout, app.stderr = out, err
    with mock.patch('sys.stdout', out), mock.patch('sys.stderr', err):
        rc = app.run(list(argv))
    return rc, out.getvalue(), err.getvalue()


def add_case_tests(cls, data):
    """Give ``cls`` one ``test_<case>`` per folder of ``data``.

    Each runs ``cls._check(<case folder name>)``, so a new case is a new
    folder, and each case passes or fails on its own.
    """
    def make(name):
        def test(self):
            self._check(name)
        test.__name__ = 'test_%s' % name.replace('-', '_')
        return test

    for name in sorted(os.listdir(data)):
        if os.path.isdir(os.path.join(data, name)):
            setattr(cls, 'test_%s' % name.replace('-', '_'), make(name))
