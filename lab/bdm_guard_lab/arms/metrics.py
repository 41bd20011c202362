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

"""The figures of one arm, from cinder's own API and the proxy's counters.

Volume counts come from ``GET /volumes/detail?all_tenants=1`` sent straight
to cinder after the run has settled, never from the clients' bookkeeping:

* ``volumes_created``: volumes that exist in cinder after the run;
* ``duplicates``: volumes beyond the first among those carrying one boot's
  name (every boot names its volume ``lab-boot-<n>``);
* ``leaked``: volumes in cinder that no successful boot owns;
* ``gets_per_boot``: ``GET /volumes/<id>`` requests the proxy saw, per boot;
* ``detect_lag_p50_s`` / ``p95``: for successful boots, the time from the
  volume's ``updated_at`` (set by cinder when it became ``available``) to
  the moment the client returned, in scenario seconds;
* ``detect_lag_p95_pct``: the p95 of each successful boot's lag divided by
  its volume's creation time (``updated_at - created_at``), in percent:
  the lag relative to how long cinder took;
* ``gets_per_success``: volume GETs of the successful boots' volumes, per
  successful boot (a failing boot stops polling early, which flatters
  ``gets_per_boot``).
"""

import collections
import dataclasses
import datetime
import math

KEYS = ('boots', 'succeeded', 'failed', 'failures_by_reason',
        'volumes_created', 'duplicates', 'leaked', 'gets_per_boot',
        'detect_lag_p50_s', 'detect_lag_p95_s', 'wall_s')

#: Real seconds a Galera arm waits for cinder to settle after its boots: a
#: volume still ``creating`` or ``downloading`` then is counted as stuck
#: (``volumes_stuck``). On a lagging multi-writer VIP stock cinder leaves
#: such volumes for good; by the time the clients have given up, every
#: create that can finish has (the lab's image copies take seconds).
GALERA_SETTLE_S = 60.0

#: Figures beyond the issue's :data:`KEYS`.
EXTRA_KEYS = ('detect_lag_p95_pct', 'gets_per_success', 'faults_injected',
              'requests')


@dataclasses.dataclass
class Boot:
    """One boot's end, as the client saw it.

    :ivar name: the volume name (``lab-boot-<n>``).
    :ivar volume_id: the volume the boot ended up with, or None.
    :ivar reason: why it failed (None when it succeeded).
    :ivar noticed_at: ``time.time()`` when the client returned.
    """

    name: str
    volume_id: str = None
    reason: str = None
    noticed_at: float = 0.0


def percentile(values, fraction):
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _timestamp(text):
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def summarize(boots, volumes, proxy, *, wall_s, time_scale, project_id):
    """Build the arm's figures.

    :param boots: the :class:`Boot` list.
    :param volumes: cinder's volume dicts after the run (all projects).
    :param proxy: the :class:`bdm_guard_lab.faults.proxy.FaultProxy` of the
        run.
    :param wall_s: real seconds the boots took.
    :param time_scale: real seconds per scenario second.
    :param project_id: the lab project (other projects are ignored).
    :returns: a dict with :data:`KEYS` and :data:`EXTRA_KEYS`.
    """
    mine = [v for v in volumes
            if v.get('os-vol-tenant-attr:tenant_id', project_id) == project_id]
    by_id = {v['id']: v for v in mine}
    ok = [b for b in boots if b.reason is None and b.volume_id in by_id
          and by_id[b.volume_id]['status'] == 'available']
    owned = {b.volume_id for b in ok}
    for boot in boots:
        if boot.reason is None and boot not in ok:
            boot.reason = 'volume_missing_in_cinder'
    reasons = collections.Counter(b.reason for b in boots if b not in ok)
    names = collections.Counter(v.get('name') for v in mine)
    lags, relative = [], []
    for boot in ok:
        volume = by_id[boot.volume_id]
        done = _timestamp(volume['updated_at'])
        lag = max(0.0, boot.noticed_at - done)
        lags.append(lag / time_scale)
        if volume.get('created_at'):
            took = done - _timestamp(volume['created_at'])
            if took > 0:
                relative.append(100.0 * lag / took)
    gets = sum(proxy.volume_gets.values())
    ok_gets = sum(proxy.volume_gets.get(v, 0) for v in owned)
    requests = {'%s %s' % key: n for key, n in sorted(proxy.requests.items())}

    def rounded(value):
        return None if value is None else round(value, 2)

    return {
        'boots': len(boots),
        'succeeded': len(ok),
        'failed': len(boots) - len(ok),
        'failures_by_reason': dict(sorted(reasons.items())),
        'volumes_created': len(mine),
        'duplicates': sum(n - 1 for n in names.values() if n > 1),
        'leaked': len([v for v in mine if v['id'] not in owned]),
        'gets_per_boot': round(gets / len(boots), 2) if boots else 0.0,
        'detect_lag_p50_s': rounded(percentile(lags, 0.50)),
        'detect_lag_p95_s': rounded(percentile(lags, 0.95)),
        'wall_s': round(wall_s, 1),
        'detect_lag_p95_pct': rounded(percentile(relative, 0.95)),
        'gets_per_success': round(ok_gets / len(ok), 2) if ok else None,
        'faults_injected': dict(sorted(proxy.injected.items())),
        'requests': requests,
    }


