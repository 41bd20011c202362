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

"""One real-nova boot through the launcher, for ``tox -e nova-compat``.

``python -m bdm_guard_lab.nova.compat --nova-python <python> --out <json>``
starts, in this interpreter, the lab's real cinder 29 and the fault proxy in
front of it, and in ``<python>`` (a nova virtualenv of any release of
:data:`bdm_guard_lab.nova.releases.RELEASES`, with bdm-guard and its
``lab-nova`` extra installed) the lab's nova with bdm-guard installed as
``bdm-guard-nova-compute`` installs it (mode ``launcher``). It boots one
server from the image onto a new volume while the proxy loses the answer
of the first ``POST /volumes`` and hides every new volume from cinder-api's
reads for :data:`LAG_SECONDS` (read-after-write lag), deletes the server,
and checks (:func:`verdict`): the guard was installed, both faults were
injected, the server is ACTIVE with exactly one volume, cinder holds
exactly that volume (no duplicate, no leak), and none once the server is
deleted. Every count is read through cinder's own API.

The JSON file gets ``{"ok": bool, "problems": [str], "seconds": float,
"nova": <the child's ready event>, "figures": {...}, "servers": [...]}``;
the exit status is 0 when ``ok``.
"""

import argparse
import json
import os
import sys
import time

import fixtures

import bdm_guard
from bdm_guard_lab.arms import nova_mode
from bdm_guard_lab.cinder import service as cinder_service
from bdm_guard_lab import exception
from bdm_guard_lab.faults import proxy as lab_proxy
from bdm_guard_lab.faults import scenario as lab_scenario
from bdm_guard_lab.nova import service as nova_service

#: Seconds a new volume stays missing from cinder-api's reads.
LAG_SECONDS = 2
#: The scenario's seed (the server's request id).
SEED = 2904
#: The proxy's rules: the first POST /volumes reaches cinder, its answer is
#: lost; every GET of a young volume or of a list misses it.
RULES = (
    {'fault': 'lost_response', 'methods': ['POST'], 'path': '^/volumes$',
     'probability': 1.0, 'times': 1},
    {'fault': 'visibility_lag', 'probability': 1.0, 'seconds': LAG_SECONDS},
)


def scenario():
    """The boot's :class:`bdm_guard_lab.faults.scenario.Scenario`."""
    return lab_scenario.parse({'name': 'nova-compat', 'seed': SEED,
                               'rules': [dict(r) for r in RULES]},
                              'nova-compat')


def verdict(ready, figures, records, deleted, lab_guard=None):
    """What is wrong with one boot; an empty list when nothing is.

    :param ready: the nova child's ``ready`` event.
    :param figures: :func:`bdm_guard_lab.arms.nova_mode.summarize` of the
        boot (with ``faults_injected``).
    :param records: the servers, as :meth:`NovaService.boot` returned them.
    :param deleted: :meth:`NovaService.delete_all`'s answer.
    :param lab_guard: the folder of this interpreter's ``bdm_guard``: the
        child must have run another one (the nova venv's, as installed), or
        None to skip that check.
    :returns: a list of str, each one problem.
    """
    problems = []
    if ready.get('guard') != 'launcher':
        problems.append('the guard is not installed (guard=%r)'
                        % ready.get('guard'))
    if lab_guard and ready.get('bdm_guard') == lab_guard:
        problems.append("nova ran the lab's bdm_guard (%s), not the one "
                        "installed in its virtualenv" % lab_guard)
    injected = figures.get('faults_injected', {})
    if injected.get('lost_response', 0) != 1:
        problems.append('lost_response injected %d times, not once'
                        % injected.get('lost_response', 0))
    if not injected.get('visibility_lag'):
        problems.append('no read saw the read-after-write lag')
    if len(records) != 1:
        problems.append('%d servers booted, not 1' % len(records))
    for record in records:
        if record.get('status') != 'ACTIVE':
            problems.append('server %s is %s: %s' % (
                record.get('name'), record.get('status'),
                nova_mode.fault_reason(record)))
        elif len(record.get('volumes', [])) != 1:
            problems.append('server %s has %d volumes attached, not 1' % (
                record.get('name'), len(record.get('volumes', []))))
    expected = {'volumes': 1, 'duplicates': 0, 'leaked': 0,
                'left_after_delete': 0}
    for key, want in expected.items():
        if figures.get(key) != want:
            problems.append('cinder: %s = %s, not %s'
                            % (key, figures.get(key), want))
    if deleted.get('remaining') or deleted.get('errors'):
        problems.append('delete left servers %s (errors: %s)' % (
            deleted.get('remaining'), deleted.get('errors')))
    return problems


def boot_once(nova_python, *, start_timeout=240.0):
    """Start cinder, the proxy and nova; boot one server; check it.

    :param nova_python: the nova child's interpreter.
    :param start_timeout: seconds for nova to start.
    :returns: the result dict (see the module's docstring).
    :raises bdm_guard_lab.exception.LabError: a service did not start or
        nova failed.
    """
    started = time.monotonic()
    with fixtures.Fixture() as stack:
        svc = stack.useFixture(cinder_service.CinderService(
            create_seconds=0.5, download_seconds_per_gib=1.0,
            create_jitter=0.0, service_requests=True))
        proxy = stack.useFixture(lab_proxy.FaultProxy(
            svc.base_url, scenario(), project_id=svc.project_id))
        nova = stack.useFixture(nova_service.NovaService(
            '%s/v3/%%(project_id)s' % proxy.base_url, svc.project_id,
            mode='launcher', computes=1, python=nova_python,
            start_timeout=start_timeout))
        records = nova.boot(1, SEED, 1, settle_timeout=180)
        found = svc.wait_settled(timeout=120)
        deleted = nova.delete_all(timeout=120)
        left = svc.wait_settled(timeout=120)
        figures = nova_mode.summarize(records, found, left, proxy,
                                      project_id=svc.project_id, wall_s=0.0)
        ready = dict(nova.ready)
    ready.pop('event', None)
    problems = verdict(ready, figures, records, deleted,
                       lab_guard=os.path.dirname(os.path.abspath(
                           bdm_guard.__file__)))
    return {'ok': not problems, 'problems': problems,
            'seconds': round(time.monotonic() - started, 1), 'nova': ready,
            'figures': figures, 'servers': records}


def _setup_error(exc):
    """The LabError inside a fixture's ``MultipleExceptions``, or ``exc``."""
    if isinstance(exc, fixtures.MultipleExceptions):
        return exc.args[0][1]
    return exc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--nova-python', required=True,
                        help="the nova child's interpreter")
    parser.add_argument('--out', required=True, help='the JSON result file')
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        result = boot_once(args.nova_python)
    except (exception.LabError, fixtures.MultipleExceptions) as exc:
        result = {'ok': False, 'problems': [str(_setup_error(exc))],
                  'seconds': round(time.monotonic() - started, 1)}
    with open(args.out, 'w') as stream:
        json.dump(result, stream, indent=1, default=str)
    print('nova-compat boot: %s (%.0f s)%s' % (
        'ok' if result['ok'] else 'FAILED', result['seconds'],
        ''.join('\n  %s' % p for p in result['problems'])))
    return 0 if result['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
