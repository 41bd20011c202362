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

"""Read ProxySQL's configuration: proxysql.cnf or Kolla's proxysql.yaml.

ProxySQL reads ``proxysql.cnf`` in libconfig syntax (ProxySQL
documentation, "Configuration file"): ``name = value`` or ``name: value``
settings ended by ``;`` or ``,``, groups in ``{}``, lists in ``()``, arrays
in ``[]``, ``#`` comments. Kolla-Ansible renders the same tables as YAML
(``ansible/roles/proxysql-config/templates/proxysql.yaml.j2`` and the
per-service ``*_shard.yaml`` files) for its ``kolla_proxysql_config_sync``.
Only the tables that decide where a statement goes are kept:
``mysql_servers``, ``mysql_galera_hostgroups``, ``mysql_users`` and
``mysql_query_rules``.
"""

import re

import yaml

from bdm_guard.audit.parsers import textfile
from bdm_guard import exception

TABLES = ('mysql_servers', 'mysql_galera_hostgroups', 'mysql_users',
          'mysql_query_rules')
_TOKEN = re.compile(r'\s+|#[^\n]*|//[^\n]*|"(?:[^"\\]|\\.)*"'
                    r'|[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?L?\b'
                    r'|[A-Za-z_][\w-]*|[=:;,(){}\[\]]')


class ProxySQLConfig:
    """The routing tables of a ProxySQL config.

    :ivar path: the file (str).
    :ivar tables: ``{table: [dict]}`` for :data:`TABLES` (empty lists
        when absent).
    """

    def __init__(self, path, tables):
        self.path = path
        self.tables = {t: [r for r in _rows(tables.get(t))
                           if isinstance(r, dict)] for t in TABLES}


def _rows(value):
    """A table's rows: a list, or nothing for any other value."""
    return value if isinstance(value, list) else []


#: How deep groups and lists may nest; ProxySQL's own files nest 3 deep.
MAX_DEPTH = 32


def _tokens(text, path):
    pos, out = 0, []
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise exception.UnreadableInput(
                path=path, reason='line %d: not libconfig syntax'
                % (text.count('\n', 0, pos) + 1))
        token = match.group()
        pos = match.end()
        if not token.strip() or token[0] == '#' or token[:2] == '//':
            continue
        out.append(token)
    return out


class _LibConfig:
    def __init__(self, tokens, path):
        self.tokens, self.i, self.path = tokens, 0, path
        self.depth = 0

    def error(self, what):
        return exception.UnreadableInput(
            path=self.path, reason='%s near token %d: not a ProxySQL '
            'configuration?' % (what, self.i))

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self):
        token = self.peek()
        if token is None:
            raise self.error('unexpected end')
        self.i += 1
        return token

    def settings(self, end=None):
        result = {}
        while self.peek() != end:
            name = self.take()
            if not re.match(r'[A-Za-z_]', name):
                raise self.error('expected a setting name, got %r' % name)
            if self.take() not in ('=', ':'):
                raise self.error('expected = or : after %r' % name)
            result[name] = self.value()
            if self.peek() in (';', ','):
                self.i += 1
        return result

    def value(self):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.error('nested more than %d deep' % MAX_DEPTH)
            return self._value()
        finally:
            self.depth -= 1

    def _value(self):
        token = self.take()
        if token == '{':
            value = self.settings('}')
            self.i += 1
            return value
        if token in ('(', '['):
            end = ')' if token == '(' else ']'
            items = []
            while self.peek() != end:
                items.append(self.value())
                if self.peek() == ',':
                    self.i += 1
            self.i += 1
            return items
        if token.startswith('"'):
            return re.sub(r'\\(.)', r'\1', token[1:-1])
        if token.lower() in ('true', 'false'):
            return token.lower() == 'true'
        try:
            number = token.rstrip('L')
            return float(number) if '.' in number or 'e' in number.lower() \
                else int(number)
        except ValueError:
            raise self.error('unexpected %r' % token)


