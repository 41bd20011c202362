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

"""Throughput and memory of the log scanner on generated logs.

``python -m bdm_guard_lab.bench.logscan --size-mb 1024`` writes a
nova-compute log and two cinder-api logs (about ``size-mb`` MiB in all)
into a temporary folder, scans them in a child process and prints lines
per second and the child's peak RSS (``resource.getrusage``,
``RUSAGE_CHILDREN``). Every 40th boot is lost before cinder, every 55th
loses its response and every 70th is posted twice, so the scan's verdict
counts are checked against what was written.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from bdm_guard.logscan import api as logscan

_CTX = '[req-%s req-%s 3f1c0e9a2b7d4e61a0c5d8e2f4b6a9c1 %s - - -] '
_PROJECT = '9d2e4b7a1c3f4e5d8a6b0c2e4f6a8b0d'
_URL = 'http://192.0.2.10:8776/v3/%s/volumes' % _PROJECT
_NOISE = (
    'DEBUG oslo_concurrency.lockutils [-] Lock "compute_resources" acquired '
    'by "nova.compute.resource_tracker.ResourceTracker._update_available_'
    'resource" :: waited 0.000s inner /usr/lib/python3/dist-packages/oslo_'
    'concurrency/lockutils.py:404')
_BOOT_NOISE = 'INFO nova.compute.claims %s[instance: %s] Claim successful'


def _stamp(seconds):
    whole = int(seconds)
    return '%s.%03d' % (time.strftime('%Y-%m-%d %H:%M:%S',
                                      time.gmtime(whole)),
                        int((seconds - whole) * 1000))


def _uuid(kind, n):
    return '%08x-%04x-4000-8000-%012x' % (n, kind, n)


def _write_posts(api, verdict, t, n, gid, crid):
    """cinder-api's lines for boot ``n``'s creates (none, one or two)."""
    posts = {'lost_before_cinder': 0, 'duplicate_post': 2}.get(verdict, 1)
    for i in range(posts):
        c = _CTX % (gid, crid if i == posts - 1 else _uuid(5, n), _PROJECT)
        api.write('%s 2954 INFO cinder.api.openstack.wsgi %sPOST %s\n'
                  '%s 2954 INFO cinder.api.v3.volumes %sCreate volume'
                  ' of 2 GB\n%s 2954 INFO cinder.api.openstack.wsgi '
                  '%s%s returned with HTTP 202\n' % (
                      _stamp(t + 0.05 + i * 0.01), c, _URL,
                      _stamp(t + 0.06 + i * 0.01), c,
                      _stamp(t + 0.1 + i * 0.01), c, _URL))


def generate(folder, size_mb):
    """Write the logs; return (paths, expected verdict counts)."""
    nova_path = os.path.join(folder, 'nova-compute.log')
    cinder_paths = [os.path.join(folder, 'ctrl%d-cinder-api.log' % i)
                    for i in (1, 2)]
    target = size_mb * 1024 * 1024
    expected = {v: 0 for v in logscan.VERDICTS}
    start = 1776600000.0
    with open(nova_path, 'w') as nova, \
            open(cinder_paths[0], 'w') as api1, \
            open(cinder_paths[1], 'w') as api2:
        apis = (api1, api2)
        late = []  # (time, line): failures logged 30 s after the POST
        n = 0
        while nova.tell() + api1.tell() + api2.tell() < target:
            n += 1
            t = start + n * 0.2
            gid, rid, crid = _uuid(1, n), _uuid(2, n), _uuid(3, n)
            inst = _uuid(4, n)
            ctx = _CTX % (gid, rid, _PROJECT)
            verdict = ('lost_before_cinder' if n % 40 == 0 else
                       'response_lost' if n % 55 == 0 else
                       'duplicate_post' if n % 70 == 0 else 'ok')
            expected[verdict] += 1
            while late and late[0][0] <= t:
                nova.write(late.pop(0)[1])
            for i in range(30):
                nova.write('%s 4012 %s\n' % (_stamp(t + i * 0.001), _NOISE))
            for i in range(6):
                nova.write('%s 4012 %s\n' % (_stamp(t + 0.03), _BOOT_NOISE % (
                    ctx, inst)))
            nova.write('%s 4012 DEBUG cinderclient.v3.client %sREQ: curl -g '
                       '-i -X POST %s -H "Accept: application/json" -H '
                       '"X-OpenStack-Request-ID: req-%s" -d \'{"volume": '
                       '{"size": 2}}\' _http_log_request\n' % (
                           _stamp(t + 0.04), ctx, _URL, gid))
            _write_posts(apis[n % 2], verdict, t, n, gid, crid)
            if verdict in ('ok', 'duplicate_post'):
                nova.write('%s 4012 DEBUG cinderclient.v3.client %sRESP: '
                           '[202] x-openstack-request-id: req-%s\n'
                           % (_stamp(t + 0.12), ctx, crid))
            else:
                late.append((t + 30, '%s 4012 ERROR nova.compute.manager '
                             '%s[instance: %s] Instance failed block device '
                             'setup: CinderConnectionFailed\n'
                             % (_stamp(t + 30), ctx, inst)))
            if n % 5000 == 0:
                nova.write('\x00\x00binary \xff junk\n')
            for i in range(12):
                apis[i % 2].write('%s 2954 DEBUG oslo_messaging._drivers.'
                                  'amqpdriver [-] received reply msg_id: '
                                  '%032x __call__\n' % (_stamp(t + 0.15), i))
        for _, line in late:
            nova.write(line)
    return [nova_path] + cinder_paths, expected


def scan_only(paths):
    """Scan ``paths`` without keeping the posts; print JSON counts."""
    run = logscan.Scan(paths, logscan.make_parser())
    began = time.monotonic()
    posts = sum(1 for _ in run.posts())
    elapsed = time.monotonic() - began
    summary = run.summary()
    print(json.dumps({'seconds': elapsed, 'posts': posts,
                      'lines': summary['lines'],
                      'verdicts': summary['verdicts'],
                      'garbage_lines': summary['garbage_lines']}))


def main(argv=None):
    """Generate, scan in a child process, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mb', type=int, default=1024)
    parser.add_argument('--scan-only', nargs='+', metavar='FILE',
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scan_only:
        scan_only(args.scan_only)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        began = time.monotonic()
        paths, expected = generate(folder, args.size_mb)
        size = sum(os.path.getsize(p) for p in paths)
        print('generated %.0f MiB in %.0f s'
              % (size / 2 ** 20, time.monotonic() - began))
        out = subprocess.run(
            [sys.executable, '-m', 'bdm_guard_lab.bench.logscan',
             '--scan-only'] + paths, check=True, capture_output=True,
            text=True).stdout
        result = json.loads(out)
    rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print('scanned %d lines (%.0f MiB) in %.1f s: %.0f lines/s, %.1f MiB/s'
          % (result['lines'], size / 2 ** 20, result['seconds'],
             result['lines'] / result['seconds'],
             size / 2 ** 20 / result['seconds']))
    print('peak RSS of the scan: %.0f MiB' % rss_mib)
    print('verdicts: %s (written: %s)' % (result['verdicts'], expected))
    return 0 if result['verdicts'] == expected else 1


if __name__ == '__main__':
    sys.exit(main())
