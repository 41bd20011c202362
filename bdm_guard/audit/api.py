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

"""Audit nova, cinder, haproxy and Galera configs for boot-from-volume risks.

:func:`audit` reads the files (oslo.config's INI parser for nova.conf and
cinder.conf, the same parser in MySQL mode for galera.cnf,
:mod:`bdm_guard.audit.parsers.haproxy` for haproxy.cfg), runs every check of
:mod:`bdm_guard.audit.checks.nova`, :mod:`bdm_guard.audit.checks.galera`
and :mod:`bdm_guard.audit.checks.haproxy` and returns masked
:class:`~bdm_guard.audit.findings.Finding` objects, most severe first.
"""

import re

from oslo_log import log as logging

from bdm_guard.audit.checks import deployment as deployment_checks
from bdm_guard.audit.checks import galera as galera_checks
from bdm_guard.audit.checks import haproxy as haproxy_checks
from bdm_guard.audit.checks import nova as nova_checks
from bdm_guard.audit.checks import options as options_checks
from bdm_guard.audit import findings as fnd
from bdm_guard.audit.parsers import haproxy
from bdm_guard.audit.parsers import ini
from bdm_guard.audit.parsers import proxysql
from bdm_guard.audit.parsers import textfile
from bdm_guard import exception

LOG = logging.getLogger(__name__)


#: Sections only a MySQL/MariaDB option file has (galera.cnf, my.cnf).
_MYSQL_GROUP = re.compile(r'^(mysqld|server|galera|mariadb|mysqld_safe|'
                          r'client|mysql|mysqldump|sst|xtrabackup|'
                          r'client-server|mariadb-client)(-[\d.]+)?$')
#: Sections an oslo.config file of nova or cinder has and a MySQL option
#: file never does.
_OSLO_GROUPS = ('DEFAULT', 'database', 'keystone_authtoken', 'cinder',
                'glance', 'oslo_messaging_notifications',
                'oslo_messaging_rabbit', 'oslo_concurrency', 'placement',
                'neutron', 'libvirt', 'api', 'bdm_guard', 'nova', 'backend',
                'key_manager', 'oslo_policy', 'coordination')
#: What starts bdm-guard's launcher in a deployment file.
LAUNCHER = 'bdm-guard-nova-compute'


def _oslo_file(path, service):
    conf = ini.read(path)
    mysql = [s for s in conf.sections if _MYSQL_GROUP.match(s)]
    if mysql and not any(g in conf.sections for g in _OSLO_GROUPS):
        raise exception.UnreadableInput(
            path=path, reason='a MySQL/MariaDB option file ([%s]), not a %s '
            'config file' % (mysql[0], service))
    return conf


def _mysql_file(path):
    conf = ini.read(path, mysql=True)
    oslo = [s for s in conf.sections if s in _OSLO_GROUPS]
    if oslo or (conf.sections and not any(_MYSQL_GROUP.match(s)
                                          for s in conf.sections)):
        raise exception.UnreadableInput(
            path=path, reason='no MySQL/MariaDB option group ([mysqld], '
            '[galera], [server]...)%s: not a galera.cnf'
            % (' and an oslo.config section ([%s])' % oslo[0] if oslo
               else ''))
    return conf


def launcher_deployed(paths):
    """Whether a deployment file starts bdm-guard's launcher.

    :param paths: files that say how nova-compute is started (a systemd
        unit or drop-in, Kolla-Ansible's ``config.json`` of nova-compute,
        an OpenStack-Ansible ``user_variables.yml``).
    :returns: ``(True, path)`` when a line that is not a comment names
        ``bdm-guard-nova-compute``, else ``(False, None)``.
    :raises bdm_guard.exception.UnreadableInput: a file cannot be read.
    """
    for path in paths or ():
        for line in textfile.read_lines(path):
            text = line.strip()
            if text.startswith(('#', ';', '//')):
                continue
            if LAUNCHER in text:
                return True, path
    return False, None


