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

"""Findings of the config audit and the parsed inputs the checks read.

Nothing a :class:`Finding` carries may hold a secret: checks never read the
value of a secret option into a message, and :meth:`Finding.masked` masks
every text field once more with :func:`mask` (oslo.utils'
``mask_password`` plus the credentials in URLs, which ``mask_password``
leaves alone).
"""

import dataclasses
import re
import urllib.parse

from oslo_utils import strutils

from bdm_guard import exception

#: Severities, lowest first.
SEVERITIES = ('low', 'medium', 'high', 'critical')
_TYPE = {int: 'integer', float: 'number'}
_REFUSED = ('oslo.config refuses it: reading the option raises '
            'ConfigFileValueError, so every operation that needs it fails '
            '(nova: every boot that waits for a volume, or every cinder '
            'call).')

# "user:password@" after "scheme://" or after the "," of a multi-host URL
# (oslo.messaging transport_url).
_URL_CREDENTIALS = re.compile(r'(?<=[/,])([^\s:/@,]+):[^\s@]*@')


def mask(text):
    """Mask the passwords in ``text`` (str).

    Covers ``*_password`` style options (oslo.utils) and the password part
    of URLs (``mysql+pymysql://nova:***@host/nova``).
    """
    return _URL_CREDENTIALS.sub(r'\1:***@', strutils.mask_password(text))


@dataclasses.dataclass
class Finding:
    """One risk found in the configs.

    :ivar kind: a stable identifier (see ``doc/source/cli/audit.rst``).
    :ivar severity: one of :data:`SEVERITIES`.
    :ivar file: the path of the file that holds the setting.
    :ivar line: the 1-based line of the setting, or None when the risk is
        an option left at its default.
    :ivar message: what goes wrong at boot time.
    :ivar fix: what to change.
    """

    kind: str
    severity: str
    file: str
    line: int
    message: str
    fix: str

    def masked(self):
        """A copy whose text fields went through :func:`mask`."""
        return dataclasses.replace(
            self, file=mask(self.file), message=mask(self.message),
            fix=mask(self.fix))


class Inputs:
    """The parsed files (each may be None) and the audit's parameters.

    :ivar nova: :class:`bdm_guard.audit.parsers.ini.IniFile` of nova.conf.
    :ivar cinder: the same for cinder.conf.
    :ivar galera: the same for galera.cnf (MySQL option file syntax).
    :ivar haproxy: :class:`bdm_guard.audit.parsers.haproxy.Config`.
    :ivar image_gb: the largest image-backed volume, GiB, that boots must
        survive.
    :ivar findings: findings made while reading values (invalid values).
    :ivar proxysql: :class:`bdm_guard.audit.parsers.proxysql.ProxySQLConfig`
        or None.
    :ivar launcher: True when nova-compute runs bdm-guard's launcher (from
        ``--launcher`` or a deployment file that starts it), False when
        told it does not, None when unknown.
    :ivar launcher_evidence: what showed it (str) or None.
    """

    def __init__(self, nova=None, cinder=None, galera=None, haproxy=None,
                 image_gb=10, proxysql=None, launcher=None,
                 launcher_evidence=None):
        self.nova = nova
        self.cinder = cinder
        self.galera = galera
        self.haproxy = haproxy
        self.image_gb = image_gb
        self.proxysql = proxysql
        self.launcher = launcher
        self.launcher_evidence = launcher_evidence
        self.findings = []
        self._reported = set()

    def number(self, conf, section, name, default, convert=int,
               minimum=None, maximum=None, refusal=None):
        """Read a numeric option; a value the service refuses is a finding.

        A value that is not a number (``invalid_option_value``) or that
        lies outside ``[minimum, maximum]`` (``option_value_out_of_range``,
        oslo.config's ``min``/``max`` of the option) is reported once, as a
        finding of its own, and read as None: no check computes with a
        value the service would never run with, nor pretends the default
        is set.

        :param conf: an :class:`~bdm_guard.audit.parsers.ini.IniFile` or
            None.
        :param section: the section name (str).
        :param name: the option name (str).
        :param default: the value when unset (int or float).
        :param convert: ``int`` or ``float``.
        :param minimum: the smallest value the service accepts, or None.
        :param maximum: the largest value the service accepts, or None.
        :param refusal: what the service does with a value out of range
            (str); by default oslo.config's ConfigFileValueError.
        :returns: ``(value, line)``: ``(default, None)`` when unset,
            ``(None, line)`` when invalid or out of range.
        """
        option = conf.get(section, name) if conf is not None else None
        if option is None:
            return default, None
        text = option.value.strip()
        try:
            value = convert(text)
            if value != value or value in (float('inf'), float('-inf')):
                raise ValueError(text)
        except ValueError:
            self._report(conf, option, Finding(
                'invalid_option_value', 'critical', conf.path, option.line,
                '[%s] %s is not a valid %s: the service refuses it '
                '(oslo.config raises ConfigFileValueError when it reads the '
                'option; mysqld refuses to start). No other check assumes '
                'the default instead.' % (section, name, _TYPE[convert]),
                'Give [%s] %s a valid %s value, or remove it to use the '
                'default (%s).' % (section, name, _TYPE[convert], default)))
            return None, option.line
        if ((minimum is not None and value < minimum)
                or (maximum is not None and value > maximum)):
            bounds = ('at least %s' % minimum if maximum is None
                      else 'at most %s' % maximum if minimum is None
                      else 'between %s and %s' % (minimum, maximum))
            self._report(conf, option, Finding(
                'option_value_out_of_range', 'critical', conf.path,
                option.line,
                '[%s] %s = %s is out of range: it must be %s. %s No other '
                'check computes with it.' % (
                    section, name, text if len(text) <= 32
                    else exception.shorten(text), bounds,
                    refusal or _REFUSED),
                'Set [%s] %s to a value %s, or remove it to use the default '
                '(%s).' % (section, name, bounds, default)))
            return None, option.line
        return value, option.line

    def _report(self, conf, option, finding):
        if (conf.path, option.line) not in self._reported:
            self._reported.add((conf.path, option.line))
            self.findings.append(finding)

    def proxies(self, ports, name_pattern):
        """The haproxy backend/listen sections of one service.

        A section serves the service when a server of it, or a bind of a
        frontend that routes to it, uses one of ``ports``, or when its name
        matches ``name_pattern``.

        :param ports: the service's ports (set of int), e.g. {8776}.
        :param name_pattern: a regex (str) searched in the lower-cased
            section name.
        :returns: a list of :class:`bdm_guard.audit.parsers.haproxy.Section`.
        """
        result = []
        for section in self.haproxy.proxies():
            if section.kind == 'frontend':
                continue
            used = {s.port for s in section.servers()}
            for frontend in self.haproxy.frontends_of(section):
                used |= frontend.bind_ports()
            if ports & used or re.search(name_pattern,
                                         section.name.lower()):
                result.append(section)
        return result

    def database_ports(self):
        """The ports of the ``[database] connection`` URLs.

        :returns: a set of int: the ports of nova.conf's and cinder.conf's
            URLs, and 3306 (MySQL's, also used when a URL names none).
            The URLs' passwords are never kept.
        """
        ports = {3306}
        for conf in (self.nova, self.cinder):
            option = conf.get('database', 'connection') if conf else None
            if option is not None:
                try:
                    port = urllib.parse.urlsplit(option.value.strip()).port
                except ValueError:
                    port = None
                ports.add(port or 3306)
        return ports
