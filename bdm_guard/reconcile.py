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

"""Find volumes by idempotency key, check them, and remove duplicates.

Cinder has no idempotency support, so bdm-guard stores the key in the
volume's metadata and looks it up with ``GET /volumes/detail?metadata=``.
The server-side filter is never trusted for adoption: every volume a list
returns is checked for the key again. Lists are scoped to the caller's
project (``all_tenants`` is never sent), so a key never matches another
project's volume.
"""

import hashlib
import json

from oslo_log import log as logging
import tenacity

from bdm_guard import exception
from bdm_guard import outcome as oc
from bdm_guard import policy

LOG = logging.getLogger(__name__)

#: Volume metadata key holding the idempotency key.
IDEMPOTENCY_METADATA_KEY = 'bdm_guard_idempotency_key'
#: Volume metadata key holding a hash of the create request's parameters
#: (size, source, type), compared before adoption (like AWS's
#: IdempotentParameterMismatch check).
REQUEST_HASH_METADATA_KEY = 'bdm_guard_request_hash'

#: Statuses of volumes that are on their way out; never adopted.
GOING_AWAY = frozenset(['deleting', 'error_deleting'])
#: Statuses of an attached (or attaching) volume: a duplicate in one of them
#: is in use and is never deleted.
ATTACHED = frozenset(['in-use', 'attaching', 'detaching', 'reserved'])


def request_hash(size_gb, source, volume_type):
    """A short stable hash of what makes two creates "the same request".

    :param size_gb: size in GiB (int).
    :param source: ``(kind, id)`` for the image/snapshot/volume source, or
        ``(None, None)``.
    :param volume_type: the type name or id, or None.
    :returns: 16 hex characters.
    """
    doc = json.dumps([size_gb, list(source), volume_type], sort_keys=True)
    return hashlib.sha256(doc.encode('utf-8')).hexdigest()[:16]


def oldest_first(volume):
    """Sort key: cinder's ``created_at``, then the id (deterministic)."""
    return (str(volume.get('created_at') or ''), str(volume.get('id')))


def list_by_key(client, key, request_id):
    """Volumes in the caller's project that carry ``key``, oldest first.

    :param client: a :class:`bdm_guard.cinder.VolumeClient`.
    :param key: the idempotency key (str).
    :param request_id: ``req-<uuid>`` for the list call.
    :returns: a list of volume dicts (empty when none, or when the list
        call failed: the caller treats both as "not seen yet").
    """
    result = client.list_volumes(metadata={IDEMPOTENCY_METADATA_KEY: key},
                                 request_id=request_id)
    if result.kind != oc.OK:
        LOG.info('Listing volumes by idempotency key %(key)s failed: '
                 '%(kind)s %(msg)s', {'key': key, 'kind': result.kind,
                                      'msg': result.message})
        return []
    found = [v for v in result.body
             if isinstance(v, dict) and v.get('id')
             and (v.get('metadata') or {}).get(IDEMPOTENCY_METADATA_KEY)
             == key and v.get('status') not in GOING_AWAY]
    return sorted(found, key=oldest_first)


def check_same_request(volume, key, size_gb, req_hash, snapshot_id=None,
                       source_volid=None):
    """Raise unless ``volume`` was created by the same request.

    :raises bdm_guard.exception.IdempotencyConflict: the volume carries the
        key but another size, source or type.
    """
    differs = []
    if volume.get('size') != size_gb:
        differs.append('size')
    stored = (volume.get('metadata') or {}).get(REQUEST_HASH_METADATA_KEY)
    if stored is not None and stored != req_hash:
        differs.append('source or type')
    elif stored is None:
        if (volume.get('snapshot_id') or None) != (snapshot_id or None):
            differs.append('snapshot_id')
        if (volume.get('source_volid') or None) != (source_volid or None):
            differs.append('source_volid')
    if differs:
        raise exception.IdempotencyConflict(volume_id=volume['id'], key=key,
                                            fields=', '.join(differs))


def delete_duplicate(client, volume, *, conf, sleep, clock, request_id):
    """Delete one unattached duplicate, waiting for it to settle if needed.

    Cinder refuses to delete a volume that is ``creating`` or
    ``downloading`` (400), so the delete is retried until
    ``duplicate_settle_timeout`` passes.

    :returns: True when cinder accepted the delete (or the volume is gone).
    """
    if volume.get('status') in ATTACHED or volume.get('attachments'):
        LOG.warning('Duplicate volume %s is attached; leaving it.',
                    volume['id'])
        return False
    deadline = clock() + conf.bdm_guard.duplicate_settle_timeout

    def attempt():
        result = client.delete_volume(volume['id'], request_id=request_id)
        return result.kind in (oc.OK, oc.NOT_FOUND)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda done: not done),
        wait=tenacity.wait_exponential(multiplier=1, max=10),
        stop=policy.stop_at(clock, deadline),
        sleep=sleep,
        retry_error_callback=lambda state: False)
    deleted = retrying(attempt)
    if deleted:
        LOG.info('Deleted duplicate volume %s.', volume['id'])
    else:
        LOG.warning('Could not delete duplicate volume %s within %.0f s.',
                    volume['id'], conf.bdm_guard.duplicate_settle_timeout)
    return deleted


def keep_oldest(client, volumes, *, conf, sleep, clock, request_id):
    """Keep the oldest of several volumes with one key; delete the others.

    :param volumes: volume dicts carrying the key, oldest first.
    :returns: ``(kept, deleted_ids, undeleted_ids)``.
    """
    kept, extra = volumes[0], volumes[1:]
    deleted, undeleted = [], []
    for volume in extra:
        LOG.warning('Volume %(dup)s duplicates %(kept)s (same idempotency '
                    'key); removing it.', {'dup': volume['id'],
                                           'kept': kept['id']})
        if delete_duplicate(client, volume, conf=conf, sleep=sleep,
                            clock=clock, request_id=request_id):
            deleted.append(volume['id'])
        else:
            undeleted.append(volume['id'])
    return kept, deleted, undeleted
