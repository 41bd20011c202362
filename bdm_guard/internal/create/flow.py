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

"""The steps of one idempotent create (see :mod:`bdm_guard.create`).

Rules (``doc/source/contributor/design.rst``, "Creator behaviour"):

* The first POST goes out without a lookup unless an earlier or
  concurrent attempt may exist: the caller says so (``resume``), or this
  process knows it (:mod:`bdm_guard.internal.create.attempts`). nova's
  first attempt at a boot then costs no request beyond stock nova's.
* When an earlier or concurrent attempt may exist, the key is looked up
  again after a 202, until the list shows the new volume (within
  ``reconcile_grace``): two creates racing with one key converge on the
  oldest volume not in error, and each deletes what it made in excess.
* A lookup by key that fails (503, reset, malformed body) is retried and
  never taken for "no volume has the key"; a POST is resent after an
  unknown outcome only when a list that answered at or after
  ``reconcile_grace`` showed no volume. When no list answers before
  ``create_timeout``, :class:`~bdm_guard.exception.VolumeLookupFailed` is
  raised and nothing is resent.
* Every sleep ends by the create deadline (``create_timeout`` from the
  start), whatever the back-off or a Retry-After header asks for; a
  Retry-After that reaches past the deadline ends the create at once.
* Several volumes with the key: the first usable one is kept (never an
  ``error*`` one while another is usable), the others are deleted.
* A volume with the key from another request (size, source, type):
  :class:`~bdm_guard.exception.IdempotencyConflict`; it is left alone and
  the volumes this call made are deleted first.
* Every call carries the client's global request id (nova's
  ``context.global_id``); the key travels in the volume's metadata.
* cinder's own key: when the client says cinder and python-cinderclient
  take the ``Idempotency-Key`` of cinder microversion 3.72
  (``supports_idempotency_key``), every POST carries it as well and
  cinder, not a lookup, makes the create happen once. A POST with an
  unknown outcome is resent at once, and nothing is looked up or deleted:
  a replayed ``202`` is the volume an earlier POST made, a ``409`` (the
  first create with the key is in flight) is sent again after its
  Retry-After (1 s when absent) within the create deadline and does not
  count against ``create_max_posts``, and a ``422`` (the key was used with
  another request) is an
  :class:`~bdm_guard.exception.IdempotencyConflict`. When cinder refuses
  the microversion (``406``, or ``404`` from an older API node in a
  rolling upgrade; nothing was created), the create goes on by metadata.
  The metadata path is the fallback for an older cinder or cinderclient
  and for a client without ``supports_idempotency_key``.
"""

import dataclasses
import re
import typing

from debtcollector import removals
from oslo_log import log as logging
import tenacity

from bdm_guard import exception
from bdm_guard.internal.create import attempts
from bdm_guard.internal.create import dedupe
from bdm_guard.internal.create import lookup
from bdm_guard.internal import retry
from bdm_guard import outcome as oc

LOG = logging.getLogger(__name__)

_RETRIABLE = (oc.NOT_SENT, oc.THROTTLED, oc.AUTH)
_UNCERTAIN = (oc.UNKNOWN, oc.SERVER_ERROR, oc.MALFORMED)
#: HTTP statuses of a keyed create (cinder spec volume-create-idempotency-
#: key): the first create with the key is in flight; the key was used with
#: another body; cinder refuses microversion 3.72 (406 from cinder's
#: microversion check, 404 "version not supported" from an older node)
#: or, during its rolling upgrade, the key itself (400 until every
#: cinder-scheduler and cinder-volume has the key's object version, with
#: the header ``OpenStack-Unavailable-During-Upgrade: Idempotency-Key``:
#: patches/cinder/specs/idempotency-key.rst, "Upgrade impact"). Nothing
#: was created on any of them, so the create goes on by metadata. Any 400
#: is taken so, header or not (the creator's keys are well formed, and
#: only a python-cinderclient with patches/python-cinderclient 0001 hands
#: on the header, as BadRequest.unavailable_during_upgrade): a 400 the
#: body itself deserves comes back on that POST and is final there.
IN_FLIGHT, KEY_REUSED = 409, 422
_VERSION_REFUSED = (400, 404, 406)
#: Seconds before a 409 without Retry-After is sent again (cinder sends
#: ``Retry-After: 1``, the spec's value).
IN_FLIGHT_RETRY_AFTER = 1.0
_UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                   r'[0-9a-f]{12}', re.IGNORECASE)


