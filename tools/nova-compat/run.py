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

"""``tox -e nova-compat``: bdm-guard's nova tests on every nova release.

For each release of :data:`RELEASES` (default: all), one at a time:

1. a virtualenv with that nova, on the Python that release's distributions
   ship (:data:`RELEASES`; the interpreter must exist here), pinned by that
   release's own ``upper-constraints-<release>.txt`` (copied from
   openstack/requirements, sources in ``README.rst`` next to this file),
   cached under the tox work dir and keyed by a hash of the constraints
   file, the requirement lists and the Python (a changed pin builds a new
   one; an unchanged one is reused);
2. bdm-guard installed into it, as a deployer installs it into nova's
   virtualenv (OpenStack-Ansible style);
3. the drop-in and launcher unit tests (``tests/unit/nova``) run against
   that nova; a skipped test counts as a failure here, since a skip means
   that nova was not importable;
4. packaging checks: the installed ``bdm-guard-nova-compute`` (from a
   directory outside the repository) and the Kolla layer of
   ``tools/kolla/Dockerfile.nova-compute-bdm-guard`` built as a Python
   environment on top of that nova (no docker);
5. one real-nova boot through the launcher against real cinder
   (:data:`REAL_NOVA_BOOT`): cinder 29 and the lab's fault proxy run in
   this interpreter (``tox -e nova-compat`` installs bdm-guard and
   bdm-guard-lab into it), the nova child in a *boot layer* over the release's
   virtualenv (a virtualenv that sees the nova venv's packages through a
   ``.pth`` file and adds ``lab/nova-child-requirements.txt``, nova's
   functional framework, the release's placement and bdm-guard-lab without
   its dependencies, within the release's constraints; cached too). The
   nova venv itself stays what nova-compute runs from.

Then it prints one summary line per release and exits non-zero if any
release failed. Usage::

    tox -e nova-compat                  # all releases
    tox -e nova-compat -- 29 34         # a subset
    tox -e nova-compat -- --releases 29,34
"""

import argparse
import glob
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DOCKERFILE = os.path.join(REPO, 'tools', 'kolla',
                          'Dockerfile.nova-compute-bdm-guard')

#: nova major release -> (OpenStack release of its upper-constraints file,
#: the nova version installed, the Python its distributions ship, the
#: openstack-placement of the same release for the real-nova boot). The
#: Python: 2024.1 and 2024.2 are deployed on Ubuntu 22.04 (3.10) and RHEL 9
#: (3.9); 2025.1 on is deployed on Ubuntu 24.04 (3.12). nova's functional
#: framework (``PlacementFixture``) runs placement in-process, and no
#: upper-constraints file pins a service, so placement is pinned here.
RELEASES = {
    '29': ('2024.1', '29.4.0', '3.10', '11.0.1'),
    '30': ('2024.2', '30.3.0', '3.10', '12.0.2'),
    '31': ('2025.1', '31.3.1', '3.12', '13.0.1'),
    '32': ('2025.2', '32.2.1', '3.12', '14.0.0'),
    '33': ('2026.1', '33.0.2', '3.12', '15.0.0'),
    '34': ('master', '34.0.0', '3.12', '16.0.0'),
}

#: Pins raised over a release's own file, only where that release's nova
#: itself does not install on it: {release: {package: (pin, why)}}. The
#: derived file is written to the work dir (:func:`constraints_file`).
OVERRIDES = {
    '34': {
        'keystoneauth1': ('5.16.0', 'nova 34.0.0 requires keystoneauth1>='
                          '5.16.0; the master snapshot (33536777, '
                          '2026-08-22) pins 5.15.0'),
        'oslo.versionedobjects': ('3.12.0', 'nova 34.0.0 requires '
                                  'oslo.versionedobjects>=3.12.0; the '
                                  'master snapshot pins 3.11.0'),
    },
}

