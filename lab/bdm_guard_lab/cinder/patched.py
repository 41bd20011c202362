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

"""The installed cinder with ``patches/cinder`` applied, for the lab.

A lab cinder can run with a series applied (``CinderService(cinder_path=
PatchedCinder(...).path)``); this module builds that copy without touching
site-packages. The Galera demo no longer uses it: its arms run stock
cinder in each database configuration (:mod:`bdm_guard_lab.db.variants`).
"""

import glob
import importlib.util
import os
import shutil
import subprocess

import fixtures
from oslo_log import log as logging

from bdm_guard_lab import exception
from bdm_guard_lab import process

LOG = logging.getLogger(__name__)


def _series_dir():
    return os.path.join(process.REPO_ROOT, 'patches', 'cinder')


class PatchedCinder(fixtures.Fixture):
    """The installed cinder with ``patches/cinder`` applied, in a temp dir.

    Site-packages is never touched: the package is mirrored with symbolic
    links, the files the series changes (tests excluded) are copied, and the
    patches are applied to the copies in order with ``git apply``. Put
    ``path`` first on a child's ``PYTHONPATH`` (the ``cinder_path`` of
    :class:`bdm_guard_lab.cinder.service.CinderService`).

    :param series_dir: the folder of ``*.patch`` files; default the source
        tree's ``patches/cinder``.
    :raises bdm_guard_lab.exception.LabError: no series, no git, or a patch
        does not apply to the installed cinder.
    """

    def __init__(self, series_dir=None):
        super().__init__()
        self.series_dir = series_dir or _series_dir()

    def _setUp(self):
        patches = sorted(glob.glob(os.path.join(self.series_dir, '*.patch')))
        if not patches:
            raise exception.LabError(
                reason='no cinder series in %s (run from a source checkout)'
                % self.series_dir)
        git = shutil.which('git')
        if git is None:
            raise exception.LabError(reason='git is needed to apply %s'
                                     % self.series_dir)
        source = os.path.dirname(importlib.util.find_spec('cinder').origin)
        self.path = self.useFixture(fixtures.TempDir()).path
        target = os.path.join(self.path, 'cinder')
        shutil.copytree(source, target, copy_function=os.symlink,
                        ignore=shutil.ignore_patterns('__pycache__'))
        for patch in patches:
            with open(patch) as stream:
                changed = [line[6:].strip() for line in stream
                           if line.startswith('+++ b/cinder/')
                           and not line.startswith('+++ b/cinder/tests/')]
            for name in changed:
                path = os.path.join(self.path, name)
                if os.path.islink(path):
                    os.unlink(path)
                    shutil.copyfile(os.path.join(source, name[7:]), path)
            done = subprocess.run(
                [git, 'apply', '--exclude=cinder/tests/*',
                 '--include=cinder/*', patch], cwd=self.path,
                capture_output=True, text=True)
            if done.returncode:
                raise exception.LabError(
                    reason='%s does not apply to cinder in %s: %s' % (
                        os.path.basename(patch), source,
                        done.stderr.strip()[-500:]))
        LOG.info('Cinder with %d patches of %s in %s.', len(patches),
                 self.series_dir, self.path)
