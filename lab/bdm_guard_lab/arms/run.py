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

"""Two arms, one scenario: a bulk boot against real cinder through faults.

:func:`run_arm` starts a fresh cinder (:class:`~bdm_guard_lab.
cinder_service.CinderService`) and a fresh fault proxy, boots ``volumes``
image-backed volumes at once (one thread per boot, like one compute host
each), waits for cinder to settle and reads the figures from cinder's API
(:mod:`bdm_guard_lab.arms.metrics`).

* ``stock``: nova 34's own create and wait
(:mod:`bdm_guard_lab.arms.nova_stock`).
* ``guard``: :func:`bdm_guard.create.create_and_wait` with
  :func:`bdm_guard.create.key_for_bdm`.
* ``events``: ``guard`` woken by cinder's notifications through a real
  RabbitMQ (:mod:`bdm_guard_lab.arms.events`).

Both arms run on the same scaled clock: the lab's cinder and proxy divide
every duration by ``1 / time_scale`` and each client sleeps ``seconds x
time_scale`` while reading a clock that runs ``1 / time_scale`` times fast.
"""

import concurrent.futures
import contextlib
import threading
import time
import uuid

from oslo_log import log as logging

from bdm_guard import cinder
from bdm_guard import create
from bdm_guard import exception
from bdm_guard_lab.arms import metrics
from bdm_guard_lab.arms import nova_stock as nova_arm
from bdm_guard_lab.cinder import service as cinder_service
from bdm_guard_lab.db import lagging_galera as galera_lab
from bdm_guard_lab.db import variants as galera_variants
from bdm_guard_lab.faults import proxy as lab_proxy

LOG = logging.getLogger(__name__)

ARMS = ('stock', 'guard', 'events')
#: The arms the demo runs when none is chosen (``events`` needs RabbitMQ).
DEFAULT_ARMS = ('stock', 'guard')
_NAMESPACE = uuid.UUID('3b0c7a4e-2f55-5d1e-9a43-7c1d2b6f8e10')
#: nova 34 defaults (nova/conf/compute.py).
NOVA_ALLOCATE_RETRIES = 60
NOVA_ALLOCATE_RETRIES_INTERVAL = 3


def boot_name(index):
    """The volume name of boot ``index`` (the same in both arms)."""
    return 'lab-boot-%04d' % index


def instance_and_bdm(seed, index):
    """Stable ``(instance_uuid, bdm_uuid)`` for boot ``index``."""
    return (str(uuid.uuid5(_NAMESPACE, '%s:instance:%d' % (seed, index))),
            str(uuid.uuid5(_NAMESPACE, '%s:bdm:%d' % (seed, index))))


class Progress:
    """Counts finished boots for a progress display, and ticks.

    :param arm: ``stock`` or ``guard``.
    :param total: int, boots in the arm.
    :param callback: ``callback(arm, done, total, failed, elapsed_s,
        phase)`` or None; ``phase`` is ``starting cinder``, ``booting``,
        ``settling`` (waiting for cinder to finish what it was asked) or
        ``done``.
    :param tick_seconds: float, real seconds between reports while
        :meth:`ticking` (so that the display moves while no boot ends).
    """

    def __init__(self, arm, total, callback=None, tick_seconds=1.0):
        self.arm, self.total, self.callback = arm, total, callback
        self.done = self.failed = 0
        self.phase = 'starting cinder'
        self.tick_seconds = tick_seconds
        self.lock = threading.Lock()
        self.start = time.monotonic()

    def tick(self, failed=False):
        with self.lock:
            self.done += 1
            self.failed += int(failed)
        self.report()

    def set_phase(self, phase):
        self.phase = phase
        self.report()

    def report(self):
        if self.callback:
            self.callback(self.arm, self.done, self.total, self.failed,
                          time.monotonic() - self.start, self.phase)

    @contextlib.contextmanager
    def ticking(self):
        """Report every ``tick_seconds`` in a thread while the block runs."""
        stop = threading.Event()

        def run():
            while not stop.wait(self.tick_seconds):
                self.report()

        thread = threading.Thread(target=run, name='progress', daemon=True)
        if self.callback:
            thread.start()
        try:
            yield self
        finally:
            stop.set()
            if thread.is_alive():
                thread.join()


