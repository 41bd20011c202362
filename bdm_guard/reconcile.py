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
from bdm_guard import lookup
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


def carries_key(volume, key):
    """Whether a listed ``volume`` carries ``key`` and is not going away.

    :param volume: one element of a list answer (anything: a broken proxy
        may send non-dict volumes or metadata).
    :param key: the idempotency key (str).
    :returns: bool; malformed entries never carry the key.
    """
    if not isinstance(volume, dict) or not volume.get('id'):
        return False
    metadata = volume.get('metadata')
    if not isinstance(metadata, dict):
        return False
    return (metadata.get(IDEMPOTENCY_METADATA_KEY) == key
            and volume.get('status') not in GOING_AWAY)


def list_by_key(client, key, request_id):
    """Volumes in the caller's project that carry ``key``, oldest first.

    :param client: a :class:`bdm_guard.cinder.VolumeClient`.
    :param key: the idempotency key (str).
    :param request_id: ``req-<uuid>`` for the list call.
    :returns: a list of volume dicts (empty when cinder answered and no
        volume carries the key), or None when the list call failed (any
        outcome but ``ok``, including a malformed body): the caller must
        not take that for "no volume has the key".
    """
    result = client.list_volumes(metadata={IDEMPOTENCY_METADATA_KEY: key},
                                 request_id=request_id)
    if result.kind != oc.OK or not isinstance(result.body, list):
        LOG.info('Listing volumes by idempotency key %(key)s failed: '
                 '%(kind)s %(msg)s', {'key': key, 'kind': result.kind,
                                      'msg': result.message})
        return None
    found = [v for v in result.body if carries_key(v, key)]
    return sorted(found, key=oldest_first)


