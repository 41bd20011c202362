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

"""The ``stock`` arm of the library mode: nova 34's own create and wait.

One boot is what ``DriverVolImageBlockDevice._create_volume`` does in nova
34 (``nova/virt/block_device.py``):

1. ``nova.volume.cinder.API().create(...)`` -- nova's real code, which
   builds python-cinderclient over a keystoneauth session with
   ``connect_retries=[cinder] http_retries`` (default 3: keystoneauth
   resends a POST whose connection failed, blindly);
2. ``ComputeManager._await_block_device_map_created`` -- nova's real code,
   called unbound on a minimal object that provides ``volume_api``;
3. as ``_call_wait_func``: on ``VolumeNotCreated`` only, delete the volume
   (when ``delete_on_termination``); on any other error the volume is
   forgotten, as nova forgets it (the BDM never gets its ``volume_id``).

nova is configured through its own ``CONF``: ``[cinder] endpoint_template``
points at the fault proxy and the request context carries the noauth token.
The time scale is applied by running nova's wait function over a copy of its
module globals whose ``time`` is a scaled clock: nova's code and its
``block_device_allocate_retries[_interval]`` stay as shipped (the interval is
an IntOpt, so it cannot be scaled in CONF). keystoneauth's own connect retry
delays (0.5 s, doubling) are not scaled.

When nova cannot be imported, :class:`ModelStock` runs
:mod:`bdm_guard_lab.nova_wait_model`, the line-for-line model, over
bdm-guard's transport. :func:`boots` picks one of the two. (In nova mode
the ``stock`` arm is the lab's nova as installed:
:mod:`bdm_guard_lab.arms.nova_mode`.)
"""

import time
import types

from oslo_log import log as logging

from bdm_guard import cinder
from bdm_guard import wait
from bdm_guard_lab import nova_wait_model as model

LOG = logging.getLogger(__name__)
_PARSED = []
#: nova 34's defaults (nova/conf/compute.py), as the library knows them.
_NOVA = wait.Budget.nova_defaults()


class ScaledTime:
    """``time.time`` and ``time.sleep`` with the lab's time scale.

    :param scale: real seconds per scenario second.
    """

    def __init__(self, scale):
        self.scale = scale

    def time(self):
        return time.time() / self.scale

    def sleep(self, seconds):
        time.sleep(seconds * self.scale)


def nova_available():
    """Whether nova 34 can be imported here."""
    try:
        import nova.compute.manager  # noqa: F401
    except ImportError:
        return False
    return True


class NovaStock:
    """Boots with nova's real volume create and wait.

    :param endpoint_template: ``http://127.0.0.1:<port>/v3/%(project_id)s``.
    :param user_id: the user of the noauth token.
    :param project_id: the project.
    :param time_scale: real seconds per scenario second.
    :param allocate_retries: ``block_device_allocate_retries``.
    :param allocate_retries_interval:
        ``block_device_allocate_retries_interval`` (seconds, int).
    :param http_retries: ``[cinder] http_retries``.
    :param delete_on_termination: the BDM flag ``_call_wait_func`` checks.
    """

    kind = 'nova'

    def __init__(self, endpoint_template, user_id, project_id, *,
                 time_scale=1.0, allocate_retries=_NOVA.allocate_retries,
                 allocate_retries_interval=(
                     _NOVA.allocate_retries_interval),
                 http_retries=3, delete_on_termination=True):
        from nova.compute import manager
        import nova.conf
        from nova import context as nova_context
        from nova import exception as nova_exception
        from nova import service_auth
        from nova.volume import cinder as nova_cinder

        conf = nova.conf.CONF
        if not _PARSED:
            conf([], project='nova', default_config_files=[])
            _PARSED.append(True)
        conf.set_override('endpoint_template', endpoint_template, 'cinder')
        conf.set_override('http_retries', http_retries, 'cinder')
        conf.set_override('block_device_allocate_retries', allocate_retries)
        conf.set_override('block_device_allocate_retries_interval',
                          allocate_retries_interval)
        service_auth.reset_globals()
        self._new_context = lambda: nova_context.RequestContext(
            user_id, project_id, auth_token='%s:%s' % (user_id, project_id))
        self.api = nova_cinder.API()
        self.not_created = nova_exception.VolumeNotCreated
        self.delete_on_termination = delete_on_termination
        func = manager.ComputeManager._await_block_device_map_created
        scope = dict(func.__globals__, time=ScaledTime(time_scale))
        self._await = types.FunctionType(func.__code__, scope, func.__name__,
                                         func.__defaults__, func.__closure__)
        self._holder = types.SimpleNamespace(volume_api=self.api)

    def boot(self, name, size_gb, image_id, index=None):
        """Create and wait for one volume the way nova does.

        :param name: the volume's name.
        :param size_gb: its size, GiB.
        :param image_id: the image, or None.
        :param index: the boot's number (unused: one request id per boot).
        :returns: ``(volume_id or None, reason or None)``; reason is the
            nova exception's class name when the boot fails.
        """
        context = self._new_context()   # one request id per boot
        try:
            volume = self.api.create(context, size_gb, name, '',
                                     image_id=image_id)
        except Exception as exc:  # nova fails the build
            return None, 'create:%s' % type(exc).__name__
        volume_id = volume['id']
        try:
            self._await(self._holder, context, volume_id)
        except self.not_created:
            if self.delete_on_termination:
                try:
                    self.api.delete(context, volume_id)
                except Exception as exc:  # nova only logs it
                    LOG.warning('Failed to delete volume: %(id)s due to '
                                '%(exc)s', {'id': volume_id, 'exc': exc})
            return volume_id, 'wait:VolumeNotCreated'
        except Exception as exc:  # nova fails the build
            return volume_id, 'wait:%s' % type(exc).__name__
        return volume_id, None


