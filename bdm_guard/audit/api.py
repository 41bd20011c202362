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

from oslo_log import log as logging

from bdm_guard.audit.checks import galera as galera_checks
from bdm_guard.audit.checks import haproxy as haproxy_checks
from bdm_guard.audit.checks import nova as nova_checks
from bdm_guard.audit.checks import options as options_checks
from bdm_guard.audit import findings as fnd
from bdm_guard.audit.parsers import haproxy
from bdm_guard.audit.parsers import ini
from bdm_guard import exception

LOG = logging.getLogger(__name__)


def load(nova_conf=None, haproxy_cfg=None, galera_cnf=None,
         cinder_conf=None, image_gb=10):
    """Parse the given files into :class:`~bdm_guard.audit.findings.Inputs`.

    :param nova_conf: path of nova-compute's nova.conf, or None.
    :param haproxy_cfg: path of haproxy.cfg, or None.
    :param galera_cnf: path of the Galera/MariaDB option file, or None.
    :param cinder_conf: path of cinder.conf, or None.
    :param image_gb: the largest image-backed volume, in GiB.
    :returns: :class:`~bdm_guard.audit.findings.Inputs`.
    :raises bdm_guard.exception.UnreadableInput: a file is missing,
        unreadable, binary or not in its format.
    :raises bdm_guard.exception.InvalidInput: no file given, or a size
        that is not positive.
    """
    if not any((nova_conf, haproxy_cfg, galera_cnf, cinder_conf)):
        raise exception.InvalidInput(reason='give at least one config file')
    if not image_gb or image_gb <= 0:
        raise exception.InvalidInput(
            reason='the image-backed volume size must be positive (GiB)')
    return fnd.Inputs(
        nova=ini.read(nova_conf) if nova_conf else None,
        cinder=ini.read(cinder_conf) if cinder_conf else None,
        galera=ini.read(galera_cnf, mysql=True) if galera_cnf else None,
        haproxy=haproxy.read(haproxy_cfg) if haproxy_cfg else None,
        image_gb=image_gb)


def audit(nova_conf=None, haproxy_cfg=None, galera_cnf=None,
          cinder_conf=None, image_gb=10):
    """Audit the given config files.

    Checks that need a file that was not given are skipped.

    :param nova_conf: path of nova-compute's nova.conf, or None.
    :param haproxy_cfg: path of haproxy.cfg, or None.
    :param galera_cnf: path of the Galera/MariaDB option file, or None.
    :param cinder_conf: path of cinder.conf, or None.
    :param image_gb: the largest image-backed volume boots must survive,
        in GiB (default 10).
    :returns: a list of masked :class:`~bdm_guard.audit.findings.Finding`,
        most severe first, then by file and line.
    :raises bdm_guard.exception.UnreadableInput: a file is missing,
        unreadable, binary or not in its format.
    :raises bdm_guard.exception.InvalidInput: no file given.
    """
    inputs = load(nova_conf, haproxy_cfg, galera_cnf, cinder_conf, image_gb)
    result = []
    for check in (nova_checks.CHECKS + options_checks.CHECKS
                  + galera_checks.CHECKS + haproxy_checks.CHECKS):
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
