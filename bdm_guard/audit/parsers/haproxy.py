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

"""A small haproxy.cfg reader that keeps line numbers.

No maintained haproxy configuration parser exists on PyPI (``pyhaproxy``,
the only one, was last released in 2019, is generated from a PEG grammar
that predates haproxy 2.x keywords and drops line numbers), so this module
implements the part of the grammar the audit needs, following the haproxy
2.6 "Configuration Manual" section 2: a section starts with one of
:data:`SECTION_KEYWORDS`; every other line is a keyword and its arguments,
split on blanks, with ``#`` comments, ``\\`` escapes and single or double
quotes. A proxy inherits settings from the last ``defaults`` section above
it (section 4 of the manual).
"""

import dataclasses
import os
import re

from bdm_guard.audit.parsers import textfile
from bdm_guard import exception

SECTION_KEYWORDS = frozenset((
    'global', 'defaults', 'frontend', 'backend', 'listen', 'peers',
    'resolvers', 'userlist', 'mailers', 'program', 'http-errors', 'ring',
    'cache', 'crt-store', 'traces', 'log-forward', 'fcgi-app'))
PROXY_KINDS = ('frontend', 'backend', 'listen')

# haproxy time units (manual section 2.5); a bare number is milliseconds.
_UNITS = {'us': 1e-6, 'ms': 1e-3, 's': 1.0, 'm': 60.0, 'h': 3600.0,
          'd': 86400.0, '': 1e-3}
_TIME = re.compile(r'^(\d+)(us|ms|s|m|h|d|)$')
#: Longest timeout haproxy accepts: 2147483647 ms (about 24.8 days); a
#: longer one is a "timer overflow" and haproxy refuses to start.
MAX_TIMEOUT = 2147483.647


def parse_time(text):
    """Convert an haproxy time (``30s``, ``90m``, ``2000``) to seconds.

    :param text: the argument (str); a bare number means milliseconds.
    :returns: seconds (float).
    :raises ValueError: not an haproxy time.
    """
    match = _TIME.match(text or '')
    if not match:
        raise ValueError('%r is not an haproxy time' % text)
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclasses.dataclass
class Directive:
    """One configuration line.

    :ivar keyword: the first word (str).
    :ivar args: the other words (list of str).
    :ivar line: the 1-based line number (int).
    :ivar path: the file it is in (str).
    """

    keyword: str
    args: list
    line: int
    path: str = None


@dataclasses.dataclass
class Server:
    """One ``server`` line of a backend or listen section.

    :ivar name: the server's name.
    :ivar host: address part of ``<address>:<port>`` (str).
    :ivar port: the port (int) or None.
    :ivar backup: the ``backup`` flag: used only when all others are down.
    :ivar disabled: the ``disabled`` flag.
    :ivar check: the ``check`` flag (health checks on).
    :ivar line: the line (int).
    :ivar path: the file it is in (str).
    """

    name: str
    host: str
    port: int
    backup: bool
    disabled: bool
    check: bool
    line: int
    path: str = None


