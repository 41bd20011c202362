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

"""``bdm-guard logscan``: every folder of tests/unit/data/logs, and bad input.

Each folder holds logs (any depth, plain or gzip) and an expected.yaml:
``posts`` (one entry per nova POST with its global request id, verdict and,
when given, instance) and optionally ``summary`` (a subset of the summary).
"""

import gzip
import json
import os
import shutil
import signal

import fixtures
from oslotest import base
import yaml

from bdm_guard.logscan import api as logscan
from tests.unit import cases

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                    'data', 'logs')
SEED = os.path.join(DATA, 'seed-7-boots')
SEED_VERDICTS = ['ok', 'ok', 'lost_before_cinder', 'ok', 'response_lost',
                 'ok', 'duplicate_post']
run_cli = cases.run_cli


def log_files(folder):
    found = []
    for root, _, names in os.walk(folder):
        found += [os.path.join(root, n) for n in names
                  if n != 'expected.yaml']
    return sorted(found)


class TestLogCases(base.BaseTestCase):
    """One test per folder of tests/unit/data/logs."""

    def assertSubset(self, expected, actual, path='summary'):
        if isinstance(expected, dict):
            for key, value in expected.items():
                self.assertIn(key, actual, path)
                self.assertSubset(value, actual[key], '%s.%s' % (path, key))
        else:
            self.assertEqual(expected, actual, path)

    def _check(self, name):
        folder = os.path.join(DATA, name)
        with open(os.path.join(folder, 'expected.yaml')) as f:
            expected = yaml.safe_load(f)
        rc, out, err = run_cli('logscan', *log_files(folder), '-f', 'json')
        self.assertIn(rc, (0, 1), err)
        result = json.loads(out)
        self.assertEqual({'posts', 'summary'}, set(result))
        posts = {p['global_request_id']: p for p in result['posts']}
        self.assertEqual(len(expected['posts']), len(result['posts']))
        for want in expected['posts']:
            got = posts[want['global_request_id']]
            self.assertEqual(want['verdict'], got['verdict'], got)
            if 'instance' in want:
                self.assertEqual(want['instance'], got['instance'], got)
            for key in ('global_request_id', 'verdict', 'instance',
                        'nova_file', 'cinder_files'):
                self.assertIn(key, got)
            self.assertEqual(bool(got['cinder_files']),
                             want['verdict'] in ('ok', 'response_lost',
                                                 'duplicate_post'))
        self.assertSubset(expected.get('summary', {}), result['summary'])
        verdicts = result['summary']['verdicts']
        self.assertEqual(len(result['posts']), sum(verdicts.values()))
        self.assertEqual(0 if set(verdicts) == {'ok'} or
                         verdicts['ok'] == len(result['posts']) else 1, rc)
        # The table and YAML outputs carry the same verdicts.
        rc, out, err = run_cli('logscan', *log_files(folder), '-f', 'yaml')
        self.assertEqual(result, yaml.safe_load(out))
        rc, out, err = run_cli('logscan', *log_files(folder))
        for post in result['posts']:
            self.assertIn(post['verdict'], out)


cases.add_case_tests(TestLogCases, DATA)


