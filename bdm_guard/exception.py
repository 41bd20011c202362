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

The classes below are in the order of their tree: bad input, the wait, the
create, cinder, nova. Each wait error is named for the wait
(``VolumeWait*``) and each create error for the create
(``VolumeCreate*``), so ``except VolumeCreateError`` catches every create
error and no wait error::

    BdmGuardException
     +-- InvalidInput (also a ValueError)
     |    +-- InvalidVolumeId, InvalidIdempotencyKey, UnreadableInput,
     |        InvalidLogFormat
     +-- VolumeWaitError
     |    +-- VolumeWaitFailed, VolumeWaitTimeout, VolumeWaitUnauthorized,
     |        VolumeVanished
     +-- VolumeCreateError
     |    +-- OverQuota, IdempotencyConflict, VolumeCreateRejected,
     |        VolumeCreateNotSent, VolumeCreateUnknown
     |                              +-- VolumeLookupFailed
     +-- CinderUnavailable
     |    +-- CinderConfigError
     +-- NovaIncompatible

Deprecated names, kept for one cycle (reading them warns):
``VolumeCreateFailed`` is :class:`VolumeWaitFailed` and
``VolumeCreateTimeout`` is :class:`VolumeWaitTimeout` (the same classes,
so ``except`` clauses with either name catch the same errors).
"""

import debtcollector
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
        kwargs = self.__dict__.get('kwargs', {})
        if name in kwargs:
            return kwargs[name]
        new = _RENAMED_KWARGS.get(name)
        if new in kwargs:
            debtcollector.deprecate(
                'The %r value of %s is deprecated' % (name,
                                                      type(self).__name__),
                message='Read %r, the same value.' % new, version='0.2.0',
                removal_version='0.3.0', category=DeprecationWarning,
                stacklevel=4)
            return kwargs[new]
        raise AttributeError(name)


#: Named values renamed in 0.2.0: ``{0.x name: name}``; the old name still
#: reads the value, with a warning, until 0.3.0.
_RENAMED_KWARGS = {'reconciles': 'lookups'}


# Bad input: raised before anything is sent.


class InvalidInput(BdmGuardException, ValueError):
    """Raised when a caller's argument is refused, before any request."""

    msg_fmt = 'Invalid input: %(reason)s'


class InvalidVolumeId(InvalidInput):
    """Raised when a volume id is not a UUID."""

    msg_fmt = ('Invalid volume id %(volume_id)r: a cinder volume id is a '
               'UUID.')


class InvalidIdempotencyKey(InvalidInput):
    """Raised when an idempotency key is empty, too long or unprintable."""

    msg_fmt = 'Invalid idempotency key %(key)s: %(reason)s'


class UnreadableInput(InvalidInput):
    """Raised when a file given to a tool cannot be read or parsed."""

    msg_fmt = 'Cannot read %(path)s: %(reason)s'


class InvalidLogFormat(InvalidInput):
    """Raised when a log format given to logscan cannot be used."""

    msg_fmt = 'Invalid log format %(format)r: %(reason)s'


# The wait: the volume exists, and did not become available.


class VolumeWaitError(BdmGuardException):
    """Raised when a wait ends without the volume being available.

    Subclasses carry ``volume_id``, ``status`` (last status seen, or None),
    ``elapsed`` (seconds) and ``polls`` (volume GETs), and a ``report``
    (:class:`bdm_guard.wait.WaitReport`) when one exists.
    """

    msg_fmt = 'Waiting for volume %(volume_id)s failed.'


class VolumeWaitFailed(VolumeWaitError):
    """Raised when the volume reaches a failed status (``error`` ...).

    Carries ``reason``: cinder's user message about the volume, if any.
    Named ``VolumeCreateFailed`` before 0.2.0 (deprecated alias).
    """

    msg_fmt = ('Volume %(volume_id)s entered status %(status)s after '
               '%(elapsed).1f s and %(polls)d polls: %(reason)s')


class VolumeWaitTimeout(VolumeWaitError):
    """Raised when the volume is still pending (or unseen) at the deadline.

    Carries ``deadline`` (seconds). Named ``VolumeCreateTimeout`` before
    0.2.0 (deprecated alias).
    """

    msg_fmt = ('Volume %(volume_id)s is not available after %(elapsed).1f s '
               'and %(polls)d polls (deadline %(deadline).0f s); last '
               'status: %(status)s.')


