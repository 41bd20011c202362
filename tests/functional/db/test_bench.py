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

"""(d) The cost of bdm_guard.db with no lag, on a real Galera node.

Prints the ratio of guarded to plain reads; it asserts no timing. Run alone
(for the bench env) with ``python -m tests.functional.db.test_bench
[--reads N]``: it starts a one-node Galera cluster, measures, prints JSON and
stops the node.
"""

import argparse
import json
import sys

import testtools

from bdm_guard_lab.bench import db as db_bench
from tests.functional.db import fixtures as db_fixtures

READS = 2000


def run(reads=READS):
    """Start a one-node Galera cluster, measure, stop it; return results."""
    cluster = db_fixtures.GaleraCluster(size=1)
    with cluster:
        return db_bench.measure(cluster.nodes[0].url(), reads=reads)


class BenchTestCase(testtools.TestCase):

    def test_d_no_lag_cost(self):
        results = run()
        text = json.dumps(results, indent=2)
        self.addDetail('benchmark', testtools.content.text_content(text))
        sys.stdout.write('\nbdm_guard.db no-lag cost, %d reads each way: '
                         'engine ratio %.3f, facade ratio %.3f\n'
                         % (READS, results['engine']['ratio'],
                            results['facade']['ratio']))
        for front_end in ('engine', 'facade'):
            self.assertEqual(READS, results[front_end]['reads'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--reads', type=int, default=READS)
    args = parser.parse_args(argv)
    db_fixtures.skip_unless_enabled()
    print(json.dumps(run(args.reads), indent=2))


if __name__ == '__main__':
    main()
