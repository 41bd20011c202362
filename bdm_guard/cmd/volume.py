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
from oslo_utils import uuidutils

from bdm_guard.cmd import auth
from bdm_guard.cmd import main
from bdm_guard import create
from bdm_guard import exception
from bdm_guard.internal.create import keys
from bdm_guard.internal.create import request
from bdm_guard import wait

#: Largest ``--nova-retries`` (nova's own option has no maximum).
MAX_NOVA_RETRIES = 1000000
#: Largest ``--nova-interval``, in seconds.
MAX_NOVA_INTERVAL = 3600.0
#: cinder's limit on names, descriptions, metadata keys and values.
MAX_FIELD = 255
_SIZE = main.bounded_int(1, request.MAX_SIZE_GB)


def _uuid(what):
    """An argparse ``type``: a UUID (``what`` names it in the message)."""
    def check(text):
        if not uuidutils.is_uuid_like(text):
            raise exception.InvalidInput(reason='%s %s is not a UUID' % (
                what, exception.shorten(text)))
        return text
    return main.checked(check)


def _text(what):
    """An argparse ``type``: a string of at most :data:`MAX_FIELD` chars."""
    def check(text):
        if len(text) > MAX_FIELD:
            raise exception.InvalidInput(reason='%s %s is longer than %d '
                                         'characters' % (
                                             what, exception.shorten(text),
                                             MAX_FIELD))
        return text
    return main.checked(check)


def _property(item):
    """``KEY=VALUE`` of ``--property`` as a ``(key, value)`` pair.

    :raises bdm_guard.exception.InvalidInput: no ``=``, an empty key, or a
        key or value over :data:`MAX_FIELD` characters.
    """
    key, sep, value = item.partition('=')
    if not sep:
        raise exception.InvalidInput(reason='wants KEY=VALUE, got %s (no '
                                     '"=")' % exception.shorten(item))
    if not key:
        raise exception.InvalidInput(reason='%s has an empty key'
                                     % exception.shorten(item))
    for what, text in (('key', key), ('value', value)):
        if len(text) > MAX_FIELD:
            raise exception.InvalidInput(
                reason='the %s %s is longer than %d characters'
                % (what, exception.shorten(text), MAX_FIELD))
    return key, value


def _volume_id(text):
    """A volume id argument: a UUID, shown shortened when it is not."""
    if not uuidutils.is_uuid_like(text):
        raise exception.InvalidInput(reason='Invalid volume id %s: a cinder '
                                     'volume id is a UUID'
                                     % exception.shorten(text))
    return text


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


def _with_cleanup(exc):
    """``exc`` again, its message ending with the cleanup verdict."""
    volume = exc.kwargs.get('volume') or {}
    text = 'Volume %s: cleanup %s' % (volume.get('id'), exc.cleanup)
    if exc.kwargs.get('cleanup_reason'):
        text += ' (%s)' % exc.cleanup_reason
    return type(exc)(message='%s %s.' % (exc.msg, text), **exc.kwargs)


def _add_nova_budget(parser):
    parser.add_argument('--nova-retries', default=None, metavar='N',
                        type=main.bounded_int(0, MAX_NOVA_RETRIES),
                        help='nova\'s block_device_allocate_retries (0 to '
                             '%d): the wait is never shorter than nova\'s '
                             'budget.' % MAX_NOVA_RETRIES)
    parser.add_argument('--nova-interval', default=None, metavar='SECONDS',
                        type=main.bounded_float(0, MAX_NOVA_INTERVAL),
                        help='nova\'s block_device_allocate_retries_'
                             'interval (0 to %d).' % MAX_NOVA_INTERVAL)


