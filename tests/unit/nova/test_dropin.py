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

"""The nova drop-ins, with the installed nova's real code (34 by default, 29
to 34 under ``tox -e nova-compat``) over a fake cinder on HTTP."""

import json
import os
import time
import unittest
from unittest import mock

import fixtures
from oslo_config import fixture as config_fixture
from oslotest import base

from bdm_guard import create
from bdm_guard.internal.events import watch as watch_mod
from bdm_guard import testing
from tests.unit import fake_cinder

try:
    import nova.conf
    from nova import context as nova_context
    from nova import exception as nova_exception
    from nova import objects
    from nova import service_auth
    from nova.virt import block_device
    from nova.volume import cinder as nova_cinder

    from bdm_guard.nova import dropin
    from bdm_guard.nova import guard
except ImportError as exc:
    SKIP = ('nova is not importable (%s): install nova==34.0.0 (the [nova] '
            'extra) to run the nova integration tests' % exc)
else:
    SKIP = None
    objects.register_all()

INSTANCE = '7b5e0d3c-2a4f-4e8b-9c1d-0e2f4a6b8c0d'
BDM = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d'
IMAGE = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9'
ATTACHMENT = 'f0e1d2c3-b4a5-4697-8879-6a5b4c3d2e1f'
REASON = ('schedule allocate volume: Could not find any available weighed '
          'backend.')


class NovaTestCase(base.BaseTestCase):
    """nova's CONF pointed at the fake cinder, on a virtual clock."""

    def setUp(self):
        super().setUp()
        testing.forget_attempts()
        self.addCleanup(testing.forget_attempts)
        dropin.nova_client.nova_conf()
        nova.conf.CONF([], project='nova', default_config_files=[])
        self.conf = self.useFixture(config_fixture.Config(nova.conf.CONF))
        self.conf.config(endpoint_template=fake_cinder.ENDPOINT.replace(
            fake_cinder.PROJECT, '%(project_id)s'), group='cinder')
        service_auth.reset_globals()
        self.addCleanup(service_auth.reset_globals)
        if guard.release().cinder_session == guard.CINDER_MODULE_SESSION:
            # nova 29-32 cache their cinder session in the module.
            self.useFixture(fixtures.MonkeyPatch(
                'nova.volume.cinder._SESSION', None))
        self.context = nova_context.RequestContext(
            'user', fake_cinder.PROJECT,
            auth_token='user:%s' % fake_cinder.PROJECT)
        self.clock = testing.VirtualClock()

    def fake(self, **kwargs):
        fake = fake_cinder.FakeCinder(self.clock, **kwargs)
        fake_cinder.make_client(self, fake)
        return fake


@unittest.skipIf(SKIP, SKIP)
class TestAwait(NovaTestCase):

    def wait(self, volume_id):
        return dropin.await_block_device_map_created(
            mock.sentinel.manager, self.context, volume_id,
            sleep=self.clock.sleep, clock=self.clock)

    def test_available(self):
        fake = self.fake(ready_after=5.0)
        vid = fake.add_volume()

        polls = self.wait(vid)

        self.assertLess(polls, 10)
        # Seen within one ramp step of 5 s: the step there is 2.53 s, and
        # the jitter lengthens a ramping step by up to 10% (poll_jitter).
        self.assertLessEqual(self.clock.now, 5.0 + 2.53 * 1.1)
        gets = [r for r in fake.requests if r[1] == 'GET']
        self.assertEqual(polls, len(gets))

    def test_error_with_cinder_reason(self):
        fake = self.fake()
        vid = fake.add_volume(timeline=[(0.0, 'creating'), (2.0, 'error')])
        fake.messages.append({'resource_uuid': vid, 'user_message': REASON,
                              'event_id': 'VOLUME_000001',
                              'created_at': '2026-01-01T00:00:02.000000'})

        exc = self.assertRaises(nova_exception.VolumeNotCreated, self.wait,
                                vid)

        self.assertEqual('error', exc.kwargs['volume_status'])
        self.assertIn('Reason: %s' % REASON, str(exc))
        self.assertLess(self.clock.now, 5.0)

    def test_nova_budget(self):
        self.conf.config(block_device_allocate_retries=100,
                         block_device_allocate_retries_interval=3)
        fake = self.fake()
        vid = fake.add_volume(timeline=[(0.0, 'downloading')])

        exc = self.assertRaises(nova_exception.VolumeNotCreated, self.wait,
                                vid)

        self.assertEqual(303, exc.kwargs['seconds'])
        self.assertEqual('downloading', exc.kwargs['volume_status'])
        self.assertLess(exc.kwargs['attempts'], 50)

    def test_not_found_while_the_row_is_not_visible(self):
        fake = self.fake(visible_after=4.0, ready_after=6.0)
        vid = fake.add_volume()

        self.wait(vid)

        self.assertLess(self.clock.now, 8.0)

    def test_sleeps_as_the_release_does(self):
        # No sleep passed, as nova calls it: the drop-in sleeps with the
        # function the release's own wait loop uses, looked up at call time
        # (so eventlet's monkey patching, applied at start, is honoured).
        row = guard.release()
        self.useFixture(fixtures.MonkeyPatch(row.wait_sleep,
                                             self.clock.sleep))
        fake = self.fake(ready_after=5.0)
        vid = fake.add_volume()

        dropin.await_block_device_map_created(
            mock.sentinel.manager, self.context, vid, clock=self.clock)

        self.assertGreaterEqual(self.clock.now, 5.0)
        self.assertTrue(self.clock.sleeps)

    def test_never_found(self):
        self.fake()

        exc = self.assertRaises(nova_exception.VolumeNotCreated, self.wait,
                                IMAGE)

        self.assertIn('404', str(exc))
        self.assertLess(exc.kwargs['seconds'], 60)


