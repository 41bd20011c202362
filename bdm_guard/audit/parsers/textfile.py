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

"""Read a small text file (a config file) or refuse it with a clear error.

Config files are read whole, so their size is capped; logs are streamed by
:mod:`bdm_guard.logscan.read` instead.
"""

import re

from bdm_guard import exception

#: Largest config file read, in bytes (real nova.conf files are < 1 MiB).
MAX_CONFIG_BYTES = 16 * 1024 * 1024

# C0 control characters other than tab, LF, CR and FF: a text config never
# has them, a binary file nearly always does.
_CONTROL = re.compile(r'[\x00-\x08\x0b\x0e-\x1f\x7f]')


def read_lines(path):
    """Return the lines of the UTF-8 text file at ``path``.

    :param path: file path (str).
    :returns: a list of str, line ends kept.
    :raises bdm_guard.exception.UnreadableInput: missing or unreadable
        file, a file over :data:`MAX_CONFIG_BYTES`, invalid UTF-8, or
        control characters (a binary file).
    """
    try:
        with open(path, 'rb') as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise exception.UnreadableInput(path=path,
                                        reason=exc.strerror or str(exc))
    if len(data) > MAX_CONFIG_BYTES:
        raise exception.UnreadableInput(
            path=path, reason='larger than %d bytes; not a config file'
            % MAX_CONFIG_BYTES)
    try:
        text = data.decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        raise exception.UnreadableInput(
            path=path, reason='not UTF-8 text (byte %d); a binary file?'
            % exc.start)
    match = _CONTROL.search(text)
    if match:
        line = text.count('\n', 0, match.start()) + 1
        raise exception.UnreadableInput(
            path=path, reason='control character %r on line %d; a binary '
            'file?' % (match.group(), line))
    # Split on LF only: str.splitlines() also splits on U+2028 and friends,
    # which would shift every later line number.
    lines = [line + '\n' for line in text.split('\n')]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]
