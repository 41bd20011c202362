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

"""The bounded state of a log scan: open requests, matching and verdicts.

See :mod:`bdm_guard.logscan.api` for the matching rules. Everything held
here belongs to a request seen in the last ``window`` seconds of log time;
:meth:`State.feed` drops the rest as log time passes.
"""

import bisect
import collections
import datetime

# haproxy's own error answers carry no x-openstack-request-id.
_LB_STATUSES = (502, 503, 504)


def same_target(cinder, nova):
    """Whether a cinder POST's target may be a nova POST's.

    Paths must be equal; projects and body sizes must be equal where both
    logs show them (the cinder-api ``Create volume of <n> GB`` line gives
    its size).

    :param cinder: a cinder POST (list, see :meth:`State.feed`).
    :param nova: the nova POST's target (a
        :class:`bdm_guard.logscan.events.Target`, or a str).
    """
    theirs = cinder[4]
    if not hasattr(theirs, 'path') or not hasattr(nova, 'path'):
        return theirs == nova
    if theirs.path != nova.path:
        return False
    if None not in (theirs.project, nova.project) and (
            theirs.project != nova.project):
        return False
    size = cinder[6] if cinder[6] is not None else theirs.size
    return None in (size, nova.size) or size == nova.size


def _iso(seconds):
    """Log time (seconds, no zone) back to ``YYYY-MM-DD HH:MM:SS.mmm``."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime('%Y-%m-%d %H:%M:%S.') + '%03d' % (
        moment.microsecond // 1000)


class NovaPost:
    """One POST /volumes nova-compute sent (slots only: many are open)."""

    __slots__ = ('start', 'end', 'file', 'source', 'gid', 'rid', 'url',
                 'instance', 'status', 'resp_rid', 'failed', 'attempts',
                 'cinder', 'matched_by')

    def __init__(self, start, file, source, gid, rid, url, instance):
        self.start, self.file, self.source = start, file, source
        self.gid, self.rid, self.url, self.instance = gid, rid, url, instance
        self.end = self.status = self.resp_rid = None
        self.failed, self.attempts = False, 1
        self.cinder, self.matched_by = [], None

    def until(self, window):
        return self.end if self.end is not None else self.start + window

    def verdict(self, cinder_seen=True):
        """The verdict; ``cinder_seen``: cinder-api logs cover the POST.

        Without cinder-api logs for the POST's time, a POST no cinder line
        names proves nothing: ``unknown``, never ``lost_before_cinder``.
        """
        answered = self.status is not None
        if len(self.cinder) >= 2:
            return 'duplicate_post'
        if len(self.cinder) == 1:
            if answered:
                return 'ok'
            return 'response_lost' if self.failed else 'unknown'
        return ('lost_before_cinder' if self.failed and cinder_seen
                else 'unknown')

    def claim(self, cinder, how):
        """Take the cinder POST ``cinder`` (list) as one of this POST's."""
        cinder[5] = True
        self.cinder.append(cinder)
        self.matched_by = self.matched_by or how

    def record(self, cinder_seen=True):
        return {'global_request_id': self.gid,
                'verdict': self.verdict(cinder_seen),
                'instance': self.instance, 'nova_file': self.file,
                'cinder_files': sorted({c[1] for c in self.cinder}),
                'time': _iso(self.start), 'attempts': self.attempts,
                'nova_status': self.status,
                'cinder_request_ids': [c[2] for c in self.cinder],
                'cinder_statuses': [c[3] for c in self.cinder],
                'matched_by': self.matched_by}


class _TimeIndex:
    """Gid-less cinder POSTs by target, each list in time order.

    The time fallback looks only at the POSTs of the nova POST's target
    near its time (:func:`bisect.bisect_left`), not at every open cinder
    POST: a log without global request ids is scanned in time linear in
    its POSTs, not quadratic. ``examined`` counts the
    cinder POSTs looked at, for the tests.
    """

    def __init__(self):
        self.lists = {}   # (path, project) -> [head, [times], [posts]]
        self.examined = 0

    @staticmethod
    def _key(target):
        if hasattr(target, 'path'):
            return target.path, target.project
        return target, None

    def add(self, post):
        entry = self.lists.setdefault(self._key(post[4]), [0, [], []])
        entry[1].append(post[0])
        entry[2].append(post)

    def expire(self, post):
        """Drop ``post``, the oldest of its target (FIFO with the feed)."""
        key = self._key(post[4])
        entry = self.lists.get(key)
        if entry is None:
            return
        entry[0] += 1
        if entry[0] >= len(entry[2]):
            del self.lists[key]
        elif entry[0] > 64 and entry[0] * 2 > len(entry[2]):
            del entry[1][:entry[0]]
            del entry[2][:entry[0]]
            entry[0] = 0

    def _entries(self, target):
        path, project = self._key(target)
        if project is None:
            return [e for k, e in self.lists.items() if k[0] == path]
        return [e for e in (self.lists.get((path, project)),
                            self.lists.get((path, None))) if e]

    def nearest(self, target, lo, hi, near, wanted):
        """The free POST in ``[lo, hi]`` nearest ``near`` ``wanted`` takes.

        :returns: the cinder POST (list), or None.
        """
        best = None
        for head, times, posts in self._entries(target):
            start = max(bisect.bisect_left(times, lo), head)
            end = bisect.bisect_right(times, hi)
            middle = min(max(bisect.bisect_left(times, near), start), end)
            left, right = middle - 1, middle
            while left >= start or right < end:
                # Walk outwards, nearest first; stop past the best so far.
                if right < end and (left < start or times[right] - near
                                    < near - times[left]):
                    index, right = right, right + 1
                else:
                    index, left = left, left - 1
                distance = abs(times[index] - near)
                if best is not None and distance >= best[0]:
                    break
                self.examined += 1
                post = posts[index]
                if not post[5] and wanted(post):
                    best = (distance, post)
                    break
        return best[1] if best else None