class TestLogScanInput(base.BaseTestCase):
    """Rotated, compressed, broken, binary, empty and missing files."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def verdicts(self, *paths, **kwargs):
        result = logscan.scan(list(paths), **kwargs)
        return [p['verdict'] for p in result['posts']], result['summary']

    def seed_files(self):
        return log_files(SEED)

    def test_seed_gzip_and_rotation(self):
        # Split nova's log in two rotations, the older gzip-compressed.
        with open(os.path.join(SEED, 'nova-compute.log'), 'rb') as f:
            lines = f.readlines()
        older = os.path.join(self.tmp, 'nova-compute.log.1.gz')
        newer = os.path.join(self.tmp, 'nova-compute.log')
        with gzip.open(older, 'wb') as f:
            f.writelines(lines[:8])
        with open(newer, 'wb') as f:
            f.writelines(lines[8:])
        cinder = [p for p in self.seed_files() if 'controller' in p]
        verdicts, summary = self.verdicts(newer, older, *cinder)
        self.assertEqual(SEED_VERDICTS, verdicts)
        self.assertEqual(6, summary['posts_reached_cinder'])

    def test_file_order_does_not_matter(self):
        verdicts, _ = self.verdicts(*reversed(self.seed_files()))
        self.assertEqual(SEED_VERDICTS, verdicts)

    def test_truncated_gzip(self):
        source = os.path.join(SEED, 'nova-compute.log')
        path = os.path.join(self.tmp, 'nova-compute.log.2.gz')
        with open(source, 'rb') as f, gzip.open(path, 'wb') as g:
            g.write(f.read())
        with open(path, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) * 2 // 3])
        rc, out, err = run_cli('logscan', path, '-f', 'json')
        self.assertEqual(2, rc)
        self.assertIn('truncated gzip stream', err)
        self.assertNotIn('Traceback', err)
        result = json.loads(out)
        self.assertIn('truncated', result['summary']['files'][0]['error'])
        self.assertGreater(result['summary']['lines'], 0)

    def test_empty_file_is_no_all_clear(self):
        path = os.path.join(self.tmp, 'empty.log')
        open(path, 'w').close()
        rc, out, err = run_cli('logscan', path, '-f', 'json')
        self.assertEqual(2, rc, err)
        self.assertIn(logscan.NO_NOVA_POST, err)
        self.assertIn('warning: ' + logscan.NO_CINDER_LOG, err)
        self.assertEqual([], json.loads(out)['posts'])

    def test_nova_without_debug_is_no_all_clear(self):
        # Without debug = True nova-compute logs no REQ/RESP lines.
        path = os.path.join(self.tmp, 'nova-compute.log')
        with open(os.path.join(SEED, 'nova-compute.log')) as f, \
                open(path, 'w') as g:
            g.writelines(line for line in f if ' DEBUG ' not in line)
        cinder = [p for p in self.seed_files() if 'controller' in p]
        for files in ([path] + cinder, cinder):
            rc, out, err = run_cli('logscan', *files, '-f', 'json')
            self.assertEqual(2, rc, err)
            self.assertIn('error: no nova POST /volumes found in the '
                          'nova-compute logs', err)
            self.assertIn('debug = True', err)
            self.assertNotIn(logscan.NO_CINDER_LOG, err)
            summary = json.loads(out)['summary']
            self.assertEqual(0, summary['posts'])
            self.assertEqual(7, summary['cinder_posts'])
            self.assertIn(logscan.NO_NOVA_POST, summary['warnings'])

    def test_no_cinder_log_warns(self):
        rc, out, err = run_cli('logscan', SEED + '/nova-compute.log',
                               '-f', 'json')
        self.assertEqual(1, rc, err)
        self.assertIn('warning: ' + logscan.NO_CINDER_LOG, err)
        self.assertEqual(['nova-compute'], [
            f['service'] for f in json.loads(out)['summary']['files']])

    def test_same_file_twice_is_read_once(self):
        nova = os.path.join(SEED, 'nova-compute.log')
        link = os.path.join(self.tmp, 'nova-compute.log')
        os.symlink(nova, link)
        files = self.seed_files()
        rc, out, err = run_cli('logscan', *files, nova, link, '-f', 'json')
        self.assertEqual(1, rc, err)
        result = json.loads(out)
        self.assertEqual(SEED_VERDICTS,
                         [p['verdict'] for p in result['posts']])
        self.assertEqual(len(files), len(result['summary']['files']))
        self.assertEqual(2, len(result['summary']['warnings']))
        self.assertEqual(2, err.count('is the same file as'))
        self.assertIn('warning: %s is the same file as %s' % (link, nova),
                      err)

    def test_table_has_cinder_request_ids(self):
        rc, out, err = run_cli('logscan', *self.seed_files())
        self.assertEqual(1, rc, err)
        self.assertIn('cinder_request_ids', out)
        result = logscan.scan(self.seed_files())
        duplicate = result['posts'][-1]
        self.assertEqual(2, len(duplicate['cinder_request_ids']))
        self.assertIn(', '.join(duplicate['cinder_request_ids']), out)
        rc, out, err = run_cli('logscan', *self.seed_files(), '-f', 'csv')
        self.assertIn('"cinder_request_ids"', out.splitlines()[0])

    def test_missing_file(self):
        rc, out, err = run_cli('logscan', SEED + '/nova-compute.log',
                               os.path.join(self.tmp, 'nope.log'))
        self.assertEqual(2, rc)
        self.assertIn('No such file', err)
        self.assertNotIn('Traceback', err)
        rc, out, err = run_cli('logscan', self.tmp)
        self.assertEqual(2, rc)

    def test_binary_file(self):
        path = os.path.join(self.tmp, 'core.log')
        with open(path, 'wb') as f:
            f.write(bytes(range(256)) * 64)
        rc, out, err = run_cli('logscan', path, '-f', 'json')
        self.assertEqual(2, rc)
        self.assertIn('not a log file', err)
        self.assertNotIn('Traceback', err)
        summary = json.loads(out)['summary']
        self.assertGreater(summary['garbage_lines'], 0)

    def test_not_a_log(self):
        path = os.path.join(self.tmp, 'notes.txt')
        with open(path, 'w') as f:
            f.write('hello\nworld\n')
        rc, out, err = run_cli('logscan', path)
        self.assertEqual(2, rc)
        self.assertIn('not an oslo.log file', err)

    def test_garbage_and_long_lines_are_skipped(self):
        path = os.path.join(self.tmp, 'nova-compute.log')
        with open(os.path.join(SEED, 'nova-compute.log'), 'rb') as f:
            lines = f.readlines()
        junk = [b'\x00\x01\x02\n', b'\xff\xfe\xfd not utf-8\n',
                b'x' * (3 * 64 * 1024) + b'\n', b'\x1b[0;32mcolour\x1b[0m\n']
        with open(path, 'wb') as f:
            for i, line in enumerate(lines):
                f.write(line)
                f.write(junk[i % len(junk)])
        cinder = [p for p in self.seed_files() if 'controller' in p]
        verdicts, summary = self.verdicts(path, *cinder)
        self.assertEqual(SEED_VERDICTS, verdicts)
        # NUL, invalid UTF-8 and over-long lines; colour codes are text.
        self.assertEqual(15, summary['garbage_lines'])
        self.assertIsNone(summary['files'][-1]['error'])

    def test_custom_format(self):
        # Re-render the seed in another oslo.log format and date format.
        fmt = ('%(asctime)s %(levelname)s %(name)s <%(process)d> '
               '[%(global_request_id)s %(request_id)s %(user_identity)s] '
               '%(instance)s%(message)s')
        out = []
        for path in self.seed_files():
            target = os.path.join(self.tmp, os.path.relpath(path, SEED))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(path) as f, open(target, 'w') as g:
                for line in f:
                    date, time_, pid, level, name, rest = line.split(' ', 5)
                    day = '/'.join(reversed(date.split('-')))
                    g.write('%s %s,%s %s %s <%s> %s' % (
                        day, time_[:8], time_[9:], level, name, pid, rest))
            out.append(target)
        rc, text, err = run_cli(
            'logscan', *out, '-f', 'json', '--context-format',
            fmt.replace('%(asctime)s', '%(asctime)s,%(msecs)03d'),
            '--date-format', '%d/%m/%Y %H:%M:%S')
        self.assertEqual(1, rc, err)
        self.assertEqual(SEED_VERDICTS, [p['verdict'] for p in
                                         json.loads(text)['posts']])
        # With oslo.log's default format nothing is recognised.
        rc, text, err = run_cli('logscan', *out, '-f', 'json')
        self.assertEqual(2, rc)
        self.assertEqual([], json.loads(text)['posts'])

    def test_bad_format_options(self):
        for argv in (['--context-format', '%(asctime)s only'],
                     ['--date-format', '%Y %Q'],
                     ['--window', '0'], ['--skew', '-1']):
            rc, out, err = run_cli('logscan', SEED + '/nova-compute.log',
                                   *argv)
            self.assertEqual(2, rc, argv)
            self.assertIn('error', err)
            self.assertNotIn('Traceback', err)

    def test_window_shorter_than_a_post(self):
        # A POST whose failure comes 30 s later is judged before it with a
        # 10 s window: it can only be unknown. 60 s is enough.
        verdicts, _ = self.verdicts(*self.seed_files(), window=60.0)
        self.assertEqual(SEED_VERDICTS, verdicts)
        verdicts, _ = self.verdicts(*self.seed_files(), window=10.0)
        self.assertEqual('unknown', verdicts[2])
        self.assertEqual('unknown', verdicts[4])

    def test_missing_cinder_logs(self):
        verdicts, summary = self.verdicts(os.path.join(SEED,
                                                       'nova-compute.log'))
        # Without any cinder-api log nothing proves a POST never reached
        # cinder: every POST is unknown, none lost_before_cinder
        # (the response-lost boot's volume exists).
        self.assertEqual(['unknown'] * 7, verdicts)
        shutil.copy(os.path.join(SEED, 'controller-a', 'cinder-api.log'),
                    self.tmp)
        verdicts, summary = self.verdicts(
            os.path.join(SEED, 'nova-compute.log'),
            os.path.join(self.tmp, 'cinder-api.log'))
        self.assertEqual('response_lost', verdicts[4])
        self.assertEqual('ok', verdicts[6])


class TestLogScanFiles(base.BaseTestCase):
    """Files that are not regular, unreadable, or one long line of text."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def run_bounded(self, *argv):
        """run_cli with a watchdog: a hang fails the test, not the run."""
        def hung(signum, frame):
            raise AssertionError('logscan hung on %s' % (argv,))
        old = signal.signal(signal.SIGALRM, hung)
        signal.alarm(20)
        try:
            return run_cli('logscan', *argv)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)

    def test_devices_are_refused_at_once(self):
        for path, kind in (('/dev/zero', 'a character device'),
                           (self.tmp, 'a directory')):
            rc, out, err = self.run_bounded(*log_files(SEED), path,
                                            '-f', 'json')
            self.assertEqual(2, rc, err)
            self.assertIn('%s: %s, not a regular file or a pipe'
                          % (path, kind), err)
            self.assertNotIn('Traceback', err)
            # The good files are still judged and printed.
            result = json.loads(out)
            self.assertEqual(SEED_VERDICTS,
                             [p['verdict'] for p in result['posts']])
            files = {f['file']: f for f in result['summary']['files']}
            self.assertIn('not a regular file', files[path]['error'])
            self.assertEqual(0, files[path]['lines'])

    def test_fifo_without_writer_ends_at_once(self):
        fifo = os.path.join(self.tmp, 'nova-compute.log')
        os.mkfifo(fifo)
        cinder = [p for p in log_files(SEED) if 'controller' in p]
        rc, out, err = self.run_bounded(*cinder, fifo, '-f', 'json')
        self.assertNotIn('Traceback', err)
        files = {f['file']: f for f in json.loads(out)['summary']['files']}
        self.assertEqual(0, files[fifo]['lines'])
        self.assertIsNone(files[fifo]['error'])

    def test_unreadable_file_among_good_ones_still_prints_posts(self):
        if os.geteuid() == 0:
            # root reads any file: make it unreadable by type instead.
            path = os.path.join(self.tmp, 'gone.log')
            os.symlink(os.path.join(self.tmp, 'nowhere'), path)
            reason = 'No such file'
        else:
            path = os.path.join(self.tmp, 'secret.log')
            shutil.copy(os.path.join(SEED, 'nova-compute.log'), path)
            os.chmod(path, 0)
            reason = 'Permission denied'
        for fmt in ('json', 'table'):
            rc, out, err = run_cli('logscan', path, *log_files(SEED),
                                   '-f', fmt)
            self.assertEqual(2, rc, err)
            self.assertIn('bdm-guard logscan: %s: %s' % (path, reason), err)
            self.assertNotIn('Traceback', err)
            for verdict in set(SEED_VERDICTS):
                self.assertIn(verdict, out)
        result = logscan.scan([path] + log_files(SEED))
        self.assertEqual(SEED_VERDICTS,
                         [p['verdict'] for p in result['posts']])

    def test_long_single_line_is_not_binary(self):
        path = os.path.join(self.tmp, 'one-line.log')
        with open(path, 'w') as f:
            f.write('2026-04-19 14:34:28.000 1 INFO x [-] ' + 'y' * 200000)
        rc, out, err = run_cli('logscan', path, '-f', 'json')
        self.assertEqual(2, rc)
        self.assertNotIn('mostly binary', err)
        self.assertIn('longer than 64 KiB (text, not binary)', err)
        stats = json.loads(out)['summary']['files'][0]
        self.assertEqual((1, 1, 1), (stats['lines'], stats['garbage_lines'],
                                     stats['long_lines']))
        # A log with long lines among its good ones reads as before.
        mixed = os.path.join(self.tmp, 'nova-compute.log')
        with open(os.path.join(SEED, 'nova-compute.log')) as f, \
                open(mixed, 'w') as g:
            for line in f:
                g.write(line)
                g.write('z' * 100000 + '\n')
        cinder = [p for p in log_files(SEED) if 'controller' in p]
        result = logscan.scan([mixed] + cinder)
        self.assertEqual(SEED_VERDICTS,
                         [p['verdict'] for p in result['posts']])
        self.assertIsNone(result['summary']['files'][-1]['error'])
