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

"""``bdm-guard status``: is bdm-guard working on this compute node?

A check in the Nagios plugin convention (exit 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN; one status line first), for a Kolla healthcheck, a Nagios/Icinga
NRPE command or a person. It reports:

* whether nova-compute runs through the launcher (a process started as
  ``bdm-guard-nova-compute``, or a ``nova-compute`` script that is the
  launcher, as the Kolla image override makes it);
* the release row of the installed nova (CRITICAL when the launcher would
  refuse it);
* the ``[bdm_guard*]`` options in force in the given config files
  (CRITICAL when oslo.config refuses a value);
* the event listener's health and the last waits and creates, from the
  state file the guard writes (``[bdm_guard_metrics]``).
"""

import json
import os
import time

from cliff import command
from oslo_config import cfg

from bdm_guard.cmd import main
from bdm_guard import metrics
from bdm_guard import opts

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
NAMES = ('OK', 'WARNING', 'CRITICAL', 'UNKNOWN')
LAUNCHER = 'bdm-guard-nova-compute'
DEFAULT_CONFIG_FILES = ('/etc/nova/nova.conf', '/etc/nova/nova-compute.conf')
#: A state file older than this (seconds) while waits happen is stale.
STALE = 86400


def _cmdlines(proc='/proc'):
    """``{pid: [argv]}`` of the processes this host (container) shows."""
    found = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, 'cmdline'), 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        found[int(name)] = [a.decode('utf-8', 'replace') for a in argv if a]
    return found


def _is_launcher(path):
    return (os.path.basename(path) == LAUNCHER
            or os.path.basename(os.path.realpath(path)) == LAUNCHER)


def launcher_processes(proc='/proc'):
    """The nova-compute processes: ``([guarded pids], [stock pids])``.

    A process is guarded when an argument among its first two (the
    interpreter, the script) is the launcher or a link to it.
    """
    guarded, stock = [], []
    for pid, argv in sorted(_cmdlines(proc).items()):
        head = argv[:2]
        if any(_is_launcher(a) for a in head):
            guarded.append(pid)
        elif any(os.path.basename(a) == 'nova-compute' for a in head):
            stock.append(pid)
    return guarded, stock


class Check:
    """Collects results; the worst state wins."""

    def __init__(self):
        self.state = OK
        self.lines = []
        self.data = {}

    #: Precedence: CRITICAL over UNKNOWN over WARNING over OK.
    RANK = {OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3}

    def add(self, state, text):
        if self.RANK[state] > self.RANK[self.state]:
            self.state = state
        self.lines.append('%s: %s' % (NAMES[state], text))


def _load_conf(files):
    conf = opts.get_conf(cfg.ConfigOpts())
    conf([], project='nova', default_config_files=list(files))
    return conf


def check_options(check, files):
    """The ``[bdm_guard*]`` options in force; a refused one is CRITICAL."""
    try:
        conf = _load_conf(files)
    except (cfg.Error, OSError) as exc:
        check.add(UNKNOWN, 'cannot read %s: %s' % (', '.join(files), exc))
        return None
    values, bad = {}, []
    for group, options in opts.list_opts():
        for opt in options:
            try:
                value = conf[group][opt.dest]
            except (cfg.ConfigFileValueError, ValueError) as exc:
                bad.append('[%s] %s: %s' % (group, opt.name, exc))
                continue
            if value != opt.default:
                values['%s.%s' % (group, opt.name)] = (
                    '***' if opt.secret and value else value)
    checker = getattr(opts, 'check_config', None)
    if checker is not None and not bad:
        try:
            checker(conf)
        except Exception as exc:  # any refusal is reported
            bad.append(str(exc))
    check.data['options'] = values
    if bad:
        check.add(CRITICAL, 'options the launcher refuses: %s'
                  % '; '.join(bad))
    else:
        check.add(OK, 'options in force (not default): %s' % (
            ', '.join('%s=%s' % kv for kv in sorted(values.items()))
            or 'none'))
    return conf


def check_release(check):
    try:
        from bdm_guard import exception
        from bdm_guard.nova import guard
    except ImportError as exc:
        check.add(UNKNOWN, 'nova is not importable here (%s): run this in '
                  'nova-compute\'s environment' % exc)
        return
    try:
        row = guard.release()
    except exception.NovaIncompatible as exc:
        check.add(CRITICAL, 'the launcher refuses this nova: %s' % exc)
        return
    except ImportError as exc:
        check.add(UNKNOWN, 'nova is not importable here (%s)' % exc)
        return
    check.data['release'] = {'series': row.series, 'name': row.name}
    check.add(OK, 'nova %s (%s) is supported' % (row.series, row.name))