#: What the unit tests need beyond bdm-guard and nova.
TEST_DEPS = ('stestr', 'oslotest', 'fixtures', 'requests-mock', 'testtools')

#: Step 5, one real-nova boot per release: run as ``python -m`` from this
#: interpreter (the lab's: cinder and the fault proxy) with
#: ``--nova-python`` the release's boot layer, it boots a server from a new
#: volume through the launcher with the first create's response lost and
#: cinder-api's reads lagging behind its writes, and passes when the server
#: is ACTIVE with exactly one volume and nothing leaked (its JSON result
#: says what was wrong otherwise).
REAL_NOVA_BOOT = 'bdm_guard_lab.nova.compat'
#: What the boot layer adds to the release's venv: nova's functional
#: framework, for the lab's nova child.
BOOT_REQUIREMENTS = os.path.join(REPO, 'lab', 'nova-child-requirements.txt')
#: Seconds one boot may take, start and delete included, before it counts
#: as failed (it takes 15 to 30 s).
BOOT_TIMEOUT = 600

UNIT_RUNNER = r'''
import json, sys, unittest
suite = unittest.defaultTestLoader.discover(
    'tests/unit/nova', pattern='test_*.py', top_level_dir='.')
result = unittest.TextTestRunner(stream=sys.stderr, verbosity=1).run(suite)
json.dump({'run': result.testsRun, 'failures': len(result.failures),
           'errors': len(result.errors), 'skipped': len(result.skipped)},
          open(sys.argv[1], 'w'))
'''


def releases_available():
    return sorted(RELEASES, key=int)


def constraints_file(release, workdir=None):
    """The release's own upper-constraints file (path).

    :param workdir: where a file with :data:`OVERRIDES` is written, for a
        release that has some; None for the copy in the tree.
    """
    own = os.path.join(HERE,
                       'upper-constraints-%s.txt' % RELEASES[release][0])
    overrides = OVERRIDES.get(release)
    if not overrides or workdir is None:
        return own
    names = {re.sub(r'[-_.]+', '-', n).lower(): n for n in overrides}
    lines = []
    with open(own) as f:
        for line in f:
            first = re.split(r'[=<>!~;\s]', line, 1)[0]
            name = re.sub(r'[-_.]+', '-', first).lower()
            if name in names:
                pin, why = overrides[names[name]]
                lines.append('# %s: %s\n%s===%s\n' % (names[name], why,
                                                      names[name], pin))
            else:
                lines.append(line)
    path = os.path.join(workdir, 'nova-compat-%s-constraints.txt' % release)
    with open(path, 'w') as f:
        f.write(''.join(lines))
    return path


def nova_pin(release):
    return RELEASES[release][1]


