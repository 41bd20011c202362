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

Runs nova's own API, conductor, scheduler and several nova-compute services
(the fake virt driver) in one process, on nova's functional test framework
(``nova.tests.functional.integrated_helpers._IntegratedTestBase``) with its
Placement, Neutron, Glance, policy and notification fixtures but
**without** ``CinderFixture``: nova's ``nova.volume.cinder.API`` stays real
and every call to cinder goes over HTTP to ``[cinder] endpoint_template``
(the lab's fault proxy in front of the lab's real cinder). See
``doc/source/contributor/lab-recipes.rst``, "Real nova services against
real cinder".

The nova is the one installed for this interpreter (nova 34 in the lab's
environment; any release of :mod:`bdm_guard_lab.nova.releases` under ``tox
-e nova-compat``, whose nova virtualenvs carry bdm-guard, this package
included). Its services run on that release's default concurrency model
(eventlet on 29 to 33, native threads on 34), chosen first, as nova-compute
chooses it.

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

from bdm_guard_lab.nova import protocol
from bdm_guard_lab.nova import releases


def _protocol_stream():
    """Keep the real stdout for the protocol; send fd 1 to stderr."""
    stream = os.fdopen(os.dup(1), 'w', buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def command_lines(fd):
    """The lines read from ``fd``, one at a time, as they arrive.

    ``os.read`` rather than a file object: under eventlet (nova 29 to 33)
    eventlet's ``os.read`` waits in its hub, so nova's green threads run
    while the child waits for the next command; a blocking
    ``sys.stdin.readline`` would stop them all. On native threads it is an
    ordinary blocking read.

    :param fd: a file descriptor (stdin's).
    :returns: an iterator of str lines; it ends at end of input.
    """
    pending = b''
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        while b'\n' in pending:
            line, pending = pending.split(b'\n', 1)
            yield line.decode('utf-8')
    if pending.strip():
        yield pending.decode('utf-8')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as settings_file:
        settings = json.load(settings_file)
    out = _protocol_stream()
    # ``kill -USR2 <pid>`` writes every thread's stack to stderr.log.
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    # First, as nova.cmd.compute does: the release's concurrency model
    # (eventlet, or native threads on nova 34), before anything imports
    # oslo.context or futurist.
    try:
        release = releases.installed()
    except releases.UnknownRelease as exc:
        out.write(protocol.encode('error', reason=str(exc)))
        return 1
    release.choose_concurrency()
    from bdm_guard_lab import exception
    from bdm_guard_lab.nova import harness
    from bdm_guard_lab.nova import service

    if not settings.get('api_paste_config'):
        # This interpreter's nova, which may not be the parent's.
        try:
            settings['api_paste_config'] = os.path.join(
                service.nova_etc_dir(), 'api-paste.ini')
        except exception.LabError as exc:
            out.write(protocol.encode('error', reason=str(exc)))
            return 1
    lab = harness.LabNova(settings, out, release)
    return lab.serve(command_lines(sys.stdin.fileno()))


if __name__ == '__main__':
    sys.exit(main())
