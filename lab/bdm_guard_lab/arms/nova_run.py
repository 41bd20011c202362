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

"""The demo's nova arms: servers booted through a real nova on real cinder.

:func:`run_arm` starts, for one arm, a fresh cinder
(:class:`~bdm_guard_lab.cinder.service.CinderService`), a fresh fault proxy
in front of it and a fresh nova (:class:`~bdm_guard_lab.nova.service.
NovaService`) whose ``[cinder] endpoint_template`` is the proxy. It boots
the servers through nova's API at once, waits until each is ACTIVE or
ERROR, reads the figures from nova's and cinder's APIs, deletes every
server and counts the volumes left (:func:`summarize`).

Arms (:data:`ARMS`):

* ``stock``: nova 34 as installed;
* ``launcher``: nova with :func:`bdm_guard.nova.guard.install`
  (``mode='launcher'``), as ``bdm-guard-nova-compute`` runs it;
* ``patched``: nova with ``patches/nova`` applied to a copy
  (:class:`~bdm_guard_lab.nova.patched.PatchedNova`). A patch that does not
  apply ends the arm with ``error`` set, naming the patch;
* ``events``: the launcher, its waits woken by cinder's notifications
  through a real RabbitMQ (:mod:`bdm_guard_lab.broker`), polling as the
  backstop.

Time: cinder's durations and the proxy's delays are multiplied by
``time_scale``; nova's own clocks run in real time (its wait interval is an
IntOpt of whole seconds and is left as shipped), so every time figure of a
nova arm is in real seconds.
"""

import collections
import contextlib
import functools
import re
import threading
import time

import fixtures
from oslo_log import log as logging

from bdm_guard import events as guard_events
from bdm_guard import opts
from bdm_guard_lab.arms import metrics
from bdm_guard_lab.arms import run as library_arms
from bdm_guard_lab import broker
from bdm_guard_lab.cinder import service as cinder_service
from bdm_guard_lab.db import lagging_galera as galera_lab
from bdm_guard_lab.db import variants as galera_variants
from bdm_guard_lab import exception
from bdm_guard_lab.faults import proxy as lab_proxy
from bdm_guard_lab.nova import patched as patched_nova
from bdm_guard_lab.nova import service as nova_service

LOG = logging.getLogger(__name__)

ARMS = nova_service.MODES
#: The issue's figures, in this order (``-f json`` prints at least these).
KEYS = ('servers', 'active', 'error', 'faults', 'volumes', 'duplicates',
        'leaked', 'left_after_delete', 'in_error', 'gets_per_boot',
        'gets_per_ok_boot', 'detect_lag_p50_s', 'detect_lag_p95_s',
        'boot_seconds_p50', 'boot_seconds_p95')
_UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                   r'[0-9a-f]{12}')
_CAUSE = re.compile(r'^(?:[a-z_]+\.)*([A-Z]\w*(?:Error|Exception|NotFound|'
                    r'NotCreated|Failed|Timeout|Invalid\w*))(?::|$)',
                    re.MULTILINE)


#: Servers the lab plans per nova-compute. nova-compute runs at most
#: ``[compute] max_concurrent_builds`` (10 by default) builds at once; the
#: lab starts more computes instead of changing the option, and plans below
#: 10 because the scheduler does not spread a burst perfectly evenly.
BOOTS_PER_COMPUTE = 8


