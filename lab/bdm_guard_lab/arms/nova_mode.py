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

"""The demo's nova mode: servers booted through a real nova on real cinder.

:func:`run_arm` starts, for one arm, a fresh cinder
(:class:`~bdm_guard_lab.cinder.service.CinderService`), a fresh fault proxy
in front of it and a fresh nova (:class:`~bdm_guard_lab.nova.service.
NovaService`) whose ``[cinder] endpoint_template`` is the proxy. It boots
the servers through nova's API at once, waits until each is ACTIVE or
ERROR, reads the figures from nova's and cinder's APIs, deletes every
server and counts the volumes left (:func:`summarize`).

Arms (:data:`ARMS`): ``stock``, nova 34 as installed, and the guarded arms
of :data:`bdm_guard_lab.arms.guard.ARMS` that run in nova mode
(``launcher``, ``patched``, ``events``, ``route-b``): their parts start
before cinder,
and the lab's nova runs in the arm's ``nova`` mode. A patch that does not
apply ends the ``patched`` arm with ``arm_error`` set, naming the patch.

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

from oslo_log import log as logging

from bdm_guard_lab.arms import guard
from bdm_guard_lab.arms import metrics
from bdm_guard_lab.arms import progress as arm_progress
from bdm_guard_lab.cinder import service as cinder_service
from bdm_guard_lab.db import lagging_galera as galera_lab
from bdm_guard_lab.db import variants as galera_variants
from bdm_guard_lab import exception
from bdm_guard_lab.faults import proxy as lab_proxy
from bdm_guard_lab.nova import service as nova_service

LOG = logging.getLogger(__name__)

ARMS = guard.names(guard.NOVA)
#: The arms the demo runs when none is chosen (all but ``route-b``).
DEFAULT_ARMS = guard.default_names(guard.NOVA)
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
#: ``[DEFAULT] max_concurrent_builds`` (10 by default) builds at once; the
#: lab starts more computes, each with that limit (the process's pool has
#: 10 threads per compute: :func:`bdm_guard_lab.nova.harness.
#: builds_per_process`), and plans below 10 per compute.
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


def per_server(records, proxy):
    """Each server's own figures, by name, to compare arms boot by boot.

    A server's name (``lab-boot-<n>``) is its slot: in every arm of one
    run it carries the same request id, so its volume gets the same
    durations from cinder's driver and the same fault draws from the proxy
    (:func:`bdm_guard_lab.nova.harness.request_id`).

    :param records: the servers (:meth:`NovaService.boot`).
    :param proxy: the arm's :class:`FaultProxy`.
    :returns: ``{name: {"status": str, "boot_s": float or None, "lag_s":
        float or None, "gets": int}}``: nova's status (``POST failed`` when
        the POST was refused), seconds from ``POST /servers`` to nova's
        ``launched_at`` (ACTIVE servers), the detection lag of its volume
        (as in :func:`summarize`; the largest when it has several) and the
        ``GET /volumes/<id>`` requests for its attached volumes.
    """
    servers = {}
    for record in records:
        lags = []
        for volume_id in record.get('volumes', []):
            done = proxy.available_at.get(volume_id)
            when = proxy.noticed_at.get(volume_id)
            if done is not None and when is not None:
                lags.append(max(0.0, when - done))
        boot = None
        if record.get('status') == 'ACTIVE' and record.get('active_at'):
            boot = _round(record['active_at'] - record['posted_at'])
        servers[record['name']] = {
            'status': record.get('status') or (
                'POST failed' if record.get('post_error') else None),
            'boot_s': boot,
            'lag_s': _round(max(lags)) if lags else None,
            'gets': sum(proxy.volume_gets.get(v, 0)
                        for v in record.get('volumes', [])),
        }
    return servers


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
        ``volumes_by_status``, ``not_settled`` and ``per_server``
        (:func:`per_server`). The detection lag of an
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
        'per_server': per_server(records, proxy),
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
        'keyed_creates': proxy.keyed_creates['sent'],
        'replayed_creates': proxy.keyed_creates['replayed'],
    }


def _nova_progress(tracker):
    def report(event):
        tracker.phase = event['phase']
        with tracker.lock:
            tracker.done, tracker.failed = event['done'], event['failed']
        tracker.report()
    return report


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


#: The scenario fields cinder's driver takes its durations from: cases
#: that agree on them can share one cinder (:func:`run_cases`).
CINDER_FIELDS = ('seed', 'create_seconds', 'create_jitter',
                 'download_seconds_per_gib')


def same_cinder(one, other):
    """Whether two scenarios give every volume the same cinder durations.

    :param one: a :class:`bdm_guard_lab.faults.scenario.Scenario`.
    :param other: another.
    :returns: bool; when true, server ``n`` of either scenario gets the
        same create and download times from the lab's cinder, so the two
        can run one after the other on one cinder (:func:`run_cases`).
    """
    return all(getattr(one, name) == getattr(other, name)
               for name in CINDER_FIELDS)


def run_arm(arm, scenario, *, servers=None, time_scale=1.0, progress=None,
            galera=None, settle_timeout=900.0, nova_series=None,
            debug=False, db_variant=galera_variants.MULTI_WRITER.name,
            keystoneauth_series=None, cinderclient_series=None,
            cinder_series=None):
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
    :param keystoneauth_series: the keystoneauth series folder for
        ``patched``, applied to a copy of the installed keystoneauth1 beside
        the patched nova; default None: the source tree's
        ``patches/keystoneauth``; ``'none'``: keystoneauth1 as installed.
    :param cinderclient_series: the python-cinderclient series folder for
        ``patched``, applied likewise; default None: the source tree's
        ``patches/python-cinderclient``; ``'none'``: as installed.
    :param cinder_series: the cinder series folder for ``patched``, applied
        to a copy of the installed cinder that the arm's cinder runs;
        default None: the source tree's ``patches/cinder``; ``'none'``:
        cinder as installed.
    :param debug: nova and cinder log at DEBUG.
    :returns: :func:`summarize`'s figures plus ``arm``, ``nova`` (what runs:
        ``guard`` mode and replaced methods; for ``patched`` ``patches``
        and ``keystoneauth_patches``, the applied file names,
        ``keystoneauth`` and ``keystoneauth_base``, the installed and the
        series' keystoneauth1 versions, and ``keystoneauth_note`` when they
        differ; ``cinderclient_patches`` and the like for
        python-cinderclient; ``cinder_patches``), ``server_records``,
        ``scenario`` (its name), ``setup_s`` (real seconds to start
        cinder, the proxy and nova) and ``after``
        (None: the services were fresh); with ``galera`` the DB figures.
        For a patched arm whose series does not apply, every figure of
        :data:`KEYS` but ``servers`` is None and ``arm_error`` names the
        patch.
    :raises ValueError: unknown arm.
    :raises bdm_guard_lab.exception.LabError: cinder or nova did not start.
    """
    return run_cases(arm, [(scenario, servers)], time_scale=time_scale,
                     progress=progress, galera=galera,
                     settle_timeout=settle_timeout, nova_series=nova_series,
                     debug=debug, db_variant=db_variant,
                     keystoneauth_series=keystoneauth_series,
                     cinderclient_series=cinderclient_series,
                     cinder_series=cinder_series)[0]


