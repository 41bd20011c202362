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

"""``bdm-guard simulate`` through a cliff application, in-process."""

import io
import json
import logging
import os

from cliff import app
from cliff import commandmanager
import fixtures
from oslotest import base

from bdm_guard_lab.cmd import simulate

SMALL = ['simulate', '--boots', '60', '--hosts', '3']


class TestSimulateCommand(base.BaseTestCase):

    def run_cli(self, *argv):
        manager = commandmanager.CommandManager('bdm_guard.test')
        manager.add_command('simulate', simulate.Simulate)
        out, err = io.StringIO(), io.StringIO()
        cli = app.App(description='test', version='0',
                      command_manager=manager, stdout=out, stderr=err,
                      deferred_help=True)
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        # argparse writes usage errors to sys.stderr and exits 2.
        usage = self.useFixture(fixtures.MonkeyPatch('sys.stderr',
                                                     io.StringIO())).new_value
        try:
            code = cli.run(list(argv))
        except SystemExit as exc:
            code = exc.code
            err.write(usage.getvalue())
        finally:
            # cliff configures the root logger on every run; undo it.
            for handler in root.handlers[:]:
                if handler not in handlers:
                    root.removeHandler(handler)
            root.setLevel(level)
        return code, out.getvalue(), err.getvalue()

    def test_json_has_both_arms(self):
        code, out, _ = self.run_cli(*SMALL, '-f', 'json', '--scenario',
                                    'seed')
        self.assertEqual(0, code)
        doc = json.loads(out)
        self.assertEqual(['stock', 'guard'], list(doc))
        for arm in doc.values():
            for key in ('boots', 'succeeded', 'failed',
                        'failures_by_reason', 'volumes_created',
                        'duplicates', 'leaked', 'gets_per_boot',
                        'detect_lag_p50_s', 'detect_lag_p95_s', 'wall_s',
                        'peak_rps', 'mean_rps'):
                self.assertIn(key, arm)
            self.assertNotIn('rate', arm)
            self.assertEqual(60, arm['boots'])

    def test_one_size_for_every_volume(self):
        waits = {}
        for size in ('2', '80'):
            code, out, _ = self.run_cli(*SMALL, '--arm', 'stock', '--size',
                                        size, '--scenario', 'none', '-f',
                                        'json')
            self.assertEqual(0, code)
            waits[size] = json.loads(out)['stock']['wait_p50_s']
        # Virtual seconds: 80 GiB copies take 40 times as long.
        self.assertGreater(waits['80'], 10 * waits['2'])
        code, _, err = self.run_cli(*SMALL, '--size', '0')
        self.assertEqual(2, code)

    def test_table_is_side_by_side_and_plot_written(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'rate.png')
        code, out, _ = self.run_cli(*SMALL, '--plot', path)
        self.assertEqual(0, code)
        header = out.splitlines()[1]
        for column in ('metric', 'stock', 'guard', 'stock/guard'):
            self.assertIn(column, header)
        self.assertIn('peak_rps', out)
        self.assertGreater(os.path.getsize(path), 0)

    def test_one_arm_with_series_and_config(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        conf = os.path.join(tmp, 'g.conf')
        with open(conf, 'w') as f:
            f.write('[bdm_guard]\npoll_initial_interval = 2.0\n')
        code, out, _ = self.run_cli(*SMALL, '-f', 'json', '--arm', 'guard',
                                    '--series', '--config-file', conf,
                                    '--scenario', 'none')
        self.assertEqual(0, code)
        doc = json.loads(out)
        self.assertEqual(['guard'], list(doc))
        self.assertEqual(doc['guard']['requests'],
                         sum(doc['guard']['rate']))

    def test_bad_input_is_an_error_not_a_traceback(self):
        for argv, words in ((('--scenario', 'nonesuch'), 'Invalid lab'),
                            (('--error-share', '2'), 'Invalid input'),
                            (('--scenario', '/bin/ls'),
                             'Invalid lab scenario /bin/ls: not a UTF-8'),
                            (('--config-file', '/bin/ls'),
                             'Cannot read /bin/ls: not a UTF-8'),
                            (('--config-file', '/nonexistent.conf'),
                             'Cannot read /nonexistent.conf'),
                            (('--plot', '/nonexistent/rate.png'),
                             'no such directory /nonexistent'),
                            (('--plot', '/tmp'), 'it is a directory')):
            code, out, err = self.run_cli(*SMALL, *argv)
            self.assertEqual(1, code, argv)
            self.assertIn(words, err, argv)
            self.assertNotIn('Traceback', err, argv)
            self.assertEqual('', out, argv)

    def test_out_of_range_numbers_are_usage_errors(self):
        for argv, words in (
                (('--boots', '0'), '--boots: 0 is outside [1, %d]'
                 % simulate.MAX_BOOTS),
                (('--boots', str(simulate.MAX_BOOTS + 1)), 'outside'),
                (('--boots', 'many'), "'many' is not a whole number"),
                (('--hosts', '0'), '--hosts'),
                (('--max-concurrent-builds', '-1'), 'outside'),
                (('--allocate-retries', '-1'),
                 '--allocate-retries: -1 is outside [0, ')):
            code, out, err = self.run_cli(*SMALL, *argv)
            self.assertEqual(2, code, argv)
            self.assertIn(words, err, argv)
            self.assertNotIn('Traceback', err, argv)

    def test_bad_config_value_is_caught_before_the_run(self):
        conf = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'g.conf')
        with open(conf, 'w') as f:
            f.write('[bdm_guard]\npoll_initial_interval = soon\n')
        code, out, err = self.run_cli(*SMALL, '--config-file', conf)
        self.assertEqual(1, code)
        self.assertIn(conf, err)
        self.assertNotIn('Traceback', err)


class TestPareto(TestSimulateCommand):

    def test_pareto_rows_are_ratios_to_stock(self):
        code, out, _ = self.run_cli(*SMALL, '--scenario', 'none',
                                    '--pareto')
        self.assertEqual(0, code, out)
        for name in ('stock nova 34 (3 s)', 'fixed 5 s',
                     'backoff (1.0 default)', 'completion (default)',
                     'completion, prior 4x low', 'completion, prior 4x high',
                     'events'):
            self.assertIn(name, out)
        self.assertIn('GETs x stock', out)
        self.assertIn('targets (completion rows)', out)

    def test_pareto_json_has_every_row(self):
        code, out, _ = self.run_cli(*SMALL, '--scenario', 'none',
                                    '--pareto', '-f', 'json')
        self.assertEqual(0, code)
        rows = json.loads(out)
        self.assertEqual(8, len(rows))
        stock = rows['stock nova 34 (3 s)']
        self.assertIn('detect_lag_p99_s', stock)
        self.assertIn('lag_over_bound', stock)
