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

"""``bdm-guard audit``: find boot-from-volume risks in HA configs."""

from cliff import lister
from oslo_log import log as logging

from bdm_guard.audit import api as audit
from bdm_guard.audit import findings
from bdm_guard.cmd import main
from bdm_guard import exception
from bdm_guard.internal.create import request

LOG = logging.getLogger(__name__)

#: Exit status when a finding reaches ``--fail-on``.
EXIT_FINDINGS = 1
#: Exit status for unreadable or invalid input.
EXIT_INPUT_ERROR = 2

COLUMNS = ('kind', 'severity', 'file', 'line', 'message', 'fix')


class Audit(lister.Lister):
    """Audit nova, cinder, haproxy and Galera configs for risks to boots.

    Exits 0 when no finding reaches --fail-on (default: high), 1 when one
    does, 2 when a file cannot be read. Secrets are never printed.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--nova-conf', metavar='FILE',
            help='nova.conf of a nova-compute host.')
        parser.add_argument(
            '--haproxy-cfg', metavar='FILE_OR_DIR', action='append',
            help='haproxy.cfg of the load balancer in front of cinder-api '
                 'and Galera, or a directory of .cfg files (Kolla-Ansible\'s '
                 'services.d). Repeat it for several, in haproxy\'s -f '
                 'order: a defaults section applies to later files too.')
        parser.add_argument(
            '--proxysql-cnf', metavar='FILE',
            help='ProxySQL\'s proxysql.cnf, or Kolla-Ansible\'s rendered '
                 'proxysql.yaml: is the database single-writer?')
        parser.add_argument(
            '--launcher', choices=('yes', 'no', 'auto'), default='auto',
            help='Whether nova-compute runs bdm-guard-nova-compute. With '
                 '"yes" (or a --deployment file that starts it) '
                 'blind_post_retries is not a risk. Default: auto.')
        parser.add_argument(
            '--deployment', metavar='FILE', action='append',
            help='A file that starts nova-compute: a systemd unit or '
                 'drop-in, Kolla-Ansible\'s nova-compute config.json, an '
                 'OpenStack-Ansible user_variables.yml. Repeatable.')
        parser.add_argument(
            '--galera-cnf', metavar='FILE',
            help='The MariaDB/Galera option file (galera.cnf, my.cnf).')
        parser.add_argument(
            '--cinder-conf', metavar='FILE',
            help='cinder.conf of a controller (optional: defaults assumed).')
        parser.add_argument(
            '--image-gb', metavar='GIB', default=10,
            type=main.bounded_int(1, request.MAX_SIZE_GB),
            help='Largest image-backed volume, in GiB, that boots must '
                 'survive (1 to %d; default: 10).' % request.MAX_SIZE_GB)
        parser.add_argument(
            '--fail-on', default='high',
            choices=findings.SEVERITIES + ('never',),
            help='Exit 1 when a finding of this severity or higher exists '
                 '(default: high; "never" always exits 0 on success).')
        return parser

    def take_action(self, parsed_args):
        result = audit.audit(
            nova_conf=parsed_args.nova_conf,
            haproxy_cfg=parsed_args.haproxy_cfg,
            galera_cnf=parsed_args.galera_cnf,
            cinder_conf=parsed_args.cinder_conf,
            image_gb=parsed_args.image_gb,
            proxysql_cnf=parsed_args.proxysql_cnf,
            launcher={'yes': True, 'no': False}.get(parsed_args.launcher),
            deployment=parsed_args.deployment)
        worst = audit.worst(result)
        self.exit_code = 0
        if worst and parsed_args.fail_on != 'never' and (
                findings.SEVERITIES.index(worst)
                >= findings.SEVERITIES.index(parsed_args.fail_on)):
            self.exit_code = EXIT_FINDINGS
        # JSON and YAML say null for "no line"; text formats leave it empty.
        blank = None if parsed_args.formatter in ('json', 'yaml') else ''
        rows = [(f.kind, f.severity, f.file,
                 blank if f.line is None else f.line, f.message, f.fix)
                for f in result]
        return COLUMNS, rows

    def run(self, parsed_args):
        """Run the audit; return 0, 1 (findings) or 2 (input error)."""
        try:
            super().run(parsed_args)
        except exception.InvalidInput as exc:
            self.app.stderr.write('bdm-guard audit: error: %s\n'
                                  % findings.mask(str(exc)))
            return EXIT_INPUT_ERROR
        return self.exit_code
