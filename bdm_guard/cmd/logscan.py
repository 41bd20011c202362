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

"""``bdm-guard logscan``: lost and duplicated POST /volumes in the logs."""

import json

from cliff import lister
from oslo_log import log as logging
import yaml

from bdm_guard.cmd import main
from bdm_guard import exception
from bdm_guard.logscan import api as logscan

LOG = logging.getLogger(__name__)

#: Exit status when a POST is not ``ok``.
EXIT_FINDINGS = 1
#: Exit status for unreadable input or a bad format option.
EXIT_INPUT_ERROR = 2
#: Longest ``--window`` (a day of log time), in seconds.
MAX_WINDOW = 86400.0
#: Largest ``--skew``, in seconds.
MAX_SKEW = 3600.0

COLUMNS = ('time', 'global_request_id', 'verdict', 'instance', 'attempts',
           'nova_file', 'cinder_files', 'cinder_request_ids')


def _flat(value):
    """One line of text for a summary value (dicts as k=v pairs)."""
    if isinstance(value, dict):
        return ', '.join('%s=%s' % (k, _flat(v)) for k, v in value.items())
    if isinstance(value, list):
        return '; '.join(_flat(v) for v in value)
    return '' if value is None else str(value)


class LogScan(lister.Lister):
    """Judge every nova POST /volumes in nova-compute and cinder-api logs.

    Verdicts: ok, lost_before_cinder, response_lost, duplicate_post,
    unknown. Exits 0 when every POST is ok, 1 when one is not, 2 when a
    file cannot be read (or a gzip file is cut short) or when no nova POST
    /volumes is found (nova-compute without debug, or no nova log).
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            'files', metavar='FILE', nargs='+',
            help='nova-compute (with debug on) and cinder-api logs of every '
                 'controller; rotated and .gz files welcome, pipes too '
                 '(<(journalctl -u nova-compute -o short-iso)), and - for '
                 'standard input. journalctl output (-o short-iso, short, '
                 'short-precise or cat) is read as it is.')
        parser.add_argument(
            '--window', metavar='SECONDS', default=300.0,
            type=main.bounded_float(0, MAX_WINDOW, low_open=True),
            help='How long a request stays open after its last line, in '
                 'log time; also the longest a POST may take (over 0, at '
                 'most %d; default: 300).' % MAX_WINDOW)
        parser.add_argument(
            '--skew', metavar='SECONDS', default=5.0,
            type=main.bounded_float(0, MAX_SKEW),
            help='Clock difference allowed between hosts when matching '
                 'without a global request id (0 to %d; default: 5).'
                 % MAX_SKEW)
        parser.add_argument(
            '--context-format', metavar='FORMAT',
            help="oslo.log's logging_context_format_string, if changed.")
        parser.add_argument(
            '--default-format', metavar='FORMAT',
            help="oslo.log's logging_default_format_string, if changed.")
        parser.add_argument(
            '--exception-prefix', metavar='FORMAT',
            help="oslo.log's logging_exception_prefix, if changed.")
        parser.add_argument(
            '--date-format', metavar='STRFTIME',
            help="oslo.log's log_date_format, if changed.")
        return parser

    def take_action(self, parsed_args):
        parser = logscan.make_parser(
            parsed_args.context_format, parsed_args.default_format,
            parsed_args.exception_prefix, parsed_args.date_format)
        self.result = logscan.scan(parsed_args.files, parser,
                                   parsed_args.window, parsed_args.skew)
        posts = self.result['posts']
        self.exit_code = 0
        if any(p['verdict'] != 'ok' for p in posts):
            self.exit_code = EXIT_FINDINGS
        err = self.app.stderr
        for stats in self.result['summary']['files']:
            if stats['error']:
                err.write('bdm-guard logscan: %s: %s\n'
                          % (stats['file'], stats['error']))
                self.exit_code = EXIT_INPUT_ERROR
        for warning in self.result['summary']['warnings']:
            if warning == logscan.NO_NOVA_POST:
                # Nothing judged is no all-clear.
                err.write('bdm-guard logscan: error: %s\n' % warning)
                self.exit_code = EXIT_INPUT_ERROR
            else:
                err.write('bdm-guard logscan: warning: %s\n' % warning)
        rows = [(p['time'], p['global_request_id'], p['verdict'],
                 p['instance'] or '', p['attempts'], p['nova_file'],
                 ', '.join(p['cinder_files']),
                 ', '.join(r or '-' for r in p['cinder_request_ids']))
                for p in posts]
        return COLUMNS, rows

    def produce_output(self, parsed_args, column_names, data):
        """Print the result in the chosen format.

        JSON and YAML get the whole result (posts and summary); the other
        formats the posts, and the table a summary table after them.
        """
        out = self.app.stdout
        if parsed_args.formatter == 'json':
            indent = None if getattr(parsed_args, 'noindent', False) else 2
            json.dump(self.result, out, indent=indent)
            out.write('\n')
            return 0
        if parsed_args.formatter == 'yaml':
            yaml.safe_dump(self.result, out, default_flow_style=False,
                           sort_keys=False)
            return 0
        super().produce_output(parsed_args, column_names, data)
        if parsed_args.formatter == 'table':
            summary = self.result['summary']
            self.formatter.emit_one(
                list(summary), [_flat(v) for v in summary.values()],
                out, parsed_args)
        return 0

    def run(self, parsed_args):
        """Run the scan; return 0, 1 (a POST not ok) or 2 (input error).

        2 also when no nova POST was found: an empty result proves nothing.
        """
        try:
            super().run(parsed_args)
        except exception.InvalidInput as exc:
            self.app.stderr.write('bdm-guard logscan: error: %s\n' % exc)
            return EXIT_INPUT_ERROR
        return self.exit_code
