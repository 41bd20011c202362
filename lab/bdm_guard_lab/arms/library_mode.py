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

"""The demo's library mode: nova's create and wait against bdm-guard's.

:func:`run_arm` starts a fresh cinder
(:class:`~bdm_guard_lab.cinder.service.CinderService`) and a fresh fault
proxy, boots ``volumes`` image-backed volumes at once (one thread per
boot, like one compute host each), waits for cinder to settle and reads
the figures from cinder's API (:mod:`bdm_guard_lab.arms.metrics`). No nova
service runs: each boot calls the create and the wait in this process.

Arms (:data:`ARMS`):

* ``stock``: nova 34's own create and wait, or the line-for-line model
  when nova is not importable (:mod:`bdm_guard_lab.arms.stock`);
* ``guard``: :func:`bdm_guard.create.create_and_wait` with
  :func:`bdm_guard.create.key_for_bdm` (:class:`GuardBoots`);
* ``events``: ``guard`` woken by cinder's notifications through a real
  RabbitMQ (the parts of :mod:`bdm_guard_lab.arms.guard`).

Every arm runs on the same scaled clock: the lab's cinder and proxy
multiply every duration by ``time_scale``, and each client sleeps
``seconds x time_scale`` while reading a clock that runs ``1 /
time_scale`` times fast.
"""

import concurrent.futures
import contextlib
import time
import uuid

from oslo_log import log as logging

from bdm_guard import cinder
from bdm_guard import create
from bdm_guard import exception
from bdm_guard import wait
from bdm_guard_lab.arms import guard
from bdm_guard_lab.arms import metrics
from bdm_guard_lab.arms import progress as arm_progress
from bdm_guard_lab.arms import stock
from bdm_guard_lab.cinder import service as cinder_service
from bdm_guard_lab.db import lagging_galera as galera_lab
from bdm_guard_lab.db import variants as galera_variants
from bdm_guard_lab.faults import proxy as lab_proxy

LOG = logging.getLogger(__name__)

ARMS = guard.names(guard.LIBRARY)
#: The arms the demo runs when none is chosen (``events`` needs RabbitMQ).
DEFAULT_ARMS = ('stock', 'guard')
_NAMESPACE = uuid.UUID('3b0c7a4e-2f55-5d1e-9a43-7c1d2b6f8e10')


def boot_name(index):
    """The volume name of boot ``index`` (the same in every arm)."""
    return 'lab-boot-%04d' % index


def instance_and_bdm(seed, index):
    """Stable ``(instance_uuid, bdm_uuid)`` for boot ``index``."""
    return (str(uuid.uuid5(_NAMESPACE, '%s:instance:%d' % (seed, index))),
            str(uuid.uuid5(_NAMESPACE, '%s:bdm:%d' % (seed, index))))


class GuardBoots:
    """A guarded arm's boots: bdm-guard's idempotent create and wait.

    :param svc: the :class:`CinderService`.
    :param proxy: the :class:`FaultProxy`.
    :param seed: the scenario seed (for instance/BDM uuids).
    :param time_scale: real seconds per scenario second.
    :param conf: a ConfigOpts with ``[bdm_guard]``, or None for defaults.
    :param waker: ``waker(project_id, time_scale)`` returning one boot's
        waker, taken before the POST and closed after the wait
        (:attr:`bdm_guard_lab.arms.guard.ArmRun.waker`), or None to poll.
    """

    kind = 'bdm_guard'

    def __init__(self, svc, proxy, seed, *, time_scale=1.0, conf=None,
                 waker=None):
        self.svc, self.proxy, self.seed = svc, proxy, seed
        self.conf = conf
        self.clock = stock.ScaledTime(time_scale)
        self.scale = time_scale
        self.waker = waker

    def _monotonic(self):
        return time.monotonic() / self.scale

    def boot(self, name, size_gb, image_id, index):
        """Create and wait like nova with bdm-guard; see NovaStock.boot."""
        client = cinder.VolumeClient(
            self.svc.session(endpoint=self.proxy.endpoint),
            endpoint_override=self.proxy.endpoint)
        instance, bdm = instance_and_bdm(self.seed, index)
        key = create.key_for_bdm(instance, bdm)
        watch = None
        if self.waker is not None:
            watch = self.waker(self.svc.project_id, self.scale)
        try:
            result, _ = create.create_and_wait(
                client, create.VolumeRequest(size_gb, image_id=image_id,
                                             name=name),
                idempotency_key=key, conf=self.conf, sleep=self.clock.sleep,
                clock=self._monotonic, waker=watch,
                budget=wait.Budget.nova_defaults())
        except exception.VolumeWaitError as exc:
            return exc.kwargs.get('volume_id'), 'wait:%s' % type(
                exc).__name__
        except exception.BdmGuardException as exc:
            return None, 'create:%s' % type(exc).__name__
        finally:
            if watch is not None:
                watch.close()
        return result.volume['id'], None


