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

"""Lab shims: small patches to the installed API clients, for the lab only.

These are **not** upstream changes and are not part of ``patches/``: they
stand in for client releases that do not exist yet, so that the demo's
``route-b`` arm (:mod:`bdm_guard_lab.arms.guard`) can run route B's nova
and cinder series end to end. Each folder is a series (a ``series`` file
listing ``*.patch`` files) applied, as the lab applies ``patches/nova``, to
a copy of the installed package in a child's ``PYTHONPATH``
(:class:`bdm_guard_lab.nova.patched.PatchedPackage`); site-packages is
never touched.

``cinderclient``
  python-cinderclient 9.10 stops at microversion 3.71: the shim raises
  ``MAX_VERSION`` to 3.73 and lets ``volumes.create`` take ``server_id``
  (3.73, in the request body) and ``idempotency_key`` (3.72, the
  ``Idempotency-Key`` header), the two arguments route B's nova passes.
  Without it nova finds no 3.73 client and polls as before. Put in the nova
  child.
``novaclient``
  python-novaclient 18.13 refuses microversions above 2.96: the shim
  raises ``API_MAX_VERSION`` to 2.105, the microversion cinder-volume sends
  the ``volume-created`` event at. Without it the event is never sent and
  every boot waits a whole event slice. Put in the cinder child.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))


def series_dir(package):
    """The shim series folder of ``package`` (``cinderclient``...)."""
    return os.path.join(HERE, package)
