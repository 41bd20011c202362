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

"""The nova releases bdm-guard supports, and what differs between them.

:data:`SUPPORTED_NOVA` is the table of nova releases whose code the drop-ins
were checked against. The installer (:mod:`bdm_guard.nova.guard`) checks
nova against a row and records the row it installed for
(:func:`activate`); the drop-ins (:mod:`bdm_guard.nova.dropin`) and nova's
cinder connection (:mod:`bdm_guard.nova.client`) follow that row
(:func:`active`). The lab's nova (``bdm_guard_lab.nova.releases``) adds its
own columns to the same rows.

This module imports only the standard library (eventlet only when a row's
sleep is asked for), so that it can be read before nova applies its
concurrency model and without oslo installed.

The differences between the releases, each handled by one column:

* ``cinder_session``: nova 29 to 32 keep the cinder keystoneauth session in
  ``nova.volume.cinder._SESSION`` (``_load_session()``); nova 33 moved it to
  ``nova.service_auth.get_service_auth_session('cinder')``.
* ``wait_sleep``: nova 29 to 31 sleep in the wait loop with eventlet's
  ``greenthread.sleep``; nova 32 switched to ``time.sleep`` (green under
  eventlet monkey patching, native otherwise). The drop-in sleeps the same
  way, looked up when it sleeps (:meth:`NovaRelease.sleep`), so it always
  honours the monkey patching nova applied at start.
* ``concurrency``: nova-compute 29 to 33 monkey-patch with eventlet by
  default; nova 34 starts nova-compute on native threads unless
  ``OS_NOVA_DISABLE_EVENTLET_PATCHING`` or ``[DEFAULT] concurrency_backend``
  says otherwise. Documentation only: the sleep above follows either.
"""

import dataclasses
import importlib.metadata
import time
import typing

#: ``cinder_session`` values.
CINDER_MODULE_SESSION = 'nova.volume.cinder._SESSION'
SERVICE_AUTH_SESSION = 'nova.service_auth.get_service_auth_session'

#: ``wait_sleep`` values: how nova's own ``_await_block_device_map_created``
#: sleeps between two GETs.
EVENTLET_SLEEP = 'eventlet.greenthread.sleep'
TIME_SLEEP = 'time.sleep'


@dataclasses.dataclass(frozen=True)
class NovaRelease:
    """One nova release the drop-ins were checked against.

    :ivar series: the major version, ``'29'``.
    :ivar name: the OpenStack release, ``'2024.1'``.
    :ivar checked: the nova version whose code was read and tested.
    :ivar cinder_session: where nova keeps its cinder session.
    :ivar wait_sleep: how nova's wait loop sleeps.
    :ivar concurrency: nova-compute's default concurrency model.
    """

    series: str
    name: str
    checked: str
    cinder_session: str
    wait_sleep: str
    concurrency: str

    def sleep(self):
        """The sleep function to use now, as this release's nova would.

        Looked up at each call, never bound at import time: ``time.sleep``
        is eventlet's green sleep once nova-compute has monkey-patched, and
        a reference taken before that would block every green thread.
        """
        if self.wait_sleep == EVENTLET_SLEEP:
            from eventlet import greenthread
            return greenthread.sleep
        return time.sleep


#: nova releases whose code the drop-ins were checked against, by major
#: version.
SUPPORTED_NOVA = {r.series: r for r in (
    NovaRelease('29', '2024.1', '29.4.0', CINDER_MODULE_SESSION,
                EVENTLET_SLEEP, 'eventlet'),
    NovaRelease('30', '2024.2', '30.3.0', CINDER_MODULE_SESSION,
                EVENTLET_SLEEP, 'eventlet'),
    NovaRelease('31', '2025.1', '31.3.1', CINDER_MODULE_SESSION,
                EVENTLET_SLEEP, 'eventlet'),
    NovaRelease('32', '2025.2', '32.2.1', CINDER_MODULE_SESSION,
                TIME_SLEEP, 'eventlet'),
    NovaRelease('33', '2026.1', '33.0.2', SERVICE_AUTH_SESSION,
                TIME_SLEEP, 'eventlet'),
    NovaRelease('34', '2026.2', '34.0.0', SERVICE_AUTH_SESSION,
                TIME_SLEEP, 'threading'),
)}


def installed_version() -> typing.Optional[str]:
    """The installed nova's version string, or None without nova."""
    try:
        return importlib.metadata.version('nova')
    except importlib.metadata.PackageNotFoundError:
        return None


def row(series) -> typing.Optional[NovaRelease]:
    """The :data:`SUPPORTED_NOVA` row of a major version, or None.

    :param series: the major version (str, or int).
    """
    return SUPPORTED_NOVA.get(str(series))


def for_version(nova_version) -> typing.Optional[NovaRelease]:
    """The row of a nova version string (``'34.0.0'``), or None.

    :param nova_version: str, or None (no nova: None).
    """
    if not nova_version:
        return None
    return row(nova_version.split('.', 1)[0])


def unsupported(nova_version) -> str:
    """Why a nova version has no row, in words for an operator.

    :param nova_version: str, or None when nova is not installed.
    """
    if not nova_version:
        return 'nova is not installed'
    series = nova_version.split('.', 1)[0]
    majors = sorted(int(s) for s in SUPPORTED_NOVA)
    if series.isdigit() and int(series) < majors[0]:
        why = ('it is older than the oldest release checked, and no longer '
               'installs from PyPI on a Python bdm-guard supports')
    else:
        why = ('its code has not been checked against the drop-ins '
               '(signatures, session handling, how it sleeps)')
    return 'nova %s is not supported: %s (supported: %s)' % (
        nova_version, why, ', '.join('%s.x (%s)' % (r.series, r.name)
                                     for r in SUPPORTED_NOVA.values()))


#: The row the installer chose, once it has run.
_ACTIVE = []


def activate(release):
    """Record the row the drop-ins follow (the installer calls this).

    :param release: a :class:`NovaRelease`.
    """
    _ACTIVE[:] = [release]


def deactivate():
    """Forget the recorded row (the installer's uninstall calls this)."""
    _ACTIVE[:] = []


def active() -> typing.Optional[NovaRelease]:
    """The row in use: the installer's, else the installed nova's, or None.

    None when the installer has not run and nova is missing or of a
    release not in :data:`SUPPORTED_NOVA` (:func:`unsupported` says why).
    """
    if _ACTIVE:
        return _ACTIVE[0]
    return for_version(installed_version())