@unittest.skipIf(SKIP, SKIP)
class TestCreateVolumeForBdm(NovaTestCase):

    def setUp(self):
        super().setUp()
        self.volume_api = mock.create_autospec(nova_cinder.API,
                                               instance=True)
        self.volume_api.attachment_create.return_value = {'id': ATTACHMENT}
        self.instance = objects.Instance(uuid=INSTANCE,
                                         availability_zone=None)

    def driver_bdm(self, delete_on_termination=True, uuid=BDM):
        fields = dict(
            id=1, instance_uuid=INSTANCE, source_type='image',
            destination_type='volume', image_id=IMAGE, volume_id=None,
            snapshot_id=None, volume_size=1,
            delete_on_termination=delete_on_termination,
            device_name='/dev/vda', boot_index=0, guest_format=None,
            device_type='disk', disk_bus='virtio', connection_info=None,
            attachment_id=None, volume_type=None, tag=None, no_device=False)
        if uuid:
            fields['uuid'] = uuid
        bdm = objects.BlockDeviceMapping(self.context, **fields)
        return block_device.DriverVolImageBlockDevice(bdm)

    def create(self, driver_bdm, wait_func=None, **kwargs):
        kwargs.setdefault('image_id', IMAGE)
        return dropin.create_volume_for_bdm(
            driver_bdm, self.context, self.instance, self.volume_api, 1,
            wait_func, sleep=self.clock.sleep, clock=self.clock, **kwargs)

    def test_create(self):
        fake = self.fake()

        vid, attachment = self.create(self.driver_bdm())

        self.assertEqual(ATTACHMENT, attachment)
        self.assertEqual([vid], list(fake.volumes))
        key = create.key_for_bdm(INSTANCE, BDM)
        self.assertEqual(key, fake.volumes[vid]['metadata'][
            create.IDEMPOTENCY_METADATA_KEY])
        self.volume_api.attachment_create.assert_called_once_with(
            self.context, vid, INSTANCE)

    def test_lost_response_makes_one_volume(self):
        fake = self.fake(posts=['lost_response', 'ok'])

        vid, _ = self.create(self.driver_bdm())

        self.assertEqual(1, fake.post_count)
        self.assertEqual([vid], list(fake.volumes))

    def test_a_boot_sends_one_post_and_no_lookup(self):
        # nova aborts a failed build and never resumes it, so no earlier
        # attempt can exist: the first POST goes out without a lookup.
        fake = self.fake()

        vid, _ = self.create(self.driver_bdm())

        self.assertEqual(1, fake.post_count)
        self.assertEqual([('POST', '/volumes')],
                         [(m, p.split('/v3/%s' % fake_cinder.PROJECT)[-1])
                          for _, m, p in fake.requests
                          if m != 'GET' or 'detail' in p])

    def test_any_wait_failure_deletes(self):
        fake = self.fake(ready_after=0)
        wait_func = mock.Mock(side_effect=nova_exception.VolumeNotFound(
            volume_id='x'))

        self.assertRaises(nova_exception.VolumeNotFound, self.create,
                          self.driver_bdm(), wait_func)

        self.assertEqual(1, fake.post_count)
        self.assertEqual([], list(fake.volumes))
        self.assertEqual(1, len(fake.deleted))
        self.volume_api.attachment_create.assert_not_called()

    def test_volume_cinder_cannot_delete_yet_is_handed_back(self):
        # Still "creating": cinder answers the DELETE 400; nothing waits
        # for it to settle, the build fails at once with nova's error.
        fake = self.fake(ready_after=10 ** 6)
        wait_func = mock.Mock(side_effect=nova_exception.VolumeNotFound(
            volume_id='x'))

        self.assertRaises(nova_exception.VolumeNotFound, self.create,
                          self.driver_bdm(), wait_func)

        self.assertEqual([], fake.deleted)
        self.assertEqual(1, len(fake.volumes))
        self.assertEqual(1, len([r for r in fake.requests
                                 if r[1] == 'DELETE']))

    def test_wait_failure_keeps_volume_without_delete_on_termination(self):
        fake = self.fake()
        wait_func = mock.Mock(
            side_effect=nova_exception.CinderConnectionFailed(reason='reset'))

        self.assertRaises(nova_exception.CinderConnectionFailed, self.create,
                          self.driver_bdm(delete_on_termination=False),
                          wait_func)

        self.assertEqual([], fake.deleted)
        self.assertEqual(1, len(fake.volumes))

    def test_over_quota(self):
        fake = self.fake(posts=['over_quota'])

        self.assertRaises(nova_exception.OverQuota, self.create,
                          self.driver_bdm())

        self.assertEqual({}, fake.volumes)

    def test_unknown_outcome(self):
        self.conf.config(create_max_posts=2, group='bdm_guard')
        fake = self.fake(posts=['gateway_504'], visible_after=1e9)

        exc = self.assertRaises(nova_exception.CinderConnectionFailed,
                                self.create, self.driver_bdm())

        self.assertIn('still unknown', str(exc))
        self.assertEqual(2, fake.post_count)

    def test_second_create_for_one_mapping_adopts_the_late_volume(self):
        # The first create's outcome stayed unknown and
        # its volume showed later; a second create for the same mapping in
        # this process (no resume, as nova calls it) adopts it.
        self.conf.config(create_max_posts=1, group='bdm_guard')
        fake = self.fake(posts=['gateway_504', 'ok'], visible_after=1e9)
        self.assertRaises(nova_exception.CinderConnectionFailed,
                          self.create, self.driver_bdm())
        fake.visible_after = 0

        vid, _ = self.create(self.driver_bdm())

        self.assertEqual(1, fake.post_count)
        self.assertEqual([vid], list(fake.volumes))

    def test_drop_in_wait_gets_the_size_and_create_time(self):
        # nova gives its wait function the volume id only; the drop-in
        # wait takes the size and create time from our create path, so the
        # schedule predicts the copy from the first look on and the first
        # GET waits completion_first_look instead of going out at once.
        fake = self.fake(ready_after=9.0)
        seen = []
        real = dropin.wait.wait_for_volume

        def spy(*args, **kwargs):
            seen.append((kwargs['budget'].size_gb, kwargs['created_at']))
            return real(*args, **kwargs)
        self.useFixture(fixtures.MonkeyPatch(
            'bdm_guard.nova.dropin.wait.wait_for_volume', spy))

        def wait_func(context, volume_id):
            return dropin.await_block_device_map_created(
                mock.sentinel.manager, context, volume_id,
                sleep=self.clock.sleep, clock=self.clock)

        vid, _ = self.create(self.driver_bdm(), wait_func=wait_func)

        ((size_gb, created_at),) = seen
        self.assertEqual(1, size_gb)
        self.assertIsNotNone(created_at)
        gets = [t for t, m, p in fake.requests
                if m == 'GET' and p.endswith(vid)]
        self.assertGreaterEqual(gets[0] - created_at, 2.0)
        self.assertEqual((None, None), dropin._CREATED.take(vid, self.clock))

    def test_drop_in_wait_of_another_clock_gets_no_create_time(self):
        known = dropin._Created(keep=2)
        known.remember('a', 2, 5.0, self.clock)
        known.remember('b', 3, 6.0, self.clock)
        known.remember('c', 4, 7.0, self.clock)

        self.assertEqual((None, None), known.take('a', self.clock))
        self.assertEqual((3, None), known.take('b', time.monotonic))
        self.assertEqual((4, 7.0), known.take('c', self.clock))

    def test_unexpected_argument(self):
        self.fake()

        self.assertRaises(TypeError, self.create, self.driver_bdm(),
                          source_volid=IMAGE)

    def test_bdm_without_uuid_creates_as_nova_does(self):
        self.volume_api.create.return_value = {'id': IMAGE}

        vid, _ = self.create(self.driver_bdm(uuid=None))

        self.assertEqual(IMAGE, vid)
        self.volume_api.create.assert_called_once_with(
            self.context, 1, '', '', volume_type=None,
            availability_zone=None, image_id=IMAGE)


