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

"""bdm_guard.opts.check_config over every registered option."""

import os

import fixtures
from oslo_config import cfg
from oslo_config import types
from oslotest import base

from bdm_guard import opts


def _bad_values(opt):
    """Values oslo.config refuses for ``opt``: ``[(text, why)]``."""
    kind = opt.type
    bad = []
    if isinstance(kind, (types.Integer, types.Float)):
        bad.append(('not-a-number', 'type'))
        if kind.max is not None:
            bad.append((repr(kind.max + 1), 'max'))
        if kind.min is not None:
            bad.append((repr(kind.min - 1), 'min'))
    elif isinstance(kind, types.Boolean):
        bad.append(('maybe', 'type'))
    elif isinstance(kind, types.String) and kind.choices:
        bad.append(('no-such-choice', 'choices'))
    return bad


def _conf(tmp, text):
    path = os.path.join(tmp, 'nova.conf')
    with open(path, 'w') as f:
        f.write(text)
    conf = cfg.ConfigOpts()
    conf(args=['--config-file', path], project='nova')
    return conf, path


class TestCheckConfig(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.cases = [(group, opt, text, why)
                      for group, options in opts.list_opts()
                      for opt in options
                      for text, why in _bad_values(opt)]

    def test_every_option_has_a_check(self):
        # Every numeric, boolean or choice option is covered below; the
        # others (strings, lists) accept any text.
        checked = {(g, o.name) for g, o, _, _ in self.cases}
        for group, options in opts.list_opts():
            for opt in options:
                if not isinstance(opt.type, (types.String, types.List)) or \
                        getattr(opt.type, 'choices', None):
                    self.assertIn((group, opt.name), checked)
        self.assertGreater(len(self.cases), 40)

    def test_defaults_and_an_empty_file_pass(self):
        conf, _ = _conf(self.tmp, '')
        self.assertEqual([], opts.check_config(conf))
        self.assertEqual([], opts.check_config(opts.get_conf()))

    def test_each_bad_value_alone_is_found(self):
        for group, opt, text, why in self.cases:
            conf, path = _conf(self.tmp, '[%s]\n%s = %s\n' % (
                group, opt.name, text))
            problems = opts.check_config(conf)
            self.assertEqual([(group, opt.name, text, path)],
                             [(p.group, p.name, p.value, p.source)
                              for p in problems], (why, text))
            self.assertTrue(problems[0].reason)
            self.assertIn('[%s] %s = %s in %s is refused: ' % (
                group, opt.name, text, path), str(problems[0]))

    def test_all_bad_values_at_once_are_all_found(self):
        one_each = {}
        for group, opt, text, _ in self.cases:
            one_each.setdefault((group, opt.name), text)
        lines = []
        for group, _ in opts.list_opts():
            lines.append('[%s]' % group)
            lines += ['%s = %s' % (name, text)
                      for (g, name), text in one_each.items() if g == group]
        conf, _ = _conf(self.tmp, '\n'.join(lines) + '\n')
        problems = opts.check_config(conf)
        self.assertEqual(sorted(one_each), sorted(
            (p.group, p.name) for p in problems))

    def test_range_reasons_name_the_bound(self):
        opt = next(o for o in opts.ALL_OPTS if o.name == 'poll_multiplier')
        conf, _ = _conf(self.tmp, '[bdm_guard]\npoll_multiplier = 9\n')
        [problem] = opts.check_config(conf)
        self.assertIn('less than or equal to %g' % opt.type.max,
                      problem.reason)
