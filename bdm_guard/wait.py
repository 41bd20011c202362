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

"""Wait for a new volume to become available, driven by its status.

Replaces nova's fixed 61 x 3 s poll (``ComputeManager.
_await_block_device_map_created``). The behaviour table is in
``doc/source/contributor/design.rst``; the schedule in
:mod:`bdm_guard.policy`.
"""

import collections
import dataclasses
import random
import time

from oslo_log import log as logging
import tenacity

from bdm_guard import cinder
from bdm_guard import exception
from bdm_guard import opts
from bdm_guard import outcome as oc
from bdm_guard import policy

LOG = logging.getLogger(__name__)

AVAILABLE = 'available'
_CAUSES = {'not_found': 'HTTP 404', 'auth': 'HTTP 401',
           'throttled': 'rate-limited', 'not_sent': 'connection failures',
           'unknown': 'lost or non-cinder answers',
           'server_error': 'cinder 5xx faults',
           'malformed': 'answers without a status'}


def _never_seen(retries):
    causes = ', '.join('%d %s' % (count, _CAUSES.get(cause, cause))
                       for cause, count in retries.most_common())
    return 'never seen (%s)' % (causes or 'no answer')


@dataclasses.dataclass
class WaitReport:
    """What one wait saw.

    :ivar volume: the last volume dict cinder returned (or None).
    :ivar polls: volume GETs sent (message GETs not counted).
    :ivar elapsed: seconds from the start of the wait to its end.
    :ivar statuses: ``[(seconds since start, status)]``, one entry per
        status change.
    :ivar retries: ``{cause: count}`` of polls that were retried for a
        reason other than a pending status (``not_found``, ``auth``,
        ``throttled``, ``not_sent``, ``unknown``, ``server_error``,
        ``malformed``).
    :ivar deadline: the budget, in seconds.
    """

    volume: dict = None
    polls: int = 0
    elapsed: float = 0.0
    statuses: list = dataclasses.field(default_factory=list)
    retries: dict = dataclasses.field(
        default_factory=collections.Counter)
    deadline: float = 0.0


@dataclasses.dataclass(frozen=True)
class _Observation:
    state: str             # 'available', 'pending', 'failed', 'vanished'
    phase: str = 'creating'
    retry_after: float = None

    @property
    def pending(self):
        return self.state == 'pending'


def _reason(client, volume_id):
    """Cinder's newest user message for the volume, or None."""
    try:
        result = client.list_messages(volume_id)
    except exception.CinderUnavailable:
        return None
    if result.kind != oc.OK or not result.body:
        return None
    messages = [m for m in result.body if isinstance(m, dict)]
    messages.sort(key=lambda m: str(m.get('created_at') or ''))
    for message in reversed(messages):
        text = message.get('user_message')
        if text:
            return '%s (%s)' % (text, message.get('event_id', '?'))
    return None


