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

"""Which keys this process may already have made a volume for.

A create that is told nothing (``resume`` False, as nova's drop-in calls
it) sends its first POST without a lookup: that saves a request on every
boot. It is safe only while no earlier or concurrent attempt with the key
can have made a volume. This process knows when one may have: a create
with the key is still running (two threads, an orchestrator's retry), or
one sent a POST before (it made, adopted or may have made a volume). Such
a key is looked up before the POST and again after its 202, as with
``resume``; the first create of a key pays nothing.

The memory is bounded (:data:`LIMIT` keys, the oldest forgotten first) and
per process: a retry in another process must say ``resume``.
"""

import collections
import threading

#: Most keys remembered (about 100 bytes each).
LIMIT = 10000

_LOCK = threading.Lock()
#: key -> [creates running, a volume with the key may exist]
_KEYS = collections.OrderedDict()


def begin(key: str) -> bool:
    """A create with ``key`` starts.

    :returns: whether an earlier or concurrent attempt in this process may
        have made a volume with the key.
    """
    with _LOCK:
        entry = _KEYS.get(key)
        maybe = entry is not None and (entry[0] > 0 or entry[1])
        if entry is None:
            entry = _KEYS[key] = [0, False]
        entry[0] += 1
        _KEYS.move_to_end(key)
        if len(_KEYS) > LIMIT:
            _evict()
        return maybe


def _evict():
    """Drop the oldest finished keys past :data:`LIMIT` (lock held).

    Keys with a create still running are kept: forgetting one would let a
    concurrent create with it skip its look-up.
    """
    for key in [k for k, e in _KEYS.items() if not e[0]]:
        if len(_KEYS) <= LIMIT:
            return
        del _KEYS[key]


def contended(key: str) -> bool:
    """Whether another create with ``key`` runs, or one may have made one."""
    with _LOCK:
        entry = _KEYS.get(key)
        return entry is not None and (entry[0] > 1 or entry[1])


def end(key: str, may_exist: bool) -> None:
    """A create with ``key`` ended.

    :param may_exist: whether a volume with the key may exist now (it made
        or adopted one, or a POST of it had an unknown outcome); False only
        when it provably made none (every POST never sent or rejected).
    """
    with _LOCK:
        entry = _KEYS.get(key)
        if entry is None:
            entry = _KEYS[key] = [1, False]
        entry[0] = max(0, entry[0] - 1)
        entry[1] = entry[1] or may_exist
        if not entry[0] and not entry[1]:
            del _KEYS[key]


def forget_all() -> None:
    """Forget every key (tests)."""
    with _LOCK:
        _KEYS.clear()
