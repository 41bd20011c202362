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

"""The completion-aware poll schedule, and what it learns per process.

The schedule predicts when the volume will be ready from what the waiter
knows, and polls where it most likely becomes ready:

* the time a volume spends in ``creating`` (C) and its image copy time per
  GiB (R) are lognormal (``doc/source/admin/scale.rst`` says why); their
  medians start at the ``[bdm_guard] completion_*`` priors and are learnt
  from the waits this process has finished, and from those still copying
  as censored samples (:class:`Learner`);
* while the volume is ``creating`` at ``t`` seconds after the create, the
  time left is what is left of C plus, for an image-, snapshot- or backup-
  backed volume, the copy ``size * R``, taken as one lognormal (Fenton-
  Wilkinson: same mean and variance);
* in ``downloading`` (any other pending status), the time left is what is
  left of the copy, counted from its start: cinder's ``updated_at -
  created_at`` after the create, kept between the last GET that showed the
  volume ``creating`` and the first that showed it copying.

With a cost of ``completion_lag_cost`` seconds of lag per GET, the poll
density that minimises lag plus cost is ``sqrt(h(t) / (2 * cost))`` polls
per second, ``h`` being the hazard rate of the time left (the optimal
inspection density of Barlow, Hunter and Proschan; derived in
``doc/source/admin/performance.rst``). The next GET comes where that
density integrates to 1, never sooner than :data:`MIN_INTERVAL` and never
later than :meth:`wait_completion.cap`: ``max(completion_max_interval,
min(completion_interval_fraction * seconds waited,
completion_interval_ceiling))``, with ``completion_prior_max_interval``
for ``completion_max_interval`` while the prediction rests on the priors
alone and the volume has not outlived its predicted median (a prior
slower than the backend then costs at most that lag). Past the predicted
median the cost of a GET grows with the time already spent (lag counts
relative to the wait). That bound holds in
every status, so an ``error`` is seen as soon as ``available`` would be.

Every step is bounded arithmetic on finite floats (logarithms of positive
numbers, exponentials of clamped arguments), so no in-range option and no
volume dict can make it overflow or return NaN.
"""

import collections
import datetime
import math
import random
import threading
import typing

import tenacity

from bdm_guard.internal import statuses
from bdm_guard.internal.wait import schedule
from bdm_guard import outcome as oc

