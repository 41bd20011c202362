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

"""Local helper processes of the lab: loopback ports, children, stopping.

Shared by the lab's cinder, nova, MariaDB/Galera, haproxy and RabbitMQ
fixtures.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: The folder that holds the ``bdm_guard_lab`` package, for a child's
#: ``PYTHONPATH``.
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The bdm-guard checkout the lab runs from (``lab/``'s parent), which holds
#: the patch series (``patches/<project>``).
REPO_ROOT = os.path.dirname(SOURCE_ROOT)

#: Where a service's logs are copied on cleanup, when set.
LOG_DIR_VARIABLE = 'BDM_GUARD_LAB_LOG_DIR'


def free_ports(count):
    """Return ``count`` distinct free TCP ports on 127.0.0.1.

    :param count: int, how many ports.
    :returns: a list of ints; the ports are free when this returns, not
        reserved.
    """
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(('127.0.0.1', 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def stop_process(proc, timeout=10.0):
    """Stop a child: SIGTERM, then SIGKILL after ``timeout`` seconds.

    :param proc: a :class:`subprocess.Popen`, or None (nothing to do).
    :param timeout: seconds to wait after SIGTERM.
    :returns: None; the child has exited (a process that had already
        exited is left as it is).
    """
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def start_child(module, state_dir, settings, *, python=None, paths=(),
                env=None, stdin=subprocess.DEVNULL, cwd=None):
    """Start a lab service child: ``python -m module <settings.json>``.

    The lab's cinder and nova run as children of the test or demo process,
    each reading its settings from a JSON file and answering on stdout.

    :param module: str, the child's module (``bdm_guard_lab.cinder.server``).
    :param state_dir: str, the service's folder: ``settings.json`` and
        ``stderr.log`` (the child's stderr) are written there.
    :param settings: a JSON-serialisable dict.
    :param python: the interpreter (default: this one).
    :param paths: folders put first on the child's ``PYTHONPATH``; None
        entries are skipped. The caller's ``PYTHONPATH`` stays last.
    :param env: the child's environment (default: this process's), to
        which ``PYTHONWARNINGS=ignore`` is added.
    :param stdin: ``subprocess.DEVNULL`` or ``subprocess.PIPE``.
    :param cwd: the child's working folder (default: this process's).
    :returns: the :class:`subprocess.Popen`, with ``stdout`` a text pipe.
    :raises OSError: the interpreter cannot be started.
    """
    path = os.path.join(state_dir, 'settings.json')
    with open(path, 'w') as stream:
        json.dump(settings, stream)
    env = dict(os.environ if env is None else env)
    env['PYTHONWARNINGS'] = 'ignore'
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (*paths, env.get('PYTHONPATH')) if p)
    with open(os.path.join(state_dir, 'stderr.log'), 'w') as stderr:
        return subprocess.Popen(
            [python or sys.executable, '-m', module, path], stdin=stdin,
            stdout=subprocess.PIPE, stderr=stderr, env=env, text=True,
            cwd=cwd)


def keep_logs(state_dir, names, prefix):
    """Copy a service's logs to ``$BDM_GUARD_LAB_LOG_DIR``, when it is set.

    :param state_dir: str, the service's folder.
    :param names: the file names to copy (missing ones are skipped).
    :param prefix: str, the kept folder's name starts with it, then the
        time (``cinder-154512-...``); the log line names it too.
    :returns: the folder the logs were copied to, or None when the
        variable is not set.
    :raises OSError: the folder cannot be made or a log cannot be copied.
    """
    keep = os.environ.get(LOG_DIR_VARIABLE)
    if not keep:
        return None
    os.makedirs(keep, exist_ok=True)
    target = tempfile.mkdtemp(
        prefix='%s-%s-' % (prefix, time.strftime('%H%M%S')), dir=keep)
    for name in names:
        source = os.path.join(state_dir, name)
        if os.path.exists(source):
            shutil.copy(source, target)
    LOG.info('The %s logs are kept in %s.', prefix, target)
    return target