class WaitVolume(show.ShowOne):
    """Wait until a volume is available; fail fast on error."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('volume_id', metavar='VOLUME_ID',
                            type=main.checked(_volume_id))
        parser.add_argument('--size-gb', default=None,
                            type=main.bounded_int(0, request.MAX_SIZE_GB),
                            help='Size in GiB of an image/snapshot/backup '
                                 'volume: extends the deadline by '
                                 'per_gib_allowance per GiB (0 to %d).'
                                 % request.MAX_SIZE_GB)
        _add_nova_budget(parser)
        auth.add_arguments(parser, getattr(self.app, 'argv', None))
        return parser

    def take_action(self, args):
        client = auth.client_from_args(args)
        report = wait.wait_for_volume(
            client, args.volume_id, budget=wait.Budget(
                size_gb=args.size_gb, allocate_retries=args.nova_retries,
                allocate_retries_interval=args.nova_interval),
            on_status=_progress, on_retry=_retrying)
        rows = _report_rows(report)
        return tuple(zip(*sorted(rows.items())))


class CreateVolume(show.ShowOne):
    """Create a volume idempotently (and optionally wait for it)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--size', type=_SIZE, required=True,
                            help='Size in GiB (1 to %d).'
                                 % request.MAX_SIZE_GB)
        src = parser.add_mutually_exclusive_group()
        src.add_argument('--image', type=_uuid('image id'),
                         help='Image UUID to copy.')
        src.add_argument('--snapshot', type=_uuid('snapshot id'),
                         help='Snapshot UUID.')
        src.add_argument('--source-volume', type=_uuid('volume id'),
                         help='Volume UUID to clone.')
        key = parser.add_mutually_exclusive_group(required=True)
        key.add_argument('--idempotency-key',
                         type=main.checked(keys.check_key),
                         help='The client token (1 to %d printable '
                              'characters); a retry with the same key '
                              'never makes a second volume.'
                              % keys.MAX_KEY_LENGTH)
        key.add_argument('--bdm', nargs=2, type=_uuid('id'),
                         metavar=('INSTANCE_UUID', 'BDM_UUID'),
                         help='Derive the key as nova would for this BDM.')
        parser.add_argument('--name', type=_text('--name'))
        parser.add_argument('--description', type=_text('--description'))
        parser.add_argument('--type', dest='volume_type',
                            type=_text('--type'))
        parser.add_argument('--availability-zone',
                            type=_text('--availability-zone'))
        parser.add_argument('--property', action='append', default=[],
                            metavar='KEY=VALUE',
                            type=main.checked(_property),
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
        metadata = dict(args.property)
        key = (args.idempotency_key if args.bdm is None
               else create.key_for_bdm(*args.bdm))
        # A command may be the retry of an earlier one with the same key:
        # look it up first. With no request id of its own, every call of
        # the create shows in cinder's logs under one derived from the key.
        request = create.VolumeRequest(
            args.size, image_id=args.image, snapshot_id=args.snapshot,
            source_volid=args.source_volume, name=args.name,
            description=args.description, volume_type=args.volume_type,
            availability_zone=args.availability_zone,
            metadata=metadata or None)
        request_id = create.request_id_for_key(key)
        client = auth.client_from_args(args, global_request_id=request_id)
        rows = {}
        if args.wait:
            try:
                result, report = create.create_and_wait(
                    client, request, idempotency_key=key, resume=True,
                    delete_on_failure=not args.keep_on_failure,
                    on_status=_progress, budget=wait.Budget(
                        allocate_retries=args.nova_retries,
                        allocate_retries_interval=args.nova_interval))
            except (exception.VolumeWaitError,
                    exception.CinderUnavailable) as exc:
                if 'cleanup' not in exc.kwargs:
                    raise
                raise _with_cleanup(exc) from None
            rows.update(_report_rows(report))
        else:
            result = create.create_volume(client, request,
                                          idempotency_key=key, resume=True)
            rows.update(id=result.volume['id'],
                        status=result.volume.get('status'))
        rows.update(outcome=result.how, posts=result.posts,
                    lookups=result.lookups, idempotency_key=key,
                    request_id=request_id,
                    deleted_duplicates=', '.join(result.deleted_duplicates),
                    undeleted_duplicates=', '.join(
                        result.undeleted_duplicates))
        return tuple(zip(*sorted(rows.items())))
