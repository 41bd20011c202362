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

"""Installed packages with series applied to copies, for the lab's arms.

Without touching site-packages: :class:`PatchedNova` applies
``patches/nova`` (``patched``; with ``patches/nova/route-b`` after it for
``route-b``), and :class:`PatchedKeystoneauth` applies
``patches/keystoneauth`` (nova's POSTs are not resent after a failure that
may follow the request being sent) to a copy of the installed keystoneauth1
in the same folder, so one ``PYTHONPATH`` entry gives the nova child both.
:class:`PatchedCinder` does the same for cinder (``route-b``), and
:class:`PatchedPackage` for any package (the lab's client shims,
:mod:`bdm_guard_lab.shims`). A series is whatever its ``series`` file lists
(or, without one, its ``*.patch`` files in name order) when the arm starts:
a patch that does not apply stops the arm with
:class:`bdm_guard_lab.exception.PatchDoesNotApply`, which names the patch.
"""

import glob
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess

import fixtures
from oslo_log import log as logging

from bdm_guard_lab import exception
from bdm_guard_lab import process

LOG = logging.getLogger(__name__)


def series_dir():
    """The source tree's ``patches/nova``."""
    return os.path.join(process.REPO_ROOT, 'patches', 'nova')


def keystoneauth_series_dir():
    """The source tree's ``patches/keystoneauth``."""
    return os.path.join(process.REPO_ROOT, 'patches', 'keystoneauth')


def cinderclient_series_dir():
    """The source tree's ``patches/python-cinderclient``."""
    return os.path.join(process.REPO_ROOT, 'patches', 'python-cinderclient')


def read_series(folder):
    """The patch files ``series`` lists, in order (comments skipped).

    :param folder: the series folder.
    :returns: a list of paths.
    :raises bdm_guard_lab.exception.LabError: no ``series`` file, or it
        names a missing file.
    """
    path = os.path.join(folder, 'series')
    try:
        with open(path) as stream:
            names = [line.split('#', 1)[0].strip() for line in stream]
    except OSError as exc:
        raise exception.LabError(reason='no series in %s (%s); run '
                                 'from a source checkout' % (folder, exc))
    patches = [os.path.join(folder, name) for name in names if name]
    missing = [p for p in patches if not os.path.isfile(p)]
    if missing or not patches:
        raise exception.LabError(reason='%s lists %s' % (
            path, 'missing files %s' % missing if missing else 'no patch'))
    return patches


def cinder_series_dir():
    """The source tree's ``patches/cinder``."""
    return os.path.join(process.REPO_ROOT, 'patches', 'cinder')


def read_patches(sources):
    """The patch files of several series, in order.

    :param sources: a folder (str) or a sequence of folders and patch
        files. A folder with a ``series`` file gives what it lists
        (:func:`read_series`); one without gives its ``*.patch`` files in
        name order (as ``tools/cinder-series-test.sh`` applies
        ``patches/cinder``); a file is itself.
    :returns: a list of paths.
    :raises bdm_guard_lab.exception.LabError: a folder lists a missing
        file or has no patch, or a file is missing.
    """
    if isinstance(sources, str):
        sources = [sources]
    patches = []
    for source in sources:
        if os.path.isfile(source):
            patches.append(source)
        elif os.path.isfile(os.path.join(source, 'series')):
            patches.extend(read_series(source))
        else:
            found = sorted(glob.glob(os.path.join(source, '*.patch')))
            if not found:
                raise exception.LabError(reason='no series and no patch in '
                                         '%s; run from a source checkout'
                                         % source)
            patches.extend(found)
    return patches


def series_base(folder, distribution):
    """The release a series is written against, from its ``README.rst``.

    The README's title names it (``... for keystoneauth1 5.18.1``).

    :param folder: the series folder.
    :param distribution: the distribution name in the title.
    :returns: the version string, or None (no README, or it names none).
    """
    try:
        with open(os.path.join(folder, 'README.rst')) as stream:
            text = stream.read(4096)
    except OSError:
        return None
    found = re.search(r'\b%s (\d[\w.]*\w)' % re.escape(distribution), text)
    return found.group(1) if found else None


def _changed_files(patch, package='nova'):
    """``package`` files (tests excluded) a patch changes or creates."""
    prefix = '+++ b/%s/' % package
    tests = '%stests/' % prefix
    with open(patch, errors='replace') as stream:
        return [line[6:].strip() for line in stream
                if line.startswith(prefix) and not line.startswith(tests)]


def _installed_version(distribution, where=None):
    """The version of ``distribution`` Python finds, or in ``where``."""
    if where is None:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return None
    for found in importlib.metadata.distributions(path=[where]):
        if found.metadata['Name'] == distribution:
            return found.version
    return None


