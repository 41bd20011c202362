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

"""The parts of the log scanner: formats, reader, events, bounded state."""

import os

import fixtures
import hypothesis
from hypothesis import strategies as st
from oslotest import base

from bdm_guard import exception
from bdm_guard.logscan import api as logscan
from bdm_guard.logscan import events as logevents
from bdm_guard.logscan import format as logformat
from bdm_guard.logscan import read as logread
from bdm_guard.logscan import state as logstate
from bdm_guard_lab.bench import logscan as bench_logscan

CTX = ('2026-04-19 14:34:28.209 4012 DEBUG cinderclient.v3.client '
       '[req-g1 req-l1 u p - - -] ')
REQ = ('REQ: curl -g -i -X POST http://192.0.2.10:8776/v3/P/volumes -H '
       '"X-OpenStack-Request-ID: req-hdr" -d \'{}\'')


class TestLogFormat(base.BaseTestCase):

    def test_oslo_defaults(self):
        defaults = logformat.oslo_defaults()
        self.assertIn('%(global_request_id)s',
                      defaults['logging_context_format_string'])
        self.assertEqual('%Y-%m-%d %H:%M:%S', defaults['log_date_format'])

    def test_context_line(self):
        regex = logformat.compile_format(
            logformat.oslo_defaults()['logging_context_format_string'])
        fields = regex.match(CTX + '[instance: abc] hello ] world').groupdict()
        self.assertEqual(('req-g1', 'req-l1', 'abc', 'hello ] world',
                          '209', 'DEBUG'),
                         (fields['global_request_id'], fields['request_id'],
                          fields['instance'], fields['message'],
                          fields['msecs'], fields['levelname']))

    def test_invalid_formats(self):
        for fmt in ('%(message)s', '%(asctime)s', 'plain',
                    '%(asctime)s %(asctime)s %(message)s'):
            self.assertRaises(exception.InvalidLogFormat,
                              logformat.compile_format, fmt)
        self.assertRaises(exception.InvalidLogFormat,
                          logformat.compile_format,
                          '%(asctime)s %(message)s', '%Y %Q')

    def test_repeated_and_unknown_fields(self):
        regex = logformat.compile_format(
            '%(color)s%(asctime)s %(name)s %(name)s %%%(message)s',
            '%b %d %H:%M:%S')
        fields = regex.match('\x1b[0mApr 19 14:34:28 a b %hi').groupdict()
        self.assertEqual(('Apr 19 14:34:28', 'a', 'hi'),
                         (fields['asctime'], fields['name'],
                          fields['message']))

    def test_times(self):
        parse = logformat.TimeParser()
        self.assertEqual(1.5, parse('1970-01-01 00:00:01', '500'))
        self.assertEqual(1.0, parse('1970-01-01 00:00:01'))
        other = logformat.TimeParser('%d/%m/%Y %H:%M:%S')
        self.assertEqual(61.0, other('01/01/1970 00:01:01'))
        self.assertRaises(ValueError, parse, '2026-13-45 99:99:99')
        no_year = logformat.TimeParser('%b %d %H:%M:%S')
        self.assertGreater(no_year('Jan 01 00:00:00'), 0)


