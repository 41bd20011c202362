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

"""bdm-guard's exceptions.

Nova style: every class has a ``msg_fmt`` filled from named keyword
arguments, so the message is built once and the arguments stay available as
``exc.kwargs`` for callers that translate them (for example into nova's
``VolumeNotCreated``).
"""

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: Longest rendering of a caller's value in a message.
SHORTEN_LIMIT = 64


def shorten(value, limit=SHORTEN_LIMIT):
    """``repr(value)`` cut to about ``limit`` characters, for a message.

    A caller's argument can be huge (a 10 MB key); the message keeps its
    start and says how long it was.

    :param value: anything.
    :param limit: characters kept (int).
    :returns: str.
    """
    text = repr(value)
    if len(text) > limit:
        text = '%s... (%d characters)' % (text[:limit], len(text))
    return text


class BdmGuardException(Exception):
    """Base of every exception bdm-guard raises.

    :param message: a complete message that overrides ``msg_fmt``.
    :param kwargs: the named values ``msg_fmt`` refers to; kept in
        ``self.kwargs``.
    """

    msg_fmt = 'An unknown bdm-guard error occurred.'

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if not message:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                LOG.exception('Exception in string format operation, '
                              'kwargs: %s', kwargs)
                message = self.msg_fmt
        self.msg = message
        super().__init__(message)

    def __getattr__(self, name):
        try:
            return self.__dict__['kwargs'][name]
        except KeyError:
            raise AttributeError(name) from None


class InvalidInput(BdmGuardException, ValueError):
    msg_fmt = 'Invalid input: %(reason)s'


class InvalidVolumeId(InvalidInput):
    msg_fmt = ('Invalid volume id %(volume_id)r: a cinder volume id is a '
               'UUID.')


class InvalidIdempotencyKey(InvalidInput):
    msg_fmt = 'Invalid idempotency key %(key)s: %(reason)s'


class VolumeWaitError(BdmGuardException):
    """The wait for a volume ended without the volume being available.

    Subclasses carry ``volume_id``, ``status`` (last status seen, or None),
    ``elapsed`` (seconds) and ``polls`` (volume GETs), and a ``report``
    (:class:`bdm_guard.wait.WaitReport`) when one exists.
    """

    msg_fmt = 'Waiting for volume %(volume_id)s failed.'


class VolumeCreateFailed(VolumeWaitError):
    msg_fmt = ('Volume %(volume_id)s entered status %(status)s after '
               '%(elapsed).1f s and %(polls)d polls: %(reason)s')


class VolumeCreateTimeout(VolumeWaitError):
    msg_fmt = ('Volume %(volume_id)s is not available after %(elapsed).1f s '
               'and %(polls)d polls (deadline %(deadline).0f s); last '
               'status: %(status)s.')


class VolumeWaitUnauthorized(VolumeWaitError):
    """Cinder refused every poll with HTTP 401, re-authentication or not.

    The volume's state is unknown: it is not reported as still creating.
    """

    msg_fmt = ('Cinder answered HTTP 401 to %(unauthorized)d volume GETs in '
               'a row for volume %(volume_id)s, each after a fresh '
               're-authentication, after %(elapsed).1f s and %(polls)d '
               'polls; the volume\'s state is unknown. Check the service '
               'credentials and the token\'s project and roles.')


class VolumeVanished(VolumeWaitError):
    msg_fmt = ('Volume %(volume_id)s was not found (HTTP 404) after '
               '%(elapsed).1f s of waiting, past the %(grace).0f s '
               'visibility grace after its create; last status: '
               '%(status)s.')


class VolumeCreateError(BdmGuardException):
    """The create itself (POST /volumes) did not succeed."""

    msg_fmt = 'Creating the volume failed.'


class OverQuota(VolumeCreateError):
    msg_fmt = ('Cinder refused the volume: over the %(quota)s quota '
               '(%(message)s)')


class IdempotencyConflict(VolumeCreateError):
    msg_fmt = ('Volume %(volume_id)s already carries idempotency key '
               '%(key)s but differs from the request in %(fields)s; it was '
               'left alone.')


class VolumeCreateRejected(VolumeCreateError):
    msg_fmt = ('Cinder rejected the volume create (HTTP %(code)s): '
               '%(message)s')


class VolumeCreateNotSent(VolumeCreateError):
    msg_fmt = ('No POST /volumes reached cinder in %(posts)d tries '
               '(%(reason)s); no volume was created.')


class VolumeCreateUnknown(VolumeCreateError):
    msg_fmt = ('The outcome of creating a volume with idempotency key '
               '%(key)s is still unknown after %(posts)d POSTs and '
               '%(lookups)d lookups (%(reason)s); look it up later '
               'by that key.')


class CinderUnavailable(BdmGuardException):
    msg_fmt = 'Cinder did not answer %(method)s %(url)s: %(reason)s'


class NovaIncompatible(BdmGuardException):
    msg_fmt = ('This nova cannot be guarded: %(reason)s. Nothing was '
               'changed.')


class UnreadableInput(InvalidInput):
    msg_fmt = 'Cannot read %(path)s: %(reason)s'


class InvalidLogFormat(InvalidInput):
    msg_fmt = 'Invalid log format %(format)r: %(reason)s'


class VolumeLookupFailed(VolumeCreateUnknown):
    """No list of volumes by idempotency key succeeded in time.

    Raised instead of resending a POST: without one list that answered,
    the creator cannot tell "no volume has the key" from "cinder did not
    say". Carries ``key``, ``posts``, ``lookups``, ``reason`` and, when
    a POST answered with a volume, its ``volume_id``.
    """

    msg_fmt = ('No list of volumes by idempotency key %(key)s succeeded '
               'after %(posts)d POSTs and %(lookups)d lookups '
               '(%(reason)s); nothing was resent. Look it up later by '
               'that key.')


class CinderConfigError(CinderUnavailable):
    """keystoneauth cannot send a call to cinder; retrying does not help.

    Raised at once (never retried until a deadline) for a missing cinder
    endpoint in the catalog (region, interface), credentials keystone
    refuses, a missing auth plugin, failed version discovery or a malformed
    endpoint URL. Carries ``method``, ``url``, ``error`` (the keystoneauth
    exception's class name) and ``reason``.
    """

    msg_fmt = ('Cannot call cinder (%(method)s %(url)s): %(error)s: '
               '%(reason)s. Check the credentials, region, interface and '
               'endpoint; retrying does not help.')
