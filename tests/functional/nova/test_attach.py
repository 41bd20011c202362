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

"""Boot from an image-backed volume with nova 34's own code, real cinder.

Each test runs nova's ``DriverVolImageBlockDevice.attach`` (create, wait,
attachment create/update/complete) with nova's real ``nova.volume.cinder.API``
against real cinder 29 through the lab's fault proxy, twice:

* ``stock``: nova as shipped, waiting with nova's own
  ``ComputeManager._await_block_device_map_created``;
* ``guarded``: the same nova with :func:`bdm_guard.nova.guard.install`, as
  ``bdm-guard-nova-compute`` runs it (the drop-ins behave as the patch
  series in ``patches/nova``).

The volumes each boot leaves are counted through cinder's own API, never
through the proxy: ``attached`` (``in-use``, the boot's) and ``leaked`` (any
other volume the boot left behind). Stock nova leaks or duplicates; guarded
nova leaves exactly the one attached volume.

The only part that is not real is ``BlockDeviceMapping.save`` (nova's
database, reached through nova-conductor in a real cloud), replaced by a
no-op.
"""

import types
import unittest
import uuid

import fixtures
import testtools

from tests.functional import fixtures as lab_fixtures

try:
    from nova.compute import manager
    import nova.conf
    from nova import context as nova_context
    from nova import objects
    from nova import service_auth
    from nova.virt import block_device
    from nova.virt import fake as fake_virt
    from nova.volume import cinder as nova_cinder

    from bdm_guard.nova import guard
except ImportError as exc:
    SKIP = ('nova is not importable (%s): install nova==34.0.0 (the [nova] '
            'extra) to run the nova functional proof' % exc)
else:
    SKIP = None
    objects.register_all()

POST = {'methods': ['POST'], 'path': '^/volumes$'}
LOST_RESPONSE = dict(POST, fault='lost_response', probability=1.0, times=1)
GATEWAY_504 = dict(POST, fault='gateway_504', probability=1.0, times=1,
                   seconds=1.0, forward=True)
LAG = {'fault': 'visibility_lag', 'probability': 1.0, 'seconds': 3}