#: The shortest interval between two GETs, seconds.
MIN_INTERVAL = 0.5
#: Log-scale spread of the creating time and of the copy time per GiB
#: (the simulation's workload, ``bdm_guard_lab/sim/model.py``: sigma 0.8
#: and 0.5, from the spread of cinder's scheduling and of image copies).
CREATING_SIGMA = 0.8
COPY_SIGMA = 0.5
#: Log-scale uncertainty of a prior's median before anything is learnt: a
#: prior 4x off is 2.8 of these (so 4x-wrong priors are still covered).
PRIOR_TAU = 0.5
#: Most samples one estimate counts; older ones fade (EWMA), so that the
#: learner follows a backend whose speed changes.
LEARN_WEIGHT = 50
#: Most keys (volume types) the learner keeps, least recently used first
#: out: its memory is bounded whatever the cloud does.
LEARN_KEYS = 64
#: Samples after which the prediction is taken as learnt
#: (:meth:`wait_completion.cap`): the estimate's weight on them is then
#: about 6 / 7, so a prior 4x off is left 1.2x off.
LEARNT = 6
#: Steps of the search for the median given censored samples (a step of
#: ``_SEARCH_STEP`` up, then halving): the fixed point that expectation-
#: maximisation reaches, found directly (six EM steps stopped 8% to 18%
#: short of it, on the median, when ten peers had all outlived the
#: prior).
_SEARCH_STEP = 0.25
_SEARCH_HALVINGS = 30
#: The prior's log-scale uncertainty against censored samples: wider
#: than :data:`PRIOR_TAU`, so that peers which all outlived a prior far
#: from the backend (the lab's copies are 7.5x slower than the default)
#: move the median within one wave. The spread widens with the move
#: (:data:`CENSORED_WIDEN`).
CENSORED_TAU = 1.0
#: Degrees of freedom of the prior on the log median against censored
#: samples: a Student-t (1: Cauchy) of scale :data:`CENSORED_TAU`, not a
#: normal. A heavy-tailed prior weighs less the further the samples put
#: the median from it, so peers that have all outlived a prior far from
#: the backend move the median past it instead of being held just ahead
#: of their age (prior-data conflict: O'Hagan, "On outlier rejection
#: phenomena in Bayes inference", JRSS B 41, 1979). Fitted at the
#: zero of the posterior's derivative, where expectation-maximisation with
#: the scale-mixture weights of a t (Lange, Little and Taylor, "Robust
#: statistical modeling using the t distribution", JASA 84, 1989) ends.
#: ``bdm-guard simulate`` of the demo's healthy case, five seeds: 0.815x
#: stock's GETs with a normal prior and six steps, 0.782x with this one
#: at its mode; the 10,000-boot runs stay within their targets
#: (doc/source/admin/performance.rst).
CENSORED_NU = 1.0
#: How much of the distance that censored samples moved the median goes
#: into the spread (as variance: ``spread^2 + widen * shift^2``). Peers
#: that all outlived the prior say only "slower than this": the
#: likelihood of a censored sample is flat above its bound, so the
#: median's posterior is about as wide as the shift, and the prediction
#: spreads its GETs accordingly instead of polling just ahead of the
#: peers' age (``bdm-guard simulate`` of the demo's healthy case, five
#: seeds: 0.89x stock's GETs without, 0.82x with 1.0; the 10,000-boot
#: runs, whose prior fits, do not change: doc/source/admin/performance.rst).
CENSORED_WIDEN = 1.0
#: Learnt spreads stay within these bounds (log scale).
SIGMA_RANGE = (0.15, 1.5)
#: Integration steps per interval bound.
_STEPS = 32
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
#: Clamp of log-seconds (e^40 s is far beyond any deadline).
_LOG_RANGE = (-20.0, 40.0)

CREATING = 'creating'
COPY = 'copy'
#: Causes after which the retries keep their spacing
#: (:meth:`wait_completion.retry`).
_SPACED = frozenset((oc.AUTH, oc.THROTTLED))


def _clamp(value, low, high):
    return low if value < low else high if value > high else value


def _q(z):
    """The standard normal survival function."""
    return 0.5 * math.erfc(z / _SQRT2)


def _mills(z):
    """``phi(z) / Q(z)``, the standard normal's inverse Mills ratio."""
    if z < -12.0:
        return 0.0
    if z > 8.0:
        return z + 1.0 / z - 2.0 / z ** 3   # asymptotic
    return math.exp(-0.5 * z * z) / (_SQRT2PI * _q(z))


def hazard(t: float, mu: float, sigma: float) -> float:
    """The hazard rate (1/s) at ``t`` seconds of a lognormal(mu, sigma).

    :param t: seconds (any float; <= 0 gives 0).
    :param mu: the mean of the logarithm.
    :param sigma: the spread of the logarithm (> 0).
    :returns: ``f(t) / S(t)``, finite and >= 0.
    """
    if not t > 0.0:
        return 0.0
    return _mills((math.log(t) - mu) / sigma) / (sigma * t)


def _moments(mu, sigma):
    mean = math.exp(mu + 0.5 * sigma * sigma)
    return mean, (math.exp(sigma * sigma) - 1.0) * mean * mean


def _residual(t, mu, sigma):
    """Mean and variance of ``C - t`` given ``C > t``, C lognormal."""
    if t <= 0.0:
        mean, var = _moments(mu, sigma)
        return mean - max(t, 0.0), var
    z = (math.log(t) - mu) / sigma
    if z > 6.0:
        # Far in the tail the time left is about exponential with the
        # lognormal's mean residual life, sigma^2 t / (ln t - mu).
        mean = sigma * sigma * t / (math.log(t) - mu)
        return mean, mean * mean
    q0 = _q(z)
    e1 = math.exp(mu + 0.5 * sigma * sigma) * _q(z - sigma) / q0
    e2 = math.exp(2.0 * mu + 2.0 * sigma * sigma) * _q(z - 2 * sigma) / q0
    mean = max(e1 - t, 1e-3)
    return mean, max(e2 - e1 * e1, (0.1 * mean) ** 2)


