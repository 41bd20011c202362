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

"""The nova and Galera checks of the config audit, one function per risk.

Each check takes :class:`~bdm_guard.audit.findings.Inputs` and returns a
list of :class:`~bdm_guard.audit.findings.Finding`; it returns nothing when
a file it needs was not given. The numbers each check compares against and
their sources are in ``doc/source/cli/audit.rst``.
"""

import re

from bdm_guard.audit import findings as fnd
from bdm_guard.internal.wait import schedule
from bdm_guard import opts

#: nova 34 ``[cinder] http_retries`` default (nova/conf/cinder.py).
NOVA_DEFAULT_HTTP_RETRIES = 3
# mysqld reads these option groups (MariaDB "Configuring MariaDB with
# Option Files"); later ones win.
_SERVER_GROUP = re.compile(r'^(mysqld|server|galera|mariadb)(-[\d.]+)?$')
DB_NAME = r'galera|mysql|maria|database|(^|[_-])db($|[_-])'


def _opt_default(name):
    return next(o.default for o in opts.ALL_OPTS if o.name == name)


def _galera_option(inputs, name):
    """``(value, line)`` of a mysqld option in galera.cnf, or (None, None)."""
    found = (None, None)
    for section, options in inputs.galera.sections.items():
        if _SERVER_GROUP.match(section) and name in options:
            found = (options[name].value, options[name].line)
    return found


def _galera_number(inputs, name, default):
    """``(int value, line)`` of a mysqld option; invalid is a finding."""
    group = None
    for section, options in inputs.galera.sections.items():
        if _SERVER_GROUP.match(section) and name in options:
            group = section
    if group is None:
        return default, None
    return inputs.number(inputs.galera, group, name, default)


