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

"""The only module that talks HTTP to cinder.

It uses python-cinderclient's v3 ``SessionClient`` (a keystoneauth
``Adapter``) so that endpoint discovery, microversion headers, the global
request id, token handling and request logging are cinderclient's and
keystoneauth's own. Each call goes through ``SessionClient.request`` with
``raise_exc=False`` because cinderclient's exceptions drop what the typed
outcome needs (the Retry-After header and whether the body was a cinder JSON
fault or an HTML page from a load balancer).

keystoneauth's connect retries are switched off (``connect_retries=0``) on
every call: keystoneauth cannot tell "never sent" from "sent, reply lost" and
would resend a POST blindly. Retries belong to the waiter and the creator.

A keystoneauth error that no retry can clear (no cinder endpoint in the
catalog for the region/interface, credentials keystone refuses, a missing
auth plugin, failed version discovery, a malformed endpoint URL) is no
outcome: it raises :class:`bdm_guard.exception.CinderConfigError` at once,
so that a waiter does not poll until its deadline and hide the cause.
"""

import dataclasses
import functools
import inspect
import threading

from cinderclient import api_versions
from cinderclient import client as cinder_client
from cinderclient import utils as cinder_utils
from cinderclient.v3 import volumes as cinder_volumes
from keystoneauth1 import exceptions as ks_exc
from oslo_log import log as logging
import requests

from bdm_guard import exception
from bdm_guard.internal import statuses
from bdm_guard.internal import transport
from bdm_guard import outcome as oc

LOG = logging.getLogger(__name__)

# GET /messages needs microversion 3.3 (cinder API reference, "Messages").
#: cinder honours ``GET /messages?resource_uuid=`` from microversion 3.5
#: on (``cinder/api/openstack/api_version_request.py``: 3.5 "Add pagination
#: and filtering support for messages"); 3.3 lists every message of the
#: project. A cinder older than 3.5 is asked at 3.3, and the caller keeps
#: only the volume's own messages either way.
MESSAGES_MICROVERSIONS = ('3.5', '3.3')

# keystoneauth errors that may clear on a retry: keystone or the network
# down or overloaded while the token, catalog or version document was
# fetched (DiscoveryFailure is raised from a ConnectFailure then).
#: Default and floor of a call's total time (seconds): the longest one call
#: may take, connect to last byte (``[bdm_guard] request_timeout``).
REQUEST_TIMEOUT = 30.0
MIN_REQUEST_TIMEOUT = 1.0
#: The connect part of it, at most (seconds).
CONNECT_TIMEOUT = 10.0

_TRANSIENT_KS_ERRORS = (ks_exc.ConnectionError, ks_exc.HttpServerError,
                        ks_exc.RequestTimeout, ks_exc.InvalidResponse)
#: HTTP 429 Too Many Requests (RFC 6585): keystone rate-limited, transient.
#: keystoneauth1 5.16 raises ``exceptions.TooManyRequests`` for it; older
#: releases (every supported OpenStack release pins one: 2024.1 5.6.1 to
#: master 5.15.0) raise a plain ``HttpError`` whose ``http_status`` is 429.
HTTP_TOO_MANY_REQUESTS = 429
# requests errors (wrapped in keystoneauth's UnknownConnectionError) for an
# endpoint URL that can never work.
_BAD_URL_ERRORS = (requests.exceptions.InvalidURL,
                   requests.exceptions.MissingSchema,
                   requests.exceptions.InvalidSchema)


