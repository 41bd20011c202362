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

"""``bdm-guard-nova-compute``: nova-compute with bdm-guard, without patches.

It installs the guard into nova (:func:`bdm_guard.nova.guard.install`:
version and signature checks first, then both methods replaced, or nothing),
then runs nova's own ``nova.cmd.compute.main`` with the same arguments as
``nova-compute``. Right after nova sets up its logging, it logs::

    bdm-guard <version> is active in nova-compute <nova version>
    (mode: launcher) ...

On a nova it cannot guard it changes nothing, prints why on stderr and exits
with status 2.

Unlike other modules this one imports nothing at module level:
``nova.cmd.compute`` must be the first import of the process, because it
applies (or forbids) eventlet monkey patching before urllib3 and
oslo.context are imported, as nova's own console script does.
"""

import sys

#: Exit status when nova cannot be guarded.
EXIT_INCOMPATIBLE = 2


def _after_logging_setup(oslo_logging, announce):
    """Call ``announce()`` once, right after nova's ``logging.setup``."""
    original = oslo_logging.setup

    def setup(*args, **kwargs):
        oslo_logging.setup = original
        result = original(*args, **kwargs)
        announce()
        return result

    oslo_logging.setup = setup


def main():
    """Run nova-compute with bdm-guard installed.

    :returns: what ``nova.cmd.compute.main`` returns, or
        :data:`EXIT_INCOMPATIBLE` when nova cannot be guarded (nothing was
        changed; the reason is on stderr).
    """
    from nova.cmd import compute as nova_compute
    from oslo_log import log as logging

    from bdm_guard import exception
    from bdm_guard.nova import guard

    log = logging.getLogger(__name__)
    try:
        installed = guard.install(mode='launcher')
    except exception.NovaIncompatible as exc:
        sys.stderr.write('bdm-guard-nova-compute: %s\n' % exc)
        return EXIT_INCOMPATIBLE

    def announce():
        log.info('bdm-guard %(version)s is active in nova-compute '
                 '%(nova)s (mode: %(mode)s); guarded: %(replaced)s',
                 {'version': installed.version,
                  'nova': installed.nova_version, 'mode': installed.mode,
                  'replaced': ', '.join(installed.replaced) or
                  'nova carries the bdm-guard patch series'})

    _after_logging_setup(logging, announce)
    return nova_compute.main()
