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

"""The nova process of the lab: ``python -m bdm_guard_lab.nova.server``.

Runs nova 34's own API, conductor, scheduler and several nova-compute
services (the fake virt driver) in one process, on nova's functional test
framework (``nova.tests.functional.integrated_helpers._IntegratedTestBase``)
with its Placement, Neutron, Glance, policy and notification fixtures but
**without** ``CinderFixture``: nova's ``nova.volume.cinder.API`` stays real
and every call to cinder goes over HTTP to ``[cinder] endpoint_template``
(the lab's fault proxy in front of the lab's real cinder). See
``lab-recipes.md``, "Real nova services against real cinder".

The nova under test is chosen before any service starts:

* ``stock``: nova as installed;
* ``launcher``: :func:`bdm_guard.nova.guard.install` with
  ``mode='launcher'``, exactly what ``bdm-guard-nova-compute`` does before
  it hands over to ``nova.cmd.compute.main``;
* ``patched``: the parent puts a copy of nova carrying ``patches/nova``
  first on ``PYTHONPATH`` (:class:`bdm_guard_lab.nova.patched.PatchedNova`).

Protocol (JSON lines): the single argument is a JSON settings file (see
:class:`bdm_guard_lab.nova.service.NovaService`). On the protocol stream
(the original stdout; nova's own prints go to stderr) the child writes
``{"event": "ready", ...}`` once the services run, then for each command
read from stdin (``{"cmd": "boot"}``, ``{"cmd": "delete"}``,
``{"cmd": "stop"}``) progress events and one answer event. It also exits
when stdin closes. ``SIGUSR2`` dumps every thread's stack to stderr (the
``stderr.log`` next to ``nova.log``).
"""

import faulthandler
import json
import os
import signal
import sys


def _protocol_stream():
    """Keep the real stdout for the protocol; send fd 1 to stderr."""
    stream = os.fdopen(os.dup(1), 'w', buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as settings_file:
        settings = json.load(settings_file)
    out = _protocol_stream()
    # ``kill -USR2 <pid>`` writes every thread's stack to stderr.log.
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    # First, as nova.cmd.compute does: nova 34's services run on native
    # threads (OS_NOVA_DISABLE_EVENTLET_PATCHING, set by the parent, keeps
    # nova's test package from applying eventlet), and the choice must be
    # made before anything imports futurist.
    from nova import monkey_patch
    monkey_patch.patch(backend='threading')
    from bdm_guard_lab.nova import harness

    lab = harness.LabNova(settings, out)
    return lab.serve(sys.stdin)


if __name__ == '__main__':
    sys.exit(main())
