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

"""Stream the lines of plain, rotated and gzip-compressed log files.

Memory stays bounded whatever the file: lines are read one at a time with a
length cap (:data:`MAX_LINE` bytes), and a longer "line" (a binary file has
few newlines) is skipped in :data:`MAX_LINE` chunks. Lines that are not
UTF-8 text, or that hold control characters other than tab, carriage
return and escape (colour codes), are counted as garbage and skipped; a
file is "mostly binary" only from those, never from long lines of text.
Regular files, pipes and standard input are read (:func:`open_log`);
journald's ``short``, ``short-iso`` and ``short-precise`` prefixes are
removed by :func:`journal_prefix` (``-o cat`` needs nothing).
"""

import dataclasses
import gzip
import os
import re
import stat
import sys
import zlib

from bdm_guard import exception

#: Longest line kept, in bytes; oslo.log lines with a request body are a
#: few KiB.
MAX_LINE = 64 * 1024
#: Read buffer, in bytes.
BUFFER = 1024 * 1024
_GZIP_MAGIC = b'\x1f\x8b'
_CONTROL = re.compile(rb'[\x00-\x08\x0a-\x0c\x0e-\x1a\x1c-\x1f\x7f]')
# nova-compute.log.1, cinder-api.log.2.gz, api.log-20260419.gz
_ROTATED = re.compile(r'^(?P<base>.+?\.log)(?:[.-](?P<index>\d+))?'
                      r'(?:\.gz)?$')


@dataclasses.dataclass
class FileStats:
    """What reading one file saw.

    :ivar file: the path (str).
    :ivar lines: lines read, garbage included.
    :ivar garbage_lines: lines skipped as binary, non-UTF-8 or too long.
    :ivar long_lines: of those, the lines over :data:`MAX_LINE` bytes
        (text, not binary).
    :ivar error: why the file was not read, or stopped early (str), or
        None.
    :ivar service: ``nova-compute`` or ``cinder-api`` when the file's
        logger names or events show which it is, else None.
    :ivar journal: the lines carry journalctl's prefix (removed).
    """

    file: str
    lines: int = 0
    garbage_lines: int = 0
    long_lines: int = 0
    error: str = None
    service: str = None
    journal: bool = False


# journalctl -o short-iso / short-precise / short: "<time> <host>
# <identifier>[<pid>]: " before the message (oslo.log's whole line when the
# service logs to the journal, use_journal = True).
_JOURNAL = re.compile(
    r'^(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?'
    r'(?:Z|[+-]\d\d:?\d\d)?|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d'
    r'(?:\.\d+)?) \S+ [^\s:\[]+(?:\[\d+\])?: ')


def journal_prefix(line):
    """The length of ``line``'s journalctl prefix, or 0 (str -> int)."""
    match = _JOURNAL.match(line)
    return match.end() if match else 0


def source_of(path):
    """The log a file belongs to, its rotation suffix removed.

    ``/var/log/nova/nova-compute.log.2.gz`` and
    ``/var/log/nova/nova-compute.log`` are both
    ``/var/log/nova/nova-compute.log``, so that a request logged across a
    rotation is still one request.
    """
    head, name = os.path.split(path)
    match = _ROTATED.match(name)
    return os.path.join(head, match.group('base')) if match else path


def rotation_order(paths):
    """Sort ``paths`` so that each log's oldest rotation comes first.

    For example ``x.log.3.gz``, ``x.log.2.gz``, ``x.log.1``, ``x.log``.
    """
    def key(path):
        match = _ROTATED.match(os.path.basename(path))
        index = int(match.group('index')) if match and match.group(
            'index') else 0
        # Date suffixes (-20260419) sort oldest first as they are.
        index = -index if index < 10000 else index
        return source_of(path), index == 0, index
    return sorted(paths, key=key)


