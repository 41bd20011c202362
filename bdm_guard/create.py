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

"""Idempotent volume create, and the one create -> wait -> cleanup path.

The behaviour table is in ``doc/source/contributor/design.rst``. In short:
POST with the key in the metadata, and as cinder's own ``Idempotency-Key``
where cinder and python-cinderclient have microversion 3.72 (then cinder
replays a resent create and nothing is looked up); else resend only what
provably never reached cinder (``not_sent``); after an unknown outcome,
look the key up within
``reconcile_grace`` and adopt or resend; keep the first usable of several
volumes with the key (never an error volume while a usable one exists) and
delete the others. :func:`create_and_wait` is the path nova's drop-in, the
``bdm-guard create`` command and the lab all take.
"""

import collections.abc
import dataclasses
import random
import time
import typing

from bdm_guard import exception
from bdm_guard.internal.create import cleanup
from bdm_guard.internal.create import flow
from bdm_guard.internal.create import keys
from bdm_guard.internal.create import request as request_mod
from bdm_guard.internal import legacy
from bdm_guard.internal.wait import poll
from bdm_guard import opts
from bdm_guard import wait

__all__ = ['CreateResult', 'IDEMPOTENCY_METADATA_KEY', 'VolumeRequest',
           'create_and_wait', 'create_volume', 'key_for_bdm',
           'request_id_for_key']

#: The metadata key that carries the idempotency key.
IDEMPOTENCY_METADATA_KEY = keys.IDEMPOTENCY_METADATA_KEY
#: See :func:`bdm_guard.internal.create.keys.key_for_bdm`.
key_for_bdm = keys.key_for_bdm
#: See :func:`bdm_guard.internal.create.keys.request_id_for_key`.
request_id_for_key = keys.request_id_for_key
#: See :class:`bdm_guard.internal.create.flow.CreateResult`.
CreateResult = flow.CreateResult

WaitFunc = typing.Callable[[str, float], typing.Any]


@dataclasses.dataclass(frozen=True)
class VolumeRequest:
    """The volume to create: what ``POST /volumes`` asks cinder for.

    Checked when made, before anything is sent.

    :ivar size_gb: size in GiB (int, 1 .. 2**31-1, cinder's API limit).
    :ivar image_id: glance image UUID to copy (``imageRef``), or None.
    :ivar snapshot_id: snapshot UUID to create from, or None.
    :ivar source_volid: volume UUID to clone, or None (at most one source).
    :ivar name: volume name, or None.
    :ivar description: volume description, or None.
    :ivar volume_type: volume type name or id, or None.
    :ivar availability_zone: availability zone name, or None.
    :ivar metadata: extra metadata (a copy, dict of str to str), or None.
    :raises bdm_guard.exception.InvalidInput: bad size, more than one
        source, a source that is not a UUID, metadata that is not a mapping
        of str to str, or a reserved metadata key
        (``bdm_guard_idempotency_key``, ``bdm_guard_request_hash``).
    """

    size_gb: int
    image_id: typing.Optional[str] = None
    snapshot_id: typing.Optional[str] = None
    source_volid: typing.Optional[str] = None
    name: typing.Optional[str] = None
    description: typing.Optional[str] = None
    volume_type: typing.Optional[str] = None
    availability_zone: typing.Optional[str] = None
    metadata: typing.Optional[typing.Mapping[str, str]] = None

    def __post_init__(self):
        request_mod.check(self.size_gb, self.image_id, self.snapshot_id,
                          self.source_volid, self.metadata)
        if self.metadata is not None:
            object.__setattr__(self, 'metadata', dict(self.metadata))

    @property
    def sourced(self) -> bool:
        """Made from an image, snapshot or volume (its wait gets per GiB)."""
        return bool(self.image_id or self.snapshot_id or self.source_volid)


#: 0.x's flat keywords for a :class:`VolumeRequest` (deprecated in 0.2.0);
#: 0.x passed ``size_gb`` second, where the request goes now.
REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(VolumeRequest))


def _checked(request, idempotency_key):
    """The internal request for ``request`` under ``idempotency_key``."""
    if not isinstance(request, VolumeRequest):
        raise exception.InvalidInput(
            reason='request must be a bdm_guard.create.VolumeRequest, got %s'
                   % exception.shorten(request))
    fields = dataclasses.asdict(request)
    return request_mod.build(fields.pop('size_gb'), idempotency_key,
                             **fields)


