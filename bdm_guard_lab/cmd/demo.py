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

"""``bdm-guard demo``: stock nova and bdm-guard on real cinder, side by side.

Runs both arms of :mod:`bdm_guard_lab.arms.run` over the same scenario and
seed,
each against a fresh in-process cinder 29 behind the fault proxy, and prints
the figures side by side. With ``-f json`` the output is
``{"stock": {...}, "guard": {...}}``. Needs the ``lab`` extra.
"""

import contextlib
import logging as std_logging
import sys
import warnings

from cliff import columns
from cliff import show
from oslo_log import log as logging

from bdm_guard import exception
from bdm_guard_lab.arms import metrics
from bdm_guard_lab.arms import run as arms
from bdm_guard_lab.db import lagging_galera as galera_lab
from bdm_guard_lab.faults import scenario as lab_scenario

LOG = logging.getLogger(__name__)

#: Real seconds per scenario second by default: the 50-volume seed run takes
#: about two minutes of wall time for both arms on two cores.
DEFAULT_TIME_SCALE = 0.5

ROWS = (
    ('boots ok', lambda r: '%d / %d' % (r['succeeded'], r['boots'])),
    ('boots failed', lambda r: r['failed']),
    ('failed by reason', lambda r: '\n'.join(
        '%s: %d' % kv for kv in r['failures_by_reason'].items()) or '-'),
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
    ('faults injected', lambda r: '\n'.join(
        '%s: %d' % kv for kv in r['faults_injected'].items()) or '-'),
)


#: Extra rows with ``--db galera`` (the default table is unchanged).
GALERA_ROWS = (
    ('volumes in error', lambda r: r['volumes_in_error']),
    ('volumes stuck creating', lambda r: r['volumes_stuck']),
    ('DB re-reads', metrics.format_rereads),
)


def _na(value):
    return '-' if value is None else value


class ArmColumn(columns.FormattableColumn):
    """One arm's figures: a dict for JSON, ``key=value`` lines for text."""

    def human_readable(self):
        return '\n'.join('%s=%s' % kv for kv in self._value.items())


