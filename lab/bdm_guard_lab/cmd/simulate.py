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

"""``bdm-guard simulate``: stock nova and bdm-guard at cloud scale.

Runs both arms over the same boots on a virtual clock against a simulated
cinder (:mod:`bdm_guard_lab.sim.run`), then prints them side by side. With
``-f json`` the output is ``{"stock": {...}, "guard": {...}}``.
"""

import argparse
import contextlib
import dataclasses
import logging as std_logging
import os

from cliff import columns
from cliff import show
from oslo_config import cfg

from bdm_guard import exception
from bdm_guard import opts
from bdm_guard_lab.sim import metrics as sim_metrics
from bdm_guard_lab.sim import model as sim_model
from bdm_guard_lab.sim import pareto
from bdm_guard_lab.sim import run as sim_run

#: Most boots one run takes. A run keeps every boot in memory and its time
#: grows with the boots (10,000 boots: about 10 s for both arms on one
#: core), so 1,000,000 boots is already a run of about 20 minutes.
MAX_BOOTS = 1000000
#: Most nova-compute hosts and builds per host.
MAX_HOSTS = 100000
MAX_BUILDS = 1000
#: nova's ``block_device_allocate_retries`` has no upper bound; past this
#: many polls (at 3 s, over 8 hours) a run only measures the cap.
MAX_ALLOCATE_RETRIES = 10000

#: Rows of the side-by-side table, in order.
TABLE_KEYS = ('boots', 'succeeded', 'failed', 'success_share',
              'failures_by_reason', 'volumes_created', 'duplicates',
              'duplicates_made', 'leaked', 'requests', 'requests_per_success',
              'lost_requests',
              'peak_rps', 'p99_rps', 'mean_rps', 'gets_per_boot',
              'detect_lag_mean_s', 'detect_lag_p50_s', 'detect_lag_p95_s',
              'detect_lag_p99_s', 'detect_lag_max_s', 'lag_over_bound',
              'gets_per_success', 'wait_p50_s', 'wait_p95_s', 'virtual_s',
              'wall_s')
#: Rows that also get a stock/guard ratio.
RATIO_KEYS = frozenset((
    'requests', 'requests_per_success', 'peak_rps', 'p99_rps', 'mean_rps',
    'gets_per_boot', 'detect_lag_p50_s', 'detect_lag_p95_s',
    'detect_lag_mean_s', 'detect_lag_p99_s', 'detect_lag_max_s',
    'gets_per_success', 'success_share'))


class ArmColumn(columns.FormattableColumn):
    """One arm's summary: a dict for JSON, ``key=value`` lines for text."""

    def human_readable(self):
        return '\n'.join('%s=%s' % kv for kv in self._value.items())


def _cell(value):
    if isinstance(value, dict):
        return ', '.join('%s=%s' % kv for kv in value.items()) or '-'
    return '-' if value is None else value


def _bounded_int(low, high):
    """An argparse ``type``: an int in ``[low, high]``, else a usage error.

    :param low: smallest value (int).
    :param high: largest value (int).
    """
    def convert(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                '%r is not a whole number' % text) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                '%d is outside [%d, %d]' % (value, low, high))
        return value
    return convert


def _conf(config_files):
    """The [bdm_guard] options of ``config_files`` (oslo.config files).

    :param config_files: paths (list of str).
    :raises bdm_guard.exception.UnreadableInput: a file is missing,
        unreadable or not UTF-8 text (a binary file).
    :raises bdm_guard.exception.InvalidInput: a file is not in INI form or
        has a bad value.
    """
    for path in config_files:
        try:
            with open(path, encoding='utf-8') as stream:
                stream.read()
        except OSError as exc:
            raise exception.UnreadableInput(
                path=path, reason=exc.strerror or str(exc)) from None
        except ValueError as exc:  # UnicodeDecodeError
            raise exception.UnreadableInput(
                path=path, reason='not a UTF-8 text file (%s)' % exc
            ) from None
    conf = opts.get_conf(cfg.ConfigOpts())
    try:
        conf([], project='bdm_guard', default_config_files=config_files)
        list(conf.bdm_guard.items())  # parse every value now, not mid-run
    except (cfg.Error, ValueError) as exc:
        raise exception.InvalidInput(
            reason='config file %s: %s' % (', '.join(config_files), exc)
        ) from None
    return conf


