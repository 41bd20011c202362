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

"""The guarded arms: one :class:`GuardArm` record each, and their parts.

The demo compares two roles. ``stock`` is nova as shipped
(:mod:`bdm_guard_lab.arms.stock`); every other arm is a guarded arm, one
entry of :data:`ARMS`:

* ``guard`` (library mode): :func:`bdm_guard.create.create_and_wait`,
  polling;
* ``launcher`` (nova mode): nova with :func:`bdm_guard.nova.guard.install`
  (``mode='launcher'``), as ``bdm-guard-nova-compute`` runs it;
* ``patched`` (nova mode): nova with ``patches/nova`` applied to a copy
  (:class:`~bdm_guard_lab.nova.patched.PatchedNova`);
* ``events`` (both modes): the guard woken by cinder's notifications
  through a real RabbitMQ (:class:`bdm_guard_lab.broker.RabbitMQ`; cinder's
  driver ``messagingv2``, RPC stays ``fake:/``), polling as the backstop,
  routed by two ``bdm-guard-relay`` processes
  (:class:`bdm_guard_lab.relay.Relays`) to the one host that waits, as
  ``[bdm_guard_events] route = relay`` deploys it. In library mode one
  :class:`bdm_guard.events.EventSource` serves every boot, as one
  nova-compute process shares it; in nova mode the lab's nova-compute runs
  its own.

An arm is a name, the modes that run it, the nova it runs in nova mode and
its *parts*: each part is a function ``part(run)`` that starts what the arm
needs besides cinder, the fault proxy and nova (entering its fixtures into
``run.stack``, so that they stop after cinder and nova) and hands on what
cinder, nova and the boots need through the :class:`ArmRun`. The mode
modules (:mod:`~bdm_guard_lab.arms.library_mode`,
:mod:`~bdm_guard_lab.arms.nova_mode`) call :func:`start` before cinder
starts and read the run's fields; they know no arm by name but ``stock``.

Adding an arm is one entry of :data:`ARMS`, plus a part when it needs a
service no arm starts yet, e.g.::

    GuardArm('pools', nova='events', parts=(broker,),
             library_parts=(event_source,)),

(the events arm with per-host pools instead of the relay), where a part
``part(run)`` starts its service and sets what cinder and nova need in
``run.cinder`` and ``run.nova``.
"""

import dataclasses
import glob
import os
import re
import socket
import typing
import uuid

import fixtures

from bdm_guard import events
from bdm_guard import opts
from bdm_guard_lab import broker as lab_broker
from bdm_guard_lab import exception
from bdm_guard_lab.nova import patched
from bdm_guard_lab import relay as lab_relay
from bdm_guard_lab import shims

#: The demo's modes (``--mode``).
LIBRARY, NOVA = 'library', 'nova'
#: The other role: nova as shipped.
STOCK = 'stock'
#: Real seconds the library mode's listener may take to prove itself
#: before the boots.
HEALTHY_TIMEOUT = 60.0