def request_differences(volume, size_gb, req_hash, snapshot_id=None,
                        source_volid=None):
    """How ``volume`` differs from the create request.

    :param volume: a volume dict carrying the key.
    :param size_gb: the requested size in GiB (int).
    :param req_hash: the request's :func:`request_hash`.
    :param snapshot_id: the requested snapshot id, or None.
    :param source_volid: the requested source volume id, or None.
    :returns: a list of field names (empty when it is the same request).
        Volumes without a stored hash are compared on size and source.
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
    return differs


def check_same_request(volume, key, size_gb, req_hash, snapshot_id=None,
                       source_volid=None):
    """Raise unless ``volume`` was created by the same request.

    :raises bdm_guard.exception.IdempotencyConflict: the volume carries the
        key but another size, source or type.
    """
    differs = request_differences(volume, size_gb, req_hash, snapshot_id,
                                  source_volid)
    if differs:
        raise exception.IdempotencyConflict(volume_id=volume['id'], key=key,
                                            fields=', '.join(differs))


def is_attached(volume):
    """Whether ``volume`` is attached or being attached (never deleted)."""
    return bool(volume.get('status') in ATTACHED or volume.get('attachments'))


def usability(volume, pending_statuses):
    """Sort key: the volume most worth keeping first.

    Usable volumes (``available`` or attached) come first, then those still
    being built (``pending_statuses``, e.g. ``creating``), then any other
    status, and volumes in an ``error*`` status last, so an error volume is
    never kept while a usable one carries the key. Ties go to the oldest
    (:func:`oldest_first`).

    :param volume: a volume dict.
    :param pending_statuses: the ``[bdm_guard] pending_statuses`` option.
    :returns: a sortable tuple.
    """
    status = volume.get('status') or ''
    if status.startswith('error'):
        rank = 3
    elif status == 'available' or is_attached(volume):
        rank = 0
    elif status in pending_statuses or not status:
        rank = 1
    else:
        rank = 2
    return (rank,) + oldest_first(volume)


#: Back-off between DELETEs of a duplicate that is still being built. A
#: volume copied from an image takes seconds to minutes to leave "creating",
#: so 1 s doubling to 10 s (the default 60 s duplicate_settle_timeout then
#: holds about eight tries), plus up to 1 s of jitter so that duplicates
#: made by one burst are not retried in lockstep.
_DELETE_WAIT_FIRST = 1.0
_DELETE_WAIT_MAX = 10.0
_DELETE_JITTER = 1.0


def delete_duplicate(client, volume, *, conf, sleep, clock, request_id,
                     deadline=None):
    """Delete one unattached duplicate, waiting for it to settle if needed.

    Cinder refuses to delete a volume that is ``creating`` or
    ``downloading`` (400), so the delete is retried until
    ``duplicate_settle_timeout`` passes, or ``deadline`` comes first.

    :param volume: the volume dict (``id``, ``status``, ``attachments``).
    :param conf: a ConfigOpts with ``[bdm_guard]`` registered.
    :param sleep: ``sleep(seconds)``.
    :param clock: a monotonic clock in seconds.
    :param request_id: ``req-<uuid>`` for the DELETE calls.
    :param deadline: a :class:`bdm_guard.lookup.Deadline` no sleep may go
        past (the create deadline), or None.
    :returns: True when cinder accepted the delete (or the volume is gone).
    """
    if is_attached(volume):
        LOG.warning('Duplicate volume %s is attached; leaving it.',
                    volume['id'])
        return False
    base = (tenacity.wait_exponential(multiplier=_DELETE_WAIT_FIRST,
                                      max=_DELETE_WAIT_MAX)
            + lookup.wait_jitter(lookup.rng_for(volume['id']),
                                 _DELETE_JITTER))
    settle = clock() + conf.bdm_guard.duplicate_settle_timeout
    stop = policy.stop_at(clock, settle)
    if deadline is not None:
        stop = stop | deadline.stop

    def attempt():
        result = client.delete_volume(volume['id'], request_id=request_id)
        return result.kind in (oc.OK, oc.NOT_FOUND)

    def wait(retry_state):
        seconds = base(retry_state)
        return deadline.cap(seconds) if deadline is not None else seconds

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda done: not done),
        wait=wait, stop=stop, sleep=sleep,
        retry_error_callback=lambda state: False)
    deleted = retrying(attempt)
    if deleted:
        LOG.info('Deleted duplicate volume %s.', volume['id'])
    else:
        LOG.warning('Could not delete duplicate volume %s within %.0f s.',
                    volume['id'], conf.bdm_guard.duplicate_settle_timeout)
    return deleted


def delete_all(client, volumes, **kwargs):
    """Delete every volume of ``volumes`` (see :func:`delete_duplicate`).

    :param volumes: volume dicts.
    :param kwargs: the keyword arguments of :func:`delete_duplicate`.
    :returns: ``(deleted_ids, undeleted_ids)``.
    """
    deleted, undeleted = [], []
    for volume in volumes:
        if delete_duplicate(client, volume, **kwargs):
            deleted.append(volume['id'])
        else:
            undeleted.append(volume['id'])
    return deleted, undeleted


def keep_one(client, volumes, *, conf, sleep, clock, request_id,
             deadline=None):
    """Keep the best of several volumes with one key; delete the others.

    The kept volume is the first by :func:`usability`: the oldest usable
    one, never an ``error*`` volume while another is usable. The others,
    error volumes included, are deleted unless attached.

    :param volumes: volume dicts carrying the key (any order, non-empty).
    :param conf: a ConfigOpts with ``[bdm_guard]`` registered.
    :param deadline: see :func:`delete_duplicate`.
    :returns: ``(kept, deleted_ids, undeleted_ids)``.
    """
    pending = frozenset(conf.bdm_guard.pending_statuses)
    ranked = sorted(volumes, key=lambda v: usability(v, pending))
    kept, extra = ranked[0], ranked[1:]
    for volume in extra:
        LOG.warning('Volume %(dup)s (%(status)s) duplicates %(kept)s '
                    '(%(kstatus)s, same idempotency key); removing it.',
                    {'dup': volume['id'], 'status': volume.get('status'),
                     'kept': kept['id'], 'kstatus': kept.get('status')})
    deleted, undeleted = delete_all(
        client, extra, conf=conf, sleep=sleep, clock=clock,
        request_id=request_id, deadline=deadline)
    return kept, deleted, undeleted
