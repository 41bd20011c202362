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
"""The Pareto table of ``bdm-guard simulate --pareto``: GETs against lag.

Every row runs the same boots, volume timings and faults (one seed) with
one way of waiting, and is given as ratios to the stock arm of the same
run: nova 34's 3 s loop (modelled), bdm-guard with fixed intervals, its
old back-off, the completion schedule (with its default priors, and with
priors 4x too low and 4x too high), and the events arm. The targets
(``doc/source/admin/performance.rst``) are checked on every completion
row.
"""

from oslo_config import cfg

from bdm_guard import opts
from bdm_guard_lab.sim import run as sim_run


def _fixed(seconds):
    return {'poll_schedule': 'backoff', 'poll_multiplier': 1.0,
            'poll_initial_interval': seconds,
            'downloading_initial_interval': seconds,
            'creating_max_interval': seconds,
            'downloading_max_interval': seconds,
            'max_interval_fraction': 0.0, 'poll_jitter': 0.0}


def _prior(factor):
    group = dict(opts.list_opts())[opts.GROUP]
    defaults = {o.name: o.default for o in group}
    return {'completion_creating_median':
            defaults['completion_creating_median'] * factor,
            'completion_copy_per_gib':
            defaults['completion_copy_per_gib'] * factor}


#: ``(name, arm, [bdm_guard] overrides)``, in the table's order.
ROWS = (
    ('stock nova 34 (3 s)', 'stock', {}),
    ('fixed 3 s', 'guard', _fixed(3.0)),
    ('fixed 5 s', 'guard', _fixed(5.0)),
    ('backoff (1.0 default)', 'guard', {'poll_schedule': 'backoff'}),
    ('completion (default)', 'guard', {}),
    ('completion, prior 4x low', 'guard', _prior(0.25)),
    ('completion, prior 4x high', 'guard', _prior(4.0)),
    ('events', 'events', {}),
)

#: Columns: ``(heading, summary key)``.
COLUMNS = (
    ('ok', 'succeeded'), ('GETs/ok boot', 'gets_per_success'),
    ('lag mean', 'detect_lag_mean_s'), ('p50', 'detect_lag_p50_s'),
    ('p95', 'detect_lag_p95_s'), ('p99', 'detect_lag_p99_s'),
    ('max', 'detect_lag_max_s'), ('over bound', 'lag_over_bound'),
)

#: The targets for the completion rows, as ratios to stock:
#: ``(summary key, largest ratio)``; the max lag is checked per boot
#: (``lag_over_bound`` must be 0).
TARGETS = (('gets_per_success', 0.75), ('detect_lag_mean_s', 1.0),
           ('detect_lag_p95_s', 1.5), ('detect_lag_p99_s', 2.0))


def _conf(base, overrides):
    conf = opts.get_conf(cfg.ConfigOpts())
    conf([], project='bdm_guard', default_config_files=[])
    for name, value in base.bdm_guard.items():
        if value is not None:
            conf.set_override(name, value, group=opts.GROUP)
    for name, value in overrides.items():
        conf.set_override(name, value, group=opts.GROUP)
    return conf


def run(workload, faults, seed=0, conf=None, rows=ROWS):
    """Run every row over the same boots.

    :param conf: the base ConfigOpts (defaults if None); each row's
        overrides go on a copy.
    :returns: ``[(name, summary)]``.
    """
    base = conf or opts.get_conf()
    results = []
    for name, arm, overrides in rows:
        summary = sim_run.run_arm(arm, workload, faults, seed,
                                  _conf(base, overrides))
        results.append((name, summary))
    return results


def verdict(summary, stock):
    """Which of the targets one row misses (empty: all met)."""
    missed = []
    for key, limit in TARGETS:
        ratio = _ratio(summary[key], stock[key])
        if ratio is None or ratio > limit:
            missed.append('%s %s > %s' % (key, ratio, limit))
    if summary['lag_over_bound']:
        missed.append('%d lags over the bound' % summary['lag_over_bound'])
    return missed


def _ratio(value, reference):
    if value is None or not reference:
        return None
    return round(value / reference, 2)


def table(results):
    """Rows of text cells: each figure, then its ratio to stock."""
    stock = dict(results)[ROWS[0][0]]
    header = ['schedule'] + [h for h, _ in COLUMNS] + [
        'GETs x stock', 'mean x', 'p95 x', 'p99 x', 'targets']
    rows = [header]
    for name, summary in results:
        cells = [name] + ['-' if summary[k] is None else str(summary[k])
                          for _, k in COLUMNS]
        cells += [str(_ratio(summary[k], stock[k]))
                  for k, _ in TARGETS]
        if name.startswith('completion'):
            missed = verdict(summary, stock)
            cells.append('met' if not missed else '; '.join(missed))
        else:
            cells.append('')
        rows.append(cells)
    return rows


#: The note printed under the table.
NOTE = ('Lags in seconds; "x" columns are ratios to stock nova in the same '
        'run. over bound: boots whose lag exceeded max(8 s, 5% of the '
        'wait) + 0.5 s. targets (completion rows): GETs <= 0.75x, '
        'mean <= 1x, p95 <= 1.5x, p99 <= 2x, none over the bound.')
