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

"""The Galera checks of the config audit, one function per risk.

Each check takes :class:`~bdm_guard.audit.findings.Inputs` and returns a
list of :class:`~bdm_guard.audit.findings.Finding`; it returns nothing when
a file it needs was not given, or when a value it needs is one the service
would refuse (a finding of its own).

The recommendations follow what measured best in the project's Galera lab
through real nova (:data:`LAB_FIGURES`, ``doc/source/admin/database.rst``):
one writer behind haproxy for the database proxy, and ``[database]
mysql_wsrep_sync_wait = 3`` in every service that keeps several writers.
Value 1 (reads only) is not enough: cinder-scheduler's UPDATE of a fresh
volume row still misses it.
"""

import re

from bdm_guard.audit import findings as fnd

# mysqld reads these option groups (MariaDB "Configuring MariaDB with
# Option Files"); later ones win.
_SERVER_GROUP = re.compile(r'^(mysqld|server|galera|mariadb)(-[\d.]+)?$')
DB_NAME = r'galera|mysql|maria|database|(^|[_-])db($|[_-])'
#: wsrep_sync_wait's range (MariaDB system variables: 0 to 15).
SYNC_WAIT_MAX = 15
#: What the Galera lab measured through real nova 34 (``bdm-guard demo --db
#: galera --arm stock --arm launcher``; doc/source/admin/database.rst):
#: 3 nodes, one lagging 10 s from the first create, the seed's POST
#: faults, two runs per arm at 20 and at 50 servers.
LAB_FIGURES = (
    "Measured through real nova 34 in bdm-guard's Galera lab (3 nodes, "
    'one lagging 10 s; servers ACTIVE in two runs at 20 and at 50 '
    'servers, stock nova then the bdm-guard launcher): haproxy roundrobin '
    '14/20, 8/20, 47/50, 43/50 and 15/20, 14/20, 40/50, 45/50; with '
    'mysql_wsrep_sync_wait = 3 all ACTIVE in every run but one (49/50 '
    "with the launcher: a write conflict between writers in cinder's "
    'attachment create); single writer all ACTIVE in every run, with no '
    'write conflict.')
_SINGLE_WRITER = (
    'send all database traffic to one node: mark every server but one '
    '"backup" in %s, as kolla-ansible does')
_SYNC_WAIT = ('[database] mysql_wsrep_sync_wait = 3 (oslo.db >= 12.3.0; '
              'cinder 29 has it)')
_MYSQLD_REFUSES = 'mysqld refuses to start with it.'


def _galera_option(inputs, name):
    """``(value, line)`` of a mysqld option in galera.cnf, or (None, None)."""
    found = (None, None)
    for section, options in inputs.galera.sections.items():
        if _SERVER_GROUP.match(section) and name in options:
            found = (options[name].value, options[name].line)
    return found


def _galera_number(inputs, name, default, maximum=None):
    """``(int value, line)`` of a mysqld option; a refused one is None."""
    group = None
    for section, options in inputs.galera.sections.items():
        if _SERVER_GROUP.match(section) and name in options:
            group = section
    if group is None:
        return default, None
    return inputs.number(inputs.galera, group, name, default, minimum=0,
                         maximum=maximum, refusal=_MYSQLD_REFUSES)


def _global_sync_wait(inputs):
    """galera.cnf's ``wsrep_sync_wait``: ``(value or None, line)``."""
    if inputs.galera is None:
        return 0, None
    return _galera_number(inputs, 'wsrep_sync_wait', 0, SYNC_WAIT_MAX)


def _service_sync_wait(inputs, conf):
    """A service's ``[database] mysql_wsrep_sync_wait``.

    :returns: ``(value, line, set)``: the value its sessions run with (its
        own when set, else galera.cnf's), the line of its own setting, and
        whether it set one; value None when a value is refused.
    """
    own, line = inputs.number(conf, 'database', 'mysql_wsrep_sync_wait',
                              None, minimum=0, maximum=SYNC_WAIT_MAX,
                              refusal='mysqld refuses the session\'s SET '
                              'wsrep_sync_wait, so every new connection of '
                              'the service fails.')
    if line is not None:
        return own, line, True
    return _global_sync_wait(inputs)[0], None, False


def _multi_writers(inputs):
    """The database proxies that send connections to two or more nodes.

    :returns: ``[(section, active servers, balance mode)]``.
    """
    result = []
    for section in inputs.proxies(inputs.database_ports(), DB_NAME):
        active = [s for s in section.servers()
                  if not s.backup and not s.disabled]
        balance = section.find('balance')
        mode = balance.args[0] if balance and balance.args else 'roundrobin'
        if len(active) >= 2 and mode != 'first':
            result.append((section, active, mode))
    return result


def check_galera_writers(inputs):
    """haproxy's Galera backend: several writers (the measured worst)."""
    if inputs.haproxy is None:
        return []
    sync, sync_line = _global_sync_wait(inputs)
    # cinder's own sessions are the ones that miss fresh volume rows.
    if inputs.cinder is not None:
        own, own_line, own_set = _service_sync_wait(inputs, inputs.cinder)
        if own_set:
            sync, sync_line = own, None
        if own is None:
            sync = None
    if sync is None:
        return []
    return [_writers_finding(inputs, section, active, mode, sync, sync_line)
            for section, active, mode in _multi_writers(inputs)]