def run_cases(arm, cases, *, time_scale=1.0, progress=None, galera=None,
              settle_timeout=900.0, nova_series=None, debug=False,
              db_variant=galera_variants.MULTI_WRITER.name,
              keystoneauth_series=None, cinderclient_series=None,
              cinder_series=None):
    """Run one nova arm's cases, one after the other, on one cinder and nova.

    The services start once, fresh, and the cases run on them in order:
    each boots its servers, waits for them and for cinder to settle, reads
    the figures, deletes every server and waits for cinder again, as
    :func:`run_arm` does. Before each case after the first the proxy takes
    that case's scenario and forgets its counters
    (:meth:`~bdm_guard_lab.faults.proxy.FaultProxy.reset_counters`), so its
    fault draws are those of a fresh proxy, and the volumes that the cases
    before left in cinder (none, when their deletes went through) are not
    counted. nova runs :func:`computes_for` the largest case's servers in
    every case. What differs from fresh services: nova's and cinder's
    databases hold the earlier cases' deleted rows, their caches are warm,
    and a launcher's process keeps what it learned in the earlier waits.

    :param arm: one of :data:`ARMS`.
    :param cases: ``[(scenario, servers or None)]``, at least one; the
        scenarios must agree on cinder's durations (:func:`same_cinder`).
        Servers default to the scenario's.
    :param time_scale: as :func:`run_arm`.
    :param progress: as :func:`run_arm`; with several cases each is
        reported as ``<arm> (<scenario name>)``.
    :param galera: as :func:`run_arm`; only with one case.
    :param settle_timeout: as :func:`run_arm`.
    :param nova_series: as :func:`run_arm`.
    :param keystoneauth_series: as :func:`run_arm`.
    :param cinderclient_series: as :func:`run_arm`.
    :param cinder_series: as :func:`run_arm`.
    :param debug: as :func:`run_arm`.
    :param db_variant: as :func:`run_arm`.
    :returns: one :func:`run_arm` figures dict per case, in order; the
        first case's ``setup_s`` is the services' start, later cases have
        ``setup_s`` 0 and ``after`` naming the scenario of the case before.
    :raises ValueError: unknown arm, no case, cases cinder cannot share,
        or several cases on Galera.
    :raises bdm_guard_lab.exception.LabError: cinder or nova did not start.
    """
    cases = _check_cases(arm, cases, galera)
    label = arm if galera is None else '%s/%s' % (arm, db_variant)
    labels = [label if len(cases) == 1 else '%s (%s)' % (label, scen.name)
              for scen, _ in cases]
    tracker = arm_progress.Progress(labels[0], cases[0][1], progress)
    tracker.report()
    started = time.monotonic()
    db, lag = {}, contextlib.nullcontext
    if galera is not None:
        cases = [(galera_lab.without_simulated_lag(scen), total)
                 for scen, total in cases]
        db = galera.cinder_kwargs('cinder_%s' % arm, db_variant)
        lag = functools.partial(_lag_from_first_create, galera,
                                settle_timeout)
    with contextlib.ExitStack() as stack:
        try:
            run = guard.start(arm, guard.NOVA, stack,
                              nova_series=nova_series,
                              keystoneauth_series=keystoneauth_series,
                              cinderclient_series=cinderclient_series,
                              cinder_series=cinder_series)
        except exception.PatchDoesNotApply as exc:
            LOG.error('%s', exc)
            tracker.set_phase('done')
            return [dict(dict.fromkeys(KEYS), arm=arm, servers=total,
                         scenario=scen.name, arm_error=str(exc))
                    for scen, total in cases]
        svc, prox, nova = _start(run, cases, tracker, time_scale=time_scale,
                                 db=db, debug=debug)
        setup = time.monotonic() - started
        results, after = [], None
        for index, (scen, total) in enumerate(cases):
            if index:
                tracker = arm_progress.Progress(labels[index], total,
                                                progress)
                tracker.set_phase('posting')
            figures = _run_case(
                svc, prox, nova, scen, total, tracker,
                settle_timeout=settle_timeout, galera=galera, lag=lag,
                db_variant=db_variant, fresh=not index)
            figures.update(run.extra_figures())
            _check_event_path(figures)
            figures.update({'arm': arm, 'nova': dict(run.about),
                            'scenario': scen.name, 'after': after,
                            'setup_s': round(setup, 1) if not index
                            else 0.0})
            results.append(figures)
            after = scen.name
    return results