def find_python(release):
    """The interpreter of the release's Python, or None if not here."""
    version = RELEASES[release][2]
    root = os.environ.get('PYENV_ROOT', os.path.expanduser('~/.pyenv'))
    candidates = [shutil.which('python%s' % version)] + sorted(glob.glob(
        os.path.join(root, 'versions', '%s.*' % version, 'bin', 'python')))
    for path in candidates:
        # A pyenv shim exists for every version, and fails unless that
        # version is selected: try each one.
        if path and subprocess.call(
                [path, '-c', 'import sys; sys.exit(sys.version_info[:2] '
                 '!= %r)' % (tuple(int(v) for v in version.split('.')),)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
            return path
    return None


def cache_key(constraints, python):
    digest = hashlib.sha256()
    for path in (constraints, os.path.join(REPO, 'requirements.txt')):
        with open(path, 'rb') as f:
            digest.update(f.read())
    digest.update(repr((TEST_DEPS, python)).encode())
    return digest.hexdigest()[:12]


def run(cmd, log, **kwargs):
    """Run ``cmd``, its output appended to ``log``; returns the exit code.

    Without this interpreter's ``PYTHONPATH``: a release venv sees only
    what is installed into it.
    """
    if 'env' not in kwargs:
        kwargs['env'] = {k: v for k, v in os.environ.items()
                         if k != 'PYTHONPATH'}
    with open(log, 'a') as out:
        out.write('$ %s\n' % shlex.join(cmd))
        out.flush()
        return subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT,
                               **kwargs)


def build_venv(venv, constraints, nova, python, log):
    """Create the cached virtualenv unless it exists; returns seconds."""
    ready = os.path.join(venv, '.nova-compat-ready')
    if os.path.exists(ready):
        with open(ready) as f:
            return json.load(f)['install_seconds'], True
    shutil.rmtree(venv, ignore_errors=True)
    start = time.monotonic()
    if run([python, '-m', 'venv', venv], log):
        raise RuntimeError('venv creation failed')
    pip = [os.path.join(venv, 'bin', 'python'), '-m', 'pip', 'install',
           '--quiet', '-c', constraints]
    if run(pip + ['nova==%s' % nova, *TEST_DEPS,
                  '-r', os.path.join(REPO, 'requirements.txt')], log):
        raise RuntimeError('installing nova failed')
    seconds = time.monotonic() - start
    with open(ready, 'w') as f:
        json.dump({'install_seconds': seconds}, f)
    return seconds, False


def build_wheel(workdir, log):
    """bdm-guard's and the lab's wheels, built once per run.

    :returns: ``(bdm-guard wheel, bdm-guard-lab wheel)`` paths.
    """
    dist = os.path.join(workdir, 'nova-compat-dist')
    shutil.rmtree(dist, ignore_errors=True)
    for source in (REPO, os.path.join(REPO, 'lab')):
        if run([sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps',
                '-w', dist, source], log):
            raise SystemExit('building the wheel of %s failed (%s)'
                             % (source, log))
    return (glob.glob(os.path.join(dist, 'bdm_guard-*.whl'))[0],
            glob.glob(os.path.join(dist, 'bdm_guard_lab-*.whl'))[0])


def install_bdm_guard(venv, constraints, wheel, log):
    """pip install bdm-guard into nova's virtualenv, as OSA does."""
    python = os.path.join(venv, 'bin', 'python')
    if run([python, '-m', 'pip', 'install', '--quiet', '--force-reinstall',
            '--no-deps', wheel], log):
        raise RuntimeError('installing bdm-guard failed')
    # Then its requirements, within the release's constraints: whatever
    # nova's environment lacks comes in, nothing nova has is changed.
    if run([python, '-m', 'pip', 'install', '--quiet', '-c', constraints,
            wheel], log):
        raise RuntimeError("bdm-guard's requirements conflict with nova's")


def unit_tests(venv, log):
    with tempfile.NamedTemporaryFile(suffix='.json', delete=False) as f:
        out = f.name
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
    env.pop('PYTHONPATH', None)
    run([os.path.join(venv, 'bin', 'python'), '-c', UNIT_RUNNER, out], log,
        cwd=REPO, env=env)
    try:
        with open(out) as f:
            counts = json.load(f)
    except (OSError, ValueError):
        return {'run': 0, 'failures': 0, 'errors': 1, 'skipped': 0}
    finally:
        if os.path.exists(out):
            os.unlink(out)
    return counts


def installed_checks(venv, release, log):
    """The installed launcher, outside the repository; returns problems."""
    problems = []
    with tempfile.TemporaryDirectory() as cwd:
        env = dict(os.environ)
        env.pop('PYTHONPATH', None)
        script = os.path.join(venv, 'bin', 'bdm-guard-nova-compute')
        with open(script) as f:
            shebang = f.readline()
        if os.path.join(venv, 'bin', 'python') not in shebang:
            problems.append('console script not bound to the nova venv')
        out = os.path.join(cwd, 'help.txt')
        with open(out, 'w') as f:
            code = subprocess.call([script, '--help'], stdout=f,
                                   stderr=subprocess.STDOUT, cwd=cwd,
                                   env=env, timeout=120)
        with open(out) as f:
            text = f.read()
        with open(log, 'a') as f:
            f.write('$ bdm-guard-nova-compute --help -> %d\n%s\n'
                    % (code, text[:2000]))
        if code != 0 or '--config-file' not in text:
            problems.append('bdm-guard-nova-compute --help exited %d' % code)
        problems.extend(launcher_checks(script, cwd, env, log))
        check = ('import bdm_guard, sys; from bdm_guard.nova import guard; '
                 'assert bdm_guard.__file__.startswith("%s"), '
                 'bdm_guard.__file__; guard.check(); '
                 'r = guard.release(); print(r.series, r.concurrency); '
                 'sys.exit(r.series != "%s")' % (venv, release))
        if run([os.path.join(venv, 'bin', 'python'), '-c', check], log,
               cwd=cwd, env=env):
            problems.append('installed guard.release() check failed')
    return problems


def launcher_checks(script, cwd, env, log):
    """``--version`` names both versions; a bad option fails closed.

    :returns: problems (list of str).
    """
    problems = []
    out = subprocess.run([script, '--version'], capture_output=True,
                         text=True, cwd=cwd, env=env, timeout=120)
    with open(log, 'a') as f:
        f.write('$ bdm-guard-nova-compute --version -> %d\n%s%s\n' % (
            out.returncode, out.stdout, out.stderr))
    if out.returncode != 0 or not re.search(
            r'^bdm-guard \S+ \(nova \d+\.', out.stdout, re.M):
        problems.append('bdm-guard-nova-compute --version: %r' % (
            out.stdout + out.stderr)[:200])
    conf = os.path.join(cwd, 'bad.conf')
    logfile = os.path.join(cwd, 'nova-compute.log')
    with open(conf, 'w') as f:
        f.write('[DEFAULT]\nlog_file = %s\n[bdm_guard]\n'
                'poll_multiplier = 9\n' % logfile)
    out = subprocess.run([script, '--config-file', conf],
                         capture_output=True, text=True, cwd=cwd, env=env,
                         timeout=120)
    with open(log, 'a') as f:
        f.write('$ bdm-guard-nova-compute --config-file bad.conf -> %d\n'
                '%s%s\n' % (out.returncode, out.stdout, out.stderr))
    lines = out.stderr.splitlines()
    logged = open(logfile).read() if os.path.exists(logfile) else ''
    if (out.returncode != 2 or len(lines) != 1
            or 'poll_multiplier' not in lines[0]
            or 'poll_multiplier' not in logged):
        problems.append('a [bdm_guard] value out of range did not fail '
                        'closed (exit %d, stderr %r, log %r)' % (
                            out.returncode, out.stderr[:300], logged[:300]))
    return problems


def layer_over(venv, layer, pth, log):
    """A new virtualenv ``layer`` that sees ``venv``'s packages.

    A ``.pth`` file named ``pth`` in the layer's site-packages adds the
    base venv's (as an image layer sees the one below it).

    :returns: ``(python, site-packages)`` of the layer.
    :raises RuntimeError: the venv could not be created.
    """
    python = os.path.join(venv, 'bin', 'python')
    if run([python, '-m', 'venv', layer], log):
        raise RuntimeError('venv creation failed: %s' % layer)
    base = glob.glob(os.path.join(venv, 'lib', 'python3*',
                                  'site-packages'))[0]
    site = glob.glob(os.path.join(layer, 'lib', 'python3*',
                                  'site-packages'))[0]
    with open(os.path.join(site, pth), 'w') as f:
        f.write(base + '\n')
    return os.path.join(layer, 'bin', 'python'), site


def kolla_layer(venv, constraints, release, log):
    """Build the Dockerfile snippet's Python layer on top of ``venv``.

    The layer is a new virtualenv that sees the nova venv's packages (a
    ``.pth`` file: the base image), into which the snippet's own
    ``pip install`` line runs with the image paths mapped to this
    machine's. Returns problems.
    """
    with open(DOCKERFILE) as f:
        text = f.read().replace('\\\n', ' ')
    runs = [line for line in text.splitlines()
            if line.startswith('RUN ') and 'pip install ' in line]
    if len(runs) != 1:
        return ['expected one RUN ... pip install line in %s' % DOCKERFILE]
    args = shlex.split(runs[0][len('RUN '):].split('&&')[0])
    i = args.index('install')
    if not args[i - 1].endswith('pip') or \
            args[0] != '/var/lib/kolla/venv/bin/pip':
        return ['the RUN line does not use kolla venv pip: %s' % args[:i]]
    mapping = {'/requirements/upper-constraints.txt': constraints,
               '/tmp/bdm-guard': REPO}
    pip_args = [mapping.get(a, a) for a in args[i + 1:]]
    unknown = [a for a in pip_args if a.startswith('/') and a not in
               mapping.values()]
    if unknown:
        return ['unmapped image paths in the RUN line: %s' % unknown]
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        layer = os.path.join(tmp, 'layer')
        python, site = layer_over(venv, layer, 'zz-nova-base-image.pth', log)
        if run([python, '-m', 'pip', 'install', '--quiet'] + pip_args,
               log):
            return ['the layer pip install failed']
        env = dict(os.environ)
        env.pop('PYTHONPATH', None)
        check = ('import bdm_guard, nova; from bdm_guard.nova import guard; '
                 'assert bdm_guard.__file__.startswith("%s"), '
                 'bdm_guard.__file__; '
                 'print(guard.check())' % site)
        if run([python, '-c', check], log, cwd=tmp, env=env):
            problems.append('import check in the layer failed')
        if not os.path.exists(os.path.join(layer, 'bin',
                                           'bdm-guard-nova-compute')):
            problems.append('the layer has no bdm-guard-nova-compute')
    return problems


def boot_extra():
    """The requirements of :data:`BOOT_REQUIREMENTS` (list of str)."""
    with open(BOOT_REQUIREMENTS) as f:
        lines = [line.split(' #', 1)[0].strip() for line in f]
    return [line for line in lines if line and not line.startswith('#')]


def lab_problem():
    """Why this interpreter cannot host the boot's cinder; None if it can."""
    for module in ('cinder', 'bdm_guard_lab'):
        if importlib.util.find_spec(module) is None:
            return ('%s is not importable here: run it as tox -e '
                    'nova-compat, which installs bdm-guard[lab]' % module)
    return None


def run_boot(cmd, log, cwd, env):
    """Run the boot in its own session; kill all of it after a timeout.

    The boot starts cinder and nova children of its own: on a timeout the
    whole process group goes, not only the boot.

    :returns: the exit code, or None after :data:`BOOT_TIMEOUT`.
    """
    with open(log, 'a') as out:
        out.write('$ %s\n' % shlex.join(cmd))
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                cwd=cwd, env=env, start_new_session=True)
        try:
            return proc.wait(BOOT_TIMEOUT)
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(15)
                    break
                except subprocess.TimeoutExpired:
                    continue
            return None


