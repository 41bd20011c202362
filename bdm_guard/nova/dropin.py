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

"""Drop-in replacements for nova 29-34's volume create and wait.

Each function has the arguments of the nova method it replaces (the object
first) and nova's semantics: the same return values and nova's exceptions.
They behave as nova with the patch series in ``patches/nova`` does:

* :func:`await_block_device_map_created` replaces
  ``ComputeManager._await_block_device_map_created``;
* :func:`create_volume_for_bdm` replaces
  ``DriverVolumeBlockDevice._create_volume``.

``sleep`` and ``clock`` are keyword-only extras for tests; nova never passes
them. Without ``sleep`` they sleep as the running nova release's own wait loop
does (:meth:`bdm_guard.nova.releases.NovaRelease.sleep`: eventlet's
``greenthread.sleep`` on nova 29 to 31, ``time.sleep`` from 32 on), looked up
at each call, so that under eventlet monkey patching every wait is green.
"""

import collections
import threading
import time

from nova import exception as nova_exception
from nova.virt import block_device as nova_block_device
from oslo_log import log as logging
from oslo_utils import excutils

from bdm_guard import create
from bdm_guard import events
from bdm_guard import exception
from bdm_guard.internal.create import cleanup
from bdm_guard import metrics
from bdm_guard.nova import client as nova_client
from bdm_guard import wait

LOG = logging.getLogger(__name__)


def _volume_not_created(volume_id, exc):
    """nova's VolumeNotCreated for a failed wait, with cinder's reason.

    nova 29 to 34's ``msg_fmt`` has no ``reason``; the patch series adds it.
    Both
    carry the reason in the message.
    """
    reason = exc.kwargs.get('reason') or exc.msg
    kwargs = {'volume_id': volume_id, 'seconds': int(exc.elapsed),
              'attempts': exc.polls, 'volume_status': exc.status,
              'reason': reason}
    msg_fmt = nova_exception.VolumeNotCreated.msg_fmt
    message = None
    if '%(reason)s' not in msg_fmt:
        message = '%s Reason: %s' % (msg_fmt % kwargs, reason)
    return nova_exception.VolumeNotCreated(message=message, **kwargs)


def _recorder(conf):
    """The metrics recorder (:mod:`bdm_guard.metrics`), or None when off.

    Metrics never fail a boot: any error here is logged once and ignored.
    """
    try:
        recorder = metrics.get_recorder(conf)
        if recorder is not None and 'release' not in recorder.info:
            row = nova_client.release()
            recorder.info.update(
                release=row.name, nova_series=row.series,
                mode='patched' if nova_client.is_patched() else 'launcher')
        return recorder
    except Exception as exc:  # never break a boot for metrics
        if not _METRICS_ERRORS:
            _METRICS_ERRORS.append(exc)
            LOG.warning('bdm-guard metrics are off: %s', exc)
        return None


def _record(recorder, method, *args):
    if recorder is None:
        return
    try:
        getattr(recorder, method)(*args)
    except Exception as exc:  # never break a boot for metrics
        if not _METRICS_ERRORS:
            _METRICS_ERRORS.append(exc)
            LOG.warning('bdm-guard metrics: %s', exc)


_METRICS_ERRORS = []

#: The metrics' ``outcome`` label of a wait error renamed in 0.2.0 stays its
#: 0.x name until the old names go (0.3.0), so that dashboards and alerts
#: keep matching.
_OUTCOME_LABELS = {'VolumeWaitFailed': 'VolumeCreateFailed',
                   'VolumeWaitTimeout': 'VolumeCreateTimeout'}


def _outcome(exc):
    name = type(exc).__name__
    return _OUTCOME_LABELS.get(name, name)


def _sleep(sleep):
    """``sleep``, or the running release's, resolved now (not at import)."""
    return sleep if sleep is not None else nova_client.release().sleep()


def _budget(conf, size_gb=None):
    """nova's wait budget, with the size the drop-in's create sent.

    :param size_gb: the volume's size in GiB, or None: then it is read
        from the volume once copying.
    """
    return wait.Budget(
        size_gb=size_gb,
        allocate_retries=conf.block_device_allocate_retries,
        allocate_retries_interval=conf.block_device_allocate_retries_interval,
        per_gib_floor=getattr(conf, 'reimage_timeout_per_gb', None))


#: Most creates :class:`_Created` remembers: nova calls its wait function
#: right after the create, so only the builds running at once matter
#: (``max_concurrent_builds``, 10 by default).
CREATED_KEEP = 1024


