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

"""The demo's modes, one :class:`Mode` record each (``--mode``).

* ``nova`` (:mod:`bdm_guard_lab.arms.nova_mode`): servers booted through
  real nova 34 services on real cinder;
* ``library`` (:mod:`bdm_guard_lab.arms.library_mode`): nova's create and
  wait functions called in the lab's process against bdm-guard's
  ``create_and_wait``, on real cinder.

A record holds what the demo (:mod:`bdm_guard_lab.cmd.demo`) and the
benchmark matrix (:mod:`bdm_guard_lab.bench.matrix`) need to know of a
mode: its arms, how to run one, the rows of its table and how to read a
run's successes, boots and GETs.
"""

import dataclasses
import typing

from bdm_guard_lab.arms import library_mode
from bdm_guard_lab.arms import metrics
from bdm_guard_lab.arms import nova_mode


def _na(value):
    return '-' if value is None else value


def _lines(pairs, template='%s: %d'):
    return '\n'.join(template % kv for kv in pairs) or '-'


#: The library mode's table.
LIBRARY_ROWS = (
    ('boots ok', lambda r: '%d / %d' % (r['succeeded'], r['boots'])),
    ('boots failed', lambda r: r['failed']),
    ('failed by reason', lambda r: _lines(r['failures_by_reason'].items())),
    ('volumes created', lambda r: r['volumes_created']),
    ('duplicates', lambda r: r['duplicates']),
    ('leaked', lambda r: r['leaked']),
    ('GETs per boot', lambda r: r['gets_per_boot']),
    ('GETs per successful boot', lambda r: _na(r['gets_per_success'])),
    ('detection lag p50 (s)', lambda r: _na(r['detect_lag_p50_s'])),
    ('detection lag p95 (s)', lambda r: _na(r['detect_lag_p95_s'])),
    ('detection lag p95 (% of creation time)',
     lambda r: _na(r['detect_lag_p95_pct'])),
    ('wall time (s)', lambda r: r['wall_s']),
    ('faults injected', lambda r: _lines(r['faults_injected'].items())),
)

#: The nova mode's table.
NOVA_ROWS = (
    ('servers ACTIVE', lambda r: '%d / %d' % (r['active'], r['servers'])),
    ('servers ERROR', lambda r: r['error']),
    ('faults (server fault [cause])', lambda r: _lines(
        ((n, reason) for reason, n in r['faults'].items()), '%d x %s')),
    ('volumes after boot', lambda r: r['volumes']),
    ('duplicates', lambda r: r['duplicates']),
    ('leaked (no ACTIVE server)', lambda r: r['leaked']),
    ('volumes in error', lambda r: r['in_error']),
    ('left after delete', lambda r: r['left_after_delete']),
    ('GETs per boot', lambda r: r['gets_per_boot']),
    ('GETs per ACTIVE boot', lambda r: _na(r['gets_per_ok_boot'])),
    ('detection lag p50 / p95 (s)', lambda r: '%s / %s' % (
        _na(r['detect_lag_p50_s']), _na(r['detect_lag_p95_s']))),
    ('available to attach p50 / p95 (s)', lambda r: '%s / %s' % (
        _na(r.get('attach_lag_p50_s')), _na(r.get('attach_lag_p95_s')))),
    ('boot to ACTIVE p50 / p95 (s)', lambda r: '%s / %s' % (
        _na(r['boot_seconds_p50']), _na(r['boot_seconds_p95']))),
    ('wall time (s)', lambda r: r['wall_s']),
    ('faults injected', lambda r: _lines(r['faults_injected'].items())),
    ("creates with cinder's key (replayed)", lambda r: (
        '-' if r.get('keyed_creates') is None else '%d (%d)' % (
            r['keyed_creates'], r.get('replayed_creates') or 0))),
)

#: Extra rows when an arm counted route B's events (``--arm route-b``).
ROUTE_B_ROWS = (
    ('volume-created events (nova-api)',
     lambda r: _na(r.get('volume_created_events'))),
    ('waited on the event', lambda r: _na(
        None if r.get('event_path') is None
        else ('yes' if r['event_path'] else 'NO'))),
)

#: Extra rows with ``--db galera`` (the default tables are unchanged).
GALERA_ROWS = (
    ('volumes in error', lambda r: r['volumes_in_error']),
    ('volumes stuck creating', lambda r: r['volumes_stuck']),
    ('DB exceeded retry limit', lambda r: _na(r['db_retry_limit'])),
    ('DBDeadlock logged', lambda r: _na(r['db_deadlocks'])),
    ('GET ms p50 / p95 (max), lag',
     lambda r: metrics.format_latency(r, True)),
    ('GET ms p50 / p95 (max), no lag',
     lambda r: metrics.format_latency(r, False)),
)


def _library_label(figures):
    return figures.get('stock_impl', 'bdm-guard')


def _nova_label(figures):
    """What ran in a nova arm, for the table's header."""
    about = figures.get('nova') or {}
    if figures.get('arm_error'):
        return 'series does not apply'
    if about.get('patches'):
        label = 'nova 34 + %d patches' % len(about['patches'])
        if about.get('keystoneauth_patches'):
            label += ' + keystoneauth %d' % len(about['keystoneauth_patches'])
        if about.get('cinderclient_patches'):
            label += ' + cinderclient %d' % len(about['cinderclient_patches'])
        if about.get('cinder_patches'):
            label += ', cinder 29 + %d' % len(about['cinder_patches'])
        return label
    if about.get('guard'):
        return 'nova 34 + bdm-guard %s' % about['guard']
    return 'nova 34'


