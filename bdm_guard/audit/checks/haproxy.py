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

"""The load balancer checks of the config audit, one function per risk.

Each check takes :class:`~bdm_guard.audit.findings.Inputs` and returns a
list of :class:`~bdm_guard.audit.findings.Finding`; it returns nothing when
haproxy.cfg was not given.
"""

from bdm_guard.audit.checks import nova_galera as audit_checks
from bdm_guard.audit import findings as fnd

#: oslo.messaging ``rpc_response_timeout`` default, seconds.
RPC_RESPONSE_TIMEOUT = 60
#: oslo.db ``[database] connection_recycle_time`` default, seconds.
CONNECTION_RECYCLE_TIME = 3600
#: cinder-api's port (``osapi_volume_listen_port`` default).
CINDER_API_PORTS = {8776}
API_NAME = r'cinder|volume'


def _tightest(timeout):
    """Sort key: shortest first, ``timeout server`` before ``client``."""
    seconds, which, directive = timeout
    return seconds, which != 'server', directive.line


def check_api_lb_timeout(inputs):
    """The LB gives up on cinder-api requests before cinder-api does."""
    if inputs.haproxy is None:
        return []
    limit, _ = inputs.number(inputs.cinder, 'DEFAULT', 'rpc_response_timeout',
                             RPC_RESPONSE_TIMEOUT)
    result = []
    for section in inputs.proxies(CINDER_API_PORTS, API_NAME):
        short = sorted((t for t in inputs.haproxy.timeouts(section)
                        if t[0] < limit), key=_tightest)
        if not short:
            continue
        seconds, which, directive = short[0]
        result.append(fnd.Finding(
            'lb_timeout_shorter_than_slow_requests', 'high',
            inputs.haproxy.path, directive.line,
            'haproxy cuts a request through %s %s after %.0f s (timeout %s'
            '), shorter than the %d s cinder-api may take before it answers '
            '(rpc_response_timeout). A POST /volumes slower than that (RPC '
            'to cinder-scheduler, glance and keystone calls under load) is '
            'cut after cinder may have accepted it: nova sees 504 or '
            '"Remote end closed connection", the volume exists without '
            'nova knowing, and a resend duplicates it.'
            % (section.kind, section.name, seconds, which, limit),
            'Set timeout client and timeout server to at least %d s for %s '
            '%s (e.g. "timeout server %dm"), above cinder\'s '
            'rpc_response_timeout.' % (2 * limit, section.kind, section.name,
                                       max(2 * limit // 60, 1))))
    return result


def check_db_lb_timeout(inputs):
    """The LB closes pooled DB connections oslo.db still holds."""
    if inputs.haproxy is None:
        return []
    recycle = max(inputs.number(conf, 'database', 'connection_recycle_time',
                                CONNECTION_RECYCLE_TIME)[0]
                  for conf in (inputs.nova, inputs.cinder))
    result = []
    for section in inputs.proxies(inputs.database_ports(),
                                  audit_checks.DB_NAME):
        short = sorted((t for t in inputs.haproxy.timeouts(section)
                        if t[0] < recycle), key=_tightest)
        if not short:
            continue
        seconds, which, directive = short[0]
        result.append(fnd.Finding(
            'db_lb_timeout_kills_pooled_connections', 'medium',
            inputs.haproxy.path, directive.line,
            'haproxy closes a database connection through %s %s after %.0f '
            's without traffic (timeout %s), but oslo.db keeps pooled '
            'connections for connection_recycle_time = %d s. oslo.db\'s '
            'checkout ping replaces most cut connections, but one cut while '
            'a service holds it (a long transaction, a pause between '
            'statements) fails with "MySQL server has gone away" or "Lost '
            'connection to MySQL server during query".'
            % (section.kind, section.name, seconds, which, recycle),
            'Raise timeout client and timeout server for %s %s above '
            'connection_recycle_time (e.g. "timeout client 90m" and "timeout '
            'server 90m" with the default 3600 s), or lower [database] '
            'connection_recycle_time below %.0f s in every service.'
            % (section.kind, section.name, seconds)))
    return result


def check_lb_resends_posts(inputs):
    """haproxy layer-7 retries resend non-idempotent requests."""
    if inputs.haproxy is None:
        return []
    result = []
    for section in inputs.proxies(CINDER_API_PORTS, API_NAME):
        retry_on = section.find('retry-on')
        if retry_on is None or set(retry_on.args) <= {'none', 'conn-failure'}:
            continue
        if any(d.args[:1] == ['disable-l7-retry']
               for d in section.all('http-request')):
            continue
        result.append(fnd.Finding(
            'lb_resends_posts', 'high', inputs.haproxy.path, retry_on.line,
            '"retry-on %s" makes haproxy resend a request to another '
            'cinder-api after a timeout or an error answer, POST /volumes '
            'included: one boot can create two volumes.'
            % ' '.join(retry_on.args),
            'Keep "retry-on conn-failure" (the request was never sent), or '
            'add "http-request disable-l7-retry if METH_POST".'))
    return result


def check_health_checks(inputs):
    """Servers without health checks keep receiving traffic when down."""
    if inputs.haproxy is None:
        return []
    result = []
    sections = (inputs.proxies(CINDER_API_PORTS, API_NAME)
                + inputs.proxies(inputs.database_ports(),
                                 audit_checks.DB_NAME))
    seen = set()
    for section in sections:
        if id(section) in seen:
            continue
        seen.add(id(section))
        servers = section.servers()
        unchecked = [s for s in servers if not s.check]
        if len(servers) > 1 and unchecked:
            result.append(fnd.Finding(
                'lb_server_without_health_check', 'medium',
                inputs.haproxy.path, unchecked[0].line,
                'server %s of %s %s has no health check: while that node is '
                'down haproxy keeps sending it requests, which fail as '
                '"connection refused" or hang until the timeout.'
                % (unchecked[0].name, section.kind, section.name),
                'Add "check" (and for Galera a clustercheck port, "check '
                'port 9200") to every server line.'))
    return result


CHECKS = (check_api_lb_timeout, check_db_lb_timeout, check_lb_resends_posts,
          check_health_checks)