@dataclasses.dataclass
class CreateResult:
    """What one idempotent create did.

    :ivar volume: the volume dict (created or adopted).
    :ivar how: ``"created"`` (a POST of this call made it) or ``"adopted"``
        (a lookup found it).
    :ivar posts: POST /volumes sent.
    :ivar lookups: lookups by key (``GET /volumes/detail?metadata=``).
    :ivar deleted_duplicates: ids of duplicates deleted.
    :ivar undeleted_duplicates: ids of duplicates that could not be deleted
        (attached, or still transitional after duplicate_settle_timeout).
    :ivar created_at: the ``clock`` value when the volume was known.
    :ivar key: the idempotency key.
    :ivar cinder_key: the POSTs carried cinder's own idempotency key
        (microversion 3.72), not only the metadata key.
    :ivar replayed: cinder answered the last POST with the volume of an
        earlier one with the key (``Idempotent-Replayed: true``).
    """

    volume: dict
    how: str
    posts: int = 0
    lookups: int = 0
    deleted_duplicates: list[str] = dataclasses.field(
        default_factory=list)
    undeleted_duplicates: list[str] = dataclasses.field(
        default_factory=list)
    created_at: float = 0.0
    key: typing.Optional[str] = None
    cinder_key: bool = False
    replayed: bool = False

    @removals.removed_property(
        message='Use CreateResult.how, the same value.', version='0.2.0',
        removal_version='0.3.0', category=DeprecationWarning)
    def outcome(self) -> str:
        """Deprecated: :attr:`how` (0.x's name)."""
        return self.how

    @removals.removed_property(
        message='Use CreateResult.lookups, the same value.',
        version='0.2.0', removal_version='0.3.0',
        category=DeprecationWarning)
    def reconciles(self) -> int:
        """Deprecated: :attr:`lookups` (0.x's name)."""
        return self.lookups