def wait_for_volume(client, volume_id, *, size_gb=None, created_at=None,
                    conf=None, sleep=time.sleep, clock=time.monotonic,
                    on_status=None, allocate_retries=None,
                    allocate_retries_interval=None, rng=None, on_retry=None):
    """Wait until a volume is ``available``; fail fast when it cannot be.

    :param client: a :class:`bdm_guard.cinder.VolumeClient`.
    :param volume_id: the volume's UUID (str).
    :param size_gb: the size in GiB (int >= 0) of a volume created from an
        image, snapshot or backup: adds ``per_gib_allowance`` per GiB to the
        deadline. None for blank volumes.
    :param created_at: the ``clock`` value at which the create returned
        (seconds, not after ``clock()``: a :func:`time.time` stamp against
        the default monotonic clock is refused); the 404 grace
        (``not_found_grace``) counts from it. Defaults to the start of the
        wait.
    :param conf: a ConfigOpts; ``[bdm_guard]`` is registered if needed.
        None uses the defaults.
    :param sleep: ``sleep(seconds)``; inject a fake for virtual time.
    :param clock: a monotonic clock in seconds; inject with ``sleep``.
    :param on_status: ``on_status(status, elapsed_s, volume)`` called on
        every status change (status None for a 404).
    :param allocate_retries: nova's ``block_device_allocate_retries``
        (int >= 0); with
        ``allocate_retries_interval`` the deadline is never shorter than
        nova's own budget.
    :param allocate_retries_interval: nova's
        ``block_device_allocate_retries_interval`` (seconds >= 0).
    :param rng: a :class:`random.Random` for the jitter (tests seed it).
    :param on_retry: ``on_retry(cause, elapsed_s)`` called on every poll
        that brought no status (``not_found``, ``not_sent``, ``unknown``,
        ``server_error``, ``auth``, ``throttled``, ``malformed``).
    :returns: a :class:`WaitReport` whose ``volume`` is available.
    :raises bdm_guard.exception.InvalidVolumeId: malformed id, before any
        request.
    :raises bdm_guard.exception.InvalidInput: ``size_gb``,
        ``allocate_retries`` or ``allocate_retries_interval`` not a
        non-negative number of the right type, or ``created_at`` not a
        number or after ``clock()``; before any request.
    :raises bdm_guard.exception.CinderConfigError: keystoneauth cannot reach
        cinder for a reason no retry clears (no endpoint in the catalog,
        credentials refused...); raised at once, not at the deadline.
    :raises bdm_guard.exception.VolumeCreateFailed: the volume reached a
        status that is neither pending nor available (``error`` ...); the
        message carries cinder's user message (microversion 3.3) if any.
    :raises bdm_guard.exception.VolumeCreateTimeout: still pending, or
        cinder unreachable, at the deadline.
    :raises bdm_guard.exception.VolumeVanished: 404 past the grace.
    """
    volume_id = cinder.check_volume_id(volume_id)
    conf = opts.get_conf(conf)
    group = conf.bdm_guard
    pending = set(group.pending_statuses)
    budget = policy.wait_deadline(conf, size_gb, allocate_retries,
                                  allocate_retries_interval)
    policy.check_number('created_at', created_at, integer=False)
    start = clock()
    if created_at is not None and created_at > start:
        raise exception.InvalidInput(
            reason='created_at %r is after the clock (%r): it must come '
                   'from the same clock as the wait' % (created_at, start))
    created = start if created_at is None else created_at
    report = WaitReport(deadline=budget)
    backoff = policy.wait_status_backoff(conf, clock, start, start + budget,
                                         rng or random.Random())
    last = {'status': None, 'phase': 'creating'}

    def observe_status(status, volume):
        report.volume = volume
        if status != last['status'] or not report.statuses:
            elapsed = clock() - start
            LOG.info('Volume %(id)s is %(status)s after %(t).1f s '
                     '(%(polls)d polls).', {'id': volume_id,
                                            'status': status, 't': elapsed,
                                            'polls': report.polls})
            report.statuses.append((elapsed, status))
            last['status'] = status
            backoff.reset()
            if on_status is not None:
                on_status(status, elapsed, volume)

    def retry(cause, retry_after=None):
        report.retries[cause] += 1
        if on_retry is not None:
            on_retry(cause, clock() - start)
        return _Observation('pending', last['phase'], retry_after)

    def poll():
        report.polls += 1
        result = client.get_volume(volume_id)
        if result.kind == oc.OK:
            status = result.body.get('status')
            if not isinstance(status, str) or not status:
                return retry('malformed')
            observe_status(status, result.body)
            if status == AVAILABLE:
                return _Observation('available')
            if status in pending:
                last['phase'] = status
                return _Observation('pending', status)
            return _Observation('failed', status)
        if result.kind == oc.NOT_FOUND:
            if clock() - created < group.not_found_grace:
                return retry('not_found')
            return _Observation('vanished')
        if result.kind == oc.AUTH:
            client.reauthenticate()
        return retry(result.kind, result.retry_after)

    if created_at is not None:
        # Right after a create the volume is "creating": the first GET at
        # once would only say so.
        sleep(max(0.0, min(created + group.poll_initial_interval - clock(),
                           budget)))
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda obs: obs.pending),
        wait=backoff,
        stop=policy.stop_at(clock, start + budget),
        sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result(),
        reraise=True)
    final = retrying(poll)
    report.elapsed = clock() - start
    details = {'volume_id': volume_id,
               'status': last['status'] or _never_seen(report.retries),
               'elapsed': report.elapsed, 'polls': report.polls,
               'report': report}
    if final.state == 'available':
        return report
    if final.state == 'failed':
        reason = _reason(client, volume_id) or 'cinder gave no reason'
        raise exception.VolumeCreateFailed(reason=reason, **details)
    if final.state == 'vanished':
        raise exception.VolumeVanished(grace=group.not_found_grace,
                                       **details)
    raise exception.VolumeCreateTimeout(deadline=budget, **details)
