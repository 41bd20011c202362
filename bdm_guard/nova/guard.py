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

"""Install bdm-guard into an unpatched nova 29 to 34, all or nothing.

:func:`check` verifies the nova version (``importlib.metadata``), picks the
release's row of :data:`bdm_guard.nova.releases.SUPPORTED_NOVA`, and
verifies the signature (``inspect.signature``) of every nova function the
guard replaces or calls *on that release*, and how that release's wait loop
sleeps; :func:`install` runs it, and only when nothing is wrong replaces both
methods. A nova that already carries the patch series is left alone.

The release table and what differs between the releases live in
:mod:`bdm_guard.nova.releases`; its names are handed on here too.

This module imports no nova and no drop-in at module level, so that
``bdm-guard status`` and the tests can import it where nova is missing:
:func:`install` imports :mod:`bdm_guard.nova.client` and the replacements
import :mod:`bdm_guard.nova.dropin` when they run (neither imports this
module).
"""

import dataclasses
import importlib.metadata
import inspect

from oslo_log import log as logging

from bdm_guard import exception
from bdm_guard.nova import releases

LOG = logging.getLogger(__name__)

# The table's names, handed on from bdm_guard.nova.releases.
CINDER_MODULE_SESSION = releases.CINDER_MODULE_SESSION
SERVICE_AUTH_SESSION = releases.SERVICE_AUTH_SESSION
EVENTLET_SLEEP = releases.EVENTLET_SLEEP
TIME_SLEEP = releases.TIME_SLEEP
NovaRelease = releases.NovaRelease
SUPPORTED_NOVA = releases.SUPPORTED_NOVA

_P = inspect.Parameter
_POS = _P.POSITIONAL_OR_KEYWORD

#: ``(module, attribute path, [(parameter, kind, default)])`` for every nova
#: function the guard replaces (the first two) or calls, on every release.
EXPECTED = (
    ('nova.compute.manager', 'ComputeManager._await_block_device_map_created',
     [('self', _POS, _P.empty), ('context', _POS, _P.empty),
      ('vol_id', _POS, _P.empty)]),
    ('nova.virt.block_device', 'DriverVolumeBlockDevice._create_volume',
     [('self', _POS, _P.empty), ('context', _POS, _P.empty),
      ('instance', _POS, _P.empty), ('volume_api', _POS, _P.empty),
      ('size', _POS, _P.empty), ('wait_func', _POS, None),
      ('create_kwargs', _P.VAR_KEYWORD, _P.empty)]),
    ('nova.virt.block_device', '_get_volume_create_az_value',
     [('instance', _POS, _P.empty)]),
    ('nova.volume.cinder', '_get_cinderclient_parameters',
     [('context', _POS, _P.empty)]),
)
_REPLACED = EXPECTED[:2]

#: The same, for what differs by ``cinder_session``. ``None`` for a module
#: attribute that must exist (not a function).
EXPECTED_SESSION = {
    CINDER_MODULE_SESSION: (
        ('nova.volume.cinder', '_load_session', []),
        ('nova.volume.cinder', '_SESSION', None),
    ),
    SERVICE_AUTH_SESSION: (
        ('nova.service_auth', 'get_service_auth_session',
         [('conf_group', _POS, _P.empty), ('auth', _POS, None)]),
    ),
}


@dataclasses.dataclass
class Installed:
    """What :func:`install` did.

    :ivar mode: ``launcher`` (methods replaced) or ``patched`` (nova
        already carries the patch series; nothing replaced).
    :ivar nova_version: nova's version string.
    :ivar version: bdm-guard's version string.
    :ivar replaced: ``module:attribute`` of each replaced method.
    :ivar release: the :class:`NovaRelease` row in use.
    """

    mode: str
    nova_version: str
    version: str
    replaced: list
    release: NovaRelease = None


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _resolve(module_name, path):
    obj = importlib.import_module(module_name)
    for name in path.split('.'):
        obj = getattr(obj, name)
    return obj


def _shape(func):
    return [(p.name, p.kind, p.default)
            for p in inspect.signature(func).parameters.values()]


def is_patched():
    """Whether nova already carries the patch series (``patches/nova``)."""
    from bdm_guard.nova import client
    return client.is_patched()