@dataclasses.dataclass
class Section:
    """A section and its directives.

    :ivar kind: a :data:`SECTION_KEYWORDS` member.
    :ivar name: the section's name (str, '' when unnamed).
    :ivar line: the line of the section keyword (int).
    :ivar directives: the :class:`Directive` list, in order.
    :ivar defaults: the ``defaults`` section a proxy inherits from, or None.
    :ivar path: the file it is in (str).
    """

    kind: str
    name: str
    line: int
    directives: list = dataclasses.field(default_factory=list)
    defaults: 'Section' = None
    path: str = None

    def own(self, keyword, first_arg=None):
        """The last directive ``keyword`` in this section alone, or None.

        :param first_arg: when given, only directives whose first argument
            it is (``timeout server``).
        """
        found = None
        for directive in self.directives:
            if directive.keyword == keyword and (
                    first_arg is None or directive.args[:1] == [first_arg]):
                found = directive
        return found

    def find(self, keyword, first_arg=None):
        """Like :meth:`own`, falling back to the inherited defaults."""
        found = self.own(keyword, first_arg)
        if found is None and self.defaults is not None:
            found = self.defaults.own(keyword, first_arg)
        return found

    def all(self, keyword):
        """Every directive ``keyword`` in this section, in order."""
        return [d for d in self.directives if d.keyword == keyword]

    def servers(self):
        """The :class:`Server` lines of this section."""
        result = []
        for directive in self.all('server'):
            if len(directive.args) < 2:
                continue
            host, _, port = directive.args[1].rpartition(':')
            flags = directive.args[2:]
            result.append(Server(
                directive.args[0], host or directive.args[1],
                int(port) if port.isdigit() else None,
                'backup' in flags, 'disabled' in flags, 'check' in flags,
                directive.line, directive.path))
        return result

    def bind_ports(self):
        """The ports (int) this section's ``bind`` lines listen on."""
        ports = set()
        for directive in self.all('bind'):
            for address in directive.args[:1]:
                for part in address.split(','):
                    port = part.rpartition(':')[2]
                    if port.isdigit():
                        ports.add(int(port))
        return ports


class Config:
    """A parsed haproxy configuration, from one file or several.

    :ivar path: the first file (str).
    :ivar paths: every file read, in haproxy's order (list of str).
    :ivar sections: the sections of all files, in that order.
    """

    def __init__(self, path, sections, paths=None):
        self.path = path
        self.paths = paths or [path]
        self.sections = sections
        self._routes = None

    def proxies(self):
        """The frontend, backend and listen sections, in file order."""
        return [s for s in self.sections if s.kind in PROXY_KINDS]

    def backend(self, name):
        """The backend or listen section called ``name``, or None."""
        for section in self.sections:
            if section.kind in ('backend', 'listen') and section.name == name:
                return section
        return None

    def _index(self):
        """backend name -> frontend/listen sections naming it, built once.

        One pass over the sections: :meth:`frontends_of` for every proxy
        then costs the size of its answer, not of the whole file (a
        per-call scan made the audit quadratic in the number of
        sections).
        """
        if self._routes is None:
            self._routes = {}
            for section in self.sections:
                if section.kind not in ('frontend', 'listen'):
                    continue
                for directive in section.directives:
                    if (directive.keyword in ('default_backend',
                                              'use_backend')
                            and directive.args):
                        routes = self._routes.setdefault(directive.args[0],
                                                         [])
                        if section not in routes[-1:]:
                            routes.append(section)
        return self._routes

    def frontends_of(self, backend):
        """The frontend or listen sections that send traffic to ``backend``.

        That is ``backend`` itself when it is a listen section, and every
        frontend whose ``default_backend`` or ``use_backend`` names it.
        """
        result = [backend] if backend.kind == 'listen' else []
        for section in self._index().get(backend.name, ()):
            if section is not backend:
                result.append(section)
        return result

    def timeout_directives(self, backend):
        """The ``timeout server`` and ``timeout client`` lines of a proxy.

        ``timeout server`` of the backend and ``timeout client`` of every
        frontend routing to it, each inherited from ``defaults`` when not
        set.

        :returns: ``[('client' or 'server', Directive)]``.
        """
        found = [('server', backend.find('timeout', 'server'))]
        for frontend in self.frontends_of(backend):
            found.append(('client', frontend.find('timeout', 'client')))
        return [(which, d) for which, d in found if d is not None]

    def timeouts(self, backend):
        """The timeouts that bound a connection through ``backend``.

        As :meth:`timeout_directives`; values haproxy would refuse (not a
        time, over :data:`MAX_TIMEOUT`) and ``0`` (no timeout at all) are
        left out.

        :returns: ``[(seconds, 'client' or 'server', Directive)]``.
        """
        result = []
        for which, directive in self.timeout_directives(backend):
            try:
                seconds = parse_time(directive.args[1])
            except (ValueError, IndexError):
                continue
            if 0 < seconds <= MAX_TIMEOUT:
                result.append((seconds, which, directive))
        return result


