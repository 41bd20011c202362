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

"""Servers booted through real nova 34 on real cinder 29, one fault each.

Each class starts one cinder (:class:`bdm_guard_lab.cinder.service.
CinderService`), one fault proxy in front of it and one nova
(:class:`bdm_guard_lab.nova.service.NovaService`: nova's API, conductor,
scheduler and a compute, with real HTTP to cinder through the proxy). Each
test gives the proxy its own rules, boots one server from the image onto a
new volume through nova's API (``POST /servers``, block_device_mapping_v2
``source_type=image, destination_type=volume,
delete_on_termination=true``), then deletes it. It asserts from nova's API
the server's state (and fault) and from cinder's API that no volume was
duplicated, none outlived the boot but the server's, and none is left once
the server is deleted.

``TestLauncher`` runs nova with bdm-guard installed as
``bdm-guard-nova-compute`` installs it; ``TestEvents`` the same with
cinder's notifications on a real RabbitMQ (``[bdm_guard_events]``);
``TestStock`` runs nova as shipped and shows that the same faults do hit
it. ``TestRouteB`` runs the demo's ``route-b`` arm's nova and cinder (route
B's series on both, :func:`bdm_guard_lab.arms.guard.route_b`): the wait
wakes on cinder's ``volume-created`` event.
"""

import contextlib
import time

import testtools

from bdm_guard_lab.arms import guard
from bdm_guard_lab.arms import nova_mode
from bdm_guard_lab import broker
from bdm_guard_lab.cinder import service as cinder_service
from bdm_guard_lab.faults import proxy as lab_proxy
from bdm_guard_lab.faults import scenario as lab_scenario
from bdm_guard_lab.nova import service as nova_service

POST = {'methods': ['POST'], 'path': '^/volumes$'}
#: The backend's capacity (GiB): a larger volume fails in cinder's
#: scheduler with a user message, as on a full backend.
CAPACITY_GB = 4
#: cinder's user message for that failure (GET /messages).
NO_BACKEND = 'Could not find any available weighted backend'


class _RealNova(testtools.TestCase):
    """One cinder, one proxy and one nova of ``MODE`` per class."""

    MODE = None
    #: nova-compute services of the class's nova.
    COMPUTES = 1
    #: The class's cinder backend capacity (GiB).
    CAPACITY_GB = CAPACITY_GB

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rabbit = cls.proxy = cls.nova = None
        events_url = None
        if cls.MODE == 'events':
            cls.rabbit = broker.RabbitMQ()
            cls.rabbit.setUp()
            events_url = cls.rabbit.url
        cls.svc = cinder_service.CinderService(
            create_seconds=0.5, download_seconds_per_gib=1.0,
            create_jitter=0.0, service_requests=True,
            capacity_gb=cls.CAPACITY_GB, notification_url=events_url)
        try:
            cls.svc.setUp()
            cls.proxy = lab_proxy.FaultProxy(
                cls.svc.base_url, _scenario([], 0),
                project_id=cls.svc.project_id)
            cls.proxy.setUp()
            cls.nova = nova_service.NovaService(
                '%s/v3/%%(project_id)s' % cls.proxy.base_url,
                cls.svc.project_id, mode=cls.MODE, computes=cls.COMPUTES,
                events_url=events_url)
            cls.nova.setUp()
        except Exception:
            cls._stop()
            raise

    @classmethod
    def _stop(cls):
        for fixture in (cls.nova, cls.proxy, cls.svc, cls.rabbit):
            if fixture is not None:
                fixture.cleanUp()

    @classmethod
    def tearDownClass(cls):
        cls._stop()
        super().tearDownClass()

    def boot(self, rules, *, seed, size_gb=1, servers=1):
        """Boot under ``rules``, then delete; return the figures.

        :returns: ``(figures, records)``: :func:`bdm_guard_lab.arms.
            nova_mode.summarize` and the servers as nova reported them.
        """
        self.proxy.scenario = _scenario(rules, seed)
        self.proxy.reset_counters()
        self.assertEqual([], self.svc.list_volumes(),
                         'a previous test left volumes')
        records = self.nova.boot(servers, seed, size_gb,
                                 settle_timeout=240)
        found = self.svc.wait_settled(timeout=120)
        deleted = self.nova.delete_all(timeout=120)
        left = self.svc.wait_settled(timeout=120)
        self.assertEqual([], deleted['remaining'])
        figures = nova_mode.summarize(records, found, left, self.proxy,
                                      project_id=self.svc.project_id,
                                      wall_s=0.0)
        self.addDetail('figures', testtools.content.json_content(figures))
        return figures, records

    def boot_lost_response(self):
        """Boot once with the create's answer lost once; return the figures.

        Every mode runs this same boot (seed 102), each with its own
        assertions: the launcher adopts the volume, stock nova duplicates it.
        """
        figures, records = self.boot(
            [dict(POST, fault='lost_response', probability=1.0, times=1)],
            seed=102)
        self.assertEqual(1, self.proxy.injected['lost_response'])
        return figures, records

    def assertClean(self, figures, volumes=1):
        """No duplicate, no leak, nothing left after the delete."""
        self.assertEqual(0, figures['duplicates'], figures)
        self.assertEqual(0, figures['leaked'], figures)
        self.assertEqual(0, figures['left_after_delete'], figures)
        self.assertEqual(volumes, figures['volumes'], figures)

    def assertActive(self, figures, records):
        self.assertEqual(['ACTIVE'] * len(records),
                         [r['status'] for r in records], records)
        for record in records:
            self.assertEqual(1, len(record['volumes']), record)
        self.assertEqual(len(records), figures['active'])