class _Created:
    """What this process's creates know that nova's wait is not given.

    nova calls ``_await_block_device_map_created(context, vol_id)`` with
    the volume id only. The create path knows the size of an image- or
    snapshot-backed volume and when its POST returned: the completion
    schedule predicts the copy from the first look on, instead of taking
    the volume for a blank one while it is ``creating``, and waits
    ``completion_first_look`` before the first GET instead of sending one
    that can only say ``creating``. No request is added. Thread-safe;
    bounded by :data:`CREATED_KEEP` entries, oldest first out.
    """

    def __init__(self, keep=CREATED_KEEP):
        self._keep = keep
        self._lock = threading.Lock()
        self._known = collections.OrderedDict()

    def remember(self, volume_id, size_gb, created_at, clock):
        with self._lock:
            self._known[volume_id] = (size_gb, created_at, clock)
            while len(self._known) > self._keep:
                self._known.popitem(last=False)

    def take(self, volume_id, clock):
        """``(size_gb or None, created_at or None)``, forgotten after.

        ``created_at`` only when it was read from the same clock.
        """
        with self._lock:
            size_gb, created_at, known_clock = self._known.pop(
                volume_id, (None, None, None))
        return size_gb, created_at if known_clock is clock else None


_CREATED = _Created()


def await_block_device_map_created(manager, context, vol_id, *,
                                   sleep=None, clock=time.monotonic):
    """Wait for a volume created for a block device mapping.

    :param manager: the ``ComputeManager`` (unused: the wait talks to cinder
        through :func:`bdm_guard.nova.client.volume_client`).
    :param context: the ``nova.context.RequestContext``.
    :param vol_id: the volume UUID.
    :returns: the number of volume GETs (nova returns its attempt count).
    :raises nova.exception.VolumeNotCreated: error status, timeout or 404
        past ``[bdm_guard] not_found_grace``; the message carries cinder's
        reason. The budget is nova's ``(block_device_allocate_retries + 1) x
        block_device_allocate_retries_interval`` or ``[bdm_guard]
        base_deadline``, whichever is longer.
    """
    sleep = _sleep(sleep)
    conf = nova_client.nova_conf()
    client = nova_client.volume_client(context)
    # With [bdm_guard_events] transport_url: the watch the create path took
    # before its POST, or a new one for a volume created elsewhere.
    source = events.get_source(conf)
    waker = own = None
    recorder = _recorder(conf)
    healthy = None
    if source is not None:
        waker = source.find(vol_id)
        if waker is None:
            waker = own = source.watch(vol_id, context.project_id)
        healthy = source.healthy if recorder is not None else None
    # The size and create time our create path remembered; for a volume
    # created elsewhere the size is read from the volume once it is seen
    # copying.
    size_gb, created_at = _CREATED.take(vol_id, clock)
    try:
        report = wait.wait_for_volume(
            client, vol_id, budget=_budget(conf, size_gb),
            created_at=created_at, conf=conf, sleep=sleep, clock=clock,
            waker=waker)
    except exception.VolumeWaitError as exc:
        _record(recorder, 'record_wait', getattr(exc, 'report', None),
                _outcome(exc), vol_id, healthy)
        LOG.warning('Volume id: %(vol_id)s was not created: %(reason)s',
                    {'vol_id': vol_id, 'reason': exc.msg})
        raise _volume_not_created(vol_id, exc) from exc
    finally:
        if own is not None:
            own.close()
    _record(recorder, 'record_wait', report, 'available', vol_id, healthy)
    return report.polls


def _nova_error(exc):
    """nova's exception for a bdm-guard create error."""
    if isinstance(exc, exception.OverQuota):
        return nova_exception.OverQuota(message=exc.msg)
    if isinstance(exc, exception.VolumeCreateRejected):
        if exc.code == 404:
            return nova_exception.NotFound(message=exc.msg)
        if exc.code == 403:
            return nova_exception.Forbidden(exc.msg)
        return nova_exception.InvalidInput(reason=exc.msg)
    if isinstance(exc, exception.InvalidInput):
        return nova_exception.InvalidInput(reason=exc.msg)
    if isinstance(exc, exception.IdempotencyConflict):
        return nova_exception.InvalidVolume(reason=exc.msg)
    return nova_exception.CinderConnectionFailed(reason=exc.msg)


