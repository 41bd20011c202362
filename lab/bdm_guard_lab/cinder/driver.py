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

"""The lab's volume driver: cinder's fake driver that takes its time.

It runs inside the cinder child process (see
:mod:`bdm_guard_lab.cinder.server`) and is loaded by cinder's volume manager
through ``[backend_defaults] volume_driver``. It subclasses cinder's own
``cinder.tests.fake_driver.FakeLoggingVolumeDriver`` and adds:

* a per-volume create duration (``create_seconds``, spread by
  ``create_jitter``);
* for image-backed volumes, a real ``downloading`` phase of
  ``download_seconds_per_gib`` x size. It is implemented in ``clone_image``,
  the driver hook cinder's create flow calls first
  (``cinder/volume/flows/manager/create_volume.py``, ``_create_from_image``):
  the volume is saved with status ``downloading`` exactly as
  ``_create_from_image_download`` does (``volume.update(...)``,
  ``volume.save()``), then ``copy_image_to_volume`` runs. Cinder's own
  download path cannot run here: it inspects the image with ``qemu-img``
  through privsep.

Durations are drawn from ``random.Random('<seed>:<volume name>')`` so that the
same boot takes the same time in both arms of a comparison, and all are
multiplied by ``time_scale``.
"""

import random
import time

from oslo_config import cfg
from oslo_log import log as logging

from cinder.tests import fake_driver

LOG = logging.getLogger(__name__)

GROUP = 'bdm_guard_lab'

lab_opts = [
    cfg.FloatOpt('create_seconds', default=2.0, min=0.0,
                 help='Mean seconds the driver takes to create a volume.'),
    cfg.FloatOpt('create_jitter', default=0.5, min=0.0, max=1.0,
                 help='Each duration is the mean x (1 +/- this fraction), '
                      'uniformly.'),
    cfg.FloatOpt('download_seconds_per_gib', default=0.0, min=0.0,
                 help='Mean seconds per GiB of volume size an image-backed '
                      'volume spends in "downloading".'),
    cfg.FloatOpt('time_scale', default=1.0, min=0.001,
                 help='Factor applied to every duration.'),
    cfg.IntOpt('seed', default=0, help='Seed of the per-volume durations.'),
    cfg.FloatOpt('capacity_gb', default=0.0, min=0.0,
                 help='Total and free capacity (GiB) the backend reports to '
                      "cinder's scheduler; 0 means infinite. A volume larger "
                      "than it fails in cinder's scheduler (no valid "
                      'backend): status "error" with a user message, as on a '
                      'full backend.'),
]


def register_opts(conf):
    """Register the ``[bdm_guard_lab]`` options on ``conf``."""
    conf.register_opts(lab_opts, group=GROUP)


def durations(conf, name, size_gb, image_backed):
    """The (create, download) seconds for one volume.

    :param conf: the ConfigOpts with ``[bdm_guard_lab]``.
    :param name: the volume's display name (str or None).
    :param size_gb: the size in GiB.
    :param image_backed: whether the volume is created from an image.
    :returns: ``(create_s, download_s)``, already scaled.
    """
    group = conf[GROUP]
    rng = random.Random('%s:%s' % (group.seed, name))
    spread = group.create_jitter

    def draw(mean):
        return max(0.0, mean * (1.0 + spread * (2 * rng.random() - 1)))

    create_s = draw(group.create_seconds) * group.time_scale
    download_s = 0.0
    if image_backed:
        download_s = (draw(group.download_seconds_per_gib) * size_gb
                      * group.time_scale)
    return create_s, download_s


def identity(volume):
    """What a volume's durations are drawn for: its name, else its request.

    nova names the volumes of image mappings ``''``; the lab's nova then
    sends a stable ``X-OpenStack-Request-ID`` per server (cinder keeps it as
    the context's ``global_request_id``), so the same server's volume takes
    the same time in every arm.

    :param volume: a cinder ``Volume`` object.
    :returns: a str.
    """
    if volume.display_name:
        return volume.display_name
    context = getattr(volume, '_context', None)
    return getattr(context, 'global_request_id', None) or volume.id


class LabVolumeDriver(fake_driver.FakeLoggingVolumeDriver):
    """FakeLoggingVolumeDriver with create and image-copy durations."""

    def _update_volume_stats(self):
        """cinder's fake stats, with ``capacity_gb`` when it is set."""
        super()._update_volume_stats()
        capacity = cfg.CONF[GROUP].capacity_gb
        if capacity:
            for pool in self._stats['pools']:
                pool.update(total_capacity_gb=capacity,
                            free_capacity_gb=capacity, reserved_percentage=0)

    def create_volume(self, volume):
        """Create a volume, taking ``create_seconds``."""
        create_s, _ = durations(cfg.CONF, identity(volume), volume.size,
                                False)
        time.sleep(create_s)
        return super().create_volume(volume)

    def clone_image(self, context, volume, image_location, image_meta,
                    image_service):
        """Copy the image the way cinder's download path marks it.

        :returns: ``(model_update, True)``: the image was copied.
        """
        model_update = self.create_volume(volume) or {}
        model_update['status'] = 'downloading'
        volume.update(model_update)
        volume.save()
        self.copy_image_to_volume(context, volume, image_service,
                                  image_meta['id'])
        model_update.pop('status')
        return model_update, True

    def copy_image_to_volume(self, context, volume, image_service, image_id,
                             disable_sparse=False):
        """Fetch the image's metadata and take the download time."""
        image_service.show(context, image_id)
        _, download_s = durations(cfg.CONF, identity(volume), volume.size,
                                  True)
        LOG.info('Copying image %(image)s to volume %(volume)s for '
                 '%(s).2f s.', {'image': image_id, 'volume': volume.id,
                                's': download_s})
        time.sleep(download_s)
