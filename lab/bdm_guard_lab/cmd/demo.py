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

"""``bdm-guard demo``: servers booted through real nova on real cinder.

The default mode (``--mode nova``) runs the arms of
:mod:`bdm_guard_lab.arms.nova_mode` -- ``stock``, ``launcher``,
``patched`` and ``events`` nova 34; ``route-b`` when named with
``--arm`` -- over the same scenario and seed,
each with a fresh cinder 29 behind the fault proxy and a fresh nova, and
prints the figures side by side. With ``-f json`` the output is
``{"arms": {"<arm>": {...}}, "scenario": str, "seed": int}``.

``--mode library`` runs the library-level arms of
:mod:`bdm_guard_lab.arms.library_mode` (nova's create and wait functions
against bdm-guard's ``create_and_wait``); its ``-f json`` output is
``{"stock": {...}, "guard": {...}}``. With ``--db galera`` every arm runs
once per database variant (:mod:`bdm_guard_lab.db.variants`), in columns
and JSON keys named ``<arm>/<variant>``. Needs the ``lab`` extra. What
differs from one mode to the other is its
:class:`~bdm_guard_lab.arms.modes.Mode` record.
"""

import contextlib
import dataclasses
import json
import logging as std_logging
import sys
import textwrap
import time
import warnings

from cliff import columns
from cliff import show
from oslo_log import log as logging

from bdm_guard import exception
from bdm_guard_lab.arms import compare
from bdm_guard_lab.arms import modes
from bdm_guard_lab.arms import nova_mode
from bdm_guard_lab.db import lagging_galera as galera_lab
from bdm_guard_lab.db import variants as galera_variants
from bdm_guard_lab.faults import scenario as lab_scenario

LOG = logging.getLogger(__name__)

