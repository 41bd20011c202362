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

"""Install bdm-guard into an unpatched nova 34, all or nothing.

:func:`check` verifies the nova version (``importlib.metadata``) and the
signature (``inspect.signature``) of every nova function the guard replaces
or calls; :func:`install` runs it, and only when nothing is wrong replaces
both methods. A nova that already carries the patch series is left alone.
"""

import dataclasses
import importlib.metadata
import inspect

from oslo_log import log as logging

from bdm_guard import exception

LOG = logging.getLogger(__name__)

#: nova releases whose code the drop-ins were checked against.
SUPPORTED_NOVA = ('34.',)

_P = inspect.Parameter
_POS = _P.POSITIONAL_OR_KEYWORD

#: ``(module, attribute path, [(parameter, kind, default)])`` for every nova
#: function the guard replaces (the first two) or calls.
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
    ('nova.service_auth', 'get_service_auth_session',
     [('conf_group', _POS, _P.empty), ('auth', _POS, None)]),
)
_REPLACED = EXPECTED[:2]


@dataclasses.dataclass
class Installed:
    """What :func:`install` did.

    :ivar mode: ``launcher`` (methods replaced) or ``patched`` (nova
        already carries the patch series; nothing replaced).
    :ivar nova_version: nova's version string.
    :ivar version: bdm-guard's version string.
    :ivar replaced: ``module:attribute`` of each replaced method.
    """

    mode: str
    nova_version: str
    version: str
    replaced: list


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
    from nova.volume import cinder as nova_cinder
    return hasattr(nova_cinder, 'volume_client')


def check():
    """Verify that this nova can be guarded; change nothing.

    :returns: nova's version string.
    :raises bdm_guard.exception.NovaIncompatible: nova is missing, of an
        unsupported release, or one of :data:`EXPECTED` is missing or has
        another signature; the message lists every problem.
    """
    nova_version = _version('nova')
    if nova_version is None:
        raise exception.NovaIncompatible(reason='nova is not installed')
    if not nova_version.startswith(SUPPORTED_NOVA):
        raise exception.NovaIncompatible(
            reason='nova %s is not supported (supported: %s)' % (
                nova_version, ', '.join(v + 'x' for v in SUPPORTED_NOVA)))
    problems = []
    for module_name, path, expected in EXPECTED:
        try:
            found = _shape(_resolve(module_name, path))
        except (ImportError, AttributeError) as exc:
            problems.append('%s.%s is missing (%s)' % (module_name, path,
                                                       exc))
            continue
        if found != expected:
            problems.append('%s.%s has signature (%s), expected (%s)' % (
                module_name, path, ', '.join(p[0] for p in found),
                ', '.join(p[0] for p in expected)))
    if problems:
        raise exception.NovaIncompatible(reason='; '.join(problems))
    return nova_version


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
    from bdm_guard.nova import client
    client.nova_conf()
    version = _version('bdm-guard') or 'unknown'
    if is_patched():
        return Installed('patched', nova_version, version, [])
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
    return Installed(mode, nova_version, version, [t[3] for t in targets])


def uninstall():
    """Put nova's own methods back (for tests and tooling).

    :returns: the ``module:attribute`` labels restored.
    """
    restored = []
    for label, (owner, name, original) in list(_ORIGINALS.items()):
        setattr(owner, name, original)
        del _ORIGINALS[label]
        restored.append(label)
    return restored
