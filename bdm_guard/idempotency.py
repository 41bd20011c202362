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

"""Idempotency keys, request ids and the create request body.

Cinder has no idempotency support (no ``ClientToken`` as in AWS EC2, no
``Idempotency-Key`` header as in the IETF httpapi draft), so bdm-guard keeps
the key in volume metadata and derives the request id from it.
"""

import collections.abc
import uuid

from oslo_utils import uuidutils

from bdm_guard import exception
from bdm_guard import reconcile

IDEMPOTENCY_METADATA_KEY = reconcile.IDEMPOTENCY_METADATA_KEY
#: Cinder limits metadata values to 255 characters.
MAX_KEY_LENGTH = 255
#: Cinder's own upper bound on a volume size field (int32).
MAX_SIZE_GB = 2 ** 31 - 1
_NAMESPACE = uuid.UUID('6f1d3b52-4c0e-5b7a-9a8e-2d5c1f0b9e47')


def key_for_bdm(instance_uuid, bdm_uuid):
    """A stable idempotency key for the volume of one block device mapping.

    :param instance_uuid: the instance's UUID (str).
    :param bdm_uuid: the BlockDeviceMapping's ``uuid`` (str).
    :returns: a UUID string (UUIDv5, RFC 9562), the same for the same pair
        in every process and after every restart.
    :raises bdm_guard.exception.InvalidInput: either is not a UUID.
    """
    for name, value in (('instance_uuid', instance_uuid),
                        ('bdm_uuid', bdm_uuid)):
        if not isinstance(value, str) or not uuidutils.is_uuid_like(value):
            raise exception.InvalidInput(
                reason='%s %r is not a UUID' % (name, value))
    return str(uuid.uuid5(_NAMESPACE, 'bdm:%s/%s' % (
        instance_uuid.lower(), bdm_uuid.lower())))


def request_id_for_key(key):
    """The ``X-OpenStack-Request-ID`` for every call made for ``key``.

    oslo.middleware accepts a global request id of the form ``req-<uuid>``;
    deriving it from the key makes cinder log the same id for every POST
    and reconcile of one create, across retries and process restarts.

    :param key: the idempotency key (str).
    :returns: ``req-<uuid>``.
    """
    return 'req-%s' % uuid.uuid5(_NAMESPACE, 'request:%s' % key)


def check_key(key):
    """Validate an idempotency key.

    :raises bdm_guard.exception.InvalidIdempotencyKey: not a non-empty
        printable string of at most 255 characters.
    """
    if not isinstance(key, str) or not key:
        raise exception.InvalidIdempotencyKey(key=key, reason='empty')
    if len(key) > MAX_KEY_LENGTH:
        raise exception.InvalidIdempotencyKey(
            key=key[:32] + '...', reason='longer than %d characters'
            % MAX_KEY_LENGTH)
    if not key.isprintable():
        raise exception.InvalidIdempotencyKey(
            key=key, reason='contains non-printable characters')


def build_request(size_gb, key, image_id, snapshot_id, source_volid, name,
                  description, volume_type, availability_zone, metadata):
    """Validate a create request and build its ``volume`` body.

    :param size_gb: size in GiB (int, 1 .. 2**31-1).
    :param key: the idempotency key, already checked.
    :param image_id: image UUID or None (the other sources likewise).
    :param metadata: extra metadata (dict of str to str) or None.
    :returns: ``(body, request_hash)``: the dict for ``{"volume": body}``
        (None values left out) and the hash stored beside the key.
    :raises bdm_guard.exception.InvalidInput: bad size, more than one
        source, a source that is not a UUID, metadata that is not a mapping
        (a list, a string), non-string metadata keys or values, or a
        reserved metadata key.
    """
    if isinstance(size_gb, bool) or not isinstance(size_gb, int):
        raise exception.InvalidInput(reason='size_gb must be an int, got %r'
                                     % (size_gb,))
    if not 1 <= size_gb <= MAX_SIZE_GB:
        raise exception.InvalidInput(reason='size_gb must be 1..%d GiB, '
                                     'got %d' % (MAX_SIZE_GB, size_gb))
    sources = [(k, v) for k, v in (('image', image_id),
                                   ('snapshot', snapshot_id),
                                   ('volume', source_volid)) if v]
    if len(sources) > 1:
        raise exception.InvalidInput(
            reason='at most one source, got %s' % ', '.join(
                k for k, _ in sources))
    for kind, value in sources:
        if not isinstance(value, str) or not uuidutils.is_uuid_like(value):
            raise exception.InvalidInput(reason='%s id %r is not a UUID'
                                         % (kind, value))
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, collections.abc.Mapping):
        raise exception.InvalidInput(reason='metadata must be a dict of '
                                     'str to str, got %s'
                                     % type(metadata).__name__)
    meta = dict(metadata)
    if not all(isinstance(k, str) and isinstance(v, str)
               for k, v in meta.items()):
        raise exception.InvalidInput(reason='metadata keys and values must '
                                     'be strings')
    for reserved in (IDEMPOTENCY_METADATA_KEY,
                     reconcile.REQUEST_HASH_METADATA_KEY):
        if reserved in meta:
            raise exception.InvalidInput(reason='metadata key %s is '
                                         'reserved' % reserved)
    source = sources[0] if sources else (None, None)
    req_hash = reconcile.request_hash(size_gb, source, volume_type)
    meta[IDEMPOTENCY_METADATA_KEY] = key
    meta[reconcile.REQUEST_HASH_METADATA_KEY] = req_hash
    body = {'size': size_gb, 'metadata': meta, 'imageRef': image_id,
            'snapshot_id': snapshot_id, 'source_volid': source_volid,
            'name': name, 'description': description,
            'volume_type': volume_type,
            'availability_zone': availability_zone}
    return {k: v for k, v in body.items() if v is not None}, req_hash