def build_boot_layer(venv, constraints, release, lab_wheel, log):
    """The boot layer over ``venv``, unless cached; returns its python.

    :returns: ``(python, seconds, cached)``.
    :raises RuntimeError: the layer could not be built.
    """
    placement = 'openstack-placement==%s' % RELEASES[release][3]
    digest = hashlib.sha256(repr((boot_extra(), placement)).encode()
                            ).hexdigest()[:8]
    layer = '%s-boot-%s' % (venv, digest)
    python = os.path.join(layer, 'bin', 'python')
    ready = os.path.join(layer, '.nova-compat-ready')
    if os.path.exists(ready):
        with open(ready) as f:
            seconds = json.load(f)['install_seconds']
        _install_lab(python, lab_wheel, log)
        return python, seconds, True
    shutil.rmtree(layer, ignore_errors=True)
    start = time.monotonic()
    layer_over(venv, layer, 'zz-nova-venv.pth', log)
    # bdm-guard is the nova venv's: only nova's functional framework comes
    # in, within the release's constraints.
    if run([python, '-m', 'pip', 'install', '--quiet', '-c', constraints,
            placement, *boot_extra()], log):
        raise RuntimeError('installing %s into the boot layer failed'
                           % BOOT_REQUIREMENTS)
    seconds = time.monotonic() - start
    # The lab's code for its nova child, without the lab's dependencies
    # (cinder 29, nova 34): not cached, it changes with the tree.
    _install_lab(python, lab_wheel, log)
    with open(ready, 'w') as f:
        json.dump({'install_seconds': seconds}, f)
    return python, seconds, False


