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

"""The ``bdm-guard`` command: a cliff application.

Subcommands are ``bdm_guard.cli`` entry points, so each lives in its own
module and loads only when used.
"""

import importlib.metadata
import sys
import warnings

from cliff import app
from cliff import commandmanager


def _version():
    try:
        return importlib.metadata.version('bdm-guard')
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'


class BdmGuardApp(app.App):
    """bdm-guard: reliable boot-from-volume creates for nova."""

    def __init__(self):
        super().__init__(
            description=BdmGuardApp.__doc__.strip().splitlines()[0],
            version=_version(),
            command_manager=commandmanager.CommandManager('bdm_guard.cli'),
            deferred_help=True)
        self.argv = []

    def run(self, argv):
        # Commands need the raw argv to know which keystoneauth plugin's
        # options to add (keystoneauth reads --os-auth-type from it).
        self.argv = list(argv)
        return super().run(argv)


def main(argv=None):
    """Run ``bdm-guard``; returns the process exit code."""
    # The lab imports nova and cinder, whose eventlet import warns about
    # eventlet's own deprecation: noise for an operator, not our finding.
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    return BdmGuardApp().run(sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
