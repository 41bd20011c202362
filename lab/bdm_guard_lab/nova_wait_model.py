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

"""A line-for-line model of stock nova 34's volume wait, for comparison.

It is what the lab's ``stock`` arm and the waiter-case replays run when nova
itself cannot be imported. It models, from nova 34.0.0:

* ``ComputeManager._await_block_device_map_created``
  (``nova/compute/manager.py``): ``retries + 1`` GETs (one if ``retries``
  < 1), ``interval`` seconds apart; any status other than ``creating`` or
  ``downloading`` ends the loop; anything but ``available`` raises
  ``VolumeNotCreated`` with the bare status.
* ``nova.volume.cinder.API.get``: cinderclient built with
  ``connect_retries=[cinder] http_retries`` (default 3), so keystoneauth
  retries a connection failure after 0.5, 1, 2 s (its default connect
  retry delays); any HTTP error is translated and aborts the wait (404 ->
  ``VolumeNotFound``, others -> ``CinderConnectionFailed``/``CinderAPIError``
  style failures).
"""

from bdm_guard import outcome as oc

#: keystoneauth's default connect retry delays (session.py ``_Retries``:
#: 0.5 s, doubling, capped at 60 s).
KSA_FIRST_DELAY = 0.5
KSA_MAX_DELAY = 60.0


class StockFailure(Exception):
    """What stock nova raises; ``reason`` is a short category.

    :ivar reason: ``timeout``, ``failed_without_reason``,
        ``failed_not_found`` or ``failed_transport``.
    :ivar attempts: GETs nova counted (keystoneauth resends not counted).
    :ivar gets: HTTP GETs sent, resends included.
    :ivar status: last status seen, or None.
    """

    def __init__(self, reason, attempts, gets, status, detail=''):
        super().__init__('%s after %d attempts (%s) %s' % (
            reason, attempts, status, detail))
        self.reason = reason
        self.attempts = attempts
        self.gets = gets
        self.status = status


def ksa_call(call, http_retries, sleep):
    """One cinderclient call with keystoneauth's blind connect retries.

    :param call: zero-argument callable returning an Outcome.
    :param http_retries: nova's ``[cinder] http_retries``.
    :param sleep: ``sleep(seconds)``.
    :returns: ``(outcome, sends)``: the last outcome and how many requests
        were sent (resends included).
    """
    delay = KSA_FIRST_DELAY
    sends = 0
    while True:
        sends += 1
        result = call()
        transport = result.status_code is None and result.kind in (
            oc.NOT_SENT, oc.UNKNOWN)
        if not transport or sends > http_retries:
            return result, sends
        sleep(delay)
        delay = min(delay * 2, KSA_MAX_DELAY)


def await_volume(client, volume_id, *, retries=60, interval=3,
                 http_retries=3, sleep, clock):
    """Stock nova's wait for a new volume, over a bdm-guard VolumeClient.

    :param client: an object with ``get_volume(id) -> Outcome``.
    :param volume_id: the volume UUID.
    :param retries: ``block_device_allocate_retries`` (nova default 60).
    :param interval: ``block_device_allocate_retries_interval`` (seconds,
        nova default 3).
    :param http_retries: ``[cinder] http_retries`` (nova default 3).
    :param sleep: ``sleep(seconds)``.
    :param clock: a clock in seconds.
    :returns: ``(attempts, gets)`` when the volume is available.
    :raises StockFailure: in every case where nova's build would fail.
    """
    attempts = 1 if retries < 1 else retries + 1
    gets = 0
    status = None
    for attempt in range(1, attempts + 1):
        result, sends = ksa_call(lambda: client.get_volume(volume_id),
                                 http_retries, sleep)
        gets += sends
        if result.kind == oc.NOT_FOUND:
            raise StockFailure('failed_not_found', attempt, gets, status)
        if result.kind != oc.OK:
            raise StockFailure('failed_transport', attempt, gets, status,
                               result.kind)
        status = result.body.get('status')
        if status not in ('creating', 'downloading'):
            if status == 'available':
                return attempt, gets
            raise StockFailure('failed_without_reason', attempt, gets,
                               status)
        sleep(interval)
    raise StockFailure('timeout', attempt, gets, status)