def _install_lab(python, lab_wheel, log):
    if run([python, '-m', 'pip', 'install', '--quiet', '--force-reinstall',
            '--no-deps', lab_wheel], log):
        raise RuntimeError('installing bdm-guard-lab into the boot layer '
                           'failed')


def real_nova_boot(venv, constraints, release, lab_wheel, log, row):
    """Step 5; returns the row's boot text (``FAILED ...`` on failure).

    Every release of :data:`RELEASES` boots; a release the lab's nova
    does not know (:mod:`bdm_guard_lab.nova.releases`) fails, saying so.
    """
    problem = lab_problem()
    if problem:
        return 'FAILED (%s)' % problem
    try:
        python, row['boot_install'], row['boot_cached'] = \
            build_boot_layer(venv, constraints, release, lab_wheel, log)
    except RuntimeError as exc:
        return 'FAILED (%s)' % exc
    # cinder's and nova's logs, kept by the lab when the boot ends.
    logs = log[:-len('.log')] + '-boot-logs'
    shutil.rmtree(logs, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'boot.json')
        env = dict(os.environ, BDM_GUARD_LAB_LOG_DIR=logs)
        env.pop('PYTHONPATH', None)
        code = run_boot([sys.executable, '-m', REAL_NOVA_BOOT,
                         '--nova-python', python, '--out', out], log,
                        tmp, env)
        if code is None:
            return 'FAILED (no result within %d s; logs: %s)' % (
                BOOT_TIMEOUT, logs)
        try:
            with open(out) as f:
                result = json.load(f)
        except (OSError, ValueError):
            return 'FAILED (exit %d, no result; logs: %s)' % (code, logs)
    with open(log, 'a') as f:
        f.write('boot result: %s\n' % json.dumps(result, default=str))
    if result['ok'] and code == 0:
        return ('ok in %.0f s (%s; create answer lost, reads lagging: '
                'ACTIVE, 1 volume, none left)' % (
                    result['seconds'], result['nova']['concurrency']))
    return 'FAILED (%s; cinder and nova logs: %s)' % (
        '; '.join(result['problems'] or ['exit %d' % code]), logs)


