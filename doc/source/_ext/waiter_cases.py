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

"""``.. waiter-cases::``: the table of the waiter cases, from their data.

The cases live in ``tests/unit/data/waiter-cases.yaml``, which the waiter's
unit tests (``tests/unit/wait/test_cases.py``), the nova series' conformance
replay and this table all read, so the table cannot drift from what the
tests check. A change to the file rebuilds the pages that show it.
"""

import os

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils import statemachine
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
CASES = os.path.join(REPO, 'tests', 'unit', 'data', 'waiter-cases.yaml')


def _number(value):
    return ('%g' % value) if isinstance(value, (int, float)) else str(value)


def _timeline(case):
    return ', '.join('%s at %s s' % (event['status'], _number(event['t']))
                     for event in case['timeline'])


def _fault(fault):
    text = '%s in [%s, %s) s' % (fault['kind'], _number(fault['from']),
                                 _number(fault['to']))
    if 'retry_after' in fault:
        text += ', Retry-After %s s' % _number(fault['retry_after'])
    return text


def _bound(expect):
    """Default schedule (completion) first, then backoff where it differs."""
    polls = expect.get('max_polls')
    completion = expect.get('max_polls_completion', polls)
    if polls is None:
        return ''
    if completion == polls:
        return str(polls)
    return '%s (backoff: %s)' % (completion, polls)


def _cell(text):
    """One list-table cell: ``*`` and the like are data, not markup."""
    text = str(text).replace('\\', '\\\\')
    for char in '*`|_':
        text = text.replace(char, '\\' + char)
    return text


def rows(cases):
    """The table's rows: a header, then one per case, as text cells."""
    yield ('case', 'cinder holds', 'the client sees', 'size (GiB)',
           'bdm-guard', 'seen within (s)', 'volume GETs at most',
           'nova 34 (model)', 'source')
    for case in cases:
        expect = case['expect']
        yield (case['id'], _timeline(case),
               '; '.join(_fault(f) for f in case.get('faults', [])),
               _number(case['size_gb']), expect['outcome'],
               _number(expect.get('detect_within_s', '')), _bound(expect),
               expect.get('nova_stock', ''), case['source'])


def list_table(table):
    lines = ['.. list-table::', '   :header-rows: 1', '']
    for row in table:
        first = True
        for cell in row:
            # An empty cell is a bare "-".
            lines.append(('   %s - %s' % ('*' if first else ' ',
                                          _cell(cell))).rstrip())
            first = False
    return lines


class WaiterCases(Directive):
    """The waiter cases as a list table."""

    has_content = False

    def run(self):
        env = self.state.document.settings.env
        env.note_dependency(CASES)
        with open(CASES) as f:
            cases = yaml.safe_load(f)
        lines = statemachine.StringList(list_table(rows(cases)), CASES)
        node = nodes.container()
        self.state.nested_parse(lines, self.content_offset, node)
        return node.children


def setup(app):
    app.add_directive('waiter-cases', WaiterCases)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
