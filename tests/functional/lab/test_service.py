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

"""The lab's cinder keeps both its services up past ``service_down_time``.

Cinder's scheduler and volume service share the lab's cinder process. Each
must heartbeat its own ``services`` row: when the volume service bumped the
scheduler's row instead (cinder keeps the id in a class attribute), its own
row aged past ``service_down_time`` (60 s) and every create from then on
ended in ``error`` with "volume service is down" (NoValidBackend). This runs
the real cinder past that point, then creates a volume.
"""

import time

import requests
import tenacity
import testtools

from bdm_guard_lab.cinder import service as cinder_service

#: cinder's ``service_down_time`` default (seconds), plus one heartbeat
#: (``report_interval``, 10 s) of margin.
PAST_DOWN_TIME = 60 + 10


class TestServicesStayUp(testtools.TestCase):

    def _get(self, svc, path):
        resp = requests.get(svc.endpoint + path, timeout=30, headers={
            'X-Auth-Token': svc.token(), 'Accept': 'application/json'})
        resp.raise_for_status()
        return resp.json()

    def test_create_after_service_down_time(self):
        svc = self.useFixture(cinder_service.CinderService(
            create_seconds=0.5, create_jitter=0.0))
        started = time.monotonic()
        time.sleep(max(0.0, PAST_DOWN_TIME - (time.monotonic() - started)))
        services = self._get(svc, '/os-services')['services']
        states = {s['binary']: s['state'] for s in services}
        self.assertEqual({'cinder-scheduler': 'up', 'cinder-volume': 'up'},
                         {k: v for k, v in states.items()
                          if k in ('cinder-scheduler', 'cinder-volume')},
                         services)
        resp = requests.post(svc.endpoint + '/volumes', timeout=30, json={
            'volume': {'size': 1, 'name': 'past-down-time'}}, headers={
            'X-Auth-Token': svc.token(), 'Accept': 'application/json'})
        self.assertEqual(202, resp.status_code, resp.text)
        volume_id = resp.json()['volume']['id']
        status = tenacity.Retrying(
            retry=tenacity.retry_if_result(
                lambda s: s in ('creating', 'downloading')),
            wait=tenacity.wait_fixed(0.5),
            stop=tenacity.stop_after_delay(60),
            retry_error_callback=lambda state: state.outcome.result())(
                lambda: self._get(svc, '/volumes/%s' % volume_id)
                ['volume']['status'])
        self.assertGreater(time.monotonic() - started, 60)
        self.assertEqual('available', status)
