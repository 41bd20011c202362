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

"""Look volumes up by idempotency key.

A lookup is one ``GET /volumes/detail?metadata={key}``. The server-side
filter is never trusted for adoption: every volume a list returns is
checked for the key again. Lists are scoped to the caller's project
(``all_tenants`` is never sent), so a key never matches another project's
volume. A lookup that fails (503, reset, malformed body) is retried; it
never counts as "no volume has the key".
"""

import random
import typing

from oslo_log import log as logging
import tenacity

from bdm_guard import exception
from bdm_guard.internal.create import keys
from bdm_guard.internal import retry
from bdm_guard.internal import statuses
from bdm_guard import outcome as oc

LOG = logging.getLogger(__name__)

#: First and longest wait between lookups (seconds), and the jitter added.
LIST_WAIT_FIRST = 0.5
LIST_WAIT_MAX = 2.0
LIST_JITTER = 0.25

Volumes = list[dict]

#: ``until_seen`` for "look until ``settle_until`` whatever shows": after a
#: POST with an unknown outcome while another create may race, the volume
#: that POST may have made has no known id.
UNTIL_SETTLED = object()


def oldest_first(volume: dict) -> tuple[str, str]:
    """Sort key: cinder's ``created_at``, then the id (deterministic)."""
    return (str(volume.get('created_at') or ''), str(volume.get('id')))


def carries_key(volume: object, key: str) -> bool:
    """Whether a listed ``volume`` carries ``key`` and is not going away.

    :param volume: one element of a list answer (anything: a broken proxy
        may send non-dict volumes or metadata).
    :param key: the idempotency key (str).
    :returns: bool; malformed entries never carry the key.
    """
    if not isinstance(volume, dict):
        return False
    try:
        statuses.check_volume_id(volume.get('id'))
    except exception.InvalidVolumeId:
        return False   # not cinder's: never adopted, never deleted
    metadata = volume.get('metadata')
    status = volume.get('status')
    if not isinstance(metadata, dict) or not isinstance(status, str):
        return False
    return (metadata.get(keys.IDEMPOTENCY_METADATA_KEY) == key
            and status not in statuses.GOING_AWAY)


def list_by_key(client, key: str, timeout: typing.Optional[float] = None
                ) -> typing.Optional[Volumes]:
    """One lookup: the caller's volumes that carry ``key``, oldest first.

    :param client: a :class:`bdm_guard.client.VolumeClient`.
    :param key: the idempotency key (str).
    :param timeout: seconds the call may take (what is left of the
        create's deadline), or None.
    :returns: a list of volume dicts (empty when cinder answered and no
        volume carries the key), or None when the list call failed (any
        outcome but ``ok``, including a malformed body): the caller must
        not take that for "no volume has the key".
    """
    result = client.list_volumes(
        metadata={keys.IDEMPOTENCY_METADATA_KEY: key}, timeout=timeout)
    if result.kind != oc.OK or not isinstance(result.body, list):
        LOG.info('Listing volumes by idempotency key %(key)s failed: '
                 '%(kind)s %(msg)s', {'key': key, 'kind': result.kind,
                                      'msg': result.message})
        return None
    found = [v for v in result.body if carries_key(v, key)]
    return sorted(found, key=oldest_first)


def list_wait(rng: random.Random):
    """The wait between lookups: 0.5 s doubling to 2 s, plus jitter.

    :param rng: a :class:`random.Random` for the jitter.
    :returns: a tenacity wait strategy (seconds).
    """
    return (tenacity.wait_exponential(multiplier=LIST_WAIT_FIRST,
                                      max=LIST_WAIT_MAX)
            + retry.wait_jitter(rng, LIST_JITTER))


def find(lookup: typing.Callable[[], typing.Optional[Volumes]],
         deadline: retry.Deadline, sleep: typing.Callable[[float], None],
         rng: random.Random,
         settle_until: typing.Optional[float] = None,
         until_seen: typing.Optional[str] = None
         ) -> typing.Optional[Volumes]:
    """Look up until a list answers, or the deadline is reached.

    :param lookup: ``f() -> volumes or None`` (:func:`list_by_key` bound to
        a client and key, counting its calls).
    :param deadline: a :class:`bdm_guard.internal.retry.Deadline`; no sleep
        goes past it.
    :param sleep: ``sleep(seconds)``.
    :param rng: a :class:`random.Random` for the jitter.
    :param settle_until: a clock value, or None. When given, an empty answer
        before it is not final either: the lookups go on until a volume
        shows, or an answer made at or after it is empty.
    :param until_seen: a volume id, or None. When given (with
        ``settle_until``), an answer that does not show that volume is not
        final before ``settle_until``: a list that shows the caller's own
        new volume is at least as fresh as its create, so it also shows any
        volume with the key created before it (a replica applies commits in
        order). :data:`UNTIL_SETTLED`: no answer before ``settle_until``
        is final.
    :returns: the last answer: volumes found (non-empty list); ``[]`` when
        an answer showed none (after ``settle_until`` unless the deadline
        came first); None when no list answered before the deadline.
    """
    clock = deadline.clock

    def again(found):
        if found is None:
            return True
        if settle_until is None or clock() >= settle_until:
            return False
        if until_seen is not None:
            return not any(v.get('id') == until_seen for v in found)
        return not found

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(again),
        wait=retry.wait_capped(list_wait(rng), deadline),
        stop=deadline.stop,
        sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result())
    return retrying(lookup)