def one_release(release, workdir, wheels):
    wheel, lab_wheel = wheels
    constraints = constraints_file(release, workdir)
    python = find_python(release)
    log = os.path.join(workdir, 'nova-compat-%s.log' % release)
    with open(log, 'w'):
        pass
    row = {'release': release, 'nova': nova_pin(release),
           'constraints': RELEASES[release][0],
           'python': RELEASES[release][2], 'install': None,
           'cached': False, 'tests': None, 'packaging': [], 'boot': None,
           'boot_install': None, 'boot_cached': False, 'ok': False,
           'log': log, 'seconds': None}
    start = time.monotonic()
    if python is None:
        row['error'] = 'no Python %s on this machine' % row['python']
        return row
    venv = os.path.join(workdir, 'nova-compat-%s-%s'
                        % (release, cache_key(constraints, python)))
    try:
        row['install'], row['cached'] = build_venv(
            venv, constraints, nova_pin(release), python, log)
        install_bdm_guard(venv, constraints, wheel, log)
        row['tests'] = unit_tests(venv, log)
        row['packaging'] = (installed_checks(venv, release, log) +
                            kolla_layer(venv, constraints, release, log))
        row['boot'] = real_nova_boot(venv, constraints, release, lab_wheel,
                                     log, row)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        row['error'] = str(exc)
        return row
    finally:
        row['seconds'] = time.monotonic() - start
    t = row['tests']
    row['ok'] = (t['run'] > 0 and not t['failures'] and not t['errors'] and
                 not t['skipped'] and not row['packaging'] and
                 not row['boot'].startswith('FAILED'))
    return row


