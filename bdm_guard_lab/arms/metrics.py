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


def db_figures(volumes, read_your_writes, stats):
    """The database figures of an arm on Galera.

    :param volumes: cinder's volume dicts after the run.
    :param read_your_writes: the arm's cinder carries ``patches/cinder``.
    :param stats: the :class:`bdm_guard.db.Stats` counters the patched
        cinder wrote when it stopped (dict), or None.
    :returns: ``{'volumes_in_error': int, 'volumes_stuck': int,
        'db_rereads': int or None, 'db_stats': dict or None}``;
        ``volumes_stuck`` are still ``creating``/``downloading`` after the
        settle timeout; ``db_rereads`` counts the series' second attempts
        (``rereads + rewrites``), None for a stock cinder.
    """
    rereads = None
    if read_your_writes and stats:
        rereads = stats.get('rereads', 0) + stats.get('rewrites', 0)
    elif read_your_writes:
        rereads = 0
    return {
        'volumes_in_error': len([v for v in volumes
                                 if v.get('status') == 'error']),
        'volumes_stuck': len([v for v in volumes if v.get('status') in
                              ('creating', 'downloading')]),
        'db_rereads': rereads,
        'db_stats': stats if read_your_writes else None,
    }


def format_rereads(figures):
    """The "DB re-reads" cell: ``-`` for stock, else totals and detail."""
    stats = figures.get('db_stats')
    if figures.get('db_rereads') is None or stats is None:
        return '-'
    return '%d\n(reads %d/%d, writes %d/%d found)' % (
        figures['db_rereads'], stats.get('rereads_found', 0),
        stats.get('rereads', 0), stats.get('rewrites_found', 0),
        stats.get('rewrites', 0))
