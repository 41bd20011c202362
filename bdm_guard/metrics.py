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

"""Per-wait and per-create metrics, and the state file of ``status``.

Off by default: nothing is kept unless ``[bdm_guard_metrics] textfile`` or
``state_file`` is set. When on, each result costs a few dict updates; the
files are rewritten (write to a temporary file, then ``os.replace``) at
most once per ``write_interval``, by the first result after it, or by a
one-shot timer so that the last results are not held back.

The mechanism is the Prometheus textfile collector
(``doc/source/admin/operations.rst`` argues the choice): node_exporter
already runs on most compute nodes, a file needs no port, no thread
serving HTTP inside nova-compute, and no broker (oslo.metrics sends to a
Unix socket that a separate exporter must read); the file survives a
restart of nova-compute. The text format comes from ``prometheus_client``
(in nova's environment through oslo.messaging's oslo.metrics); without it
the state file is still written and one warning says why there are no
metrics.

Results come from where they are already produced: the
:class:`bdm_guard.wait.WaitReport` and
:class:`bdm_guard.create.CreateResult` of the nova drop-in, never from
inside the waiter.
"""

import collections
import datetime
import json
import os
import tempfile
import threading
import time

from oslo_log import log as logging
from oslo_utils import timeutils

from bdm_guard import opts

LOG = logging.getLogger(__name__)

#: Histogram buckets, seconds (waits span a second to an hour of copy).
SECONDS_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600)
#: Histogram buckets of volume GETs per wait.
GETS_BUCKETS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89)
PREFIX = 'bdm_guard_'


class Histogram:
    """Cumulative buckets, sum and count (Prometheus histogram shape)."""

    def __init__(self, buckets):
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value):
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.sum += value
        self.count += 1


