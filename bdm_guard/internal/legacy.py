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

"""0.x's flat keyword forms of the public functions, kept for one cycle.

0.x's ``create_volume``, ``create_and_wait`` and ``wait_for_volume`` took
the request's fields and the wait budget's fields as flat keywords. 0.2.0
groups them into :class:`bdm_guard.create.VolumeRequest` and
:class:`bdm_guard.wait.Budget`; the decorators here still take the flat
keywords, warn through debtcollector, and build the object.
"""

import functools
import sys

import debtcollector

#: The release that deprecated the flat forms, and the one that drops them.
VERSION = '0.2.0'
REMOVAL_VERSION = '0.3.0'


def warn(what, instead):
    """Warn that a 0.x form is deprecated, pointing at the caller's line.

    :param what: the form, ``'Passing size_gb to wait_for_volume()'``.
    :param instead: what to do instead (a sentence).
    """
    # The caller is the first frame outside this module (the wrappers
    # below may be stacked); debtcollector adds two frames of its own.
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_code.co_filename == __file__:
        level, frame = level + 1, frame.f_back
    debtcollector.deprecate(
        '%s is deprecated' % what, message=instead, version=VERSION,
        removal_version=REMOVAL_VERSION, category=DeprecationWarning,
        stacklevel=level + 2)


def folds(name, fields, build, position=None):
    """Fold the flat keywords ``fields`` into the argument ``name``.

    :param name: the new argument (``'budget'``).
    :param fields: the 0.x keywords it replaces (tuple of str).
    :param build: ``build(**flat)`` makes the new argument's value (the
        class, whose own checks run).
    :param position: the new argument's position, when 0.x passed its
        first field there (``create_volume(client, 10, ...)``); None for
        a keyword-only argument.
    :returns: a decorator for a public function.
    """
    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            flat = {k: kwargs.pop(k) for k in fields if k in kwargs}
            if (position is not None and len(args) > position
                    and not isinstance(args[position], build)):
                if fields[0] in flat:
                    raise TypeError('%s() got %s twice'
                                    % (func.__name__, fields[0]))
                flat[fields[0]] = args[position]
                args = args[:position] + args[position + 1:]
            if not flat:
                return func(*args, **kwargs)
            if kwargs.get(name) is not None or (
                    position is not None and len(args) > position):
                raise TypeError('%s() takes %s or its fields (%s), not '
                                'both' % (func.__name__, name,
                                          ', '.join(sorted(flat))))
            warn('Passing %s to %s()' % (', '.join(sorted(flat)),
                                         func.__name__),
                 'Pass %s=%s(...) instead.' % (name, build.__qualname__))
            kwargs[name] = build(**flat)
            return func(*args, **kwargs)
        return wrapper
    return decorator
