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

"""The demo's nova arms side by side, on the boots every arm finished.

A failed boot ends early: stock nova's builds that die on the first 404
have short boot times and few GETs, and counting them would flatter stock.
So the arms of one case are compared per boot slot: slot ``n`` is server
``lab-boot-<n>``, which carries the same request id in every arm
(:func:`bdm_guard_lab.nova.harness.request_id`), so cinder's driver gives
its volume the same create and download times and the proxy draws the same
faults for it. Only the slots that are ``ACTIVE`` in every arm of the case
count (:func:`common`); each arm's figures are taken over those slots
(:func:`figures`) and divided by stock's (:func:`compare`).

:func:`verdicts` checks the demo targets (``doc/source/user/demo.rst``,
"The healthy case") as information: a missed target is reported, never
raised.
"""

from bdm_guard_lab.arms import metrics

#: The compared figures of one arm (:func:`figures`).
KEYS = ('boots', 'boot_s_p50', 'boot_s_p95', 'lag_s_p50', 'lag_s_p95',
        'gets_per_boot')
#: The arm the others are divided by.
REFERENCE = 'stock'

#: The demo's healthy case: boot to ACTIVE p50 and p95 at
#: most this many times stock's ("within 5% of stock's"; faster is fine).
BOOT_RATIO = 1.05
#: ... detection lag p50 at most stock's plus this many seconds.
LAG_P50_SLACK_S = 1.0
#: ... volume GETs per boot at most this many times stock's.
GETS_RATIO = 0.8


def _ran(results):
    """The arms of a case that booted servers (not ``arm_error``)."""
    return {arm: fig for arm, fig in results.items()
            if not fig.get('arm_error') and fig.get('per_server')}


def common(results):
    """The slots ``ACTIVE`` in every arm of one case that ran.

    :param results: ``{arm: figures}`` of one case
        (:func:`bdm_guard_lab.arms.nova_mode.run_arm`; each with
        ``per_server``). Arms with ``arm_error`` are left out.
    :returns: the sorted server names (list of str); empty when no arm
        ran.
    """
    ran = _ran(results)
    if not ran:
        return []
    slots = None
    for fig in ran.values():
        active = {name for name, server in fig['per_server'].items()
                  if server['status'] == 'ACTIVE'}
        slots = active if slots is None else slots & active
    return sorted(slots)


def _round(value):
    return None if value is None else round(value, 2)


def figures(servers, slots):
    """One arm's figures over the given slots.

    :param servers: the arm's ``per_server``
        (:func:`bdm_guard_lab.arms.nova_mode.per_server`).
    :param slots: server names (:func:`common`).
    :returns: a dict with :data:`KEYS`: ``boots`` (len(slots)), boot to
        ``ACTIVE`` p50/p95 (s, nearest rank), detection lag p50/p95 (s,
        over the slots whose lag is known) and volume GETs per boot (mean);
        None where there is no value.
    """
    chosen = [servers[name] for name in slots]
    boots = [s['boot_s'] for s in chosen if s['boot_s'] is not None]
    lags = [s['lag_s'] for s in chosen if s['lag_s'] is not None]
    gets = [s['gets'] for s in chosen]
    return {
        'boots': len(chosen),
        'boot_s_p50': _round(metrics.percentile(boots, 0.50)),
        'boot_s_p95': _round(metrics.percentile(boots, 0.95)),
        'lag_s_p50': _round(metrics.percentile(lags, 0.50)),
        'lag_s_p95': _round(metrics.percentile(lags, 0.95)),
        'gets_per_boot': _round(sum(gets) / len(gets)) if gets else None,
    }


def ratio(value, reference):
    """``value / reference`` rounded to 2 places.

    :returns: float, or None if either is missing or the reference is 0.
    """
    if value is None or not reference:
        return None
    return round(value / reference, 2)


def compare(results, reference=REFERENCE):
    """One case's arms on the slots every arm finished, as ratios.

    :param results: ``{arm: figures}`` of one case (see :func:`common`).
    :param reference: the arm the others are divided by.
    :returns: ``{"slots": [names], "servers": int (the most any arm
        booted), "arms": {arm: {KEYS..., "x_stock": {key: ratio}}}}``,
        ``x_stock`` holding each figure but ``boots`` divided by the
        reference arm's (None when the reference did not run). Arms with
        ``arm_error`` are left out.
    """
    ran = _ran(results)
    slots = common(results)
    arms = {arm: figures(fig['per_server'], slots) for arm, fig in
            ran.items()}
    base = arms.get(reference)
    for fig in arms.values():
        fig['x_stock'] = {key: (ratio(fig[key], base[key]) if base
                                else None)
                          for key in KEYS if key != 'boots'}
    return {'slots': slots,
            'servers': max([fig['servers'] for fig in ran.values()] or [0]),
            'arms': arms}


