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

"""Local helper processes of the lab: loopback ports and stopping.

Shared by the lab's cinder, MariaDB/Galera and haproxy fixtures.
"""

import socket
import subprocess


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