class EventSource:
    """The two calls the drop-ins make on an event source, virtually.

    cinder's ``volume.create.end`` comes ``delay`` seconds after the
    volume is ``available``, on the test's virtual clock.
    """

    def __init__(self, clock, ready_after, delay=0.01):
        self.clock = clock
        self.at = ready_after + delay
        self.registry = watch_mod.Registry(health=lambda: (True, 0),
                                           clock=clock)
        self.watches = []

    def _wait(self, news, seconds):
        end = self.clock() + seconds
        bound = [w for w in self.watches if w.volume_id]
        if bound and self.at is not None and self.at <= end:
            self.clock.now = max(self.clock.now, self.at)
            self.at = None
            for watch in bound:
                self.registry.dispatch(watch_mod.Event(
                    watch_mod.ENDED, watch.volume_id, fake_cinder.PROJECT,
                    self.clock()))
            return news.is_set()
        self.clock.sleep(max(0.0, end - self.clock()))
        return news.is_set()

    def expect(self, project_id):
        watch = watch_mod.Watch(self.registry, project_id, 60.0,
                                lambda n: 0.5 * 1.5 ** n, wait=self._wait)
        self.watches.append(watch)
        return self.registry.add(watch)

    def find(self, volume_id):
        group = self.registry.watches.get(volume_id)
        return next(iter(group)) if group else None


