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

"""Give a verdict on every POST /volumes nova-compute sent.

The logs of every file are merged by time (:func:`heapq.merge`) and the
events of :mod:`bdm_guard.logscan.events` are grouped by global request id.
A group is judged once no line has touched it for ``window`` seconds of log
time, then dropped: memory holds only the requests of the last window.

Matching cinder-api POSTs to nova's POSTs, in order of trust:

1. nova's ``RESP`` names the cinder-api request id that answered;
2. the global request id (nova sends it as ``X-OpenStack-Request-ID``):
   a cinder POST goes to the nova POST of that id that was in flight;
3. without a global request id in cinder's log: the normalised URL and the
   time (the cinder POST must fall within the nova POST's flight, give or
   take ``skew`` seconds of clock difference between hosts).

Verdicts: ``duplicate_post`` (two or more cinder POSTs for one nova POST),
``ok`` (one, and nova got cinder's answer), ``response_lost`` (one, but
nova got no answer from cinder), ``lost_before_cinder`` (none, and nova
failed), ``unknown`` (anything else: a log is missing or cut).
"""

import collections
import heapq
import os

from bdm_guard import exception
from bdm_guard.logscan import events as logevents
from bdm_guard.logscan import format as logformat
from bdm_guard.logscan import read as logread
from bdm_guard.logscan import state as logstate

#: Lines of each file checked against the log format.
FORMAT_SAMPLE = 200
VERDICTS = ('ok', 'lost_before_cinder', 'response_lost', 'duplicate_post',
            'unknown')
#: Why a scan that found no nova POST proves nothing.
NO_NOVA_POST = ('no nova POST /volumes found in the nova-compute logs '
                '— is nova-compute running with debug = True?')
NO_CINDER_LOG = ('no cinder-api log recognised: every POST that reached '
                 'cinder will be "unknown"; add the cinder-api logs of '
                 'every controller')
_CINDER_KINDS = ('cinder_post', 'cinder_status', 'cinder_seen')
_NOVA_KINDS = ('nova_post', 'nova_resp', 'nova_retry', 'nova_fail',
               'not_created')


def make_parser(context_format=None, default_format=None,
                exception_prefix=None, date_format=None):
    """Build the line parser from oslo.log format options.

    Each argument left None takes oslo.log's default for the option of the
    same name (``logging_context_format_string``,
    ``logging_default_format_string``, ``logging_exception_prefix``,
    ``log_date_format``).

    :returns: a :class:`bdm_guard.logscan.events.EventParser`.
    :raises bdm_guard.exception.InvalidLogFormat: a format without
        ``%(asctime)s`` and ``%(message)s``, or an unsupported date
        directive.
    """
    defaults = logformat.oslo_defaults()
    date_format = date_format or defaults['log_date_format']
    formats = (
        context_format or defaults['logging_context_format_string'],
        default_format or defaults['logging_default_format_string'],
        (exception_prefix or defaults['logging_exception_prefix'])
        + '%(message)s')
    regexes = [logformat.compile_format(f, date_format) for f in formats]
    return logevents.EventParser(regexes, logformat.TimeParser(date_format))


def _service(logger=None, kind=None):
    """``cinder-api``, ``nova-compute`` or None: a log's service.

    :param logger: a logger name (str) or None.
    :param kind: an event kind (see :mod:`bdm_guard.logscan.events`).
    """
    if (logger or '').startswith('cinder.api') or kind in _CINDER_KINDS:
        return 'cinder-api'
    if (logger or '').startswith('nova.') or kind in _NOVA_KINDS:
        return 'nova-compute'
    return None