def _lognormal(mean, var):
    """``(mu, sigma)`` of the lognormal with this mean and variance."""
    mean = max(mean, 1e-6)
    s2 = math.log1p(var / (mean * mean))
    sigma = _clamp(math.sqrt(s2), SIGMA_RANGE[0], 2.0)
    return _clamp(math.log(mean) - 0.5 * s2, *_LOG_RANGE), sigma


def parse_stamp(value) -> typing.Optional[float]:
    """Seconds since the epoch of one of cinder's ISO 8601 stamps, or None.

    cinder writes ``2026-01-01T00:00:04.000000`` (UTC, no zone) and some
    deployments ``...Z`` or ``...+00:00``; anything else gives None.
    """
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    if text.endswith('Z'):
        text = text[:-1]
    try:
        stamp = datetime.datetime.fromisoformat(text)
        if stamp.tzinfo is not None:
            # 0001-01-01T00:00:00+01:00 overflows here.
            stamp = stamp.astimezone(datetime.timezone.utc).replace(
                tzinfo=None)
        return (stamp - datetime.datetime(1970, 1, 1)).total_seconds()
    except (ValueError, OverflowError):
        return None


def since_created(volume) -> typing.Optional[float]:
    """``updated_at - created_at`` of a volume dict (seconds), or None."""
    if not isinstance(volume, dict):
        return None
    created = parse_stamp(volume.get('created_at'))
    updated = parse_stamp(volume.get('updated_at'))
    if created is None or updated is None or updated < created:
        return None
    return updated - created


def change_time(observation, created) -> float:
    """When the volume entered the observation's status (clock seconds).

    cinder's ``updated_at - created_at`` after ``created``, kept between
    the last GET before the change (``previous_at``, or ``created``) and
    the GET that saw it (``at``); the middle of that window when the stamps
    are missing.

    :param observation: a :class:`bdm_guard.internal.wait.poll.Observation`
        that saw a status change.
    :param created: the clock value of the create.
    """
    high = observation.at
    low = observation.previous_at
    if low is None:
        low = min(created, high)
    offset = since_created(observation.volume)
    if offset is None:
        return 0.5 * (low + high)
    return _clamp(created + offset, low, high)


def _key(volume):
    kind = (volume or {}).get('volume_type') if isinstance(
        volume, dict) else None
    return kind[:255] if isinstance(kind, str) else ''


def _volume_id(volume):
    vid = volume.get('id') if isinstance(volume, dict) else None
    return vid[:255] if isinstance(vid, str) else None


def _size(volume):
    size = (volume or {}).get('size') if isinstance(volume, dict) else None
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return None
    return size


def _censored_score(g, mu0, n, mean, s, bounds):
    """The derivative of the log posterior of the log median ``g``.

    A Student-t prior (:data:`CENSORED_NU`, scale :data:`CENSORED_TAU`)
    around ``mu0``, ``n`` finished samples of log mean ``mean`` and the
    censored ones (``bounds``), each of log spread ``s``.
    """
    d = g - mu0
    prior = (CENSORED_NU + 1.0) * d / (
        CENSORED_NU * CENSORED_TAU ** 2 + d * d)
    return (sum(_mills((x - g) / s) for x in bounds) / s
            - n * (g - mean) / (s * s) - prior)


