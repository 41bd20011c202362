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

"""Replay the waiter cases against a patched nova's volume wait.

Run with the patched nova tree on PYTHONPATH (tools/nova-series-test.sh does
this after the last patch):

    python tools/nova-waiter-conformance.py tests/unit/data/waiter-cases.yaml

Each case's timeline, faults and messages drive a fake volume_api; a virtual
clock replaces nova.compute.manager's time.time, time.monotonic and
time.sleep. It
prints, per case, the outcome of ComputeManager._await_block_device_map_created
with nova's default options, the volume GETs it made, how late it saw the
final status, and whether that meets the case's expectations. It exits 1
only if a case cannot be replayed; a case whose expectation nova does not meet
is reported, not failed (see patches/nova/README.rst for why).
"""

import sys
from unittest import mock

from cinderclient import exceptions as cinder_exception
import yaml

from nova.compute import manager
import nova.conf
from nova import exception


class Clock:
    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    # nova's wait reports the seconds it waited from the wall clock.
    time = monotonic

    def sleep(self, seconds):
        self.now += seconds


class FakeVolumeAPI:
    def __init__(self, case, clock):
        self.case = case
        self.clock = clock
        self.polls = 0

    def status_at(self, t):
        status = None
        for entry in self.case['timeline']:
            if entry['t'] <= t:
                status = entry['status']
        return status

    def get(self, context, volume_id):
        self.polls += 1
        t = self.clock.now
        for fault in self.case.get('faults', []):
            if fault['from'] <= t < fault['to']:
                kind = fault['kind']
                if kind == 'http_404':
                    raise exception.VolumeNotFound(volume_id=volume_id)
                if kind == 'haproxy_503':
                    raise cinder_exception.ClientException(503)
                if kind == 'http_429':
                    raise cinder_exception.ClientException(429)
                if kind == 'reset':
                    raise exception.CinderConnectionFailed(
                        reason='Connection reset by peer')
                raise ValueError('unknown fault kind %s' % kind)
        return {'id': volume_id, 'status': self.status_at(t)}

    def get_messages(self, context, volume_id):
        return [{'event_id': m.get('event_id'),
                 'user_message': m['user_message'], 'created_at': ''}
                for m in self.case.get('messages', [])]


def final_change(case):
    last = case['timeline'][-1]
    return last['t'], last['status']


def replay(case):
    clock = Clock()
    api = FakeVolumeAPI(case, clock)

    class FakeManager:
        volume_api = api
        _raise_volume_not_created = (
            manager.ComputeManager._raise_volume_not_created)

    message = ''
    with mock.patch.object(manager, 'time', clock):
        try:
            manager.ComputeManager._await_block_device_map_created(
                FakeManager(), None, 'vol-' + case['id'])
            outcome = 'available'
        except exception.VolumeNotCreated as exc:
            message = str(exc)
            status = api.status_at(clock.now)
            outcome = ('failed' if status not in ('creating', 'downloading')
                       else 'timeout')
        except exception.VolumeNotFound as exc:
            message = str(exc)
            outcome = 'vanished'
    t_final, status = final_change(case)
    lag = None
    if outcome == 'available' or (outcome == 'failed' and
                                  status not in ('creating', 'downloading')):
        lag = clock.now - t_final
    return outcome, api.polls, clock.now, lag, message


def check(case, outcome, polls, lag, message):
    expect = case.get('expect', {})
    misses = []
    if expect.get('outcome') != outcome:
        misses.append('outcome %s, expected %s'
                      % (outcome, expect.get('outcome')))
    if 'max_polls' in expect and polls > expect['max_polls']:
        misses.append('%d polls > %d' % (polls, expect['max_polls']))
    if ('detect_within_s' in expect and lag is not None and
            lag > expect['detect_within_s']):
        misses.append('seen %.1f s late > %s' % (lag,
                                                 expect['detect_within_s']))
    for word in expect.get('error_mentions', []):
        if word not in message:
            misses.append('error does not mention %r' % word)
    return misses


def main(path):
    conf = nova.conf.CONF
    conf([], project='nova', default_config_files=[])
    cases = yaml.safe_load(open(path))
    print('%-4s %-10s %5s %7s %6s  %s' % ('case', 'outcome', 'polls',
                                          'end_s', 'lag_s', 'vs. expect'))
    met = 0
    for case in cases:
        outcome, polls, end, lag, message = replay(case)
        misses = check(case, outcome, polls, lag, message)
        met += not misses
        print('%-4s %-10s %5d %7.1f %6s  %s' % (
            case['id'], outcome, polls, end,
            '-' if lag is None else '%.1f' % lag,
            'meets' if not misses else '; '.join(misses)))
    print('%d of %d cases meet every expectation with nova\'s defaults'
          % (met, len(cases)))


if __name__ == '__main__':
    main(sys.argv[1])