def _ms(value):
    return None if value is None else round(1000.0 * value, 1)


def get_latency(latencies, lag=None):
    """cinder-api ``GET /volumes/<id>`` latency, with and without lag.

    :param latencies: ``[(monotonic start, seconds)]`` (the proxy's
        ``get_latencies``).
    :param lag: ``{'start': t0, 'end': t1}`` in ``time.monotonic()`` (the
        lag window, :attr:`bdm_guard_lab.db.lagging_galera.GaleraLab.
        last_lag`), or None (no lag: every GET counts as without).
    :returns: ``{'get_ms_lag_p50', 'get_ms_lag_p95', 'get_ms_lag_max',
        'get_ms_p50', 'get_ms_p95', 'get_ms_max', 'gets_lag', 'gets'}``:
        milliseconds, for the GETs that cinder received while the node
        lagged (``*_lag_*``) and after it caught up; None when there were
        none.
    """
    start = (lag or {}).get('start')
    end = (lag or {}).get('end')
    during, after = [], []
    for when, seconds in latencies:
        if start is not None and end is not None and start <= when < end:
            during.append(seconds)
        elif end is None or when >= end:
            after.append(seconds)
    return {
        'get_ms_lag_p50': _ms(percentile(during, 0.50)),
        'get_ms_lag_p95': _ms(percentile(during, 0.95)),
        'get_ms_lag_max': _ms(max(during) if during else None),
        'get_ms_p50': _ms(percentile(after, 0.50)),
        'get_ms_p95': _ms(percentile(after, 0.95)),
        'get_ms_max': _ms(max(after) if after else None),
        'gets_lag': len(during),
        'gets': len(after),
    }


def db_figures(volumes, db_errors=None, latencies=(), lag=None,
               variant=None):
    """The database figures of an arm on Galera.

    :param volumes: cinder's volume dicts after the run.
    :param db_errors: ``{'db_retry_limit': int, 'db_deadlocks': int}`` from
        cinder's log (:func:`bdm_guard_lab.cinder.service.count_db_errors`),
        or None.
    :param latencies: the proxy's ``get_latencies``.
    :param lag: the lag window (see :func:`get_latency`), or None.
    :param variant: the :mod:`bdm_guard_lab.db.variants` name, or None.
    :returns: a dict: ``db_variant``, ``volumes_in_error``,
        ``volumes_stuck`` (still ``creating``/``downloading``
        :data:`GALERA_SETTLE_S` after the boots), ``db_retry_limit``,
        ``db_deadlocks`` and the :func:`get_latency` figures.
    """
    figures = {
        'db_variant': variant,
        'volumes_in_error': len([v for v in volumes
                                 if v.get('status') == 'error']),
        'volumes_stuck': len([v for v in volumes if v.get('status') in
                              ('creating', 'downloading')]),
    }
    figures.update(db_errors or {'db_retry_limit': None,
                                 'db_deadlocks': None})
    figures.update(get_latency(latencies, lag))
    return figures


def format_latency(figures, lagging):
    """A GET latency cell: ``p50 / p95 (max)`` in ms, or ``-``."""
    key = 'get_ms_lag_' if lagging else 'get_ms_'
    if figures.get(key + 'p50') is None:
        return '-'
    return '%s / %s (%s)' % (figures[key + 'p50'], figures[key + 'p95'],
                             figures[key + 'max'])