def split_line(text, lineno):
    """Split one line into words as haproxy does.

    :param text: the line without its line end (str).
    :param lineno: its number, for the error message.
    :returns: a list of words (str); empty for a blank or comment line.
    :raises ValueError: an unterminated quote.
    """
    words, word, quote, in_word, i = [], [], None, False, 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == quote:
                quote = None
            elif char == '\\' and quote == '"' and i + 1 < len(text):
                i += 1
                word.append(text[i])
            else:
                word.append(char)
        elif char in '"\'':
            quote, in_word = char, True
        elif char == '\\' and i + 1 < len(text):
            i += 1
            word.append(text[i])
            in_word = True
        elif char == '#':
            break
        elif char in ' \t':
            if in_word:
                words.append(''.join(word))
                word, in_word = [], False
        else:
            word.append(char)
            in_word = True
        i += 1
    if quote:
        raise ValueError('line %d: unterminated %s quote' % (lineno, quote))
    if in_word:
        words.append(''.join(word))
    return words


#: haproxy 2.4+ messages that only print (manual section 2.4).
_MESSAGES = frozenset(('.diag', '.notice', '.warning', '.alert'))
_TERM = re.compile(r'^(?P<neg>!?)(?:(?P<int>-?\d+)|(?P<fn>[a-z_]+)'
                   r'\((?P<args>[^()]*)\))$')


def _term(text):
    """One condition term: True, False, or None (depends on the host)."""
    match = _TERM.match(text)
    if not match:
        return None
    if match.group('int') is not None:
        value = int(match.group('int')) != 0
    elif match.group('fn') in ('streq', 'strneq') and '$' not in text:
        args = match.group('args').split(',')
        if len(args) != 2:
            return None
        value = (args[0] == args[1]) == (match.group('fn') == 'streq')
    else:
        return None  # defined(), feature(), version_atleast()...
    return value != bool(match.group('neg'))


def evaluate_condition(words):
    """Evaluate the condition of an ``.if`` or ``.elif`` line.

    Integers, ``!`` and ``streq``/``strneq`` of literals are evaluated;
    ``defined()``, ``feature()``, ``version_atleast()``, environment
    variables and the like depend on the load balancer's host and are
    taken as true. ``&&`` and ``||`` combine terms (haproxy 2.5+).

    :param words: the words after the directive (list of str).
    :returns: bool.
    """
    text = ''.join(words)
    if not text:
        return False
    return any(all(_term(t) is not False for t in part.split('&&'))
               for part in text.split('||'))


class _Conditions:
    """The ``.if``/``.elif``/``.else``/``.endif`` blocks (haproxy 2.4+).

    :ivar active: whether the lines read now are in a taken branch.
    """

    def __init__(self, path):
        self.path = path
        self.stack = []  # [parent active, a branch taken, this one, line]

    @property
    def active(self):
        return not self.stack or self.stack[-1][2]

    def feed(self, words, lineno):
        """Handle a line starting with ``.``; return True when consumed.

        :raises bdm_guard.exception.UnreadableInput: an unbalanced or
            unknown block directive (haproxy refuses the file).
        """
        keyword = words[0]
        if keyword == '.if':
            taken = self.active and evaluate_condition(words[1:])
            self.stack.append([self.active, taken, taken, lineno])
        elif keyword in ('.elif', '.else', '.endif'):
            if not self.stack:
                raise self._error(lineno, '%s without .if' % keyword)
            frame = self.stack[-1]
            if keyword == '.endif':
                self.stack.pop()
            else:
                take = frame[0] and not frame[1] and (
                    keyword == '.else' or evaluate_condition(words[1:]))
                frame[1], frame[2] = frame[1] or take, take
        elif keyword not in _MESSAGES:
            raise self._error(lineno, 'unknown directive %r' % keyword)
        return True

    def close(self):
        if self.stack:
            raise self._error(self.stack[-1][3], '.if without .endif')

    def _error(self, lineno, reason):
        return exception.UnreadableInput(path=self.path, reason='line %d: %s'
                                         % (lineno, reason))


