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

"""The deployment checks of the config audit: what was (not) checked.

* each haproxy file given that holds none of the proxies the audit checks
  (cinder-api, the database) is named, and so is a set of files with no
  cinder-api proxy at all: no silent all-clear on Kolla-Ansible's main
  ``haproxy.cfg``, whose proxies sit in ``services.d/*.cfg``;
* ProxySQL (Kolla-Ansible's default database proxy): several writers, or
  reads split from writes;
* with ``[bdm_guard_events]`` set, cinder's notifications must reach it:
  ``[oslo_messaging_notifications] driver`` ``messagingv2`` (or
  ``messaging``) and the topic the listener binds to.
"""

from bdm_guard.audit.checks import galera
from bdm_guard.audit.checks import haproxy as lb
from bdm_guard.audit import findings as fnd
from bdm_guard.audit.parsers import proxysql
from bdm_guard import opts

#: oslo.messaging's notification drivers that publish on the bus.
BUS_DRIVERS = ('messagingv2', 'messaging')


def check_haproxy_coverage(inputs):
    """haproxy files without any proxy the audit checks."""
    if inputs.haproxy is None:
        return []
    api = inputs.proxies(lb.CINDER_API_PORTS, lb.API_NAME)
    db = inputs.proxies(inputs.database_ports(), galera.DB_NAME)
    checked = {s.path for s in api + db}
    result = [fnd.Finding(
        'haproxy_file_without_checked_proxies', 'low', path, None,
        'This haproxy file has no cinder-api proxy (port 8776, or a name '
        'with "cinder" or "volume") and no database proxy: nothing in it '
        'was checked.',
        'Give the files that hold them too: repeat --haproxy-cfg, or give '
        'a directory (Kolla-Ansible: /etc/kolla/haproxy/services.d).')
        for path in inputs.haproxy.paths if path not in checked]
    if not api:
        result.append(fnd.Finding(
            'haproxy_cinder_api_proxy_not_found', 'medium',
            inputs.haproxy.path, None,
            'None of the haproxy files given (%s) has a cinder-api proxy, '
            'so the load balancer checks of POST /volumes (timeouts, '
            'layer-7 retries, health checks) did not run: no finding here '
            'is not an all-clear.' % ', '.join(inputs.haproxy.paths),
            'Give the file or directory that holds cinder-api\'s frontend '
            'and backend (Kolla-Ansible: services.d/cinder-api.cfg; '
            'OpenStack-Ansible: the one haproxy.cfg).'))
    return result


def check_proxysql(inputs):
    """ProxySQL with several writers, or reads split from writes."""
    if inputs.proxysql is None:
        return []
    result = []
    for group, count, reason in proxysql.writers(inputs.proxysql):
        if count < 2:
            continue
        result.append(fnd.Finding(
            'proxysql_multi_writer', 'high', inputs.proxysql.path, None,
            'ProxySQL sends writes of hostgroup %s to up to %d Galera '
            'nodes at once (%s): a volume row written through one node can '
            'be missing on the next statement through another, and '
            'concurrent writers conflict (DBDeadlock). %s'
            % (group, count, reason, galera.LAB_FIGURES),
            'Keep one writer: mysql_galera_hostgroups with max_writers = 1 '
            '(as Kolla-Ansible renders it), or set %s in every service.'
            % galera._SYNC_WAIT))
    for rule in proxysql.read_split(inputs.proxysql):
        result.append(fnd.Finding(
            'proxysql_reads_split_from_writes', 'high',
            inputs.proxysql.path, None,
            'mysql_query_rules rule %s sends SELECTs to hostgroup %s, not '
            'to the writer: a read right after a write can go to a node '
            'that has not applied it yet (GET /volumes/<id> answers 404 '
            'after the 202).' % (rule.get('rule_id', '?'),
                                 rule.get('destination_hostgroup')),
            'Route reads to the writer hostgroup (drop the rule), or set %s '
            'in every service.' % galera._SYNC_WAIT))
    return result


def _events_set(nova):
    option = nova.get(opts.EVENTS_GROUP, 'transport_url') if nova else None
    return option is not None and option.value.strip() != ''


def check_events_prerequisites(inputs):
    """``[bdm_guard_events]`` set: cinder must publish where it listens."""
    if not _events_set(inputs.nova):
        return []
    if inputs.cinder is None:
        return [fnd.Finding(
            'events_prerequisites_not_checked', 'low', inputs.nova.path,
            inputs.nova.get(opts.EVENTS_GROUP, 'transport_url').line,
            '[bdm_guard_events] transport_url is set, but no cinder.conf '
            'was given: whether cinder publishes its notifications there '
            'was not checked.',
            'Give --cinder-conf of a controller.')]
    result = []
    section = 'oslo_messaging_notifications'
    option = inputs.cinder.get(section, 'driver')
    drivers = {d.strip() for d in (option.value if option else '')
               .replace('\n', ',').split(',') if d.strip()}
    if not drivers & set(BUS_DRIVERS):
        result.append(fnd.Finding(
            'events_without_cinder_notifications', 'high',
            inputs.cinder.path, option.line if option else None,
            'nova-compute listens for cinder\'s volume notifications '
            '([bdm_guard_events] transport_url), but cinder\'s [%s] driver '
            'is %s: cinder publishes nothing on the bus. The listener\'s '
            'self-pings still succeed, so waits trust events that never '
            'come and poll only at the backstop interval.'
            % (section, ', '.join(sorted(drivers)) or 'unset (no driver)'),
            'Set [%s] driver = messagingv2 in cinder.conf, or unset '
            '[bdm_guard_events] transport_url in nova.conf.' % section))
    topic_opt = inputs.nova.get(opts.EVENTS_GROUP, 'topic')
    topic = topic_opt.value.strip() if topic_opt else 'notifications'
    topics_opt = inputs.cinder.get(section, 'topics')
    topics = [t.strip() for t in (topics_opt.value if topics_opt
                                  else 'notifications').split(',')
              if t.strip()]
    if drivers & set(BUS_DRIVERS) and topic not in topics:
        result.append(fnd.Finding(
            'events_topic_mismatch', 'high', inputs.cinder.path,
            topics_opt.line if topics_opt else None,
            'cinder publishes on topics %s, but nova-compute\'s listener '
            'binds to %s.info and %s.error ([bdm_guard_events] topic): no '
            'volume notification reaches it.'
            % (', '.join(topics), topic, topic),
            'Add %s to cinder\'s [%s] topics, or set [bdm_guard_events] '
            'topic to one of them.' % (topic, section)))
    return result


CHECKS = (check_haproxy_coverage, check_proxysql,
          check_events_prerequisites)
