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

"""A simulated cinder-api and volume service, in virtual time, no sockets.

:class:`SimCinder` holds the volumes and counts every request by the virtual
second it reached cinder-api. A volume's status is computed from its own
timeline (``creating`` -> ``downloading`` -> ``available`` or ``error``),
so no event is scheduled per volume. :class:`SimVolumeClient` is one compute
host's view of it with the interface of :class:`bdm_guard.cinder.
VolumeClient`; the faults of :class:`bdm_guard_lab.sim.model.Faults` are
applied there, the way the lab's proxy applies them on the wire.
"""

import collections
import datetime
import uuid

from oslo_log import log as logging

from bdm_guard import cinder
from bdm_guard import outcome as oc
from bdm_guard_lab.sim import model as sim_model

LOG = logging.getLogger(__name__)

#: Statuses cinder 29 deletes a volume in (``cinder/volume/api.py``).
DELETABLE = frozenset(('available', 'error', 'error_restoring',
                       'error_extending', 'error_managing'))
_HAPROXY_503 = ('503 Service Unavailable No server is available to handle '
                'this request.')
#: Virtual time 0 as a wall-clock date, for ``created_at``.
_EPOCH = datetime.datetime(2026, 1, 1)
_RESET = "('Connection aborted.', RemoteDisconnected('Remote end closed " \
         "connection without response'))"


class _Volume:
    __slots__ = ('id', 'owner', 'size', 'image_id', 'metadata', 'created',
                 'downloading_at', 'done_at', 'fails', 'deleted', 'body')

    def status(self, now):
        if now < self.downloading_at:
            return 'creating'
        if now < self.done_at:
            return 'downloading'
        return 'error' if self.fails else 'available'


class SimCinder:
    """The volumes and the request log of one simulated run.

    :param sim: the :class:`bdm_guard_lab.sim.engine.Simulation` (for the
        clock).
    :param workload: a :class:`bdm_guard_lab.sim.model.Workload`.
    :param seed: the run's seed (int); volume ``n`` of boot ``b`` gets the
        same timing in every arm.
    """

    def __init__(self, sim, workload, seed):
        self.sim = sim
        self.workload = workload
        self.seed = seed
        self.volumes = {}
        self._by_meta = collections.defaultdict(set)
        self._made = collections.Counter()      # owner -> volumes created
        self.requests = collections.Counter()   # 'GET volume' ... -> count
        self.rate = collections.Counter()       # virtual second -> count
        self.lost = collections.Counter()       # requests cinder never saw
        self.gets = collections.Counter()       # owner -> volume GETs

    def hit(self, kind):
        """Count one request that reached cinder-api now."""
        self.requests[kind] += 1
        self.rate[int(self.sim.now)] += 1

    def create(self, owner, body):
        """Create a volume for ``owner`` from a POST body; return it."""
        now = self.sim.now
        n = self._made[owner]
        self._made[owner] += 1
        rng = sim_model.stream(self.seed, owner, n, 'volume')
        volume = _Volume()
        volume.id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        volume.owner = owner
        volume.size = int(body.get('size') or 1)
        volume.image_id = body.get('imageRef')
        volume.metadata = dict(body.get('metadata') or {})
        creating, downloading, fails = sim_model.draw_timing(
            self.workload, rng, volume.size, bool(volume.image_id))
        volume.created = now
        volume.downloading_at = now + creating
        volume.done_at = volume.downloading_at + downloading
        volume.fails = fails
        volume.deleted = False
        volume.body = {
            'id': volume.id, 'size': volume.size,
            'name': body.get('name'), 'description': body.get('description'),
            'volume_type': body.get('volume_type') or '__DEFAULT__',
            'availability_zone': body.get('availability_zone') or 'nova',
            'snapshot_id': body.get('snapshot_id'),
            'source_volid': body.get('source_volid'),
            'metadata': volume.metadata, 'attachments': [],
            'bootable': 'true' if volume.image_id else 'false',
            'multiattach': False,
            'created_at': (_EPOCH + datetime.timedelta(
                seconds=now)).isoformat(timespec='microseconds'),
        }
        if volume.image_id:
            volume.body['volume_image_metadata'] = {
                'image_id': volume.image_id}
        self.volumes[volume.id] = volume
        for item in volume.metadata.items():
            self._by_meta[item].add(volume.id)
        return volume

    def view(self, volume):
        """The API's dict for ``volume`` as of now.

        ``updated_at`` is the time of the last status change, in whole
        seconds as a MySQL DATETIME column keeps it (cinder saves the row
        with each status change); ``created_at`` keeps its microseconds.
        """
        body = dict(volume.body)
        now = self.sim.now
        body['status'] = volume.status(now)
        changed = volume.created
        for at in (volume.downloading_at, volume.done_at):
            if at <= now:
                changed = at
        body['updated_at'] = (_EPOCH + datetime.timedelta(
            seconds=int(changed))).isoformat(timespec='microseconds')
        return body

    def delete(self, volume):
        volume.deleted = True
        del self.volumes[volume.id]
        for item in volume.metadata.items():
            self._by_meta[item].discard(volume.id)

    def made(self, owner):
        """How many volumes cinder created for ``owner`` (deleted too)."""
        return self._made[owner]

    def live_by_owner(self):
        """``{owner: [volume ids]}`` of the volumes that exist now."""
        owners = collections.defaultdict(list)
        for volume in self.volumes.values():
            owners[volume.owner].append(volume.id)
        return owners

    def done_at(self, volume_id):
        """Virtual time the volume left its pending statuses, or None."""
        volume = self.volumes.get(volume_id)
        return None if volume is None else volume.done_at

    def client(self, owner, faults):
        """A :class:`SimVolumeClient` for one boot."""
        return SimVolumeClient(self, owner, faults)


