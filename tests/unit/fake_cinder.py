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

"""A stateful fake cinder at the HTTP boundary, on a virtual clock.

requests-mock answers the real cinderclient/keystoneauth stack, so the
transport classification under test is the real one. Faults are raised as
the exceptions requests raises on the wire.
"""

import http.client
import json
import re
import urllib.parse
import uuid

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
import requests
import requests_mock
import urllib3

from bdm_guard import cinder

PROJECT = '9d2e4b7a1c3f4e5d8a6b0c2e4f6a8b0d'
OTHER_PROJECT = '1111111122223333444455556666aaaa'
ENDPOINT = 'http://cinder.test:8776/v3/%s' % PROJECT
#: A fault ``path`` that matches ``GET /volumes/{id}`` but not the list.
VOLUME_GET = r'^/volumes/(?!detail$)[^/]+$'
HAPROXY_503 = ('<html><body><h1>503 Service Unavailable</h1>\n'
               'No server is available to handle this request.\n'
               '</body></html>\n')
HAPROXY_504 = ('<html><body><h1>504 Gateway Time-out</h1>\n'
               'The server didn\'t respond in time.\n</body></html>\n')


def lost_request_error():
    reason = urllib3.exceptions.NewConnectionError(
        None, 'Failed to establish a new connection: [Errno 111] '
        'Connection refused')
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, '/volumes', reason))


def lost_response_error():
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError(
            'Connection aborted.', http.client.RemoteDisconnected(
                'Remote end closed connection without response')))


