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
or resend; keep the oldest of several volumes with the key and delete the
others.
"""

import time

from oslo_log import log as logging

from bdm_guard import creator
from bdm_guard import exception
from bdm_guard import idempotency
from bdm_guard import reconcile
from bdm_guard import result as result_mod
from bdm_guard import wait

LOG = logging.getLogger(__name__)

IDEMPOTENCY_METADATA_KEY = idempotency.IDEMPOTENCY_METADATA_KEY
key_for_bdm = idempotency.key_for_bdm
request_id_for_key = idempotency.request_id_for_key
CreateResult = result_mod.CreateResult


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
    :raises bdm_guard.exception.OverQuota: cinder's 413 naming a quota.
    :raises bdm_guard.exception.IdempotencyConflict: a volume with the key
        exists but differs in size, source or type (left alone).
    :raises bdm_guard.exception.VolumeCreateRejected: any other 4xx.
    :raises bdm_guard.exception.VolumeCreateNotSent: no POST reached cinder
        within ``create_max_posts`` / ``create_timeout``.
    :raises bdm_guard.exception.VolumeCreateUnknown: a POST may have
        reached cinder but no volume with the key is visible; carries
        ``key`` for a later reconcile.
    """
    idempotency.check_key(idempotency_key)
    body, req_hash = idempotency.build_request(
        size_gb, idempotency_key, image_id, snapshot_id, source_volid, name,
        description, volume_type, availability_zone, metadata)
    flow = creator.Creator(client, idempotency_key, body, req_hash, size_gb,
                           wait._conf(conf), sleep, clock)
    return flow.run()


def _cleanup(client, volume_id, key, conf, sleep, clock):
    """Delete a volume whose wait failed; returns the cleanup verdict."""
    result = reconcile.delete_duplicate(
        client, {'id': volume_id}, conf=conf, sleep=sleep, clock=clock,
        request_id=request_id_for_key(key))
    if result:
        return 'deleted'
    LOG.warning('Could not delete volume %(id)s (idempotency key %(key)s) '
                'after its wait failed; delete it by hand or retry the '
                'create with the same key.', {'id': volume_id, 'key': key})
    return 'delete_failed'


def create_and_wait(client, size_gb, *, idempotency_key,
                    delete_on_failure=True, conf=None, sleep=time.sleep,
                    clock=time.monotonic, on_status=None,
                    allocate_retries=None, allocate_retries_interval=None,
                    rng=None, **create_kwargs):
    """Create a volume idempotently, then wait until it is available.

    Unlike nova 34, which deletes the volume only on ``VolumeNotCreated``
    (``DriverVolumeBlockDevice._call_wait_func``), every wait failure
    (error status, timeout, 404 past the grace) deletes the volume when
    ``delete_on_failure`` is set (nova's ``delete_on_termination``).

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
    :raises: everything :func:`create_volume` raises, and the
        :class:`bdm_guard.exception.VolumeWaitError` subclasses of
        :func:`bdm_guard.wait.wait_for_volume`, with ``create_result`` and
        ``cleanup`` (``deleted``, ``delete_failed`` or ``kept``) added.
    """
    conf = wait._conf(conf)
    result = create_volume(client, size_gb, idempotency_key=idempotency_key,
                           conf=conf, sleep=sleep, clock=clock,
                           **create_kwargs)
    sourced = any(create_kwargs.get(k) for k in ('image_id', 'snapshot_id',
                                                 'source_volid'))
    try:
        report = wait.wait_for_volume(
            client, result.volume['id'], size_gb=size_gb if sourced else None,
            created_at=result.created_at, conf=conf, sleep=sleep,
            clock=clock, on_status=on_status,
            allocate_retries=allocate_retries,
            allocate_retries_interval=allocate_retries_interval, rng=rng)
    except exception.VolumeWaitError as exc:
        exc.kwargs['create_result'] = result
        exc.kwargs['cleanup'] = 'kept'
        if delete_on_failure:
            exc.kwargs['cleanup'] = _cleanup(
                client, result.volume['id'], idempotency_key, conf, sleep,
                clock)
        raise
    return result, report
