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

"""nova's cinder connection and configuration, for bdm-guard.

The same endpoint, keystoneauth session, auth and global request id as
``nova.volume.cinder.cinderclient()`` (nova 29 to 34), so a guarded
nova-compute talks to cinder exactly as the stock one does, through
:class:`bdm_guard.cinder.VolumeClient`. The patch series adds the same helper
to nova itself (``nova.volume.cinder.volume_client``).
"""

import nova.conf
from nova import exception as nova_exception
from nova import service_auth
from nova.volume import cinder as nova_cinder
from oslo_log import log as logging

from bdm_guard import cinder
from bdm_guard import exception
from bdm_guard.nova import releases
from bdm_guard import opts

LOG = logging.getLogger(__name__)


def nova_conf():
    """nova's ``CONF``, with the ``[bdm_guard]`` options registered.

    Registering before nova parses its configuration files (the launcher
    installs the guard first) lets ``nova.conf`` carry a ``[bdm_guard]``
    section; registering later still works, oslo.config reads lazily.

    :returns: ``nova.conf.CONF``.
    """
    return opts.get_conf(nova.conf.CONF)


def is_patched():
    """Whether nova already carries the patch series (``patches/nova``)."""
    return hasattr(nova_cinder, 'volume_client')


def release():
    """The nova release the drop-ins follow.

    The row :func:`bdm_guard.nova.guard.install` chose, else the installed
    nova's (:func:`bdm_guard.nova.releases.active`).

    :returns: a :class:`bdm_guard.nova.releases.NovaRelease`.
    :raises bdm_guard.exception.NovaIncompatible: the guard is not
        installed, and nova is missing or of a release not in the table.
    """
    row = releases.active()
    if row is None:
        raise exception.NovaIncompatible(
            reason=releases.unsupported(releases.installed_version()))
    return row


def cinder_session():
    """nova's own keystoneauth session for cinder, where the release keeps it.

    nova 29 to 32 load it once into ``nova.volume.cinder._SESSION``; nova 33
    and later keep it in ``nova.service_auth`` (see
    :data:`bdm_guard.nova.releases.SUPPORTED_NOVA`).
    """
    where = release().cinder_session
    if where == releases.CINDER_MODULE_SESSION:
        nova_cinder._load_session()
        return nova_cinder._SESSION
    return service_auth.get_service_auth_session(
        nova.conf.cinder.cinder_group.name)


def volume_client(context):
    """A bdm-guard client for cinder, built the way nova builds cinderclient.

    :param context: a ``nova.context.RequestContext``.
    :returns: a :class:`bdm_guard.cinder.VolumeClient` on nova's ``[cinder]``
        session with the context's auth (the user's token, or the
        ``[cinder]`` service credentials for an admin context without one),
        the endpoint of ``[cinder] endpoint_template`` or the catalog, and
        ``X-OpenStack-Request-ID: context.global_id``.
    :raises nova.exception.UnsupportedCinderAPIVersion: the endpoint is not
        cinder v3 (as ``cinderclient()`` raises).
    """
    auth, service_parameters, url = (
        nova_cinder._get_cinderclient_parameters(context))
    version = nova_cinder.cinder_client.get_volume_api_from_url(url)
    if version != '3':
        raise nova_exception.UnsupportedCinderAPIVersion(version=version)
    session = cinder_session()
    return cinder.VolumeClient(
        session, auth=auth, endpoint_override=url,
        region_name=service_parameters.get('region_name'),
        interface=service_parameters.get('interface'),
        global_request_id=context.global_id,
        request_timeout=nova_conf().bdm_guard.request_timeout)
