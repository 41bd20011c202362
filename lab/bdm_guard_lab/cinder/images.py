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

"""The image service of the lab's cinder: cinder's own fake, fixed.

Cinder's unit-test image service (``cinder.tests.unit.image.fake``) stands in
for glance, the way cinder's own tests use it (``mock_image_service``); the
lab installs it the same way, by replacing the two factories in
``cinder.image.glance``. Its ``download`` writes a ``str`` into a binary
file; :class:`LabImageService` writes bytes.
"""

from cinder.image import glance
from cinder.tests.unit import fake_constants
from cinder.tests.unit.image import fake

#: The image every lab volume is created from: a 12 MB raw image.
IMAGE_ID = fake_constants.IMAGE_ID


class LabImageService(fake._FakeImageService):
    """cinder's fake image service with a working ``download``."""

    def download(self, context, image_id, data):
        self.show(context, image_id)
        data.write(self._imagedata.get(image_id, b''))


_SERVICE = None


def install():
    """Make cinder's API and volume manager use :class:`LabImageService`.

    Call it in the cinder process before the services start.

    :returns: the service instance.
    """
    global _SERVICE
    _SERVICE = LabImageService()
    glance.get_remote_image_service = lambda context, href: (_SERVICE, href)
    glance.get_default_image_service = lambda: _SERVICE
    return _SERVICE