class GuardArm:
    """Boots with bdm-guard's idempotent create and adaptive wait.

    :param svc: the :class:`CinderService`.
    :param proxy: the :class:`FaultProxy`.
    :param seed: the scenario seed (for instance/BDM uuids).
    :param time_scale: real seconds per scenario second.
    :param conf: a ConfigOpts with ``[bdm_guard]``, or None for defaults.
    """

    kind = 'bdm_guard'

    def __init__(self, svc, proxy, seed, *, time_scale=1.0, conf=None):
        self.svc, self.proxy, self.seed = svc, proxy, seed
        self.conf = conf
        self.clock = nova_arm.ScaledTime(time_scale)
        self.scale = time_scale

    def _monotonic(self):
        return time.monotonic() / self.scale

    def boot(self, name, size_gb, image_id, index):
        """Create and wait like nova with bdm-guard; see NovaStock.boot."""
        client = cinder.VolumeClient(
            self.svc.session(endpoint=self.proxy.endpoint),
            endpoint_override=self.proxy.endpoint)
        instance, bdm = instance_and_bdm(self.seed, index)
        key = create.key_for_bdm(instance, bdm)
        try:
            result, _ = create.create_and_wait(
                client, size_gb, idempotency_key=key, image_id=image_id,
                name=name, conf=self.conf, sleep=self.clock.sleep,
                clock=self._monotonic,
                allocate_retries=NOVA_ALLOCATE_RETRIES,
                allocate_retries_interval=NOVA_ALLOCATE_RETRIES_INTERVAL)
        except exception.VolumeWaitError as exc:
            return exc.kwargs.get('volume_id'), 'wait:%s' % type(
                exc).__name__
        except exception.BdmGuardException as exc:
            return None, 'create:%s' % type(exc).__name__
        return result.volume['id'], None


def _stock(svc, proxy, time_scale, use_nova):
    if use_nova and nova_arm.nova_available():
        template = '%s/v3/%%(project_id)s' % proxy.base_url
        return nova_arm.NovaStock(template, svc.user_id, svc.project_id,
                                  time_scale=time_scale)
    factory = (lambda: cinder.VolumeClient(
        svc.session(endpoint=proxy.endpoint),
        endpoint_override=proxy.endpoint))
    return nova_arm.ModelStock(factory, time_scale=time_scale)


def run_arm(arm, scenario, *, volumes=None, time_scale=1.0, progress=None,
            use_nova=True, conf=None, settle_timeout=None, galera=None,
            db_variant=galera_variants.MULTI_WRITER.name):
    """Run one arm of the comparison against a fresh cinder.

    :param arm: ``stock`` or ``guard``.
    :param scenario: a :class:`bdm_guard_lab.faults.scenario.Scenario`.
    :param volumes: boots (default ``scenario.volumes``).
    :param time_scale: real seconds per scenario second (0 < x <= 1 speeds
        the run up).
    :param progress: ``callback(arm, done, total, failed, elapsed_s,
        phase)``, see :class:`Progress`.
    :param use_nova: run nova's real code for ``stock`` when importable.
    :param conf: bdm-guard options for ``guard`` (None: defaults).
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
        ``stock_impl`` (``nova`` or ``model``) for the stock arm, and with
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
    db = {}
    lag = contextlib.nullcontext
    if galera is not None:
        scenario = galera_lab.without_simulated_lag(scenario)
        db = galera.cinder_kwargs('cinder_%s' % arm, db_variant)
        lag = galera.lag
    label = arm if galera is None else '%s/%s' % (arm, db_variant)
    tracker = Progress(label, total, progress)
    tracker.report()
    lab = contextlib.ExitStack()
    if arm == 'events':
        from bdm_guard_lab.arms import events as events_arm  # noqa: H306
        events_lab = lab.enter_context(events_arm.EventsLab(conf))
        db['notification_url'] = events_lab.url
    svc = cinder_service.CinderService(
        create_seconds=scenario.create_seconds,
        create_jitter=scenario.create_jitter,
        download_seconds_per_gib=scenario.download_seconds_per_gib,
        time_scale=time_scale, seed=scenario.seed, **db)
    with lab, svc:
        prox = lab_proxy.FaultProxy(svc.base_url, scenario,
                                    time_scale=time_scale,
                                    project_id=svc.project_id)
        with prox:
            if arm == 'stock':
                runner = _stock(svc, prox, time_scale, use_nova)
            elif arm == 'events':
                runner = events_lab.runner(svc, prox, scenario.seed,
                                           time_scale)
            else:
                runner = GuardArm(svc, prox, scenario.seed,
                                  time_scale=time_scale, conf=conf)
            image = svc.image_id if scenario.image else None
            tracker.set_phase('booting')

            def one(index):
                name = boot_name(index)
                if arm == 'stock':
                    vol, reason = runner.boot(name, scenario.size_gb, image)
                else:
                    vol, reason = runner.boot(name, scenario.size_gb, image,
                                              index)
                tracker.tick(failed=reason is not None)
                return metrics.Boot(name, vol, reason, time.time())

            start = time.monotonic()
            with tracker.ticking():
                with lag(), concurrent.futures.ThreadPoolExecutor(
                        total) as pool:
                    boots = list(pool.map(one, range(total)))
                wall = time.monotonic() - start
                tracker.set_phase('settling')
                found = svc.wait_settled(timeout=settle_timeout)
            tracker.set_phase('done')
            figures = metrics.summarize(boots, found, prox, wall_s=wall,
                                        time_scale=time_scale,
                                        project_id=svc.project_id)
    if arm == 'stock':
        figures['stock_impl'] = runner.kind
    if arm == 'events':
        figures.update(events_lab.figures())
    if galera is not None:
        figures.update(metrics.db_figures(
            found, svc.db_errors(), prox.get_latencies, galera.last_lag,
            db_variant))
    return figures
