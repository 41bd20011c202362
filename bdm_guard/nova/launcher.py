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

"""``bdm-guard-nova-compute``: nova-compute with bdm-guard, without patches.

Before nova starts, it checks everything it will need, in this order, and
changes nothing until all of it holds:

1. nova imports (``nova.cmd.compute``);
2. every library bdm-guard requires is installed at a version its
   requirements admit (read from bdm-guard's own metadata);
3. bdm-guard's modules import;
4. nova is of a supported release whose code matches
   (:func:`bdm_guard.nova.guard.check`);
5. every ``[bdm_guard]``, ``[bdm_guard_db]`` and ``[bdm_guard_events]``
   value in nova's config files is one oslo.config accepts
   (:func:`bdm_guard.opts.check_config`).

Then it installs the guard (:func:`bdm_guard.nova.guard.install`: both
methods replaced, or nothing) and runs nova's own
``nova.cmd.compute.main`` with the same arguments as ``nova-compute``. Right
after nova sets up its logging, it logs::

    bdm-guard <version> is active in nova-compute <nova version>
    (mode: launcher) ...

When a check fails, nova-compute is not started: the launcher writes one
line that names what is wrong (the library and the version bdm-guard
needs, the nova release, or the option and its range) to stderr (the
journal, under systemd) and appends it to nova's log file (``--log-file``,
``--log-dir``, ``[DEFAULT] log_file``/``log_dir``, as oslo.log would name
it), and exits with status 2 (:data:`EXIT_INCOMPATIBLE`; the systemd drop-in
does not restart on it).

``--version`` prints ``bdm-guard <version> (nova <version>)``.

Unlike other modules this one imports nothing at module level:
``nova.cmd.compute`` must be the first import of the process, because it
applies (or forbids) eventlet monkey patching before urllib3 and
oslo.context are imported, as nova's own console script does.
"""

import sys

#: Exit status when nova cannot be guarded.
EXIT_INCOMPATIBLE = 2
#: The nova releases the guard supports, as a requirement
#: (:data:`bdm_guard.nova.releases.SUPPORTED_NOVA`, setup.cfg's ``nova``
#: extra).
NOVA_REQUIREMENT = 'nova>=29.0.0,<35'
#: bdm-guard's distribution name.
DIST = 'bdm-guard'
#: What the refusal line ends with.
_REFUSED = 'nova-compute was not started'


class Refused(Exception):
    """A pre-start check failed; the message is the operator's line."""


def _version(dist):
    """The installed version of distribution ``dist`` (str), or None.

    Python 3.9's :mod:`importlib.metadata` does not normalise ``.`` in a
    name, so ``oslo.config`` misses the ``oslo_config-*.dist-info`` folders
    of recent wheels (PEP 503 / the binary distribution format's name
    escaping); the escaped name is tried too.
    """
    import importlib.metadata
    import re
    for name in dict.fromkeys((dist, re.sub(r'[-_.]+', '_', dist))):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return None


def _requirements():
    """bdm-guard's own requirements that apply here (no extras).

    :returns: a list of :class:`packaging.requirements.Requirement`;
        empty when bdm-guard's metadata is not installed (a source tree).
    """
    import importlib.metadata

    from packaging import requirements
    try:
        lines = importlib.metadata.requires(DIST) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    result = []
    for line in lines:
        req = requirements.Requirement(line)
        if req.marker is not None and not req.marker.evaluate({'extra': ''}):
            continue
        result.append(req)
    return result


def _normal(name):
    return name.lower().replace('_', '-').replace('.', '-')


def check_requirements(requirements=None, version=_version):
    """Raise :class:`Refused` for the first library of the wrong version.

    :param requirements: :class:`packaging.requirements.Requirement` list;
        default bdm-guard's own (:func:`_requirements`).
    :param version: ``dist name -> installed version or None``.
    :raises Refused: a library is missing or of a version outside the
        requirement; the message names it and the version needed.
    """
    mine = _version(DIST) or 'unknown'
    for req in (_requirements() if requirements is None else requirements):
        found = version(req.name)
        if found is None:
            raise Refused('%s is not installed: bdm-guard %s needs %s' % (
                req.name, mine, req))
        if req.specifier and not req.specifier.contains(found,
                                                        prereleases=True):
            raise Refused('%s %s is installed: bdm-guard %s needs %s' % (
                req.name, found, mine, req))


