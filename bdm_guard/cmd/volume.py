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

"""``bdm-guard wait`` and ``bdm-guard create``."""

import sys

from cliff import show

from bdm_guard import cinder
from bdm_guard.cmd import auth
from bdm_guard import create
from bdm_guard import exception
from bdm_guard.internal.wait import schedule
from bdm_guard import wait


def _progress(status, elapsed, volume):
    sys.stderr.write('%7.1f s  %s\n' % (elapsed, status or '(not found)'))
    sys.stderr.flush()


def _retrying(cause, elapsed):
    sys.stderr.write('%7.1f s  (no status: %s, retrying)\n' % (elapsed,
                                                               cause))
    sys.stderr.flush()


def _report_rows(report):
    return {
        'id': (report.volume or {}).get('id'),
        'status': (report.volume or {}).get('status'),
        'polls': report.polls,
        'elapsed_s': round(report.elapsed, 1),
        'deadline_s': round(report.deadline, 1),
        'statuses': ', '.join('%s@%.1fs' % (s, t)
                              for t, s in report.statuses),
        'retries': ', '.join('%s=%d' % kv
                             for kv in sorted(report.retries.items())),
    }


def _check_nova(args):
    """Refuse negative nova values before anything is sent."""
    schedule.check_number('--nova-retries', args.nova_retries)
    schedule.check_number('--nova-interval', args.nova_interval,
                          integer=False)


def _with_cleanup(exc):
    """``exc`` again, its message ending with the cleanup verdict."""
    volume = exc.kwargs.get('volume') or {}
    text = 'Volume %s: cleanup %s' % (volume.get('id'), exc.cleanup)
    if exc.kwargs.get('cleanup_reason'):
        text += ' (%s)' % exc.cleanup_reason
    return type(exc)(message='%s %s.' % (exc.msg, text), **exc.kwargs)


def _add_nova_budget(parser):
    parser.add_argument('--nova-retries', type=int, default=None,
                        metavar='N',
                        help='nova\'s block_device_allocate_retries: the '
                             'wait is never shorter than nova\'s budget.')
    parser.add_argument('--nova-interval', type=float, default=None,
                        metavar='SECONDS',
                        help='nova\'s block_device_allocate_retries_'
                             'interval.')


class WaitVolume(show.ShowOne):
    """Wait until a volume is available; fail fast on error."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('volume_id', metavar='VOLUME_ID')
        parser.add_argument('--size-gb', type=int, default=None,
                            help='Size in GiB of an image/snapshot/backup '
                                 'volume: extends the deadline by '
                                 'per_gib_allowance per GiB.')
        _add_nova_budget(parser)
        auth.add_arguments(parser, getattr(self.app, 'argv', None))
        return parser

    def take_action(self, args):
        cinder.check_volume_id(args.volume_id)
        schedule.check_number('--size-gb', args.size_gb)
        _check_nova(args)
        client = auth.client_from_args(args)
        report = wait.wait_for_volume(
            client, args.volume_id, size_gb=args.size_gb,
            on_status=_progress, on_retry=_retrying,
            allocate_retries=args.nova_retries,
            allocate_retries_interval=args.nova_interval)
        rows = _report_rows(report)
        return tuple(zip(*sorted(rows.items())))


class CreateVolume(show.ShowOne):
    """Create a volume idempotently (and optionally wait for it)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--size', type=int, required=True,
                            help='Size in GiB.')
        src = parser.add_mutually_exclusive_group()
        src.add_argument('--image', help='Image UUID to copy.')
        src.add_argument('--snapshot', help='Snapshot UUID.')
        src.add_argument('--source-volume', help='Volume UUID to clone.')
        key = parser.add_mutually_exclusive_group(required=True)
        key.add_argument('--idempotency-key',
                         help='The client token; a retry with the same '
                              'key never makes a second volume.')
        key.add_argument('--bdm', nargs=2,
                         metavar=('INSTANCE_UUID', 'BDM_UUID'),
                         help='Derive the key as nova would for this BDM.')
        parser.add_argument('--name')
        parser.add_argument('--description')
        parser.add_argument('--type', dest='volume_type')
        parser.add_argument('--availability-zone')
        parser.add_argument('--property', action='append', default=[],
                            metavar='KEY=VALUE',
                            help='Volume metadata (repeat).')
        parser.add_argument('--wait', action='store_true',
                            help='Wait until available.')
        parser.add_argument('--keep-on-failure', action='store_true',
                            help='With --wait: keep the volume when the '
                                 'wait fails (default: delete it).')
        _add_nova_budget(parser)
        auth.add_arguments(parser, getattr(self.app, 'argv', None))
        return parser

    def take_action(self, args):
        metadata = {}
        for item in args.property:
            if '=' not in item:
                raise exception.InvalidInput(
                    reason='--property wants KEY=VALUE, got %r' % item)
            k, v = item.split('=', 1)
            metadata[k] = v
        _check_nova(args)
        key = args.idempotency_key or create.key_for_bdm(*args.bdm)
        # A command may be the retry of an earlier one with the same key:
        # look it up first. With no request id of its own, every call of
        # the create shows in cinder's logs under one derived from the key.
        kwargs = dict(idempotency_key=key, resume=True, image_id=args.image,
                      snapshot_id=args.snapshot,
                      source_volid=args.source_volume, name=args.name,
                      description=args.description,
                      volume_type=args.volume_type,
                      availability_zone=args.availability_zone,
                      metadata=metadata or None)
        request_id = create.request_id_for_key(key)
        client = auth.client_from_args(args, global_request_id=request_id)
        rows = {}
        if args.wait:
            try:
                result, report = create.create_and_wait(
                    client, args.size,
                    delete_on_failure=not args.keep_on_failure,
                    on_status=_progress, allocate_retries=args.nova_retries,
                    allocate_retries_interval=args.nova_interval, **kwargs)
            except (exception.VolumeWaitError,
                    exception.CinderUnavailable) as exc:
                if 'cleanup' not in exc.kwargs:
                    raise
                raise _with_cleanup(exc) from None
            rows.update(_report_rows(report))
        else:
            result = create.create_volume(client, args.size, **kwargs)
            rows.update(id=result.volume['id'],
                        status=result.volume.get('status'))
        rows.update(outcome=result.how, posts=result.posts,
                    lookups=result.lookups, idempotency_key=key,
                    request_id=request_id,
                    deleted_duplicates=', '.join(result.deleted_duplicates),
                    undeleted_duplicates=', '.join(
                        result.undeleted_duplicates))
        return tuple(zip(*sorted(rows.items())))
