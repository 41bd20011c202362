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

import dataclasses
import time

from oslo_log import log as logging
import tenacity

from bdm_guard import exception
from bdm_guard import idempotency
from bdm_guard import outcome as oc
from bdm_guard import policy
from bdm_guard import reconcile
from bdm_guard import wait

LOG = logging.getLogger(__name__)

IDEMPOTENCY_METADATA_KEY = idempotency.IDEMPOTENCY_METADATA_KEY
key_for_bdm = idempotency.key_for_bdm
request_id_for_key = idempotency.request_id_for_key
_RETRIABLE = (oc.NOT_SENT, oc.THROTTLED, oc.AUTH)
_UNCERTAIN = (oc.UNKNOWN, oc.SERVER_ERROR)


@dataclasses.dataclass
class CreateResult:
    """What one idempotent create did.

    :ivar volume: the volume dict (created or adopted).
    :ivar outcome: ``"created"`` or ``"adopted"``.
    :ivar posts: POST /volumes sent.
    :ivar reconciles: lookups by key (``GET /volumes/detail?metadata=``),
        the first one before any POST included.
    :ivar deleted_duplicates: ids of duplicates deleted.
    :ivar undeleted_duplicates: ids of duplicates that could not be deleted
        (attached, or still transitional after duplicate_settle_timeout).
    :ivar created_at: the ``clock`` value when the volume was known.
    :ivar key: the idempotency key.
    """

    volume: dict
    outcome: str
    posts: int = 0
    reconciles: int = 0
    deleted_duplicates: list = dataclasses.field(default_factory=list)
    undeleted_duplicates: list = dataclasses.field(default_factory=list)
    created_at: float = 0.0
    key: str = None


class _Creator:
    """One idempotent create; see :func:`create_volume`."""

    def __init__(self, client, key, body, req_hash, size_gb, conf, sleep,
                 clock):
        self.client = client
        self.key = key
        self.body = body
        self.req_hash = req_hash
        self.size_gb = size_gb
        self.conf = conf
        self.sleep = sleep
        self.clock = clock
        self.request_id = request_id_for_key(key)
        self.posts = 0
        self.reconciles = 0
        self.uncertain = False
        self.last = None

    def lookup(self):
        self.reconciles += 1
        return reconcile.list_by_key(self.client, self.key, self.request_id)

    def reconcile(self):
        """List by key until found or ``reconcile_grace`` has passed."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda found: not found),
            wait=tenacity.wait_exponential(multiplier=0.5, max=2),
            stop=policy.stop_at(
                self.clock,
                self.clock() + self.conf.bdm_guard.reconcile_grace),
            sleep=self.sleep,
            retry_error_callback=lambda state: [])
        return retrying(self.lookup)

    def finish(self, volumes, outcome):
        """Adopt the oldest of ``volumes`` and delete the others."""
        reconcile.check_same_request(
            volumes[0], self.key, self.size_gb, self.req_hash,
            self.body.get('snapshot_id'), self.body.get('source_volid'))
        kept, deleted, undeleted = reconcile.keep_oldest(
            self.client, volumes, conf=self.conf, sleep=self.sleep,
            clock=self.clock, request_id=self.request_id)
        LOG.info('Volume %(id)s %(outcome)s for idempotency key %(key)s '
                 '(%(posts)d POSTs, %(rec)d lookups).',
                 {'id': kept['id'], 'outcome': outcome, 'key': self.key,
                  'posts': self.posts, 'rec': self.reconciles})
        return CreateResult(volume=kept, outcome=outcome, posts=self.posts,
                            reconciles=self.reconciles,
                            deleted_duplicates=deleted,
                            undeleted_duplicates=undeleted,
                            created_at=self.clock(), key=self.key)

    def post(self):
        """Send one POST and decide; returns a CreateResult or None."""
        self.posts += 1
        result = self.client.create_volume(self.body,
                                           request_id=self.request_id)
        self.last = result
        if result.kind == oc.OK:
            volume = result.body
            if self.uncertain:
                # An earlier POST may have created a volume too.
                found = self.lookup()
                if not any(v['id'] == volume['id'] for v in found):
                    found = sorted(found + [volume],
                                   key=reconcile._created_at)
                return self.finish(found, 'created')
            return CreateResult(volume=volume, outcome='created',
                                posts=self.posts,
                                reconciles=self.reconciles,
                                created_at=self.clock(), key=self.key)
        LOG.warning('POST /volumes for idempotency key %(key)s: %(kind)s '
                    '(HTTP %(code)s) %(msg)s',
                    {'key': self.key, 'kind': result.kind,
                     'code': result.status_code, 'msg': result.message})
        if result.kind == oc.AUTH:
            self.client.reauthenticate()
        if result.kind in _UNCERTAIN:
            self.uncertain = True
            found = self.reconcile()
            if found:
                return self.finish(found, 'adopted')
            return None
        if result.kind in _RETRIABLE:
            return None
        # Terminal answers. An earlier uncertain POST may still have
        # created the volume: never hide it.
        if self.uncertain:
            found = self.reconcile()
            if found:
                return self.finish(found, 'adopted')
        if result.kind == oc.OVER_QUOTA:
            raise exception.OverQuota(quota=result.quota,
                                      message=result.message)
        raise exception.VolumeCreateRejected(code=result.status_code,
                                             message=result.message)

    def run(self):
        found = self.lookup()
        if found:
            return self.finish(found, 'adopted')
        group = self.conf.bdm_guard
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda done: done is None),
            wait=policy.wait_retry_after(
                tenacity.wait_exponential(
                    multiplier=group.post_retry_interval,
                    max=group.post_retry_max_interval),
                lambda state: self.last.retry_after
                if self.last and self.last.kind == oc.THROTTLED else None),
            stop=(tenacity.stop_after_attempt(group.create_max_posts)
                  | policy.stop_at(self.clock,
                                   self.clock() + group.create_timeout)),
            sleep=self.sleep,
            retry_error_callback=lambda state: None,
            reraise=True)
        done = retrying(lambda: self.post())
        if done is not None:
            return done
        last = self.last
        reason = '%s: %s' % (last.kind, last.message) if last else 'none'
        if self.uncertain:
            raise exception.VolumeCreateUnknown(
                key=self.key, posts=self.posts, reconciles=self.reconciles,
                reason=reason)
        raise exception.VolumeCreateNotSent(posts=self.posts, reason=reason)


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
    creator = _Creator(client, idempotency_key, body, req_hash, size_gb,
                       wait._conf(conf), sleep, clock)
    return creator.run()


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
