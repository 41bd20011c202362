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
"""

from oslo_log import log as logging
import tenacity

from bdm_guard import exception
from bdm_guard import idempotency
from bdm_guard import lookup
from bdm_guard import outcome as oc
from bdm_guard import policy
from bdm_guard import reconcile
from bdm_guard import result as result_mod

LOG = logging.getLogger(__name__)

_RETRIABLE = (oc.NOT_SENT, oc.THROTTLED, oc.AUTH)
_UNCERTAIN = (oc.UNKNOWN, oc.SERVER_ERROR)


class Creator:
    """One idempotent create; see :func:`bdm_guard.create.create_volume`.

    :param client: a :class:`bdm_guard.cinder.VolumeClient`.
    :param key: the idempotency key (str, already checked).
    :param body: the ``volume`` object of the POST body (dict).
    :param req_hash: the request's :func:`bdm_guard.reconcile.request_hash`.
    :param size_gb: the requested size in GiB (int).
    :param conf: a ConfigOpts with ``[bdm_guard]`` registered.
    :param sleep: ``sleep(seconds)``.
    :param clock: a monotonic clock in seconds.
    """

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
        self.request_id = idempotency.request_id_for_key(key)
        self.posts = 0
        self.reconciles = 0
        self.uncertain = False
        self.last = None
        self.deadline = None
        self.rng = lookup.rng_for(key)

    def lookup(self):
        """One list by key: volumes (list) or None when the list failed."""
        self.reconciles += 1
        return reconcile.list_by_key(self.client, self.key, self.request_id)

    def look(self, settle_until=None):
        """Lookups until one answers; see :func:`lookup.list_until_answered`.

        :returns: a list of volumes, or None when none answered in time.
        """
        return lookup.list_until_answered(self.lookup, self.deadline,
                                          self.sleep, self.rng, settle_until)

    def lookup_failed(self, reason, **kwargs):
        """The :class:`~bdm_guard.exception.VolumeLookupFailed` to raise."""
        return exception.VolumeLookupFailed(
            key=self.key, posts=self.posts, reconciles=self.reconciles,
            reason=reason, **kwargs)

    def finish(self, volumes, outcome):
        """Adopt the best of ``volumes`` and delete the others.

        :param volumes: volume dicts carrying the key (non-empty).
        :param outcome: ``created`` or ``adopted``.
        :returns: a :class:`bdm_guard.result.CreateResult`.
        :raises bdm_guard.exception.IdempotencyConflict: one of them was
            made by another request. It is left alone; when this call sent
            a POST, the volumes of this request are deleted first (ids in
            ``deleted_volumes`` / ``undeleted_volumes``).
        """
        source = (self.body.get('snapshot_id'), self.body.get('source_volid'))
        mine, conflicts = [], []
        for volume in volumes:
            differs = reconcile.request_differences(
                volume, self.size_gb, self.req_hash, *source)
            (conflicts if differs else mine).append((volume, differs))
        kwargs = self.delete_kwargs()
        if conflicts:
            deleted, undeleted = [], []
            if self.posts:
                # Any volume of this request appeared after a lookup that
                # showed none: this call's POSTs (or a lagging earlier
                # attempt) made it, and nothing will adopt it now.
                deleted, undeleted = reconcile.delete_all(
                    self.client, [v for v, _ in mine], **kwargs)
            volume, differs = conflicts[0]
            raise exception.IdempotencyConflict(
                volume_id=volume['id'], key=self.key,
                fields=', '.join(differs), deleted_volumes=deleted,
                undeleted_volumes=undeleted)
        kept, deleted, undeleted = reconcile.keep_one(
            self.client, [v for v, _ in mine], **kwargs)
        LOG.info('Volume %(id)s %(outcome)s for idempotency key %(key)s '
                 '(%(posts)d POSTs, %(rec)d lookups).',
                 {'id': kept['id'], 'outcome': outcome, 'key': self.key,
                  'posts': self.posts, 'rec': self.reconciles})
        return result_mod.CreateResult(
            volume=kept, outcome=outcome, posts=self.posts,
            reconciles=self.reconciles, deleted_duplicates=deleted,
            undeleted_duplicates=undeleted, created_at=self.clock(),
            key=self.key)

    def delete_kwargs(self):
        """Keyword arguments for :func:`reconcile.delete_duplicate`."""
        return dict(conf=self.conf, sleep=self.sleep, clock=self.clock,
                    request_id=self.request_id, deadline=self.deadline)

    def created(self, volume):
        """After a 2xx: the new volume, reconciled when needed.

        :param volume: the volume dict of the POST's answer.
        :returns: a :class:`bdm_guard.result.CreateResult`; when an earlier
            POST had an unknown outcome, it is reconciled against the
            volumes a list by key shows (see :meth:`finish`).
        :raises bdm_guard.exception.VolumeLookupFailed: no list answered
            before the deadline (carries ``volume_id``).
        :raises bdm_guard.exception.IdempotencyConflict: see :meth:`finish`.
        """
        if not self.uncertain:
            return result_mod.CreateResult(
                volume=volume, outcome='created', posts=self.posts,
                reconciles=self.reconciles, created_at=self.clock(),
                key=self.key)
        found = self.look()
        if found is None:
            raise self.lookup_failed('no list answered after a POST '
                                     'created volume %s' % volume['id'],
                                     volume_id=volume['id'])
        if not any(v['id'] == volume['id'] for v in found):
            found = found + [volume]
        return self.finish(found, 'created')

    def terminal(self, result):
        """Raise the terminal error of ``result`` (413 quota, other 4xx).

        An earlier POST with an unknown outcome may have made the volume:
        list once more and adopt it when it shows.

        :returns: a CreateResult when a volume with the key shows.
        :raises bdm_guard.exception.OverQuota: 413 naming a quota.
        :raises bdm_guard.exception.VolumeCreateRejected: another 4xx.
            Both carry ``key`` and ``uncertain`` (True when an earlier POST
            may have created a volume that no list has shown yet: reconcile
            by ``key`` later).
        """
        if self.uncertain:
            found = self.look()
            if found:
                return self.finish(found, 'adopted')
        kwargs = {'key': self.key, 'uncertain': self.uncertain}
        if result.kind == oc.OVER_QUOTA:
            raise exception.OverQuota(quota=result.quota,
                                      message=result.message, **kwargs)
        raise exception.VolumeCreateRejected(code=result.status_code,
                                             message=result.message, **kwargs)

    def post(self):
        """Send one POST and decide; returns a CreateResult or None."""
        self.posts += 1
        result = self.client.create_volume(self.body,
                                           request_id=self.request_id)
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
            found = self.look(settle_until=settle)
            if found is None:
                raise self.lookup_failed('%s: %s; then no list answered'
                                         % (result.kind, result.message))
            if found:
                return self.finish(found, 'adopted')
            return None
        if result.kind in _RETRIABLE:
            return None
        return self.terminal(result)

    def throttled_past_deadline(self, retry_state):
        """tenacity stop: the last Retry-After reaches past the deadline."""
        last = self.last
        return bool(last and last.kind == oc.THROTTLED
                    and not self.deadline.allows(last.retry_after))

    def run(self):
        """Look the key up, then POST until decided.

        :returns: a :class:`bdm_guard.result.CreateResult`.
        :raises: see :func:`bdm_guard.create.create_volume`.
        """
        group = self.conf.bdm_guard
        self.deadline = lookup.Deadline(self.clock, group.create_timeout)
        found = self.look()
        if found is None:
            raise self.lookup_failed('no list answered before any POST')
        if found:
            return self.finish(found, 'adopted')
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda done: done is None),
            wait=lookup.wait_capped(policy.wait_retry_after(
                tenacity.wait_exponential(
                    multiplier=group.post_retry_interval,
                    max=group.post_retry_max_interval),
                lambda state: self.last.retry_after
                if self.last and self.last.kind == oc.THROTTLED else None),
                self.deadline),
            stop=(tenacity.stop_after_attempt(group.create_max_posts)
                  | self.deadline.stop | self.throttled_past_deadline),
            sleep=self.sleep,
            retry_error_callback=lambda state: None,
            reraise=True)
        done = retrying(self.post)
        if done is not None:
            return done
        last = self.last
        reason = '%s: %s' % (last.kind, last.message) if last else 'none'
        if self.uncertain:
            raise exception.VolumeCreateUnknown(
                key=self.key, posts=self.posts, reconciles=self.reconciles,
                reason=reason)
        raise exception.VolumeCreateNotSent(posts=self.posts, reason=reason)
