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

"""logscan at scale and the exact id.

Operation counts, never wall-clock time: the number of cinder POSTs the
time fallback looks at (``same_target`` calls) must grow linearly with the
log, and a cinder request a nova RESP names must go to that POST whatever
another POST's time guess would take.
"""

import os
from unittest import mock

import fixtures
from oslotest import base

from bdm_guard.logscan import api as logscan
from bdm_guard.logscan import state as logstate

PROJECT = '5c1f0c3e8d2a4b6f9e7d1a3c5b7e9f0a'
URL = 'http://192.0.2.10:8776/v3/%s/volumes' % PROJECT
NOVA = ('%s 4012 DEBUG cinderclient.v3.client [- req-%s u %s - - -] ')
CINDER = ('%s 29548 INFO cinder.api.openstack.wsgi [- req-%s u %s - - -] ')


def stamp(seconds):
    whole = int(seconds)
    return '2026-04-20 09:%02d:%02d.%03d' % (
        whole // 60, whole % 60, int(round((seconds - whole) * 1000)))


def uuid(kind, n):
    return '%08x-0000-4000-8000-%012x' % (kind, n)


def write_logs(folder, posts, spacing=0.01):
    """``posts`` gid-less creates, all in one window; no RESP names an id.

    Every POST is answered 202 without an ``x-openstack-request-id``, so
    each is matched by time alone.
    """
    nova = os.path.join(folder, 'nova-compute.log')
    cinder = os.path.join(folder, 'cinder-api.log')
    with open(nova, 'w') as n, open(cinder, 'w') as c:
        for i in range(posts):
            t = 1.0 + i * spacing
            ctx = NOVA % (stamp(t), uuid(1, i), PROJECT)
            n.write('%sREQ: curl -g -i -X POST %s -d \'{"volume": {"size": '
                    '1}}\'\n' % (ctx, URL))
            c.write('%sPOST %s\n' % (CINDER % (stamp(t + 0.002), uuid(2, i),
                                               PROJECT), URL))
            n.write('%sRESP: [202] Content-Type: application/json\n'
                    % (NOVA % (stamp(t + 0.004), uuid(1, i), PROJECT)))
    return [nova, cinder]


class TestLinear(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def count(self, posts):
        folder = os.path.join(self.tmp, str(posts))
        os.mkdir(folder)
        paths = write_logs(folder, posts)
        real = logstate.same_target
        with mock.patch.object(logstate, 'same_target', autospec=True,
                               side_effect=real) as spy:
            result = logscan.scan(paths)
        self.assertEqual({'ok': posts}, {
            k: v for k, v in result['summary']['verdicts'].items() if v})
        return spy.call_count

    def test_time_fallback_is_linear(self):
        small, large = self.count(150), self.count(600)
        # 4x the POSTs: linear is about 4x the look-ups, quadratic 16x.
        self.assertGreater(small, 0)
        self.assertLess(large, 6 * small, (small, large))


class TestExactIdBeatsTimeGuess(base.BaseTestCase):
    """The case: POST A (lost) and POST B, whose RESP names cinder's id.

    Neither reaches cinder with a global request id. A is sent first and
    fails without an answer; B's cinder request comes 0.3 s after A's
    start, nearer A than anything else, and B's RESP names it. A time
    guess for A must not take it.
    """

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def write(self, cinder_after_resp=False):
        nova = os.path.join(self.tmp, 'nova-compute.log')
        cinder = os.path.join(self.tmp, 'cinder-api.log')
        a, b, x = uuid(1, 1), uuid(1, 2), uuid(2, 9)
        lines = [
            (1.0, NOVA, a, 'REQ: curl -g -i -X POST %s -d \'{}\'' % URL),
            (1.2, NOVA, b, 'REQ: curl -g -i -X POST %s -d \'{}\'' % URL),
            (1.5, NOVA, b, 'RESP: [202] x-openstack-request-id: req-%s' % x),
            (31.0, NOVA, a, 'Instance failed block device setup: '
             'CinderConnectionFailed'),
        ]
        with open(nova, 'w') as f:
            for t, ctx, rid, message in lines:
                f.write('%s%s\n' % (ctx % (stamp(t), rid, PROJECT), message))
        # With skew, cinder's clock may log the POST after nova's RESP.
        when = 1.6 if cinder_after_resp else 1.3
        with open(cinder, 'w') as f:
            f.write('%sPOST %s\n' % (CINDER % (stamp(when), x, PROJECT), URL))
            f.write('%s%s returned with HTTP 202\n'
                    % (CINDER % (stamp(when + 0.1), x, PROJECT), URL))
            f.write('%sGET %s/detail returned with HTTP 200\n'
                    % (CINDER % (stamp(40.0), uuid(2, 10), PROJECT), URL))
        return [nova, cinder], 'req-' + a, 'req-' + b, 'req-' + x

    def test_exact_id_wins(self):
        for later in (False, True):
            paths, a, b, x = self.write(cinder_after_resp=later)
            posts = {p['global_request_id']: p
                     for p in logscan.scan(paths)['posts']}
            self.assertEqual('ok', posts[b]['verdict'], later)
            self.assertEqual([x], posts[b]['cinder_request_ids'])
            self.assertEqual('response_request_id', posts[b]['matched_by'])
            self.assertEqual('lost_before_cinder', posts[a]['verdict'])
            self.assertEqual([], posts[a]['cinder_request_ids'])