def check_wait_budget(inputs):
    """nova's fixed wait for a new volume against image copy time."""
    if inputs.nova is None:
        return []
    retries, r_line = inputs.number(
        inputs.nova, 'DEFAULT', 'block_device_allocate_retries',
        schedule.NOVA_DEFAULT_RETRIES)
    interval, i_line = inputs.number(
        inputs.nova, 'DEFAULT', 'block_device_allocate_retries_interval',
        schedule.NOVA_DEFAULT_INTERVAL)
    per_gib, _ = inputs.number(inputs.nova, 'bdm_guard', 'per_gib_allowance',
                               _opt_default('per_gib_allowance'), float)
    budget = schedule.nova_budget(retries, interval)
    default = schedule.nova_budget(schedule.NOVA_DEFAULT_RETRIES,
                                   schedule.NOVA_DEFAULT_INTERVAL)
    need = per_gib * inputs.image_gb
    if budget >= default and budget >= need:
        return []
    checks = retries + 1 if retries >= 1 else 1
    wanted = max(int(-(-max(need, default) // max(interval, 1))) - 1, 1)
    return [fnd.Finding(
        'wait_budget_too_small_for_image_volumes',
        'high' if budget < default else 'medium', inputs.nova.path,
        r_line or i_line,
        'nova-compute checks a new volume %d times, %s s apart: %.0f s in '
        'all (nova\'s default is %.0f s). An image-backed volume stays '
        '"downloading" about %.0f s per GiB, so boots from images over '
        '~%d GiB fail with VolumeNotCreated while cinder is still '
        'copying, and the half-made volume is left behind.'
        % (checks, interval, budget, default, per_gib,
           int(budget // max(per_gib, 1))),
        'Make (block_device_allocate_retries + 1) x '
        'block_device_allocate_retries_interval at least %.0f s (%.0f s/GiB '
        'x %s GiB), e.g. block_device_allocate_retries = %d with an interval '
        'of %d s; or run nova-compute with bdm-guard\'s waiter, whose '
        'deadline grows with the volume size.'
        % (max(need, default), per_gib, inputs.image_gb, wanted,
           max(interval, 1)))]


def check_blind_post_retries(inputs):
    """keystoneauth connect retries resend POST /volumes blindly."""
    if inputs.nova is None:
        return []
    retries, line = inputs.number(inputs.nova, 'cinder', 'http_retries',
                                  NOVA_DEFAULT_HTTP_RETRIES)
    if retries <= 0:
        return []
    return [fnd.Finding(
        'blind_post_retries', 'high', inputs.nova.path, line,
        '[cinder] http_retries = %d%s: keystoneauth resends every cinder '
        'call, POST /volumes included, after a connection reset or read '
        'timeout, and cannot tell "never sent" from "sent, reply lost". '
        'When haproxy or cinder-api drops the connection after cinder '
        'accepted the create, the resend makes a second volume for the '
        'same boot, which nothing deletes.'
        % (retries, '' if line else ' (the default)'),
        'Make creates idempotent: run nova-compute with bdm-guard\'s '
        'creator, which sends POSTs without connect retries and reconciles '
        'by idempotency key before any resend. Otherwise set [cinder] '
        'http_retries = 0 (GETs then lose their retries too).')]


def check_galera_causal_reads(inputs):
    """Several Galera writers without wsrep_sync_wait."""
    if inputs.haproxy is None:
        return []
    sync, sync_line = (0, None)
    if inputs.galera is not None:
        sync, sync_line = _galera_number(inputs, 'wsrep_sync_wait', 0)
    # cinder's own sessions are the ones that miss fresh volume rows.
    sync |= inputs.number(inputs.cinder, 'database', 'mysql_wsrep_sync_wait',
                          0)[0]
    result = []
    for section in inputs.proxies(inputs.database_ports(), DB_NAME):
        active = [s for s in section.servers()
                  if not s.backup and not s.disabled]
        balance = section.find('balance')
        mode = balance.args[0] if balance and balance.args else 'roundrobin'
        if len(active) < 2 or mode == 'first':
            continue
        where = '%s %s' % (section.kind, section.name)
        if not sync & 1:
            result.append(fnd.Finding(
                'multi_writer_galera_without_causal_reads', 'high',
                inputs.haproxy.path, section.line,
                '%s sends connections to %d Galera nodes at once (balance '
                '%s) and no causal reads are set (wsrep_sync_wait in '
                'galera.cnf, [database] mysql_wsrep_sync_wait in cinder.conf)'
                '. Galera applies writes on the other nodes asynchronously, '
                'so a volume row written through one node can be missing '
                'when read through another: GET /volumes/<id> answers 404 '
                'right after the 202, or cinder-scheduler\'s update finds no '
                'row ("Volume ... could not be found") and the volume goes '
                'to error.%s' % (where, len(active), mode,
                                 ' "balance source" does not help: each '
                                 'controller\'s services hash to a '
                                 'different node.' if mode == 'source'
                                 else ''),
                'Send all database traffic to one node: mark every server '
                'but one "backup" in %s (the usual OpenStack HA layout). Or '
                'set wsrep_sync_wait = 3 (1: reads, 2: UPDATE/DELETE) in '
                'galera.cnf [mysqld], or [database] mysql_wsrep_sync_wait = '
                '3 in cinder.conf and nova.conf.' % where))
        elif not sync & 2:
            result.append(fnd.Finding(
                'galera_causal_reads_miss_writes', 'medium',
                inputs.galera.path if sync_line else inputs.haproxy.path,
                sync_line or section.line,
                'wsrep_sync_wait = %d covers reads only, and %s writes to '
                '%d Galera nodes: an UPDATE or DELETE of a fresh volume row '
                'on a lagging node matches no row, which cinder reports as '
                '"Volume ... could not be found".' % (sync, where,
                                                      len(active)),
                'Set wsrep_sync_wait = 3 (bit 2 covers UPDATE/DELETE).'))
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


CHECKS = (check_wait_budget, check_blind_post_retries,
          check_galera_causal_reads, check_durability)
