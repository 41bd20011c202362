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

"""The layout's promises, checked on the source tree.

* The library (``bdm_guard``) never imports the lab (``bdm_guard_lab``):
  nova-compute and cinder import the library without the ``[lab]`` extra.
* No function of the library or the lab (``bdm_guard_lab``) is longer than
  60 lines, its docstring not counted (a long function hides the seams a
  reader needs; the docstrings must list every parameter and exception, and
  may be long).
"""

import ast
import os

from oslotest import base

import bdm_guard
import bdm_guard_lab

LIBRARY = os.path.dirname(bdm_guard.__file__)
LAB = os.path.dirname(bdm_guard_lab.__file__)
MAX_FUNCTION_LINES = 60


def _modules(root=LIBRARY):
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                with open(path, encoding='utf-8') as f:
                    yield path, ast.parse(f.read(), path)


class TestLayout(base.BaseTestCase):

    def test_library_does_not_import_the_lab(self):
        offenders = []
        for path, tree in _modules():
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or '']
                offenders += ['%s: %s' % (path, n) for n in names
                              if n.split('.')[0] == 'bdm_guard_lab']
        self.assertEqual([], offenders)

    def test_no_long_functions(self):
        long = []
        trees = list(_modules(LIBRARY)) + list(_modules(LAB))
        for path, tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    doc = node.body[0]
                    if (isinstance(doc, ast.Expr)
                            and isinstance(doc.value, ast.Constant)
                            and isinstance(doc.value.value, str)):
                        lines -= doc.end_lineno - doc.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append('%s:%d %s (%d lines)' % (
                            os.path.relpath(path, os.path.dirname(LIBRARY)),
                            node.lineno,
                            node.name, lines))
        self.assertEqual([], long)