def config_files(path):
    """The files of ``path``: itself, or a directory's ``*.cfg`` in order.

    haproxy reads a directory given to ``-f`` the same way (its ``.cfg``
    files in lexical order); Kolla-Ansible's ``services.d`` is one.

    :raises bdm_guard.exception.UnreadableInput: a directory without any
        ``.cfg`` file.
    """
    if not os.path.isdir(path):
        return [path]
    names = sorted(n for n in os.listdir(path) if n.endswith('.cfg'))
    found = [os.path.join(path, n) for n in names
             if os.path.isfile(os.path.join(path, n))]
    if not found:
        raise exception.UnreadableInput(
            path=path, reason='a directory without any .cfg file')
    return found


def read(path):
    """Parse the haproxy configuration file at ``path``.

    As :func:`read_many` with one path.
    """
    return read_many([path])


def read_many(paths):
    """Parse haproxy configuration files as ``haproxy -f a -f b`` does.

    Files and directories (see :func:`config_files`) are read in the order
    given; a ``defaults`` section applies to the proxies after it, in later
    files too (Kolla-Ansible's ``services.d/*.cfg`` inherit the main
    ``haproxy.cfg``'s). Conditional blocks (``.if``/``.elif``/``.else``/
    ``.endif``, haproxy 2.4+) keep the lines of the branch taken (see
    :func:`evaluate_condition`); ``.diag``, ``.notice``, ``.warning`` and
    ``.alert`` lines are skipped.

    :param paths: file or directory paths (list of str).
    :returns: a :class:`Config`.
    :raises bdm_guard.exception.UnreadableInput: missing, unreadable or
        binary file, an unterminated quote, a keyword outside any section,
        an unbalanced conditional block, or no proxy (frontend, backend or
        listen) section in any of the files.
    """
    files = [f for path in paths for f in config_files(path)]
    sections, state = [], {'defaults': None, 'named': {}}
    for path in files:
        _read_one(path, sections, state)
    if not any(s.kind in PROXY_KINDS for s in sections):
        raise exception.UnreadableInput(
            path=', '.join(paths), reason='no frontend, backend or listen '
            'section; not an haproxy configuration?')
    return Config(files[0], sections, files)


def _read_one(path, sections, state):
    """Append the sections of one file; ``state`` carries the defaults."""
    current = None
    blocks = _Conditions(path)
    for lineno, text in enumerate(textfile.read_lines(path), 1):
        try:
            words = split_line(text.rstrip('\r\n'), lineno)
        except ValueError as exc:
            raise exception.UnreadableInput(path=path, reason=str(exc))
        if not words:
            continue
        if words[0].startswith('.') and blocks.feed(words, lineno):
            continue
        if not blocks.active:
            continue
        if words[0] in SECTION_KEYWORDS:
            current = Section(words[0], words[1] if len(words) > 1 else '',
                              lineno, path=path)
            if current.kind == 'defaults':
                state['defaults'] = current
                state['named'][current.name] = current
            elif current.kind in PROXY_KINDS:
                # "backend foo from <defaults name>" (haproxy >= 2.4).
                parent = (state['named'].get(words[3])
                          if words[2:3] == ['from'] and len(words) > 3
                          else state['defaults'])
                current.defaults = parent
            sections.append(current)
        elif current is None:
            raise exception.UnreadableInput(
                path=path, reason='line %d: keyword %r outside of any '
                'section; not an haproxy configuration?' % (lineno, words[0]))
        else:
            current.directives.append(Directive(words[0], words[1:], lineno,
                                                path))
    blocks.close()
