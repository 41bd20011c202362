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

"""The cinder process of the lab: ``python -m bdm_guard_lab.cinder.server``.

Runs cinder 29's real API (``cinder.service.WSGIService('osapi_volume')``),
scheduler and volume manager in one process, the way cinder's own functional
tests do (``cinder/tests/functional/functional_helpers.py``): fake RPC
transport (``fake:/``, which only works inside one process), noauth, the
lab's volume driver and image service; with a ``notification_url`` in the
settings, notifications (driver ``messagingv2``) go to that broker; with a
``nova_endpoint``, cinder's ``[nova]`` section points at the lab nova's
loopback API (route B's ``volume-created`` events). It
eventlet-monkey-patches itself (cinder's default concurrency), which is why
it is a child process: the clients under test (bdm-guard, nova) must run on
plain threads.

Protocol: the single argument is a JSON file with the settings (see
:class:`bdm_guard_lab.cinder.service.CinderService`); once serving, one line
``{"port": <port>, "read_your_writes": <bool>}`` is printed on stdout
(``read_your_writes``: this cinder carries the ``patches/cinder`` series).
SIGTERM stops it; it also exits when its parent goes away. When the settings
name a ``stats_file``, the series' re-read counters
(``cinder.db.api.read_your_writes.stats``, a :class:`bdm_guard.db.Stats`)
are written there as JSON every second and on the way out.
"""

from cinder import monkey_patch; monkey_patch.patch()  # noqa: E702,H102

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from oslo_concurrency import lockutils  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_db import exception as db_exc  # noqa: E402
from oslo_log import log as logging  # noqa: E402
from oslo_messaging import opts as messaging_opts  # noqa: E402
from oslo_policy import opts as policy_opts  # noqa: E402
from oslo_service import wsgi  # noqa: E402

from cinder import objects  # noqa: E402

objects.register_all()

from cinder.api import common as api_common  # noqa: E402,F401
from cinder.common import config  # noqa: E402,F401
from cinder import coordination  # noqa: E402
from cinder.db import api as db_api  # noqa: E402
from cinder.db import migration  # noqa: E402
from cinder import quota  # noqa: E402,F401
from cinder import rpc  # noqa: E402
from cinder.scheduler import manager as sch_manager  # noqa: E402,F401
from cinder import service  # noqa: E402
from cinder.volume import api as volume_api  # noqa: E402
from cinder.volume import driver  # noqa: E402,F401
from cinder.volume import manager as vol_manager  # noqa: E402,F401

from bdm_guard_lab.cinder import driver as lab_driver  # noqa: E402
from bdm_guard_lab.cinder import images as image_service  # noqa: E402

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

_DRIVER = 'bdm_guard_lab.cinder.driver.LabVolumeDriver'


def _overrides(settings):
    """``[(option, value, group)]`` for the lab's cinder."""
    state = settings['state_dir']
    etc = settings['etc_dir']
    lab = settings.get('lab', {})
    values = [
        ('transport_url', 'fake:/', None),
        ('auth_strategy', 'noauth', None),
        ('api_paste_config', os.path.join(etc, 'api-paste.ini'), None),
        ('resource_query_filters_file',
         os.path.join(etc, 'resource_filters.json'), None),
        ('state_path', state, None),
        ('osapi_volume_listen', '127.0.0.1', None),
        ('osapi_volume_listen_port', 0, None),
        ('osapi_volume_workers', 1, None),
        ('scheduler_driver',
         'cinder.scheduler.filter_scheduler.FilterScheduler', None),
        ('scheduler_driver_init_wait_time', 10, None),
        ('default_volume_type', '__DEFAULT__', None),
        ('target_helper', 'fake', None),
        ('volume_driver', _DRIVER, 'backend_defaults'),
        ('quota_volumes', -1, None),
        ('quota_gigabytes', -1, None),
        ('quota_snapshots', -1, None),
        ('executor_thread_pool_size', 512, None),
        # One greenthread per open client connection: the default 100 would
        # stall the API once more than 100 keep-alive clients are connected.
        ('wsgi_default_pool_size', 4096, None),
        ('client_socket_timeout', 60, None),
        # On a loaded two-core machine (50 servers building in the lab's
        # nova next to this cinder) the volume service's heartbeat can fall
        # more than cinder's default 60 s behind; the scheduler then finds
        # "no valid backend" for every volume. Whether the lab's one backend
        # is up is not what the lab measures.
        ('service_down_time', 3600, None),
        ('connection', settings['db_connection'], 'database'),
        ('sqlite_synchronous', False, 'database'),
        ('lock_path', os.path.join(state, 'locks'), 'oslo_concurrency'),
        ('backend_url', 'file://' + os.path.join(state, 'coordination'),
         'coordination'),
        ('policy_file', os.path.join(state, 'no-policy.yaml'), 'oslo_policy'),
        # With a broker: cinder's notifications on it (RPC stays fake:/).
        ('driver', ['messagingv2' if settings.get('notification_url')
                    else 'noop'], 'oslo_messaging_notifications'),
        ('transport_url', settings.get('notification_url'),
         'oslo_messaging_notifications'),
        ('log_file', settings.get('log_file'), None),
        ('debug', bool(settings.get('debug')), None),
    ]
    values.extend((name, value, lab_driver.GROUP)
                  for name, value in lab.items())
    values.extend((name, value, 'database') for name, value in sorted(
        settings.get('database_options', {}).items()))
    return values


#: The seconds cinder waits for nova's answer to an event (``[nova]
#: timeout``).
NOVA_TIMEOUT = 30