def _scenario(rules, seed):
    return lab_scenario.parse({'name': 'functional', 'seed': seed,
                               'rules': rules}, 'functional')


class TestLauncher(_RealNova):
    """nova 34 with bdm-guard installed as its launcher installs it."""

    MODE = 'launcher'

    def test_ready_reports_the_guard(self):
        self.assertEqual('launcher', self.nova.ready['guard'])
        self.assertEqual(2, len(self.nova.ready['replaced']))

    def test_lost_request(self):
        figures, records = self.boot(
            [dict(POST, fault='lost_request', probability=1.0, times=1)],
            seed=101)
        self.assertEqual(1, self.proxy.injected['lost_request'])
        self.assertEqual(2, self.proxy.requests[('POST', '/volumes')])
        self.assertActive(figures, records)
        self.assertClean(figures)

    def test_lost_response(self):
        figures, records = self.boot_lost_response()
        self.assertActive(figures, records)
        self.assertClean(figures)

    def test_gateway_504_after_create(self):
        figures, records = self.boot(
            [dict(POST, fault='gateway_504', probability=1.0, times=1,
                  seconds=1.0, forward=True)], seed=103)
        self.assertEqual(1, self.proxy.injected['gateway_504'])
        self.assertActive(figures, records)
        self.assertClean(figures)

    def test_read_after_write_lag(self):
        # Longer than the drop-in wait's first look (completion_first_look
        # after the create, now that the wait knows the create time), so
        # that the wait meets the lag's 404s.
        figures, records = self.boot(
            [{'fault': 'visibility_lag', 'probability': 1.0,
              'seconds': 6}], seed=104)
        self.assertGreater(self.proxy.injected['visibility_lag'], 0)
        self.assertActive(figures, records)
        self.assertClean(figures)

    def test_error_status_carries_cinders_reason(self):
        figures, records = self.boot([], seed=105,
                                     size_gb=CAPACITY_GB + 1)
        self.assertEqual(['ERROR'], [r['status'] for r in records])
        fault = '%s\n%s' % (records[0]['fault_message'],
                            records[0]['fault_details'])
        self.assertIn(NO_BACKEND, fault)
        self.assertIn('VolumeNotCreated', fault)
        # The volume in error is deleted with the failed boot.
        self.assertClean(figures, volumes=0)


@testtools.skipUnless(broker.installed(), 'rabbitmq-server not installed')
class TestEvents(_RealNova):
    """The launcher with cinder's notifications on a real RabbitMQ."""

    MODE = 'events'

    def test_lost_response_two_gets(self):
        # The first create of the process starts its listener; the boots
        # after it find the listener healthy.
        self.boot([], seed=106)
        figures, records = self.boot_lost_response()
        self.assertActive(figures, records)
        self.assertClean(figures)
        # One GET when cinder's volume.create.end woke the wait (none at
        # once: the watch was taken before the POST), one by nova's attach.
        self.assertEqual(2.0, figures['gets_per_ok_boot'], figures)