def _censored_mode(mu, mu0, n, mean, s, bounds):
    """The log median given censored samples, or ``mu`` if not above it.

    The nearest zero of :func:`_censored_score` above ``mu`` (where the
    expectation-maximisation steps from ``mu`` end). The score falls to
    below 0 within a few ``s`` above the largest bound, where the
    censored samples' pull fades, so the search is bounded.
    """
    if _censored_score(mu, mu0, n, mean, s, bounds) <= 0.0:
        return mu
    low, high = mu, mu + _SEARCH_STEP
    while (high < _LOG_RANGE[1]
           and _censored_score(high, mu0, n, mean, s, bounds) > 0.0):
        low, high = high, high + _SEARCH_STEP
    for _ in range(_SEARCH_HALVINGS):
        middle = 0.5 * (low + high)
        if _censored_score(middle, mu0, n, mean, s, bounds) > 0.0:
            low = middle
        else:
            high = middle
    return _clamp(0.5 * (low + high), *_LOG_RANGE)


class Learner:
    """The creating and copy times of finished waits, in one process.

    Thread-safe; memory bounded by :data:`LEARN_KEYS` volume types times
    two estimates of three floats each. Each estimate is the normal model
    of a log time with the option's prior as its mean: after ``n`` samples
    the median moves from the prior towards what was seen, and the spread
    that the schedule uses shrinks from ``sqrt(sigma^2 + PRIOR_TAU^2)``
    towards ``sigma``.

    Waits still running count too, as censored samples: a copy seen
    still running after ``c`` seconds per GiB took at least that long
    (:meth:`running`). The median counts each of them at its expected
    value given that bound (expectation-maximisation, against a heavy-
    tailed prior that the samples can overrule: :data:`CENSORED_NU`), so that
    the first boots after a start, which all wait at once with nothing
    finished yet, stop polling on a prior the backend is slower than as
    soon as their peers have outlived it. They move the median only
    towards slower, and widen the spread by the distance they moved it
    (:data:`CENSORED_WIDEN`): an estimate that rests on "at least this
    long" is that uncertain. A wait's censored sample goes
    when it ends ``available`` (:func:`learn`) or is not refreshed by its
    next GET in time (it failed, timed out, or sleeps on an event
    source); at most ``keys * weight`` are kept, oldest first out.
    """

    def __init__(self, keys: int = LEARN_KEYS, weight: int = LEARN_WEIGHT):
        self._keys = keys
        self._weight = weight
        self._lock = threading.Lock()
        self._stats = collections.OrderedDict()
        self._running = collections.OrderedDict()

    def learn(self, key: str, kind: str, seconds: float) -> None:
        """Count one sample: ``kind`` (:data:`CREATING`, :data:`COPY`)."""
        if not (isinstance(seconds, (int, float))
                and math.isfinite(seconds) and seconds > 0):
            return
        x = _clamp(math.log(seconds), *_LOG_RANGE)
        with self._lock:
            per_key = self._stats.get(key)
            if per_key is None:
                per_key = self._stats[key] = {}
                while len(self._stats) > self._keys:
                    self._stats.popitem(last=False)
            self._stats.move_to_end(key)
            n, mean, var = per_key.get(kind, (0, 0.0, 0.0))
            n = min(n + 1, self._weight)
            delta = x - mean
            mean += delta / n
            var += (delta * (x - mean) - var) / n
            per_key[kind] = (n, mean, var)

    def running(self, volume_id: str, key: str, kind: str, seconds: float,
                until: float) -> None:
        """Count a wait still running as a censored sample.

        :param volume_id: the volume waited for; its earlier sample is
            replaced.
        :param seconds: the least the time took (for :data:`COPY`, per
            GiB); not finite or <= 0: ignored.
        :param until: the clock value after which the sample is dropped
            unless refreshed (the wait's next GET is due before).
        """
        if not (isinstance(seconds, (int, float))
                and math.isfinite(seconds) and seconds > 0):
            return
        x = _clamp(math.log(seconds), *_LOG_RANGE)
        with self._lock:
            self._running.pop(volume_id, None)
            self._running[volume_id] = (key, kind, x, until)
            while len(self._running) > self._keys * self._weight:
                self._running.popitem(last=False)

    def finished(self, volume_id: str) -> None:
        """Drop the censored sample of a wait that ended."""
        with self._lock:
            self._running.pop(volume_id, None)

    def _bounds(self, key, kind, now, exclude):
        """The live censored samples (log), expired ones dropped."""
        bounds, gone = [], []
        for volume_id, (k, kd, x, until) in self._running.items():
            if now is not None and until < now:
                gone.append(volume_id)
            elif k == key and kd == kind and volume_id != exclude:
                bounds.append(x)
        for volume_id in gone:
            del self._running[volume_id]
        return bounds

    def estimate(self, key: str, kind: str, prior_median: float,
                 sigma: float, now: typing.Optional[float] = None,
                 exclude: typing.Optional[str] = None
                 ) -> tuple[float, float]:
        """``(mu, sigma)`` of the log time the schedule predicts with.

        :param now: the clock value, to drop expired censored samples
            (None: keep them all).
        :param exclude: a volume id whose own censored sample is not
            counted (its schedule conditions on its own age already).
        """
        mu0 = _clamp(math.log(prior_median), *_LOG_RANGE)
        with self._lock:
            n, mean, var = self._stats.get(key, {}).get(kind, (0, 0.0, 0.0))
            bounds = self._bounds(key, kind, now, exclude)
        if n == 0:
            s2, tau2, mu = sigma * sigma, PRIOR_TAU * PRIOR_TAU, mu0
        else:
            k0 = 4.0
            s2 = (k0 * sigma * sigma + n * var) / (k0 + n)
            s2 = _clamp(s2, SIGMA_RANGE[0] ** 2, SIGMA_RANGE[1] ** 2)
            tau2 = 1.0 / (1.0 / PRIOR_TAU ** 2 + n / s2)
            mu = tau2 * (mu0 / PRIOR_TAU ** 2 + n * mean / s2)
        spread = math.sqrt(s2 + tau2)
        if bounds:
            guess = _censored_mode(mu, mu0, n, mean, math.sqrt(s2), bounds)
            if guess > mu:
                spread = math.sqrt(spread * spread
                                   + CENSORED_WIDEN * (guess - mu) ** 2)
            mu = _clamp(max(mu, guess), *_LOG_RANGE)
        return mu, spread

    def samples(self, key: str, kind: str) -> int:
        """How many finished samples of ``kind`` the estimate counts.

        At most the learner's weight.
        """
        with self._lock:
            return self._stats.get(key, {}).get(kind, (0,))[0]

    def clear(self) -> None:
        """Forget everything (tests; a reconfigured backend)."""
        with self._lock:
            self._stats.clear()
            self._running.clear()


