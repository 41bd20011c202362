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

"""logscan on journald output, pipes and standard input."""

import gzip
import io
import json
import os
import threading
from unittest import mock

import fixtures
from oslotest import base

from bdm_guard.logscan import api as logscan
from bdm_guard.logscan import read as logread
from tests.unit import cases
from tests.unit.logscan import test_api

SEED = test_api.SEED
VERDICTS = test_api.SEED_VERDICTS


def seed_lines(name):
    with open(os.path.join(SEED, name)) as f:
        return f.read().splitlines()


class TestStreams(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.cinder = [p for p in test_api.log_files(SEED)
                       if 'controller' in p]

    def write(self, name, lines):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        return path

    def test_journal_short_iso_short_and_cat(self):
        nova = seed_lines('nova-compute.log')
        prefixes = {
            'short-iso': '2026-04-19T14:34:28+0000 compute01 '
                         'nova-compute[4012]: ',
            'short-precise': 'Apr 19 14:34:28.123456 compute01 '
                             'nova-compute[4012]: ',
            'short': 'Apr 19 14:34:28 compute01 nova-compute[4012]: ',
            'cat': ''}
        for mode, prefix in prefixes.items():
            lines = ['-- Boot 0123456789abcdef0123456789abcdef --'] * (
                mode != 'cat') + [prefix + line for line in nova]
            path = self.write('journal-%s.log' % mode, lines)
            result = logscan.scan([path] + self.cinder)
            self.assertEqual(VERDICTS,
                             [p['verdict'] for p in result['posts']], mode)
            files = {f['file']: f for f in result['summary']['files']}
            self.assertEqual(mode != 'cat', files[path]['journal'])

    def test_prefix(self):
        self.assertEqual(0, logread.journal_prefix(
            '2026-04-19 14:34:28.000 4012 DEBUG x [-] y'))
        line = '2026-04-19T14:34:28+00:00 c1 cinder-api[9]: 2026-04-19 x'
        self.assertEqual('2026-04-19 x', line[logread.journal_prefix(line):])

    def test_stdin(self):
        data = ('\n'.join(seed_lines('nova-compute.log')) + '\n').encode()
        for payload in (data, gzip.compress(data)):
            stdin = mock.Mock(buffer=io.BufferedReader(io.BytesIO(payload)))
            with mock.patch('sys.stdin', stdin):
                rc, out, err = cases.run_cli('logscan', '-', *self.cinder,
                                             '-f', 'json')
            self.assertEqual(1, rc, err)
            self.assertEqual(VERDICTS, [p['verdict']
                                        for p in json.loads(out)['posts']])

    def test_pipe_with_a_writer(self):
        fifo = os.path.join(self.tmp, 'nova-compute.log')
        os.mkfifo(fifo)
        data = '\n'.join(seed_lines('nova-compute.log')) + '\n'

        def writer():
            with open(fifo, 'w') as f:
                f.write(data)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        result = logscan.scan([fifo] + self.cinder)
        thread.join(10)
        self.assertEqual(VERDICTS, [p['verdict'] for p in result['posts']])