class ArmRun:
    """One run of an arm: what its parts started, and what they hand on.

    :param arm: the :class:`GuardArm`, or None for ``stock``.
    :param mode: :data:`LIBRARY` or :data:`NOVA`.
    :param stack: a :class:`contextlib.ExitStack` the parts enter their
        fixtures into; the mode closes it after cinder and nova stopped.
    :param conf: bdm-guard options for the library mode's boots (None:
        defaults).
    :param options: the run's options for the parts (``nova_series``...).

    The parts set:

    :ivar cinder: extra keyword arguments of
        :class:`~bdm_guard_lab.cinder.service.CinderService`
        (``notification_url``).
    :ivar nova: extra keyword arguments of
        :class:`~bdm_guard_lab.nova.service.NovaService` (``nova_path``,
        ``events_url``).
    :ivar about: nova mode: what runs, added to the figures' ``nova``
        (``patches``).
    :ivar conf: the options the library mode's boots use.
    :ivar rabbit: the :class:`bdm_guard_lab.broker.RabbitMQ` a part
        started, or None.
    :ivar waker: library mode: ``waker(project_id, time_scale)`` returning
        the waker of one boot (an object with ``close()``), or None to
        poll only.
    :ivar figures: zero-argument callables whose dicts are added to the
        arm's figures once the boots settled.
    :ivar services: what the mode started, by name (nova mode:
        ``cinder``, ``proxy``, ``nova``), for the figures.
    """

    def __init__(self, arm, mode, stack, conf=None, options=None):
        self.arm, self.mode, self.stack = arm, mode, stack
        self.conf = conf
        self.options = dict(options or {})
        self.cinder, self.nova, self.about = {}, {}, {}
        self.waker = None
        self.rabbit = None
        self.figures = []
        self.services = {}

    @property
    def nova_mode(self):
        """The lab nova's mode (:data:`bdm_guard_lab.nova.service.MODES`)."""
        return STOCK if self.arm is None else self.arm.nova

    def extra_figures(self):
        """The parts' figures, merged (dict)."""
        extra = {}
        for figures in self.figures:
            extra.update(figures())
        return extra


@dataclasses.dataclass(frozen=True)
class GuardArm:
    """A guarded arm of the demo.

    :param name: the arm's name (``--arm``, the table's column).
    :param modes: the demo modes that run it (:data:`LIBRARY`,
        :data:`NOVA`).
    :param nova: nova mode: the lab nova's mode
        (:data:`bdm_guard_lab.nova.service.MODES`): ``launcher`` installs
        the guard in nova's process, ``patched`` runs the ``nova_path``
        a part put in ``run.nova``, ``events`` the launcher with
        ``events_url``.
    :param parts: ``part(run)`` functions run in order, in every mode,
        before cinder starts.
    :param library_parts: parts run after ``parts`` in library mode only
        (what the boots of the lab's own process need, as their waker).
    """

    name: str
    modes: tuple[str, ...] = (LIBRARY, NOVA)
    nova: str = 'launcher'
    parts: tuple[typing.Callable, ...] = ()
    library_parts: tuple[typing.Callable, ...] = ()

    def start(self, mode, stack, *, conf=None, **options):
        """Run the arm's parts for ``mode``.

        :returns: the :class:`ArmRun`.
        :raises bdm_guard_lab.exception.LabError: a part's service did not
            start (:class:`~bdm_guard_lab.exception.PatchDoesNotApply` for
            a series).
        """
        run = ArmRun(self, mode, stack, conf, options)
        for part in self.parts + (
                self.library_parts if mode == LIBRARY else ()):
            part(run)
        return run


def enter(stack, fixture):
    """``stack.enter_context(fixture)``, raising the fixture's own error.

    A fixture whose ``setUp`` fails raises ``MultipleExceptions``; the lab's
    callers expect the :class:`bdm_guard_lab.exception.LabError` inside.
    """
    try:
        return stack.enter_context(fixture)
    except fixtures.MultipleExceptions as exc:
        raise exc.args[0][1]


# The parts.

def _set_queue_policy(rabbit, conf):
    """Set the queue policy ``conf``'s route asks for on ``rabbit``, if any."""
    policy = events.queue_policy(conf)
    if policy:
        rabbit.set_policy(policy['name'], policy['pattern'],
                          policy['definition'], policy['apply-to'])


def broker(run):
    """Start the lab's RabbitMQ with the pool queues' expiry policy.

    cinder sends its notifications there (``run.cinder``), the lab's nova
    listens there (``run.nova``), and ``run.conf`` becomes a copy of the
    options with ``[bdm_guard_events] transport_url`` pointing at it.
    """
    rabbit = enter(run.stack, lab_broker.RabbitMQ())
    conf = opts.get_conf(run.conf)
    conf.set_override('transport_url', rabbit.url, opts.EVENTS_GROUP)
    _set_queue_policy(rabbit, conf)
    run.conf = conf
    run.rabbit = rabbit
    run.cinder['notification_url'] = rabbit.url
    run.nova['events_url'] = rabbit.url