class TestEvents(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.parser = logscan.make_parser()

    def test_normalise_url(self):
        for url in ('http://192.0.2.10:8776/v3/P/volumes',
                    'https://cloud.example.com:13776/volume/v3/P/volumes/',
                    'http://c:8776/v2/P/volumes', '/v3.0/P/volumes',
                    'P/volumes'):
            self.assertEqual('P/volumes', logevents.normalise_url(url), url)

    def test_nova_events(self):
        when, kind, _, gid, rid, _, data = self.parser.parse(CTX + REQ, 's')
        # Correlated by nova's global request id (its context.global_id);
        # the id nova sent in the header is kept beside it.
        self.assertEqual(('nova_post', 'req-g1', 'req-l1',
                          logevents.Target('volumes', 'P', None), 'req-hdr'),
                         (kind, gid, rid, data[0], data[1]))
        event = self.parser.parse(
            CTX + 'RESP: [202] x-openstack-request-id: req-c1 Vary: x', 's')
        self.assertEqual(('nova_resp', (202, 'req-c1')), event[1:2] + (
            event[6],))
        event = self.parser.parse(CTX + 'RESP: [504] Content-Type: text',
                                  's')
        self.assertEqual((504, None), event[6])
        event = self.parser.parse(
            CTX + 'Failure: reset. Retrying in 0.5s. 2 retries left.', 's')
        self.assertEqual('nova_retry', event[1])

    def test_not_posts(self):
        for message in (
                REQ.replace('-X POST', '-X GET'),
                REQ.replace('/volumes', '/volumes/V/action'),
                'POST call to volumev3 for http://h/v3/P/volumes used '
                'request id req-x', 'nothing to see here'):
            self.assertIsNone(self.parser.parse(CTX + message, 's'))

    def test_cinder_and_failures(self):
        event = self.parser.parse(CTX + 'POST http://h:8776/v3/P/volumes',
                                  's')
        self.assertEqual(('cinder_post',
                          logevents.Target('volumes', 'P', None)),
                         (event[1], event[6]))
        event = self.parser.parse(
            CTX + 'http://h:8776/v3/P/volumes returned with HTTP 413', 's')
        self.assertEqual(('cinder_status', 413), (event[1], event[6]))
        line = ('2026-04-19 14:34:28.209 4012 ERROR nova.compute.manager '
                '[instance: i-1] nova.exception.VolumeNotCreated: Volume v-1 '
                'did not finish being created even after we waited 187 '
                'seconds or 61 attempts. And its status is error.')
        event = self.parser.parse(line, 's')
        self.assertEqual(('not_created', None, 'i-1',
                          ('v-1', 187, 61, 'error')),
                         (event[1], event[3], event[5], event[6]))

    @hypothesis.given(st.text(max_size=60), st.sampled_from(
        logevents.MARKERS + ('', 'POST', 'RESP:')), st.text(max_size=60))
    @hypothesis.settings(max_examples=300, deadline=None)
    def test_relevant_is_markers(self, head, marker, tail):
        line = head + marker + tail
        self.assertEqual(any(m in line for m in logevents.MARKERS),
                         logevents._relevant(line))

    def test_unparsed_and_invalid_time(self):
        self.assertIsNone(self.parser.parse('POST but not a log line', 's'))
        self.assertIsNone(self.parser.parse(
            CTX.replace('04-19', '13-45') + REQ, 's'))
        self.assertEqual(2, self.parser.unparsed)

    @hypothesis.given(st.text(max_size=200), st.sampled_from(
        ['', CTX, CTX + 'REQ: curl -X POST ', CTX + 'RESP: [',
         CTX + 'POST ', CTX + '[instance: x] ', '2026-01-01 00:00:00.0 1 E n ',
         CTX + 'VolumeNotCreated: Volume ']))
    @hypothesis.settings(max_examples=400, deadline=None)
    def test_fuzz_parse(self, text, prefix):
        event = self.parser.parse(prefix + text, 's')
        if event is not None:
            self.assertIn(event[1], ('nova_post', 'nova_resp', 'nova_retry',
                                     'nova_fail', 'not_created',
                                     'cinder_post', 'cinder_status',
                                     'instance'))


class TestLogRead(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def test_rotation(self):
        paths = ['/l/nova-compute.log', '/l/nova-compute.log.1',
                 '/l/nova-compute.log.10.gz', '/l/nova-compute.log.2.gz',
                 '/l/cinder-api.log-20260419.gz', '/l/cinder-api.log',
                 '/l/cinder-api.log-20260418.gz', '/l/other.txt']
        self.assertEqual(
            ['/l/cinder-api.log-20260418.gz', '/l/cinder-api.log-20260419.gz',
             '/l/cinder-api.log', '/l/nova-compute.log.10.gz',
             '/l/nova-compute.log.2.gz', '/l/nova-compute.log.1',
             '/l/nova-compute.log', '/l/other.txt'],
            logread.rotation_order(paths))
        self.assertEqual('/l/nova-compute.log',
                         logread.source_of('/l/nova-compute.log.2.gz'))
        self.assertEqual('/l/other.txt', logread.source_of('/l/other.txt'))

    @hypothesis.given(st.binary(max_size=2000))
    @hypothesis.settings(max_examples=200, deadline=None)
    def test_fuzz_read(self, data):
        path = os.path.join(self.tmp, 'fuzz.log')
        with open(path, 'wb') as f:
            f.write(data)
        stats = logread.FileStats(path)
        lines = list(logread.iter_lines(path, stats))
        self.assertEqual(stats.lines, len(lines) + stats.garbage_lines)
        for line in lines:
            self.assertIsInstance(line, str)

    @hypothesis.given(st.lists(st.sampled_from([
        b'2026-04-19 14:34:28.209 1 DEBUG x [req-g req-l u p - - -] ' +
        REQ.encode(),
        b'2026-04-19 14:34:28.300 1 INFO c [req-hdr req-c u p - - -] '
        b'POST http://h/v3/P/volumes',
        b'2026-04-19 14:34:29.000 1 DEBUG x [req-g req-l u p - - -] '
        b'RESP: [202] x-openstack-request-id: req-c',
        b'2026-04-19 14:34:59.000 1 ERROR n [req-g req-l u p - - -] '
        b'[instance: i] Instance failed block device setup',
        b'\x00\xff garbage', b'']) | st.binary(max_size=80), max_size=40))
    @hypothesis.settings(max_examples=150, deadline=None)
    def test_fuzz_scan(self, lines):
        path = os.path.join(self.tmp, 'mixed.log')
        with open(path, 'wb') as f:
            f.write(b'\n'.join(lines))
        result = logscan.scan([path], window=60.0)
        for post in result['posts']:
            self.assertIn(post['verdict'], logscan.VERDICTS)


class TestBoundedState(base.BaseTestCase):
    """Memory holds the requests of the last window, not of the file."""

    def test_groups_are_dropped(self):
        state = logstate.State(window=60.0, skew=5.0)
        judged, largest = 0, 0
        for i in range(20000):
            t = i * 0.5
            gid, rid = 'req-g%d' % i, 'req-l%d' % i
            events = [
                (t, 'nova_post', 'nova', gid, rid, 'inst-%d' % i,
                 ('P/volumes', gid), 'nova.log'),
                (t + 0.1, 'cinder_post', 'cinder', gid, 'req-c%d' % i, None,
                 'P/volumes', 'cinder.log'),
                (t + 0.2, 'nova_resp', 'nova', gid, rid, None,
                 (202, 'req-c%d' % i), 'nova.log'),
            ]
            for event in events:
                judged += len(list(state.feed(event)))
            largest = max(largest, len(state.groups), len(state.in_flight),
                          len(state.cinder_by_rid), len(state.instances))
        judged += len(list(state.flush()))
        self.assertEqual(20000, judged)
        self.assertEqual({'ok': 20000}, dict(state.verdicts))
        # 60 s window + a sweep every 6 s, at 2 requests per second.
        self.assertLess(largest, 2 * (60 + 6) + 10)
        self.assertEqual({}, state.groups)
        self.assertEqual({}, state.cinder_by_rid)


class TestBenchGenerator(base.BaseTestCase):
    """The benchmark's generated logs give back the verdicts written."""

    def test_small_set(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        paths, expected = bench_logscan.generate(tmp, 1)
        result = logscan.scan(paths)
        self.assertEqual(expected, result['summary']['verdicts'])
        self.assertGreater(expected['duplicate_post'], 0)
        self.assertEqual(0, result['summary']['cinder_posts_unmatched'])