@unittest.skipIf(SKIP, SKIP)
class TestWithEvents(TestCreateVolumeForBdm):
    """nova's create and wait, the drop-ins, woken by cinder's events."""

    def test_one_get_per_boot(self):
        # The create path takes the watch before its POST; nova's wait
        # function, given only the volume id, finds it and does not look
        # at once: the event wakes one GET, the one that sees
        # "available".
        fake = self.fake(ready_after=9.0)
        source = EventSource(self.clock, 9.0)
        self.useFixture(fixtures.MonkeyPatch(
            'bdm_guard.nova.dropin.events.get_source',
            lambda conf=None: source))

        def wait_func(context, volume_id):
            return dropin.await_block_device_map_created(
                mock.sentinel.manager, context, volume_id,
                sleep=self.clock.sleep, clock=self.clock)

        vid, _ = self.create(self.driver_bdm(), wait_func=wait_func)

        self.assertEqual([('POST', '/volumes'), ('GET', '/volumes/' + vid)],
                         [(m, p.split('/v3/%s' % fake_cinder.PROJECT)[-1])
                          for _, m, p in fake.requests])
        self.assertAlmostEqual(9.01, self.clock.now, places=2)
        self.assertEqual({}, source.registry.watches)


@unittest.skipIf(SKIP, SKIP)
class TestMetricsThroughTheDropIn(NovaTestCase):
    """[bdm_guard_metrics] set: the drop-in counts its waits and creates."""

    def setUp(self):
        super().setUp()
        from bdm_guard import metrics
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.textfile = os.path.join(self.tmp, 'bdm_guard.prom')
        self.conf.config(textfile=self.textfile, write_interval=0,
                         group='bdm_guard_metrics')
        metrics.reset()
        self.addCleanup(metrics.reset)
        self.volume_api = mock.create_autospec(nova_cinder.API,
                                               instance=True)
        self.volume_api.attachment_create.return_value = {'id': ATTACHMENT}
        self.instance = objects.Instance(uuid=INSTANCE,
                                         availability_zone=None)

    def state(self):
        with open(os.path.join(self.tmp, 'bdm_guard.state.json')) as f:
            return json.load(f)

    def wait(self, context, volume_id):
        return dropin.await_block_device_map_created(
            mock.sentinel.manager, context, volume_id,
            sleep=self.clock.sleep, clock=self.clock)

    def test_wait_and_create_are_recorded(self):
        fake = self.fake(posts=['lost_response', 'ok'])
        driver_bdm = TestCreateVolumeForBdm.driver_bdm(self)

        vid, _ = dropin.create_volume_for_bdm(
            driver_bdm, self.context, self.instance, self.volume_api, 1,
            self.wait, sleep=self.clock.sleep, clock=self.clock,
            image_id=IMAGE)

        self.assertEqual([vid], list(fake.volumes))
        state = self.state()
        self.assertEqual(['available'], [w['outcome']
                                         for w in state['waits']])
        self.assertEqual(['adopted'], [c['outcome']
                                       for c in state['creates']])
        self.assertEqual('launcher', state['mode'])
        with open(self.textfile) as f:
            text = f.read()
        self.assertIn('bdm_guard_waits_total{outcome="available"} 1.0', text)
        self.assertIn('bdm_guard_lost_posts_found_total 1.0', text)

    def test_failed_wait_is_recorded(self):
        fake = self.fake()
        vid = fake.add_volume(timeline=[(0.0, 'creating'), (2.0, 'error')])
        self.assertRaises(nova_exception.VolumeNotCreated, self.wait,
                          self.context, vid)
        self.assertEqual(['VolumeCreateFailed'],
                         [w['outcome'] for w in self.state()['waits']])

    def test_off_writes_nothing(self):
        self.conf.config(textfile=None, group='bdm_guard_metrics')
        fake = self.fake(ready_after=1.0)
        self.wait(self.context, fake.add_volume())
        self.assertEqual([], os.listdir(self.tmp))