def _check_cases(arm, cases, galera):
    """``cases`` with their servers filled in, once checked.

    :raises ValueError: see :func:`run_cases`.
    """
    if arm not in ARMS:
        raise ValueError('arm must be one of %s' % (ARMS,))
    cases = [(scen, servers or scen.volumes) for scen, servers in cases]
    if not cases:
        raise ValueError('run_cases needs at least one case')
    first = cases[0][0]
    if not all(same_cinder(first, scen) for scen, _ in cases[1:]):
        raise ValueError('the cases differ in %s: they cannot share one '
                         'cinder' % ', '.join(CINDER_FIELDS))
    if galera is not None and len(cases) > 1:
        raise ValueError('Galera arms run one case each')
    return cases


def _check_event_path(figures):
    """Route B: whether every ACTIVE server's volume got its event.

    Sets ``event_path`` (bool) when the arm counted nova-api's
    ``volume_created_events``: true when there was at least one per
    volume of an ACTIVE server. With the GETs per ACTIVE boot (about two
    in the wait, one after the create and one after the event, plus the
    attach's) it tells that the boots waited on the event, not polled.
    """
    if figures.get('volume_created_events') is None:
        return
    volumes = sum(len(r.get('volumes', ())) for r in
                  figures.get('server_records', ())
                  if r.get('status') == 'ACTIVE')
    figures['event_path'] = bool(
        volumes and figures['volume_created_events'] >= volumes)


