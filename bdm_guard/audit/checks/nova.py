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

"""The nova-compute checks of the config audit, one function per risk.

Each check takes :class:`~bdm_guard.audit.findings.Inputs` and returns a
list of :class:`~bdm_guard.audit.findings.Finding`; it returns nothing when
nova.conf was not given, or when a value it needs is one nova would refuse
(that value is a finding of its own, see
:meth:`~bdm_guard.audit.findings.Inputs.number`). The numbers each check
compares against and their sources are in ``doc/source/cli/audit.rst``.
"""

from bdm_guard.audit import findings as fnd
from bdm_guard.internal.wait import schedule
from bdm_guard import opts

#: nova 34 ``[cinder] http_retries`` default (nova/conf/cinder.py).
NOVA_DEFAULT_HTTP_RETRIES = 3
#: A wait for one volume longer than this (seconds) holds a build thread
#: and the instance in BUILD for a day when a volume stays ``creating``.
ABSURD_WAIT = 86400


def _opt(name):
    return next(o for o in opts.ALL_OPTS if o.name == name)


def _nova_wait(inputs):
    """``(retries, r_line, interval, i_line)``; a value None if refused."""
    retries, r_line = inputs.number(
        inputs.nova, 'DEFAULT', 'block_device_allocate_retries',
        schedule.NOVA_DEFAULT_RETRIES, minimum=0)
    interval, i_line = inputs.number(
        inputs.nova, 'DEFAULT', 'block_device_allocate_retries_interval',
        schedule.NOVA_DEFAULT_INTERVAL, minimum=0)
    return retries, r_line, interval, i_line


def check_wait_budget(inputs):
    """nova's fixed wait for a new volume against image copy time."""
    if inputs.nova is None:
        return []
    retries, r_line, interval, i_line = _nova_wait(inputs)
    per_gib_opt = _opt('per_gib_allowance')
    per_gib, _ = inputs.number(inputs.nova, 'bdm_guard', 'per_gib_allowance',
                               per_gib_opt.default, float,
                               minimum=per_gib_opt.type.min,
                               maximum=per_gib_opt.type.max)
    if retries is None or interval is None or per_gib is None:
        return []
    budget = schedule.nova_budget(retries, interval)
    default = schedule.nova_budget(schedule.NOVA_DEFAULT_RETRIES,
                                   schedule.NOVA_DEFAULT_INTERVAL)
    need = per_gib * inputs.image_gb
    if budget >= default and budget >= need:
        return []
    checks = retries + 1 if retries >= 1 else 1
    wanted = max(int(-(-max(need, default) // max(interval, 1))) - 1, 1)
    return [fnd.Finding(
        'wait_budget_too_small_for_image_volumes',
        'high' if budget < default else 'medium', inputs.nova.path,
        r_line or i_line,
        'nova-compute checks a new volume %d times, %s s apart: %.0f s in '
        'all (nova\'s default is %.0f s). An image-backed volume stays '
        '"downloading" about %.0f s per GiB, so boots from images over '
        '~%d GiB fail with VolumeNotCreated while cinder is still '
        'copying, and the half-made volume is left behind.'
        % (checks, interval, budget, default, per_gib,
           int(budget // max(per_gib, 1))),
        'Make (block_device_allocate_retries + 1) x '
        'block_device_allocate_retries_interval at least %.0f s (%.0f s/GiB '
        'x %s GiB), e.g. block_device_allocate_retries = %d with an interval '
        'of %d s; or run nova-compute with bdm-guard\'s waiter, whose '
        'deadline grows with the volume size.'
        % (max(need, default), per_gib, inputs.image_gb, wanted,
           max(interval, 1)))]


def check_wait_budget_absurd(inputs):
    """A wait for one volume so long that a stuck create holds a boot."""
    if inputs.nova is None:
        return []
    retries, r_line, interval, i_line = _nova_wait(inputs)
    if retries is None or interval is None:
        return []
    budget = schedule.nova_budget(retries, interval)
    if budget <= ABSURD_WAIT:
        return []
    return [fnd.Finding(
        'wait_budget_absurd', 'medium', inputs.nova.path, r_line or i_line,
        'nova-compute waits up to %.0f s (%.1f days) for one new volume '
        '((block_device_allocate_retries + 1) x '
        'block_device_allocate_retries_interval). A volume that stays '
        '"creating" (a lost RPC, a dead cinder-volume) then holds the '
        'build thread and keeps the instance in BUILD that long, instead '
        'of failing the boot and freeing its resources.'
        % (budget, budget / 86400.0),
        'Keep the wait within what the largest image copy needs (about '
        '20 s per GiB), well under %d s; bdm-guard\'s waiter bounds its '
        'deadline by [bdm_guard] deadline_ceiling and the volume size.'
        % ABSURD_WAIT)]


def check_blind_post_retries(inputs):
    """keystoneauth connect retries resend POST /volumes blindly.

    Not a risk where nova-compute runs bdm-guard's launcher: its creator
    sends POSTs without connect retries and reconciles by key before any
    resend, and ``http_retries`` then applies to nova's other calls only.
    """
    if inputs.nova is None or inputs.launcher:
        return []
    retries, line = inputs.number(inputs.nova, 'cinder', 'http_retries',
                                  NOVA_DEFAULT_HTTP_RETRIES, minimum=0)
    if retries is None or retries <= 0:
        return []
    return [fnd.Finding(
        'blind_post_retries', 'high', inputs.nova.path, line,
        '[cinder] http_retries = %d%s: keystoneauth resends every cinder '
        'call, POST /volumes included, after a connection reset or read '
        'timeout, and cannot tell "never sent" from "sent, reply lost". '
        'When haproxy or cinder-api drops the connection after cinder '
        'accepted the create, the resend makes a second volume for the '
        'same boot, which nothing deletes.'
        % (retries, '' if line else ' (the default)'),
        'Make creates idempotent: run nova-compute with bdm-guard\'s '
        'creator, which sends POSTs without connect retries and reconciles '
        'by idempotency key before any resend. Otherwise set [cinder] '
        'http_retries = 0 (GETs then lose their retries too).%s'
        % (' If the launcher already runs there, say so (--launcher yes, '
           'or --deployment with the unit, drop-in or Kolla config.json '
           'that starts it) and this finding goes.'
           if inputs.nova.has_section('bdm_guard') else ''))]


CHECKS = (check_wait_budget, check_wait_budget_absurd,
          check_blind_post_retries)