class ModelStock:
    """Boots with the model of nova's loop when nova is not importable.

    The model is :mod:`bdm_guard_lab.nova_wait_model`.

    Same arguments as :class:`NovaStock` plus ``client_factory``, a
    zero-argument callable returning a :class:`bdm_guard.cinder.VolumeClient`
    on the proxy. The create is one ``POST`` with keystoneauth's blind
    resends (:func:`bdm_guard_lab.nova_wait_model.ksa_call`).
    """

    kind = 'model'

    def __init__(self, client_factory, *, time_scale=1.0,
                 allocate_retries=_NOVA.allocate_retries,
                 allocate_retries_interval=(
                     _NOVA.allocate_retries_interval),
                 http_retries=3, delete_on_termination=True):
        self.client_factory = client_factory
        self.clock = ScaledTime(time_scale)
        self.retries = allocate_retries
        self.interval = allocate_retries_interval
        self.http_retries = http_retries
        self.delete_on_termination = delete_on_termination

    def boot(self, name, size_gb, image_id, index=None):
        """See :meth:`NovaStock.boot`."""
        client = self.client_factory()
        body = {'size': size_gb, 'name': name, 'imageRef': image_id}
        result, _ = model.ksa_call(lambda: client.create_volume(body),
                                   self.http_retries, self.clock.sleep)
        if result.kind != 'ok':
            return None, 'create:%s' % result.kind
        volume_id = result.body['id']
        try:
            model.await_volume(client, volume_id, retries=self.retries,
                               interval=self.interval,
                               http_retries=self.http_retries,
                               sleep=self.clock.sleep, clock=self.clock.time)
        except model.StockFailure as exc:
            if exc.reason == 'timeout' or exc.reason == (
                    'failed_without_reason'):
                if self.delete_on_termination:
                    client.delete_volume(volume_id)
                return volume_id, 'wait:VolumeNotCreated'
            return volume_id, 'wait:%s' % exc.reason
        return volume_id, None


def boots(svc, proxy, time_scale, use_nova):
    """The stock arm's boots against ``svc`` behind ``proxy``.

    :param svc: the :class:`~bdm_guard_lab.cinder.service.CinderService`.
    :param proxy: its :class:`~bdm_guard_lab.faults.proxy.FaultProxy`.
    :param time_scale: real seconds per scenario second.
    :param use_nova: run nova's real code when it can be imported.
    :returns: a :class:`NovaStock`, or a :class:`ModelStock` when nova is
        not importable or ``use_nova`` is false.
    """
    if use_nova and nova_available():
        template = '%s/v3/%%(project_id)s' % proxy.base_url
        return NovaStock(template, svc.user_id, svc.project_id,
                         time_scale=time_scale)
    factory = (lambda: cinder.VolumeClient(
        svc.session(endpoint=proxy.endpoint),
        endpoint_override=proxy.endpoint))
    return ModelStock(factory, time_scale=time_scale)