class VolumeWaitUnauthorized(VolumeWaitError):
    """Raised when cinder refuses every poll with HTTP 401, re-auth or not.

    The volume's state is unknown: it is not reported as still creating.
    """

    msg_fmt = ('Cinder answered HTTP 401 to %(unauthorized)d volume GETs in '
               'a row for volume %(volume_id)s, each after a fresh '
               're-authentication, after %(elapsed).1f s and %(polls)d '
               'polls; the volume\'s state is unknown. Check the service '
               'credentials and the token\'s project and roles.')


class VolumeVanished(VolumeWaitError):
    """Raised when the volume answers 404 past the visibility grace."""

    msg_fmt = ('Volume %(volume_id)s was not found (HTTP 404) after '
               '%(elapsed).1f s of waiting, past the %(grace).0f s '
               'visibility grace after its create; last status: '
               '%(status)s.')


# The create: POST /volumes.


class VolumeCreateError(BdmGuardException):
    """Raised when the create itself (POST /volumes) did not succeed."""

    msg_fmt = 'Creating the volume failed.'


class OverQuota(VolumeCreateError):
    """Raised when cinder refuses the create with a 413 naming a quota."""

    msg_fmt = ('Cinder refused the volume: over the %(quota)s quota '
               '(%(message)s)')


class IdempotencyConflict(VolumeCreateError):
    """Raised when a volume with the key differs from the request."""

    msg_fmt = ('Volume %(volume_id)s already carries idempotency key '
               '%(key)s but differs from the request in %(fields)s; it was '
               'left alone.')


class VolumeCreateRejected(VolumeCreateError):
    """Raised when cinder refuses the create with another 4xx."""

    msg_fmt = ('Cinder rejected the volume create (HTTP %(code)s): '
               '%(message)s')


class VolumeCreateNotSent(VolumeCreateError):
    """Raised when no POST reached cinder within the create's budget."""

    msg_fmt = ('No POST /volumes reached cinder in %(posts)d tries '
               '(%(reason)s); no volume was created.')


class VolumeCreateUnknown(VolumeCreateError):
    """Raised when a POST may have reached cinder but no volume shows."""

    msg_fmt = ('The outcome of creating a volume with idempotency key '
               '%(key)s is still unknown after %(posts)d POSTs and '
               '%(lookups)d lookups (%(reason)s); look it up later '
               'by that key.')


class VolumeLookupFailed(VolumeCreateUnknown):
    """Raised when no list of volumes by idempotency key succeeded in time.

    Raised instead of resending a POST: without one list that answered,
    the creator cannot tell "no volume has the key" from "cinder did not
    say". Carries ``key``, ``posts``, ``lookups``, ``reason`` and, when
    a POST answered with a volume, its ``volume_id``.
    """

    msg_fmt = ('No list of volumes by idempotency key %(key)s succeeded '
               'after %(posts)d POSTs and %(lookups)d lookups '
               '(%(reason)s); nothing was resent. Look it up later by '
               'that key.')


# cinder itself.


class CinderUnavailable(BdmGuardException):
    """Raised when cinder cannot be called; only as CinderConfigError."""

    msg_fmt = 'Cinder did not answer %(method)s %(url)s: %(reason)s'


class CinderConfigError(CinderUnavailable):
    """Raised when keystoneauth cannot send a call to cinder at all.

    Raised at once (never retried until a deadline) for a missing cinder
    endpoint in the catalog (region, interface), credentials keystone
    refuses, a missing auth plugin, failed version discovery or a malformed
    endpoint URL; retrying does not help. Carries ``method``, ``url``,
    ``error`` (the keystoneauth exception's class name) and ``reason``.
    """

    msg_fmt = ('Cannot call cinder (%(method)s %(url)s): %(error)s: '
               '%(reason)s. Check the credentials, region, interface and '
               'endpoint; retrying does not help.')


# nova.


class NovaIncompatible(BdmGuardException):
    """Raised when the installed nova cannot be guarded (nothing changed)."""

    msg_fmt = ('This nova cannot be guarded: %(reason)s. Nothing was '
               'changed.')


#: Deprecated names (0.2.0): ``{old name: the class}``.
_RENAMED = {
    'VolumeCreateFailed': VolumeWaitFailed,
    'VolumeCreateTimeout': VolumeWaitTimeout,
}


def __getattr__(name):
    """The deprecated names of :data:`_RENAMED`, with a warning."""
    try:
        new = _RENAMED[name]
    except KeyError:
        raise AttributeError('module %r has no attribute %r'
                             % (__name__, name)) from None
    debtcollector.deprecate(
        '%s.%s is deprecated' % (__name__, name),
        message='Use %s.%s, the same class: it is raised by the wait, not '
                'the create, and is no VolumeCreateError.'
                % (__name__, new.__name__),
        version='0.2.0', removal_version='0.3.0',
        category=DeprecationWarning, stacklevel=4)
    return new
