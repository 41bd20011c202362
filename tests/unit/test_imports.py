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

"""The library's modules, and the lab's, import each other without a circle.

Every ``import`` of the source tree counts, the ones inside functions
included: a function-level import hides a circle from Python, not from the
reader. :mod:`bdm_guard.nova.releases` imports nothing but the standard
library, so that the lab's nova child can read it before it chooses nova's
concurrency model.
"""

import ast
import importlib.util
import os
import sysconfig

from oslotest import base

import bdm_guard
import bdm_guard_lab

LIBRARY = os.path.dirname(bdm_guard.__file__)
LAB = os.path.dirname(bdm_guard_lab.__file__)


def _module_name(path, root=LIBRARY):
    rel = os.path.relpath(path, os.path.dirname(root))
    parts = rel[:-len('.py')].split(os.sep)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def _sources(root=LIBRARY):
    """``{module name: (path, ast)}`` of every module of the package.

    :param root: the package's folder (default the library's).
    """
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                with open(path, encoding='utf-8') as f:
                    found[_module_name(path, root)] = (
                        path, ast.parse(f.read(), path))
    return found


def _imported(module, path, tree):
    """Every module name ``tree`` imports, wherever the import stands."""
    package = module if path.endswith('__init__.py') else (
        module.rpartition('.')[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base_name = node.module or ''
            if node.level:
                anchor = package.split('.')
                anchor = anchor[:len(anchor) - node.level + 1]
                base_name = '.'.join(anchor + ([base_name] if base_name
                                               else []))
            yield base_name
            for alias in node.names:
                yield '%s.%s' % (base_name, alias.name)


def import_graph(sources):
    """``{module: set of library modules it imports}``.

    :param sources: ``{module name: (path, ast)}``.
    """
    graph = {}
    for module, (path, tree) in sources.items():
        graph[module] = {name for name in _imported(module, path, tree)
                         if name in sources and name != module}
    return graph


def cycles(graph):
    """The strongly connected parts of ``graph`` with more than one module.

    Tarjan's algorithm, iterative.

    :param graph: ``{node: iterable of nodes}``.
    :returns: a sorted list of sorted lists of nodes.
    """
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    part.append(member)
                    if member == node:
                        break
                if len(part) > 1:
                    found.append(sorted(part))
    return sorted(found)


class TestCycles(base.BaseTestCase):

    def test_finds_a_circle(self):
        graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'},
                 'e': {'f'}, 'f': {'e'}, 'g': set()}
        self.assertEqual([['a', 'b', 'c'], ['e', 'f']], cycles(graph))

    def test_finds_no_circle_in_a_tree(self):
        self.assertEqual([], cycles({'a': {'b', 'c'}, 'b': {'c'},
                                     'c': set()}))

    def test_reads_function_level_and_relative_imports(self):
        source = ('import bdm_guard.a\n'
                  'def f():\n'
                  '    from bdm_guard.nova import b\n'
                  '    from . import c\n')
        sources = {name: ('/x/%s.py' % name.replace('.', '/'),
                          ast.parse('')) for name in (
            'bdm_guard.a', 'bdm_guard.nova.b', 'bdm_guard.nova.c')}
        sources['bdm_guard.nova.d'] = ('/x/bdm_guard/nova/d.py',
                                       ast.parse(source))
        self.assertEqual(
            {'bdm_guard.a', 'bdm_guard.nova.b', 'bdm_guard.nova.c'},
            import_graph(sources)['bdm_guard.nova.d'])


class TestLibraryImports(base.BaseTestCase):

    def test_no_circle_in_the_library(self):
        self.assertEqual([], cycles(import_graph(_sources())))

    def test_nova_modules_import_one_way(self):
        graph = import_graph(_sources())
        self.assertNotIn('bdm_guard.nova.guard',
                         graph['bdm_guard.nova.client'])
        self.assertNotIn('bdm_guard.nova.guard',
                         graph['bdm_guard.nova.dropin'])
        for module in ('guard', 'client'):
            self.assertIn('bdm_guard.nova.releases',
                          graph['bdm_guard.nova.%s' % module], module)
        # The drop-ins reach the table through nova's client.
        self.assertIn('bdm_guard.nova.client',
                      graph['bdm_guard.nova.dropin'])

    def test_release_table_imports_only_the_standard_library(self):
        # At module level; NovaRelease.sleep imports eventlet when called.
        path, tree = _sources()['bdm_guard.nova.releases']
        paths = sysconfig.get_paths()
        stdlib = os.path.realpath(paths['stdlib'])
        installed = tuple(os.path.realpath(paths[k]) + os.sep
                          for k in ('purelib', 'platlib'))
        outside = []
        for node in tree.body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module]
            else:
                continue
            for name in names:
                spec = importlib.util.find_spec(name)
                origin = spec.origin if spec else None
                where = os.path.realpath(origin or '')
                if origin not in ('built-in', 'frozen') and (
                        not where.startswith(stdlib + os.sep)
                        or where.startswith(installed)):
                    outside.append('%s (%s)' % (name, origin))
        self.assertEqual([], outside)


class TestLabImports(base.BaseTestCase):
    """The lab's layers read one way: modes over arms over services."""

    def test_no_circle_in_the_lab(self):
        self.assertEqual([], cycles(import_graph(_sources(LAB))))

    def test_the_arms_import_one_way(self):
        graph = import_graph(_sources(LAB))
        for mode in ('library_mode', 'nova_mode'):
            self.assertIn('bdm_guard_lab.arms.guard',
                          graph['bdm_guard_lab.arms.%s' % mode], mode)
        self.assertEqual(set(), {
            name for name in graph['bdm_guard_lab.arms.guard']
            if name.startswith('bdm_guard_lab.arms.')})