@legacy.folds('request', REQUEST_FIELDS, VolumeRequest, position=1)
def create_volume(client, request: VolumeRequest, *, idempotency_key: str,
                  resume: bool = False, conf=None,
                  sleep: typing.Callable[[float], None] = time.sleep,
                  clock: typing.Callable[[], float] = time.monotonic
                  ) -> CreateResult:
    """Create a volume exactly once for ``idempotency_key``.

    :param client: a :class:`bdm_guard.client.VolumeClient` (the
        real one is :class:`bdm_guard.cinder.VolumeClient`).
    :param request: the :class:`VolumeRequest`. 0.x's form, the size here
        and the request's fields as flat keywords (``image_id``,
        ``name``...), still builds one, with a deprecation warning.
    :param idempotency_key: the key (str, 1-255 printable characters), e.g.
        from :func:`key_for_bdm`; stored in volume metadata under
        ``bdm_guard_idempotency_key``, and sent as cinder's
        ``Idempotency-Key`` when the client says cinder takes it (an ASCII
        key; see ``doc/source/contributor/design.rst``).
    :param resume: an earlier attempt with this key may have made the
        volume (a retried command, a restarted process): look the key up
        before the first POST and adopt what it finds. nova never resumes a
        failed build, so its drop-in leaves this False and saves a request.
    :param conf: a ConfigOpts (``[bdm_guard]`` registered if needed).
    :param sleep: ``sleep(seconds)``; inject for virtual time.
    :param clock: a monotonic clock in seconds.
    :returns: a :class:`CreateResult`.
    :raises bdm_guard.exception.InvalidInput: ``request`` not a
        :class:`VolumeRequest` (or, in 0.x's form, a bad size, source or
        metadata).
    :raises bdm_guard.exception.InvalidIdempotencyKey: bad key.
    :raises bdm_guard.exception.OverQuota: cinder's 413 naming a quota;
        carries ``key`` and ``uncertain`` (True: an earlier POST may have
        created a volume not yet visible; look it up later by key).
    :raises bdm_guard.exception.IdempotencyConflict: a volume with the key
        exists but differs in size, source or type (left alone); volumes
        this call created are deleted first (``deleted_volumes`` /
        ``undeleted_volumes``); or, with cinder's key, cinder's 422 (the key
        was used with another request; nothing was created).
    :raises bdm_guard.exception.VolumeCreateRejected: any other 4xx; carries
        ``key`` and ``uncertain`` like OverQuota.
    :raises bdm_guard.exception.VolumeCreateNotSent: no POST reached cinder
        within ``create_max_posts`` / ``create_timeout``.
    :raises bdm_guard.exception.VolumeCreateUnknown: a POST may have
        reached cinder but no volume with the key is visible, or (cinder's
        key) cinder still answered 409 "in flight" at ``create_timeout``;
        carries ``key`` for a later lookup or create with it.
    :raises bdm_guard.exception.VolumeLookupFailed: (a VolumeCreateUnknown)
        no lookup by key answered before ``create_timeout``; nothing was
        resent; carries ``key``, ``posts``, ``lookups`` and ``volume_id``
        when a POST returned one.
    :raises bdm_guard.exception.CinderConfigError: keystoneauth cannot
        reach cinder for a reason no retry clears; raised at once.
    """
    return flow.Creator(client, _checked(request, idempotency_key),
                        opts.get_conf(conf), sleep, clock,
                        resume=resume).run()


def _with_waker_metadata(request, waker):
    """``request`` with the waker's ``metadata`` added, if it has any.

    The relay route's host key (:mod:`bdm_guard.events`): the volume names
    the host that waits, and cinder's notifications carry it. A request
    that is no :class:`VolumeRequest`, or whose metadata is no mapping, is
    left for :func:`_checked` to refuse.
    """
    extra = getattr(waker, 'metadata', None)
    if not extra or not isinstance(request, VolumeRequest):
        return request
    given = request.metadata
    if given is not None and not isinstance(given, collections.abc.Mapping):
        return request
    return dataclasses.replace(request, metadata=dict(given or {}, **extra))


@legacy.folds('budget', ('allocate_retries', 'allocate_retries_interval'),
              wait.Budget)
