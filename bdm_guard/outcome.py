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

"""Typed outcomes of one HTTP call to cinder.

Every call that :class:`bdm_guard.cinder.VolumeClient` makes ends in exactly
one :class:`Outcome`; the waiter and the creator decide on outcome kinds,
never on raw exceptions:

============  ===========================================  ==================
kind          examples                                     resend a POST?
============  ===========================================  ==================
ok            2xx with a JSON object (202/204 for DELETE)  n/a
not_sent      connection refused, DNS failure, connect     yes
              timeout, a TLS handshake or certificate
              failure, haproxy 503 "No server is
              available", 408
unknown       reset or remote disconnect after sending,    no: reconcile
              read timeout, a call cut at its deadline,    first
              any other TLS error, 502, 504, 5xx with an
              HTML body, a 2xx that is not JSON
not_found     404                                          n/a
auth          401                                          re-authenticate
throttled     429, or a 413 that names no quota, with      after Retry-After
              Retry-After
over_quota    413 whose cinder fault names a quota         never
rejected      any other 4xx                                never
server_error  500/503 with a cinder JSON fault             GET yes, POST no
malformed     a 2xx JSON answer that is not what was       no: reconcile
              asked (not an object, no volume, another     first
              volume's id), JSON nested too deep to read
============  ===========================================  ==================
"""

import dataclasses
import email.utils
import math
import re
import ssl
import time

import requests
import urllib3
from urllib3.util import ssl_match_hostname

OK = 'ok'
NOT_SENT = 'not_sent'
UNKNOWN = 'unknown'
NOT_FOUND = 'not_found'
AUTH = 'auth'
THROTTLED = 'throttled'
OVER_QUOTA = 'over_quota'
REJECTED = 'rejected'
SERVER_ERROR = 'server_error'
#: A 2xx whose body is not what the call asked for (another volume's id,
#: a status that is not a string, JSON nested too deep to read).
MALFORMED = 'malformed'

KINDS = (OK, NOT_SENT, UNKNOWN, NOT_FOUND, AUTH, THROTTLED, OVER_QUOTA,
         REJECTED, SERVER_ERROR, MALFORMED)

# haproxy's own 503 page when no backend is up (haproxy errorfile default).
_HAPROXY_NO_SERVER = 'no server is available'
_MAX_MESSAGE = 512