def _config_files(settings):
    """A ``cinder.conf`` with the ``[nova]`` section, when nova is given.

    The section names ``auth_type = none`` and its ``endpoint``: options
    keystoneauth registers only when it loads the plugin, so they are read
    from a file rather than set as overrides.

    :returns: a list of zero or one paths.
    """
    endpoint = settings.get('nova_endpoint')
    if not endpoint:
        return []
    path = os.path.join(settings['state_dir'], 'cinder.conf')
    with open(path, 'w') as stream:
        stream.write('[nova]\nauth_type = none\nendpoint = %s\n'
                     'timeout = %d\n' % (endpoint, NOVA_TIMEOUT))
    return [path]


def _write_policy(settings):
    """Write the settings' ``policy_rules`` to the policy file, if any."""
    rules = settings.get('policy_rules')
    if rules:
        path = os.path.join(settings['state_dir'], 'no-policy.yaml')
        with open(path, 'w') as stream:
            json.dump(rules, stream)


def configure(settings):
    """Parse an empty command line and apply the lab's settings."""
    _write_policy(settings)
    lab_driver.register_opts(CONF)
    logging.register_options(CONF)
    for group, opts in messaging_opts.list_opts():
        CONF.register_opts(opts, group=group)
    wsgi.register_opts(CONF)
    policy_opts.set_defaults(CONF)
    lockutils.set_defaults(os.path.join(settings['state_dir'], 'locks'))
    CONF([], project='cinder', default_config_files=_config_files(settings))
    for name, value, group in _overrides(settings):
        if value is not None:
            CONF.set_override(name, value, group)
    logging.setup(CONF, 'cinder')


class LabService(service.Service):
    """A cinder service that heartbeats its own row, several per process.

    Cinder keeps a service's database id in the class attribute
    ``cinder.service.Service.service_id``: one cinder-volume or
    cinder-scheduler per process in a deployment. Here the volume service
    and the scheduler share one process (the fake RPC transport needs it),
    so the attribute holds the id of whichever was created last, and the
    other one's ``report_state`` bumps that row instead of its own. The
    other row then ages past ``service_down_time`` (60 s): "volume service
    is down" and ``NoValidBackend`` for every create from 60 s after start.

    Each heartbeat here first points the class attribute at this service's
    own row (``origin_service_id``, which cinder sets per instance).
    Cinder's ``report_state`` reads the attribute before its first database
    call, and eventlet switches greenthreads only on I/O, so no other
    service changes it in between. ``cinder.objects.cleanable`` also reads
    it when a manager records a worker entry: there it names one of the two
    services (only cinder's cleanup at service start reads it back, which
    the lab never runs).
    """

    def report_state(self):
        """Heartbeat this service's own row (see the class)."""
        service.Service.service_id = self.origin_service_id
        super().report_state()


def _create(binary, attempts=5):
    """Create a LabService, again after a Galera conflict at start.

    On a multi-writer Galera VIP, a service's first transactions right
    after ``db_sync`` can reach a node that is still applying the new
    schema and be aborted (``DBDeadlock``, error 1213). A deployment's
    service manager restarts the service then; the lab tries again.

    :raises oslo_db.exception.DBDeadlock: still after ``attempts``.
    """
    for attempt in range(1, attempts + 1):
        try:
            return LabService.create(binary=binary, host='lab',
                                     coordination=(binary == 'cinder-volume'))
        except db_exc.DBDeadlock:
            if attempt == attempts:
                raise
            LOG.warning('Starting %s hit a Galera conflict (attempt %d); '
                        'trying again.', binary, attempt)
            time.sleep(1.0)


def start(settings):
    """Start scheduler, volume manager and API; return the services."""
    os.makedirs(os.path.join(settings['state_dir'], 'locks'), exist_ok=True)
    if not settings.get('skip_db_sync'):
        migration.db_sync()
    coordination.COORDINATOR.start()
    rpc.init(CONF)
    image_service.install()
    if settings.get('service_requests'):
        # Before deleting an in-use attachment cinder asks nova whether the
        # server still uses it, unless the request comes from a service;
        # the lab has no keystone catalog to find nova in, so the lab's nova
        # counts as a service (doc/source/contributor/lab-recipes.rst).
        volume_api.API.is_service_request = staticmethod(lambda ctxt: True)
    services = []
    for binary in ('cinder-volume', 'cinder-scheduler'):
        svc = _create(binary)
        svc.start()
        services.append(svc)
    api = service.WSGIService('osapi_volume')
    api.start()
    services.append(api)
    return services


def write_stats(path):
    """Write the series' re-read counters to ``path`` (JSON), if patched.

    :returns: the counters (dict), or None for a stock cinder.
    """
    guard = getattr(db_api, 'read_your_writes', None)
    stats = guard.stats.as_dict() if guard is not None else None
    if path:
        with open(path + '.tmp', 'w') as stream:
            json.dump(stats, stream)
        os.replace(path + '.tmp', path)
    return stats


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as stream:
        settings = json.load(stream)
    configure(settings)
    services = start(settings)
    parent = os.getppid()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *args: stopping.append(1))
    sys.stdout.write(json.dumps({
        'port': services[-1].port,
        'read_your_writes': hasattr(db_api, 'read_your_writes')}) + '\n')
    sys.stdout.flush()
    # The counters are also written every second: a child killed after the
    # stop timeout still leaves them.
    last = None
    while not stopping and os.getppid() == parent:
        time.sleep(0.2)
        if time.monotonic() - (last or 0) >= 1.0:
            write_stats(settings.get('stats_file'))
            last = time.monotonic()
    stats = write_stats(settings.get('stats_file'))
    LOG.info('Read-your-writes counters: %s', stats)
    for svc in reversed(services):
        try:
            svc.stop()
        except Exception:  # best effort at exit
            LOG.exception('Stopping %s failed.', svc)
    return 0


if __name__ == '__main__':
    sys.exit(main())
