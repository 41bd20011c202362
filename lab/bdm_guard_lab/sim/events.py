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

"""The ``events`` arm of the scale simulation, and its broker fan-out.

The arm runs the real :func:`bdm_guard.create.create_and_wait` with the
real :class:`bdm_guard.events.Watch` as waker; only the wire is simulated:
a volume's ``volume.create.start`` arrives when it starts downloading and
its ``volume.create.end`` (or an error notification) when it leaves its
pending statuses, each ``latency`` seconds after, and the listener is
healthy throughout.

The fan-out: every host has its own pool, so the broker delivers every
create notification of the cloud once per host, plus each host's own
pings (one queue each). :func:`fanout` counts those deliveries per virtual
second next to the cinder-api GET rates of the arms.
"""

import collections

from bdm_guard.internal.events import watch as watch_mod
from bdm_guard.internal.wait import schedule
from bdm_guard_lab.sim import metrics as sim_metrics

#: Seconds from cinder's publish to the listener (1.3 ms median, 2.2 ms
#: p95 on a real RabbitMQ: doc/source/contributor/lab-recipes.rst).
LATENCY = 0.002


class SimWire:
    """Delivers the notifications of one watch's volume in virtual time.

    :param env: the run's ``_Env`` (``sim``, ``cinder``).
    :param registry: the :class:`Registry` the watch is in.
    """

    def __init__(self, env, registry):
        self.env, self.registry = env, registry
        self.sent = collections.defaultdict(set)

    def _next(self, volume_id):
        volume = self.env.cinder.volumes.get(volume_id)
        if volume is None:
            return None
        kinds = [(volume.downloading_at, watch_mod.STARTED),
                 (volume.done_at, watch_mod.FAILED if volume.fails
                  else watch_mod.ENDED)]
        for when, kind in kinds:
            if kind not in self.sent[volume_id]:
                return when + LATENCY, kind
        return None

    def wait(self, watch):
        """The ``wait(news, seconds)`` of ``watch`` on the simulation."""
        def wait(news, seconds):
            end = self.env.sim.now + seconds
            while not news.is_set():
                upcoming = watch.volume_id and self._next(watch.volume_id)
                if not upcoming or upcoming[0] > end:
                    break
                self.env.sim.sleep(upcoming[0] - self.env.sim.now)
                self.sent[watch.volume_id].add(upcoming[1])
                self.registry.dispatch(watch_mod.Event(
                    upcoming[1], watch.volume_id, None, self.env.sim.now))
            if not news.is_set():
                self.env.sim.sleep(end - self.env.sim.now)
            return news.is_set()
        return wait


def watch_for(env, backstop):
    """A healthy registry's unbound watch for one simulated boot."""
    registry = getattr(env, 'events_registry', None)
    if registry is None:
        registry = env.events_registry = watch_mod.Registry(
            health=lambda: (True, 0), clock=env.sim.clock)
        env.events_wire = SimWire(env, registry)
    made = []
    watch = watch_mod.Watch(
        registry, None, backstop, schedule.confirm_intervals(env.conf),
        wait=lambda news, seconds: env.events_wire.wait(made[0])(
            news, seconds))
    made.append(watch)
    return registry.add(watch)


def fanout(cinder, hosts, ping_interval, results):
    """Broker deliveries per second, next to the arms' GET rates.

    :param cinder: the events run's ``SimCinder``.
    :param hosts: compute hosts (pools).
    :param ping_interval: seconds between a host's self-pings.
    :param results: ``{arm: summary}`` of the simulation.
    :returns: a dict of the figures.
    """
    published = collections.Counter()
    for volume in cinder.volumes.values():
        published[int(volume.downloading_at)] += 1
        published[int(volume.done_at)] += 1
    series = sim_metrics.rate_series(published)
    span = max([len(s['rate']) for s in results.values()] + [len(series), 1])
    pings = hosts / ping_interval
    total = sum(series)
    figures = {
        'hosts': hosts,
        'notifications': total,
        'notifications_peak_per_s': max(series or [0]),
        'deliveries_peak_per_s': round(max(series or [0]) * hosts + pings),
        'deliveries_mean_per_s': round(total * hosts / span + pings),
        'ping_deliveries_per_s': round(pings, 1),
    }
    for arm, summary in results.items():
        gets = summary['requests_by_kind'].get('GET volume', 0)
        figures['%s_gets_mean_per_s' % arm] = round(gets / span, 1)
    if 'events' in results:
        for arm in ('stock', 'guard'):
            if arm in results:
                figures['gets_saved_per_s_vs_%s' % arm] = round(
                    figures['%s_gets_mean_per_s' % arm]
                    - figures['events_gets_mean_per_s'], 1)
    return figures