def _caused_by(exc, types):
    """Whether ``exc`` or one of its causes is of ``types``.

    :param types: a tuple of exception types, or a predicate taking an
        exception and returning bool.
    """
    if isinstance(types, tuple):
        def matches(e):
            return isinstance(e, types)
    else:
        matches = types
    for _ in range(20):
        if exc is None:
            return False
        if matches(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def is_transient_ks_error(exc):
    """Whether a keystoneauth error may clear on a retry.

    keystone or the network down or overloaded while the token, catalog or
    version document was fetched, or keystone rate-limiting (HTTP 429, on
    every keystoneauth1 release: see :data:`HTTP_TOO_MANY_REQUESTS`).

    :param exc: an exception.
    :returns: bool.
    """
    if isinstance(exc, _TRANSIENT_KS_ERRORS):
        return True
    return (isinstance(exc, ks_exc.HttpError)
            and getattr(exc, 'http_status', None) == HTTP_TOO_MANY_REQUESTS)


#: The first cinder microversion whose ``POST /volumes`` takes an
#: ``Idempotency-Key`` header (cinder spec volume-create-idempotency-key,
#: ``patches/cinder/specs/idempotency-key.rst``).
IDEMPOTENCY_KEY_MICROVERSION = '3.72'
#: The response header of a create cinder answered as a replay (same spec).
IDEMPOTENT_REPLAYED_HEADER = 'Idempotent-Replayed'

# endpoint -> the highest microversion its cinder advertised; learned once
# per process (one GET of the version document), forgotten when cinder
# refuses the key's microversion (an older API node behind the same load
# balancer during a rolling upgrade).
_SERVER_VERSIONS = {}
_SERVER_VERSIONS_LOCK = threading.Lock()


def client_supports_idempotency_key() -> bool:
    """Whether the installed python-cinderclient can send cinder's key.

    Feature-detected, not by release: its ``MAX_VERSION`` reaches
    :data:`IDEMPOTENCY_KEY_MICROVERSION` and ``volumes.create`` takes
    ``idempotency_key`` (``patches/python-cinderclient`` 0001; 9.10.0, the
    newest release, stops at 3.71).

    :returns: bool.
    """
    if (api_versions.APIVersion(api_versions.MAX_VERSION)
            < api_versions.APIVersion(IDEMPOTENCY_KEY_MICROVERSION)):
        return False
    try:
        params = inspect.signature(
            cinder_volumes.VolumeManager.create).parameters
    except (TypeError, ValueError):
        return False
    return 'idempotency_key' in params and _builds_keyed_request()


@functools.lru_cache(maxsize=None)
def _builds_keyed_request():
    """Whether ``volumes.create`` builds a keyed request the way we read it.

    A dry run, once per process: a client that builds the header some
    other way than through its ``post`` is taken as one without the key,
    rather than failing creates.
    """
    try:
        _, _, headers = _build_keyed_request({'size': 1}, 'probe')
    except Exception:  # any surprise: go by metadata
        LOG.warning('python-cinderclient %s has volumes.create('
                    'idempotency_key=) but does not build a request '
                    'bdm-guard can send; creating without the key.',
                    api_versions.MAX_VERSION, exc_info=True)
        return False
    return 'Idempotency-Key' in headers


def forget_server_versions() -> None:
    """Forget every cinder's advertised microversion (tests)."""
    with _SERVER_VERSIONS_LOCK:
        _SERVER_VERSIONS.clear()


class _Built(Exception):
    """The request a cinderclient manager built, stopped before it is sent."""

    def __init__(self, url, body, headers):
        super().__init__(url)
        self.url = url
        self.body = body
        self.headers = headers


class _Builder:
    """Stands in for cinderclient's ``SessionClient`` under a manager.

    The manager builds the request (body, headers, the microversion
    checks); :class:`VolumeClient` sends it, so that its answer is read
    into an Outcome like every other call's.
    """

    def __init__(self, version):
        self.api_version = api_versions.APIVersion(version)
        self.client = self

    def post(self, url, body=None, headers=None, **kwargs):
        raise _Built(url, body, dict(headers or {}))


#: The ``volume`` fields of a create body that ``volumes.create`` takes as
#: arguments of the same name.
_CREATE_ARGS = ('size', 'snapshot_id', 'source_volid', 'name',
                'description', 'volume_type', 'availability_zone',
                'metadata', 'imageRef')


def keyed_create_request(volume, idempotency_key):
    """The ``POST /volumes`` python-cinderclient builds for a keyed create.

    :param volume: the ``volume`` object of the body (dict); fields that
        ``volumes.create`` has no argument for are added to its body as
        they are.
    :param idempotency_key: the key (str).
    :returns: ``(url, body, headers)``; ``headers`` holds the
        ``Idempotency-Key`` and the ``OpenStack-API-Version`` of
        :data:`IDEMPOTENCY_KEY_MICROVERSION`.
    :raises ValueError: the installed python-cinderclient cannot send the
        key (see :func:`client_supports_idempotency_key`), or refuses it.
    """
    if not client_supports_idempotency_key():
        raise ValueError('python-cinderclient %s cannot send an idempotency '
                         'key' % api_versions.MAX_VERSION)
    return _build_keyed_request(volume, idempotency_key)


def _build_keyed_request(volume, idempotency_key):
    manager = cinder_volumes.VolumeManager(
        _Builder(IDEMPOTENCY_KEY_MICROVERSION))
    args = {k: volume[k] for k in _CREATE_ARGS if k in volume}
    try:
        manager.create(idempotency_key=idempotency_key, **args)
    except _Built as built:
        body = built.body
        body['volume'].update({k: v for k, v in volume.items()
                               if k not in _CREATE_ARGS})
        headers = dict(built.headers)
        api_versions.update_headers(headers, manager.api_version)
        return built.url, body, headers
    raise ValueError('volumes.create sent no request')


#: Validate a cinder volume id and return its canonical form (see
#: :func:`bdm_guard.internal.statuses.check_volume_id`).
check_volume_id = statuses.check_volume_id


class VolumeClient:
    """Volume calls that each end in one :class:`bdm_guard.outcome.Outcome`.

    The real implementation of :class:`bdm_guard.client.
    VolumeClient`.

    :param session: a :class:`keystoneauth1.session.Session`.
    :param auth: a keystoneauth auth plugin for these calls, when it is not
        the session's own (nova passes the user's token per request on a
        shared session).
    :param endpoint_override: cinder's endpoint, including
        ``/v3/<project_id>``, instead of the catalog's.
    :param region_name: the catalog region.
    :param interface: the catalog interface (``public``, ``internal``...).
    :param global_request_id: ``req-<uuid>`` sent as
        ``X-OpenStack-Request-ID`` on every call that does not carry its own.
    :param api_version: the cinder API microversion, ``"3.0"`` by default.
    :param request_timeout: the most one call may take in all, connect to
        last byte (seconds); a call given a ``timeout`` (what is left of a
        caller's deadline) takes the smaller one, never under 1 s.

    Every call takes a keyword-only ``timeout`` (seconds, or None): what is
    left of the caller's deadline. A call that runs out of time ends with a
    transport outcome (``unknown`` once the request may have been sent),
    its message saying so.
    """

    def __init__(self, session, *, auth=None, endpoint_override=None,
                 region_name=None, interface=None, global_request_id=None,
                 api_version='3.0', request_timeout=REQUEST_TIMEOUT):
        kwargs = {'session': session, 'connect_retries': 0,
                  'retries': 0}
        if auth is not None:
            kwargs['auth'] = auth
        if endpoint_override:
            kwargs['endpoint_override'] = endpoint_override
        if region_name:
            kwargs['region_name'] = region_name
        if interface:
            kwargs['interface'] = interface
        self.global_request_id = global_request_id
        self.request_timeout = request_timeout
        self.endpoint_override = endpoint_override
        transport.install(session)
        self._cinder = cinder_client.Client(api_version, **kwargs)
        self._http = self._cinder.client
        if global_request_id:
            # Calls cinderclient makes itself (the version document)
            # carry it too; keystoneauth's Adapter sets the header.
            self._http.global_request_id = global_request_id

    def _limit(self, timeout):
        limit = self.request_timeout
        if timeout is not None:
            limit = min(limit, timeout)
        return max(limit, MIN_REQUEST_TIMEOUT)

    def _call(self, method, url, *, body=None, request_id=None,
              headers=None, timeout=None, replay_header=None):
        limit = self._limit(timeout)
        kwargs = {'raise_exc': False, 'authenticated': True,
                  'connect_retries': 0, 'headers': dict(headers or {}),
                  'timeout': (min(CONNECT_TIMEOUT, limit), limit)}
        rid = request_id or self.global_request_id
        if rid:
            kwargs['headers']['X-OpenStack-Request-ID'] = rid
        if body is not None:
            kwargs['body'] = body
        watch = None
        try:
            with transport.bounded(limit) as watch:
                resp, rbody = self._http.request(url, method, **kwargs)
        except RecursionError:
            # json.loads of a body nested thousands deep.
            result = oc.Outcome(oc.MALFORMED,
                                message='answer nested too deep to read')
        except ks_exc.ClientException as exc:
            if _caused_by(exc, _BAD_URL_ERRORS) or not _caused_by(
                    exc, is_transient_ks_error):
                LOG.error('%(method)s %(url)s cannot be sent: %(type)s: '
                          '%(exc)s', {'method': method, 'url': url,
                                      'type': type(exc).__name__, 'exc': exc})
                raise exception.CinderConfigError(
                    method=method, url=url, error=type(exc).__name__,
                    reason=str(exc)[:512]) from exc
            if isinstance(exc, ks_exc.ConnectionError):
                result = oc.classify_exception(exc)
            else:
                # keystone failed transiently (token, catalog, discovery):
                # nothing reached cinder.
                result = oc.Outcome(oc.NOT_SENT, message=str(exc)[:512])
        else:
            result = oc.classify_response(resp, rbody)
            if (replay_header and result.kind == oc.OK and str(
                    resp.headers.get(replay_header) or '').strip().lower()
                    == 'true'):
                result = dataclasses.replace(result, replayed=True)
        if watch is not None and watch.expired and result.kind != oc.OK:
            result = dataclasses.replace(
                result, message='no complete answer within %.1f s (%s)' % (
                    limit, result.message))
        LOG.debug('%(method)s %(url)s -> %(kind)s (HTTP %(code)s)',
                  {'method': method, 'url': url, 'kind': result.kind,
                   'code': result.status_code})
        return result

    @staticmethod
    def _unwrap(result, key, volume_id=None):
        """Return ``result`` with its body reduced to ``body[key]``.

        A 2xx whose JSON lacks ``key``, a volume without a UUID ``id``, or
        a volume whose id is not ``volume_id`` (the one asked for) is no
        usable answer: ``malformed``, never believed.
        """
        if result.kind != oc.OK:
            return result
        value = result.body.get(key) if isinstance(result.body, dict) else None
        problem = None
        if key == 'volume':
            found = value.get('id') if isinstance(value, dict) else None
            try:
                found = check_volume_id(found)
            except exception.InvalidVolumeId:
                problem = 'answer has no volume with a UUID id'
            else:
                if volume_id is not None and found != volume_id:
                    problem = ('answer is about volume %s, not %s'
                               % (found, volume_id))
        elif not isinstance(value, list):
            problem = 'answer has no %s list' % key
        if problem is not None:
            return oc.Outcome(oc.MALFORMED, status_code=result.status_code,
                              message=problem, request_id=result.request_id)
        return oc.Outcome(oc.OK, body=value, status_code=result.status_code,
                          request_id=result.request_id)

    def get_volume(self, volume_id, *, timeout=None):
        """``GET /volumes/{id}``.

        :param volume_id: a volume UUID.
        :returns: an Outcome whose ``body`` is the volume dict when ``ok``.
        :raises bdm_guard.exception.InvalidVolumeId: before any request.
        :raises bdm_guard.exception.CinderConfigError: keystoneauth cannot
            send it and retrying cannot help (see the module docstring).
        """
        volume_id = check_volume_id(volume_id)
        return self._unwrap(self._call('GET', '/volumes/%s' % volume_id,
                                       timeout=timeout),
                            'volume', volume_id)

    def _endpoint(self):
        if self.endpoint_override:
            return self.endpoint_override
        try:
            return self._http.get_endpoint()
        except ks_exc.ClientException:
            return None

    def supports_idempotency_key(self, *, timeout=None) -> bool:
        """Whether a create may carry cinder's idempotency key.

        Both halves are needed: the installed python-cinderclient
        (:func:`client_supports_idempotency_key`) and cinder, whose version
        document (``GET /``, through cinderclient's
        ``api_versions.get_highest_version``) advertises
        :data:`IDEMPOTENCY_KEY_MICROVERSION` or later. cinder's answer is
        remembered per endpoint for the life of the process, so this costs
        one GET per endpoint, not one per create; a failed look is not
        remembered.

        :param timeout: seconds left of the caller's deadline, or None.
        :returns: bool; False when the version document could not be read
            (the create then takes the metadata path, which works with
            every cinder).
        """
        if not client_supports_idempotency_key():
            return False
        endpoint = self._endpoint()
        with _SERVER_VERSIONS_LOCK:
            highest = _SERVER_VERSIONS.get(endpoint)
        if highest is None:
            try:
                with transport.bounded(self._limit(timeout)):
                    highest = api_versions.get_highest_version(self._cinder)
            except Exception as exc:  # any failure: take the metadata path
                LOG.warning('Could not read the cinder API version document '
                            '(%(type)s: %(exc)s); creating without the '
                            'idempotency key.',
                            {'type': type(exc).__name__, 'exc': exc})
                return False
            if endpoint is not None:
                with _SERVER_VERSIONS_LOCK:
                    _SERVER_VERSIONS[endpoint] = highest
        return highest >= api_versions.APIVersion(
            IDEMPOTENCY_KEY_MICROVERSION)

    def forget_idempotency_key_support(self) -> None:
        """Forget what cinder advertised (it refused the microversion)."""
        with _SERVER_VERSIONS_LOCK:
            _SERVER_VERSIONS.pop(self._endpoint(), None)

    def create_volume(self, volume, *, request_id=None, timeout=None,
                      idempotency_key=None):
        """``POST /volumes``, sent exactly once.

        :param volume: the ``volume`` object of the request body (dict).
        :param request_id: ``req-<uuid>`` for ``X-OpenStack-Request-ID``.
        :param timeout: seconds left of the caller's deadline, or None.
        :param idempotency_key: None (the create as every cinder takes
            it), or cinder's idempotency key (str): then python-cinderclient
            builds the request (``volumes.create(..., idempotency_key=)``,
            the ``Idempotency-Key`` header at
            :data:`IDEMPOTENCY_KEY_MICROVERSION`); call only when
            :meth:`supports_idempotency_key` said True.
        :returns: an Outcome whose ``body`` is the new volume dict when ok
            (``replayed`` True when cinder answered with the volume of an
            earlier create with the key). With the key, cinder answers 409
            (``rejected``, ``retry_after``) while a create with it is in
            flight, and 422 when the key was used with another body.
        :raises ValueError: ``idempotency_key`` given, and the installed
            python-cinderclient cannot send it or refuses it (a key that is
            not 1-255 printable ASCII characters).
        :raises bdm_guard.exception.CinderConfigError: keystoneauth cannot
            send it and retrying cannot help (see the module docstring).
        """
        if idempotency_key is None:
            return self._unwrap(self._call('POST', '/volumes',
                                           body={'volume': volume},
                                           request_id=request_id,
                                           timeout=timeout), 'volume')
        url, body, headers = keyed_create_request(volume, idempotency_key)
        result = self._call('POST', url, body=body, headers=headers,
                            request_id=request_id, timeout=timeout,
                            replay_header=IDEMPOTENT_REPLAYED_HEADER)
        replayed = result.replayed
        result = self._unwrap(result, 'volume')
        if replayed and result.kind == oc.OK:
            result = dataclasses.replace(result, replayed=True)
        return result

    def list_volumes(self, *, metadata=None, request_id=None,
                     timeout=None):
        """``GET /volumes/detail``, filtered by metadata.

        The list is scoped to the token's project (cinder never lists other
        projects' volumes without ``all_tenants``, which is never sent).

        :param metadata: dict of metadata key/value pairs to filter on.
        :param request_id: ``req-<uuid>`` for ``X-OpenStack-Request-ID``.
        :returns: an Outcome whose ``body`` is a list of volume dicts.
        :raises bdm_guard.exception.CinderConfigError: keystoneauth cannot
            send it and retrying cannot help (see the module docstring).
        """
        query = cinder_utils.build_query_param(
            {'metadata': metadata} if metadata else {}, sort=True)
        return self._unwrap(self._call('GET', '/volumes/detail' + query,
                                       request_id=request_id,
                                       timeout=timeout), 'volumes')

    def delete_volume(self, volume_id, *, request_id=None, timeout=None):
        """``DELETE /volumes/{id}``.

        :param volume_id: a volume UUID.
        :param request_id: ``req-<uuid>`` for ``X-OpenStack-Request-ID``.
        :returns: an Outcome (``ok`` when cinder accepted the delete).
        :raises bdm_guard.exception.InvalidVolumeId: before any request.
        :raises bdm_guard.exception.CinderConfigError: keystoneauth cannot
            send it and retrying cannot help (see the module docstring).
        """
        volume_id = check_volume_id(volume_id)
        return self._call('DELETE', '/volumes/%s' % volume_id,
                          request_id=request_id, timeout=timeout)

    def list_messages(self, volume_id, *, timeout=None):
        """``GET /messages?resource_uuid={id}``, at microversion 3.5 or 3.3.

        A cinder that refuses 3.5 (HTTP 406 or 400) is asked again at 3.3,
        where the filter is ignored: callers must keep only the messages
        whose ``resource_uuid`` is the volume.

        :param volume_id: a volume UUID.
        :returns: an Outcome whose ``body`` is a list of user messages.
        :raises bdm_guard.exception.InvalidVolumeId: before any request.
        :raises bdm_guard.exception.CinderConfigError: keystoneauth cannot
            send it and retrying cannot help (see the module docstring).
        """
        volume_id = check_volume_id(volume_id)
        query = cinder_utils.build_query_param({'resource_uuid': volume_id})
        for version in MESSAGES_MICROVERSIONS:
            header = {'OpenStack-API-Version': 'volume %s' % version}
            result = self._unwrap(self._call('GET', '/messages' + query,
                                             headers=header,
                                             timeout=timeout), 'messages')
            if not (result.kind == oc.REJECTED
                    and result.status_code in (400, 406)):
                break
        return result

    def reauthenticate(self):
        """Drop the cached token so the next call fetches a new one.

        :returns: True when the auth plugin could be invalidated.
        """
        try:
            return bool(self._http.invalidate())
        except ks_exc.ClientException:
            LOG.warning('Could not invalidate the keystone token.')
            return False