def _boots(run, svc, proxy, seed, time_scale, use_nova):
    """The boots of ``run``'s arm: the stock role's or :class:`GuardBoots`."""
    if run.arm is None:
        return stock.boots(svc, proxy, time_scale, use_nova)
    return GuardBoots(svc, proxy, seed, time_scale=time_scale,
                      conf=run.conf, waker=run.waker)


def run_arm(arm, scenario, *, volumes=None, time_scale=1.0, progress=None,
            use_nova=True, conf=None, settle_timeout=None, galera=None,
            db_variant=galera_variants.MULTI_WRITER.name):
    """Run one arm of the comparison against a fresh cinder.

    :param arm: one of :data:`ARMS`.
    :param scenario: a :class:`bdm_guard_lab.faults.scenario.Scenario`.
    :param volumes: boots (default ``scenario.volumes``).
    :param time_scale: real seconds per scenario second (0 < x <= 1 speeds
        the run up).
    :param progress: ``callback(arm, done, total, failed, elapsed_s,
        phase)``, see :class:`bdm_guard_lab.arms.progress.Progress`.
    :param use_nova: run nova's real code for ``stock`` when importable.
    :param conf: bdm-guard options for the guarded arms (None: defaults).
    :param settle_timeout: real seconds to wait for cinder to settle
        (default 600; :data:`bdm_guard_lab.arms.metrics.GALERA_SETTLE_S`
        with ``galera``).
    :param galera: a started
        :class:`bdm_guard_lab.db.lagging_galera.GaleraLab`:
        cinder (stock) runs on a fresh database configured as
        ``db_variant`` says, and the scenario's ``visibility_lag`` rules
        give way to the real lag of its last node during the boots. None:
        sqlite, as before.
    :param db_variant: with ``galera``, a
        :data:`bdm_guard_lab.db.variants.NAMES` entry.
    :returns: the figures (:func:`bdm_guard_lab.arms.metrics.summarize`) plus
        ``stock_impl`` (``nova`` or ``model``) for the stock arm, the arm's
        parts' figures (``event_counts`` for ``events``), and with
        ``galera`` the DB figures
        (:func:`bdm_guard_lab.arms.metrics.db_figures`).
    :raises ValueError: unknown arm or database variant.
    :raises bdm_guard_lab.exception.LabError: cinder did not start.
    """
    if arm not in ARMS:
        raise ValueError('arm must be one of %s' % (ARMS,))
    total = volumes or scenario.volumes
    if settle_timeout is None:
        settle_timeout = (600.0 if galera is None
                          else metrics.GALERA_SETTLE_S)
    db, lag = {}, contextlib.nullcontext
    if galera is not None:
        scenario = galera_lab.without_simulated_lag(scenario)
        db = galera.cinder_kwargs('cinder_%s' % arm, db_variant)
        lag = galera.lag
    label = arm if galera is None else '%s/%s' % (arm, db_variant)
    tracker = arm_progress.Progress(label, total, progress)
    tracker.report()
    with contextlib.ExitStack() as stack:
        run = guard.start(arm, guard.LIBRARY, stack, conf=conf)
        svc = stack.enter_context(cinder_service.CinderService(
            create_seconds=scenario.create_seconds,
            create_jitter=scenario.create_jitter,
            download_seconds_per_gib=scenario.download_seconds_per_gib,
            time_scale=time_scale, seed=scenario.seed,
            **dict(db, **run.cinder)))
        prox = stack.enter_context(lab_proxy.FaultProxy(
            svc.base_url, scenario, time_scale=time_scale,
            project_id=svc.project_id))
        boots = _boots(run, svc, prox, scenario.seed, time_scale, use_nova)
        found, figures = _boot_all(boots, svc, prox, scenario, total,
                                   tracker, lag=lag, time_scale=time_scale,
                                   settle_timeout=settle_timeout)
    if run.arm is None:
        figures['stock_impl'] = boots.kind
    figures.update(run.extra_figures())
    if galera is not None:
        figures.update(metrics.db_figures(
            found, svc.db_errors(), prox.get_latencies, galera.last_lag,
            db_variant))
    return figures


def _boot_all(boots, svc, prox, scenario, total, tracker, *, lag,
              time_scale, settle_timeout):
    """Boot ``total`` volumes at once, wait for cinder to settle, read.

    :returns: ``(found, figures)``: cinder's volumes once settled and
        :func:`bdm_guard_lab.arms.metrics.summarize`'s figures.
    """
    image = svc.image_id if scenario.image else None
    tracker.set_phase('booting')

    def one(index):
        name = boot_name(index)
        vol, reason = boots.boot(name, scenario.size_gb, image, index)
        tracker.tick(failed=reason is not None)
        return metrics.Boot(name, vol, reason, time.time())

    start = time.monotonic()
    with tracker.ticking():
        with lag(), concurrent.futures.ThreadPoolExecutor(total) as pool:
            done = list(pool.map(one, range(total)))
        wall = time.monotonic() - start
        tracker.set_phase('settling')
        found = svc.wait_settled(timeout=settle_timeout)
    tracker.set_phase('done')
    figures = metrics.summarize(done, found, prox, wall_s=wall,
                                time_scale=time_scale,
                                project_id=svc.project_id)
    return found, figures