class Creator:
    """One idempotent create; see :func:`bdm_guard.create.create_volume`.

    :param client: a :class:`bdm_guard.client.VolumeClient`.
    :param request: a checked
        :class:`bdm_guard.internal.create.request.CreateRequest`.
    :param conf: a ConfigOpts with ``[bdm_guard]`` registered.
    :param sleep: ``sleep(seconds)``.
    :param clock: a monotonic clock in seconds.
    :param resume: an earlier attempt with this key may have made the
        volume: look it up before the first POST.
    """

    def __init__(self, client, request, conf, sleep, clock, resume=False):
        self.client = client
        self.request = request
        self.key = request.key
        self.conf = conf
        self.sleep = sleep
        self.clock = clock
        self.resume = resume
        self.verify = resume
        self.posts = 0
        self.lookups = 0
        self.uncertain = False
        self.last = None
        self.deadline = None
        self.rng = retry.rng_for(self.key)
        self.cinder_key = False
        self.in_flight = 0

    def list_once(self):
        """One lookup by key: volumes (list) or None when the list failed."""
        self.lookups += 1
        return lookup.list_by_key(self.client, self.key,
                                  self.deadline.remaining())

    def find(self, settle_until=None, until_seen=None):
        """Lookups until one answers; see :func:`lookup.find`.

        :returns: a list of volumes, or None when none answered in time.
        """
        return lookup.find(self.list_once, self.deadline, self.sleep,
                           self.rng, settle_until, until_seen)

    def lookup_failed(self, reason, **kwargs):
        """The :class:`~bdm_guard.exception.VolumeLookupFailed` to raise."""
        return exception.VolumeLookupFailed(
            key=self.key, posts=self.posts, lookups=self.lookups,
            reason=reason, **kwargs)

    def result(self, volume, how, deleted=(), undeleted=(), replayed=False):
        """The :class:`CreateResult` of this create."""
        return CreateResult(
            volume=volume, how=how, posts=self.posts, lookups=self.lookups,
            deleted_duplicates=list(deleted),
            undeleted_duplicates=list(undeleted), created_at=self.clock(),
            key=self.key, cinder_key=self.cinder_key, replayed=replayed)

    def finish(self, volumes, how, racing=False):
        """Adopt the best of ``volumes`` and delete the others.

        :param volumes: volume dicts carrying the key (non-empty).
        :param how: ``created`` or ``adopted``.
        :param racing: see :func:`dedupe.keep_one`.
        :returns: a :class:`CreateResult`.
        :raises bdm_guard.exception.IdempotencyConflict: one of them was
            made by another request. It is left alone; when this call sent
            a POST, the volumes of this request are deleted first (ids in
            ``deleted_volumes`` / ``undeleted_volumes``).
        """
        req = self.request
        mine, conflicts = [], []
        for volume in volumes:
            differs = dedupe.request_differences(
                volume, req.size_gb, req.hash, req.snapshot_id,
                req.source_volid)
            (conflicts if differs else mine).append((volume, differs))
        kwargs = dict(conf=self.conf, sleep=self.sleep, clock=self.clock,
                      deadline=self.deadline)
        if conflicts:
            deleted, undeleted = [], []
            if self.posts:
                # Any volume of this request appeared after a lookup that
                # showed none: this call's POSTs (or a lagging earlier
                # attempt) made it, and nothing will adopt it now.
                deleted, undeleted = dedupe.delete_all(
                    self.client, [v for v, _ in mine], **kwargs)
            volume, differs = conflicts[0]
            raise exception.IdempotencyConflict(
                volume_id=volume['id'], key=self.key,
                fields=', '.join(differs), deleted_volumes=deleted,
                undeleted_volumes=undeleted)
        kept, deleted, undeleted = dedupe.keep_one(
            self.client, [v for v, _ in mine], racing=racing, **kwargs)
        LOG.info('Volume %(id)s %(how)s for idempotency key %(key)s '
                 '(%(posts)d POSTs, %(lookups)d lookups).',
                 {'id': kept['id'], 'how': how, 'key': self.key,
                  'posts': self.posts, 'lookups': self.lookups})
        return self.result(kept, how, deleted, undeleted)

    def created(self, volume):
        """After a 2xx: the new volume, checked against lookups if needed.

        :param volume: the volume dict of the POST's answer.
        :returns: a :class:`CreateResult`; when an earlier POST had an
            unknown outcome, the volumes a lookup shows are de-duplicated
            (see :meth:`finish`).
        :raises bdm_guard.exception.VolumeLookupFailed: no list answered
            before the deadline (carries ``volume_id``).
        :raises bdm_guard.exception.IdempotencyConflict: see :meth:`finish`.
        """
        racing = self.verify or attempts.contended(self.key)
        if not (self.uncertain or racing):
            return self.result(volume, 'created')
        settle = None
        if racing:
            # Look until the list shows this volume: then it also shows any
            # volume with the key made before it.
            settle = self.clock() + self.conf.bdm_guard.reconcile_grace
        found = self.find(settle_until=settle, until_seen=volume['id'])
        if found is None:
            raise self.lookup_failed('no list answered after a POST '
                                     'created volume %s' % volume['id'],
                                     volume_id=volume['id'])
        if not any(v['id'] == volume['id'] for v in found):
            found = found + [volume]
        return self.finish(found, 'created', racing=racing)

    def terminal(self, result):
        """Raise the terminal error of ``result`` (413 quota, other 4xx).

        An earlier POST with an unknown outcome may have made the volume:
        look it up once more and adopt it when it shows.

        :returns: a CreateResult when a volume with the key shows.
        :raises bdm_guard.exception.OverQuota: 413 naming a quota.
        :raises bdm_guard.exception.VolumeCreateRejected: another 4xx.
            Both carry ``key`` and ``uncertain`` (True when an earlier POST
            may have created a volume that no lookup has shown yet: look it
            up by ``key`` later).
        """
        if self.uncertain:
            found = self.find()
            if found:
                return self.finish(found, 'adopted')
        kwargs = {'key': self.key, 'uncertain': self.uncertain}
        if result.kind == oc.OVER_QUOTA:
            raise exception.OverQuota(quota=result.quota,
                                      message=result.message, **kwargs)
        raise exception.VolumeCreateRejected(code=result.status_code,
                                             message=result.message, **kwargs)

    def use_cinder_key(self):
        """Whether the client and cinder take cinder's idempotency key."""
        supports = getattr(self.client, 'supports_idempotency_key', None)
        # cinder takes printable ASCII only (an RFC 8941 sf-string); a key
        # beyond it goes by metadata, which takes any printable text.
        return bool(supports is not None and self.key.isascii()
                    and supports(timeout=self.deadline.remaining()))

    def post_keyed(self):
        """Send one POST with cinder's key; returns a CreateResult or None.

        :raises bdm_guard.exception.IdempotencyConflict: cinder's 422.
        :raises bdm_guard.exception.OverQuota: 413 naming a quota.
        :raises bdm_guard.exception.VolumeCreateRejected: another 4xx.
        """
        result = self.client.create_volume(self.request.body,
                                           timeout=self.deadline.remaining(),
                                           idempotency_key=self.key)
        self.last = result
        if result.kind == oc.OK:
            # A replay of this call's own POST whose answer was lost is the
            # volume this call created; else an earlier attempt made it.
            how = ('adopted' if result.replayed and not self.uncertain
                   else 'created')
            LOG.info('Volume %(id)s %(how)s for idempotency key %(key)s by '
                     "cinder's key (%(posts)d POSTs%(replay)s).",
                     {'id': result.body['id'], 'how': how, 'key': self.key,
                      'posts': self.posts,
                      'replay': ', replayed' if result.replayed else ''})
            return self.result(result.body, how, replayed=result.replayed)
        LOG.warning('POST /volumes with idempotency key %(key)s: %(kind)s '
                    '(HTTP %(code)s) %(msg)s',
                    {'key': self.key, 'kind': result.kind,
                     'code': result.status_code, 'msg': result.message})
        return self.keyed_refusal(result)

    def keyed_refusal(self, result):
        """Decide on a keyed POST's answer other than ``ok``; see above.

        :returns: None (send again).
        """
        code = result.status_code
        if result.kind == oc.REJECTED and code == IN_FLIGHT:
            self.in_flight += 1
            self.uncertain = True
            return None
        if result.kind == oc.REJECTED and code == KEY_REUSED:
            # cinder's fault names the key and the volume; a key may look
            # like a UUID too.
            named = [u for u in _UUID.findall(result.message or '')
                     if u.lower() != self.key.lower()]
            raise exception.IdempotencyConflict(
                volume_id=named[0] if named else '(not named)',
                key=self.key, fields='the request (cinder: HTTP 422, %s)'
                % result.message, deleted_volumes=[], undeleted_volumes=[])
        if result.kind in (oc.REJECTED, oc.NOT_FOUND) and (
                code in _VERSION_REFUSED):
            # An API node without 3.72, or a cinder still upgrading:
            # nothing was created. Go on by metadata, which finds what an
            # earlier keyed POST made.
            LOG.warning('cinder refused idempotency key %(key)s (HTTP '
                        '%(code)s: %(msg)s); going on with the metadata '
                        'key.', {'key': self.key, 'code': code,
                                 'msg': result.message})
            forget = getattr(self.client, 'forget_idempotency_key_support',
                             None)
            if forget is not None:
                forget()
            self.cinder_key = False
            return None
        if result.kind == oc.AUTH:
            self.client.reauthenticate()
        if result.kind in _UNCERTAIN:
            # Sent again with the key, it is replayed if it was processed.
            self.uncertain = True
            return None
        if result.kind in _RETRIABLE:
            return None
        # A terminal answer to a keyed POST is final: had an earlier POST
        # with the key made a volume, cinder would have replayed it.
        kwargs = {'key': self.key, 'uncertain': False}
        if result.kind == oc.OVER_QUOTA:
            raise exception.OverQuota(quota=result.quota,
                                      message=result.message, **kwargs)
        raise exception.VolumeCreateRejected(code=result.status_code,
                                             message=result.message, **kwargs)

    def post(self):
        """Send one POST and decide; returns a CreateResult or None."""
        self.posts += 1
        if self.cinder_key:
            return self.post_keyed()
        result = self.client.create_volume(self.request.body,
                                           timeout=self.deadline.remaining())
        self.last = result
        if result.kind == oc.OK:
            return self.created(result.body)
        LOG.warning('POST /volumes for idempotency key %(key)s: %(kind)s '
                    '(HTTP %(code)s) %(msg)s',
                    {'key': self.key, 'kind': result.kind,
                     'code': result.status_code, 'msg': result.message})
        if result.kind == oc.AUTH:
            self.client.reauthenticate()
        if result.kind in _UNCERTAIN:
            self.uncertain = True
            settle = self.clock() + self.conf.bdm_guard.reconcile_grace
            racing = self.verify or attempts.contended(self.key)
            # Racing, a volume of the other create may show before the one
            # this POST may have made: look until the grace is over.
            found = self.find(settle_until=settle, until_seen=(
                lookup.UNTIL_SETTLED if racing else None))
            if found is None:
                raise self.lookup_failed('%s: %s; then no list answered'
                                         % (result.kind, result.message))
            if found:
                return self.finish(found, 'adopted', racing=racing)
            return None
        if result.kind in _RETRIABLE:
            return None
        return self.terminal(result)

    def _last_wait(self):
        """Seconds the last answer asked to wait (429/413 or 409), or None."""
        last = self.last
        if last is None:
            return None
        if last.kind == oc.THROTTLED:
            return last.retry_after
        if (self.cinder_key and last.kind == oc.REJECTED
                and last.status_code == IN_FLIGHT):
            return (IN_FLIGHT_RETRY_AFTER if last.retry_after is None
                    else last.retry_after)
        return None

    def throttled_past_deadline(self, retry_state):
        """tenacity stop: the last Retry-After reaches past the deadline."""
        wait = self._last_wait()
        return wait is not None and not self.deadline.allows(wait)

    def retry_after(self, retry_state):
        """The last POST's Retry-After (seconds) when it was throttled."""
        return self._last_wait()

    def posts_spent(self, retry_state):
        """tenacity stop: ``create_max_posts`` POSTs sent (409s apart)."""
        return (self.posts - self.in_flight
                >= self.conf.bdm_guard.create_max_posts)

    def run(self):
        """Look the key up if an attempt may exist, then POST until decided.

        :returns: a :class:`CreateResult`.
        :raises: see :func:`bdm_guard.create.create_volume`.
        """
        if attempts.begin(self.key):
            self.verify = True
        try:
            result = self._run()
        except exception.VolumeCreateNotSent:
            attempts.end(self.key, may_exist=self.uncertain)
            raise
        except (exception.OverQuota, exception.VolumeCreateRejected) as exc:
            attempts.end(self.key, may_exist=bool(
                self.uncertain or exc.kwargs.get('uncertain')))
            raise
        except BaseException:
            attempts.end(self.key, may_exist=bool(self.posts
                                                  or self.uncertain
                                                  or self.verify))
            raise
        attempts.end(self.key, may_exist=True)
        return result

    def _run(self):
        group = self.conf.bdm_guard
        self.deadline = retry.Deadline(self.clock, group.create_timeout)
        self.cinder_key = self.use_cinder_key()
        if self.cinder_key and not self.resume:
            # cinder dedupes a concurrent or earlier create with the key.
            self.verify = False
        if self.verify:
            found = self.find()
            if found is None:
                raise self.lookup_failed('no list answered before any POST')
            if found:
                return self.finish(found, 'adopted', racing=True)
        backoff = tenacity.wait_exponential(
            multiplier=group.post_retry_interval,
            max=group.post_retry_max_interval)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda done: done is None),
            wait=retry.wait_capped(
                retry.wait_retry_after(backoff, self.retry_after),
                self.deadline),
            stop=tenacity.stop_any(self.posts_spent, self.deadline.stop,
                                   self.throttled_past_deadline),
            sleep=self.sleep,
            retry_error_callback=lambda state: None)
        done = retrying(self.post)
        if done is not None:
            return done
        last = self.last
        reason = '%s: %s' % (last.kind, last.message) if last else 'none'
        if self.uncertain:
            raise exception.VolumeCreateUnknown(
                key=self.key, posts=self.posts, lookups=self.lookups,
                reason=reason)
        raise exception.VolumeCreateNotSent(posts=self.posts, reason=reason)