def load(nova_conf=None, haproxy_cfg=None, galera_cnf=None,
         cinder_conf=None, image_gb=10, proxysql_cnf=None, launcher=None,
         deployment=None):
    """Parse the given files into :class:`~bdm_guard.audit.findings.Inputs`.

    :param nova_conf: path of nova-compute's nova.conf, or None.
    :param haproxy_cfg: path of haproxy.cfg, a directory of ``*.cfg``
        files (Kolla-Ansible's ``services.d``), a list of those (read in
        order, as ``haproxy -f a -f b``), or None.
    :param galera_cnf: path of the Galera/MariaDB option file, or None.
    :param cinder_conf: path of cinder.conf, or None.
    :param image_gb: the largest image-backed volume, in GiB.
    :param proxysql_cnf: path of ``proxysql.cnf`` or Kolla-Ansible's
        ``proxysql.yaml``, or None.
    :param launcher: True or False when the caller knows whether
        nova-compute runs bdm-guard's launcher; None to find out from
        ``deployment``.
    :param deployment: paths of files that start nova-compute (systemd
        unit or drop-in, Kolla ``config.json``), or None.
    :returns: :class:`~bdm_guard.audit.findings.Inputs`.
    :raises bdm_guard.exception.UnreadableInput: a file is missing,
        unreadable, binary, not in its format, or of another kind (a
        nova.conf given as galera.cnf).
    :raises bdm_guard.exception.InvalidInput: no file given, or a size
        that is not positive.
    """
    if isinstance(haproxy_cfg, str):
        haproxy_cfg = [haproxy_cfg]
    if not any((nova_conf, haproxy_cfg, galera_cnf, cinder_conf,
                proxysql_cnf)):
        raise exception.InvalidInput(reason='give at least one config file')
    if not image_gb or image_gb <= 0:
        raise exception.InvalidInput(
            reason='the image-backed volume size must be positive (GiB)')
    evidence = None
    if launcher is None and deployment:
        launcher, evidence = launcher_deployed(deployment)
    elif launcher:
        evidence = '--launcher'
    return fnd.Inputs(
        nova=_oslo_file(nova_conf, 'nova') if nova_conf else None,
        cinder=_oslo_file(cinder_conf, 'cinder') if cinder_conf else None,
        galera=_mysql_file(galera_cnf) if galera_cnf else None,
        haproxy=haproxy.read_many(haproxy_cfg) if haproxy_cfg else None,
        image_gb=image_gb,
        proxysql=proxysql.read(proxysql_cnf) if proxysql_cnf else None,
        launcher=launcher, launcher_evidence=evidence)


def audit(nova_conf=None, haproxy_cfg=None, galera_cnf=None,
          cinder_conf=None, image_gb=10, proxysql_cnf=None, launcher=None,
          deployment=None):
    """Audit the given config files.

    Checks that need a file that was not given are skipped. The arguments
    are those of :func:`load`.

    :returns: a list of masked :class:`~bdm_guard.audit.findings.Finding`,
        most severe first, then by file and line.
    :raises bdm_guard.exception.UnreadableInput: a file is missing,
        unreadable, binary, not in its format or of another kind.
    :raises bdm_guard.exception.InvalidInput: no file given.
    """
    inputs = load(nova_conf, haproxy_cfg, galera_cnf, cinder_conf, image_gb,
                  proxysql_cnf, launcher, deployment)
    result = []
    for check in (nova_checks.CHECKS + options_checks.CHECKS
                  + galera_checks.CHECKS + haproxy_checks.CHECKS
                  + deployment_checks.CHECKS):
        result.extend(check(inputs))
    result.extend(inputs.findings)
    result.sort(key=lambda f: (-fnd.SEVERITIES.index(f.severity), f.file,
                               f.line or 0, f.kind))
    LOG.debug('The audit found %d risks', len(result))
    return [f.masked() for f in result]


def worst(findings):
    """The highest severity among ``findings`` (str), or None if empty."""
    ranks = [fnd.SEVERITIES.index(f.severity) for f in findings]
    return fnd.SEVERITIES[max(ranks)] if ranks else None
