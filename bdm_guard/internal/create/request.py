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

"""Check a create request and build its ``POST /volumes`` body."""

import collections.abc
import dataclasses
import typing

from oslo_utils import uuidutils

from bdm_guard import exception
from bdm_guard.internal.create import keys

#: Largest size cinder's API accepts (a 32-bit signed int, in GiB).
MAX_SIZE_GB = 2 ** 31 - 1


@dataclasses.dataclass(frozen=True)
class CreateRequest:
    """One checked create request.

    :ivar key: the idempotency key.
    :ivar size_gb: the size in GiB.
    :ivar body: the ``volume`` object of the POST body (None values left
        out), the key and :attr:`hash` in its metadata.
    :ivar hash: :func:`bdm_guard.internal.create.keys.request_hash`.
    :ivar sourced: made from an image, snapshot or volume: its wait gets
        the per-GiB allowance.
    """

    key: str
    size_gb: int
    body: dict
    hash: str
    sourced: bool

    @property
    def snapshot_id(self) -> typing.Optional[str]:
        """The requested snapshot id, or None."""
        return self.body.get('snapshot_id')

    @property
    def source_volid(self) -> typing.Optional[str]:
        """The requested source volume id, or None."""
        return self.body.get('source_volid')


def _check_size(size_gb):
    if isinstance(size_gb, bool) or not isinstance(size_gb, int):
        raise exception.InvalidInput(reason='size_gb must be an int, got %s'
                                     % exception.shorten(size_gb))
    if not 1 <= size_gb <= MAX_SIZE_GB:
        raise exception.InvalidInput(reason='size_gb must be 1..%d GiB, '
                                     'got %s' % (MAX_SIZE_GB,
                                                 exception.shorten(size_gb)))


def _check_sources(image_id, snapshot_id, source_volid):
    sources = [(k, v) for k, v in (('image', image_id),
                                   ('snapshot', snapshot_id),
                                   ('volume', source_volid)) if v]
    if len(sources) > 1:
        raise exception.InvalidInput(
            reason='at most one source, got %s' % ', '.join(
                k for k, _ in sources))
    for kind, value in sources:
        if not isinstance(value, str) or not uuidutils.is_uuid_like(value):
            raise exception.InvalidInput(reason='%s id %s is not a UUID'
                                         % (kind, exception.shorten(value)))
    return sources[0] if sources else (None, None)


def _check_metadata(metadata):
    if metadata is None:
        return {}
    if not isinstance(metadata, collections.abc.Mapping):
        raise exception.InvalidInput(reason='metadata must be a dict of '
                                     'str to str, got %s'
                                     % type(metadata).__name__)
    meta = dict(metadata)
    if not all(isinstance(k, str) and isinstance(v, str)
               for k, v in meta.items()):
        raise exception.InvalidInput(reason='metadata keys and values must '
                                     'be strings')
    for reserved in (keys.IDEMPOTENCY_METADATA_KEY,
                     keys.REQUEST_HASH_METADATA_KEY):
        if reserved in meta:
            raise exception.InvalidInput(reason='metadata key %s is '
                                         'reserved' % reserved)
    return meta


def check(size_gb, image_id=None, snapshot_id=None, source_volid=None,
          metadata=None):
    """Check a request's fields (the key apart).

    :returns: ``((source kind, source id), metadata dict)``; the source is
        ``(None, None)`` for a blank volume.
    :raises bdm_guard.exception.InvalidInput: see :func:`build`.
    """
    _check_size(size_gb)
    source = _check_sources(image_id, snapshot_id, source_volid)
    return source, _check_metadata(metadata)


def build(size_gb: int, key: str, *, image_id: typing.Optional[str] = None,
          snapshot_id: typing.Optional[str] = None,
          source_volid: typing.Optional[str] = None,
          name: typing.Optional[str] = None,
          description: typing.Optional[str] = None,
          volume_type: typing.Optional[str] = None,
          availability_zone: typing.Optional[str] = None,
          metadata: typing.Optional[typing.Mapping[str, str]] = None
          ) -> CreateRequest:
    """Check a create request and build its body.

    :param size_gb: size in GiB (int, 1 .. 2**31-1).
    :param key: the idempotency key
        (:func:`bdm_guard.internal.create.keys.check_key` runs first).
    :param image_id: image UUID or None (the other sources likewise).
    :param metadata: extra metadata (dict of str to str) or None.
    :returns: a :class:`CreateRequest`.
    :raises bdm_guard.exception.InvalidIdempotencyKey: a bad key.
    :raises bdm_guard.exception.InvalidInput: bad size, more than one
        source, a source that is not a UUID, metadata that is not a mapping
        (a list, a string), non-string metadata keys or values, or a
        reserved metadata key.
    """
    keys.check_key(key)
    source, meta = check(size_gb, image_id, snapshot_id, source_volid,
                         metadata)
    req_hash = keys.request_hash(size_gb, source, volume_type)
    meta[keys.IDEMPOTENCY_METADATA_KEY] = key
    meta[keys.REQUEST_HASH_METADATA_KEY] = req_hash
    body = {'size': size_gb, 'metadata': meta, 'imageRef': image_id,
            'snapshot_id': snapshot_id, 'source_volid': source_volid,
            'name': name, 'description': description,
            'volume_type': volume_type,
            'availability_zone': availability_zone}
    return CreateRequest(key=key, size_gb=size_gb,
                         body={k: v for k, v in body.items()
                               if v is not None},
                         hash=req_hash, sourced=source[0] is not None)
