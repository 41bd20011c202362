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

"""The ``bdm-guard`` command: a cliff application.

Subcommands are ``bdm_guard.cli`` entry points, so each lives in its own
module and loads only when used.
"""

import argparse
import importlib.metadata
import math
import sys
import warnings

from cliff import app
from cliff import command
from cliff import commandmanager

from bdm_guard import exception

#: The ``bdm_guard.cli`` entry points' namespace.
NAMESPACE = 'bdm_guard.cli'
#: Exit status of a command that cannot run here.
EXIT_UNAVAILABLE = 2
_LAB = ('the lab (bdm-guard-lab): from a bdm-guard checkout, pip install '
        '-e lab (it brings nova 34 and cinder 29: a development machine, '
        'never nova\'s own environment)')
#: Commands another distribution provides: name -> what it needs.
OPTIONAL_COMMANDS = {'demo': _LAB, 'simulate': _LAB}


def _version():
    try:
        return importlib.metadata.version('bdm-guard')
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'


def bounded_int(low, high):
    """An argparse ``type``: a whole number in ``[low, high]``.

    Anything else is a usage error (exit 2) whose message shows the
    argument shortened (:func:`bdm_guard.exception.shorten`).

    :param low: smallest value (int).
    :param high: largest value (int).
    :returns: a converter from str to int.
    """
    def convert(text):
        try:
            value = int(text)
        except ValueError:
            if text.strip().lstrip('+-').isdigit():  # over int()'s limit
                raise argparse.ArgumentTypeError('%s is outside [%d, %d]' % (
                    exception.shorten(text), low, high)) from None
            raise argparse.ArgumentTypeError(
                '%s is not a whole number' % exception.shorten(text)
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError('%s is outside [%d, %d]' % (
                exception.shorten(value), low, high))
        return value
    return convert


def bounded_float(low, high, low_open=False):
    """An argparse ``type``: a finite number in ``[low, high]``.

    :param low: smallest value (float).
    :param high: largest value (float).
    :param low_open: True when ``low`` itself is out of range.
    :returns: a converter from str to float; NaN, infinities and values
        out of range are usage errors (exit 2).
    """
    def convert(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                '%s is not a number' % exception.shorten(text)) from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(
                '%s is not a finite number' % exception.shorten(text))
        if value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError('%s is outside %s%g, %g]' % (
                exception.shorten(value), '(' if low_open else '[', low,
                high))
        return value
    return convert


def checked(check):
    """An argparse ``type`` from a check that raises InvalidInput.

    :param check: a callable taking the argument (str) and returning the
        value, raising :class:`bdm_guard.exception.InvalidInput` (whose
        message must already shorten the argument).
    :returns: a converter whose failures are usage errors (exit 2).
    """
    def convert(text):
        try:
            return check(text)
        except exception.InvalidInput as exc:
            # Plain InvalidInput: its reason alone; subclasses say more.
            plain = type(exc) is exception.InvalidInput
            raise argparse.ArgumentTypeError(
                exc.kwargs.get('reason', exc.msg) if plain else exc.msg
            ) from None
    return convert


class _AnyArguments(argparse.ArgumentParser):
    """Takes any arguments: an unavailable command says why, not usage."""

    def parse_args(self, args=None, namespace=None):
        return self.parse_known_args(args, namespace)[0]


def unavailable(name, reason):
    """A cliff command that only says why ``name`` cannot run here.

    :param name: the command's name (str).
    :param reason: why (str, one sentence).
    :returns: a :class:`cliff.command.Command` subclass; running it writes
        ``bdm-guard <name>: unavailable: <reason>`` to stderr and exits
        with :data:`EXIT_UNAVAILABLE`, whatever its arguments.
    """
    class Unavailable(command.Command):
        __doc__ = 'Unavailable here: %s' % reason

        def get_parser(self, prog_name):
            return _AnyArguments(prog=prog_name,
                                 description=self.get_description())

        def take_action(self, parsed_args):
            self.app.stderr.write('bdm-guard %s: unavailable: %s\n'
                                  % (name, reason))
            self.app.stderr.flush()
            return EXIT_UNAVAILABLE

    Unavailable.__name__ = 'Unavailable_%s' % name
    return Unavailable


def _load_failure(name, target, exc):
    """Why the entry point ``target`` of ``name`` does not import (str)."""
    why = '%s does not import (%s: %s)' % (
        target, type(exc).__name__, str(exc).splitlines()[0][:200]
        if str(exc) else '')
    try:
        from bdm_guard.nova import launcher
        launcher.check_requirements()
    except Exception as found:  # noqa: Refused, or no metadata at all
        if type(found).__name__ == 'Refused':
            why += '; %s' % found
    return '%s needs %s' % (name, why)


def entry_points(namespace):
    """``[(name, entry point)]`` of ``namespace``, none loaded, first wins.

    :param namespace: the entry point group (str).
    """
    found = importlib.metadata.entry_points()
    group = (found.select(group=namespace) if hasattr(found, 'select')
             else found.get(namespace, []))
    result = {}
    for ep in group:
        result.setdefault(ep.name, ep)
    return sorted(result.items())


class _LazyCommand:
    """An entry point loaded when its command is used.

    cliff's own loading (stevedore) drops a command whose module does not
    import, without a word; this one stands in for it with a command that
    says why (:func:`unavailable`).
    """

    def __init__(self, name, ep):
        self.name = name
        self.ep = ep

    def load(self):
        try:
            return self.ep.load()
        except Exception as exc:  # noqa: any failure, said to the user
            return unavailable(self.name, _load_failure(
                self.name, self.ep.value, exc))


class CommandManager(commandmanager.CommandManager):
    """cliff's manager; unloadable and missing commands say why."""

    def load_commands(self, namespace):
        self.group_list.append(namespace)
        for name, ep in entry_points(namespace):
            self.commands[name] = _LazyCommand(name, ep)
        if namespace == NAMESPACE:
            for name, needs in OPTIONAL_COMMANDS.items():
                if name not in self.commands:
                    self.add_command(name, unavailable(
                        name, '%s needs %s' % (name, needs)))


class BdmGuardApp(app.App):
    """bdm-guard: reliable boot-from-volume creates for nova."""

    def __init__(self):
        super().__init__(
            description=BdmGuardApp.__doc__.strip().splitlines()[0],
            version=_version(),
            command_manager=CommandManager(NAMESPACE),
            deferred_help=True)
        self.argv = []

    def run(self, argv):
        # Commands need the raw argv to know which keystoneauth plugin's
        # options to add (keystoneauth reads --os-auth-type from it).
        self.argv = list(argv)
        try:
            return super().run(argv)
        except SystemExit as exc:
            # argparse's usage errors (exit 2) and --help (exit 0): an
            # exit status for in-process callers too, not an exception.
            if exc.code is None or isinstance(exc.code, int):
                return exc.code or 0
            return 2


def main(argv=None):
    """Run ``bdm-guard``; returns the process exit code."""
    # The lab imports nova and cinder, whose eventlet import warns about
    # eventlet's own deprecation: noise for an operator, not our finding.
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    return BdmGuardApp().run(sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
