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

"""Turn oslo.log format strings into a parser of log lines.

The defaults are oslo.log's own ``logging_context_format_string``,
``logging_default_format_string``, ``logging_exception_prefix`` and
``log_date_format``, read from oslo.log's option definitions, so a cloud
that kept them needs no option; one that changed them passes its values.
"""

import calendar
import datetime
import re

from oslo_config import cfg
from oslo_log import log as logging

from bdm_guard import exception

_FIELD = re.compile(r'%%|%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]')
# Regex per LogRecord/oslo.log context field; any other field matches
# lazily. user_identity is "user project domain user_domain project_domain".
_PATTERNS = {
    'asctime': None,  # from the date format
    'msecs': r'(?P<msecs>\d{1,3})(?:\.\d+)?',
    'process': r'\d+',
    'levelname': r'(?P<levelname>[A-Z]+)',
    'name': r'(?P<name>\S+)',
    'global_request_id': r'(?P<global_request_id>\S*)',
    'request_id': r'(?P<request_id>\S*)',
    'user_identity': r'(?P<user_identity>.*?)',
    'instance': r'(?:\[instance: (?P<instance>[^\]\s]+)\] )?',
    'message': r'(?P<message>.*)',
}
_DATE = {'Y': r'\d{4}', 'm': r'\d{2}', 'd': r'\d{2}', 'H': r'\d{2}',
         'M': r'\d{2}', 'S': r'\d{2}', 'y': r'\d{2}', 'b': r'[A-Za-z]{3}',
         'f': r'\d{1,6}', 'j': r'\d{3}', 'z': r'[+-]\d{4}', 'Z': r'\w+',
         'e': r'[ \d]\d', 'I': r'\d{2}', 'p': r'[AP]M', 'a': r'[A-Za-z]{3}'}
ISO_DATE_FORMAT = '%Y-%m-%d %H:%M:%S'


def oslo_defaults():
    """oslo.log's default format options, as ``{option name: value}``."""
    conf = cfg.ConfigOpts()
    logging.register_options(conf)
    return {name: conf[name] for name in (
        'logging_context_format_string', 'logging_default_format_string',
        'logging_exception_prefix', 'log_date_format')}


def _date_regex(date_format):
    def sub(match):
        if match.group() == '%%':
            return '%'
        if match.group(1) not in _DATE:
            raise exception.InvalidLogFormat(
                format=date_format, reason='unsupported directive %s'
                % match.group())
        return _DATE[match.group(1)]
    parts = re.split(r'(%[%a-zA-Z])', date_format)
    return ''.join(sub(re.match(r'%(.)|%%', p)) if p.startswith('%')
                   else re.escape(p) for p in parts)


def compile_format(fmt, date_format=ISO_DATE_FORMAT):
    """Compile an oslo.log (``logging``) format string into a regex.

    :param fmt: e.g. oslo.log's ``logging_context_format_string``.
    :param date_format: the ``log_date_format`` (strftime) that renders
        ``%(asctime)s``.
    :returns: a compiled :class:`re.Pattern` with named groups ``asctime``,
        ``message`` and, when the format has them, ``msecs``,
        ``levelname``, ``name``, ``global_request_id``, ``request_id`` and
        ``instance``.
    :raises bdm_guard.exception.InvalidLogFormat: no ``%(asctime)s`` or
        ``%(message)s`` field, or an unsupported date directive.
    """
    pieces, pos, seen = ['^'], 0, set()
    for match in _FIELD.finditer(fmt):
        pieces.append(re.escape(fmt[pos:match.start()]))
        pos = match.end()
        name = match.group(1)
        if name is None:
            pieces.append('%')
        elif name == 'asctime':
            pieces.append('(?P<asctime>%s)' % _date_regex(date_format))
        elif name in seen:
            pieces.append(_PATTERNS.get(name, '.*?').replace(
                '(?P<%s>' % name, '(?:'))
        else:
            pieces.append(_PATTERNS.get(name, '.*?'))
        seen.add(name)
    pieces.append(re.escape(fmt[pos:]))
    if not {'asctime', 'message'} <= seen:
        raise exception.InvalidLogFormat(
            format=fmt, reason='it needs %(asctime)s and %(message)s')
    try:
        return re.compile(''.join(pieces) + '$')
    except re.error as exc:
        raise exception.InvalidLogFormat(format=fmt, reason=str(exc))


class TimeParser:
    """Convert ``asctime`` text (and ``msecs``) to seconds since the epoch.

    Logs carry no time zone; every file is read as the same zone, so only
    differences between times matter. The default (ISO) format takes a
    fast path; the last result is cached since neighbouring lines share
    their second.

    :param date_format: the ``log_date_format`` (strftime).
    """

    def __init__(self, date_format=ISO_DATE_FORMAT):
        self.date_format = date_format
        self._last = (None, 0.0)

    def __call__(self, asctime, msecs=None):
        """:returns: seconds (float). :raises ValueError: not a date."""
        if asctime != self._last[0]:
            if self.date_format == ISO_DATE_FORMAT:
                moment = datetime.datetime.fromisoformat(asctime)
            else:
                moment = datetime.datetime.strptime(asctime,
                                                    self.date_format)
            if moment.year == 1900:  # no year in the format
                moment = moment.replace(year=2000)
            self._last = (asctime, calendar.timegm(moment.utctimetuple())
                          + moment.microsecond / 1e6)
        return self._last[1] + (int(msecs) / 1000.0 if msecs else 0.0)
