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

"""Lab scenarios: the load, cinder's timings and the faults on the wire.

A scenario is a YAML file (format in ``doc/source/contributor/lab.rst``);
the packaged ones are ``none``, ``seed`` and ``harsh``
(``bdm_guard_lab/scenarios/``). Every duration in it is in seconds of
unscaled time; the lab multiplies them all by the run's time scale.
"""

import dataclasses
import hashlib
import importlib.resources
import os
import re

import yaml

from bdm_guard_lab import exception

FAULTS = ('lost_request', 'lost_response', 'gateway_504', 'no_server_503',
          'visibility_lag', 'reset')
METHODS = ('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH')
#: Rules apply to these paths unless they name their own (a regex matched
#: against the path after ``/v3/<project>``, query string excluded).
DEFAULT_PATHS = {
    'lost_request': r'^/volumes$',
    'lost_response': r'^/volumes$',
    'gateway_504': r'^/volumes$',
    'no_server_503': r'^/volumes$',
    'visibility_lag': r'^/volumes(/detail|/[0-9a-f-]{36})?$',
    'reset': r'^/volumes/[0-9a-f-]{36}$',
}
DEFAULT_METHODS = {
    'lost_request': ['POST'], 'lost_response': ['POST'],
    'gateway_504': ['POST'], 'no_server_503': ['POST'],
    'visibility_lag': ['GET'], 'reset': ['GET'],
}


