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

"""The two arms of the scale simulation, over the same boots and faults.

``stock`` runs :mod:`bdm_guard_lab.nova_wait_model` (nova 34's create through
keystoneauth's blind connect retries, then
``_await_block_device_map_created``, then ``_call_wait_func``'s delete on
``VolumeNotCreated``); ``guard`` runs :func:`bdm_guard.create.
create_and_wait`; ``events`` runs it woken by simulated notifications
(:mod:`bdm_guard_lab.sim.events`). All are the real functions, unchanged,
driven by :class:`bdm_guard_lab.sim.engine.Simulation`'s ``sleep`` and
``clock``.
"""

import time
import uuid

from oslo_log import log as logging

from bdm_guard import create
from bdm_guard import exception
from bdm_guard.internal.wait import completion
from bdm_guard import opts
from bdm_guard import outcome as oc
from bdm_guard import testing
from bdm_guard import wait
from bdm_guard_lab import exception as lab_exception
from bdm_guard_lab import nova_wait_model as stock
from bdm_guard_lab.sim import cinder as sim_cinder
from bdm_guard_lab.sim import engine as sim
from bdm_guard_lab.sim import events as sim_events
from bdm_guard_lab.sim import metrics as sim_metrics
from bdm_guard_lab.sim import model as sim_model

LOG = logging.getLogger(__name__)

ARMS = ('stock', 'guard', 'events')
#: The arms run when none is chosen.
DEFAULT_ARMS = ('stock', 'guard')
#: The image every boot copies (any UUID; the simulated glance is implicit).
IMAGE_ID = '6018366c-f658-47a7-9ed3-4fe53a096533'


class Boot:
    """One instance boot: its inputs, and what its arm made of it.

    :ivar index: the boot's number, also the sim's owner tag.
    :ivar size: volume size in GiB.
    :ivar arrival: virtual second the boot reached its host.
    :ivar start: when it got a build slot; ``end`` when its arm returned.
    :ivar volume_id: the volume the boot runs on, None when it failed.
    :ivar reason: failure reason, None on success.
    """

    __slots__ = ('index', 'size', 'arrival', 'start', 'end', 'volume_id',
                 'reason')

    def __init__(self, index, size, arrival):
        self.index = index
        self.size = size
        self.arrival = arrival
        self.start = self.end = None
        self.volume_id = self.reason = None


def make_boots(workload, seed):
    """The boots of a run, the same for both arms.

    :returns: a list of :class:`Boot`.
    """
    boots = []
    for index in range(workload.boots):
        rng = sim_model.stream(seed, index, 'boot')
        boots.append(Boot(index, sim_model.draw_size(workload, rng),
                          rng.uniform(0.0, workload.arrival_window)))
    return boots


def default_conf():
    """A ConfigOpts with ``[bdm_guard]`` at its defaults."""
    return opts.get_conf()


def stock_boot(env, boot, client):
    """Nova 34's image-backed BDM create and wait.

    Models ``DriverVolImageBlockDevice.attach`` -> ``_create_volume`` ->
    ``nova.volume.cinder.API.create`` (cinderclient with
    ``connect_retries=[cinder] http_retries``) -> ``_call_wait_func``
    (``delete_on_termination`` taken as True, as the guard arm's
    ``delete_on_failure``). In nova 34 the BDM records the volume id only
    after the wait succeeds, so a failed boot owns no volume.

    :returns: ``(reason or None, volume_id or None)``.
    """
    work = env.workload
    body = {'size': boot.size, 'imageRef': IMAGE_ID, 'name': '',
            'description': '', 'availability_zone': 'nova',
            'volume_type': None, 'snapshot_id': None, 'metadata': {}}
    result, _sends = stock.ksa_call(lambda: client.create_volume(body),
                                    work.http_retries, env.sim.sleep)
    if result.kind != oc.OK:
        return 'create_%s' % result.kind, None
    volume_id = result.body['id']
    try:
        stock.await_volume(client, volume_id,
                           retries=work.allocate_retries,
                           interval=work.allocate_retries_interval,
                           http_retries=work.http_retries,
                           sleep=env.sim.sleep, clock=env.sim.clock)
    except stock.StockFailure as exc:
        if exc.reason in ('timeout', 'failed_without_reason'):
            # VolumeNotCreated: _call_wait_func deletes the volume.
            stock.ksa_call(lambda: client.delete_volume(volume_id),
                           work.http_retries, env.sim.sleep)
        return exc.reason, None
    return None, volume_id


def events_boot(env, boot, client):
    """:func:`guard_boot` with an event watch taken before the POST."""
    watch = sim_events.watch_for(
        env, env.conf.bdm_guard_events.backstop_interval)
    try:
        return guard_boot(env, boot, client, waker=watch)
    finally:
        watch.close()