def read(path):
    """Parse ``proxysql.cnf`` (libconfig) or Kolla's YAML rendering.

    :param path: file path (str).
    :returns: a :class:`ProxySQLConfig`.
    :raises bdm_guard.exception.UnreadableInput: the file is missing,
        unreadable, binary, in neither syntax, or has none of
        ``mysql_servers``, ``mysql_galera_hostgroups`` and
        ``mysql_query_rules`` (a nova.conf or galera.cnf given by
        mistake).
    """
    text = ''.join(textfile.read_lines(path))
    tables = None
    try:
        tables = _LibConfig(_tokens(text, path), path).settings()
    except exception.UnreadableInput as exc:
        try:
            tables = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError):
            raise exception.UnreadableInput(
                path=path, reason='%s, nor YAML: not a ProxySQL '
                'configuration?' % exc.kwargs['reason'])
    if not isinstance(tables, dict) or not any(
            _rows(tables.get(t)) for t in TABLES if t != 'mysql_users'):
        raise exception.UnreadableInput(
            path=path, reason='no mysql_servers, mysql_galera_hostgroups or '
            'mysql_query_rules: not a ProxySQL configuration?')
    return ProxySQLConfig(path, tables)


def _int(row, key, default=None):
    try:
        return int(row.get(key, default))
    except (TypeError, ValueError):
        return default


def writers(config):
    """How many nodes take writes, and how the decision was made.

    ProxySQL ("mysql_galera_hostgroups"): with an active Galera hostgroup
    row, at most ``max_writers`` (default 1) ONLINE nodes of the writer
    hostgroup take writes; the others move to ``backup_writer_hostgroup``.
    Without one, every server of a user's ``default_hostgroup`` (and of a
    query rule's ``destination_hostgroup``) takes traffic, by weight.

    :param config: a :class:`ProxySQLConfig`.
    :returns: a list of ``(hostgroup, writers, reason)``: one per writer
        hostgroup, ``writers`` the most nodes writing at once (int).
    """
    servers = {}
    for row in config.tables['mysql_servers']:
        if str(row.get('status', 'ONLINE')).upper() == 'OFFLINE_HARD':
            continue
        servers.setdefault(_int(row, 'hostgroup', _int(row, 'hostgroup_id')),
                           []).append(row)
    result, galera = [], set()
    for row in config.tables['mysql_galera_hostgroups']:
        if _int(row, 'active', 1) == 0:
            continue
        group = _int(row, 'writer_hostgroup')
        galera.add(group)
        count = min(_int(row, 'max_writers', 1), len(servers.get(group, [])))
        result.append((group, max(count, 1 if servers.get(group) else 0),
                       'mysql_galera_hostgroups max_writers = %s'
                       % row.get('max_writers', 1)))
    used = {_int(u, 'default_hostgroup', 0)
            for u in config.tables['mysql_users']}
    used |= {_int(r, 'destination_hostgroup')
             for r in config.tables['mysql_query_rules']
             if _int(r, 'active', 1) and r.get('destination_hostgroup')
             is not None}
    for group in sorted(g for g in used - galera if g in servers):
        result.append((group, len(servers[group]),
                       '%d servers in hostgroup %s, no Galera hostgroup row'
                       % (len(servers[group]), group)))
    return result


def read_split(config):
    """Query rules that send SELECTs to another hostgroup than writes.

    :returns: a list of the rule dicts (``match_digest`` or
        ``match_pattern`` starting with ``^SELECT``, active, with a
        ``destination_hostgroup`` that is a Galera reader hostgroup or not
        a writer hostgroup).
    """
    writer_groups = ({_int(r, 'writer_hostgroup')
                      for r in config.tables['mysql_galera_hostgroups']}
                     or {_int(u, 'default_hostgroup', 0)
                         for u in config.tables['mysql_users']})
    readers = {_int(r, 'reader_hostgroup')
               for r in config.tables['mysql_galera_hostgroups']}
    rules = []
    for rule in config.tables['mysql_query_rules']:
        match = str(rule.get('match_digest') or rule.get('match_pattern')
                    or '')
        if (_int(rule, 'active', 1) and re.match(r'\^?\s*select', match,
                                                 re.IGNORECASE)
                and rule.get('destination_hostgroup') is not None):
            group = _int(rule, 'destination_hostgroup')
            if group in readers or (writer_groups
                                    and group not in writer_groups):
                rules.append(rule)
    return rules
