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

"""The demo's progress: phases, ticks and the line written to stderr."""

import io
import threading

import testtools

from bdm_guard_lab.arms import modes
from bdm_guard_lab.arms import progress
from bdm_guard_lab.cmd import demo


class TestProgress(testtools.TestCase):

    def test_phases_and_counts_reach_the_callback(self):
        seen = []
        tracker = progress.Progress('guard', 2, lambda *a: seen.append(a))
        tracker.report()
        tracker.set_phase('booting')
        tracker.tick()
        tracker.tick(failed=True)
        tracker.set_phase('settling')
        self.assertEqual(
            [('starting cinder', 0, 0), ('booting', 0, 0), ('booting', 1, 0),
             ('booting', 2, 1), ('settling', 2, 1)],
            [(a[5], a[1], a[3]) for a in seen])

    def test_ticking_reports_while_nothing_finishes(self):
        reported = threading.Event()
        tracker = progress.Progress('stock', 5, lambda *a: reported.set(),
                                    tick_seconds=0.01)
        with tracker.ticking():
            # Event.wait returns as soon as the ticker thread reports.
            self.assertTrue(reported.wait(30))

    def test_ticking_without_callback_starts_no_thread(self):
        tracker = progress.Progress('stock', 5, None, tick_seconds=0.01)
        before = threading.active_count()
        with tracker.ticking():
            self.assertEqual(before, threading.active_count())


class TestProgressLine(testtools.TestCase):

    def test_log_gets_phase_changes_and_tenths_only(self):
        out = io.StringIO()
        line = demo.ProgressLine(out)
        line('guard', 0, 50, 0, 0.0, 'starting cinder')
        line('guard', 0, 50, 0, 1.0, 'booting')
        for done in range(1, 6):
            line('guard', done, 50, 0, 2.0, 'booting')
        line('guard', 5, 50, 0, 3.0, 'booting')
        lines = out.getvalue().splitlines()
        self.assertEqual(3, len(lines), lines)
        self.assertEqual('[guard] booting: 5/50 boots finished, 0 failed, '
                         '2 s', lines[-1])

    def test_log_is_never_silent_for_long(self):
        out = io.StringIO()
        line = demo.ProgressLine(out)
        line('stock', 3, 50, 0, 10.0, 'booting')
        line('stock', 3, 50, 0, 20.0, 'booting')
        line('stock', 3, 50, 0, 41.0, 'booting')
        self.assertEqual(2, len(out.getvalue().splitlines()))

    def test_terminal_redraws_one_line(self):
        out = io.StringIO()
        out.isatty = lambda: True
        line = demo.ProgressLine(out)
        line('guard', 1, 2, 0, 1.0, 'booting')
        line('guard', 2, 2, 0, 2.0, 'done')
        text = out.getvalue()
        self.assertEqual(1, text.count('\n'))
        self.assertTrue(text.endswith('done: 2/2 boots finished, 0 failed, '
                                      '2 s\n'))


class TestNovaLabel(testtools.TestCase):

    def test_patched_counts_both_series(self):
        figures = {'nova': {'patches': ['a'] * 5,
                            'keystoneauth_patches': ['b', 'c']}}
        self.assertEqual('nova 34 + 5 patches + keystoneauth 2',
                         modes._nova_label(figures))

    def test_patched_counts_all_four_series(self):
        figures = {'nova': {'patches': ['a'] * 6,
                            'keystoneauth_patches': ['b', 'c'],
                            'cinderclient_patches': ['d', 'e'],
                            'cinder_patches': ['f'] * 3}}
        self.assertEqual('nova 34 + 6 patches + keystoneauth 2 + '
                         'cinderclient 2, cinder 29 + 3',
                         modes._nova_label(figures))

    def test_nova_series_only(self):
        self.assertEqual('nova 34 + 5 patches',
                         modes._nova_label({'nova': {'patches': ['a'] * 5}}))

    def test_series_does_not_apply(self):
        self.assertEqual('series does not apply',
                         modes._nova_label({'nova': None, 'arm_error': 'x'}))


class TestKeyedCreatesRow(testtools.TestCase):

    def _row(self):
        rows = dict(modes.NOVA.rows)
        return rows["creates with cinder's key (replayed)"]

    def test_counts(self):
        self.assertEqual('50 (3)', self._row()(
            {'keyed_creates': 50, 'replayed_creates': 3}))

    def test_figures_without_the_count(self):
        self.assertEqual('-', self._row()({}))

    def test_only_in_the_nova_table(self):
        self.assertNotIn("creates with cinder's key (replayed)",
                         dict(modes.LIBRARY.rows))