def check_processes(check, proc):
    guarded, stock = launcher_processes(proc)
    check.data['launcher_pids'] = guarded
    check.data['stock_pids'] = stock
    if guarded:
        check.add(OK, 'nova-compute runs through the launcher (pid %s)'
                  % ', '.join(map(str, guarded)))
    elif stock:
        check.add(WARNING, 'nova-compute runs without the launcher (pid %s)'
                  % ', '.join(map(str, stock)))
    else:
        check.add(WARNING, 'no nova-compute process here')


def check_state(check, conf, last, now):
    path = metrics.state_path(conf) if conf is not None else None
    events_set = bool(conf is not None
                      and conf[opts.EVENTS_GROUP].transport_url)
    if path is None:
        check.add(OK, 'no [bdm_guard_metrics] state file configured: no '
                  'event health or recent waits to show')
        return
    try:
        with open(path) as f:
            state = json.load(f)
    except FileNotFoundError:
        check.add(OK, 'state file %s not written yet (no wait since '
                  'nova-compute started)' % path)
        return
    except (OSError, ValueError) as exc:
        check.add(UNKNOWN, 'cannot read the state file %s: %s' % (path, exc))
        return
    check.data['state'] = {k: state.get(k) for k in (
        'pid', 'updated', 'release', 'mode', 'events', 'totals')}
    waits = (state.get('waits') or [])[-last:]
    check.data['waits'] = waits
    failed = [w for w in waits if w.get('outcome') != 'available']
    events = state.get('events') or {}
    if events_set and events.get('healthy') is False:
        check.add(WARNING, 'the event listener was not healthy at the last '
                  'wait: waits poll (see the events troubleshooting)')
    elif events_set and events.get('healthy'):
        check.add(OK, 'the event listener was healthy at the last wait')
    if waits:
        check.add(WARNING if len(failed) * 2 >= len(waits) > 1 else OK,
                  'last %d waits: %d available, %d failed (%s)' % (
                      len(waits), len(waits) - len(failed), len(failed),
                      ', '.join(sorted({w['outcome'] for w in failed}))
                      or 'none'))
    pid = state.get('pid')
    if pid and not os.path.exists('/proc/%s' % pid):
        check.add(WARNING, 'the state file was written by pid %s, which is '
                  'gone: nova-compute restarted and has not waited since, '
                  'or it is down' % pid)
    age = now - os.path.getmtime(path)
    check.data['state_age_seconds'] = round(age, 1)


class Status(command.Command):
    """Check bdm-guard on this compute node (Nagios-style exit codes).

    Exits 0 OK, 1 WARNING, 2 CRITICAL (nova or an option the launcher
    refuses), 3 UNKNOWN (cannot tell: no nova here, unreadable config).
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--config-file', metavar='FILE', action='append',
            help='nova-compute\'s config files, in nova\'s order (default: '
                 'those of %s that exist).' % ', '.join(DEFAULT_CONFIG_FILES))
        parser.add_argument(
            '--last', metavar='N', type=main.bounded_int(1, 1000),
            default=10, help='How many recent waits to show (default 10).')
        parser.add_argument(
            '--format', choices=('text', 'json'), default='text',
            help='text (Nagios: status line first) or json.')
        parser.add_argument('--proc', default='/proc',
                            help=argparse_suppress())
        return parser

    def take_action(self, parsed_args):
        files = parsed_args.config_file or [
            f for f in DEFAULT_CONFIG_FILES if os.path.exists(f)]
        check = Check()
        check_processes(check, parsed_args.proc)
        check_release(check)
        conf = check_options(check, files)
        check_state(check, conf, parsed_args.last, time.time())
        worst = [line for line in check.lines
                 if not line.startswith('OK')]
        summary = (worst[0].split(': ', 1)[1] if worst
                   else 'bdm-guard is active')
        if parsed_args.format == 'json':
            self.app.stdout.write(json.dumps(dict(
                check.data, state=NAMES[check.state], summary=summary,
                checks=check.lines), indent=1, default=str) + '\n')
        else:
            self.app.stdout.write('BDM-GUARD %s - %s\n' % (
                NAMES[check.state], summary))
            for line in check.lines:
                self.app.stdout.write(line + '\n')
            for wait in check.data.get('waits', []):
                self.app.stdout.write(
                    '  %(time)s %(volume_id)s %(outcome)s gets=%(gets)s '
                    'seconds=%(seconds)s\n' % wait)
        return check.state


def argparse_suppress():
    import argparse
    return argparse.SUPPRESS
