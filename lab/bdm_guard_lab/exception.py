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

"""The lab's exceptions (the library's are in :mod:`bdm_guard.exception`)."""

from bdm_guard import exception


class LabError(exception.BdmGuardException):
    msg_fmt = 'The lab could not run: %(reason)s'


class InvalidScenario(exception.InvalidInput):
    msg_fmt = 'Invalid lab scenario %(source)s: %(reason)s'


class SimulationError(exception.BdmGuardException):
    msg_fmt = 'The simulation cannot go on: %(reason)s'


class PatchDoesNotApply(LabError):
    msg_fmt = ('%(patch)s of %(series)s does not apply to the installed '
               '%(project)s: %(reason)s')