def relay(run):
    """Two ``bdm-guard-relay`` processes between cinder and the waits.

    They share one pool on cinder's exchange (competing consumers, as on
    two controllers) and forward each create notification once, to the
    one host that waits for it: the waiting side (the lab's nova, or the
    library mode's source) binds only its own routing key. Start after
    :func:`broker`.

    :raises bdm_guard_lab.exception.LabError: a relay did not start.
    """
    relays = enter(run.stack, lab_relay.Relays(run.rabbit, count=2))
    host = 'lab-%s' % uuid.uuid4().hex[:8]
    relays.configure(run.conf, host=host)
    _set_queue_policy(run.rabbit, run.conf)
    run.nova['events_options'] = relays.host_options(host)
    run.about['events_route'] = 'relay x2'


def event_source(run):
    """Library mode: one started event source, every boot's waker.

    Each boot takes its watch before the POST and passes it as the waker of
    :func:`bdm_guard.create.create_and_wait`; the source's counters become
    the figures' ``event_counts``.

    :raises bdm_guard_lab.exception.LabError: the listener did not get its
        own ping within :data:`HEALTHY_TIMEOUT`.
    """
    source = events.EventSource(run.conf).start()
    run.stack.callback(source.stop)
    if not source.wait_healthy(HEALTHY_TIMEOUT):
        raise exception.LabError(
            reason='the notification listener did not get its own ping '
                   'within %.0f s' % HEALTHY_TIMEOUT)

    def waker(project_id, scale):
        return source.expect(
            project_id,
            wait=lambda event, seconds: event.wait(seconds * scale))

    run.waker = waker
    run.figures.append(lambda: {'event_counts': source.counts})


#: The value of a series option that applies no series: the package runs
#: as installed (``--keystoneauth-series none``).
NO_SERIES = 'none'
#: The upstream series of the ``patched`` arm besides nova's, in the order
#: applied: ``(option, fixture class, name in the figures, default
#: folder)``.
#: Each option's None is the source tree's folder and :data:`NO_SERIES`
#: leaves that package as installed.
PATCHED_SERIES = (
    ('keystoneauth_series', patched.PatchedKeystoneauth, 'keystoneauth',
     patched.keystoneauth_series_dir),
    ('cinderclient_series', patched.PatchedCinderclient, 'cinderclient',
     patched.cinderclient_series_dir),
)


def series_option(options, name, default):
    """The series folder an option names, or None for none.

    :param options: the run's options (dict).
    :param name: the option, e.g. ``'cinder_series'``.
    :param default: a function giving the source tree's folder.
    :returns: the folder (str), or None when the option is
        :data:`NO_SERIES`.
    """
    value = options.get(name)
    if value is None:
        return default()
    if value.strip().lower() == NO_SERIES:
        return None
    return value


def patched_nova(run):
    """nova, keystoneauth1, cinderclient and cinder with their series.

    The four upstream series of issue 25, each on a copy of the installed
    package, so the ``patched`` arm runs what a cloud running them would:

    * ``patches/nova`` (option ``nova_series``) on a copy of nova;
    * ``patches/keystoneauth`` (``keystoneauth_series``: a ``POST`` that
      may have been sent is not resent) and ``patches/python-cinderclient``
      (``cinderclient_series``: nova can send cinder's idempotency key) on
      copies of keystoneauth1 and python-cinderclient in nova's folder, so
      the nova child imports all three from one ``PYTHONPATH`` entry;
    * ``patches/cinder`` (``cinder_series``: cinder takes the key under
      microversion 3.72, and notifies ``volume.create.error``) on a copy
      of cinder, which the lab's cinder then runs.

    Each option's None is the source tree's series and ``'none'``
    (:data:`NO_SERIES`) leaves the package as installed.

    :raises bdm_guard_lab.exception.PatchDoesNotApply: a patch of a series
        does not apply.
    :raises bdm_guard_lab.exception.LabError: a series is missing.
    """
    copy = enter(run.stack, patched.PatchedNova(
        run.options.get('nova_series')))
    run.nova['nova_path'] = copy.path
    run.about['patches'] = copy.applied
    for option, fixture, name, default in PATCHED_SERIES:
        folder = series_option(run.options, option, default)
        if folder is None:
            continue
        part = enter(run.stack, fixture(folder, path=copy.path))
        run.about.update({'%s_patches' % name: part.applied,
                          name: part.installed, '%s_base' % name: part.base})
        if part.note:
            run.about['%s_note' % name] = part.note
    folder = series_option(run.options, 'cinder_series',
                           patched.cinder_series_dir)
    if folder is not None:
        cinder = enter(run.stack, patched.PatchedCinder(folder))
        run.cinder['cinder_path'] = cinder.path
        run.about['cinder_patches'] = cinder.applied