def _start(run, cases, tracker, *, time_scale, db, debug):
    """Start cinder, the fault proxy and nova for ``run``'s arm.

    Each goes into ``run.stack``; cinder and nova take what the arm's parts
    handed on (``run.cinder``, ``run.nova``), and ``run.about`` gets what
    nova says it runs.

    :returns: ``(svc, prox, nova)``.
    :raises bdm_guard_lab.exception.LabError: a service did not start.
    """
    stack, scenario = run.stack, cases[0][0]
    svc = guard.enter(stack, cinder_service.CinderService(
        create_seconds=scenario.create_seconds,
        create_jitter=scenario.create_jitter,
        download_seconds_per_gib=scenario.download_seconds_per_gib,
        time_scale=time_scale, seed=scenario.seed, service_requests=True,
        debug=debug, **dict(db, **run.cinder)))
    prox = guard.enter(stack, lab_proxy.FaultProxy(
        svc.base_url, scenario, time_scale=time_scale,
        project_id=svc.project_id))
    tracker.set_phase('starting nova')
    nova = guard.enter(stack, nova_service.NovaService(
        '%s/v3/%%(project_id)s' % prox.base_url, svc.project_id,
        mode=run.nova_mode, computes=computes_for(max(t for _, t in cases)),
        debug=debug, **run.nova))
    run.about.update(nova.ready)
    run.about.pop('event', None)
    run.services.update(cinder=svc, proxy=prox, nova=nova)
    return svc, prox, nova


def _run_case(svc, prox, nova, scenario, total, tracker, *, settle_timeout,
              galera, lag, db_variant, fresh):
    """Boot one case's servers on running services; read; delete.

    :returns: :func:`summarize`'s figures plus ``server_records`` and
        ``servers_not_deleted``; with ``galera`` the DB figures.
    """
    before = () if fresh else {v['id'] for v in svc.list_volumes()}
    if not fresh:
        prox.scenario = scenario
        prox.reset_counters()
    with tracker.ticking():
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
        found = svc.wait_settled(timeout=settle, ignore=before)
        tracker.done, tracker.failed = total, 0
        tracker.set_phase('deleting')
        deleted = nova.delete_all(progress=_nova_progress(tracker))
        after_delete = {} if galera is None else {'pending': ('deleting',)}
        left = svc.wait_settled(timeout=settle, ignore=before,
                                **after_delete)
        figures = summarize(records, found, left, prox,
                            project_id=svc.project_id, wall_s=wall)
        if galera is not None:
            svc.stop()
            figures.update(metrics.db_figures(
                found, svc.db_errors(), prox.get_latencies, galera.last_lag,
                db_variant))
    tracker.set_phase('done')
    figures.update({'server_records': records,
                    'servers_not_deleted': deleted['remaining']})
    return figures
