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
* The lab's modules import each other without a circle, function-level
  imports included: each layer of the lab can be read on its own, below
  the ones that use it.
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


def _module_name(root, path):
    """``bdm_guard_lab.arms.guard`` for ``<root>/arms/guard.py``."""
    parts = os.path.relpath(path, os.path.dirname(root))[:-3].split(os.sep)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def import_graph(root):
    """Which of ``root``'s modules each of them imports, anywhere in it.

    ``from package import name`` counts as an import of the module
    ``package.name`` when there is one, else of ``package``.

    :param root: a package's folder.
    :returns: ``{module: set of modules}``, within the package.
    """
    trees = {_module_name(root, path): tree for path, tree in _modules(root)}
    graph = {}
    for module, tree in trees.items():
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.update('%s.%s' % (node.module, a.name)
                             if '%s.%s' % (node.module, a.name) in trees
                             else node.module for a in node.names)
        graph[module] = {name for name in found
                         if name in trees and name != module}
    return graph


def cycles(graph):
    """The import circles of ``graph`` (:func:`import_graph`).

    :returns: a sorted list of the strongly connected components with
        more than one module (Tarjan's algorithm), each a sorted list.
    """
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


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

    def test_the_lab_has_no_import_circle(self):
        self.assertEqual([], cycles(import_graph(LAB)))

    def test_cycles_finds_a_circle(self):
        graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}, 'e': set()}
        self.assertEqual([['a', 'b', 'c']], cycles(graph))
        self.assertEqual([], cycles({'a': {'b'}, 'b': set()}))

    def test_import_graph_sees_function_level_imports(self):
        graph = import_graph(LAB)
        self.assertIn('bdm_guard_lab.arms.guard',
                      graph['bdm_guard_lab.arms.library_mode'])
        # harness.py imports bdm_guard_lab.nova.protocol at the top.
        self.assertIn('bdm_guard_lab.nova.protocol',
                      graph['bdm_guard_lab.nova.harness'])