def summary(row):
    t = row['tests'] or {'run': 0, 'failures': 0, 'errors': 0, 'skipped': 0}
    passed = t['run'] - t['failures'] - t['errors'] - t['skipped']
    install = ('%.0f s%s' % (row['install'], ' (cached)' if row['cached']
                             else '')) if row['install'] is not None else '-'
    if row.get('boot_install') is not None:
        install += ' + boot layer %.0f s%s' % (
            row['boot_install'], ' (cached)' if row['boot_cached'] else '')
    return ('nova-compat: nova %s (%s, %s constraints, Python %s) %s in '
            '%s: install %s; tests %d run, %d passed, %d skipped; '
            'packaging %s; real-nova boot: %s%s' % (
                row['release'], row['nova'], row['constraints'],
                row['python'], 'OK' if row['ok'] else 'FAILED',
                '%.0f s' % row['seconds'] if row['seconds'] is not None
                else '-', install, t['run'], passed,
                t['skipped'], '; '.join(row['packaging']) or 'ok',
                row['boot'] or '-',
                '' if row['ok'] else ' (log: %s%s)' % (
                    row['log'], '; ' + row['error'] if row.get('error')
                    else '')))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('releases', nargs='*',
                        help='nova major releases (default: all)')
    parser.add_argument('--releases', dest='releases_opt', default='',
                        help='comma-separated nova major releases')
    parser.add_argument('--workdir', default=os.path.join(REPO, '.tox'),
                        help='where the cached virtualenvs live')
    args = parser.parse_args(argv)
    wanted = args.releases + [r for r in args.releases_opt.split(',') if r]
    available = releases_available()
    unknown = [r for r in wanted if r not in available]
    if unknown:
        parser.error('nova %s is not a release of RELEASES (have: %s)'
                     % (', '.join(unknown), ', '.join(available)))
    args.releases = wanted or available
    # The checks run some commands from other folders.
    args.workdir = os.path.abspath(args.workdir)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.makedirs(args.workdir, exist_ok=True)
    start = time.monotonic()
    wheels = build_wheel(args.workdir,
                         os.path.join(args.workdir, 'nova-compat-dist.log'))
    rows = []
    for release in args.releases:
        print('nova-compat: nova %s ...' % release, flush=True)
        rows.append(one_release(release, args.workdir, wheels))
        print(summary(rows[-1]), flush=True)
    print('== nova-compat summary (%.0f s) ==' % (time.monotonic() - start))
    for row in rows:
        print(summary(row))
    ok = sum(1 for r in rows if r['ok'])
    print('nova-compat: releases %d ok, %d failed' % (ok, len(rows) - ok))
    # One closing line for the tests of all releases; a skip, a packaging
    # problem or a failed boot counts as a failure.
    passed = failed = 0
    for row in rows:
        t = row['tests'] or {'run': 0, 'failures': 0, 'errors': 1,
                             'skipped': 0}
        bad = t['failures'] + t['errors'] + t['skipped']
        passed += t['run'] - bad
        failed += bad + len(row['packaging']) + (
            1 if (row['boot'] or '').startswith('FAILED') else 0)
    print('nova-compat: %d passed, %d failed' % (passed, failed))
    return 0 if ok == len(rows) else 1


if __name__ == '__main__':
    sys.exit(main())