@legacy.folds('request', REQUEST_FIELDS, VolumeRequest, position=1)
def create_and_wait(client, request: VolumeRequest, *, idempotency_key: str,
                    resume: bool = False, delete_on_failure: bool = True,
                    wait_func: typing.Optional[WaitFunc] = None,
                    budget: typing.Optional[wait.Budget] = None,
                    conf=None, sleep: typing.Callable[[float], None] = (
                        time.sleep),
                    clock: typing.Callable[[], float] = time.monotonic,
                    rng: typing.Optional[random.Random] = None,
                    on_status=None, on_retry=None, waker=None, learner=None
                    ) -> tuple[CreateResult, typing.Any]:
    """Create a volume idempotently, wait until it is available, clean up.

    Unlike nova 34, which deletes the volume only on ``VolumeNotCreated``
    (``DriverVolumeBlockDevice._call_wait_func``), *any* wait failure
    (error status, timeout, 404 past the grace, a transport error, any
    exception of ``wait_func``) deletes the volume when
    ``delete_on_failure`` is set (nova's ``delete_on_termination``) and
    cinder can delete it: one DELETE, retried at most
    ``CLEANUP_ATTEMPTS`` times on transient failures. A volume the wait
    last saw attached or in a status cinder refuses to delete
    (``creating``, ``downloading``...) is handed back at once (``cleanup``
    ``kept``), never waited on.

    :param client: a :class:`bdm_guard.client.VolumeClient`.
    :param request: the :class:`VolumeRequest`; 0.x's flat form still
        works, with a deprecation warning (see :func:`create_volume`).
    :param idempotency_key: see :func:`create_volume`.
    :param resume: see :func:`create_volume`.
    :param delete_on_failure: delete the volume when the wait fails.
    :param wait_func: ``wait_func(volume_id, created_at) -> report``, the
        wait to run (nova's drop-in passes nova's own ``wait_func``); None
        runs :func:`bdm_guard.wait.wait_for_volume` with the arguments
        below.
    :param budget: the wait's :class:`bdm_guard.wait.Budget` (None:
        ``Budget()``), its ``size_gb`` replaced by the request's for a
        volume from an image, snapshot or volume (else None). 0.x's flat
        ``allocate_retries`` and ``allocate_retries_interval`` still build
        one, with a deprecation warning.
    :param conf: a ConfigOpts (``[bdm_guard]`` registered if needed).
    :param sleep: ``sleep(seconds)``.
    :param clock: a monotonic clock in seconds.
    :param rng: a :class:`random.Random` for the poll jitter.
    :param on_status: passed to :func:`bdm_guard.wait.wait_for_volume`.
    :param on_retry: passed to :func:`bdm_guard.wait.wait_for_volume`.
    :param learner: passed to :func:`bdm_guard.wait.wait_for_volume`.
    :param waker: passed to :func:`bdm_guard.wait.wait_for_volume`; an
        unbound :class:`bdm_guard.events.Watch` (from
        :meth:`bdm_guard.events.EventSource.expect`, taken before this call
        so that no notification about the new volume is missed) is bound to
        the volume once the create returns its id; its ``metadata`` (the
        relay route's host key), if any, is added to the volume's.
    :returns: ``(CreateResult, report)``: the report is a
        :class:`bdm_guard.wait.WaitReport`, or what ``wait_func`` returned.
    :raises bdm_guard.exception.InvalidInput: also for a ``budget`` that is
        not a :class:`bdm_guard.wait.Budget` (before any request).
    :raises: everything :func:`create_volume` raises, and whatever the wait
        raises. A :class:`bdm_guard.exception.VolumeWaitError` or
        :class:`bdm_guard.exception.CinderUnavailable` gets
        ``create_result``, ``cleanup`` (``deleted``, ``delete_failed`` or
        ``kept``), ``cleanup_reason`` (why not deleted, else None) and
        ``volume`` (the last volume dict seen) added.
    """
    conf = opts.get_conf(conf)
    checked = _checked(_with_waker_metadata(request, waker),
                       idempotency_key)
    budget = wait.check_budget(budget).for_size(
        request.size_gb if request.sourced else None)
    if wait_func is None:
        def wait_func(volume_id, created_at):
            return wait.wait_for_volume(
                client, volume_id, budget=budget, created_at=created_at,
                conf=conf, sleep=sleep, clock=clock, rng=rng,
                on_status=on_status, on_retry=on_retry, waker=waker,
                learner=learner)

    result = flow.Creator(client, checked, conf, sleep, clock,
                          resume=resume).run()
    volume_id = result.volume['id']
    if waker is not None:
        waker = poll.as_waker(waker, sleep)
        waker.bind(volume_id)
    try:
        report = wait_func(volume_id, result.created_at)
    except Exception as exc:
        cleanup.after_failed_wait(client, exc, volume_id, idempotency_key,
                                  delete_on_failure, sleep)
        if isinstance(exc, exception.BdmGuardException):
            exc.kwargs.update(create_result=result,
                              volume=cleanup.last_seen(exc) or result.volume)
        raise
    return result, report