class Recorder:
    """Counts results and writes the textfile and the state file.

    :param textfile: the Prometheus file's path, or None.
    :param state_file: the JSON state file's path, or None.
    :param last: how many recent waits and creates the state keeps.
    :param interval: seconds between two rewrites.
    :param clock: monotonic clock (injected in tests).
    :param wall: wall clock, seconds since the epoch (injected in tests).
    :param timer: ``timer(seconds, func)`` starting a one-shot call, or
        None for :class:`threading.Timer` (a green thread under nova's
        eventlet).
    """

    def __init__(self, textfile=None, state_file=None, last=20,
                 interval=10.0, clock=time.monotonic, wall=time.time,
                 timer=None, info=None):
        self.textfile, self.state_file = textfile, state_file
        self.interval, self.clock, self.wall = interval, clock, wall
        self.timer = timer or self._thread_timer
        self.info = dict(info or {})
        self.lock = threading.Lock()
        self.counters = collections.Counter()
        self.histograms = {
            'wait_seconds': Histogram(SECONDS_BUCKETS),
            'wait_gets': Histogram(GETS_BUCKETS),
            'detection_lag_seconds': Histogram(SECONDS_BUCKETS),
        }
        self.waits = collections.deque(maxlen=last)
        self.creates = collections.deque(maxlen=last)
        self.events = {'configured': False, 'healthy': None}
        self.last_write = None
        self.pending = False
        self.writes = 0
        self._warned = False

    @staticmethod
    def _thread_timer(seconds, func):
        timer = threading.Timer(seconds, func)
        timer.daemon = True
        timer.start()

    # -- results ---------------------------------------------------------

    def record_wait(self, report, outcome, volume_id=None, events=None):
        """Count one wait.

        :param report: the :class:`bdm_guard.wait.WaitReport`, or None
            (an error that carried none).
        :param outcome: ``available`` or the exception's class name (str).
        :param volume_id: the volume (str) or None.
        :param events: None (no event source), or True/False: the source
            was healthy when the wait started (False: the wait fell back
            to polling).
        """
        polls = getattr(report, 'polls', 0) or 0
        elapsed = getattr(report, 'elapsed', 0.0) or 0.0
        lag = self._lag(getattr(report, 'volume', None))
        with self.lock:
            self.counters[('waits_total', outcome)] += 1
            self.counters[('wait_gets_total', '')] += polls
            self.histograms['wait_seconds'].observe(elapsed)
            self.histograms['wait_gets'].observe(polls)
            if lag is not None:
                self.histograms['detection_lag_seconds'].observe(lag)
            if events is not None:
                self.events['configured'] = True
                self.events['healthy'] = bool(events)
                if not events:
                    self.counters[('polling_fallbacks_total', '')] += 1
            self.waits.append({
                'time': self._iso(), 'volume_id': volume_id,
                'outcome': outcome, 'gets': polls,
                'seconds': round(elapsed, 3),
                'detection_lag_seconds': lag,
                'events': events})
        self._changed()

    def record_create(self, result, outcome):
        """Count one create.

        :param result: the :class:`bdm_guard.create.CreateResult`, or None
            (the create raised).
        :param outcome: ``created``, ``adopted`` (a lost POST found by its
            key) or the exception's class name (str).
        """
        deleted = len(getattr(result, 'deleted_duplicates', ()) or ())
        undeleted = len(getattr(result, 'undeleted_duplicates', ()) or ())
        with self.lock:
            self.counters[('creates_total', outcome)] += 1
            self.counters[('create_posts_total', '')] += getattr(
                result, 'posts', 0) or 0
            self.counters[('create_lookups_total', '')] += getattr(
                result, 'lookups', 0) or 0
            if outcome == 'adopted':
                self.counters[('lost_posts_found_total', '')] += 1
            self.counters[('duplicates_deleted_total', '')] += deleted
            self.counters[('duplicates_left_total', '')] += undeleted
            volume = getattr(result, 'volume', None) or {}
            self.creates.append({
                'time': self._iso(), 'volume_id': volume.get('id'),
                'outcome': outcome,
                'posts': getattr(result, 'posts', None),
                'lookups': getattr(result, 'lookups', None),
                'duplicates_deleted': deleted})
        self._changed()

    def set_events_health(self, healthy):
        """The event source's health now (bool), or None: no source."""
        with self.lock:
            self.events = {'configured': healthy is not None,
                           'healthy': healthy}

    def _lag(self, volume):
        """Seconds from cinder's last update of an available volume to now.

        An estimate: cinder's ``updated_at`` (UTC, the controller's clock)
        against this host's clock; negative values (clock skew) count 0.
        """
        if not volume or volume.get('status') != 'available':
            return None
        try:
            updated = timeutils.parse_isotime(volume['updated_at'])
        except (KeyError, TypeError, ValueError):
            return None
        if updated.tzinfo is None:
            updated = updated.replace(tzinfo=datetime.timezone.utc)
        return round(max(self.wall() - updated.timestamp(), 0.0), 3)

    def _iso(self):
        return datetime.datetime.fromtimestamp(
            self.wall(), datetime.timezone.utc).isoformat()

    # -- files -----------------------------------------------------------

    def _changed(self):
        now = self.clock()
        with self.lock:
            due = (self.last_write is None
                   or now - self.last_write >= self.interval)
            if not due:
                if self.pending:
                    return
                self.pending = True
                delay = self.interval - (now - self.last_write)
        if due:
            self.flush()
        else:
            self.timer(delay, self.flush)

    def flush(self):
        """Write the files now (also called by the timer)."""
        with self.lock:
            self.pending = False
            self.last_write = self.clock()
            self.writes += 1
            state = self.state()
            text = self.exposition()
        for path, data in ((self.state_file, json.dumps(state, indent=1)),
                           (self.textfile, text)):
            if path and data is not None:
                _write_atomic(path, data)

    def state(self):
        """The state file's content (dict)."""
        return dict(self.info, pid=os.getpid(), updated=self._iso(),
                    events=dict(self.events), waits=list(self.waits),
                    creates=list(self.creates),
                    totals={'%s%s' % (name, '{%s}' % label if label
                                      else ''): value
                            for (name, label), value
                            in sorted(self.counters.items())})

    def exposition(self):
        """The Prometheus text format (str), or None without the library."""
        try:
            from prometheus_client import core
            from prometheus_client import exposition
        except ImportError:
            if not self._warned and self.textfile:
                self._warned = True
                LOG.warning('bdm-guard metrics: prometheus_client is not '
                            'installed, %s is not written (the state file '
                            'still is)', self.textfile)
            return None
        registry = core.CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self, core))
        return exposition.generate_latest(registry).decode('utf-8')