class PatchedPackage(fixtures.Fixture):
    """An installed package with a series applied, in a temporary folder.

    The package is mirrored with symbolic links; the files the series
    changes (tests excluded: the lab runs the installed test frameworks)
    are copied, and each patch is applied in ``series`` order with
    ``git apply --exclude=<package>/tests/* --include=<package>/*``. Put
    :attr:`path` first on the child's ``PYTHONPATH``.

    :param package: the import name (``nova``, ``keystoneauth1``).
    :param folder: the series folder, or several folders and patch files
        applied in order (:func:`read_patches`); the first folder's
        README names the base.
    :param path: the folder to put the copy in (it must not hold
        ``package``); default a new temporary folder.
    :param distribution: the distribution whose installed version is
        compared with the series' base (:func:`series_base`); default
        ``package``.
    :param source: the package folder to copy; default the one Python
        imports. Its version is then read from a ``<distribution>-*.dist-info``
        beside it (None if there is none).

    After ``setUp``: :attr:`path`, :attr:`applied` (patch file names),
    :attr:`installed` (the installed version, or None), :attr:`base` (the
    series' base version, or None), :attr:`note` (a sentence when both are
    known and differ, else None).

    :raises bdm_guard_lab.exception.PatchDoesNotApply: a patch does not
        apply (the message names it, the installed version and the base,
        and quotes git).
    :raises bdm_guard_lab.exception.LabError: no series or no git.
    """

    def __init__(self, package, folder, path=None, distribution=None,
                 source=None):
        super().__init__()
        self.package = package
        # git apply runs in the copy: a relative series path must not.
        if isinstance(folder, str):
            folder = [folder]
        self.sources = [os.path.abspath(f) for f in folder]
        self.folder = self.sources[0]
        self.path = path
        self.source = source
        self.distribution = distribution or package
        self.applied = []
        self.installed = self.base = self.note = None

    def _setUp(self):
        patches = read_patches(self.sources)
        git = shutil.which('git')
        if git is None:
            raise exception.LabError(reason='git is needed to apply %s'
                                     % self.folder)
        source_dir = self.source or os.path.dirname(
            importlib.util.find_spec(self.package).origin)
        self.installed = _installed_version(
            self.distribution,
            os.path.dirname(source_dir) if self.source else None)
        self.base = series_base(self.folder, self.distribution)
        if self.installed and self.base and self.installed != self.base:
            self.note = ('%s %s is installed; %s is written against %s' % (
                self.distribution, self.installed, self.folder, self.base))
            LOG.warning('%s.', self.note)
        project = '%s %s' % (self.distribution, self.installed or '?')
        if self.note:
            project += ' (the series is against %s)' % self.base
        if self.path is None:
            self.path = self.useFixture(fixtures.TempDir()).path
        shutil.copytree(source_dir, os.path.join(self.path, self.package),
                        copy_function=os.symlink,
                        ignore=shutil.ignore_patterns('__pycache__'))
        skip = len(self.package) + 1
        for patch in patches:
            for name in _changed_files(patch, self.package):
                path = os.path.join(self.path, name)
                if os.path.islink(path):
                    os.unlink(path)
                    shutil.copyfile(os.path.join(source_dir, name[skip:]),
                                    path)
            done = subprocess.run(
                [git, 'apply', '--exclude=%s/tests/*' % self.package,
                 '--include=%s/*' % self.package, patch],
                cwd=self.path, capture_output=True, text=True)
            if done.returncode:
                raise exception.PatchDoesNotApply(
                    patch=os.path.basename(patch),
                    series=os.path.dirname(patch),
                    project='%s in %s' % (project, source_dir),
                    reason=done.stderr.strip()[-500:])
            self.applied.append(os.path.basename(patch))
        LOG.info('%s with %d patches of %s in %s.', self.package,
                 len(patches), ', '.join(self.sources), self.path)


class PatchedNova(PatchedPackage):
    """The installed nova with ``patches/nova`` applied (see the base).

    :param folder: the series folder, or several (``[patches/nova,
        patches/nova/route-b]``), as for :class:`PatchedPackage`; default
        the source tree's ``patches/nova``.
    :param path: as for :class:`PatchedPackage`.
    """

    def __init__(self, folder=None, path=None):
        super().__init__('nova', folder or series_dir(), path=path)


class PatchedCinder(PatchedPackage):
    """The installed cinder with series applied (see the base).

    Put :attr:`path` first on the cinder child's ``PYTHONPATH``
    (:class:`bdm_guard_lab.cinder.service.CinderService`'s
    ``cinder_path``).

    :param folder: as for :class:`PatchedPackage` (folders and patch
        files, in order); default the source tree's ``patches/cinder``.
    :param path: as for :class:`PatchedPackage`.
    """

    def __init__(self, folder=None, path=None):
        super().__init__('cinder', folder or cinder_series_dir(), path=path)


class PatchedKeystoneauth(PatchedPackage):
    """The installed keystoneauth1 with ``patches/keystoneauth`` applied.

    Its base is the release its ``README.rst`` names (keystoneauth1
    5.18.1); the lab venv installs the release the repository's
    ``upper-constraints.txt`` pins, and :attr:`note` says when they
    differ. Give it the :attr:`PatchedNova.path` of the same arm, so
    the nova child imports both from one ``PYTHONPATH`` entry.

    :param folder: the series folder; default the source tree's
        ``patches/keystoneauth``.
    :param path: as for :class:`PatchedPackage`.
    :param source: as for :class:`PatchedPackage` (e.g. a keystoneauth1 of
        the series' base, ``pip install --no-deps --target``).
    """

    def __init__(self, folder=None, path=None, source=None):
        super().__init__('keystoneauth1', folder or keystoneauth_series_dir(),
                         path=path, source=source)


class PatchedCinderclient(PatchedPackage):
    """The installed python-cinderclient with its series applied.

    ``patches/python-cinderclient``: ``volumes.create(idempotency_key=)``
    at microversion 3.72 and ``server_id`` at 3.73, which nova's 0006
    needs to send cinder's key (with 9.10.0, which stops at 3.71, nova's
    negotiation fails and it creates as today). Give it the
    :attr:`PatchedNova.path` of the same arm, as for
    :class:`PatchedKeystoneauth`.

    :param folder: the series folder; default the source tree's
        ``patches/python-cinderclient``.
    :param path: as for :class:`PatchedPackage`.
    :param source: as for :class:`PatchedPackage`.
    """

    def __init__(self, folder=None, path=None, source=None):
        super().__init__('cinderclient', folder or cinderclient_series_dir(),
                         path=path, distribution='python-cinderclient',
                         source=source)