class FakeCinder:
    """Volumes with scripted status timelines, faults and visibility lag.

    :param clock: a :class:`VirtualClock`.
    :param posts: list of POST behaviours (the last one repeats): ``ok``,
        ``lost_request``, ``lost_response``, ``gateway_504``,
        ``no_server_503``, ``over_quota``, ``rejected`` (400),
        ``throttled`` (429 with ``Retry-After: <retry_after>``).
    :param visible_after: seconds before a new volume shows in GET/list.
    :param ready_after: seconds a created volume stays ``creating``.

    ``faults`` are ``{'from': s, 'to': s, 'kind': ..., 'path': regex}`` for
    GETs under ``/volumes/`` (lists included); ``path``, optional, limits
    one to matching paths. ``list_extra`` holds raw entries added to every
    list answer (what a broken backend or proxy may return).
    """

    def __init__(self, clock, posts=('ok',), visible_after=0.0,
                 ready_after=5.0, quota='gigabytes'):
        self.clock = clock
        self.posts = list(posts)
        self.visible_after = visible_after
        self.ready_after = ready_after
        self.quota = quota
        self.volumes = {}
        self.deleted = []
        self.requests = []
        self.post_count = 0
        self.timeline = None
        self.faults = []
        self.messages = []
        self.list_extra = []
        self.retry_after = '1'
        #: What cinder copies into a volume made from a snapshot: the
        #: glance metadata of the snapshot's source volume (cinder's
        #: volume_glance_metadata_copy_to_volume), e.g. its image_id.
        self.snapshot_image_metadata = None

    # -- state ------------------------------------------------------------
    def add_volume(self, size=1, metadata=None, status=None, age=0.0,
                   project=PROJECT, timeline=None, vid=None):
        vid = vid or str(uuid.uuid4())
        created = self.clock() - age
        if timeline is None:
            if status in (None, 'creating'):
                timeline = [(0.0, 'creating'),
                            (age + self.ready_after, 'available')]
            else:
                timeline = [(0.0, status)]
        self.seq = getattr(self, 'seq', 0) + 1
        self.volumes[vid] = {
            'id': vid, 'size': size, 'metadata': dict(metadata or {}),
            'project': project, 'created': created, 'timeline': timeline,
            'attachments': [], 'seq': self.seq}
        return vid

    def status(self, vol):
        t = self.clock() - vol['created']
        current = vol['timeline'][0][1]
        for start, status in vol['timeline']:
            if t >= start:
                current = status
        return current

    def visible(self, vol):
        return self.clock() - vol['created'] >= self.visible_after

    def view(self, vol):
        # cinder's created_at has microseconds: two volumes made at one
        # virtual instant still differ, in the order they were made.
        stamp = '2026-01-01T00:00:%09.6f' % (
            vol['created'] + 10000 + vol.get('seq', 0) * 1e-6)
        return {'id': vol['id'], 'size': vol['size'],
                'status': self.status(vol), 'metadata': vol['metadata'],
                'created_at': stamp, 'attachments': vol['attachments'],
                'snapshot_id': vol.get('snapshot_id'),
                'source_volid': vol.get('source_volid'),
                'volume_image_metadata': dict(vol.get('image_meta') or {})}

    def live(self, project=PROJECT):
        return [v for v in self.volumes.values() if v['project'] == project]

    # -- HTTP ---------------------------------------------------------------
    def fault(self, method, path=''):
        t = self.clock()
        for fault in self.faults:
            if (fault['from'] <= t < fault['to'] and method == 'GET'
                    and re.search(fault.get('path', ''), path)):
                return fault
        return None

    def respond(self, request, code, body=None, headers=None, html=None):
        headers = dict(headers or {})
        headers.setdefault('x-openstack-request-id',
                           'req-%s' % uuid.uuid4())
        if html is not None:
            headers['Content-Type'] = 'text/html'
            return requests_mock.create_response(
                request, status_code=code, text=html, headers=headers)
        if body is None:
            return requests_mock.create_response(
                request, status_code=code, headers=headers)
        headers.setdefault('Content-Type', 'application/json')
        return requests_mock.create_response(
            request, status_code=code, json=body, headers=headers)

    def __call__(self, request):
        url = urllib.parse.urlsplit(request.url)
        path = url.path[len(urllib.parse.urlsplit(ENDPOINT).path):]
        query = urllib.parse.parse_qs(url.query)
        self.requests.append((self.clock(), request.method, path))
        fault = self.fault(request.method, path)
        if fault is not None and path.startswith('/volumes/'):
            kind = fault['kind']
            if kind == 'http_404':
                return self.respond(request, 404, {'itemNotFound': {
                    'code': 404, 'message': 'Volume could not be found.'}})
            if kind == 'haproxy_503':
                return self.respond(request, 503, html=HAPROXY_503)
            if kind == 'reset':
                raise lost_response_error()
            if kind == 'http_429':
                return self.respond(
                    request, 429, {'overLimit': {
                        'code': 429, 'message': 'Too many requests'}},
                    headers={'Retry-After': str(fault['retry_after'])})
            if kind == 'garbage_200':
                return self.respond(request, 200, html='<html>ok</html>')
            if kind == 'http_401':
                return self.respond(request, 401, {'error': {
                    'message': 'The request you have made requires '
                               'authentication.'}})
        if request.method == 'POST' and path == '/volumes':
            return self.post(request)
        match = re.match(r'^/volumes/([^/]+)$', path)
        if request.method == 'GET' and path == '/volumes/detail':
            return self.list(request, query)
        if match and request.method == 'GET':
            return self.get(request, match.group(1))
        if match and request.method == 'DELETE':
            return self.delete(request, match.group(1))
        if request.method == 'GET' and path == '/messages':
            return self.respond(request, 200, {'messages': [
                m for m in self.messages
                if m.get('resource_uuid') in query.get('resource_uuid', [])
                or 'resource_uuid' not in m]})
        return self.respond(request, 404, {'itemNotFound': {
            'code': 404, 'message': 'no route'}})

    def get(self, request, vid):
        vol = self.volumes.get(vid)
        if vol is None or not self.visible(vol) or vol['project'] != PROJECT:
            return self.respond(request, 404, {'itemNotFound': {
                'code': 404, 'message': 'Volume %s could not be found.'
                % vid}})
        return self.respond(request, 200, {'volume': self.view(vol)})

    def list(self, request, query):
        wanted = {}
        for raw in query.get('metadata', []):
            # cinderclient sends str(dict); cinder parses it the same way.
            wanted.update(json.loads(raw.replace("'", '"')))
        found = [self.view(v) for v in self.live() if self.visible(v)
                 and all(v['metadata'].get(k) == w
                         for k, w in wanted.items())]
        return self.respond(request, 200,
                            {'volumes': found + list(self.list_extra)})

    def delete(self, request, vid):
        vol = self.volumes.get(vid)
        if vol is None or vol['project'] != PROJECT:
            return self.respond(request, 404, {'itemNotFound': {
                'code': 404, 'message': 'not found'}})
        if self.status(vol) not in ('available', 'error'):
            return self.respond(request, 400, {'badRequest': {
                'code': 400, 'message': 'Invalid volume: Volume status '
                'must be available or error ... but current status is: '
                '%s.' % self.status(vol)}})
        self.deleted.append(vid)
        del self.volumes[vid]
        return self.respond(request, 202)

    def post(self, request):
        behaviour = self.posts[min(self.post_count, len(self.posts) - 1)]
        self.post_count += 1
        if behaviour == 'lost_request':
            raise lost_request_error()
        if behaviour == 'no_server_503':
            return self.respond(request, 503, html=HAPROXY_503)
        if behaviour == 'over_quota':
            return self.respond(request, 413, {'overLimit': {
                'code': 413, 'retryAfter': '0', 'message':
                'VolumeSizeExceedsAvailableQuota: Requested volume or '
                'snapshot exceeds allowed %s quota. Requested 10G, quota '
                'is 1000G and 995G has been consumed.' % self.quota}},
                headers={'Retry-After': '0'})
        if behaviour == 'rejected':
            return self.respond(request, 400, {'badRequest': {
                'code': 400, 'message': 'Invalid input received.'}})
        if behaviour == 'throttled':
            return self.respond(request, 429, {'overLimit': {
                'code': 429, 'message': 'Too many requests'}},
                headers={'Retry-After': self.retry_after})
        body = request.json()['volume']
        vid = self.add_volume(size=body['size'],
                              metadata=body.get('metadata'))
        self.volumes[vid]['snapshot_id'] = body.get('snapshot_id')
        self.volumes[vid]['source_volid'] = body.get('source_volid')
        if body.get('imageRef'):
            self.volumes[vid]['image_meta'] = {'image_id': body['imageRef']}
        elif body.get('snapshot_id') and self.snapshot_image_metadata:
            self.volumes[vid]['image_meta'] = dict(
                self.snapshot_image_metadata)
        if behaviour == 'lost_response':
            raise lost_response_error()
        if behaviour == 'gateway_504':
            return self.respond(request, 504, html=HAPROXY_504)
        return self.respond(request, 202,
                            {'volume': self.view(self.volumes[vid])})


def make_client(test, fake):
    """Install ``fake`` behind requests-mock and return a VolumeClient."""
    mocker = requests_mock.Mocker()
    mocker.start()
    test.addCleanup(mocker.stop)
    mocker.add_matcher(fake)
    sess = ks_session.Session(auth=token_endpoint.Token(
        ENDPOINT, 'user:%s' % PROJECT))
    return cinder.VolumeClient(sess, endpoint_override=ENDPOINT)