def _writers_finding(inputs, section, active, mode, sync, sync_line):
    """The finding for one multi-writer Galera backend."""
    where = '%s %s' % (section.kind, section.name)
    writer = _SINGLE_WRITER % where
    if not sync & 1:
        return fnd.Finding(
            'multi_writer_galera_without_causal_reads', 'high',
            section.path, section.line,
            '%s sends connections to %d Galera nodes at once (balance '
            '%s) and no causal reads are set (wsrep_sync_wait in '
            'galera.cnf, [database] mysql_wsrep_sync_wait in cinder.conf)'
            '. Galera applies writes on the other nodes asynchronously, '
            'so a volume row written through one node can be missing '
            'when read through another: GET /volumes/<id> answers 404 '
            'right after the 202, or cinder-scheduler\'s update finds no '
            'row ("Volume ... could not be found") and the volume goes '
            'to error.%s %s' % (where, len(active), mode,
                                ' "balance source" does not help: each '
                                'controller\'s services hash to a '
                                'different node.' if mode == 'source'
                                else '', LAB_FIGURES),
            'Best (measured): %s. Otherwise set %s in cinder.conf and '
            'nova.conf, or wsrep_sync_wait = 3 in galera.cnf [mysqld]; '
            'value 1 (reads only) is not enough.' % (writer, _SYNC_WAIT))
    if not sync & 2:
        from_galera = inputs.galera is not None and sync_line
        return fnd.Finding(
            'galera_causal_reads_miss_writes', 'medium',
            inputs.galera.path if from_galera else section.path,
            sync_line if from_galera else section.line,
            'wsrep_sync_wait = %d covers reads only, and %s writes to '
            '%d Galera nodes: an UPDATE or DELETE of a fresh volume row '
            'on a lagging node matches no row, which cinder reports as '
            '"Volume ... could not be found" (cinder-scheduler\'s '
            'UPDATE misses the new volume).' % (sync, where,
                                                len(active)),
            'Best (measured): %s. Otherwise set wsrep_sync_wait = 3 '
            '(bit 2 covers UPDATE/DELETE).' % writer)
    return fnd.Finding(
        'multi_writer_galera_deadlocks', 'medium',
        section.path, section.line,
        '%s writes to %d Galera nodes. Causal reads are on '
        '(wsrep_sync_wait = %d), so fresh rows are found, but '
        'concurrent writers still conflict: cinder\'s quota_usages '
        'updates fail with DBDeadlock ("DB exceeded retry limit") '
        'and POST /volumes answers 500, and an attachment create that '
        'conflicts answers 500 with the volume left reserved. %s'
        % (where, len(active), sync, LAB_FIGURES),
        'Best (measured): %s; the single writer had no deadlocks '
        'at all.' % writer)


def check_service_causal_reads(inputs):
    """cinder.conf and nova.conf ``[database]`` on a multi-writer VIP."""
    if inputs.haproxy is None or not _multi_writers(inputs):
        return []
    result = []
    for service, conf in (('cinder', inputs.cinder), ('nova', inputs.nova)):
        if conf is None:
            continue
        sync, line, own = _service_sync_wait(inputs, conf)
        if sync is None or sync & 3 == 3:
            continue
        if sync == 0:
            state = ('no causal reads are set (neither [database] '
                     'mysql_wsrep_sync_wait nor galera.cnf wsrep_sync_wait)')
        else:
            state = ('%swsrep_sync_wait = %d does not cover %s' % (
                'mysql_' if own else 'galera.cnf ', sync,
                'UPDATE/DELETE (bit 2): cinder-scheduler\'s UPDATE of a '
                'fresh volume row still misses it' if sync & 1
                else 'reads (bit 1)'))
        result.append(fnd.Finding(
            'service_db_without_causal_reads',
            'high' if service == 'cinder' and not sync & 1 else 'medium',
            conf.path, line,
            '%s.conf [database] reaches several Galera writers through '
            'haproxy and %s: a row written through one node can be missing '
            'on the next statement through another (cinder: 404 right '
            'after the create, or the volume goes to error). %s'
            % (service, state, LAB_FIGURES),
            'Set %s in %s.conf; better for a multi-writer VIP: a '
            'single-writer haproxy backend (others "backup", as '
            'kolla-ansible does). Value 1 (reads only) is not enough.'
            % (_SYNC_WAIT, service)))
    return result


def check_durability(inputs):
    """innodb_flush_log_at_trx_commit != 1 does not fix read-after-write."""
    if inputs.galera is None:
        return []
    value, line = _galera_option(inputs, 'innodb_flush_log_at_trx_commit')
    if value is None or value.strip() not in ('0', '2'):
        return []
    lost = ('a crash of mysqld or of the host' if value.strip() == '0'
            else 'a crash or power loss of the host')
    return [fnd.Finding(
        'durability_traded_for_nothing',
        'medium' if value.strip() == '0' else 'low', inputs.galera.path,
        line,
        'innodb_flush_log_at_trx_commit = %s flushes the InnoDB log about '
        'once a second instead of at every commit: %s loses up to ~1 s of '
        'committed transactions (volumes that cinder reported created). It '
        'does not make a write visible sooner on the other Galera nodes, '
        'so it does not fix VolumeNotFound right after a create.'
        % (value.strip(), lost),
        'Set innodb_flush_log_at_trx_commit = 1 (the default) and fix '
        'read-after-write where it happens: one writer node, or causal '
        'reads (wsrep_sync_wait = 3).')]


CHECKS = (check_galera_writers, check_service_causal_reads,
          check_durability)