# Cinder's QuotaError messages (cinder/exception.py, cinder 29).
_QUOTA_PATTERNS = (
    (re.compile(r"exceeds allowed (?P<name>[\w.-]+) quota"), None),
    (re.compile(r"exceeded for quota '(?P<name>[\w.-]+)'"), None),
    (re.compile(r"larger than maximum allowed limit"),
     'per_volume_gigabytes'),
    (re.compile(r"Quota exceeded for resources: \[?'?(?P<name>[\w.-]+)"),
     None),
)
_TAG = re.compile(r'<[^>]*>')
_TITLE = re.compile(r'<title>(.*?)</title>|<h1>(.*?)</h1>', re.I | re.S)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The one result of one HTTP call.

    :ivar kind: one of :data:`KINDS`.
    :ivar body: the decoded JSON body (dict) for ``ok``; else None.
    :ivar status_code: the HTTP status, or None when no response came.
    :ivar message: cinder's fault message, the title of an HTML error page,
        or the transport error, at most 512 characters.
    :ivar retry_after: seconds from a Retry-After header (RFC 9110 section
        10.2.3, seconds or HTTP-date), or None.
    :ivar quota: for ``over_quota``, the quota cinder named (``volumes``,
        ``gigabytes``, ``gigabytes_<type>``, ``per_volume_gigabytes``, or
        ``unknown``).
    :ivar request_id: cinder's ``x-openstack-request-id``, when answered.
    :ivar replayed: for ``ok``: cinder answered a create sent with its
        idempotency key as a replay of an earlier one
        (``Idempotent-Replayed: true``, cinder microversion 3.72).
    """

    kind: str
    body: object = None
    status_code: int = None
    message: str = None
    retry_after: float = None
    quota: str = None
    request_id: str = None
    replayed: bool = False


def parse_retry_after(value, now=None):
    """Parse a Retry-After header value.

    :param value: the header value (str) or None.
    :param now: the current Unix time in seconds, for an HTTP-date value;
        defaults to :func:`time.time`.
    :returns: seconds to wait (finite float >= 0), or None when absent or
        malformed. RFC 9110 allows only a non-negative integer or a date:
        a negative, infinite or NaN number (``1e400``) is malformed, since
        no sleep could honour it.
    """
    if value is None:
        return None
    value = str(value).strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or seconds < 0:
            return None
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _fault_message(body):
    # Cinder faults look like {"itemNotFound": {"code": 404, "message": ..}}
    # (cinder/api/openstack/wsgi.py Fault); some carry "message" at the top.
    if not isinstance(body, dict) or not body:
        return None
    if isinstance(body.get('message'), str):
        return body['message']
    first = next(iter(body.values()))
    if isinstance(first, dict) and isinstance(first.get('message'), str):
        return first['message']
    return None


def _html_message(resp):
    text = resp.text[:4096] if resp.text else ''
    match = _TITLE.search(text)
    if match:
        title = match.group(1) or match.group(2)
    else:
        title = resp.reason or ''
    rest = ' '.join(_TAG.sub(' ', text).split())
    title = ' '.join(_TAG.sub(' ', title).split())
    if rest.startswith(title):
        return rest
    return ('%s %s' % (title, rest)).strip()


def _quota_name(message):
    for pattern, fixed in _QUOTA_PATTERNS:
        match = pattern.search(message or '')
        if match:
            return fixed or match.group('name')
    if message and 'quota' in message.lower():
        return 'unknown'
    return None


def _is_json(resp, body):
    # A body that decoded as JSON counts unless the server said otherwise.
    ctype = (resp.headers.get('Content-Type') or '') if resp.headers else ''
    return isinstance(body, (dict, list)) and (
        not ctype or 'json' in ctype.lower())


def classify_response(resp, body):
    """Turn an HTTP response into an :class:`Outcome`.

    :param resp: a :class:`requests.Response`.
    :param body: its decoded JSON body, or None when it was not JSON.
    :returns: an :class:`Outcome`; never raises.
    """
    code = resp.status_code
    is_json = _is_json(resp, body)
    retry_after = parse_retry_after(resp.headers.get('Retry-After'))
    request_id = resp.headers.get('x-openstack-request-id')
    if is_json:
        message = _fault_message(body) or resp.reason or ''
    else:
        message = _html_message(resp)
    message = (message or '')[:_MAX_MESSAGE]

    def out(kind, **kw):
        return Outcome(kind, status_code=code, message=message,
                       retry_after=retry_after, request_id=request_id, **kw)

    if 200 <= code < 300:
        if code == 204 or (code == 202 and not resp.content):
            return out(OK, body={})
        if is_json and isinstance(body, dict):
            return out(OK, body=body)
        if is_json:
            # JSON, but not the object every cinder answer is.
            return out(MALFORMED)
        # A non-JSON 2xx is no cinder answer (a captive or broken proxy).
        return out(UNKNOWN)
    if code == 401:
        return out(AUTH)
    if code == 404:
        return out(NOT_FOUND)
    if code == 408:
        return out(NOT_SENT)
    if code in (413, 429):
        quota = _quota_name(message) if (is_json and code == 413) else None
        if quota:
            return out(OVER_QUOTA, quota=quota)
        return out(THROTTLED)
    if 400 <= code < 500:
        return out(REJECTED)
    if code == 503 and not is_json and _HAPROXY_NO_SERVER in message.lower():
        return out(NOT_SENT)
    if code >= 500 and is_json and code not in (502, 504):
        return out(SERVER_ERROR)
    return out(UNKNOWN)


def _chain(exc):
    seen = []
    todo = [exc]
    while todo:
        item = todo.pop()
        if (not isinstance(item, BaseException) or len(seen) > 20
                or any(item is s for s in seen)):
            continue   # ssl.SSLError.reason is a str: skipped here
        seen.append(item)
        todo.extend((item.__cause__, item.__context__,
                     getattr(item, 'reason', None)))
        todo.extend(getattr(item, 'args', ()))
    return seen


_NOT_SENT_ERRORS = (requests.exceptions.ConnectTimeout,
                    urllib3.exceptions.ConnectTimeoutError,
                    urllib3.exceptions.NewConnectionError,
                    ConnectionRefusedError)

# A certificate failure always ends the handshake, before the request left
# (ssl.CertificateError is ssl.SSLCertVerificationError since Python 3.7).
_CERT_ERRORS = (ssl.SSLCertVerificationError,
                ssl_match_hostname.CertificateError)
_SSL_ERRORS = _CERT_ERRORS + (ssl.SSLError, urllib3.exceptions.SSLError,
                              requests.exceptions.SSLError)
# Frames of the TLS handshake: ssl.SSLSocket.do_handshake and urllib3's
# connect step (HTTPConnectionPool._validate_conn, urllib3 1.26 and 2.x);
# an SSL error while reading the reply passes through getresponse instead.
_CONNECT_FRAMES = frozenset(['do_handshake', '_validate_conn'])


def _raised_while_connecting(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_name not in (
            _CONNECT_FRAMES):
        tb = tb.tb_next
    return tb is not None


def _ssl_kind(chain):
    """``not_sent``/``unknown`` for an SSL error chain, None if no SSL."""
    errors = [e for e in chain if isinstance(e, _SSL_ERRORS)]
    if any(isinstance(e, _CERT_ERRORS) or _raised_while_connecting(e)
           for e in errors):
        return NOT_SENT
    # Any other SSL error (a bad record MAC while the reply was read).
    return UNKNOWN if errors else None


def classify_exception(exc):
    """Turn a transport error into an :class:`Outcome`.

    keystoneauth wraps every requests error in ``ConnectFailure``,
    ``ConnectTimeout`` or ``SSLError``, so the chain of causes is walked to
    tell an error raised before the request left (``not_sent``) from one
    raised after (``unknown``): a read timeout is also a keystoneauth
    ``ConnectTimeout``. An SSL error is ``not_sent`` only when it is a
    certificate failure or was raised in the handshake; any other (a bad
    record MAC while the reply was read) is ``unknown``. Any error raised
    in the TLS handshake (a handshake that times out or is reset: urllib3
    writes the request only once it is done) is ``not_sent`` too.

    :param exc: the exception raised by keystoneauth or requests.
    :returns: an :class:`Outcome` of kind ``not_sent`` or ``unknown``.
    """
    chain = _chain(exc)
    kind = _ssl_kind(chain)
    if kind is None and any(_raised_while_connecting(e) for e in chain):
        # A TLS handshake that timed out or was reset: the request was
        # never written (urllib3 sends it only after _validate_conn).
        kind = NOT_SENT
    if kind is None:
        first = next((e for e in chain if isinstance(
            e, _NOT_SENT_ERRORS + (requests.exceptions.ReadTimeout,))), None)
        kind = NOT_SENT if isinstance(first, _NOT_SENT_ERRORS) else UNKNOWN
    return Outcome(kind, message=str(exc)[:_MAX_MESSAGE])