#: Real seconds per scenario second by default: the 50-volume seed run takes
#: about two minutes of wall time for both arms on two cores.
DEFAULT_TIME_SCALE = 0.5


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
    """Bulk boot from image onto new volumes, real nova on real cinder.

    Starts, for each arm, a fresh cinder 29 (API, scheduler, volume manager)
    on 127.0.0.1 behind a fault-injecting proxy and a fresh nova 34 (API,
    conductor, scheduler, computes with the fake virt driver) whose cinder
    is the proxy; boots --volumes servers at once through nova's API, reads
    the servers from nova and the volumes from cinder, deletes every server
    and counts the volumes left. Arms: stock nova, nova with the bdm-guard
    launcher's drop-in, nova with patches/nova. --mode library runs the
    library-level comparison instead.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--mode', choices=tuple(modes.MODES), default=modes.NOVA.name,
            help='nova: servers booted through real nova 34 services (arms '
                 'stock, launcher, patched). library: nova\'s create and '
                 'wait functions called directly vs bdm-guard\'s '
                 'create_and_wait (arms stock, guard). Default: '
                 '%(default)s.')
        parser.add_argument(
            '--volumes', '--servers', type=int, metavar='N', dest='volumes',
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
            help='Real seconds per scenario second, applied to cinder\'s '
                 'create and download times and the proxy\'s delays; in '
                 'library mode also to the clients\' clocks (nova\'s own '
                 'clocks always run in real time; default: %(default)s).')
        parser.add_argument(
            '--arm', action='append',
            choices=sorted({a for m in modes.MODES.values() for a in m.arms}),
            help='Run only this arm (repeat); default the mode\'s default '
                 'arms (nova: stock, launcher, patched, events; library: '
                 'stock, guard; library mode also has events: guard woken '
                 'by cinder\'s notifications through a real RabbitMQ). '
                 'Nova mode also has route-b, run only when named: nova '
                 'and cinder both carrying route B\'s series, nova waiting '
                 'on cinder\'s volume-created events.')
        parser.add_argument(
            '--model-stock', action='store_true',
            help='Library mode: run the line-for-line model of nova '
                 '(bdm_guard_lab.nova_wait_model) '
                 'for the stock arm even when nova is importable.')
        self._add_database_options(parser)
        self._add_nova_options(parser)
        return parser

    @staticmethod
    def _add_database_options(parser):
        parser.add_argument(
            '--db', choices=('sqlite', 'galera'), default='sqlite',
            help='cinder\'s database. galera: a 3-node MariaDB Galera '
                 'cluster on loopback behind haproxy, node 3 lagging during '
                 'the boots instead of the scenario\'s simulated lag; each '
                 'arm runs once per --db-variant. Needs the bindep '
                 '"functional" profile (default: %(default)s).')
        parser.add_argument(
            '--db-variant', action='append', choices=galera_variants.NAMES,
            help='With --db galera: how cinder\'s database is configured '
                 '(repeat). multi-writer: stock, haproxy roundrobin; '
                 'sync-wait: [database] mysql_wsrep_sync_wait = 3; '
                 'single-writer: haproxy sends everything to node 1, the '
                 'others backup. Default: all three.')
        parser.add_argument(
            '--lag-seconds', type=float,
            default=galera_lab.DEFAULT_LAG_SECONDS, metavar='SECONDS',
            help='With --db galera: real seconds node 3 lags from the '
                 'start of each arm\'s boots (default: %(default)s).')

    @staticmethod
    def _add_nova_options(parser):
        parser.add_argument(
            '--healthy-servers', type=int, default=0, metavar='N',
            help='Nova mode: also boot N servers with no fault (the '
                 'scenario without its rules: "none" for the packaged '
                 'ones) in the arms stock, launcher and events, first, on '
                 'the services the arm then runs the scenario on, and '
                 'print both cases side by side on the boots every arm '
                 'finished, with the demo\'s targets. 0: only the '
                 'scenario (default: %(default)s; tox -e demo: 20).')
        parser.add_argument(
            '--nova-series', metavar='DIR',
            help='Nova mode: the nova patch series (a folder with a '
                 '"series" file) applied to a copy of the installed nova '
                 'for the patched arm (default: the source tree\'s '
                 'patches/nova).')
        parser.add_argument(
            '--keystoneauth-series', metavar='DIR',
            help='Nova mode: the keystoneauth series applied to a copy of '
                 'the installed keystoneauth1 for the patched arm (a POST '
                 'that may have been sent is not resent); "none": '
                 'keystoneauth1 as installed (default: the source tree\'s '
                 'patches/keystoneauth).')
        parser.add_argument(
            '--cinderclient-series', metavar='DIR',
            help='Nova mode: the python-cinderclient series applied to a '
                 'copy of the installed python-cinderclient for the '
                 'patched arm, so that nova can send cinder\'s idempotency '
                 'key; "none": as installed (default: the source tree\'s '
                 'patches/python-cinderclient).')
        parser.add_argument(
            '--cinder-series', metavar='DIR',
            help='Nova mode: the cinder series applied to a copy of the '
                 'installed cinder that the patched arm\'s cinder runs '
                 '(the idempotency key under microversion 3.72); "none": '
                 'cinder as installed (default: the source tree\'s '
                 'patches/cinder).')

    def _arms(self, args):
        known = self.mode.arms
        chosen = tuple(dict.fromkeys(args.arm or self.mode.default_arms))
        wrong = [a for a in chosen if a not in known]
        if wrong:
            raise exception.InvalidInput(
                reason='--arm %s is not an arm of --mode %s (%s)' % (
                    ', '.join(wrong), args.mode, ', '.join(known)))
        return chosen

    def _healthy(self, args, scenario, chosen):
        """The healthy case's scenario and arms, or ``(None, ())``."""
        if not args.healthy_servers:
            return None, ()
        if not 1 <= args.healthy_servers <= 1000:
            raise exception.InvalidInput(
                reason='--healthy-servers must be 0..1000')
        if not self.mode.healthy_arms or args.db != 'sqlite':
            raise exception.InvalidInput(
                reason='--healthy-servers runs with --mode nova on sqlite '
                       'only')
        if not scenario.rules:
            # The scenario is the healthy case already.
            return None, ()
        return (healthy_scenario(scenario),
                tuple(a for a in chosen if a in self.mode.healthy_arms))

    def take_action(self, args):
        started = time.monotonic()
        self.mode = modes.MODES[args.mode]
        scenario = self._scenario(args)
        chosen = self._arms(args)
        healthy, healthy_arms = self._healthy(args, scenario, chosen)
        progress = ProgressLine(sys.stderr)
        results, healthy_results = {}, {}
        with contextlib.ExitStack() as stack:
            stack.enter_context(_quiet(getattr(self.app.options,
                                               'verbose_level', 1)))
            galera, chosen = self._galera(args, stack, chosen)
            options = dict(self.mode.options(args),
                           time_scale=args.time_scale, progress=progress)
            for column in chosen:
                arm, _, variant = column.partition('/')
                if arm in healthy_arms:
                    # One start of the arm's services for both cases, the
                    # healthy one first (on fresh services).
                    healthy_results[arm], results[column] = (
                        self.mode.run_cases(
                            arm, [(healthy, args.healthy_servers),
                                  (scenario, args.volumes)], **options))
                    continue
                extra = {'galera': galera, 'db_variant': variant} if (
                    variant) else {}
                results[column] = self.mode.run(
                    arm, scenario, args.volumes, **options, **extra)
        self.results = results
        self.scenario = scenario
        self.healthy = healthy
        self.healthy_results = healthy_results
        self.wall_s = round(time.monotonic() - started, 1)
        return chosen, tuple(ArmColumn(results[a]) for a in chosen)

    def _scenario(self, args):
        """The scenario ``args`` name, once the numbers are checked."""
        if args.volumes is not None and not 1 <= args.volumes <= 1000:
            raise exception.InvalidInput(reason='--volumes must be 1..1000')
        if not 0.01 <= args.time_scale <= 10:
            raise exception.InvalidInput(
                reason='--time-scale must be 0.01..10')
        scenario = lab_scenario.load(args.scenario)
        if args.seed is not None:
            scenario = scenario.with_seed(args.seed)
        return scenario

    def _galera(self, args, stack, chosen):
        """With ``--db galera``: the started cluster, one column per variant.

        :returns: ``(galera or None, columns)``.
        """
        if args.db != 'galera':
            return None, chosen
        if not 1 <= args.lag_seconds <= 25:
            raise exception.InvalidInput(
                reason='--lag-seconds must be 1..25')
        galera_lab.check_installed()
        galera = stack.enter_context(galera_lab.running(
            galera_lab.GaleraLab(lag_seconds=args.lag_seconds)))
        return galera, tuple(
            '%s/%s' % (arm, variant) for variant in dict.fromkeys(
                args.db_variant or galera_variants.NAMES)
            for arm in chosen)

    def _cases(self):
        """``[(label, scenario, results)]``: the healthy case first."""
        cases = []
        if self.healthy_results:
            cases.append(('healthy', self.healthy, self.healthy_results))
        cases.append(('healthy' if not self.scenario.rules else 'faulted',
                      self.scenario, self.results))
        return cases

    def _summary(self):
        """The comparison and verdicts of the nova mode (JSON-able)."""
        compared, verdicts = {}, []
        for label, scen, results in self._cases():
            if any('/' in column for column in results):
                continue        # Galera variants: not compared here.
            case = compare.compare(results)
            case.update({'scenario': scen.name, 'case': label})
            compared[label] = case
            if label == 'healthy':
                verdicts.extend(compare.healthy_verdicts(case))
            else:
                verdicts.extend(compare.fault_verdicts(results, scen.name))
        return compared, verdicts

    def produce_output(self, args, column_names, data):
        if self.mode is modes.NOVA:
            return self._nova_output(args, column_names)
        if args.formatter != 'table':
            return super().produce_output(args, column_names, data)
        self._table(args, list(column_names), self.results)
        return 0

    def _nova_output(self, args, column_names):
        compared, verdicts = self._summary()
        if args.formatter == 'json':
            out = {'arms': self.results, 'scenario': self.scenario.name,
                   'seed': self.scenario.seed, 'compared': compared,
                   'verdicts': verdicts, 'wall_s': self.wall_s}
            if self.healthy_results:
                out['healthy'] = {'arms': self.healthy_results,
                                  'scenario': self.healthy.name,
                                  'servers': args.healthy_servers}
            json.dump(out, self.app.stdout,
                      indent=2 if getattr(args, 'noindent', False) is False
                      else None, sort_keys=True)
            self.app.stdout.write('\n')
            return 0
        write = self._write
        if self.healthy_results:
            write('%s case: %s servers per arm; %s ran it on the services '
                  'of their healthy case (below), once its servers were '
                  'deleted' % (self.scenario.name, _servers(self.results),
                               ', '.join(self.healthy_results)))
        self._table(args, list(column_names), self.results)
        if self.healthy_results:
            servers = args.healthy_servers
            most = max(r['servers'] for r in self.results.values())
            fewer = ''
            if servers < most:
                fewer = (' (fewer than the %s case\'s %d, to keep the '
                         'demo within 25 minutes)' % (self.scenario.name,
                                                      most))
            write('\nhealthy case: scenario %s, %d servers per arm%s, run '
                  'first on each arm\'s fresh cinder and nova, with %d '
                  'nova-computes as the %s case' % (
                      self.healthy.name, servers, fewer,
                      nova_mode.computes_for(max(servers, most)),
                      self.scenario.name))
            self._table(args, list(self.healthy_results),
                        self.healthy_results)
        if compared:
            write('')
            self._compared_table(args, compared)
        if verdicts:
            write('\ntargets (information: a missed target does '
                  'not fail the demo):')
            for verdict in verdicts:
                # One line each, unwrapped: easy to grep in a CI log.
                self.app.stdout.write(verdict['text'] + '\n')
        write('\ndemo wall time: %.1f min' % (self.wall_s / 60.0))
        return 0

    def _write(self, text):
        """Write prose to stdout, wrapped at 79 columns."""
        lead = '\n' if text.startswith('\n') else ''
        self.app.stdout.write(lead + textwrap.fill(
            text.lstrip('\n'), 79, subsequent_indent='  ',
            break_on_hyphens=False) + '\n')

    def _table(self, args, column_names, results):
        """The mode's table: one row per figure, one column per arm."""
        header = ['figure'] + ['%s (%s)' % (a, self.mode.label(results[a]))
                               for a in column_names]
        failed = {a: results[a]['arm_error'] for a in column_names
                  if results[a].get('arm_error')}
        extra = self.mode.galera_rows if any(
            'db_variant' in results[a] for a in column_names) else ()
        if any(results[a].get('volume_created_events') is not None
               for a in column_names):
            extra += self.mode.event_rows
        rows = []
        for label, get in self.mode.rows + extra:
            rows.append([label] + [
                ('did not run' if a in failed else get(results[a]))
                for a in column_names])
        if failed:
            rows.append(['arm error'] + [failed.get(a, '-')
                                         for a in column_names])
        self.formatter.emit_list(header, rows, self.app.stdout, args)

    def _compared_table(self, args, compared):
        self._write('side by side, on the boots every arm of a case '
                    'finished: slot n is server lab-boot-<n>, with the '
                    'same request id, cinder durations and fault draws in '
                    'every arm of the case; a slot counts only if it is '
                    'ACTIVE in every arm that ran (so a fast failure does '
                    'not count). Ratios: arm / stock over the same slots.')
        header = ['case', 'arm', 'boots compared',
                  'boot to ACTIVE p50 / p95 (s)',
                  'detection lag p50 / p95 (s)', 'GETs per boot']
        rows = []
        for label, case in compared.items():
            name = '%s (%s)' % (label, case['scenario'])
            for arm, fig in case['arms'].items():
                x = fig['x_stock']
                ratios = arm != compare.REFERENCE
                rows.append([
                    name, arm,
                    '%d of %d' % (fig['boots'], case['servers']),
                    _pair(fig, x, 'boot_s', ratios),
                    _pair(fig, x, 'lag_s', ratios),
                    '%s%s' % (_na(fig['gets_per_boot']), ' (%s)' % _x(
                        x['gets_per_boot']) if ratios else '')])
                name = ''
        self.formatter.emit_list(header, rows, self.app.stdout, args)


