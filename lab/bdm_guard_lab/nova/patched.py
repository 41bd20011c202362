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

"""The installed nova with ``patches/nova`` applied, for the ``patched`` arm.

Without touching site-packages. The series is whatever
``patches/nova/series`` lists when the arm starts (it is being reworked on
its own branch): a patch that does not apply stops the arm with
:class:`bdm_guard_lab.exception.PatchDoesNotApply`, which names the patch.
"""

import importlib.util
import os
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
        raise exception.LabError(reason='no nova series in %s (%s); run '
                                 'from a source checkout' % (folder, exc))
    patches = [os.path.join(folder, name) for name in names if name]
    missing = [p for p in patches if not os.path.isfile(p)]
    if missing or not patches:
        raise exception.LabError(reason='%s lists %s' % (
            path, 'missing files %s' % missing if missing else 'no patch'))
    return patches


def _changed_files(patch):
    """nova files (tests excluded) a patch changes or creates."""
    with open(patch, errors='replace') as stream:
        return [line[6:].strip() for line in stream
                if line.startswith('+++ b/nova/')
                and not line.startswith('+++ b/nova/tests/')]


class PatchedNova(fixtures.Fixture):
    """The installed nova with the series applied, in a temporary folder.

    The package is mirrored with symbolic links; the files the series
    changes (tests excluded: the lab runs nova's installed functional
    framework) are copied, and each patch is applied in ``series`` order
    with ``git apply --exclude=nova/tests/* --include=nova/*``. Put
    :attr:`path` first on the nova child's ``PYTHONPATH``.

    :param folder: the series folder; default the source tree's
        ``patches/nova``.

    After ``setUp``: :attr:`path`, :attr:`applied` (patch file names).

    :raises bdm_guard_lab.exception.PatchDoesNotApply: a patch does not
        apply (the message names it and quotes git).
    :raises bdm_guard_lab.exception.LabError: no series or no git.
    """

    def __init__(self, folder=None):
        super().__init__()
        self.folder = folder or series_dir()
        self.applied = []

    def _setUp(self):
        patches = read_series(self.folder)
        git = shutil.which('git')
        if git is None:
            raise exception.LabError(reason='git is needed to apply %s'
                                     % self.folder)
        source = os.path.dirname(importlib.util.find_spec('nova').origin)
        self.path = self.useFixture(fixtures.TempDir()).path
        shutil.copytree(source, os.path.join(self.path, 'nova'),
                        copy_function=os.symlink,
                        ignore=shutil.ignore_patterns('__pycache__'))
        for patch in patches:
            for name in _changed_files(patch):
                path = os.path.join(self.path, name)
                if os.path.islink(path):
                    os.unlink(path)
                    shutil.copyfile(os.path.join(source, name[5:]), path)
            done = subprocess.run(
                [git, 'apply', '--exclude=nova/tests/*', '--include=nova/*',
                 patch], cwd=self.path, capture_output=True, text=True)
            if done.returncode:
                raise exception.PatchDoesNotApply(
                    patch=os.path.basename(patch), series=self.folder,
                    project='nova %s' % source,
                    reason=done.stderr.strip()[-500:])
            self.applied.append(os.path.basename(patch))
        LOG.info('nova with %d patches of %s in %s.', len(patches),
                 self.folder, self.path)