#: The number of the ``patches/cinder`` patch route B's cinder runs with:
#: ``0001`` (``volume.create.error``), which ``patches/cinder/route-b``'s
#: README says applies with it; the idempotency-key patches after it take
#: microversion 3.72 and are left out (route B's nova asks for 3.73, which
#: also carries the key, and cinder without them ignores its header).
ROUTE_B_CINDER_BASE = '0001'
#: cinder policy rules of the route-b arm: a cinder whose route B series
#: lets only the service role send ``server_id`` (``volume:create:server_id``)
#: sees the lab's nova as a noauth admin without that role; the lab grants
#: it, as a deployment grants nova's service user the role.
ROUTE_B_CINDER_POLICY = {'volume:create:server_id': ''}
#: nova-api's line for each event it accepts
#: (``nova/api/openstack/compute/server_external_events.py``).
EVENT_LINE = re.compile(r'Creating event volume-created:')


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on now (int).

    cinder starts before nova and needs nova's address: the port is chosen
    first and given to both.
    """
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def route_b_sources():
    """The nova and cinder series of route B, in the order applied.

    :returns: ``(nova, cinder)``, each a list of folders and patch files
        for :class:`~bdm_guard_lab.nova.patched.PatchedPackage`: the
        folders' ``series`` files (or ``*.patch`` in name order) are read
        when the arm starts.
    :raises bdm_guard_lab.exception.LabError: ``patches/cinder`` has no
        :data:`ROUTE_B_CINDER_BASE` patch, or a series is missing.
    """
    nova = [patched.series_dir(), os.path.join(patched.series_dir(),
                                               'route-b')]
    base = sorted(glob.glob(os.path.join(
        patched.cinder_series_dir(), '%s-*.patch' % ROUTE_B_CINDER_BASE)))
    if len(base) != 1:
        raise exception.LabError(reason='%s has %d patches numbered %s' % (
            patched.cinder_series_dir(), len(base), ROUTE_B_CINDER_BASE))
    route = os.path.join(patched.cinder_series_dir(), 'route-b')
    # A route-b series that already lists the base patch (it may carry
    # the whole cinder series before its own) is applied alone.
    listed = {os.path.basename(p) for p in patched.read_patches(route)}
    if os.path.basename(base[0]) in listed:
        base = []
    return nova, base + [route]


def count_events(path, start=0):
    """nova-api's accepted ``volume-created`` events in its log.

    :param path: nova's log file.
    :param start: the byte offset to read from.
    :returns: ``(events, end offset)``.
    """
    try:
        with open(path, 'rb') as stream:
            stream.seek(start)
            text = stream.read()
    except OSError:
        return 0, start
    return (len(EVENT_LINE.findall(text.decode('utf-8', 'replace'))),
            start + len(text))


def route_b(run):
    """Route B's nova and cinder, and nova's API where cinder reaches it.

    nova gets ``patches/nova`` and ``patches/nova/route-b`` on a copy, with
    the lab's python-cinderclient shim (3.73, ``server_id``) beside it;
    cinder gets its ``0001`` and ``patches/cinder/route-b`` on a copy, with
    the python-novaclient shim (2.105) beside it. nova serves its API on a
    free loopback port too, and cinder's ``[nova]`` section points there.
    Once the boots settled, the figures get ``volume_created_events``
    (nova-api's "Creating event volume-created" lines of the case) and
    ``event_path`` (every ACTIVE server's volume got its event): the check
    that the boots waited on the event, read with the GETs per ACTIVE boot
    next to stock's. The series are the source tree's (``nova_series`` is
    the ``patched`` arm's), and the events go from cinder to nova straight,
    not through the fault proxy, which stays between nova and cinder-api.
    The port is free when chosen; a process that takes it before nova
    listens stops nova's start with an error.

    :raises bdm_guard_lab.exception.PatchDoesNotApply: a patch of a series
        or shim does not apply.
    :raises bdm_guard_lab.exception.LabError: a series is missing.
    """
    nova_sources, cinder_sources = route_b_sources()
    nova = enter(run.stack, patched.PatchedNova(nova_sources))
    cinderclient = enter(run.stack, patched.PatchedPackage(
        'cinderclient', shims.series_dir('cinderclient'), path=nova.path,
        distribution='python-cinderclient'))
    cinder = enter(run.stack, patched.PatchedCinder(cinder_sources))
    novaclient = enter(run.stack, patched.PatchedPackage(
        'novaclient', shims.series_dir('novaclient'), path=cinder.path,
        distribution='python-novaclient'))
    port = free_port()
    run.nova.update(nova_path=nova.path, api_port=port)
    run.cinder.update(cinder_path=cinder.path,
                      nova_endpoint='http://127.0.0.1:%d/v2.1' % port,
                      policy_rules=ROUTE_B_CINDER_POLICY)
    run.about.update(patches=nova.applied, cinder_patches=cinder.applied,
                     shims=cinderclient.applied + novaclient.applied)
    seen = {'offset': 0}

    def figures():
        log = run.services['nova'].log_file
        events, seen['offset'] = count_events(log, seen['offset'])
        return {'volume_created_events': events}

    run.figures.append(figures)


#: Every guarded arm, in the demo's order.
ARMS = (
    GuardArm('guard', modes=(LIBRARY,)),
    GuardArm('launcher', modes=(NOVA,)),
    GuardArm('patched', modes=(NOVA,), nova='patched',
             parts=(patched_nova,)),
    GuardArm('events', nova='events', parts=(broker, relay),
             library_parts=(event_source,)),
    GuardArm('route-b', modes=(NOVA,), nova='route-b', parts=(route_b,)),
)
#: The arms that run only when named (``--arm route-b``): ``route-b``
#: patches both nova and cinder, and the default demo and benchmark stay as
#: long as they were.
OPT_IN = ('route-b',)
#: The arms the demo and the benchmark run when none is chosen.
DEFAULT_ARMS = tuple(arm.name for arm in ARMS if arm.name not in OPT_IN)
BY_NAME = {arm.name: arm for arm in ARMS}


def names(mode):
    """The arms of ``mode``, ``stock`` first (tuple of str)."""
    return (STOCK,) + tuple(arm.name for arm in ARMS if mode in arm.modes)


def default_names(mode):
    """The arms the demo runs in ``mode`` when none is chosen (tuple).

    :data:`names` without the :data:`OPT_IN` arms.
    """
    return tuple(name for name in names(mode)
                 if name == STOCK or name in DEFAULT_ARMS)


def start(name, mode, stack, *, conf=None, **options):
    """Start arm ``name``'s parts for ``mode``; nothing for ``stock``.

    :returns: the :class:`ArmRun` (see :meth:`GuardArm.start`).
    :raises ValueError: not an arm of ``mode``.
    """
    if name not in names(mode):
        raise ValueError('arm must be one of %s' % (names(mode),))
    if name == STOCK:
        return ArmRun(None, mode, stack, conf, options)
    return BY_NAME[name].start(mode, stack, conf=conf, **options)
