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

"""Idempotent volume create: one volume per key, whatever the network does.

The behaviour table is in ``doc/source/contributor/design.rst``. In short:
look the key up first (a retry after a restart adopts what an earlier
process made); POST with the key in the metadata and a request id derived
from it; resend only what provably never reached cinder (``not_sent``);
after an unknown outcome, list by key within ``reconcile_grace`` and adopt
or resend; keep the first usable of several volumes with the key (never an
error volume while a usable one exists) and delete the others.
"""

import time

from oslo_log import log as logging
import tenacity

from bdm_guard import creator
from bdm_guard import exception
from bdm_guard import idempotency
from bdm_guard import opts
from bdm_guard import outcome as oc
from bdm_guard import policy
from bdm_guard import reconcile
from bdm_guard import result as result_mod
from bdm_guard import wait

LOG = logging.getLogger(__name__)

IDEMPOTENCY_METADATA_KEY = idempotency.IDEMPOTENCY_METADATA_KEY
key_for_bdm = idempotency.key_for_bdm
request_id_for_key = idempotency.request_id_for_key
CreateResult = result_mod.CreateResult

#: Statuses in which cinder deletes a volume without ``force``
#: (``cinder/volume/api.py`` ``API.delete``, cinder 29); in any other one
#: (``creating``, ``downloading``...) it answers 400.
DELETABLE_STATUSES = frozenset(['available', 'error', 'error_restoring',
                                'error_extending', 'error_managing'])
#: DELETE attempts after a failed wait (a short bounded retry of transient
#: failures only: 0.5 s then 1 s between them).
CLEANUP_ATTEMPTS = 3
_TRANSIENT = (oc.NOT_SENT, oc.UNKNOWN, oc.SERVER_ERROR, oc.THROTTLED,
              oc.AUTH)


def create_volume(client, size_gb, *, idempotency_key, image_id=None,
                  snapshot_id=None, source_volid=None, name=None,
                  description=None, volume_type=None, availability_zone=None,
                  metadata=None, conf=None, sleep=time.sleep,
                  clock=time.monotonic):
    """Create a volume exactly once for ``idempotency_key``.

    :param client: a :class:`bdm_guard.cinder.VolumeClient`.
    :param size_gb: size in GiB (int, 1 .. 2**31-1).
    :param idempotency_key: the key (str, 1-255 printable characters), e.g.
        from :func:`key_for_bdm`; stored in volume metadata under
        ``bdm_guard_idempotency_key``.
    :param image_id: glance image UUID to copy (``imageRef``).
    :param snapshot_id: snapshot UUID to create from.
    :param source_volid: volume UUID to clone.
    :param name: volume name.
    :param description: volume description.
    :param volume_type: volume type name or id.
    :param availability_zone: availability zone name.
    :param metadata: extra metadata (dict of str to str).
    :param conf: a ConfigOpts (``[bdm_guard]`` registered if needed).
    :param sleep: ``sleep(seconds)``; inject for virtual time.
    :param clock: a monotonic clock in seconds.
    :returns: a :class:`CreateResult`.
    :raises bdm_guard.exception.InvalidInput: bad size, source, metadata.
    :raises bdm_guard.exception.InvalidIdempotencyKey: bad key.
    :raises bdm_guard.exception.OverQuota: cinder's 413 naming a quota;
        carries ``key`` and ``uncertain`` (True: an earlier POST may have
        created a volume not yet visible; reconcile later by key).
    :raises bdm_guard.exception.IdempotencyConflict: a volume with the key
        exists but differs in size, source or type (left alone); volumes
        this call created are deleted first (``deleted_volumes`` /
        ``undeleted_volumes``).
    :raises bdm_guard.exception.VolumeCreateRejected: any other 4xx; carries
        ``key`` and ``uncertain`` like OverQuota.
    :raises bdm_guard.exception.VolumeCreateNotSent: no POST reached cinder
        within ``create_max_posts`` / ``create_timeout``.
    :raises bdm_guard.exception.VolumeCreateUnknown: a POST may have
        reached cinder but no volume with the key is visible; carries
        ``key`` for a later reconcile.
    :raises bdm_guard.exception.VolumeLookupFailed: (a VolumeCreateUnknown)
        no list by key answered before ``create_timeout``; nothing was
        resent; carries ``key``, ``posts``, ``reconciles`` and
        ``volume_id`` when a POST returned one.
    :raises bdm_guard.exception.CinderConfigError: keystoneauth cannot
        reach cinder for a reason no retry clears; raised at once.
    """
    idempotency.check_key(idempotency_key)
    body, req_hash = idempotency.build_request(
        size_gb, idempotency_key, image_id, snapshot_id, source_volid, name,
        description, volume_type, availability_zone, metadata)
    flow = creator.Creator(client, idempotency_key, body, req_hash, size_gb,
                           opts.get_conf(conf), sleep, clock)
    return flow.run()


def _why_kept(exc):
    """Why cinder would refuse to delete the volume now, or None."""
    volume = exc.report.volume if exc.kwargs.get('report') else None
    if volume is None or isinstance(exc, exception.VolumeVanished):
        return None   # never seen, or gone since: its status is unknown
    status = volume.get('status')
    if status in reconcile.ATTACHED or volume.get('attachments'):
        return 'volume is attached (status %s)' % status
    if status not in DELETABLE_STATUSES:
        return ('status %s: cinder deletes only volumes in %s' %
                (status, ', '.join(sorted(DELETABLE_STATUSES))))
    return None