def release(nova_version=None):
    """The :data:`~bdm_guard.nova.releases.SUPPORTED_NOVA` row of a nova.

    :param nova_version: a version string; default the installed nova's.
    :raises bdm_guard.exception.NovaIncompatible: nova is missing or of a
        release not in the table (the reason says why).
    """
    nova_version = nova_version or releases.installed_version()
    row = releases.for_version(nova_version)
    if row is None:
        raise exception.NovaIncompatible(
            reason=releases.unsupported(nova_version))
    return row


def _problems(expected):
    problems = []
    for module_name, path, shape in expected:
        try:
            obj = _resolve(module_name, path)
            found = None if shape is None else _shape(obj)
        except (ImportError, AttributeError) as exc:
            problems.append('%s.%s is missing (%s)' % (module_name, path,
                                                       exc))
            continue
        if found != shape:
            problems.append('%s.%s has signature (%s), expected (%s)' % (
                module_name, path, ', '.join(p[0] for p in found),
                ', '.join(p[0] for p in shape)))
    return problems


def _sleep_problems(row):
    """Whether nova's wait loop sleeps as the table says it does."""
    from nova.compute import manager
    uses_eventlet = getattr(manager, 'greenthread', None) is not None
    if uses_eventlet == (row.wait_sleep == EVENTLET_SLEEP):
        return []
    return ['nova.compute.manager %s eventlet greenthread, but nova %s.x '
            'was checked to sleep with %s' % (
                'imports' if uses_eventlet else 'no longer imports',
                row.series, row.wait_sleep)]


def check():
    """Verify that this nova can be guarded; change nothing.

    :returns: nova's version string.
    :raises bdm_guard.exception.NovaIncompatible: nova is missing, of an
        unsupported release, or one of :data:`EXPECTED` (and of
        :data:`EXPECTED_SESSION` for the release) is missing or has
        another signature, or its wait loop sleeps otherwise than the
        release's row says; the message lists every problem.
    """
    nova_version = _version('nova')
    row = release(nova_version)
    problems = _problems(EXPECTED + EXPECTED_SESSION[row.cinder_session])
    if not problems:
        problems = _sleep_problems(row)
    if problems:
        raise exception.NovaIncompatible(reason='nova %s (%s.x, %s): %s' % (
            nova_version, row.series, row.name, '; '.join(problems)))
    return nova_version


def active_release():
    """The release row in use: :func:`install`'s, else the installed nova's.

    :raises bdm_guard.exception.NovaIncompatible: see :func:`release`.
    """
    return releases.active() or release()


def _await_block_device_map_created(self, context, vol_id):
    from bdm_guard.nova import dropin
    return dropin.await_block_device_map_created(self, context, vol_id)


def _create_volume(self, context, instance, volume_api, size,
                   wait_func=None, **create_kwargs):
    from bdm_guard.nova import dropin
    return dropin.create_volume_for_bdm(self, context, instance, volume_api,
                                        size, wait_func, **create_kwargs)


_REPLACEMENTS = (_await_block_device_map_created, _create_volume)
_ORIGINALS = {}


def install(mode='launcher'):
    """Check nova, then replace both methods, or raise and replace none.

    Installing twice is harmless. Also registers ``[bdm_guard]`` on nova's
    ``CONF``.

    :param mode: the name logged for this way of running (``launcher``).
    :returns: an :class:`Installed`.
    :raises bdm_guard.exception.NovaIncompatible: see :func:`check`.
    """
    nova_version = check()
    row = release(nova_version)
    from bdm_guard.nova import client
    client.nova_conf()
    version = _version('bdm-guard') or 'unknown'
    if is_patched():
        return Installed('patched', nova_version, version, [], row)
    targets = []
    for (module_name, path, _), new in zip(_REPLACED, _REPLACEMENTS):
        owner_path, name = path.rsplit('.', 1)
        targets.append((_resolve(module_name, owner_path), name, new,
                        '%s:%s' % (module_name, path)))
    for owner, name, new, label in targets:
        current = owner.__dict__[name]
        if current is not new:
            _ORIGINALS[label] = (owner, name, current)
            setattr(owner, name, new)
    releases.activate(row)
    return Installed(mode, nova_version, version, [t[3] for t in targets],
                     row)


def uninstall():
    """Put nova's own methods back (for tests and tooling).

    :returns: the ``module:attribute`` labels restored.
    """
    restored = []
    for label, (owner, name, original) in list(_ORIGINALS.items()):
        setattr(owner, name, original)
        del _ORIGINALS[label]
        restored.append(label)
    releases.deactivate()
    return restored
