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

"""Several volumes with one key: keep the best, delete the others.

Also tells a volume of this request from one that carries the key but was
asked for with another size, source or type (an idempotency conflict).
"""

import typing

from oslo_log import log as logging
import tenacity

from bdm_guard.internal.create import keys
from bdm_guard.internal.create import lookup
from bdm_guard.internal import retry
from bdm_guard.internal import statuses
from bdm_guard import outcome as oc

LOG = logging.getLogger(__name__)

#: The back-off between DELETEs of a duplicate that is still being built
#: (seconds): 1 s doubling to 10 s, plus up to 1 s of jitter.
DELETE_WAIT_FIRST = 1.0
DELETE_WAIT_MAX = 10.0
DELETE_JITTER = 1.0


def request_differences(volume: dict, size_gb: int, req_hash: str,
                        snapshot_id: typing.Optional[str] = None,
                        source_volid: typing.Optional[str] = None
                        ) -> list[str]:
    """How ``volume`` differs from the create request.

    :param volume: a volume dict carrying the key.
    :param size_gb: the requested size in GiB (int).
    :param req_hash: the request's hash.
    :param snapshot_id: the requested snapshot id, or None.
    :param source_volid: the requested source volume id, or None.
    :returns: a list of field names (empty when it is the same request).
        Volumes without a stored hash are compared on size and source.
    """
    differs = []
    if volume.get('size') != size_gb:
        differs.append('size')
    stored = (volume.get('metadata') or {}).get(
        keys.REQUEST_HASH_METADATA_KEY)
    if stored is not None and stored != req_hash:
        differs.append('source or type')
    elif stored is None:
        if (volume.get('snapshot_id') or None) != (snapshot_id or None):
            differs.append('snapshot_id')
        if (volume.get('source_volid') or None) != (source_volid or None):
            differs.append('source_volid')
    return differs


def usability(volume: dict, pending_statuses: typing.Collection[str]):
    """Sort key: the volume most worth keeping first.

    Usable volumes (``available`` or attached) come first, then those still
    being built (``pending_statuses``, e.g. ``creating``), then any other
    status, and volumes in an ``error*`` status last, so an error volume is
    never kept while a usable one carries the key. Ties go to the oldest.

    :param volume: a volume dict.
    :param pending_statuses: the ``[bdm_guard] pending_statuses`` option.
    :returns: a sortable tuple.
    """
    status = volume.get('status')
    if not isinstance(status, str):
        status = ''
    if statuses.is_error(status):
        rank = 3
    elif status == statuses.AVAILABLE or statuses.is_attached(volume):
        rank = 0
    elif status in pending_statuses or not status:
        rank = 1
    else:
        rank = 2
    return (rank,) + lookup.oldest_first(volume)


def age_order(volume: dict):
    """Sort key for volumes that several creators may rank at once.

    Only what cannot change back orders them: ``error*`` volumes last, then
    the oldest first. Two creators that saw the same volumes in other
    statuses (one ``creating``, later ``available``) keep the same one, so
    they never delete each other's choice.

    :param volume: a volume dict.
    :returns: a sortable tuple.
    """
    status = volume.get('status')
    failed = isinstance(status, str) and statuses.is_error(status)
    return (failed,) + lookup.oldest_first(volume)


def delete_duplicate(client, volume: dict, *, conf, sleep, clock,
                     deadline: typing.Optional[retry.Deadline] = None
                     ) -> bool:
    """Delete one unattached duplicate, waiting for it to settle if needed.

    Cinder refuses to delete a volume that is ``creating`` or
    ``downloading`` (400), so the delete is retried until
    ``duplicate_settle_timeout`` passes, or ``deadline`` comes first.

    :param volume: the volume dict (``id``, ``status``, ``attachments``).
    :param conf: a ConfigOpts with ``[bdm_guard]`` registered.
    :param sleep: ``sleep(seconds)``.
    :param clock: a monotonic clock in seconds.
    :param deadline: a :class:`bdm_guard.internal.retry.Deadline` no sleep
        may go past (the create deadline), or None.
    :returns: True when cinder accepted the delete (or the volume is gone).
    """
    if statuses.is_attached(volume):
        LOG.warning('Duplicate volume %s is attached; leaving it.',
                    volume['id'])
        return False
    settle = retry.Deadline(clock, conf.bdm_guard.duplicate_settle_timeout)
    if deadline is not None and deadline.at < settle.at:
        settle = deadline
    base = (tenacity.wait_exponential(multiplier=DELETE_WAIT_FIRST,
                                      max=DELETE_WAIT_MAX)
            + retry.wait_jitter(retry.rng_for(volume['id']), DELETE_JITTER))

    def attempt():
        result = client.delete_volume(volume['id'],
                                      timeout=settle.remaining())
        return result.kind in (oc.OK, oc.NOT_FOUND)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda done: not done),
        wait=retry.wait_capped(base, settle), stop=settle.stop, sleep=sleep,
        retry_error_callback=lambda state: False)
    deleted = retrying(attempt)
    if deleted:
        LOG.info('Deleted duplicate volume %s.', volume['id'])
    else:
        LOG.warning('Could not delete duplicate volume %s within %.0f s.',
                    volume['id'], conf.bdm_guard.duplicate_settle_timeout)
    return deleted


def delete_all(client, volumes: typing.Iterable[dict], **kwargs
               ) -> tuple[list[str], list[str]]:
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


def keep_one(client, volumes: list[dict], *, conf, sleep, clock,
             deadline: typing.Optional[retry.Deadline] = None,
             racing: bool = False):
    """Keep the best of several volumes with one key; delete the others.

    The kept volume is the first by :func:`usability`: the oldest usable
    one, never an ``error*`` volume while another is usable. The others,
    error volumes included, are deleted unless attached.

    :param volumes: volume dicts carrying the key (any order, non-empty).
    :param conf: a ConfigOpts with ``[bdm_guard]`` registered.
    :param deadline: see :func:`delete_duplicate`.
    :param racing: another creator with the key may be deciding at the
        same time: rank by :func:`age_order` (the oldest volume not in
        error), which every creator computes alike.
    :returns: ``(kept, deleted_ids, undeleted_ids)``.
    """
    pending = frozenset(conf.bdm_guard.pending_statuses)
    ranked = sorted(volumes, key=age_order if racing else (
        lambda v: usability(v, pending)))
    kept, extra = ranked[0], ranked[1:]
    for volume in extra:
        LOG.warning('Volume %(dup)s (%(status)s) duplicates %(kept)s '
                    '(%(kstatus)s, same idempotency key); removing it.',
                    {'dup': volume['id'], 'status': volume.get('status'),
                     'kept': kept['id'], 'kstatus': kept.get('status')})
    deleted, undeleted = delete_all(client, extra, conf=conf, sleep=sleep,
                                    clock=clock, deadline=deadline)
    return kept, deleted, undeleted