def _file_events(path, parser, stats, f=None):
    source = logread.source_of(path)
    sampled = matched = 0
    journal = None
    for line in logread.iter_lines(path, stats, f):
        if journal is None and line.strip() and not line.startswith('-- '):
            # journalctl output: every line has the prefix (short-iso,
            # short, short-precise); "-- Boot ... --" lines are skipped.
            journal = bool(logread.journal_prefix(line))
            stats.journal = journal
        if journal:
            cut = logread.journal_prefix(line)
            if not cut:
                continue
            line = line[cut:]
        if sampled < FORMAT_SAMPLE:
            sampled += 1
            name = parser.logger_name(line)
            matched += name is not None
            stats.service = stats.service or _service(logger=name)
        event = parser.parse(line, source)
        if event is not None:
            if stats.service is None:
                stats.service = _service(kind=event[1])
            yield event + (path,)
    if sampled and not matched and not stats.error:
        stats.error = ('none of the first %d lines is in the log format: '
                       'not an oslo.log file, or give its format' % sampled)
    elif stats.lines and stats.long_lines == stats.lines:
        stats.error = ('every line is longer than %d KiB (text, not binary):'
                       ' not an oslo.log file?' % (logread.MAX_LINE // 1024))


class Scan:
    """One scan over a set of log files.

    :param paths: log file paths (plain or gzip, rotated or not), nova-
        compute and cinder-api logs mixed in any order.
    :param parser: a :class:`bdm_guard.logscan.events.EventParser`.
    :param window: seconds of log time a request stays open after its last
        line (also the longest a POST may take); default 300.
    :param skew: seconds of clock difference allowed between hosts when
        matching by time; default 5.
    """

    def __init__(self, paths, parser, window=300.0, skew=5.0):
        self.warnings = []
        self.paths = logread.rotation_order(self._unique(paths))
        self.parser = parser
        self.state = logstate.State(window, skew)
        self.stats = [logread.FileStats(path) for path in self.paths]

    def _unique(self, paths):
        """``paths`` without the files given more than once.

        Files are compared by ``st_dev`` and ``st_ino``, so a second name
        (a symlink, a hard link, ``./x`` and ``x``) counts as the same
        file; each one dropped adds a warning. Paths that cannot be
        stat'ed are kept: opening them fails later, with the reason.
        """
        seen, unique = {}, []
        for path in paths:
            try:
                info = os.stat(path)
            except OSError:
                unique.append(path)
                continue
            key = (info.st_dev, info.st_ino)
            if key in seen:
                self.warnings.append('%s is the same file as %s: read once'
                                     % (path, seen[key]))
                continue
            seen[key] = path
            unique.append(path)
        return unique

    def posts(self):
        """Yield one dict per nova POST /volumes, as each is judged.

        Keys: ``global_request_id``, ``verdict``, ``instance``,
        ``nova_file``, ``cinder_files``, ``time`` (of nova's REQ line,
        ``YYYY-MM-DD HH:MM:SS.mmm`` in the logs' zone), ``attempts``
        (1 + keystoneauth resends),
        ``nova_status`` (the HTTP status nova saw, or None),
        ``cinder_request_ids``, ``cinder_statuses`` (the HTTP status each
        cinder-api POST returned, or None) and ``matched_by``.

        ``-`` is standard input; pipes and FIFOs are read as streams
        (memory stays bounded: lines are judged as log time passes). A
        file that cannot be opened (missing, unreadable, a device such as
        ``/dev/zero``, refused at once, never read) is
        left out with its reason in its :class:`FileStats` ``error``; the
        other files are still scanned, so the POSTs they hold are judged.
        """
        streams = []
        for path, stats in zip(self.paths, self.stats):
            try:
                # Opened once and kept: a pipe or stdin cannot be reopened.
                f = logread.open_log(path)
            except exception.UnreadableInput as exc:
                stats.error = exc.kwargs.get('reason') or str(exc)
                continue
            streams.append(_file_events(path, self.parser, stats, f))
        for event in heapq.merge(*streams, key=lambda e: e[0]):
            yield from self.state.feed(event)
        yield from self.state.flush()

    def summary(self):
        """Counts over the whole scan (call after :meth:`posts`).

        :returns: a dict: ``posts``, ``verdicts`` ({verdict: count}),
            ``posts_reached_cinder`` (nova POSTs with at least one cinder
            POST), ``cinder_posts``, ``cinder_posts_unmatched`` (cinder
            POSTs of no nova POST in the logs: another compute host, or a
            user),
            ``volume_not_created`` (count, statuses, waited_seconds and
            attempts min/max), ``lines``, ``garbage_lines``,
            ``unparsed_lines``, ``files`` (per-file counts, service and
            errors) and ``warnings`` (list of str: files given twice, no
            cinder-api log, no nova POST).
        """
        state = self.state
        failures = list(state.not_created.values())
        warnings = list(self.warnings)
        if not any(s.service == 'cinder-api' for s in self.stats):
            warnings.append(NO_CINDER_LOG)
        if not state.verdicts:
            warnings.append(NO_NOVA_POST)
        return {
            'posts': sum(state.verdicts.values()),
            'verdicts': {v: state.verdicts.get(v, 0) for v in VERDICTS},
            'posts_reached_cinder': state.reached_cinder,
            'cinder_posts': state.cinder_posts,
            'cinder_posts_unmatched': state.cinder_unmatched,
            'volume_not_created': _not_created_summary(failures),
            'lines': sum(s.lines for s in self.stats),
            'garbage_lines': sum(s.garbage_lines for s in self.stats),
            'unparsed_lines': self.parser.unparsed,
            'files': [vars(s) for s in self.stats],
            'warnings': warnings,
        }


def _not_created_summary(failures):
    """Summarise ``[(seconds, attempts, status)]``."""
    if not failures:
        return {'count': 0, 'statuses': {}, 'waited_seconds': None,
                'attempts': None}
    seconds = [f[0] for f in failures]
    attempts = [f[1] for f in failures]
    return {
        'count': len(failures),
        'statuses': dict(collections.Counter(f[2] for f in failures)),
        'waited_seconds': {'min': min(seconds), 'max': max(seconds),
                           'mean': round(sum(seconds) / len(seconds), 1)},
        'attempts': {'min': min(attempts), 'max': max(attempts)},
    }


def scan(paths, parser=None, window=300.0, skew=5.0):
    """Scan ``paths`` and return ``{"posts": [...], "summary": {...}}``.

    Posts are sorted by time. See :class:`Scan` for the arguments and the
    post keys; a file that cannot be read is reported in
    ``summary["files"]``, never raised. ``parser`` defaults to
    :func:`make_parser` ``()`` (oslo.log's default formats).
    """
    run = Scan(paths, parser or make_parser(), window, skew)
    posts = sorted(run.posts(), key=lambda p: (p['time'], p['nova_file']))
    return {'posts': posts, 'summary': run.summary()}