#: The process's learner: every wait of this process teaches it.
LEARNER = Learner()


def learn(learner: Learner, final, created: float,
          copy_start: typing.Optional[float],
          size_gb: typing.Optional[int]) -> None:
    """Teach ``learner`` what one wait that ended ``available`` saw.

    :param final: the ``available`` observation.
    :param created: the clock value of the create.
    :param copy_start: when the copy started (:func:`change_time` of the
        first observation in a status other than ``creating``), or None
        (no copy seen).
    :param size_gb: the caller's size, or None.
    """
    done = change_time(final, created)
    key = _key(final.volume)
    volume_id = _volume_id(final.volume)
    if volume_id is not None:
        learner.finished(volume_id)
    if copy_start is None:
        if size_gb is None:
            learner.learn(key, CREATING, done - created)
        return
    size = size_gb or _size(final.volume)
    if final.phase_after is not None and copy_start > created:
        learner.learn(key, CREATING, copy_start - created)
    if size:
        learner.learn(key, COPY, (done - copy_start) / size)


class wait_completion(tenacity.wait.wait_base):
    """The completion-aware poll schedule (a tenacity wait strategy).

    A function of the attempt's :class:`bdm_guard.internal.wait.poll.
    Observation` and the clock: it keeps no state of its own. The learnt
    estimates are read at each call, so a wait still running profits from
    every wait that finished meanwhile.

    :param conf: a ConfigOpts with ``[bdm_guard]`` registered.
    :param clock: a zero-argument callable returning seconds (monotonic).
    :param start: the clock value the wait started at.
    :param deadline: the :class:`bdm_guard.internal.retry.Deadline`.
    :param rng: a :class:`random.Random` for the jitter.
    :param stretch: ``stretch(interval) -> seconds`` (the waker's
        backstop), or None.
    :param created: the clock value of the create (default ``start``).
    :param size_gb: the caller's size for an image-, snapshot- or backup-
        backed volume; None for a blank one (or an unknown source: the
        copy is modelled once it is seen).
    :param learner: a :class:`Learner` (default :data:`LEARNER`).
    """

    def __init__(self, conf, clock, start, deadline, rng=None, stretch=None,
                 created=None, size_gb=None, learner=None):
        self.conf = conf.bdm_guard
        self.clock = clock
        self.start = start
        self.deadline = deadline
        self.rng = rng or random.Random()
        self.stretch = stretch
        self.created = start if created is None else created
        self.size_gb = size_gb
        self.learner = LEARNER if learner is None else learner

    def first(self, created):
        """Seconds from ``created`` to the first look after a create."""
        return self.conf.completion_first_look

    def cap(self, waited, learnt=True):
        """The longest interval (seconds) after ``waited`` seconds.

        ``max(longest, min(completion_interval_fraction * waited,
        completion_interval_ceiling))``, where ``longest`` is
        ``completion_max_interval``, or ``completion_prior_max_interval``
        when it is shorter and the prediction comes from the priors alone
        (``learnt`` False): a prior far from the backend then costs at
        most that much lag.
        """
        longest = self.conf.completion_max_interval
        if not learnt:
            longest = min(longest, self.conf.completion_prior_max_interval)
        grown = min(self.conf.completion_interval_fraction * max(0.0, waited),
                    self.conf.completion_interval_ceiling)
        return max(longest, grown)

    def learnt(self, observation):
        """Whether the prediction for ``observation`` is learnt.

        True once this process finished :data:`LEARNT` waits or more of
        the time it predicts: the copy, or the creating time of a blank
        volume.
        """
        kind = COPY
        if observation.phase == statuses.CREATING and self.size_gb is None:
            kind = CREATING
        return self.learner.samples(_key(observation.volume),
                                    kind) >= LEARNT

    def _params(self, observation, kind, now):
        if kind == CREATING:
            prior, sigma = self.conf.completion_creating_median, CREATING_SIGMA
        else:
            prior, sigma = self.conf.completion_copy_per_gib, COPY_SIGMA
        return self.learner.estimate(_key(observation.volume), kind, prior,
                                     sigma, now=now,
                                     exclude=_volume_id(observation.volume))

    def model(self, observation, now):
        """The prediction: ``(x0, mu, sigma)``.

        The time left is lognormal(mu, sigma) conditioned on exceeding
        ``x0`` seconds (its age now).
        """
        size = self.size_gb or _size(observation.volume) or 1
        if observation.phase == statuses.CREATING:
            mu_c, s_c = self._params(observation, CREATING, now)
            t = now - self.created
            if self.size_gb is None:
                return t, mu_c, s_c
            mean, var = _residual(t, mu_c, s_c)
            mu_r, s_r = self._params(observation, COPY, now)
            copy_mean, copy_var = _moments(
                _clamp(mu_r + math.log(size), *_LOG_RANGE), s_r)
            mu, sigma = _lognormal(mean + copy_mean, var + copy_var)
            return 0.0, mu, sigma
        begun = self.created
        if observation.phase_seen is not None:
            begun = change_time(_Window(observation), self.created)
        volume_id = _volume_id(observation.volume)
        if volume_id is not None:
            # Still copying when this GET answered: a censored sample for
            # the waits that run alongside, until its next GET is overdue.
            self.learner.running(
                volume_id, _key(observation.volume), COPY,
                (observation.at - begun) / size,
                now + 2.0 * self.cap(now - self.start) + 1.0)
        mu_r, s_r = self._params(observation, COPY, now)
        return (now - begun, _clamp(mu_r + math.log(size), *_LOG_RANGE),
                s_r)

    def interval(self, observation, now):
        """Seconds to the next GET, before jitter, within the bounds."""
        return self.step(observation, now)[0]

    def step(self, observation, now):
        """Seconds to the next GET, before jitter, and the cap in force.

        :returns: ``(interval, cap)``, both seconds, ``interval`` within
            ``[MIN_INTERVAL, cap]``. The cap is the prior's
            (:meth:`cap`) until the prediction is learnt or the volume
            has outlived the predicted median: a prior slower than the
            backend is then disproved.
        """
        waited = now - self.start
        early = self.conf.completion_first_look - (now - self.created)
        if observation.phase == statuses.CREATING and early > 0.0:
            # A GET sent at once after the create: the next one is the
            # first look, as in first().
            cap = self.cap(waited, self.learnt(observation))
            return _clamp(early, MIN_INTERVAL, cap), cap
        x0, mu, sigma = self.model(observation, now)
        cap = self.cap(waited, self.learnt(observation)
                       or x0 > math.exp(mu))
        return _clamp(self._rule(x0, mu, sigma, cap), MIN_INTERVAL,
                      cap), cap

    def _rule(self, x0, mu, sigma, cap):
        """Where ``sqrt(h / 2 cost)`` integrates to 1 (seconds, <= cap)."""
        # Past the predicted median a GET is worth lag in proportion to the
        # time already spent: the cost is relative to the wait, so that a
        # copy far slower than predicted is polled on the cap, not on the
        # lognormal's slowly falling hazard.
        cost = self.conf.completion_lag_cost * max(
            1.0, x0 / math.exp(mu))
        scale = 1.0 / math.sqrt(2.0 * cost)
        step = cap / _STEPS
        total = 0.0
        for i in range(_STEPS):
            density = scale * math.sqrt(
                hazard(x0 + (i + 0.5) * step, mu, sigma))
            if total + density * step >= 1.0:
                return i * step + (1.0 - total) / density
            total += density * step
        return cap

    def __call__(self, retry_state):
        observation = retry_state.outcome.result()
        now = self.clock()
        interval, cap = self.step(observation, now)
        if observation.failures:
            interval = self.retry(observation, interval, cap)
        return schedule.finish(self, interval, cap, observation)

    def retry(self, observation, interval, cap):
        """Seconds to the next GET after GETs that brought no status.

        cinder gave no status (a 5xx, a 401, a reset, a 404 in the
        grace) ``observation.failures`` times in a row.

        * Once a status was seen, the failed GET was the look the
          schedule planned, and its answer is lost: the volume may have
          become ready since the last status, as the plan expected. The
          next GET comes :data:`MIN_INTERVAL` later, then the gap doubles
          with each failure in a row up to ``cap``, so that a short
          outage is not hammered. Waiting the predicted interval (or
          ``completion_first_look``) instead put the next look up to two
          intervals after the last status, past the interval bound.
        * Before any status (a 404 of a volume the API does not show yet,
          an API down from the start), nothing was planned from a status:
          back off from ``completion_first_look``, doubling, or the
          predicted interval when longer. So too after a 401 (the waiter
          gives up after ``UNAUTHORIZED_LIMIT`` in a row, each after a
          re-authentication: quick retries would end a short blip) and a
          429 (cinder asked for fewer requests).

        :param observation: the failed observation (``failures`` >= 1).
        :param interval: the schedule's interval from now (seconds).
        :param cap: the interval cap in force (seconds).
        :returns: seconds, at most ``cap``.
        """
        n = observation.failures - 1
        if (observation.previous_at is not None
                and observation.cause not in _SPACED):
            return schedule.ramp(MIN_INTERVAL, 2.0, n, cap)
        return max(interval, schedule.ramp(
            self.conf.completion_first_look, 2.0, n, cap))


class _Window:
    """The phase change of an observation, as :func:`change_time` takes."""

    def __init__(self, observation):
        self.at = observation.phase_seen
        self.previous_at = observation.phase_after
        self.volume = observation.volume