def _seconds(value):
    return '-' if value is None else '%s s' % value


def _exact(value, reference):
    """``value / reference`` to 3 places, as the verdict compares it."""
    return '-' if value is None else '%.3fx' % (value / reference)


def _line(target, checks):
    """``[met] target: arm value met; ...`` from ``[(arm, text, ok)]``."""
    if not checks:
        return {'target': target, 'met': None,
                'text': '[n/a] %s: no guard arm ran' % target}
    met = all(ok for _, _, ok in checks)
    parts = ['%s %s %s' % (arm, text, 'met' if ok else 'MISSED')
             for arm, text, ok in checks]
    return {'target': target, 'met': met,
            'text': '[%s] %s: %s' % ('met' if met else 'MISSED', target,
                                     '; '.join(parts))}


def healthy_verdicts(case, reference=REFERENCE):
    """The demo's targets for its healthy case.

    :param case: :func:`compare` of the healthy case.
    :param reference: the stock arm.
    :returns: a list of ``{"target": str, "met": bool or None, "text":
        str}``, one per target: boot to ACTIVE p50 and p95 at most
        :data:`BOOT_RATIO` x stock's, detection lag p50 at most stock's +
        :data:`LAG_P50_SLACK_S`, GETs per boot at most :data:`GETS_RATIO`
        x stock's; each over the compared slots, for every arm but stock,
        on the unrounded ratio. ``met`` is None when stock or every other
        arm is missing.
    """
    base = case['arms'].get(reference)
    guards = [arm for arm in case['arms'] if arm != reference]
    out = []
    for key, label in (('boot_s_p50', 'boot to ACTIVE p50'),
                       ('boot_s_p95', 'boot to ACTIVE p95')):
        target = 'healthy: %s within %d%% of stock\'s (%s)' % (
            label, round(100 * (BOOT_RATIO - 1)),
            _seconds(base and base[key]))
        checks = []
        for arm in guards if base and base[key] else ():
            value = case['arms'][arm][key]
            checks.append((arm, '%s (%s)' % (
                _seconds(value), _exact(value, base[key])),
                value is not None and value <= BOOT_RATIO * base[key]))
        out.append(_line(target, checks))
    target = 'healthy: detection lag p50 within %g s of stock\'s (%s)' % (
        LAG_P50_SLACK_S, _seconds(base and base['lag_s_p50']))
    checks = []
    for arm in guards if base and base['lag_s_p50'] is not None else ():
        value = case['arms'][arm]['lag_s_p50']
        diff = None if value is None else value - base['lag_s_p50']
        checks.append((arm, '%s (%s)' % (
            _seconds(value), '-' if diff is None else '%+.2f s' % diff),
            diff is not None and diff <= LAG_P50_SLACK_S))
    out.append(_line(target, checks))
    target = 'healthy: GETs per boot <= %gx stock\'s (%s)' % (
        GETS_RATIO, '-' if not base else base['gets_per_boot'])
    checks = []
    for arm in guards if base and base['gets_per_boot'] else ():
        value = case['arms'][arm]['gets_per_boot']
        checks.append((arm, '%s (%s)' % (
            value, _exact(value, base['gets_per_boot'])),
            value is not None and value <= GETS_RATIO * base['gets_per_boot']))
    out.append(_line(target, checks))
    return out


def fault_verdicts(results, scenario, reference=REFERENCE):
    """The demo's target under faults: every guard arm whole.

    :param results: ``{arm: figures}`` of the faulted case (all servers,
        not only the compared slots).
    :param scenario: its name, for the text.
    :param reference: the stock arm (not a guard arm).
    :returns: a list of ``{"target", "met", "text"}``: 100% ACTIVE, 0
        duplicates, 0 leaked volumes, in every arm but stock (an arm that
        did not run misses).
    """
    checks = {'active': [], 'duplicates': [], 'leaked': []}
    for arm, fig in results.items():
        if arm == reference:
            continue
        if fig.get('arm_error'):
            for key in checks:
                checks[key].append((arm, 'did not run', False))
            continue
        checks['active'].append((arm, '%d / %d' % (
            fig['active'], fig['servers']), fig['active'] == fig['servers']))
        for key in ('duplicates', 'leaked'):
            checks[key].append((arm, str(fig[key]), fig[key] == 0))
    return [
        _line('%s faults: 100%% ACTIVE' % scenario, checks['active']),
        _line('%s faults: 0 duplicates' % scenario, checks['duplicates']),
        _line('%s faults: 0 leaked' % scenario, checks['leaked']),
    ]
