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

"""The simulated cloud's parameters: workload, volume timing and faults.

Every number here is documented in ``doc/source/admin/scale.rst`` with the
reason it was chosen. Durations are seconds of virtual time, sizes GiB.

Volume timing is lognormal: the ``creating`` phase (scheduling and backend
allocation) and the per-GiB image copy rate are each the product of many
independent factors (queueing, backend load, network, image cache), which
makes their logarithm roughly normal; lognormal tails are long (p99 of the
creating phase ~6x its median) yet keep a finite variance, so the mean
request rate of a 10,000-boot run is stable from seed to seed, which a
Pareto tail with alpha < 2 would not give.
"""

import dataclasses
import math
import random

from oslo_log import log as logging

from bdm_guard import exception
from bdm_guard_lab.faults import scenario

LOG = logging.getLogger(__name__)

POST_FAULTS = ('lost_request', 'lost_response', 'gateway_504',
               'no_server_503')
#: GiB sizes of image-backed boot volumes and their shares.
DEFAULT_SIZES = ((2, 0.30), (10, 0.40), (20, 0.20), (40, 0.08), (80, 0.02))


@dataclasses.dataclass(frozen=True)
class Faults:
    """Fault rates on the path to cinder-api (the lab proxy's rules).

    Shares are of all requests of that kind, already disjoint (the lab's
    "first rule that fires wins" is applied by :func:`faults_from_scenario`).

    :ivar lost_request: share of POSTs dropped before cinder-api (the
        client sees the connection closed with no response).
    :ivar lost_response: share of POSTs cinder acts on whose answer is lost
        (connection reset after the request was sent).
    :ivar gateway_504: share of POSTs answered by haproxy's 504 page.
    :ivar gateway_504_s: seconds before that 504 (haproxy's ``timeout
        server``).
    :ivar gateway_504_forward: whether cinder acted on those POSTs.
    :ivar no_server_503: share of POSTs answered by haproxy's 503 "No server
        is available" page; nothing reaches cinder.
    :ivar read_reset: share of volume GETs reset before cinder sees them.
    :ivar lag_s: seconds after its creation during which a read of a volume
        may miss it (read-after-write lag behind haproxy and Galera).
    :ivar lag_share: share of reads within ``lag_s`` that miss it.
    """

    lost_request: float = 0.0
    lost_response: float = 0.0
    gateway_504: float = 0.0
    gateway_504_s: float = 0.0
    gateway_504_forward: bool = True
    no_server_503: float = 0.0
    read_reset: float = 0.0
    lag_s: float = 0.0
    lag_share: float = 0.0

    def __post_init__(self):
        shares = (self.lost_request, self.lost_response, self.gateway_504,
                  self.no_server_503, self.read_reset, self.lag_share)
        if any(not 0.0 <= s <= 1.0 for s in shares) or sum(shares[:4]) > 1:
            raise exception.InvalidInput(
                reason='fault shares must be within 0..1 (POST faults '
                       'summing to at most 1): %r' % (self,))
        if self.lag_s < 0 or self.gateway_504_s < 0:
            raise exception.InvalidInput(reason='fault seconds must be >= 0')


@dataclasses.dataclass(frozen=True)
class Workload:
    """The boots and the time cinder takes per volume.

    :ivar boots: instances to boot, one new image-backed volume each.
    :ivar hosts: nova-compute hosts; boot ``i`` goes to host ``i % hosts``.
    :ivar max_concurrent_builds: builds one host runs at once (nova's
        ``[DEFAULT] max_concurrent_builds``, default 10).
    :ivar arrival_window: boots arrive uniformly over this many seconds.
    :ivar sizes: ``((size_gb, share), ...)``.
    :ivar creating_median: median seconds in ``creating``.
    :ivar creating_sigma: lognormal sigma of ``creating``.
    :ivar gib_median: median seconds of ``downloading`` per GiB.
    :ivar gib_sigma: lognormal sigma of the per-GiB copy time.
    :ivar error_share: share of volumes that end in ``error``.
    :ivar latency: seconds each cinder-api request takes to answer.
    :ivar allocate_retries: nova's ``block_device_allocate_retries``.
    :ivar allocate_retries_interval: nova's
        ``block_device_allocate_retries_interval`` (seconds).
    :ivar http_retries: nova's ``[cinder] http_retries``.
    """

    boots: int = 10000
    hosts: int = 500
    max_concurrent_builds: int = 10
    arrival_window: float = 60.0
    sizes: tuple = DEFAULT_SIZES
    creating_median: float = 4.0
    creating_sigma: float = 0.8
    gib_median: float = 2.0
    gib_sigma: float = 0.5
    error_share: float = 0.0
    latency: float = 0.05
    allocate_retries: int = 60
    allocate_retries_interval: float = 3.0
    http_retries: int = 3

    def __post_init__(self):
        if self.boots < 1 or self.hosts < 1 or self.max_concurrent_builds < 1:
            raise exception.InvalidInput(
                reason='boots, hosts and max_concurrent_builds must be >= 1')
        numbers = (self.arrival_window, self.creating_median,
                   self.creating_sigma, self.gib_median, self.gib_sigma,
                   self.latency, self.allocate_retries_interval)
        if any(not math.isfinite(n) or n < 0 for n in numbers):
            raise exception.InvalidInput(
                reason='durations and sigmas must be finite and >= 0')
        if not 0.0 <= self.error_share <= 1.0:
            raise exception.InvalidInput(reason='error_share not in 0..1')
        if not self.sizes or any(s <= 0 or w < 0 for s, w in self.sizes):
            raise exception.InvalidInput(reason='bad size distribution')