def computes_for(servers):
    """nova-compute services for ``servers`` boots at once (int)."""
    return max(1, -(-servers // BOOTS_PER_COMPUTE))


def fault_reason(record):
    """A server's failure, short: nova's fault message and its cause.

    :param record: a server record of :meth:`NovaService.boot`.
    :returns: e.g. ``Build of instance <uuid> aborted: Failure prepping
        block device. [VolumeNotFound]``; the cause is the first exception
        class named in the fault's details (the traceback nova keeps).
    """
    if record.get('post_error'):
        return 'POST /servers failed: %s' % _UUID.sub(
            '<uuid>', record['post_error'])[:200]
    if record.get('status') != 'ERROR':
        return 'not settled: %s' % record.get('status')
    message = _UUID.sub('<uuid>', record.get('fault_message') or '?')
    causes = _CAUSE.findall(record.get('fault_details') or '')
    causes = [c for c in causes if c not in ('BuildAbortException',)]
    return '%s [%s]' % (message, causes[0]) if causes else message


def _round(value):
    return None if value is None else round(value, 2)


def summarize(records, volumes, left, proxy, *, project_id, wall_s):
    """The figures of one nova arm.

    :param records: the servers (:meth:`NovaService.boot`).
    :param volumes: cinder's volumes once the boots settled.
    :param left: cinder's volumes once every server was deleted.
    :param proxy: the arm's :class:`FaultProxy` (GETs, faults, the
        ``available``, noticed and attachment times).
    :param project_id: the lab project (other projects are ignored).
    :param wall_s: real seconds from the first POST to the settled state.
    :returns: a dict with :data:`KEYS` (volume counts from cinder; each
        volume is the server's whose request id created it, as the proxy
        saw the POST) plus ``attach_lag_p50_s``/``p95``,
        ``faults_injected``, ``requests``, ``wall_s``,
        ``volumes_by_status``, ``not_settled``. The detection lag of an
        ACTIVE server's volume runs from cinder's ``updated_at`` (the
        ``available`` save) to the first ``GET`` that answered
        ``available``: when nova's wait could first know. The attach lag
        runs to nova's ``POST /attachments``: the detection plus nova's own
        steps before the attach (its GET of the volume, every arm alike).
    """
    def mine(vols):
        return [v for v in vols if v.get('os-vol-tenant-attr:tenant_id',
                                         project_id) == project_id]

    volumes, left = mine(volumes), mine(left)
    active = [r for r in records if r.get('status') == 'ACTIVE']
    error = [r for r in records if r.get('status') == 'ERROR']
    owned = {v for r in active for v in r.get('volumes', [])}
    by_request = collections.Counter(
        proxy.names.get(v['id'], v['id']) for v in volumes)
    lags, attach_lags, boots = [], [], []
    for record in active:
        for volume_id in record.get('volumes', []):
            done = proxy.available_at.get(volume_id)
            if done is None:
                continue
            for when, into in ((proxy.noticed_at.get(volume_id), lags),
                               (proxy.attached_at.get(volume_id),
                                attach_lags)):
                if when is not None:
                    into.append(max(0.0, when - done))
        if record.get('active_at'):
            boots.append(record['active_at'] - record['posted_at'])
    gets = sum(proxy.volume_gets.values())
    ok_gets = sum(proxy.volume_gets.get(v, 0) for v in owned)
    faults = collections.Counter(fault_reason(r) for r in records
                                 if r.get('status') != 'ACTIVE')
    return {
        'servers': len(records),
        'active': len(active),
        'error': len(error),
        'faults': dict(sorted(faults.items())),
        'volumes': len(volumes),
        'duplicates': sum(n - 1 for n in by_request.values() if n > 1),
        'leaked': len([v for v in volumes if v['id'] not in owned]),
        'left_after_delete': len(left),
        'in_error': len([v for v in volumes if v['status'] == 'error']),
        'gets_per_boot': round(gets / len(records), 2) if records else 0.0,
        'gets_per_ok_boot': (round(ok_gets / len(active), 2) if active
                             else None),
        'detect_lag_p50_s': _round(metrics.percentile(lags, 0.50)),
        'detect_lag_p95_s': _round(metrics.percentile(lags, 0.95)),
        'attach_lag_p50_s': _round(metrics.percentile(attach_lags, 0.50)),
        'attach_lag_p95_s': _round(metrics.percentile(attach_lags, 0.95)),
        'boot_seconds_p50': _round(metrics.percentile(boots, 0.50)),
        'boot_seconds_p95': _round(metrics.percentile(boots, 0.95)),
        'wall_s': round(wall_s, 1),
        'not_settled': len(records) - len(active) - len(error),
        'volumes_by_status': dict(sorted(collections.Counter(
            v['status'] for v in volumes).items())),
        'faults_injected': dict(sorted(proxy.injected.items())),
        'requests': {'%s %s' % key: n
                     for key, n in sorted(proxy.requests.items())},
    }


def _enter(stack, fixture):
    """``stack.enter_context(fixture)``, raising the fixture's own error.

    A fixture whose ``setUp`` fails raises ``MultipleExceptions``; the lab's
    callers expect the :class:`bdm_guard_lab.exception.LabError` inside.
    """
    try:
        return stack.enter_context(fixture)
    except fixtures.MultipleExceptions as exc:
        raise exc.args[0][1]


def _nova_progress(tracker):
    def report(event):
        tracker.phase = event['phase']
        with tracker.lock:
            tracker.done, tracker.failed = event['done'], event['failed']
        tracker.report()
    return report


def _broker(stack):
    """Start the lab's RabbitMQ with the pool queues' expiry policy.

    :returns: its transport URL.
    """
    rabbit = _enter(stack, broker.RabbitMQ())
    conf = opts.get_conf(None)
    conf.set_override('transport_url', rabbit.url, opts.EVENTS_GROUP)
    policy = guard_events.queue_policy(conf)
    if policy:
        rabbit.set_policy(policy['name'], policy['pattern'],
                          policy['definition'], policy['apply-to'])
    return rabbit.url


@contextlib.contextmanager
def _lag_from_first_create(galera, timeout, prox):
    """Make the last node lag from the first ``POST /volumes`` on.

    nova schedules and starts its builds before it creates their volumes,
    so a lag taken when the servers are posted would end before most
    creates; it starts when the proxy sees the first one instead, for
    ``galera.lag_seconds``, while the boots go on.

    :param galera: the :class:`~bdm_guard_lab.db.lagging_galera.GaleraLab`.
    :param timeout: seconds to wait for that first create.
    :param prox: the arm's :class:`FaultProxy`.
    """
    errors, over = [], threading.Event()

    def lag():
        if not prox.first_create.wait(timeout) or over.is_set():
            return
        try:
            with galera.lag():
                pass
        except exception.LabError as exc:
            errors.append(exc)

    thread = threading.Thread(target=lag, name='galera-lag', daemon=True)
    thread.start()
    try:
        yield
    finally:
        if not prox.first_create.is_set():
            # No create came: wake the thread with nothing to do.
            over.set()
            prox.first_create.set()
        thread.join()
    if errors:
        raise errors[0]


def run_arm(arm, scenario, *, servers=None, time_scale=1.0, progress=None,
            galera=None, settle_timeout=900.0, nova_series=None,
            debug=False, db_variant=galera_variants.MULTI_WRITER.name):
    """Run one nova arm against a fresh cinder and a fresh nova.

    :param arm: one of :data:`ARMS`.
    :param scenario: a :class:`bdm_guard_lab.faults.scenario.Scenario`.
    :param servers: servers to boot at once (default ``scenario.volumes``).
    :param time_scale: factor on cinder's durations and the proxy's delays
        (nova's clocks are real).
    :param progress: ``callback(arm, done, total, failed, elapsed_s,
        phase)``; phases ``starting cinder``, ``starting nova``,
        ``posting``, ``booting``, ``settling``, ``deleting``, ``done``.
    :param galera: a started :class:`bdm_guard_lab.db.lagging_galera.
        GaleraLab`: stock cinder on a fresh database configured as
        ``db_variant`` says, the last node lagging during the boots
        (instead of the scenario's simulated lag). None: sqlite.
    :param db_variant: with ``galera``, a
        :data:`bdm_guard_lab.db.variants.NAMES` entry.
    :param settle_timeout: real seconds for every server to become ACTIVE
        or ERROR.
    :param nova_series: the nova series folder for ``patched`` (default the
        source tree's ``patches/nova``).
    :param debug: nova and cinder log at DEBUG.
    :returns: :func:`summarize`'s figures plus ``arm``, ``nova`` (what runs:
        ``guard`` mode and replaced methods, or the applied patches),
        ``server_records``; with ``galera`` the DB figures. For a patched
        arm whose series does not apply, every figure of :data:`KEYS` but
        ``servers`` is None and ``arm_error`` names the patch.
    :raises ValueError: unknown arm.
    :raises bdm_guard_lab.exception.LabError: cinder or nova did not start.
    """
    if arm not in ARMS:
        raise ValueError('arm must be one of %s' % (ARMS,))
    total = servers or scenario.volumes
    tracker = library_arms.Progress(
        arm if galera is None else '%s/%s' % (arm, db_variant), total,
        progress)
    tracker.report()
    db, lag = {}, contextlib.nullcontext
    if galera is not None:
        scenario = galera_lab.without_simulated_lag(scenario)
        db = galera.cinder_kwargs('cinder_%s' % arm, db_variant)
        lag = functools.partial(_lag_from_first_create, galera,
                                settle_timeout)
    with contextlib.ExitStack() as stack:
        nova_path, about = None, {}
        if arm == 'patched':
            try:
                copy = _enter(stack, patched_nova.PatchedNova(nova_series))
            except exception.PatchDoesNotApply as exc:
                LOG.error('%s', exc)
                tracker.set_phase('done')
                return dict(dict.fromkeys(KEYS), arm=arm, servers=total,
                            arm_error=str(exc))
            nova_path = copy.path
            about['patches'] = copy.applied
        events_url = None
        if arm == 'events':
            events_url = _broker(stack)
            db['notification_url'] = events_url
        svc = _enter(stack, cinder_service.CinderService(
            create_seconds=scenario.create_seconds,
            create_jitter=scenario.create_jitter,
            download_seconds_per_gib=scenario.download_seconds_per_gib,
            time_scale=time_scale, seed=scenario.seed, service_requests=True,
            debug=debug, **db))
        prox = _enter(stack, lab_proxy.FaultProxy(
            svc.base_url, scenario, time_scale=time_scale,
            project_id=svc.project_id))
        tracker.set_phase('starting nova')
        nova = _enter(stack, nova_service.NovaService(
            '%s/v3/%%(project_id)s' % prox.base_url, svc.project_id,
            mode=arm, computes=computes_for(total), nova_path=nova_path,
            debug=debug, events_url=events_url))
        about.update(nova.ready)
        about.pop('event', None)
        stack.enter_context(tracker.ticking())
        start = time.monotonic()
        with lag(prox):
            records = nova.boot(total, scenario.seed, scenario.size_gb,
                                settle_timeout=settle_timeout,
                                progress=_nova_progress(tracker))
        wall = time.monotonic() - start
        tracker.set_phase('settling')
        # On Galera stock cinder leaves volumes in "creating" for good: wait
        # as the library arms do, then count them stuck. After the delete,
        # wait only for the deletes (what is stuck does not move).
        settle = 300.0 if galera is None else metrics.GALERA_SETTLE_S
        found = svc.wait_settled(timeout=settle)
        tracker.done, tracker.failed = total, 0
        tracker.set_phase('deleting')
        deleted = nova.delete_all(progress=_nova_progress(tracker))
        after_delete = {} if galera is None else {'pending': ('deleting',)}
        left = svc.wait_settled(timeout=settle, **after_delete)
        figures = summarize(records, found, left, prox,
                            project_id=svc.project_id, wall_s=wall)
        if galera is not None:
            svc.stop()
            figures.update(metrics.db_figures(
                found, svc.db_errors(), prox.get_latencies, galera.last_lag,
                db_variant))
    tracker.set_phase('done')
    figures.update({'arm': arm, 'nova': about, 'server_records': records,
                    'servers_not_deleted': deleted['remaining']})
    return figures
