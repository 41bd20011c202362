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

"""Recognise the log lines that tell the story of a POST /volumes.

nova-compute side (keystoneauth's request logging, on with ``debug``, and
nova's own errors):

* ``REQ: curl -g -i -X POST <url>/volumes ... -H "X-OpenStack-Request-ID:
  req-..."`` -- nova sends a create (``nova_post``);
* ``RESP: [202] ... x-openstack-request-id: req-...`` -- the answer, and
  the request id of the cinder-api request that gave it (``nova_resp``);
* ``Failure: ... Retrying in 0.5s. 2 retries left`` -- keystoneauth resends
  (``nova_retry``);
* ``Instance failed block device setup`` and ``CinderConnectionFailed`` --
  the create failed without an answer (``nova_fail``);
* ``VolumeNotCreated: Volume <id> did not finish being created even after
  we waited <s> seconds or <n> attempts. And its status is <status>.``
  (``not_created``);
* any line with ``[instance: <uuid>]`` ties a request id to an instance
  (``instance``).

cinder-api side (``cinder.api.openstack.wsgi`` at INFO): ``POST <url>``
(``cinder_post``), ``<url> returned with HTTP <status>``
(``cinder_status``; for another URL ``cinder_seen``: the log covers that
time) and ``Create volume of <n> GB`` (``cinder_size``).

Every event is a tuple ``(time, kind, source, gid, rid, instance, data)``
where ``gid`` is the global request id, ``rid`` the service's own request
id (either may be None) and ``data`` depends on the kind.

On nova's side ``gid`` is nova's ``context.global_id``: the global request
id when the line has one, else nova's own request id (what nova sends as
``X-OpenStack-Request-ID`` when it received none). On cinder's side it is
the id cinder logged, or None (propagation off, or logs from before global
request ids). Lines in the layout of those older logs (``[req-<id> user
project ...]``, no global id field) are recognised with oslo.log's current
format: their one request id is the service's own.

``cinder_post`` and ``nova_post`` carry a :class:`Target`: the resource
path, the project (from the URL, else from the line's user identity) and
the volume size of the request body when known, which the time fallback
compares.
"""

import collections
import re
import urllib.parse

#: What a POST /volumes asked for: ``path`` (``volumes``), ``project``
#: (str or None) and ``size`` (GiB, int or None).
Target = collections.namedtuple('Target', 'path project size')

# Cheap substring tests that pass every line an event can come from.
MARKERS = ('REQ: curl', 'RESP: [', 'Retrying in', 'POST ', 'returned with',
           'Instance failed', 'VolumeNotCreated', 'CinderConnectionFailed',
           '[instance: ', 'Create volume of ')
_REQ = re.compile(r'REQ: curl .*?-X (?P<method>[A-Z]+) (?P<url>\S+)')
_REQ_GID = re.compile(r'X-OpenStack-Request-ID: (?P<gid>req-[\w-]+)',
                      re.IGNORECASE)
_RESP = re.compile(r'^RESP: \[(?P<status>\d{3})\]')
_RESP_RID = re.compile(r'x-openstack-request-id: (?P<rid>req-[\w-]+)',
                       re.IGNORECASE)
_RETRY = re.compile(r'Retrying in [\d.]+s\. \d+ retries left')
_CINDER_POST = re.compile(r'^POST (?P<url>\S+)$')
_CINDER_STATUS = re.compile(r'^(?P<url>\S+) returned with HTTP (?P<s>\d{3})')
_NOT_CREATED = re.compile(
    r'VolumeNotCreated: Volume (?P<volume>\S+) did not finish being created '
    r'even after we waited (?P<seconds>\d+) seconds or (?P<attempts>\d+) '
    r'attempts\. And its status is (?P<status>[\w-]+)')
_VERSION = re.compile(r'/v\d+(?:\.\d+)?/')
# The volume size in nova's request body, and cinder-api's INFO line
# about it (cinder.api.v3.volumes, under the POST's request id).
_BODY_SIZE = re.compile(r'"size": (?P<size>\d+)')
_CINDER_SIZE = re.compile(r'^Create volume of (?P<size>\d+) GB')
_CINDER_KINDS = ('cinder_post', 'cinder_status', 'cinder_size',
                 'cinder_seen')


def normalise_url(url):
    """The part of a cinder URL that is the same through every endpoint.

    Public and internal endpoints differ in scheme, host, port, a path
    prefix (``/volume``) and the API version (``v2``, ``v3``):
    ``https://cloud:13776/v3/P/volumes`` and
    ``http://192.0.2.11:8776/volume/v3/P/volumes/`` both give
    ``P/volumes``.

    :param url: an absolute or relative URL (str).
    :returns: the path after the API version, without slashes at the ends.
    """
    path = urllib.parse.urlsplit(url).path
    match = _VERSION.search(path)
    if match:
        path = path[match.end():]
    return path.strip('/')


def target(url, project=None, size=None):
    """The :class:`Target` of a volumes URL.

    ``P/volumes`` gives project ``P``; ``volumes`` (a URL without project
    id, microversion 3.67+) takes ``project`` (the log line's).

    :param url: an absolute or relative URL (str).
    :param project: the line's project id (str) or None.
    :param size: the volume size of the body (int) or None.
    :returns: a :class:`Target`.
    """
    head, _, path = normalise_url(url).rpartition('/')
    return Target(path, head.rpartition('/')[2] or project, size)


