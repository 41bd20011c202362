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

"""The steps of one idempotent create (see :mod:`bdm_guard.create`)."""

from oslo_log import log as logging
import tenacity

from bdm_guard import exception
from bdm_guard import idempotency
from bdm_guard import outcome as oc
from bdm_guard import policy
from bdm_guard import reconcile
from bdm_guard import result as result_mod

LOG = logging.getLogger(__name__)

_RETRIABLE = (oc.NOT_SENT, oc.THROTTLED, oc.AUTH)
_UNCERTAIN = (oc.UNKNOWN, oc.SERVER_ERROR)


class Creator:
    """One idempotent create; see :func:`bdm_guard.create.create_volume`."""

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
        return result_mod.CreateResult(
            volume=kept, outcome=outcome, posts=self.posts,
            reconciles=self.reconciles, deleted_duplicates=deleted,
            undeleted_duplicates=undeleted, created_at=self.clock(),
            key=self.key)

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
                                   key=reconcile.oldest_first)
                return self.finish(found, 'created')
            return result_mod.CreateResult(
                volume=volume, outcome='created', posts=self.posts,
                reconciles=self.reconciles, created_at=self.clock(),
                key=self.key)
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
