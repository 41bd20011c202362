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

"""What the lab's nova child does differently on each nova release.

The lab's nova (:mod:`bdm_guard_lab.nova.server`) runs nova 34 in the demo
and the functional tests, and every release of
:data:`bdm_guard.nova.releases.SUPPORTED_NOVA` under ``tox -e nova-compat``.
The rows here add the lab's own columns to the library's rows: how nova's
own functional framework differs between those releases, one column per
difference, so that the child handles each one explicitly. What the library
already knows of a release (its concurrency model) is read from the
library's row.

This module imports nothing from nova or oslo (the library's table imports
only the standard library): the child reads it before it chooses nova's
concurrency model, and nothing that oslo.context or futurist import may be
loaded before eventlet's monkey patching.
"""

import dataclasses
import importlib.metadata
import os

from bdm_guard.nova import releases as library_releases

#: ``patch`` values: how the release's nova applies its concurrency model
#: (``nova/monkey_patch.py``). 29 to 31: importing ``nova.monkey_patch``
#: applies eventlet (unless ``OS_NOVA_DISABLE_EVENTLET_PATCHING`` is set;
#: their services need eventlet).
PATCH_ON_IMPORT = 'import'
#: 32 and 33: ``nova.monkey_patch.patch()`` applies eventlet, or native
#: threads with ``OS_NOVA_DISABLE_EVENTLET_PATCHING=1`` (experimental there).
PATCH_CALL = 'patch()'
#: 34: ``nova.cmd.compute`` calls ``patch(backend='threading')``: native
#: threads unless the environment or ``[DEFAULT] concurrency_backend`` says
#: eventlet.
PATCH_BACKEND = "patch(backend='threading')"

_DISABLE = 'OS_NOVA_DISABLE_EVENTLET_PATCHING'


@dataclasses.dataclass(frozen=True)
class LabRelease:
    """How nova's functional framework differs on one nova release.

    :ivar series: the major version, ``'29'``.
    :ivar patch: how the release applies its concurrency model
        (``PATCH_*``).
    :ivar response_validation: whether ``[api] response_validation`` exists
        (added in nova 30, 2024.2; the lab sets it to ``warn``).
    """

    series: str
    patch: str
    response_validation: bool

    @property
    def concurrency(self):
        """``eventlet`` or ``threading``, as the library's row says.

        What the release's nova-compute runs on by default; the lab's
        services run on the same.
        """
        return library_releases.row(self.series).concurrency

    @property
    def cell_lock(self):
        """Whether the lab swaps the ``CellDatabases`` fixture's lock.

        The reader/writer lock is swapped for
        :class:`bdm_guard_lab.nova.harness.ReaderPreferringLock` only on
        native threads, where it deadlocks with nova 34's
        ``DatabaseWriteLock`` fixture (29 to 33 have no such fixture and
        run on eventlet, as nova's own functional tests do).
        """
        return self.concurrency == 'threading'

    def choose_concurrency(self):
        """Apply this release's concurrency model, as nova-compute does.

        Call it first in the child, before anything imports oslo or
        futurist. Sets or clears ``OS_NOVA_DISABLE_EVENTLET_PATCHING`` so
        that nova's test package (which applies the model again when it is
        imported) makes the same choice.
        """
        if self.concurrency == 'threading':
            os.environ[_DISABLE] = '1'
        else:
            os.environ.pop(_DISABLE, None)
        if self.patch == PATCH_ON_IMPORT:
            import nova.monkey_patch  # noqa: F401 - patches on import
        elif self.patch == PATCH_CALL:
            from nova import monkey_patch
            monkey_patch.patch()
        else:
            from nova import monkey_patch
            monkey_patch.patch(backend='threading')


#: The releases, by major version (the keys of ``SUPPORTED_NOVA``).
RELEASES = {r.series: r for r in (
    LabRelease('29', PATCH_ON_IMPORT, response_validation=False),
    LabRelease('30', PATCH_ON_IMPORT, response_validation=True),
    LabRelease('31', PATCH_ON_IMPORT, response_validation=True),
    LabRelease('32', PATCH_CALL, response_validation=True),
    LabRelease('33', PATCH_CALL, response_validation=True),
    LabRelease('34', PATCH_BACKEND, response_validation=True),
)}


class UnknownRelease(Exception):
    """The installed nova is not a release the lab knows."""


def installed():
    """The :data:`RELEASES` row of the installed nova.

    :returns: a :class:`LabRelease`.
    :raises UnknownRelease: nova is missing or of another release.
    """
    try:
        version = importlib.metadata.version('nova')
    except importlib.metadata.PackageNotFoundError:
        raise UnknownRelease('nova is not installed')
    row = RELEASES.get(version.split('.')[0])
    if row is None:
        raise UnknownRelease('the lab does not know nova %s (it knows %s)' % (
            version, ', '.join('%s.x' % s for s in RELEASES)))
    return row