_KINDS = ((stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a FIFO'),
          (stat.S_ISCHR, 'a character device'),
          (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'))


def _kind(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return 'not a regular file'


#: The path that means standard input.
STDIN = '-'


class _Unclosed:
    """Standard input for reading, left open when "closed"."""

    def __init__(self, f):
        self._f = f

    def __getattr__(self, name):
        return getattr(self._f, name)

    def close(self):
        pass


def open_log(path):
    """Open a log for binary reading, gunzipping when it is gzip data.

    Regular files, pipes and FIFOs (``<(journalctl ...)``, ``mkfifo``) and
    standard input (``-``) are read, once, as streams; a device
    (``/dev/zero``), a socket or a directory is refused at once. The file
    is opened without blocking (a FIFO without a writer would otherwise
    hang the open; read, it then ends at once) and checked with ``fstat``,
    so a symlink or a file swapped after a ``stat`` cannot slip through.
    The gzip check reads the magic bytes, not the file name.

    :param path: file path (str), or ``-`` for standard input.
    :returns: a binary file object.
    :raises bdm_guard.exception.UnreadableInput: missing, unreadable, or
        neither a regular file nor a pipe.
    """
    if path == STDIN:
        f = _Unclosed(sys.stdin.buffer)
        try:
            magic = f.peek(2)[:2] if hasattr(f._f, 'peek') else b''
        except (OSError, ValueError) as exc:
            raise exception.UnreadableInput(path=path, reason=str(exc))
        if magic == _GZIP_MAGIC:
            return gzip.GzipFile(fileobj=f, mode='rb')
        return f
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise exception.UnreadableInput(path=path,
                                        reason=exc.strerror or str(exc))
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise exception.UnreadableInput(
                path=path, reason='%s, not a regular file or a pipe: give '
                'log files' % _kind(mode))
        os.set_blocking(fd, True)
        f = os.fdopen(fd, 'rb', buffering=BUFFER)
    except BaseException:
        os.close(fd)
        raise
    try:
        magic = f.peek(2)[:2]
    except OSError as exc:
        f.close()
        raise exception.UnreadableInput(path=path,
                                        reason=exc.strerror or str(exc))
    if magic == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode='rb')
    return f


def iter_lines(path, stats, f=None):
    """Yield the good lines of the log at ``path``, as str.

    :param path: file path (str); gzip data is decompressed.
    :param f: the file already opened by :func:`open_log` (a pipe can be
        opened only once), or None to open ``path``.
    :param stats: a :class:`FileStats`, updated as lines are read; a
        truncated gzip stream or a read error ends the file early with
        ``stats.error`` set (the lines before it are still yielded).
    :raises bdm_guard.exception.UnreadableInput: the file cannot be
        opened.
    """
    f = open_log(path) if f is None else f
    try:
        while True:
            try:
                raw = f.readline(MAX_LINE)
            except (EOFError, OSError, zlib.error) as exc:
                stats.error = 'read stopped: %s' % (
                    'truncated gzip stream' if isinstance(exc, EOFError)
                    else exc)
                return
            if not raw:
                binary = stats.garbage_lines - stats.long_lines
                if binary * 2 > stats.lines:
                    stats.error = 'mostly binary: not a log file?'
                return
            stats.lines += 1
            if not raw.endswith(b'\n') and len(raw) >= MAX_LINE:
                # Long text, not binary: counted apart (see FileStats).
                stats.garbage_lines += 1
                stats.long_lines += 1
                _skip_rest(f, stats)
                continue
            raw = raw.rstrip(b'\r\n')
            if _CONTROL.search(raw):
                stats.garbage_lines += 1
                continue
            if raw.isascii():
                yield raw.decode('ascii')
                continue
            try:
                yield raw.decode('utf-8')
            except UnicodeDecodeError:
                stats.garbage_lines += 1
    finally:
        f.close()


def _skip_rest(f, stats):
    """Skip the rest of an over-long line."""
    while True:
        try:
            chunk = f.readline(MAX_LINE)
        except (EOFError, OSError, zlib.error) as exc:
            stats.error = 'read stopped: %s' % exc
            return
        if not chunk or chunk.endswith(b'\n'):
            return
