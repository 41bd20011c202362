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

"""Cinder's volume statuses, as bdm-guard groups them.

The source of every set is cinder 29's ``cinder/objects/fields.py``
(``VolumeStatus``) and ``cinder/volume/api.py`` (``API.delete``). The
volume id check lives here too, so that the waiter and the creator check an
id without importing the HTTP module (:mod:`bdm_guard.cinder`).
"""

import uuid

from bdm_guard import exception

#: The status a wait ends on.
AVAILABLE = 'available'
#: The status of a new volume before cinder-volume starts building it.
CREATING = 'creating'
#: Statuses in which a new volume is still being built: keep waiting. The
#: default of ``[bdm_guard] pending_statuses``.
DEFAULT_PENDING = ('creating', 'downloading', 'restoring-backup')
#: A volume being deleted no longer counts as carrying its key.
GOING_AWAY = frozenset(['deleting', 'error_deleting'])
#: Attached, or on its way to or from an attachment: never deleted.
ATTACHED = frozenset(['in-use', 'attaching', 'detaching', 'reserved'])
#: Statuses in which cinder deletes a volume without ``force``; in any
#: other one (``creating``, ``downloading``...) it answers 400.
DELETABLE = frozenset(['available', 'error', 'error_restoring',
                       'error_extending', 'error_managing'])


def is_error(status: object) -> bool:
    """Whether ``status`` is one of cinder's ``error*`` statuses."""
    return isinstance(status, str) and status.startswith('error')


def is_attached(volume: dict) -> bool:
    """Whether ``volume`` is attached or being attached (never deleted)."""
    return bool(volume.get('status') in ATTACHED or volume.get('attachments'))


def check_volume_id(volume_id):
    """Validate a cinder volume id and return its canonical form.

    Python's :class:`uuid.UUID` accepts forms cinder does not route
    (``{...}``, ``urn:uuid:...``, no dashes); only the canonical form is
    put into a URL.

    :param volume_id: the id (str).
    :returns: the canonical id (str, lower-case hex with dashes, as
        ``str(uuid.UUID(volume_id))``).
    :raises bdm_guard.exception.InvalidVolumeId: when it is not a UUID.
    """
    try:
        if not isinstance(volume_id, str):
            raise TypeError(volume_id)
        return str(uuid.UUID(volume_id))
    except (TypeError, ValueError):
        raise exception.InvalidVolumeId(volume_id=volume_id) from None
