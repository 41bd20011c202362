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

"""The benchmark matrix: ``python -m bdm_guard_lab.bench.matrix --out
results/``.

In nova mode (the default) it runs the nova arms of
:mod:`bdm_guard_lab.arms.nova_mode` (stock, launcher, patched, events:
servers booted through real nova 34) for every N in ``--volumes`` (default
10, 50) and every profile in ``--scenario`` (none, seed, harsh) on real
cinder; ``--mode library`` runs the arms of
:mod:`bdm_guard_lab.arms.library_mode` (default N 10, 50, 200). Both modes
are the demo's :class:`~bdm_guard_lab.arms.modes.Mode` records. It
writes ``bench.json`` (every figure, and the guarded / stock ratios of
:func:`ratios`) and ``bench.png`` (success share, leaked volumes and GETs
per boot, every arm) to ``--out``.
"""

import argparse
import json
import logging as std_logging
import os
import sys
import time

from bdm_guard import exception
from bdm_guard_lab.arms import guard
from bdm_guard_lab.arms import modes
from bdm_guard_lab.faults import scenario as lab_scenario

#: Real seconds per scenario second, the demo's. Below about 0.5, HTTP
#: round trips on a loaded two-core machine become long in scenario time:
#: the 3 s read-after-write window closes before a client's next read, and
#: cinder's own overhead (hundreds of creates at once) stretches every
#: volume past its scaled deadline. The matrix takes about 30 minutes here.
DEFAULT_TIME_SCALE = 0.5


def _arms(mode):
    """A mode's arms but the opt-in ones (``route-b``), ``stock`` first."""
    return tuple(a for a in mode.arms if a not in guard.OPT_IN)


#: The modes, by name (:data:`bdm_guard_lab.arms.modes.MODES`).
MODES = modes.MODES


def run_matrix(volumes, scenarios, *, time_scale, seed=None, log=None,
               mode='nova'):
    """Run every (scenario, N, arm).

    :param volumes: list of N.
    :param scenarios: list of scenario names or files.
    :param time_scale: real seconds per scenario second.
    :param seed: override every scenario's seed.
    :param log: ``log(text)`` for progress lines.
    :param mode: ``nova`` (servers through real nova) or ``library``.
    :returns: a list of result rows (dicts with ``scenario``, ``volumes``,
        ``arm`` and the arm's figures).
    :raises bdm_guard_lab.exception.InvalidScenario: a bad scenario.
    """
    loaded = [lab_scenario.load(name) for name in scenarios]
    if seed is not None:
        loaded = [s.with_seed(seed) for s in loaded]
    rows = []
    run = MODES[mode]
    for scen in loaded:
        for count in volumes:
            for arm in _arms(run):
                started = time.monotonic()
                figures = run.run(arm, scen, count, time_scale=time_scale)
                rows.append(dict(figures, scenario=scen.name, volumes=count,
                                 arm=arm))
                if log:
                    log('%s (%.0f s)%s' % (
                        run.line(scen.name, count, arm, figures),
                        time.monotonic() - started,
                        ' ' + figures['arm_error']
                        if figures.get('arm_error') else ''))
    return rows


def ratios(rows, mode='library'):
    """Guarded arms against stock for every (scenario, N) that ran both.

    :param rows: :func:`run_matrix` rows.
    :param mode: ``library`` (arm ``guard``) or ``nova`` (arms ``launcher``
        and ``patched``, one entry each, with ``arm``).
    :returns: a list of dicts: ``scenario``, ``volumes``,
        ``gets_per_success_ratio`` (guarded / stock, volume GETs per
        successful boot; None when an arm had no success),
        ``lag_p95_pct`` (library mode: ``{'stock': x, 'guard': y}``,
        detection lag p95 in percent of the creation time) and
        ``lag_p95_s`` (the p95 in seconds, per arm).
    """
    if mode == 'nova':
        return _nova_ratios(rows)
    index = {(r['scenario'], r['volumes'], r['arm']): r for r in rows}
    out = []
    for scen, count in dict.fromkeys((r['scenario'], r['volumes'])
                                     for r in rows):
        stock = index.get((scen, count, 'stock'))
        guard = index.get((scen, count, 'guard'))
        if not stock or not guard:
            continue
        ratio = None
        if stock.get('gets_per_success') and guard.get('gets_per_success'):
            ratio = round(guard['gets_per_success'] /
                          stock['gets_per_success'], 2)
        out.append({
            'scenario': scen, 'volumes': count,
            'gets_per_success_ratio': ratio,
            'lag_p95_pct': {a: r.get('detect_lag_p95_pct')
                            for a, r in (('stock', stock), ('guard', guard))},
            'lag_p95_s': {a: r.get('detect_lag_p95_s')
                          for a, r in (('stock', stock), ('guard', guard))},
        })
    return out


