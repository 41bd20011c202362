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

"""Authentication for the CLI, loaded the keystoneauth way.

``--os-*`` options and ``OS_*`` environment variables come from
keystoneauth1's own argparse loading; ``--os-cloud`` reads clouds.yaml
through openstacksdk's config loader when openstacksdk is installed, and
takes the cloud's region, interface and block-storage endpoint override
(``region_name``, ``volume_interface``/``interface``,
``block_storage_endpoint_override``...) unless ``--os-region-name``,
``--os-interface`` or ``--os-volume-endpoint`` (or their ``OS_*``
variables) are given.
"""

import os
import sys

from keystoneauth1 import loading

from bdm_guard import cinder
from bdm_guard import exception


def add_arguments(parser, argv=None):
    """Add the keystoneauth session/auth and cinder endpoint options.

    :param parser: an :class:`argparse.ArgumentParser`.
    :param argv: the command line (list of str), from which keystoneauth
        reads ``--os-auth-type`` to pick the plugin's options; defaults to
        ``sys.argv[1:]``.
    """
    parser.add_argument('--os-cloud', default=os.environ.get('OS_CLOUD'),
                        help='A cloud name in clouds.yaml (needs '
                             'openstacksdk). Env: OS_CLOUD.')
    loading.register_session_argparse_arguments(parser)
    loading.register_auth_argparse_arguments(parser,
                                             argv or sys.argv[1:],
                                             default='password')
    parser.add_argument('--os-volume-endpoint',
                        default=os.environ.get('OS_VOLUME_ENDPOINT'),
                        help='cinder\'s endpoint including /v3/<project>, '
                             'instead of the catalog\'s. Env: '
                             'OS_VOLUME_ENDPOINT.')
    parser.add_argument('--os-interface',
                        default=os.environ.get('OS_INTERFACE'),
                        help='Catalog interface (public, internal, '
                             'admin). Env: OS_INTERFACE.')
    parser.add_argument('--os-region-name',
                        default=os.environ.get('OS_REGION_NAME'),
                        help='Catalog region. Env: OS_REGION_NAME.')


def _cloud_region(name, region_name=None):
    """openstacksdk's CloudRegion for ``name`` (and a region, if given)."""
    try:
        from openstack import config as os_config
    except ImportError:
        raise exception.InvalidInput(
            reason='--os-cloud needs openstacksdk (pip install '
                   'openstacksdk)') from None
    kwargs = {'region_name': region_name} if region_name else {}
    try:
        return os_config.OpenStackConfig().get_one(cloud=name, **kwargs)
    except Exception as exc:   # openstack ConfigException, keystoneauth
        raise exception.InvalidInput(
            reason='cannot load cloud %r from clouds.yaml: %s' % (name, exc)
        ) from None


def client_from_args(args, global_request_id=None):
    """Build a :class:`bdm_guard.cinder.VolumeClient` from parsed options.

    :param args: the parsed options of :func:`add_arguments`.
    :param global_request_id: ``req-<uuid>`` to send on every call, or
        None.
    :returns: a :class:`bdm_guard.cinder.VolumeClient`; nothing is sent.
    :raises bdm_guard.exception.InvalidInput: incomplete credentials, an
        unknown cloud or region, or ``--os-cloud`` without openstacksdk.
    """
    endpoint = args.os_volume_endpoint
    region = args.os_region_name
    interface = args.os_interface
    if args.os_cloud:
        cloud = _cloud_region(args.os_cloud, region)
        try:
            session = cloud.get_session()
        except Exception as exc:   # keystoneauth raises several types here
            raise exception.InvalidInput(
                reason='cannot load credentials of cloud %r (%s)' % (
                    args.os_cloud, exc)) from None
        # 'volume' is an alias of cinder's 'block-storage' service type.
        endpoint = endpoint or cloud.get_endpoint('volume')
        region = region or cloud.get_region_name('volume')
        interface = interface or cloud.get_interface('volume')
    else:
        try:
            auth = loading.load_auth_from_argparse_arguments(args)
        except Exception as exc:   # keystoneauth raises several types here
            raise exception.InvalidInput(
                reason='cannot load credentials (%s); give --os-auth-url '
                       'and friends, OS_* variables, or --os-cloud' % exc
            ) from None
        session = loading.load_session_from_argparse_arguments(args,
                                                               auth=auth)
    return cinder.VolumeClient(session, endpoint_override=endpoint,
                               region_name=region, interface=interface,
                               global_request_id=global_request_id)