class SimVolumeClient:
    """One boot's :class:`bdm_guard.cinder.VolumeClient` on a SimCinder.

    Each call counts one request, applies the faults (drawn from the boot's
    own random streams, so both arms see the same faults on their n-th
    POST and read) and takes ``workload.latency`` seconds of virtual time.

    :param cinder: the :class:`SimCinder`.
    :param owner: the boot's index (int), the sim's own bookkeeping.
    :param faults: a :class:`bdm_guard_lab.sim.model.Faults`.
    """

    def __init__(self, cinder, owner, faults):
        self.cinder = cinder
        self.owner = owner
        self.faults = faults
        self._post_rng = sim_model.stream(cinder.seed, owner, 'post')
        self._read_rng = sim_model.stream(cinder.seed, owner, 'read')
        self.global_request_id = None

    def _answer(self, result, seconds=None):
        self.cinder.sim.sleep(self.cinder.workload.latency
                              if seconds is None else seconds)
        return result

    def _hidden(self, volume):
        faults = self.faults
        return (self.cinder.sim.now < volume.created + faults.lag_s
                and self._read_rng.random() < faults.lag_share)

    def get_volume(self, volume_id, *, timeout=None):
        """``GET /volumes/{id}``, with resets and visibility lag."""
        volume_id = cinder.check_volume_id(volume_id)
        faults = self.faults
        if faults.read_reset and self._read_rng.random() < faults.read_reset:
            self.cinder.lost['GET volume'] += 1
            return self._answer(oc.Outcome(oc.UNKNOWN, message=_RESET))
        self.cinder.hit('GET volume')
        self.cinder.gets[self.owner] += 1
        volume = self.cinder.volumes.get(volume_id)
        if volume is None or self._hidden(volume):
            result = oc.Outcome(oc.NOT_FOUND, status_code=404,
                                message='Volume %s could not be found.'
                                % volume_id)
        else:
            result = oc.Outcome(oc.OK, body=self.cinder.view(volume),
                                status_code=200)
        return self._answer(result)

    def create_volume(self, volume, *, request_id=None, timeout=None):
        """``POST /volumes`` with the lab's POST faults."""
        faults = self.faults
        u = self._post_rng.random()
        if u < faults.lost_request:
            self.cinder.lost['POST'] += 1
            return self._answer(oc.Outcome(oc.UNKNOWN, message=_RESET))
        u -= faults.lost_request
        if u < faults.lost_response:
            self.cinder.hit('POST')
            self.cinder.create(self.owner, volume)
            return self._answer(oc.Outcome(oc.UNKNOWN, message=_RESET))
        u -= faults.lost_response
        if u < faults.gateway_504:
            if faults.gateway_504_forward:
                self.cinder.hit('POST')
                self.cinder.create(self.owner, volume)
            else:
                self.cinder.lost['POST'] += 1
            return self._answer(oc.Outcome(
                oc.UNKNOWN, status_code=504, message='504 Gateway Time-out'),
                max(faults.gateway_504_s, self.cinder.workload.latency))
        u -= faults.gateway_504
        if u < faults.no_server_503:
            self.cinder.lost['POST'] += 1
            return self._answer(oc.Outcome(oc.NOT_SENT, status_code=503,
                                           message=_HAPROXY_503))
        self.cinder.hit('POST')
        new = self.cinder.create(self.owner, volume)
        return self._answer(oc.Outcome(oc.OK, body=self.cinder.view(new),
                                       status_code=202))

    def list_volumes(self, *, metadata=None, request_id=None,
                     timeout=None):
        """``GET /volumes/detail``, filtered by metadata."""
        self.cinder.hit('GET detail')
        pool = self.cinder.volumes
        if metadata:
            sets = [self.cinder._by_meta.get(item, ())
                    for item in metadata.items()]
            ids = set.intersection(*map(set, sets))
        else:
            ids = pool.keys()
        found = [self.cinder.view(pool[i]) for i in sorted(ids)
                 if not self._hidden(pool[i])]
        return self._answer(oc.Outcome(oc.OK, body=found, status_code=200))

    def delete_volume(self, volume_id, *, request_id=None, timeout=None):
        """``DELETE /volumes/{id}``: 400 unless in a deletable status."""
        volume_id = cinder.check_volume_id(volume_id)
        self.cinder.hit('DELETE')
        volume = self.cinder.volumes.get(volume_id)
        if volume is None:
            result = oc.Outcome(oc.NOT_FOUND, status_code=404)
        elif volume.status(self.cinder.sim.now) not in DELETABLE:
            result = oc.Outcome(oc.REJECTED, status_code=400,
                                message='Invalid volume: Volume status must '
                                        'be available or error')
        else:
            self.cinder.delete(volume)
            result = oc.Outcome(oc.OK, status_code=202)
        return self._answer(result)

    def list_messages(self, volume_id, *, timeout=None):
        """``GET /messages?resource_uuid={id}``."""
        volume_id = cinder.check_volume_id(volume_id)
        self.cinder.hit('GET messages')
        volume = self.cinder.volumes.get(volume_id)
        messages = []
        if volume is not None and volume.fails:
            messages.append({
                'event_id': 'VOLUME_VOLUME_001_003',
                'user_message': 'create volume from image: an unknown '
                                'error occurred.',
                'created_at': (_EPOCH + datetime.timedelta(
                    seconds=volume.done_at)).isoformat()})
        return self._answer(oc.Outcome(oc.OK, body=messages,
                                       status_code=200))

    def reauthenticate(self):
        """Nothing to do: the simulated cinder never answers 401."""
        return True