class ProgressLine:
    """Progress on stderr: one rewritten line on a terminal, else steps.

    On a terminal the line is redrawn at every report (the arms report
    every second); otherwise a line is written when the phase changes,
    at every tenth of the boots, and every 30 s while nothing changes, so
    that CI logs stay short but never silent.
    """

    QUIET_SECONDS = 30.0

    def __init__(self, stream):
        self.stream = stream
        self.tty = stream.isatty()
        self.last = {}

    def __call__(self, arm, done, total, failed, elapsed, phase='booting'):
        text = '[%s] %s: %d/%d boots finished, %d failed, %.0f s' % (
            arm, phase, done, total, failed, elapsed)
        if self.tty:
            self.stream.write('\r\x1b[K' + text +
                              ('\n' if phase == 'done' else ''))
        else:
            step = max(1, total // 10)
            state = (phase, done // step)
            seen, when = self.last.get(arm, (None, None))
            if state != seen or elapsed - when >= self.QUIET_SECONDS:
                self.stream.write(text + '\n')
                self.last[arm] = (state, elapsed)
        self.stream.flush()


@contextlib.contextmanager
def _quiet(verbose):
    """Keep per-request warnings (keystoneauth retries...) off the console."""
    names = ('bdm_guard', 'keystoneauth', 'keystoneauth1', 'nova',
             'cinderclient', 'urllib3', 'oslo_service', 'oslo.service',
             'py.warnings')
    loggers = [std_logging.getLogger(n) for n in names]
    old = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        if verbose < 2:
            warnings.filterwarnings('ignore', category=DeprecationWarning)
            for logger in loggers:
                logger.setLevel(std_logging.CRITICAL)
        try:
            yield
        finally:
            for logger, level in zip(loggers, old):
                logger.setLevel(level)


class Demo(show.ShowOne):
    """Bulk boot on real cinder under faults: stock nova vs bdm-guard.

    Starts cinder 29 (API, scheduler, volume manager) on 127.0.0.1 behind a
    fault-injecting proxy, boots --volumes image-backed volumes at once
    with nova's own code (stock) and with bdm-guard (guard), and reads the
    volume counts from cinder's API. Each arm gets a fresh cinder.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--volumes', type=int, metavar='N',
            help='Boots at once, one new volume each (default: the '
                 'scenario\'s, 50 for the packaged ones).')
        parser.add_argument(
            '--scenario', default='seed', metavar='NAME_OR_FILE',
            help='none, seed, harsh or a scenario YAML file (default: '
                 'seed).')
        parser.add_argument(
            '--seed', type=int,
            help='Seed for faults and durations (default: the scenario\'s).')
        parser.add_argument(
            '--time-scale', type=float, default=DEFAULT_TIME_SCALE,
            metavar='FACTOR',
            help='Real seconds per scenario second, applied to every '
                 'duration in both arms: cinder\'s create and download '
                 'times, the proxy\'s delays and the clients\' clocks '
                 '(default: %(default)s).')
        parser.add_argument(
            '--arm', action='append', choices=arms.ARMS,
            help='Run only this arm (repeat); default stock and guard. '
                 'events: guard woken by cinder\'s notifications through '
                 'a real RabbitMQ (bindep profile "demo").')
        parser.add_argument(
            '--model-stock', action='store_true',
            help='Run the line-for-line model of nova '
                 '(bdm_guard_lab.arms.stock_model) '
                 'for the stock arm even when nova is importable.')
        parser.add_argument(
            '--db', choices=('sqlite', 'galera'), default='sqlite',
            help='cinder\'s database. galera: a 3-node MariaDB Galera '
                 'cluster on loopback behind haproxy (balance roundrobin), '
                 'node 3 lagging during the boots instead of the '
                 'scenario\'s simulated lag; the guard arm\'s cinder '
                 'carries patches/cinder. Needs the bindep "functional" '
                 'profile (default: %(default)s).')
        parser.add_argument(
            '--lag-seconds', type=float,
            default=galera_lab.DEFAULT_LAG_SECONDS, metavar='SECONDS',
            help='With --db galera: real seconds node 3 lags from the '
                 'start of each arm\'s boots (default: %(default)s).')
        parser.add_argument(
            '--cinder-series', metavar='DIR',
            help='With --db galera: the cinder patch series applied to a '
                 'copy of the installed cinder for the guard arm (default: '
                 'the source tree\'s patches/cinder).')
        return parser

    def take_action(self, args):
        if args.volumes is not None and not 1 <= args.volumes <= 1000:
            raise exception.InvalidInput(reason='--volumes must be 1..1000')
        if not 0.01 <= args.time_scale <= 10:
            raise exception.InvalidInput(
                reason='--time-scale must be 0.01..10')
        scenario = lab_scenario.load(args.scenario)
        if args.seed is not None:
            scenario = scenario.with_seed(args.seed)
        chosen = tuple(dict.fromkeys(args.arm or arms.DEFAULT_ARMS))
        progress = ProgressLine(sys.stderr)
        results = {}
        with contextlib.ExitStack() as stack:
            stack.enter_context(_quiet(getattr(self.app.options,
                                               'verbose_level', 1)))
            galera = None
            if args.db == 'galera':
                if not 1 <= args.lag_seconds <= 25:
                    raise exception.InvalidInput(
                        reason='--lag-seconds must be 1..25')
                galera_lab.check_installed()
                galera = stack.enter_context(galera_lab.running(
                    galera_lab.GaleraLab(lag_seconds=args.lag_seconds,
                                         series_dir=args.cinder_series)))
            for arm in chosen:
                results[arm] = arms.run_arm(
                    arm, scenario, volumes=args.volumes,
                    time_scale=args.time_scale, progress=progress,
                    use_nova=not args.model_stock, galera=galera)
        self.results = results
        return chosen, tuple(ArmColumn(results[a]) for a in chosen)

    def produce_output(self, args, column_names, data):
        if args.formatter != 'table':
            return super().produce_output(args, column_names, data)
        header = ['figure'] + ['%s (%s)' % (a, self.results[a].get(
            'stock_impl', 'bdm-guard')) for a in column_names]
        extra = GALERA_ROWS if any('db_rereads' in self.results[a]
                                   for a in column_names) else ()
        rows = [[label] + [get(self.results[a]) for a in column_names]
                for label, get in ROWS + extra]
        self.formatter.emit_list(header, rows, self.app.stdout, args)
        return 0