def _volume_request(size, volume_type, availability_zone, create_kwargs):
    """The :class:`bdm_guard.create.VolumeRequest` of nova's arguments."""
    snapshot = create_kwargs.pop('snapshot', None)
    fields = {'name': create_kwargs.pop('name', ''),
              'description': create_kwargs.pop('description', ''),
              'image_id': create_kwargs.pop('image_id', None),
              'metadata': create_kwargs.pop('metadata', None),
              'snapshot_id': snapshot['id'] if snapshot else None}
    if create_kwargs:
        raise TypeError('unexpected create arguments: %s'
                        % ', '.join(sorted(create_kwargs)))
    return create.VolumeRequest(size, volume_type=volume_type,
                                availability_zone=availability_zone,
                                **fields)


def _legacy_create(driver_bdm, context, instance, volume_api, client, size,
                   wait_func, delete, sleep, **create_kwargs):
    """nova's own create, for a mapping without a uuid (no stable key)."""
    volume = volume_api.create(
        context, size, create_kwargs.pop('name', ''),
        create_kwargs.pop('description', ''),
        volume_type=driver_bdm.volume_type,
        availability_zone=create_kwargs.pop('availability_zone'),
        **create_kwargs)
    if wait_func:
        try:
            wait_func(context, volume['id'])
        except Exception as exc:
            with excutils.save_and_reraise_exception():
                cleanup.after_failed_wait(client, exc, volume['id'], None,
                                          delete, sleep)
    return volume['id']


def create_volume_for_bdm(driver_bdm, context, instance, volume_api, size,
                          wait_func=None, *, sleep=None,
                          clock=time.monotonic, **create_kwargs):
    """Create the volume of a block device mapping, once, and attach-ready.

    The create, nova's wait and the cleanup run through
    :func:`bdm_guard.create.create_and_wait`, the one path the CLI and the
    lab take too.

    :param driver_bdm: the ``DriverVolumeBlockDevice``.
    :param context: the ``nova.context.RequestContext``.
    :param instance: the ``Instance`` the volume is for.
    :param volume_api: a ``nova.volume.cinder.API`` (creates the
        attachment).
    :param size: the size in GiB.
    :param wait_func: ``wait_func(context, volume_id)``, or None.
    :param create_kwargs: nova's: ``name``, ``description``, ``snapshot``
        (a dict with ``id``), ``image_id``, ``metadata``.
    :returns: ``(volume_id, attachment_id)``.
    :raises: nova's OverQuota, InvalidInput, NotFound, Forbidden,
        InvalidVolume (a volume with the key but another size, source or
        type), CinderConnectionFailed (no POST got through, or its outcome
        is unknown), and whatever ``wait_func`` raises: after any of those
        the volume is deleted when ``delete_on_termination`` is set, or
        handed back when cinder cannot delete it yet.
    """
    sleep = _sleep(sleep)
    av_zone = nova_block_device._get_volume_create_az_value(instance)
    delete = bool(driver_bdm['delete_on_termination'])
    client = nova_client.volume_client(context)
    if not driver_bdm._bdm_obj.obj_attr_is_set('uuid'):
        # Mappings read from the database always have a uuid; without one
        # there is no stable key, so create as nova does.
        volume_id = _legacy_create(
            driver_bdm, context, instance, volume_api, client, size,
            wait_func, delete, sleep, availability_zone=av_zone,
            **create_kwargs)
    else:
        key = create.key_for_bdm(instance.uuid, driver_bdm._bdm_obj.uuid)

        def nova_wait(volume_id, created_at):
            if not wait_func:
                return None
            if request.image_id or request.snapshot_id:
                # For our drop-in wait (the launcher replaces nova's).
                _CREATED.remember(volume_id, size, created_at, clock)
            try:
                return wait_func(context, volume_id)
            finally:
                _CREATED.take(volume_id, clock)

        source = events.get_source(nova_client.nova_conf())
        watch = source.expect(context.project_id) if source else None
        recorder = _recorder(nova_client.nova_conf())
        try:
            request = _volume_request(size, driver_bdm.volume_type, av_zone,
                                      create_kwargs)
            result, _ = create.create_and_wait(
                client, request, idempotency_key=key,
                delete_on_failure=delete, wait_func=nova_wait,
                conf=nova_client.nova_conf(), sleep=sleep, clock=clock,
                waker=watch)
        except exception.BdmGuardException as exc:
            _record(recorder, 'record_create', None, type(exc).__name__)
            raise _nova_error(exc) from exc
        finally:
            if watch is not None:
                watch.close()
        _record(recorder, 'record_create', result, result.how)
        volume_id = result.volume['id']
    attachment = volume_api.attachment_create(context, volume_id,
                                              instance.uuid)
    return volume_id, attachment['id']
