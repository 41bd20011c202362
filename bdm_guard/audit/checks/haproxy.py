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

from bdm_guard.audit.checks import galera
from bdm_guard.audit import findings as fnd
from bdm_guard.audit.parsers import haproxy as parser

#: oslo.messaging ``rpc_response_timeout`` default, seconds.
RPC_RESPONSE_TIMEOUT = 60
#: oslo.db ``[database] connection_recycle_time`` default, seconds.
CONNECTION_RECYCLE_TIME = 3600
#: cinder-api's port (``osapi_volume_listen_port`` default).
CINDER_API_PORTS = {8776}
API_NAME = r'cinder|volume'
#: A client or server timeout above this (seconds) is absurd: a hung
#: backend then holds nova's request, and a build thread, for over a day.
ABSURD_TIMEOUT = 86400


def _tightest(timeout):
    """Sort key: shortest first, ``timeout server`` before ``client``."""
    seconds, which, directive = timeout
    return seconds, which != 'server', directive.line


def _tightest_below(inputs, section, limit):
    """The section's tightest timeout under ``limit`` seconds, or None.

    :returns: ``(seconds, which, directive)``; ``timeout server`` wins a tie.
    """
    short = [t for t in inputs.haproxy.timeouts(section) if t[0] < limit]
    return min(short, key=_tightest) if short else None


def check_api_lb_timeout(inputs):
    """The LB gives up on cinder-api requests before cinder-api does."""
    if inputs.haproxy is None:
        return []
    limit, _ = inputs.number(inputs.cinder, 'DEFAULT', 'rpc_response_timeout',
                             RPC_RESPONSE_TIMEOUT)
    if limit is None:
        return []
    result = []
    for section in inputs.proxies(CINDER_API_PORTS, API_NAME):
        short = _tightest_below(inputs, section, limit)
        if short is None:
            continue
        seconds, which, directive = short
        result.append(fnd.Finding(
            'lb_timeout_shorter_than_slow_requests', 'high',
            directive.path, directive.line,
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
    values = [inputs.number(conf, 'database', 'connection_recycle_time',
                            CONNECTION_RECYCLE_TIME)[0]
              for conf in (inputs.nova, inputs.cinder)]
    if None in values:
        return []
    # A negative value is SQLAlchemy's "never recycle": any timeout cuts.
    recycle = max(float('inf') if v < 0 else v for v in values)
    result = []
    for section in inputs.proxies(inputs.database_ports(),
                                  galera.DB_NAME):
        short = _tightest_below(inputs, section, recycle)
        if short is None:
            continue
        seconds, which, directive = short
        result.append(fnd.Finding(
            'db_lb_timeout_kills_pooled_connections', 'medium',
            directive.path, directive.line,
            'haproxy closes a database connection through %s %s after %.0f '
            's without traffic (timeout %s), but oslo.db keeps pooled '
            'connections for connection_recycle_time = %d s. oslo.db\'s '
            'checkout ping replaces most cut connections, but one cut while '
            'a service holds it (a long transaction, a pause between '
            'statements) fails with "MySQL server has gone away" or "Lost '
            'connection to MySQL server during query".'
            % (section.kind, section.name, seconds, which,
               -1 if recycle == float('inf') else recycle),
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
            'lb_resends_posts', 'high', retry_on.path, retry_on.line,
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
                                 galera.DB_NAME))
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
                unchecked[0].path, unchecked[0].line,
                'server %s of %s %s has no health check: while that node is '
                'down haproxy keeps sending it requests, which fail as '
                '"connection refused" or hang until the timeout.'
                % (unchecked[0].name, section.kind, section.name),
                'Add "check" (and for Galera a clustercheck port, "check '
                'port 9200") to every server line.'))
    return result


def _timeout_finding(inputs, section, which, directive):
    """The finding for one timeout line haproxy refuses, or absurd."""
    where = '%s %s' % (section.kind, section.name)
    text = directive.args[1] if len(directive.args) > 1 else ''
    try:
        seconds = parser.parse_time(text)
    except ValueError:
        seconds = None
    if seconds is None or seconds > parser.MAX_TIMEOUT:
        return fnd.Finding(
            'lb_timeout_invalid', 'critical', directive.path,
            directive.line,
            '"timeout %s %s" (for %s) is %s: haproxy refuses to start, or '
            'to reload, with it.' % (which, text[:32], where,
                                     'not an haproxy time' if seconds is None
                                     else 'over haproxy\'s limit of '
                                     '2147483647 ms (timer overflow)'),
            'Give timeout %s a time such as 2m (units us, ms, s, m, h, d; a '
            'bare number is milliseconds).' % which)
    if seconds == 0 or seconds > ABSURD_TIMEOUT:
        return fnd.Finding(
            'lb_timeout_absurd', 'medium', directive.path,
            directive.line,
            '"timeout %s %s" (for %s) %s: a cinder-api or database node '
            'that hangs without closing the connection holds the caller '
            '(a nova build thread, an oslo.db session) %s instead of '
            'failing it so that it can be retried.'
            % (which, text, where, 'disables the timeout' if seconds == 0
               else 'is %.1f days' % (seconds / 86400.0),
               'forever' if seconds == 0 else 'that long'),
            'Use a bounded timeout: a few minutes for cinder-api (above '
            'rpc_response_timeout), above connection_recycle_time for the '
            'database (e.g. 90m).')
    return None


def check_lb_timeout_values(inputs):
    """Timeouts haproxy refuses, disabled, or absurdly long."""
    if inputs.haproxy is None:
        return []
    result, seen = [], set()
    sections = (inputs.proxies(CINDER_API_PORTS, API_NAME)
                + inputs.proxies(inputs.database_ports(), galera.DB_NAME))
    for section in sections:
        for which, directive in inputs.haproxy.timeout_directives(section):
            if (directive.path, directive.line) in seen:
                continue
            seen.add((directive.path, directive.line))
            finding = _timeout_finding(inputs, section, which, directive)
            if finding is not None:
                result.append(finding)
    return result


CHECKS = (check_api_lb_timeout, check_lb_timeout_values, check_db_lb_timeout,
          check_lb_resends_posts,
          check_health_checks)