def _project(fields):
    """The project id of a line's user identity, or None."""
    words = (fields.get('user_identity') or '').split()
    project = words[1] if len(words) > 1 else None
    return project if project not in (None, '-', 'None') else None


def _relevant(line):
    """Whether ``line`` holds one of :data:`MARKERS`.

    Spelled out: a chain of ``in`` tests is about 1.5 times faster than
    ``any()`` over the tuple or one alternation regex, and this test runs on
    every line.
    """
    return ('POST ' in line or 'RESP: [' in line or '[instance: ' in line
            or 'Retrying in' in line or 'returned with' in line
            or 'Instance failed' in line or 'VolumeNotCreated' in line
            or 'CinderConnectionFailed' in line or 'REQ: curl' in line
            or 'Create volume of ' in line)


def _is_volumes(url):
    """Whether ``url`` is the volumes collection (project id or not)."""
    path = normalise_url(url)
    return path == 'volumes' or path.endswith('/volumes')


def _request_id(value):
    return value if value and value.startswith('req-') else None


class EventParser:
    """Turn log lines of one source into events.

    :param regexes: compiled line regexes tried in order (see
        :func:`bdm_guard.logscan.format.compile_format`).
    :param time_parser: a :class:`bdm_guard.logscan.format.TimeParser`.
    :ivar unparsed: lines that looked relevant but matched no regex, or had
        an invalid time.
    """

    def __init__(self, regexes, time_parser):
        self.regexes = regexes
        self.time_parser = time_parser
        self.unparsed = 0

    def matches(self, line):
        """Whether ``line`` (str) is in one of the log formats."""
        return any(regex.match(line) for regex in self.regexes)

    def logger_name(self, line):
        """The logger name of ``line`` (str).

        :returns: the name (str); ``''`` when the line's format has no
            ``%(name)s``; None when the line is in no log format.
        """
        for regex in self.regexes:
            match = regex.match(line)
            if match:
                return match.groupdict().get('name') or ''
        return None

    def parse(self, line, source):
        """The event of one log ``line`` (str) from ``source``, or None."""
        if not _relevant(line):
            return None
        for regex in self.regexes:
            match = regex.match(line)
            if match:
                break
        else:
            self.unparsed += 1
            return None
        fields = match.groupdict()
        try:
            when = self.time_parser(fields['asctime'], fields.get('msecs'))
        except (ValueError, OverflowError):
            self.unparsed += 1
            return None
        message = fields['message']
        gid = _request_id(fields.get('global_request_id'))
        rid = _request_id(fields.get('request_id'))
        if (gid is not None and rid is None
                and fields.get('request_id') is not None):
            # "[req-<id> user project ...]": a log from before global
            # request ids; its one id is the service's own.
            gid, rid = None, gid
            fields['user_identity'] = '%s %s' % (
                fields['request_id'], fields.get('user_identity') or '')
        instance = fields.get('instance')
        kind, data = self._classify(message, _project(fields))
        if kind is None:
            if instance is None:
                return None
            kind = 'instance'
        if kind not in _CINDER_KINDS:
            # nova's context.global_id (see the module docstring).
            gid = gid or rid
        return (when, kind, source, gid, rid, instance, data)

    @staticmethod
    def _classify(message, project=None):
        """``(kind, data)`` for a message, or ``(None, None)``.

        :param message: the line's message (str).
        :param project: the line's project id (str) or None.
        """
        if message.startswith('REQ: curl'):
            match = _REQ.match(message)
            if (match and match.group('method') == 'POST'
                    and _is_volumes(match.group('url'))):
                gid = _REQ_GID.search(message)
                size = _BODY_SIZE.search(message)
                return 'nova_post', (
                    target(match.group('url'), project,
                           int(size.group('size')) if size else None),
                    gid.group('gid') if gid else None)
            return None, None
        if message.startswith('Create volume of '):
            match = _CINDER_SIZE.match(message)
            return ('cinder_size', int(match.group('size'))) if match else (
                None, None)
        if message.startswith('RESP: ['):
            match = _RESP.match(message)
            rid = _RESP_RID.search(message)
            return 'nova_resp', (int(match.group('status')) if match else 0,
                                 rid.group('rid') if rid else None)
        if message.startswith('POST '):
            match = _CINDER_POST.match(message)
            if match and _is_volumes(match.group('url')):
                return 'cinder_post', target(match.group('url'), project)
            return None, None
        if 'returned with HTTP' in message:
            match = _CINDER_STATUS.match(message)
            if match and _is_volumes(match.group('url')):
                return 'cinder_status', int(match.group('s'))
            # Any other request cinder-api answered: its log covers this
            # time (a POST no cinder line names is then truly lost).
            return ('cinder_seen', None) if match else (None, None)
        if 'Retrying in' in message and _RETRY.search(message):
            return 'nova_retry', None
        match = _NOT_CREATED.search(message)
        if match:
            return 'not_created', (
                match.group('volume'), int(match.group('seconds')),
                int(match.group('attempts')), match.group('status'))
        if ('Instance failed block device setup' in message
                or 'CinderConnectionFailed' in message):
            return 'nova_fail', None
        return None, None