#: Import name -> distribution of the libraries bdm-guard imports.
_DISTS = {'keystoneauth1': 'keystoneauth1', 'oslo_config': 'oslo.config',
          'oslo_log': 'oslo.log', 'oslo_utils': 'oslo.utils',
          'oslo_messaging': 'oslo.messaging',
          'cinderclient': 'python-cinderclient', 'tenacity': 'tenacity',
          'yaml': 'PyYAML', 'cliff': 'cliff',
          'debtcollector': 'debtcollector', 'requests': 'requests',
          'packaging': 'packaging'}


def _import_bdm_guard():
    """Import what nova-compute will run; :class:`Refused` if it fails."""
    import importlib
    import traceback
    for module in ('bdm_guard.opts', 'bdm_guard.cinder', 'bdm_guard.wait',
                   'bdm_guard.create', 'bdm_guard.nova.guard',
                   'bdm_guard.nova.client', 'bdm_guard.nova.dropin'):
        try:
            importlib.import_module(module)
        except (ImportError, AttributeError) as exc:
            # The library at fault: the ImportError's module, else the
            # innermost frame outside bdm_guard.
            names = [getattr(exc, 'name', None) or '']
            names += [f.filename for f in
                      traceback.extract_tb(exc.__traceback__)]
            needed = ''
            for name in names:
                hits = [d for i, d in _DISTS.items()
                        if name.split('.')[0] == i or '/%s/' % i in name]
                if hits:
                    req = next((r for r in _requirements()
                                if _normal(r.name) == _normal(hits[0])),
                               hits[0])
                    needed = ': bdm-guard needs %s (installed: %s)' % (
                        req, _version(hits[0]) or 'none')
                    break
            raise Refused('%s cannot be imported (%s: %s)%s' % (
                module, type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else '',
                needed))


def _cli(argv):
    """``(config args, log_file, log_dir)`` from nova-compute's argv."""
    import argparse
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument('--config-file', action='append', default=[])
    parser.add_argument('--config-dir', action='append', default=[])
    parser.add_argument('--log-file', '--logfile', dest='log_file')
    parser.add_argument('--log-dir', '--logdir', dest='log_dir')
    known, _ = parser.parse_known_args(argv)
    args = []
    for path in known.config_file:
        args += ['--config-file', path]
    for path in known.config_dir:
        args += ['--config-dir', path]
    return args, known.log_file, known.log_dir


def read_config(argv):
    """nova's config files, as nova-compute would find them.

    :param argv: nova-compute's arguments (without the program).
    :returns: ``(conf, log_path)``: an :class:`oslo_config.cfg.ConfigOpts`
        with bdm-guard's options and ``[DEFAULT] log_file``/``log_dir``
        registered and the files parsed (``--config-file``/``--config-dir``,
        else oslo.config's defaults for project ``nova``), and the log file
        nova will write (str) or None.
    :raises Refused: a config file is missing or cannot be parsed.
    """
    import os

    from oslo_config import cfg

    from bdm_guard import opts
    args, log_file, log_dir = _cli(argv)
    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt('log_file', deprecated_name='logfile'),
                        cfg.StrOpt('log_dir', deprecated_name='logdir')])
    opts.register_opts(conf)
    try:
        conf(args=args, project='nova')
    except cfg.Error as exc:
        raise Refused('nova\'s configuration cannot be read: %s' % (
            str(exc).splitlines()[0][:300])) from exc
    try:
        log_file = log_file or conf.log_file
        log_dir = log_dir or conf.log_dir
    except cfg.Error:
        # ``$state_path/log`` and the like name options of nova's that
        # this ConfigOpts does not have: the refusal then goes to stderr
        # alone (nova resolves them itself when it starts).
        pass
    if log_file and log_dir:
        path = os.path.join(log_dir, log_file)
    elif log_file:
        path = log_file
    elif log_dir:
        path = os.path.join(log_dir, '%s.log' % os.path.basename(
            sys.argv[0] or 'nova-compute'))
    else:
        path = None
    return conf, path


def check_config(conf):
    """:class:`Refused` unless every bdm-guard option value is valid."""
    from bdm_guard import opts
    problems = opts.check_config(conf)
    if problems:
        raise Refused('%s%s' % (
            problems[0], '' if len(problems) == 1 else ' (and %d more: %s)' % (
                len(problems) - 1, '; '.join(
                    '[%s] %s' % (p.group, p.name) for p in problems[1:]))))