def _x(value):
    return '-' if value is None else '%.2fx' % value


def _pair(fig, x, key, ratios):
    """``p50 / p95`` and, for arms but stock, ``(ratio / ratio)``."""
    text = '%s / %s' % (_na(fig[key + '_p50']), _na(fig[key + '_p95']))
    if ratios:
        text += ' (%s / %s)' % (_x(x[key + '_p50']), _x(x[key + '_p95']))
    return text


def _servers(results):
    """The servers per arm of a case (``20``, or ``5-20`` if they differ)."""
    counts = sorted({r['servers'] for r in results.values()})
    return str(counts[0]) if len(counts) == 1 else '%d-%d' % (
        counts[0], counts[-1])


def healthy_scenario(scenario):
    """The healthy case of ``scenario``: the same load, no fault rule.

    :param scenario: a :class:`bdm_guard_lab.faults.scenario.Scenario`.
    :returns: a Scenario with no rules and the same seed, volume size and
        cinder timings (so that it shares the arm's cinder, see
        :func:`bdm_guard_lab.arms.nova_mode.same_cinder`), named ``none``
        when it is the packaged ``none`` scenario with that seed, else
        ``<name>-without-faults``.
    """
    plain = dataclasses.replace(scenario, rules=())
    none = lab_scenario.load('none').with_seed(scenario.seed)
    if nova_mode.same_cinder(plain, none) and (
            plain.size_gb, plain.image) == (none.size_gb, none.image):
        return dataclasses.replace(plain, name=none.name,
                                   description=none.description)
    return dataclasses.replace(plain, name='%s-without-faults' % (
        scenario.name))