class TestStock(_RealNova):
    """nova 34 as shipped, under the same faults: they do hit it."""

    MODE = 'stock'
    COMPUTES = 2
    #: Room for test_builds_are_not_queued_behind_one_computes_pool.
    CAPACITY_GB = 128

    def test_a_burst_goes_round_the_computes(self):
        # Booted at once, the servers would all see the computes equally
        # loaded and nova's scheduler would send them to the first one; the
        # lab asks for each server's compute, in turn, so that none queues
        # builds behind max_concurrent_builds and every arm puts server n
        # on the same compute.
        figures, records = self.boot([], seed=108, servers=4)
        self.assertActive(figures, records)
        self.assertEqual(['lab-compute-0', 'lab-compute-1'] * 2,
                         [r['host'] for r in records])
        self.assertClean(figures, volumes=4)

    def test_builds_are_not_queued_behind_one_computes_pool(self):
        # nova 34 runs a process's builds on one pool of
        # max_concurrent_builds (10) threads, and the lab's computes share
        # one process: without the lab's larger pool, the 11th and 12th
        # builds would wait for a build to end, so at most 10 volumes would
        # be between their create and their attachment at any one time.
        # Two computes' processes would run all 12 at once.
        servers = 12
        figures, records = self.boot([], seed=109, size_gb=8,
                                     servers=servers)
        self.assertActive(figures, records)
        self.assertClean(figures, volumes=servers)
        epoch = time.time() - time.monotonic()
        events = sorted(
            [(epoch + when, 1) for when in self.proxy.created.values()] +
            [(when, -1) for when in self.proxy.attached_at.values()])
        in_flight, most = 0, 0
        for _, step in events:
            in_flight += step
            most = max(most, in_flight)
        self.assertGreater(most, 10, events)

    def test_lost_response_duplicates(self):
        figures, records = self.boot_lost_response()
        self.assertActive(figures, records)
        # keystoneauth resent the POST whose answer was lost: cinder made a
        # second volume, which nothing owns and nothing deletes.
        self.assertEqual(2, figures['volumes'])
        self.assertEqual(1, figures['duplicates'])
        self.assertEqual(1, figures['leaked'])
        self.assertEqual(1, figures['left_after_delete'])
        self._forget_leftovers()

    def test_read_after_write_lag_fails_the_boot(self):
        figures, records = self.boot(
            [{'fault': 'visibility_lag', 'probability': 1.0,
              'seconds': 2}], seed=104)
        self.assertEqual(['ERROR'], [r['status'] for r in records])
        # nova's own create reads volume_image_metadata from the POST's
        # answer; python-cinderclient lazily GETs the volume for it, the
        # lagging read answers 404 and the build is aborted.
        self.assertIn('could not be found', records[0]['fault_message'])
        self.assertIn('_untranslate_volume_summary_view',
                      records[0]['fault_details'])
        # nova forgets the volume it created: it outlives the server.
        self.assertEqual(1, figures['leaked'])
        self.assertEqual(1, figures['left_after_delete'])
        self._forget_leftovers()

    def _forget_leftovers(self):
        """Delete what stock nova left, so the next test starts clean."""
        session = self.svc.session()
        for volume in self.svc.list_volumes():
            session.delete('%s/volumes/%s' % (self.svc.endpoint,
                                              volume['id']))
        remaining = self.svc.wait_settled(timeout=60)
        self.assertEqual([], remaining)


class TestRouteB(_RealNova):
    """Route B: nova and cinder both patched, nova waits on the event."""

    MODE = 'route-b'

    @classmethod
    def setUpClass(cls):
        super(_RealNova, cls).setUpClass()
        cls.rabbit = cls.proxy = cls.nova = cls.svc = None
        cls.stack = contextlib.ExitStack()
        try:
            run = guard.start('route-b', guard.NOVA, cls.stack)
            cls.svc = cinder_service.CinderService(
                create_seconds=0.5, download_seconds_per_gib=1.0,
                create_jitter=0.0, service_requests=True,
                capacity_gb=CAPACITY_GB, **run.cinder)
            cls.svc.setUp()
            cls.proxy = lab_proxy.FaultProxy(
                cls.svc.base_url, _scenario([], 0),
                project_id=cls.svc.project_id)
            cls.proxy.setUp()
            cls.nova = nova_service.NovaService(
                '%s/v3/%%(project_id)s' % cls.proxy.base_url,
                cls.svc.project_id, mode=cls.MODE, computes=1, **run.nova)
            cls.nova.setUp()
        except Exception:
            cls._stop()
            raise

    @classmethod
    def _stop(cls):
        super()._stop()
        cls.stack.close()

    def test_the_event_wakes_the_wait(self):
        _, start = guard.count_events(self.nova.log_file)
        figures, records = self.boot([], seed=107)
        self.assertActive(figures, records)
        self.assertClean(figures)
        # nova-api accepted one volume-created event for the volume.
        events, _ = guard.count_events(self.nova.log_file, start)
        self.assertEqual(1, events)
        # One GET right after the create (the event is prepared once the
        # POST named the volume), one after the event, one by the attach.
        self.assertEqual(3.0, figures['gets_per_ok_boot'], figures)
