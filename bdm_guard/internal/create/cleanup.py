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

"""After a failed wait: delete the new volume, or hand it back at once.

nova's rule (``DriverVolumeBlockDevice._call_wait_func``) with the patch
series' fix: on *any* failed wait the volume is deleted when the mapping
says ``delete_on_termination``. What cinder cannot delete yet (attached, or
still ``creating``/``downloading``: cinder answers 400) is handed back to
the caller at once, with the reason, never waited on.
"""

import typing

from oslo_log import log as logging
import tenacity

from bdm_guard import exception
from bdm_guard.internal import statuses
from bdm_guard import outcome as oc

LOG = logging.getLogger(__name__)

#: DELETE attempts after a failed wait (a short bounded retry of transient
#: failures only: 0.5 s then 1 s between them).
CLEANUP_ATTEMPTS = 3
_TRANSIENT = (oc.NOT_SENT, oc.UNKNOWN, oc.SERVER_ERROR, oc.THROTTLED,
              oc.AUTH)

DELETED = 'deleted'
DELETE_FAILED = 'delete_failed'
KEPT = 'kept'


def last_seen(exc: BaseException) -> typing.Optional[dict]:
    """The last volume dict the failed wait saw, or None.

    Looks at ``exc`` and at the exception it was raised from (nova's
    ``VolumeNotCreated`` is raised from bdm-guard's wait error).
    """
    for err in (exc, exc.__cause__):
        if isinstance(err, exception.BdmGuardException):
            report = err.kwargs.get('report')
            if report is not None:
                return report.volume
            return err.kwargs.get('volume')
    return None


def why_kept(exc: BaseException) -> typing.Optional[str]:
    """Why cinder would refuse to delete the volume now, or None."""
    if isinstance(exc, exception.VolumeVanished):
        return None   # gone since it was seen: its status is unknown
    volume = last_seen(exc)
    if volume is None:
        return None   # never seen: cinder answers the DELETE itself
    status = volume.get('status')
    if statuses.is_attached(volume):
        return 'volume is attached (status %s)' % status
    if status not in statuses.DELETABLE:
        return ('status %s: cinder deletes only volumes in %s' %
                (status, ', '.join(sorted(statuses.DELETABLE))))
    return None


def delete(client, volume_id: str, sleep) -> typing.Optional[str]:
    """One DELETE, retried briefly on transient failures.

    :returns: None when deleted (or already gone), else the reason (str).
    """
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda r: r.kind in _TRANSIENT),
        wait=tenacity.wait_exponential(multiplier=0.5, max=1),
        stop=tenacity.stop_after_attempt(CLEANUP_ATTEMPTS), sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result())
    try:
        result = retrying(client.delete_volume, volume_id)
    except exception.CinderUnavailable as err:
        return err.msg
    if result.kind in (oc.OK, oc.NOT_FOUND):
        return None
    return 'DELETE answered %s (HTTP %s): %s' % (
        result.kind, result.status_code, result.message)


def after_failed_wait(client, exc: BaseException, volume_id: str, key: str,
                      delete_on_failure: bool, sleep) -> str:
    """Delete the volume of a failed wait, or hand it back at once.

    :param client: a :class:`bdm_guard.client.VolumeClient`.
    :param exc: the exception the wait raised (any).
    :param volume_id: the new volume's id.
    :param key: its idempotency key (for the log).
    :param delete_on_failure: nova's ``delete_on_termination``.
    :param sleep: ``sleep(seconds)``.
    :returns: ``deleted``, ``delete_failed`` or ``kept``. A bdm-guard
        ``exc`` also gets ``cleanup`` and ``cleanup_reason`` (None when
        deleted) in its ``kwargs``.
    """
    reason = 'delete_on_failure is off' if not delete_on_failure else (
        why_kept(exc))
    verdict = KEPT
    if reason is None:
        reason = delete(client, volume_id, sleep)
        verdict = DELETED if reason is None else DELETE_FAILED
    if isinstance(exc, exception.BdmGuardException):
        exc.kwargs.update(cleanup=verdict, cleanup_reason=reason)
    if reason is not None:
        LOG.warning('Volume %(id)s (idempotency key %(key)s) was not '
                    'deleted after its wait failed (%(verdict)s: '
                    '%(reason)s); it is handed back to the caller, who must '
                    'delete it or retry the create with the same key.',
                    {'id': volume_id, 'key': key, 'verdict': verdict,
                     'reason': reason})
    return verdict