def _log_path_best_effort(argv):
    try:
        return read_config(argv)[1]
    except Exception:  # noqa: the refusal is on stderr in any case
        return _cli(argv)[1]


def refuse(reason, log_path, stderr=None):
    """Write the one refusal line; return :data:`EXIT_INCOMPATIBLE`.

    :param reason: what is wrong (str, one line).
    :param log_path: nova's log file (str) or None; the line is appended in
        oslo.log's default format, when the file can be opened.
    :param stderr: a text stream; default ``sys.stderr``.
    """
    import datetime
    import os
    line = 'bdm-guard-nova-compute: %s; %s' % (
        ' '.join(str(reason).split()), _REFUSED)
    (stderr or sys.stderr).write(line + '\n')
    if log_path:
        now = datetime.datetime.now()
        try:
            # Never follow a link, and create nova's log file only in a
            # folder this user owns (nova's own, under its unit's User=):
            # one created by root trying the launcher by hand would keep
            # nova from opening its log.
            flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW
            folder = os.path.dirname(os.path.abspath(log_path))
            if os.stat(folder).st_uid == os.geteuid():
                flags |= os.O_CREAT
            fd = os.open(log_path, flags, 0o640)
            with os.fdopen(fd, 'a') as f:
                f.write('%s.%03d %d CRITICAL %s [-] %s\n' % (
                    now.strftime('%Y-%m-%d %H:%M:%S'),
                    now.microsecond // 1000, os.getpid(), __name__, line))
        except OSError:
            pass
    return EXIT_INCOMPATIBLE


def _after_logging_setup(oslo_logging, announce):
    """Call ``announce()`` once, right after nova's ``logging.setup``."""
    original = oslo_logging.setup

    def setup(*args, **kwargs):
        oslo_logging.setup = original
        result = original(*args, **kwargs)
        announce()
        return result

    oslo_logging.setup = setup


def main(argv=None):
    """Run nova-compute with bdm-guard installed.

    :param argv: nova-compute's arguments; default ``sys.argv[1:]`` (nova
        itself reads ``sys.argv``).
    :returns: what ``nova.cmd.compute.main`` returns, 0 after
        ``--version``, or :data:`EXIT_INCOMPATIBLE` when a check failed
        (nothing was changed; the reason is on stderr and in nova's log).
    """
    argv = sys.argv[1:] if argv is None else argv
    if '--version' in argv:
        print('bdm-guard %s (nova %s)' % (_version(DIST) or 'unknown',
                                          _version('nova') or 'not installed'))
        return 0
    try:
        from nova.cmd import compute as nova_compute
    except Exception as exc:  # noqa: any failure means no nova to guard
        found = _version('nova')
        return refuse('nova cannot be imported (%s: %s): bdm-guard needs %s%s'
                      % (type(exc).__name__, str(exc).splitlines()[0][:200]
                         if str(exc) else '', NOVA_REQUIREMENT,
                         ' (installed: nova %s)' % found if found else
                         ' (nova is not installed)'),
                      _log_path_best_effort(argv))
    log_path = None
    try:
        conf, log_path = read_config(argv)
        check_requirements()
        _import_bdm_guard()
        from bdm_guard import exception
        from bdm_guard.nova import guard
        try:
            guard.check()
        except exception.NovaIncompatible as exc:
            raise Refused('%s: bdm-guard needs %s' % (
                exc, NOVA_REQUIREMENT)) from exc
        check_config(conf)
    except Refused as exc:
        return refuse(exc, log_path or _log_path_best_effort(argv))
    except Exception as exc:  # noqa: never start nova half-checked
        return refuse('a pre-start check failed (%s: %s)' % (
            type(exc).__name__, str(exc).splitlines()[0][:200]
            if str(exc) else ''), log_path or _log_path_best_effort(argv))

    from oslo_log import log as logging
    log = logging.getLogger(__name__)
    try:
        installed = guard.install(mode='launcher')
    except exception.NovaIncompatible as exc:
        return refuse(exc, log_path)

    def announce():
        log.info('bdm-guard %(version)s is active in nova-compute '
                 '%(nova)s (mode: %(mode)s); guarded: %(replaced)s',
                 {'version': installed.version,
                  'nova': installed.nova_version, 'mode': installed.mode,
                  'replaced': ', '.join(installed.replaced) or
                  'nova carries the bdm-guard patch series'})

    _after_logging_setup(logging, announce)
    return nova_compute.main()