def guard_boot(env, boot, client, waker=None):
    """bdm-guard's :func:`bdm_guard.create.create_and_wait` for one BDM.

    :param waker: passed to ``create_and_wait`` (the events arm's watch).
    :returns: ``(reason or None, volume_id or None)``; the reason is the
        exception's class name.
    """
    work = env.workload
    instance_uuid = str(uuid.UUID(int=boot.index + 1, version=4))
    bdm_uuid = str(uuid.UUID(int=(boot.index + 1) << 64, version=4))
    key = create.key_for_bdm(instance_uuid, bdm_uuid)
    # Each simulated host is one nova-compute process: it learns copy
    # times from its own finished waits only.
    learner = env.learners[boot.index % work.hosts]
    rng = sim_model.stream(env.seed, boot.index, 'jitter')

    def wait_func(volume_id, created_at):
        return wait.wait_for_volume(
            client, volume_id, budget=wait.Budget(
                size_gb=boot.size, allocate_retries=work.allocate_retries,
                allocate_retries_interval=work.allocate_retries_interval),
            created_at=created_at, conf=env.conf, sleep=env.sim.sleep,
            clock=env.sim.clock, rng=rng, waker=waker, learner=learner)
    try:
        result, _report = create.create_and_wait(
            client, create.VolumeRequest(boot.size, image_id=IMAGE_ID),
            idempotency_key=key, delete_on_failure=True, conf=env.conf,
            sleep=env.sim.sleep, clock=env.sim.clock, wait_func=wait_func,
            waker=waker)
    except exception.BdmGuardException as exc:
        return type(exc).__name__, None
    return None, result.volume['id']


class _Env:
    def __init__(self, workload, faults, seed, conf):
        self.workload = workload
        self.faults = faults
        self.seed = seed
        self.conf = conf
        self.sim = sim.Simulation()
        self.cinder = sim_cinder.SimCinder(self.sim, workload, seed)
        self.slots = [sim.Semaphore(self.sim, workload.max_concurrent_builds)
                      for _ in range(workload.hosts)]
        self.learners = [completion.Learner() for _ in range(workload.hosts)]


def run_arm(arm, workload, faults, seed=0, conf=None, cinders=None):
    """Simulate every boot of ``workload`` with one arm.

    :param arm: ``"stock"`` or ``"guard"``.
    :param workload: a :class:`bdm_guard_lab.sim.model.Workload`.
    :param faults: a :class:`bdm_guard_lab.sim.model.Faults`.
    :param seed: int; the same seed gives the same boots, volume timings
        and per-boot fault draws in both arms.
    :param conf: a ConfigOpts for the guard arm (defaults if None).
    :param cinders: a dict that gets ``{arm: SimCinder}`` (for the fan-out
        figures), or None.
    :returns: the arm's summary dict (see
        :func:`bdm_guard_lab.sim.metrics.summarize`), with ``rate``, the
        requests that reached cinder-api in each virtual second.
    :raises bdm_guard.exception.InvalidInput: unknown arm.
    :raises bdm_guard_lab.exception.SimulationError: a boot never ended (a
        task left parked with nothing to wake it).
    """
    funcs = {'stock': stock_boot, 'guard': guard_boot,
             'events': events_boot}
    if arm not in funcs:
        raise exception.InvalidInput(reason='unknown arm %r' % (arm,))
    # Each run is its own cloud: the creator's per-process memory of the
    # keys it may have made volumes for must not carry over from an
    # earlier run of the same boots (same keys) in this process, or every
    # create after the first run looks its key up and verifies its 202
    # (the Pareto table's rows were not independent).
    testing.forget_attempts()
    env = _Env(workload, faults, seed, conf or default_conf())
    func = funcs[arm]

    def one(boot):
        slot = env.slots[boot.index % workload.hosts]
        with slot:
            boot.start = env.sim.now
            client = env.cinder.client(boot.index, faults)
            try:
                boot.reason, boot.volume_id = func(env, boot, client)
            except Exception as exc:  # a bug in an arm: count, go on
                LOG.exception('Boot %d crashed in the %s arm.', boot.index,
                              arm)
                boot.reason = 'crashed_%s' % type(exc).__name__
            boot.end = env.sim.now

    boots = make_boots(workload, seed)
    tasks = [env.sim.spawn(one, boot, delay=boot.arrival) for boot in boots]
    started = time.monotonic()
    env.sim.run()
    wall = time.monotonic() - started
    stuck = sum(1 for task in tasks if not task.done)
    if stuck:
        raise lab_exception.SimulationError(
            reason='%d boots never ended in the %s arm' % (stuck, arm))
    LOG.info('Simulated %(n)d %(arm)s boots: %(v).0f virtual s in %(w).1f '
             's.', {'n': len(boots), 'arm': arm, 'v': env.sim.now,
                    'w': wall})
    summary = sim_metrics.summarize(boots, env.cinder, wall)
    if cinders is not None:
        cinders[arm] = env.cinder
    return summary


def simulate(workload, faults, seed=0, arms=DEFAULT_ARMS, conf=None):
    """Run each arm over the same boots, faults and seed.

    ``mean_rps`` is then taken over the same window for every arm: from
    virtual time 0 to the end of the longest arm.

    :returns: ``{arm: summary}`` in the order of ``arms``; with the
        ``events`` arm, its summary has ``fanout``
        (:func:`bdm_guard_lab.sim.events.fanout`).
    :raises bdm_guard.exception.InvalidInput: unknown arm.
    """
    cinders = {}
    results = {arm: run_arm(arm, workload, faults, seed, conf, cinders)
               for arm in arms}
    sim_metrics.common_mean(results)
    if 'events' in results:
        conf = conf or default_conf()
        results['events']['fanout'] = sim_events.fanout(
            cinders['events'], workload.hosts,
            conf.bdm_guard_events.ping_interval, results)
    return results