def stream(seed, *parts):
    """A :class:`random.Random` for one purpose, independent of the others.

    Both arms draw the same numbers for the same boot (common random
    numbers), whatever order their requests come in.

    :param seed: the run's seed (int).
    :param parts: ints or strs naming the stream (boot index, purpose).
    """
    return random.Random('%d/%s' % (seed, '/'.join(map(str, parts))))


def draw_size(workload, rng):
    """One volume size in GiB from ``workload.sizes``."""
    sizes, weights = zip(*workload.sizes)
    return rng.choices(sizes, weights)[0]


def draw_timing(workload, rng, size_gb, image_backed=True):
    """How long cinder takes for one volume.

    :returns: ``(creating_s, downloading_s, fails)``: seconds in
        ``creating``, seconds in ``downloading`` (0 for a blank volume),
        and whether the volume ends in ``error`` instead of ``available``.
    """
    creating = workload.creating_median * math.exp(
        rng.gauss(0.0, workload.creating_sigma))
    downloading = 0.0
    if image_backed:
        downloading = size_gb * workload.gib_median * math.exp(
            rng.gauss(0.0, workload.gib_sigma))
    return creating, downloading, rng.random() < workload.error_share


def faults_from_scenario(lab_scenario):
    """The fault rates of a lab scenario, for the simulated cinder.

    POST rules that match ``POST /volumes`` are applied in order, first hit
    wins (as :meth:`bdm_guard_lab.faults.proxy.FaultProxy.decide` does);
    ``reset``
    rules that match ``GET /volumes/<id>`` combine; the first
    ``visibility_lag`` rule gives the lag. The scenario's load and timings
    are not used: the simulation has its own (:class:`Workload`).

    :param lab_scenario: a :class:`bdm_guard_lab.faults.scenario.Scenario`.
    :returns: a :class:`Faults`.
    """
    post = {}
    left = 1.0
    keep = 1.0
    found = {}
    volume_path = '/volumes/00000000-0000-4000-8000-000000000000'
    for rule in lab_scenario.rules:
        if rule.fault in POST_FAULTS and rule.matches('POST', '/volumes'):
            share = left * rule.probability
            post[rule.fault] = post.get(rule.fault, 0.0) + share
            left -= share
            if rule.fault == 'gateway_504':
                found.update(gateway_504_s=rule.seconds,
                             gateway_504_forward=rule.forward)
        elif rule.fault == 'reset' and rule.matches('GET', volume_path):
            keep *= 1.0 - rule.probability
        elif rule.fault == 'visibility_lag' and 'lag_s' not in found:
            found.update(lag_s=rule.seconds, lag_share=rule.probability)
        else:
            LOG.warning('Scenario %(name)s: the simulation ignores rule '
                        '%(rule)s.', {'name': lab_scenario.name,
                                      'rule': rule})
    return Faults(read_reset=1.0 - keep, **post, **found)


def load_faults(spec):
    """Fault rates from a lab scenario (name or YAML file).

    :param spec: ``none``, ``seed``, ``harsh`` or the path of a scenario
        file (format: ``doc/source/contributor/lab.rst``).
    :returns: a :class:`Faults`.
    :raises bdm_guard_lab.exception.InvalidScenario: unknown name, unreadable
        file or bad field.
    """
    return faults_from_scenario(scenario.load(spec))
