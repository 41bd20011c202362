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

"""Idempotency keys and the metadata that carries them.

Cinder has no idempotency support (no ``ClientToken`` as in AWS EC2, no
``Idempotency-Key`` header as in the IETF httpapi draft), so bdm-guard keeps
the key, and a hash of what was asked for, in the volume's metadata.
"""

import hashlib
import json
import typing
import uuid

from oslo_utils import uuidutils

from bdm_guard import exception

#: Metadata key holding the idempotency key.
IDEMPOTENCY_METADATA_KEY = 'bdm_guard_idempotency_key'
#: Metadata key holding :func:`request_hash`.
REQUEST_HASH_METADATA_KEY = 'bdm_guard_request_hash'
#: Longest key accepted: cinder's metadata values are at most 255 chars.
MAX_KEY_LENGTH = 255
_NAMESPACE = uuid.UUID('6f1d3b52-4c0e-5b7a-9a8e-2d5c1f0b9e47')


def key_for_bdm(instance_uuid: str, bdm_uuid: str) -> str:
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
                reason='%s %s is not a UUID' % (name, exception.shorten(
                    value)))
    return str(uuid.uuid5(_NAMESPACE, 'bdm:%s/%s' % (
        instance_uuid.lower(), bdm_uuid.lower())))


def request_id_for_key(key: str) -> str:
    """A ``req-<uuid>`` request id derived from ``key``.

    For callers with no global request id of their own (the ``bdm-guard
    create`` command): every call of one create, across retries and
    process restarts, then shows under the same id in cinder's logs. A
    caller that has one (nova's ``context.global_id``) keeps it: the
    creator never replaces it (oslo's global request id spec).

    :param key: the idempotency key (str).
    :returns: ``req-<uuid>``.
    """
    return 'req-%s' % uuid.uuid5(_NAMESPACE, 'request:%s' % key)


def check_key(key: object) -> str:
    """Validate an idempotency key.

    :returns: the key.
    :raises bdm_guard.exception.InvalidIdempotencyKey: not a string, empty,
        longer than 255 characters, or with non-printable characters.
    """
    if not isinstance(key, str):
        raise exception.InvalidIdempotencyKey(
            key=exception.shorten(key), reason='not a string but a %s'
            % type(key).__name__)
    if not key:
        raise exception.InvalidIdempotencyKey(key="''", reason='empty')
    if len(key) > MAX_KEY_LENGTH:
        raise exception.InvalidIdempotencyKey(
            key=exception.shorten(key), reason='longer than %d characters'
            % MAX_KEY_LENGTH)
    if not key.isprintable():
        raise exception.InvalidIdempotencyKey(
            key=exception.shorten(key),
            reason='contains non-printable characters')
    return key


def request_hash(size_gb: int,
                 source: tuple[typing.Optional[str], typing.Optional[str]],
                 volume_type: typing.Optional[str]) -> str:
    """A short stable hash of what makes two creates "the same request".

    :param size_gb: size in GiB (int).
    :param source: ``(kind, id)`` for the image/snapshot/volume source, or
        ``(None, None)``.
    :param volume_type: the type name or id, or None.
    :returns: 16 hex characters.
    """
    doc = json.dumps([size_gb, list(source), volume_type], sort_keys=True)
    return hashlib.sha256(doc.encode('utf-8')).hexdigest()[:16]
