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

"""What a simulated run measured, and the rate plot.

Volume counts come from the simulated cinder's own state at the end of the
run (as the lab reads them from cinder's API), never from the arms'
bookkeeping. Request rates count the requests that reached cinder-api, in
1 s buckets of virtual time.
"""

import collections

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: Keys shared with ``bdm-guard demo``'s JSON, then the simulation's own.
KEYS = ('boots', 'succeeded', 'failed', 'failures_by_reason',
        'volumes_created', 'duplicates', 'leaked', 'gets_per_boot',
        'detect_lag_p50_s', 'detect_lag_p95_s', 'wall_s',
        'success_share', 'duplicates_made', 'requests',
        'requests_per_success', 'requests_by_kind',
        'lost_requests', 'peak_rps', 'mean_rps', 'p99_rps',
        'wait_p50_s', 'wait_p95_s', 'virtual_s', 'gets_per_success',
        'detect_lag_mean_s', 'detect_lag_p99_s', 'detect_lag_max_s',
        'lag_over_bound')


def lag_bound(wait_s):
    """The scale targets' bound on one boot's detection lag, in seconds.

    ``max(8 s, 5% of the wait) + 0.5 s``, the wait running from the build
    slot to the volume being ready.
    """
    return max(8.0, 0.05 * wait_s) + 0.5


def percentile(values, share):
    """The ``share`` (0..1) quantile of ``values`` (nearest rank), or None.

    :param values: a list of numbers.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, int(round(share * len(ordered))) - 1))
    return ordered[rank]


def rate_series(rate):
    """``[requests in second 0, second 1, ...]`` from a Counter."""
    if not rate:
        return []
    series = [0] * (max(rate) + 1)
    for second, count in rate.items():
        series[second] = count
    return series


def _round(value, digits=2):
    return None if value is None else round(value, digits)


def summarize(boots, cinder, wall_s):
    """One arm's figures.

    :param boots: the run's :class:`bdm_guard_lab.sim.run.Boot` list.
    :param cinder: the :class:`bdm_guard_lab.sim.cinder.SimCinder`.
    :param wall_s: real seconds the run took.
    :returns: a dict with :data:`KEYS` and ``rate`` (the per-second
        series). ``duplicates``: volumes beyond one per boot that still
        exist; ``duplicates_made``: the same, counting deleted ones;
        ``leaked``: volumes that exist and no successful boot runs on;
        ``requests_per_success``: cinder-api requests per successful boot;
        ``gets_per_success``: the volume GETs of the successful boots, per
        successful boot (a failed boot's GETs are left out, so that an arm
        whose boots fail early is not flattered);
        ``mean_rps``: requests over the seconds from the first request to
        the last; ``detect_lag``: from the volume becoming available to
        the boot knowing it; ``wait``: from build slot to volume ready.
    """
    ok = [b for b in boots if b.volume_id]
    owned = {b.volume_id for b in ok}
    live = cinder.live_by_owner()
    lags = [b.end - cinder.done_at(b.volume_id) for b in ok]
    over = sum(1 for b, lag in zip(ok, lags)
               if lag > lag_bound(b.end - b.start))
    series = rate_series(cinder.rate)
    first = next((i for i, n in enumerate(series) if n), 0)
    span = max(1, len(series) - first)
    total = sum(cinder.requests.values())
    reasons = collections.Counter(b.reason for b in boots if b.reason)
    return {
        'boots': len(boots),
        'succeeded': len(ok),
        'failed': len(boots) - len(ok),
        'failures_by_reason': dict(sorted(reasons.items())),
        'volumes_created': sum(cinder.made(b.index) for b in boots),
        'duplicates': sum(max(0, len(ids) - 1) for ids in live.values()),
        'leaked': sum(1 for ids in live.values() for i in ids
                      if i not in owned),
        'gets_per_boot': _round(cinder.requests['GET volume'] / len(boots)),
        'detect_lag_p50_s': _round(percentile(lags, 0.50)),
        'detect_lag_p95_s': _round(percentile(lags, 0.95)),
        'wall_s': _round(wall_s),
        'success_share': _round(len(ok) / len(boots), 4),
        'duplicates_made': sum(max(0, cinder.made(b.index) - 1)
                               for b in boots),
        'requests': total,
        'requests_per_success': _round(total / len(ok)) if ok else None,
        'requests_by_kind': dict(sorted(cinder.requests.items())),
        'lost_requests': sum(cinder.lost.values()),
        'peak_rps': max(series) if series else 0,
        'mean_rps': _round(total / span),
        'p99_rps': percentile(series[first:], 0.99) or 0,
        'wait_p50_s': _round(percentile([b.end - b.start for b in ok], 0.5)),
        'wait_p95_s': _round(percentile([b.end - b.start for b in ok],
                                        0.95)),
        'virtual_s': _round(max(b.end for b in boots)),
        'gets_per_success': _round(
            sum(cinder.gets[b.index] for b in ok) / len(ok)) if ok else None,
        'detect_lag_mean_s': _round(sum(lags) / len(lags)) if lags else None,
        'detect_lag_p99_s': _round(percentile(lags, 0.99)),
        'detect_lag_max_s': _round(max(lags)) if lags else None,
        'lag_over_bound': over,
        'rate': series,
    }


def common_mean(results):
    """Re-take every arm's ``mean_rps`` over one window, in place.

    The window runs from virtual time 0 to the last request of any arm, so
    that an arm whose boots give up early does not look busier for it.

    :param results: ``{arm: summary}``.
    """
    span = max([len(s['rate']) for s in results.values()] + [1])
    for summary in results.values():
        summary['mean_rps'] = _round(summary['requests'] / span)


def ratio(stock, guard):
    """``stock / guard`` rounded, None when either is missing or 0."""
    if not stock or not guard:
        return None
    return round(stock / guard, 2)


def plot(results, path, title):
    """Plot the request rate of each arm over virtual time, as a PNG.

    Uses matplotlib's object API with the Agg canvas: no pyplot, no
    display, no global state.

    :param results: ``{arm: summary}`` from
        :func:`bdm_guard_lab.sim.run.simulate`.
    :param path: the PNG file to write.
    :param title: the chart title.
    :raises OSError: the file cannot be written.
    """
    from matplotlib.backends import backend_agg
    from matplotlib import figure

    fig = figure.Figure(figsize=(10, 4.5), dpi=100)
    backend_agg.FigureCanvasAgg(fig)
    axes = fig.add_subplot(1, 1, 1)
    for arm, summary in results.items():
        series = summary['rate']
        smooth = _moving_mean(series, 10)
        axes.plot(range(len(series)), series, linewidth=0.4, alpha=0.35)
        axes.plot(range(len(smooth)), smooth, linewidth=1.6,
                  color=axes.lines[-1].get_color(),
                  label='%s (peak %d, mean %.0f req/s)' % (
                      arm, summary['peak_rps'], summary['mean_rps']))
    axes.set_xlabel('virtual time (s)')
    axes.set_ylabel('cinder-api requests/s (1 s buckets)')
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    fig.tight_layout()
    fig.savefig(path, format='png')
    LOG.info('Wrote the rate plot to %s.', path)


def _moving_mean(series, width):
    """A trailing moving mean over ``width`` buckets (10 s)."""
    out, window, total = [], collections.deque(), 0
    for value in series:
        window.append(value)
        total += value
        if len(window) > width:
            total -= window.popleft()
        out.append(total / len(window))
    return out