_HELP = {
    'waits_total': ('Waits for a new volume, by outcome (available or the '
                    'exception raised).', 'outcome'),
    'wait_gets_total': ('Volume GETs sent by waits.', None),
    'polling_fallbacks_total': ('Waits that polled because the event '
                                'listener was not healthy.', None),
    'creates_total': ('Volume creates by outcome (created, adopted: a lost '
                      'POST found by its key, or the exception).',
                      'outcome'),
    'create_posts_total': ('POST /volumes sent by creates.', None),
    'create_lookups_total': ('Lookups by idempotency key.', None),
    'lost_posts_found_total': ('Creates whose POST answer was lost and '
                               'whose volume was found by its key.', None),
    'duplicates_deleted_total': ('Duplicate volumes of one key deleted.',
                                 None),
    'duplicates_left_total': ('Duplicate volumes that could not be '
                              'deleted.', None),
}
_HISTOGRAM_HELP = {
    'wait_seconds': 'Seconds one wait took.',
    'wait_gets': 'Volume GETs one wait sent.',
    'detection_lag_seconds': ('Seconds from cinder marking the volume '
                              'available to the wait seeing it (estimate: '
                              'the two hosts\' clocks).'),
}


class _Collector:
    """Hands a :class:`Recorder`'s values to prometheus_client."""

    def __init__(self, recorder, core):
        self.recorder, self.core = recorder, core

    def collect(self):
        core, rec = self.core, self.recorder
        for name, (text, label) in _HELP.items():
            family = core.CounterMetricFamily(
                PREFIX + name[:-len('_total')], text,
                labels=[label] if label else None)
            for (key, value), count in rec.counters.items():
                if key == name:
                    family.add_metric([value] if label else [], count)
            if label is None and not any(k == name for k, _ in
                                         rec.counters):
                family.add_metric([], 0)
            yield family
        for name, histogram in rec.histograms.items():
            family = core.HistogramMetricFamily(PREFIX + name,
                                                _HISTOGRAM_HELP[name])
            buckets = [(repr(float(b)), c)
                       for b, c in zip(histogram.buckets, histogram.counts)]
            family.add_metric([], buckets + [('+Inf', histogram.count)],
                              histogram.sum)
            yield family
        healthy = rec.events.get('healthy')
        family = core.GaugeMetricFamily(
            PREFIX + 'events_healthy', 'The event listener delivers its own '
            'pings (1), does not (0); -1 without [bdm_guard_events].')
        family.add_metric([], -1 if healthy is None else int(healthy))
        yield family


def _write_atomic(path, text):
    # A temp file of its own per write: threads share the pid, and a timer
    # flush may run beside a result's flush.
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + '.',
                                   suffix='.tmp',
                                   dir=os.path.dirname(path) or '.')
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        LOG.warning('bdm-guard metrics: cannot write %(path)s: %(error)s',
                    {'path': path, 'error': exc})
        try:
            if tmp is not None:
                os.unlink(tmp)
        except OSError:
            pass


def state_path(conf):
    """The state file path in force (str) or None (see the options)."""
    group = conf[opts.METRICS_GROUP]
    if group.state_file:
        return group.state_file
    if group.textfile:
        base = group.textfile
        base = base[:-len('.prom')] if base.endswith('.prom') else base
        return base + '.state.json'
    return None


_RECORDERS = {}
_RECORDERS_LOCK = threading.Lock()


def get_recorder(conf, info=None):
    """The process's :class:`Recorder`, or None when metrics are off.

    :param conf: a ConfigOpts with bdm-guard's options registered.
    :param info: fields the state file always carries (release row...).
    """
    group = conf[opts.METRICS_GROUP]
    if not group.textfile and not group.state_file:
        return None
    key = (group.textfile, state_path(conf))
    with _RECORDERS_LOCK:
        recorder = _RECORDERS.get(key)
        if recorder is None:
            recorder = _RECORDERS[key] = Recorder(
                group.textfile, state_path(conf), group.last_waits,
                group.write_interval, info=info)
            return recorder
    if info:
        recorder.info.update(info)
    return recorder


def reset():
    """Forget the process's recorders (tests)."""
    _RECORDERS.clear()