def _library_line(scenario, count, arm, figures):
    return '%-6s N=%-4d %-5s ok %d/%d leaked %d dup %d GETs/boot %.1f' % (
        scenario, count, arm, figures['succeeded'], figures['boots'],
        figures['leaked'], figures['duplicates'], figures['gets_per_boot'])


def _nova_line(scenario, count, arm, figures):
    return ('%-6s N=%-4d %-8s ACTIVE %s/%d leaked %s dup %s left %s '
            'GETs/boot %s' % (
                scenario, count, arm, figures['active'], count,
                figures['leaked'], figures['duplicates'],
                figures['left_after_delete'], figures['gets_per_boot']))


@dataclasses.dataclass(frozen=True)
class Mode:
    """One mode of the demo and the benchmark.

    :param name: ``--mode``'s value.
    :param module: the mode's module; :meth:`run` calls its ``run_arm``
        (and ``run_cases``) when it runs, so a test may replace them.
    :param count: the keyword ``run_arm`` takes the boots by (``volumes``
        or ``servers``).
    :param arms: every arm of the mode, ``stock`` first.
    :param default_arms: the arms the demo runs when none is chosen.
    :param healthy_arms: the arms that also run the healthy case
        (``--healthy-servers``); empty: the mode has none.
    :param volumes: the benchmark's default N.
    :param rows: the demo table's rows, ``(label, get(figures))``.
    :param galera_rows: the rows added with ``--db galera``.
    :param event_rows: the rows added when an arm's figures have
        ``volume_created_events`` (route B).
    :param label: ``label(figures)``: what ran in an arm, for the header.
    :param options: ``options(args)``: the demo's options for ``run_arm``.
    :param ok: ``ok(figures)``: successful boots (int).
    :param boots: ``boots(figures)``: boots (int).
    :param gets_ok: ``gets_ok(figures)``: volume GETs per successful boot
        (float or None).
    :param line: ``line(scenario, n, arm, figures)``: the benchmark's
        progress line for one run (str).
    """

    name: str
    module: typing.Any
    count: str
    arms: tuple[str, ...]
    default_arms: tuple[str, ...]
    healthy_arms: tuple[str, ...]
    volumes: tuple[int, ...]
    rows: tuple
    galera_rows: tuple
    label: typing.Callable
    options: typing.Callable
    ok: typing.Callable
    boots: typing.Callable
    gets_ok: typing.Callable
    line: typing.Callable
    event_rows: tuple = ()

    def run(self, arm, scenario, count=None, **kwargs):
        """Run one arm of the mode on fresh services.

        :param arm: one of :attr:`arms`.
        :param scenario: a :class:`bdm_guard_lab.faults.scenario.Scenario`.
        :param count: boots (None: the scenario's).
        :param kwargs: the mode's ``run_arm`` options.
        :returns: the arm's figures, without the servers' records.
        :raises ValueError: unknown arm.
        :raises bdm_guard_lab.exception.LabError: a service did not start.
        """
        figures = self.module.run_arm(arm, scenario,
                                      **{self.count: count}, **kwargs)
        figures.pop('server_records', None)
        return figures

    def run_cases(self, arm, cases, **kwargs):
        """Run one arm's cases on one start of its services.

        :param cases: ``[(scenario, count or None)]``, see
            :func:`bdm_guard_lab.arms.nova_mode.run_cases`.
        :returns: one figures dict per case, without the servers' records.
        :raises ValueError: the mode has no healthy case, or see
            :func:`~bdm_guard_lab.arms.nova_mode.run_cases`.
        """
        if not self.healthy_arms:
            raise ValueError('--mode %s runs one case per arm' % self.name)
        results = self.module.run_cases(arm, cases, **kwargs)
        for figures in results:
            figures.pop('server_records', None)
        return results


NOVA = Mode(
    name='nova', module=nova_mode, count='servers', arms=nova_mode.ARMS,
    default_arms=nova_mode.DEFAULT_ARMS,
    healthy_arms=('stock', 'launcher', 'events'), volumes=(10, 50),
    rows=NOVA_ROWS,
    # NOVA_ROWS already counts the volumes in error.
    galera_rows=GALERA_ROWS[1:], label=_nova_label,
    options=lambda args: {
        'nova_series': args.nova_series,
        'keystoneauth_series': args.keystoneauth_series,
        'cinderclient_series': getattr(args, 'cinderclient_series', None),
        'cinder_series': getattr(args, 'cinder_series', None)},
    ok=lambda r: r['active'] or 0, boots=lambda r: r['servers'],
    gets_ok=lambda r: r.get('gets_per_ok_boot'), line=_nova_line,
    event_rows=ROUTE_B_ROWS)

LIBRARY = Mode(
    name='library', module=library_mode, count='volumes',
    arms=library_mode.ARMS, default_arms=library_mode.DEFAULT_ARMS,
    healthy_arms=(), volumes=(10, 50, 200), rows=LIBRARY_ROWS,
    galera_rows=GALERA_ROWS, label=_library_label,
    options=lambda args: {'use_nova': not args.model_stock},
    ok=lambda r: r['succeeded'], boots=lambda r: r['boots'],
    gets_ok=lambda r: r.get('gets_per_success'), line=_library_line)

#: The modes by name, the default first.
MODES = {mode.name: mode for mode in (NOVA, LIBRARY)}
