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

"""Read INI-style config files keeping the line of every option.

oslo.config's own parser (:class:`oslo_config.iniparser.BaseParser`, the
one ``nova-compute`` uses for ``nova.conf``) does the parsing; this module
only records where each option was set, so that audit findings can name the
file and line. MySQL/MariaDB option files (``galera.cnf``) differ from
oslo.config files in three ways, handled by ``mysql=True``: an option may
stand alone without a value (``skip-name-resolve``), ``-`` and ``_`` are the
same in option names, and ``!include``/``!includedir`` lines are directives
(recorded, not followed).
"""

import dataclasses

from oslo_config import iniparser

from bdm_guard.audit.parsers import textfile
from bdm_guard import exception


@dataclasses.dataclass
class Option:
    """One option assignment: its value (str) and 1-based line (int)."""

    value: str
    line: int


class IniFile:
    """The options of one INI-style file, by section, with their lines.

    :ivar path: the file's path (str).
    :ivar sections: ``{section: {name: Option}}``; when an option is set
        twice the last assignment wins, as in oslo.config and mysqld.
    :ivar section_lines: ``{section: first line of its header}``.
    :ivar includes: ``[(directive, argument, line)]`` (MySQL files only).
    """

    def __init__(self, path):
        self.path = path
        self.sections = {}
        self.section_lines = {}
        self.includes = []

    def get(self, section, name):
        """The :class:`Option` for ``name`` in ``section``, or None."""
        return self.sections.get(section, {}).get(name)

    def has_section(self, section):
        return section in self.sections


class _Parser(iniparser.BaseParser):

    def __init__(self, result, mysql):
        super().__init__()
        self.result = result
        self.mysql = mysql
        self.section = None
        self.key_line = 0

    def parse(self, lines):
        if self.mysql:
            # mysqld allows indented options and has no continuation lines.
            lines = [line.lstrip() for line in lines]
        super().parse(lines)

    def _split_key_value(self, line):
        self.key_line = self.lineno
        if self.mysql:
            if line.startswith('!'):
                directive, _, argument = line.partition(' ')
                self.result.includes.append(
                    (directive, argument.strip(), self.lineno))
                return '!', ['']
            key, sep, value = line.partition('=')
            value = value.strip()
            if len(value) > 1 and value[0] == value[-1] and value[0] in '"\'':
                value = value[1:-1]
            return key.strip().replace('-', '_'), [value if sep else '']
        return super()._split_key_value(line)

    def new_section(self, section):
        self.section = section
        self.result.sections.setdefault(section, {})
        self.result.section_lines.setdefault(section, self.lineno)

    def assignment(self, key, value):
        if key == '!':
            return
        if self.section is None:
            raise self.parse_exc('Option outside of any [section]',
                                 self.key_line, key)
        self.result.sections[self.section][key] = Option(
            '\n'.join(value), self.key_line)


def read(path, mysql=False):
    """Parse the INI-style file at ``path``.

    :param path: file path (str).
    :param mysql: True for a MySQL/MariaDB option file such as
        ``galera.cnf``.
    :returns: an :class:`IniFile`.
    :raises bdm_guard.exception.UnreadableInput: the file is missing,
        unreadable, binary, too large, or not valid INI syntax (the message
        gives the line; it never quotes the line, which may hold a secret).
    """
    lines = textfile.read_lines(path)
    result = IniFile(path)
    try:
        _Parser(result, mysql).parse(lines)
    except iniparser.ParseError as exc:
        raise exception.UnreadableInput(
            path=path, reason='line %d: %s' % (exc.lineno, exc.msg))
    return result