@unittest.skipIf(SKIP, SKIP)
class TestNovaBootFromVolume(lab_fixtures.LabTestCase):

    def setUp(self):
        super().setUp()
        self.conf = nova.conf.CONF
        # No config files, no arguments; overrides survive a re-parse.
        self.conf([], project='nova', default_config_files=[])
        # nova's wait: 21 GETs, 1 s apart (nova's defaults are 61 x 3 s).
        self.override('block_device_allocate_retries', 20)
        self.override('block_device_allocate_retries_interval', 1)
        self.addCleanup(service_auth.reset_globals)
        # BDM.save goes to nova's database through nova-conductor.
        self.useFixture(fixtures.MockPatchObject(
            objects.BlockDeviceMapping, 'save'))
        self.addCleanup(guard.uninstall)

    def override(self, name, value, group=None):
        """Set one of nova's options for this test only."""
        self.conf.set_override(name, value, group)
        self.addCleanup(self.conf.clear_override, name, group)

    def boot(self, arm, rules):
        """Boot one instance from an image-backed volume with nova's code.

        :returns: ``{'result': 'ok' or the exception's class, 'attached':
            n, 'leaked': n, 'posts': n}``, counted by cinder's API.
        """
        faults = self.useFixture(lab_fixtures.Faults(self.svc, rules))
        self.override('endpoint_template',
                      faults.proxy.base_url + '/v3/%(project_id)s', 'cinder')
        service_auth.reset_globals()
        if arm == 'guarded':
            guard.install()
            for name, value in lab_fixtures.guard_conf()['bdm_guard'].items():
                self.override(name, value, 'bdm_guard')
        else:
            guard.uninstall()
        context = nova_context.RequestContext(
            self.svc.user_id, self.svc.project_id,
            auth_token=self.svc.token())
        instance = objects.Instance(uuid=str(uuid.uuid4()), host='compute',
                                    availability_zone=None,
                                    display_name='bfv')
        bdm = objects.BlockDeviceMapping(
            context, id=1, uuid=str(uuid.uuid4()),
            instance_uuid=instance.uuid, source_type='image',
            destination_type='volume', image_id=self.svc.image_id,
            volume_id=None, snapshot_id=None, volume_size=1,
            delete_on_termination=True, device_name='/dev/vda',
            boot_index=0, guest_format=None, device_type='disk',
            disk_bus='virtio', connection_info=None, attachment_id=None,
            volume_type=None, tag=None, no_device=False)
        volume_api = nova_cinder.API()
        # What nova-compute passes: its manager's bound wait method.
        compute = types.SimpleNamespace(volume_api=volume_api)
        wait_func = types.MethodType(
            manager.ComputeManager._await_block_device_map_created, compute)
        before = {v['id'] for v in self.svc.list_volumes()}
        try:
            block_device.DriverVolImageBlockDevice(bdm).attach(
                context, instance, volume_api,
                fake_virt.FakeDriver(virtapi=None), wait_func=wait_func)
            result = 'ok'
        except Exception as exc:
            result = '%s.%s' % (type(exc).__module__, type(exc).__name__)
        volumes = [v for v in self.svc.wait_settled(timeout=60)
                   if v['id'] not in before]
        attached = [v for v in volumes if v['status'] == 'in-use']
        outcome = {'result': result, 'attached': len(attached),
                   'leaked': len(volumes) - len(attached),
                   'posts': faults.proxy.requests[('POST', '/volumes')]}
        self.addDetail('%s' % arm, testtools.content.text_content(
            repr(outcome)))
        return outcome

    def test_lost_response(self):
        # cinder creates the volume; its answer is lost (connection reset).
        stock = self.boot('stock', [LOST_RESPONSE])
        guarded = self.boot('guarded', [LOST_RESPONSE])

        # keystoneauth resends the POST: a second volume, the first leaks.
        self.assertEqual({'result': 'ok', 'attached': 1, 'leaked': 1,
                          'posts': 2}, stock)
        self.assertEqual({'result': 'ok', 'attached': 1, 'leaked': 0,
                          'posts': 1}, guarded)

    def test_visibility_lag(self):
        # A lagging database: GETs of a volume younger than 3 s answer 404.
        stock = self.boot('stock', [LAG])
        guarded = self.boot('guarded', [LAG])

        # nova's NotFound (a 404) is not VolumeNotCreated: nothing deletes
        # the volume.
        self.assertEqual({'result': 'nova.exception.NotFound', 'attached': 0,
                          'leaked': 1, 'posts': 1}, stock)
        self.assertEqual({'result': 'ok', 'attached': 1, 'leaked': 0,
                          'posts': 1}, guarded)

    def test_lost_response_and_visibility_lag(self):
        stock = self.boot('stock', [LOST_RESPONSE, LAG])
        guarded = self.boot('guarded', [LOST_RESPONSE, LAG])

        self.assertEqual({'result': 'nova.exception.NotFound', 'attached': 0,
                          'leaked': 2, 'posts': 2}, stock)
        self.assertEqual({'result': 'ok', 'attached': 1, 'leaked': 0,
                          'posts': 1}, guarded)

    def test_gateway_timeout(self):
        # haproxy's 504 after cinder got the POST and created the volume.
        stock = self.boot('stock', [GATEWAY_504])
        guarded = self.boot('guarded', [GATEWAY_504])

        # cinderclient's error for the HTML page; the volume leaks.
        self.assertEqual({'result': 'cinderclient.exceptions.ClientException',
                          'attached': 0, 'leaked': 1, 'posts': 1}, stock)
        self.assertEqual({'result': 'ok', 'attached': 1, 'leaked': 0,
                          'posts': 1}, guarded)