def _delete(client, volume_id, key, sleep):
    """One DELETE, retried briefly on transient failures.

    :returns: None when deleted (or already gone), else the reason (str).
    """
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda r: r.kind in _TRANSIENT),
        wait=tenacity.wait_exponential(multiplier=0.5, max=1),
        stop=tenacity.stop_after_attempt(CLEANUP_ATTEMPTS), sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result())
    try:
        result = retrying(client.delete_volume, volume_id,
                          request_id=request_id_for_key(key))
    except exception.CinderUnavailable as err:
        return err.msg
    if result.kind in (oc.OK, oc.NOT_FOUND):
        return None
    return 'DELETE answered %s (HTTP %s): %s' % (
        result.kind, result.status_code, result.message)


def _cleanup(client, exc, volume_id, key, delete, sleep):
    """Delete the volume of a failed wait, or hand it back at once.

    Sets ``cleanup`` (``deleted``, ``delete_failed`` or ``kept``) and
    ``cleanup_reason`` (None when deleted) in ``exc.kwargs``; never waits
    for a transitional volume to settle (cinder refuses to delete it).
    """
    reason = 'delete_on_failure is off' if not delete else _why_kept(exc)
    verdict = 'kept'
    if reason is None:
        reason = _delete(client, volume_id, key, sleep)
        verdict = 'deleted' if reason is None else 'delete_failed'
    exc.kwargs.update(cleanup=verdict, cleanup_reason=reason)
    if reason is not None:
        LOG.warning('Volume %(id)s (idempotency key %(key)s) was not '
                    'deleted after its wait failed (%(verdict)s: '
                    '%(reason)s); it is handed back to the caller, who must '
                    'delete it or retry the create with the same key.',
                    {'id': volume_id, 'key': key, 'verdict': verdict,
                     'reason': reason})


def create_and_wait(client, size_gb, *, idempotency_key,
                    delete_on_failure=True, conf=None, sleep=time.sleep,
                    clock=time.monotonic, on_status=None,
                    allocate_retries=None, allocate_retries_interval=None,
                    rng=None, **create_kwargs):
    """Create a volume idempotently, then wait until it is available.

    Unlike nova 34, which deletes the volume only on ``VolumeNotCreated``
    (``DriverVolumeBlockDevice._call_wait_func``), every wait failure
    (error status, timeout, 404 past the grace) deletes the volume when
    ``delete_on_failure`` is set (nova's ``delete_on_termination``) and
    cinder can delete it: one DELETE, retried at most ``CLEANUP_ATTEMPTS``
    times on transient failures. A volume the wait last saw attached or in
    a status cinder refuses to delete (``creating``, ``downloading``...) is
    handed back at once (``cleanup`` ``kept``), never waited on.

    :param client: a :class:`bdm_guard.cinder.VolumeClient`.
    :param size_gb: size in GiB (int).
    :param idempotency_key: see :func:`create_volume`.
    :param delete_on_failure: delete the volume when the wait fails.
    :param conf: a ConfigOpts (``[bdm_guard]`` registered if needed).
    :param sleep: ``sleep(seconds)``.
    :param clock: a monotonic clock in seconds.
    :param on_status: passed to :func:`bdm_guard.wait.wait_for_volume`.
    :param allocate_retries: nova's ``block_device_allocate_retries``.
    :param allocate_retries_interval: nova's
        ``block_device_allocate_retries_interval`` (seconds).
    :param rng: a :class:`random.Random` for the poll jitter.
    :param create_kwargs: the other :func:`create_volume` arguments
        (``image_id``, ``snapshot_id``, ``source_volid``, ``name``, ...).
    :returns: ``(CreateResult, WaitReport)``.
    :raises bdm_guard.exception.InvalidInput: also for ``allocate_retries``
        or ``allocate_retries_interval`` (before any request).
    :raises: everything :func:`create_volume` raises, and the
        :class:`bdm_guard.exception.VolumeWaitError` subclasses of
        :func:`bdm_guard.wait.wait_for_volume` with ``create_result``,
        ``cleanup`` (``deleted``, ``delete_failed`` or ``kept``),
        ``cleanup_reason`` (why not deleted, else None) and ``volume`` (the
        last volume dict seen, for the caller to clean up) added.
    :raises bdm_guard.exception.CinderConfigError: see :func:`create_volume`;
        when raised by the wait it carries the same four kwargs as a
        VolumeWaitError (``cleanup`` is then ``delete_failed``).
    """
    conf = opts.get_conf(conf)
    sourced = any(create_kwargs.get(k) for k in ('image_id', 'snapshot_id',
                                                 'source_volid'))
    # Check the wait's arguments before anything is created.
    policy.wait_deadline(conf, size_gb if sourced else None,
                         allocate_retries, allocate_retries_interval)
    result = create_volume(client, size_gb, idempotency_key=idempotency_key,
                           conf=conf, sleep=sleep, clock=clock,
                           **create_kwargs)
    try:
        report = wait.wait_for_volume(
            client, result.volume['id'], size_gb=size_gb if sourced else None,
            created_at=result.created_at, conf=conf, sleep=sleep,
            clock=clock, on_status=on_status,
            allocate_retries=allocate_retries,
            allocate_retries_interval=allocate_retries_interval, rng=rng)
    except (exception.VolumeWaitError, exception.CinderUnavailable) as exc:
        seen = exc.report.volume if exc.kwargs.get('report') else None
        exc.kwargs.update(create_result=result,
                          volume=seen or result.volume)
        _cleanup(client, exc, result.volume['id'], idempotency_key,
                 delete_on_failure, sleep)
        raise
    return result, report
