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

"""The lab's nova on every release: the release table, the command reader,
the child in another interpreter (the releases themselves boot under ``tox
-e nova-compat``)."""

import importlib.metadata
import os
import threading
from unittest import mock

import fixtures
import testtools

from bdm_guard.nova import guard
from bdm_guard_lab import exception
from bdm_guard_lab.nova import releases
from bdm_guard_lab.nova import server
from bdm_guard_lab.nova import service


class TestReleases(testtools.TestCase):

    def test_one_row_per_supported_release(self):
        self.assertEqual(list(guard.SUPPORTED_NOVA), list(releases.RELEASES))

    def test_concurrency_is_the_guards(self):
        for series, row in releases.RELEASES.items():
            self.assertEqual(guard.SUPPORTED_NOVA[series].concurrency,
                             row.concurrency, series)

    def test_only_native_threads_swap_the_cell_lock(self):
        for series, row in releases.RELEASES.items():
            self.assertEqual(row.concurrency == 'threading', row.cell_lock,
                             series)

    def test_installed(self):
        with mock.patch.object(importlib.metadata, 'version',
                               autospec=True, return_value='29.4.0'):
            row = releases.installed()
        self.assertEqual('29', row.series)
        self.assertEqual(releases.PATCH_ON_IMPORT, row.patch)
        self.assertFalse(row.response_validation)

    def test_unknown_release(self):
        with mock.patch.object(importlib.metadata, 'version',
                               autospec=True, return_value='35.0.0'):
            exc = self.assertRaises(releases.UnknownRelease,
                                    releases.installed)
        self.assertIn('nova 35.0.0', str(exc))

    def test_no_nova(self):
        with mock.patch.object(
                importlib.metadata, 'version', autospec=True,
                side_effect=importlib.metadata.PackageNotFoundError('nova')):
            self.assertRaises(releases.UnknownRelease, releases.installed)


class TestCommandLines(testtools.TestCase):

    def _lines(self, *chunks):
        read, write = os.pipe()

        def feed():
            for chunk in chunks:
                os.write(write, chunk)
            os.close(write)

        writer = threading.Thread(target=feed)
        writer.start()
        try:
            return list(server.command_lines(read))
        finally:
            writer.join()
            os.close(read)

    def test_lines_split_across_reads(self):
        self.assertEqual(['{"cmd": "boot"}', '{"cmd": "stop"}'],
                         self._lines(b'{"cmd": "bo', b'ot"}\n{"cmd": ',
                                     b'"stop"}\n'))

    def test_last_line_without_newline(self):
        self.assertEqual(['a', 'b'], self._lines(b'a\nb'))

    def test_end_of_input(self):
        self.assertEqual([], self._lines())


class TestOtherInterpreter(testtools.TestCase):

    def test_exit_reports_the_childs_last_words(self):
        # A "python" that says what it was given, then fails as an
        # interpreter without bdm-guard would.
        tmp = self.useFixture(fixtures.TempDir()).path
        python = os.path.join(tmp, 'python')
        with open(python, 'w') as f:
            f.write('#!/bin/sh\necho "args=$* path=[$PYTHONPATH]" >&2\n'
                    'exit 3\n')
        os.chmod(python, 0o755)
        self.useFixture(fixtures.EnvironmentVariable('PYTHONPATH'))
        nova = service.NovaService('http://127.0.0.1:1/v3/%(project_id)s',
                                   'p', python=python, start_timeout=30)
        exc = self.assertRaises(fixtures.MultipleExceptions, nova.setUp)
        error = exc.args[0][1]
        self.assertIsInstance(error, exception.LabError)
        self.assertIn('nova exited (status 3): args=-m '
                      'bdm_guard_lab.nova.server ', str(error))
        # Its own bdm-guard, not this checkout's.
        self.assertIn('path=[]', str(error))