@dataclasses.dataclass(frozen=True)
class Rule:
    """One fault rule.

    :ivar fault: one of :data:`FAULTS`.
    :ivar probability: chance (0..1) that a matching request gets the fault.
    :ivar methods: HTTP methods it applies to.
    :ivar path: regex on the path after ``/v3/<project>``.
    :ivar seconds: ``gateway_504``: seconds before the 504 (haproxy's
        ``timeout server``); ``visibility_lag``: seconds after its creation
        during which a volume may be missing from GETs and lists.
    :ivar forward: ``gateway_504`` only: whether cinder gets the request
        (it does when haproxy times out waiting for the answer).
    :ivar times: when > 0, only the first ``times`` requests of one identity
        (the same volume's POSTs, GETs...) may get the fault.
    """

    fault: str
    probability: float = 0.0
    methods: tuple = ()
    path: str = ''
    seconds: float = 0.0
    forward: bool = True
    times: int = 0

    def matches(self, method, path):
        return method in self.methods and re.search(self.path, path)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A load, cinder's timings and a list of fault rules.

    :ivar name: the scenario's name.
    :ivar seed: seed of every random draw (faults and durations).
    :ivar volumes: boots in one run (the demo's default ``--volumes``).
    :ivar size_gb: size of each volume, GiB.
    :ivar image: whether volumes are created from the lab image.
    :ivar create_seconds: mean driver create time.
    :ivar create_jitter: spread of each duration (fraction of the mean).
    :ivar download_seconds_per_gib: mean image copy time per GiB.
    :ivar rules: the :class:`Rule` list, applied in order (first hit wins).
    """

    name: str
    seed: int = 0
    volumes: int = 50
    size_gb: int = 2
    image: bool = True
    create_seconds: float = 2.0
    create_jitter: float = 0.5
    download_seconds_per_gib: float = 0.0
    description: str = ''
    rules: tuple = ()

    def with_seed(self, seed):
        """A copy with another seed."""
        return dataclasses.replace(self, seed=int(seed))

    def draw(self, *parts):
        """A deterministic number in [0, 1) for the given identity."""
        text = ':'.join(str(p) for p in (self.seed,) + parts)
        digest = hashlib.sha256(text.encode('utf-8')).digest()
        return int.from_bytes(digest[:8], 'big') / 2.0 ** 64


def _number(source, data, key, default, low, high=None, kind=float):
    value = data.get(key, default)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise exception.InvalidScenario(
            source=source, reason='%s must be a number, not %r' % (key, value))
    if value < low or (high is not None and value > high):
        raise exception.InvalidScenario(
            source=source, reason='%s=%s is outside [%s, %s]' % (
                key, value, low, 'inf' if high is None else high))
    return value


def _rule(source, index, data):
    where = '%s (rule %d)' % (source, index)
    if not isinstance(data, dict):
        raise exception.InvalidScenario(source=where,
                                        reason='a rule is a mapping')
    fault = data.get('fault')
    if fault not in FAULTS:
        raise exception.InvalidScenario(
            source=where, reason='fault must be one of %s, not %r' % (
                ', '.join(FAULTS), fault))
    unknown = set(data) - {'fault', 'probability', 'methods', 'path',
                           'seconds', 'forward', 'times'}
    if unknown:
        raise exception.InvalidScenario(
            source=where, reason='unknown keys %s' % sorted(unknown))
    methods = data.get('methods', DEFAULT_METHODS[fault])
    if (not isinstance(methods, list)
            or not all(m in METHODS for m in methods)):
        raise exception.InvalidScenario(
            source=where, reason='methods must be a list of %s' % (METHODS,))
    path = data.get('path', DEFAULT_PATHS[fault])
    try:
        re.compile(path)
    except (re.error, TypeError) as exc:
        raise exception.InvalidScenario(source=where,
                                        reason='bad path regex: %s' % exc)
    return Rule(fault=fault,
                probability=_number(where, data, 'probability', 0.0, 0, 1),
                methods=tuple(methods), path=path,
                seconds=_number(where, data, 'seconds', 0.0, 0, 3600),
                forward=bool(data.get('forward', True)),
                times=_number(where, data, 'times', 0, 0, 1000, kind=int))


def parse(data, source='<scenario>'):
    """Build a :class:`Scenario` from decoded YAML.

    :param data: a mapping.
    :param source: where it came from, for error messages.
    :raises bdm_guard_lab.exception.InvalidScenario: on any bad field.
    """
    if not isinstance(data, dict):
        raise exception.InvalidScenario(source=source,
                                        reason='the top level is a mapping')
    unknown = set(data) - {f.name for f in dataclasses.fields(Scenario)}
    if unknown:
        raise exception.InvalidScenario(
            source=source, reason='unknown keys %s' % sorted(unknown))
    rules = data.get('rules') or []
    if not isinstance(rules, list):
        raise exception.InvalidScenario(source=source,
                                        reason='rules must be a list')
    return Scenario(
        name=str(data.get('name', source)),
        description=str(data.get('description', '')),
        seed=_number(source, data, 'seed', 0, 0, kind=int),
        volumes=_number(source, data, 'volumes', 50, 1, 100000, kind=int),
        size_gb=_number(source, data, 'size_gb', 2, 1, 16384, kind=int),
        image=bool(data.get('image', True)),
        create_seconds=_number(source, data, 'create_seconds', 2.0, 0, 3600),
        create_jitter=_number(source, data, 'create_jitter', 0.5, 0, 1),
        download_seconds_per_gib=_number(
            source, data, 'download_seconds_per_gib', 0.0, 0, 3600),
        rules=tuple(_rule(source, i, r) for i, r in enumerate(rules, 1)))


def packaged():
    """Names of the scenarios shipped with bdm-guard."""
    folder = importlib.resources.files('bdm_guard_lab') / 'scenarios'
    return sorted(p.name[:-5] for p in folder.iterdir()
                  if p.name.endswith('.yaml'))


def _read(path):
    """The text of the scenario file at ``path``.

    :raises bdm_guard_lab.exception.InvalidScenario: the file cannot be read or
        is not UTF-8 text (a binary file, for example).
    """
    try:
        with open(path, encoding='utf-8') as stream:
            return stream.read()
    except OSError as exc:
        raise exception.InvalidScenario(source=path,
                                        reason=exc.strerror or str(exc))
    except ValueError as exc:  # UnicodeDecodeError, NUL bytes
        raise exception.InvalidScenario(
            source=path, reason='not a UTF-8 text file (%s)' % exc)


def load(name_or_path):
    """Load a packaged scenario by name, or a scenario file by path.

    An existing file wins over a packaged name (``./seed`` or a file
    called ``seed`` in the current directory is read as a file); an
    argument that is no file is a path when it holds a path separator or
    ends in ``.yaml``/``.yml``, else a packaged name.

    :param name_or_path: ``none``, ``seed``, ``harsh`` or a YAML file path.
    :returns: a :class:`Scenario`.
    :raises bdm_guard_lab.exception.InvalidScenario: unknown name, unreadable
        or binary (not UTF-8) file, bad YAML or bad field.
    """
    if (os.path.isfile(name_or_path) or os.path.sep in name_or_path
            or name_or_path.endswith(('.yaml', '.yml'))):
        text = _read(name_or_path)
    elif name_or_path in packaged():
        resource = (importlib.resources.files('bdm_guard_lab') / 'scenarios'
                    / (name_or_path + '.yaml'))
        text = resource.read_text(encoding='utf-8')
    else:
        raise exception.InvalidScenario(
            source=name_or_path, reason='no such packaged scenario '
            '(%s) and not a file path' % ', '.join(packaged()))
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise exception.InvalidScenario(source=name_or_path,
                                        reason='bad YAML: %s' % exc)
    return parse(data, name_or_path)