def _nova_ratios(rows):
    index = {(r['scenario'], r['volumes'], r['arm']): r for r in rows}
    out = []
    for scen, count in dict.fromkeys((r['scenario'], r['volumes'])
                                     for r in rows):
        stock = index.get((scen, count, 'stock'))
        for arm in ('launcher', 'patched'):
            guarded = index.get((scen, count, arm))
            if not stock or not guarded:
                continue
            ratio = None
            if stock.get('gets_per_ok_boot') and guarded.get(
                    'gets_per_ok_boot'):
                ratio = round(guarded['gets_per_ok_boot'] /
                              stock['gets_per_ok_boot'], 2)
            out.append({
                'scenario': scen, 'volumes': count, 'arm': arm,
                'gets_per_success_ratio': ratio,
                'lag_p95_s': {a: r.get('detect_lag_p95_s')
                              for a, r in (('stock', stock), (arm, guarded))},
            })
    return out


def plot(rows, path, mode='library'):
    """Write a PNG: success share, leaked volumes, GETs per boot.

    :param rows: :func:`run_matrix` rows.
    :param path: the PNG file.
    :param mode: ``library`` or ``nova`` (which arms, which figures).
    """
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    cases = list(dict.fromkeys((r['scenario'], r['volumes']) for r in rows))
    labels = ['%s\nN=%d' % case for case in cases]
    index = {(r['scenario'], r['volumes'], r['arm']): r for r in rows}
    ok, boots = MODES[mode].ok, MODES[mode].boots
    panels = (('boots succeeded (%)',
               lambda r: 100.0 * ok(r) / boots(r)),
              ('leaked volumes', lambda r: r['leaked'] or 0),
              ('volume GETs per boot', lambda r: r['gets_per_boot'] or 0))
    fig, axes = pyplot.subplots(len(panels), 1, figsize=(10, 9),
                                sharex=True)
    names = _arms(MODES[mode])
    width = 0.8 / len(names)
    for axis, (title, value) in zip(axes, panels):
        for number, arm in enumerate(names):
            offset = (number - (len(names) - 1) / 2.0) * width
            heights = [value(index[case + (arm,)])
                       if case + (arm,) in index else 0 for case in cases]
            axis.bar([i + offset for i in range(len(cases))], heights,
                     width, label=arm)
        axis.set_ylabel(title)
        axis.grid(axis='y', alpha=0.3)
    axes[0].legend(loc='lower left')
    axes[-1].set_xticks(range(len(cases)))
    axes[-1].set_xticklabels(labels)
    fig.suptitle('bdm-guard lab (%s mode): stock nova 34 vs bdm-guard on '
                 'real cinder 29' % mode)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m bdm_guard_lab.bench.matrix', description=__doc__.strip(
        ).splitlines()[0])
    parser.add_argument('--out', default='results',
                        help='Folder for bench.json and bench.png.')
    parser.add_argument('--mode', choices=sorted(MODES), default='nova',
                        help='nova: servers through real nova (default); '
                             'library: the library-level arms.')
    parser.add_argument('--volumes', type=int, nargs='+',
                        help='N values (default: nova 10 50; library 10 '
                             '50 200).')
    parser.add_argument('--scenario', nargs='+',
                        default=['none', 'seed', 'harsh'])
    parser.add_argument('--time-scale', type=float,
                        default=DEFAULT_TIME_SCALE)
    parser.add_argument('--seed', type=int)
    args = parser.parse_args(argv)
    for name in ('keystoneauth', 'bdm_guard', 'nova', 'urllib3'):
        std_logging.getLogger(name).setLevel(std_logging.CRITICAL)
    started = time.monotonic()
    try:
        rows = run_matrix(args.volumes or list(MODES[args.mode].volumes),
                          args.scenario, time_scale=args.time_scale,
                          seed=args.seed, mode=args.mode,
                          log=lambda text: print(text, file=sys.stderr,
                                                 flush=True))
    except exception.BdmGuardException as exc:
        print('bench: %s' % exc, file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    result = {'time_scale': args.time_scale, 'mode': args.mode,
              'wall_s': round(time.monotonic() - started, 1),
              'rows': rows, 'ratios': ratios(rows, args.mode)}
    for item in result['ratios']:
        if args.mode == 'nova':
            print('%-6s N=%-4d %s/stock GETs per ACTIVE boot %s; lag p95 '
                  '(s) %s' % (item['scenario'], item['volumes'],
                              item['arm'], item['gets_per_success_ratio'],
                              item['lag_p95_s']), file=sys.stderr)
            continue
        print('%-6s N=%-4d guard/stock GETs per successful boot %s; '
              'lag p95 %% of creation time: stock %s, guard %s' % (
                  item['scenario'], item['volumes'],
                  item['gets_per_success_ratio'],
                  item['lag_p95_pct']['stock'], item['lag_p95_pct']['guard']),
              file=sys.stderr)
    with open(os.path.join(args.out, 'bench.json'), 'w') as stream:
        json.dump(result, stream, indent=2, sort_keys=True)
    plot(rows, os.path.join(args.out, 'bench.png'), args.mode)
    print('wrote %s (%.0f s)' % (os.path.join(args.out, 'bench.json'),
                                 result['wall_s']), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