def _check_plot(path):
    """Fail before the run when the plot cannot be written to ``path``.

    :raises bdm_guard.exception.InvalidInput: the folder is missing or not
        writable, or ``path`` is a folder.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        reason = 'it is a directory'
    elif not os.path.isdir(folder):
        reason = 'no such directory %s' % folder
    elif not os.access(folder, os.W_OK | os.X_OK):
        reason = 'directory %s is not writable' % folder
    else:
        return
    raise exception.InvalidInput(reason='cannot write --plot %s: %s'
                                 % (path, reason))


@contextlib.contextmanager
def _quiet(verbose):
    """Keep the arms' per-boot warnings off the console unless -vv."""
    logger = std_logging.getLogger('bdm_guard')
    old = logger.level
    if verbose < 2:
        logger.setLevel(std_logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


def _add_timing_options(add, defaults):
    """The model's durations and nova's wait options (``add_argument``)."""
    add('--creating-median', type=float,
        default=defaults.creating_median, metavar='SECONDS',
        help='Median time in "creating" (%(default)s s).')
    add('--creating-sigma', type=float, default=defaults.creating_sigma,
        help='Lognormal sigma of "creating" (%(default)s).')
    add('--gib-median', type=float, default=defaults.gib_median,
        metavar='SECONDS', help='Median image copy time per GiB '
                                '(%(default)s s).')
    add('--gib-sigma', type=float, default=defaults.gib_sigma,
        help='Lognormal sigma of the copy time per GiB (%(default)s).')
    add('--error-share', type=float, default=defaults.error_share,
        help='Share of volumes ending in "error" (%(default)s).')
    add('--latency', type=float, default=defaults.latency,
        metavar='SECONDS', help='cinder-api answer time (%(default)s s).')
    add('--allocate-retries',
        type=_bounded_int(0, MAX_ALLOCATE_RETRIES),
        default=defaults.allocate_retries,
        help='nova\'s block_device_allocate_retries (%(default)s).')
    add('--allocate-retries-interval', type=float,
        default=defaults.allocate_retries_interval, metavar='SECONDS',
        help='nova\'s block_device_allocate_retries_interval '
             '(%(default)s s).')


class Simulate(show.ShowOne):
    """Simulate thousands of boots: cinder-api load and success, per arm."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        defaults = sim_model.Workload()
        add = parser.add_argument
        add('--boots', type=_bounded_int(1, MAX_BOOTS),
            default=defaults.boots,
            help='Boots, one new image-backed volume each, 1 to %d '
                 '(%%(default)s).' % MAX_BOOTS)
        add('--hosts', type=_bounded_int(1, MAX_HOSTS), default=defaults.hosts,
            help='nova-compute hosts (%(default)s).')
        add('--max-concurrent-builds', type=_bounded_int(1, MAX_BUILDS),
            default=defaults.max_concurrent_builds,
            help='Builds per host at once, nova\'s option (%(default)s).')
        add('--arrival-window', type=float, default=defaults.arrival_window,
            metavar='SECONDS', help='Boots arrive uniformly over this '
                                    'window (%(default)s s).')
        add('--scenario', default='seed', metavar='NAME_OR_FILE',
            help='The lab scenario whose fault rules apply: none, seed, '
                 'harsh, or a scenario file (%(default)s). Its load and '
                 'timings are not used.')
        add('--seed', type=int, default=0, help='Random seed (%(default)s).')
        add('--arm', action='append', choices=sim_run.ARMS,
            help='Run only this arm (repeat); default stock and guard. '
                 'events: guard woken by simulated notifications, with '
                 'the broker fan-out figures.')
        add('--size', type=_bounded_int(1, 16384), metavar='GIB',
            help='Give every volume this size, in GiB (default: the '
                 'workload\'s mix of 2 to 80 GiB).')
        _add_timing_options(add, defaults)
        add('--config-file', action='append', default=[],
            help='An oslo.config file whose [bdm_guard] options the guard '
                 'arm uses (repeat).')
        add('--plot', metavar='FILE',
            help='Write the request-rate curves as a PNG.')
        add('--pareto', action='store_true',
            help='Run the Pareto table instead of the arms: stock nova, '
                 'fixed 3 s and 5 s, the backoff and completion schedules '
                 '(with right, 4x low and 4x high priors) and events, all '
                 'over the same boots, as ratios to stock, with the scale '
                 'targets checked.')
        add('--series', action='store_true',
            help='Include the per-second request counts ("rate") in the '
                 'output.')
        return parser

    def take_action(self, args):
        fields = {f.name for f in dataclasses.fields(sim_model.Workload)}
        values = {k: v for k, v in vars(args).items() if k in fields}
        if args.size is not None:
            values['sizes'] = ((args.size, 1.0),)
        workload = sim_model.Workload(**values)
        faults = sim_model.load_faults(args.scenario)
        conf = _conf(args.config_file)
        if args.plot:
            _check_plot(args.plot)
        if args.pareto:
            with _quiet(getattr(self.app.options, 'verbose_level', 1)):
                self.pareto = pareto.run(workload, faults, seed=args.seed,
                                         conf=conf)
            keep = set(sim_metrics.KEYS)
            return (tuple(n for n, _ in self.pareto),
                    tuple(ArmColumn({k: v for k, v in s.items() if k in keep})
                          for _, s in self.pareto))
        self.pareto = None
        arms = tuple(dict.fromkeys(args.arm or sim_run.DEFAULT_ARMS))
        with _quiet(getattr(self.app.options, 'verbose_level', 1)):
            results = sim_run.simulate(workload, faults, seed=args.seed,
                                       arms=arms, conf=conf)
        if args.plot:
            try:
                sim_metrics.plot(results, args.plot, '%d boots, %d hosts, '
                                 'scenario %s' % (workload.boots,
                                                  workload.hosts,
                                                  args.scenario))
            except OSError as exc:
                raise exception.InvalidInput(
                    reason='cannot write %s: %s' % (args.plot, exc)) from None
        self.results = results
        keep = set(sim_metrics.KEYS) | {'fanout'} | (
            {'rate'} if args.series else set())
        return (arms, tuple(ArmColumn({k: v for k, v in results[a].items()
                                       if k in keep}) for a in arms))

    def produce_output(self, args, column_names, data):
        if args.formatter != 'table':
            return super().produce_output(args, column_names, data)
        if self.pareto is not None:
            rows = pareto.table(self.pareto)
            self.formatter.emit_list(rows[0], rows[1:], self.app.stdout,
                                     args)
            self.app.stdout.write(pareto.NOTE + '\n')
            return 0
        arms = list(column_names)
        header = ['metric'] + arms
        both = len(arms) == 2
        if both:
            header.append('%s/%s' % tuple(arms))
        rows = []
        for key in TABLE_KEYS:
            values = [self.results[a][key] for a in arms]
            row = [key] + [_cell(v) for v in values]
            if both:
                row.append(_cell(sim_metrics.ratio(*values)
                                 if key in RATIO_KEYS else None))
            rows.append(row)
        fanout = [self.results[a]['fanout'] for a in arms
                  if 'fanout' in self.results[a]]
        for key, value in (fanout[0].items() if fanout else ()):
            rows.append(['fanout: %s' % key] + [
                _cell(value) if 'fanout' in self.results[a] else '-'
                for a in arms] + ([None] if both else []))
        self.formatter.emit_list(header, rows, self.app.stdout, args)
        return 0