class Group:
    __slots__ = ('nova', 'cinder', 'last')

    def __init__(self, when):
        self.nova, self.cinder, self.last = [], [], when


class State:
    """Feed events in time order; get judged posts back.

    :param window: seconds a request stays open after its last line.
    :param skew: seconds of clock difference allowed between hosts.
    """

    def __init__(self, window, skew):
        self.window, self.skew = window, skew
        self.groups = {}           # gid (or a private key) -> Group
        self.in_flight = {}        # (source, rid or gid) -> NovaPost
        self.cinder_by_rid = {}    # cinder rid -> cinder post list
        self.no_gid = collections.deque()  # cinder posts without a gid
        self.no_gid_index = _TimeIndex()   # the same, by target and time
        self.awaited = {}          # cinder rid a nova RESP named -> NovaPost
        self.cinder_first = self.cinder_last = None  # cinder log times
        self.instances = {}        # (source, gid) -> (instance, time)
        self.gid_of = {}           # (source, instance) -> (gid, time)
        self.aliases = {}          # id nova sent -> (nova's gid, time)
        self.not_created = {}      # volume id -> (seconds, attempts, status)
        self.verdicts = collections.Counter()
        self.reached_cinder = 0
        self.cinder_posts = self.cinder_unmatched = 0
        self.now, self.next_sweep = None, None

    def feed(self, event):
        """Process one event; yield the posts judged because time passed."""
        when, kind, source, gid, rid, instance, data, path = event
        self.now = when if self.now is None else max(self.now, when)
        if self.next_sweep is None or self.now >= self.next_sweep:
            # Before this event: what it touches is judged only when it
            # came more than a window after the request's last line.
            self.next_sweep = self.now + max(self.window / 10.0, 1.0)
            yield from self._sweep(self.now - self.window)
        if kind == 'nova_post':
            self._nova_post(when, path, source, gid, rid, instance, data[0])
            if data[1] is not None and gid is not None and data[1] != gid:
                # The header carried another id (older bdm-guard derived
                # one from its key): cinder logs that one.
                self.aliases[data[1]] = (gid, when)
        elif kind == 'cinder_post':
            self._cinder_seen(when)
            self.cinder_posts += 1
            # [time, file, rid, status, target, claimed, size]
            post = [when, path, rid, None, data, False, None]
            self.cinder_by_rid[rid] = post
            if gid is None:
                self.no_gid.append(post)
                self.no_gid_index.add(post)
            else:
                gid = self.aliases.get(gid, (gid,))[0]
                self._group(gid, when).cinder.append(post)
            waiting = self.awaited.pop(rid, None)
            if waiting is not None:
                # A nova RESP named this request before cinder's line came
                # (clock skew): the exact id wins over any time guess.
                waiting.claim(post, 'response_request_id')
        elif kind in ('cinder_status', 'cinder_size'):
            self._cinder_seen(when)
            post = self.cinder_by_rid.get(rid)
            if post is not None:
                post[3 if kind == 'cinder_status' else 6] = data
        elif kind == 'nova_resp' or kind == 'nova_retry':
            post = self.in_flight.get((source, rid or gid))
            if post is not None:
                self._touch(post, when)
                if kind == 'nova_retry':
                    post.attempts += 1
                else:
                    self._answer(post, when, *data)
        elif kind == 'cinder_seen':
            self._cinder_seen(when)
        elif kind == 'not_created':
            self.not_created[data[0]] = data[1:]
        if instance is not None:
            self._instance(when, source, gid, instance, kind == 'nova_fail')
        elif kind == 'nova_fail' and gid is not None:
            self._fail(when, source, gid)

    def _cinder_seen(self, when):
        if self.cinder_first is None:
            self.cinder_first = when
        self.cinder_last = when

    def _covered(self, post):
        """Whether the cinder-api logs given cover ``post``'s window.

        Their span (first to last cinder-api line) must overlap the POST's
        flight widened by a window before it: cinder-api logs of another
        day, or none, prove nothing about this POST.
        """
        return (self.cinder_first is not None
                and self.cinder_first <= post.until(self.window) + self.skew
                and self.cinder_last >= post.start - self.window)

    def flush(self):
        """Judge everything still open (at the end of the logs)."""
        yield from self._sweep(float('inf'))

    def _group(self, gid, when):
        group = self.groups.get(gid)
        if group is None:
            group = self.groups[gid] = Group(when)
        group.last = max(group.last, when)
        return group

    def _touch(self, post, when):
        group = self.groups.get(post.gid or ('-', post.source, post.rid))
        if group is not None:
            group.last = max(group.last, when)

    def _nova_post(self, when, path, source, gid, rid, instance, url):
        if instance is None and gid is not None:
            instance = self.instances.get((source, gid), (None,))[0]
        post = NovaPost(when, path, source, gid, rid, url, instance)
        self._group(gid or ('-', source, rid), when).nova.append(post)
        self.in_flight[(source, rid or gid)] = post

    def _answer(self, post, when, status, resp_rid):
        post.end = when
        self.in_flight.pop((post.source, post.rid or post.gid), None)
        if resp_rid is None and status in _LB_STATUSES:
            post.failed = True
        else:
            post.status, post.resp_rid = status, resp_rid
        if resp_rid is None:
            return
        # Claim the cinder request nova's answer names now, before any
        # other POST's time guess can take it.
        cinder = self.cinder_by_rid.get(resp_rid)
        if cinder is None:
            self.awaited[resp_rid] = post
        elif not cinder[5]:
            post.claim(cinder, 'response_request_id')

    def _instance(self, when, source, gid, instance, failed):
        if gid is None:
            gid = self.gid_of.get((source, instance), (None,))[0]
        if gid is None:
            return
        self.instances[(source, gid)] = (instance, when)
        self.gid_of[(source, instance)] = (gid, when)
        group = self.groups.get(gid)
        for post in group.nova if group else ():
            if post.source == source and post.instance is None:
                post.instance = instance
        if failed:
            self._fail(when, source, gid)

    def _fail(self, when, source, gid):
        group = self.groups.get(gid)
        for post in group.nova if group else ():
            if post.source == source and post.end is None:
                post.failed, post.end = True, when
                self.in_flight.pop((source, post.rid or gid), None)
        if group is not None:
            group.last = max(group.last, when)

    def _sweep(self, horizon):
        """Judge the groups untouched since ``horizon``; drop old state."""
        done = [k for k, g in self.groups.items() if g.last < horizon]
        for key in done:
            yield from self._judge(self.groups.pop(key))
        while self.no_gid and self.no_gid[0][0] < horizon - self.window:
            post = self.no_gid.popleft()
            self.no_gid_index.expire(post)
            self.cinder_by_rid.pop(post[2], None)
            self.cinder_unmatched += not post[5]
        for table in (self.instances, self.gid_of, self.aliases):
            for key in [k for k, v in table.items() if v[1] < horizon]:
                del table[key]

    def _judge(self, group):
        """Match the group's cinder POSTs to its nova POSTs; judge them."""
        for post in group.nova:
            self.in_flight.pop((post.source, post.rid or post.gid), None)
            if post.resp_rid is not None:
                self.awaited.pop(post.resp_rid, None)
        for cinder in sorted(group.cinder, key=lambda c: c[0]):
            if cinder[5]:
                continue
            fits = [p for p in group.nova
                    if p.start - self.skew <= cinder[0]
                    <= p.until(self.window) + self.skew]
            if not fits:
                self.cinder_unmatched += 1
                continue
            fresh = [p for p in fits if not p.cinder]
            post = fresh[0] if fresh else fits[-1]
            post.claim(cinder, 'global_request_id')
        for post in group.nova:
            # Without a gid, a second cinder POST is only taken when nova
            # logged a resend: concurrent creates share the URL.
            while len(post.cinder) < post.attempts:
                cinder = self._no_gid(post)
                if cinder is None:
                    break
                post.claim(cinder, 'time_window')
            for cinder in post.cinder:
                self.cinder_by_rid.pop(cinder[2], None)
            record = post.record(self._covered(post))
            self.verdicts[record['verdict']] += 1
            self.reached_cinder += bool(post.cinder)
            yield record
        for cinder in group.cinder:
            self.cinder_by_rid.pop(cinder[2], None)

    def _no_gid(self, post):
        """The free gid-less cinder POST nearest ``post``'s start.

        It must have ``post``'s target (:func:`same_target`) and fall
        within its flight, give or take the skew.

        :returns: the cinder POST (list), or None.
        """
        return self.no_gid_index.nearest(
            post.url, post.start - self.skew,
            post.until(self.window) + self.skew, post.start,
            lambda c: same_target(c, post.url))
