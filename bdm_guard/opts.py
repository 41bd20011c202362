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

"""The ``[bdm_guard]`` configuration options.

Every duration is in seconds. The default ``poll_schedule = completion``
is described in :mod:`bdm_guard.internal.wait.completion`. The
``backoff`` schedule is::

    interval(n) = min(<phase>_initial_interval * poll_multiplier ** n,
                      max(<phase>_max_interval,
                          max_interval_fraction * elapsed))

where ``n`` counts the polls since the last status change, ``<phase>`` is
``poll`` / ``creating`` while the volume is creating and ``downloading`` in
the other pending statuses, and the waiter's
budget is::

    deadline = max(min(deadline_ceiling,
                       base_deadline + per_gib * size_gb),
                   nova_budget)

``per_gib`` is ``per_gib_allowance``, and inside nova never less than nova's
own ``reimage_timeout_per_gb``; an unset ``deadline_ceiling`` (the default)
caps nothing. When the caller does not know the size (nova's wait function
is given only the volume id), the waiter takes it from the volume the first
time it sees it in a pending status other than ``creating`` (an image copy,
a backup restore) and extends the deadline to match.

``nova_budget`` is ``(block_device_allocate_retries + 1) *
block_device_allocate_retries_interval`` when the caller passes nova's
values (else 0), so that switching to bdm-guard never makes a boot fail
sooner: nova's budget wins even over ``deadline_ceiling``.
"""

import copy
import dataclasses

from oslo_config import cfg

from bdm_guard.internal import statuses

GROUP = 'bdm_guard'

_DEFAULT_PENDING = list(statuses.DEFAULT_PENDING)

_wait_opts = [
    cfg.StrOpt('poll_schedule',
               default='completion',
               choices=[
                   ('completion', 'Predict when the volume is ready from its '
                                  'size, status and cinder\'s timestamps, '
                                  'learn the copy rate from finished waits, '
                                  'and poll where it most likely becomes '
                                  'ready (the completion_* options).'),
                   ('backoff', 'The per-status exponential back-off of '
                               'bdm-guard 1.0 (poll_initial_interval, '
                               'poll_multiplier, creating_max_interval, '
                               'downloading_max_interval and '
                               'max_interval_fraction).'),
               ],
               help='How the waiter spaces its volume GETs. Both keep the '
                    'same deadline (base_deadline, per_gib_allowance, '
                    'deadline_ceiling, nova\'s budget). In bdm-guard '
                    'simulate "completion" sends about 0.74x the GETs of '
                    'nova\'s fixed 3 s loop at 0.97x its mean detection '
                    'lag; "backoff" about 0.7x at 3.7x the lag '
                    '(doc/source/admin/performance.rst).'),
    cfg.FloatOpt('completion_lag_cost',
                 default=0.18, min=0.01, max=10.0,
                 help='poll_schedule = completion: the seconds of detection '
                      'lag one volume GET is worth. The schedule minimises '
                      'lag + this x GETs: raise it to send fewer GETs for '
                      'more lag, lower it for the opposite. In bdm-guard '
                      'simulate, against nova\'s 3 s loop: 0.18 (the '
                      'default, with completion_max_interval = 8 and '
                      'completion_prior_max_interval = 6) sent 0.74x its '
                      'GETs at 0.98x its mean lag (0.99x under the seed '
                      'scenario\'s faults); 0.175 0.74x at 0.97x (0.97x); '
                      'with completion_max_interval = 8.5 as well, 0.18 '
                      '0.73x at 0.99x (1.0x) but some boots over the '
                      'interval bound (doc/source/admin/performance.rst). '
                      'The interval bounds hold whatever its value: to cap '
                      'the worst lag, lower completion_max_interval '
                      'instead.'),
    cfg.FloatOpt('completion_max_interval',
                 default=8.0, min=1.0, max=300.0,
                 help='poll_schedule = completion: the longest interval '
                      'between two volume GETs, in seconds, until '
                      'completion_interval_fraction x the time waited is '
                      'longer. It bounds the detection lag of "available" '
                      'and of "error" alike; lower it to bound the worst '
                      'case (p99, max) tighter at the cost of GETs on '
                      'slow volumes, raise it for the opposite. While the '
                      'prediction rests on the priors alone, '
                      'completion_prior_max_interval applies.'),
    cfg.FloatOpt('completion_prior_max_interval',
                 default=6.0, min=1.0, max=300.0,
                 help='poll_schedule = completion: the longest interval, in '
                      'seconds, while the prediction comes from the priors '
                      'alone (fewer than 6 finished waits of the volume '
                      'type in this process); completion_max_interval when '
                      'that is shorter. It bounds what a prior far from the '
                      'backend costs: the detection lag of the first boots '
                      'after a restart stays within it.'),
    cfg.FloatOpt('completion_interval_fraction',
                 default=0.05, min=0.0, max=0.5,
                 help='poll_schedule = completion: lets the longest interval '
                      'grow with the time waited, to this fraction of it '
                      'up to completion_interval_ceiling (0.05, with '
                      'completion_max_interval = 8: intervals of up to 8 s '
                      'for the first 160 s, then up to 5% of the time '
                      'waited). 0: never longer than '
                      'completion_max_interval.'),
    cfg.FloatOpt('completion_interval_ceiling',
                 default=30.0, min=1.0, max=3600.0,
                 help='poll_schedule = completion: the longest interval, in '
                      'seconds, that completion_interval_fraction can '
                      'reach (never below completion_max_interval). It '
                      'bounds the detection lag of long copies: 30 s on a '
                      '4,000 s copy instead of the 200 s that 5% allow.'),
    cfg.FloatOpt('completion_first_look',
                 default=2.0, min=0.5, max=60.0,
                 help='poll_schedule = completion: seconds after the create '
                      'of the first volume GET (at once when the caller does '
                      'not say when the create returned, then this long '
                      'after it). It catches blank volumes on fast backends '
                      'and scheduling failures; later GETs follow the '
                      'prediction.'),
    cfg.FloatOpt('completion_creating_median',
                 default=4.0, min=0.1, max=3600.0,
                 help='poll_schedule = completion: the prior median, in '
                      'seconds, of the time a new volume spends in '
                      '"creating" (scheduling and allocation). Each process '
                      'learns the real one from its finished waits, per '
                      'volume type; the prior matters for the first waits '
                      'only. A prior 4x off costs GETs or lag, not the '
                      'interval bounds.'),
    cfg.FloatOpt('completion_copy_per_gib',
                 default=2.0, min=0.01, max=3600.0,
                 help='poll_schedule = completion: the prior median, in '
                      'seconds per GiB of volume size, of an image (or '
                      'snapshot, backup) copy in "downloading". Learnt like '
                      'completion_creating_median. Set it near your '
                      'backend\'s rate (the time of a 10 GiB copy / 10) '
                      'if the first boots after a restart matter.'),
    cfg.FloatOpt('poll_initial_interval',
                 default=0.5, min=0.05, max=10.0,
                 help='Seconds between the first two volume GETs while the '
                      'volume is "creating" (or not visible yet), and again '
                      'after every change back to it. Right after a create '
                      'the first GET waits this long too. Small values make '
                      'fast volumes visible fast; the interval then grows '
                      'by poll_multiplier up to creating_max_interval.'),
    cfg.FloatOpt('downloading_initial_interval',
                 default=5.0, min=0.05, max=60.0,
                 help='Seconds between the first two volume GETs after the '
                      'volume enters a pending status other than "creating" '
                      '("downloading", "restoring-backup"). An image copy '
                      'takes seconds per GiB, so polling it sub-second '
                      'only loads cinder-api; the interval then grows by '
                      'poll_multiplier up to downloading_max_interval.'),
    cfg.FloatOpt('poll_multiplier',
                 default=1.5, min=1.0, max=4.0,
                 help='Factor by which the interval between volume GETs '
                      'grows after each poll in the same status. 1.0 means '
                      'fixed-interval polling (nova\'s own behaviour).'),
    cfg.FloatOpt('creating_max_interval',
                 default=15.0, min=1.0, max=300.0,
                 help='Cap, in seconds, on the interval between GETs while '
                      'the volume is "creating" (and while the GET fails '
                      'transiently). It is also the worst-case detection lag '
                      'in that phase until max_interval_fraction * elapsed '
                      'exceeds it.'),
    cfg.FloatOpt('downloading_max_interval',
                 default=15.0, min=1.0, max=300.0,
                 help='Cap, in seconds, on the interval between GETs in every '
                      'other pending status ("downloading", '
                      '"restoring-backup"). Combined with '
                      'max_interval_fraction like creating_max_interval.'),
    cfg.FloatOpt('max_interval_fraction',
                 default=0.05, min=0.0, max=0.5,
                 help='Lets the interval cap grow with the time waited: the '
                      'cap is max(<phase>_max_interval, this fraction * '
                      'seconds waited). 0.05 keeps the detection lag within '
                      '5% of the wait on long image copies. 0 disables it.'),
    cfg.FloatOpt('poll_jitter',
                 default=0.1, min=0.0, max=0.5,
                 help='Fraction by which each interval is randomly '
                      'lengthened while it is still ramping up (never past '
                      'the phase cap), so that hundreds of compute hosts '
                      'booting together drift apart and do not poll cinder '
                      'in lockstep. Intervals are never shortened, so the '
                      'jitter adds no polls, and never pass the cap, so it '
                      'adds no detection lag beyond the cap. 0 disables it.'),
    cfg.FloatOpt('base_deadline',
                 default=180.0, min=10.0, max=86400.0,
                 help='Seconds a volume may take to become available before '
                      'the wait fails with a timeout, before the per-GiB '
                      'allowance is added. 180 s is nova\'s default budget '
                      '(61 GETs, 3 s apart).'),
    cfg.FloatOpt('per_gib_allowance',
                 default=20.0, min=0.0, max=600.0,
                 help='Seconds added to base_deadline per GiB of volume size '
                      'for image-, snapshot- or backup-backed volumes (the '
                      'size is the caller\'s, or read from the volume once '
                      'it is seen copying). The default matches nova\'s '
                      '[DEFAULT] reimage_timeout_per_gb (20 s/GiB), and '
                      'inside nova the allowance is never less than that '
                      'option. It must be at least the slowest image copy '
                      'rate you accept. Not capped unless deadline_ceiling '
                      'is set.'),
    cfg.FloatOpt('deadline_ceiling',
                 default=None, min=60.0, max=604800.0,
                 help='Upper bound, in seconds, on any wait, whatever the '
                      'size. Unset by default: a large image-backed volume '
                      'gets base_deadline plus per_gib_allowance per GiB '
                      '(a 500 GiB copy at the default 20 s/GiB: 10180 s). '
                      'When set it wins over that sum, but never over '
                      'nova\'s own budget when that is passed in.'),
    cfg.FloatOpt('not_found_grace',
                 default=30.0, min=0.0, max=600.0,
                 help='Seconds after the create during which a 404 on the '
                      'new volume is read-after-write lag (a replica or '
                      'Galera node that has not applied the row yet) and the '
                      'wait goes on. A 404 after it fails the wait with '
                      'VolumeVanished, well before the deadline.'),
    cfg.ListOpt('pending_statuses',
                default=_DEFAULT_PENDING,
                help='Volume statuses in which the waiter keeps waiting. '
                     '"available" ends the wait; every other status fails it '
                     'at once with cinder\'s own reason. "creating" uses '
                     'creating_max_interval, the others '
                     'downloading_max_interval.'),
]

_create_opts = [
    cfg.IntOpt('create_max_posts',
               default=5, min=1, max=20,
               help='Most POST /volumes one idempotent create sends, counting '
                    'resends after a lost request or an unknown outcome. '
                    'Every resend carries the same idempotency key.'),
    cfg.FloatOpt('create_timeout',
                 default=120.0, min=5.0, max=3600.0,
                 help='Seconds an idempotent create may spend on POSTs, '
                      'reconciles and back-off before it gives up with '
                      'VolumeCreateUnknown (or the last terminal error). '
                      'It does not include the wait for "available".'),
    cfg.FloatOpt('post_retry_interval',
                 default=1.0, min=0.1, max=60.0,
                 help='Seconds before the first resend of a POST that did '
                      'not reach cinder; it doubles per resend, up to '
                      'post_retry_max_interval. A Retry-After header wins '
                      'when it is longer.'),
    cfg.FloatOpt('post_retry_max_interval',
                 default=10.0, min=0.1, max=300.0,
                 help='Cap, in seconds, on the back-off between POSTs.'),
    cfg.FloatOpt('reconcile_grace',
                 default=10.0, min=0.0, max=300.0,
                 help='Seconds the creator keeps listing volumes by the '
                      'idempotency key after a POST whose outcome is unknown '
                      '(reset, read timeout, 502/504, cinder 500/503), '
                      'before it concludes that cinder never created the '
                      'volume and resends. It resends only when a list that '
                      'answered at or after this grace shows no volume; '
                      'failed lists are retried until create_timeout, and '
                      'when none answers it raises VolumeCreateUnknown '
                      'without resending. The grace must exceed the '
                      'read-after-write lag of the database behind '
                      'cinder-api: a duplicate that shows up later is found '
                      'and deleted only by a later create (or reconcile) '
                      'with the same key.'),
    cfg.FloatOpt('duplicate_settle_timeout',
                 default=60.0, min=0.0, max=3600.0,
                 help='Seconds the creator waits for a duplicate volume to '
                      'leave a transitional status (cinder refuses to delete '
                      'a "creating" volume) before it gives up deleting it '
                      'and reports it in CreateResult.undeleted_duplicates.'),
]

_transport_opts = [
    cfg.FloatOpt('request_timeout',
                 default=30.0, min=1.0, max=600.0,
                 help='The most one call to cinder may take in all, from '
                      'connecting to the last byte of the answer, in '
                      'seconds; a call also never outlasts what is left of '
                      'the wait\'s or the create\'s deadline (but is given '
                      'at least 1 s). A cinder-api that accepts the '
                      'connection and never answers, or answers one byte at '
                      'a time, is cut off then; the call counts as an '
                      'unknown outcome (a POST is reconciled, never resent '
                      'blindly). So a wait or create ends by its deadline '
                      'plus at most one request_timeout.'),
]

ALL_OPTS = _wait_opts + _create_opts + _transport_opts

DB_GROUP = 'bdm_guard_db'

# Bit values from MariaDB's wsrep_sync_wait reference: 1 READ (SELECT, SHOW,
# BEGIN), 2 UPDATE and DELETE, 4 INSERT and REPLACE, 8 SHOW.
_db_opts = [
    cfg.BoolOpt('read_your_writes',
                default=True,
                help='Re-read once, on the primary or causally, when a read '
                     'or an UPDATE/DELETE of a row the caller has just '
                     'written misses it (bdm_guard.db). False runs every '
                     'read and write once, as if bdm-guard were absent.'),
    cfg.StrOpt('strategy',
               default='auto',
               choices=[
                   ('auto', 'On Galera (wsrep_on=ON) re-run with '
                            'wsrep_sync_wait; elsewhere re-read on the '
                            'primary (writer engine).'),
                   ('primary', 'Always re-read on the primary (writer '
                               'engine), never set wsrep_sync_wait, never '
                               're-run a write. Right when every write goes '
                               'through one Galera node.'),
                   ('causal', 'Like auto, but log a warning when the '
                              'database turns out not to be Galera.'),
               ],
               help='Where a read that missed a fresh row is run again.'),
    cfg.IntOpt('wsrep_sync_wait_read',
               default=1, min=1, max=15,
               help='wsrep_sync_wait bits set on the Galera session for the '
                    'one re-read, then restored. 1 = READ (SELECT, SHOW, '
                    'BEGIN); see MariaDB\'s wsrep_sync_wait reference.'),
    cfg.IntOpt('wsrep_sync_wait_write',
               default=3, min=1, max=15,
               help='wsrep_sync_wait bits set for the one re-run of an '
                    'UPDATE/DELETE that matched no row on Galera. 2 = '
                    'UPDATE/DELETE; the default 3 adds READ because Galera '
                    'only waits before the first statement of a '
                    'transaction, which may be a SELECT.'),
]


EVENTS_GROUP = 'bdm_guard_events'

_events_opts = [
    cfg.StrOpt('transport_url',
               default=None, secret=True,
               help='oslo.messaging transport URL of the bus cinder sends '
                    'its notifications on (cinder\'s '
                    '[oslo_messaging_notifications] transport_url, or its '
                    '[DEFAULT] transport_url when that is unset), e.g. '
                    'rabbit://user:password@rabbit1:5672/. Unset (the '
                    'default): no listener is started and every wait polls '
                    'on the [bdm_guard] schedule alone, exactly as without '
                    'this feature. Never logged (its password is masked). '
                    'Needs cinder\'s [oslo_messaging_notifications] driver '
                    '= messagingv2.'),
    cfg.StrOpt('exchange',
               default='openstack',
               help='The exchange cinder publishes on (cinder\'s '
                    'control_exchange, "openstack" by default).'),
    cfg.StrOpt('topic',
               default='notifications',
               help='The notification topic cinder publishes on (cinder\'s '
                    '[oslo_messaging_notifications] topics, "notifications" '
                    'by default). The listener binds to <topic>.info and '
                    '<topic>.error.'),
    cfg.StrOpt('pool',
               default=None,
               help='Name of this host\'s listener pool: its own queue on '
                    'the broker, which gets a full copy of every '
                    'notification on the topic. Unset: "bdm_guard-" followed '
                    'by the host name. It must differ between hosts (two '
                    'hosts sharing a pool split the notifications between '
                    'them, and their waits fall back to polling) and must '
                    'start with "bdm_guard-" for the queue expiry policy '
                    '(see queue_expiry) to match it.'),
    cfg.IntOpt('queue_expiry',
               default=600, min=0, max=604800,
               help='Seconds a pool queue with no consumer lives on the '
                    'broker before RabbitMQ deletes it (the "expires" key '
                    'of a policy on the queues matching "^bdm_guard-"), so '
                    'that a stopped or removed compute host leaves no queue '
                    'collecting every create notification of the cloud. '
                    'oslo.messaging declares notification queues without '
                    'arguments, so the expiry is a broker policy: '
                    'bdm_guard.events.queue_policy() gives it, and the '
                    'admin guide shows the rabbitmqctl command. 0: no '
                    'expiry.'),
    cfg.FloatOpt('backstop_interval',
                 default=60.0, min=5.0, max=600.0,
                 help='While the listener is healthy, the longest a wait '
                      'goes without a volume GET, in seconds: the backstop '
                      'that catches what cinder announces with no '
                      'notification (a failure inside cinder-volume without '
                      'the volume.create.error change, a lost message). A '
                      'wait never polls less often than the [bdm_guard] '
                      'schedule would when the listener is down, has never '
                      'received its own ping, or missed a notification the '
                      'wait expected; its deadline is the [bdm_guard] one '
                      'in every case.'),
    cfg.FloatOpt('ping_interval',
                 default=5.0, min=0.1, max=300.0,
                 help='Seconds between two self-pings: the listener sends a '
                      'notification to itself through the broker (on the '
                      'topic <pool>.ping, so only this host\'s queue gets '
                      'it). It is healthy while its last ping came '
                      'back less than 2.5 x ping_interval ago; a broker that '
                      'accepts the connection but delivers nothing is '
                      'detected within that time.'),
    cfg.StrOpt('route',
               default='pool', choices=[
                   ('pool', 'this host\'s own pool on cinder\'s exchange: a '
                            'full copy of every notification (small clouds)'),
                   ('relay', 'only this host\'s volumes, forwarded by '
                             'bdm-guard-relay on relay_exchange')],
               help='How this host gets the notifications of its volumes. '
                    '"pool": its own queue on cinder\'s exchange, which the '
                    'broker fills with every create of the cloud (broker '
                    'work grows with creates x hosts; for small clouds). '
                    '"relay": bdm-guard-relay (two or more instances on the '
                    'controllers) consumes cinder\'s notifications once and '
                    'forwards each create\'s end or error notification to '
                    'the one host named in the volume\'s metadata '
                    '(bdm_guard_host, which the creator writes); this host '
                    'binds only its own routing key. Broker work grows with '
                    'creates only. The self-ping goes through the relay, so '
                    'a relay that is down, slow or restarting makes waits '
                    'poll on the [bdm_guard] schedule.'),
    cfg.StrOpt('host',
               default=None,
               help='This host\'s name in the relay route: written into the '
                    'metadata of the volumes it creates (bdm_guard_host) and '
                    'its routing key <relay_topic>.<host>. Letters, digits, '
                    '"_", "-" and "." between words, at most 200 '
                    'characters. Unset: this machine\'s host name. Must be '
                    'unique per nova-compute process.'),
    cfg.StrOpt('relay_exchange',
               default='bdm_guard_relay',
               help='The topic exchange bdm-guard-relay forwards on, and '
                    'the compute hosts\' self-pings go to. Its own, so that '
                    'no other consumer of cinder\'s exchange sees the '
                    'forwarded copies.'),
    cfg.StrOpt('relay_topic',
               default='bdm_guard_relay',
               help='Routing key prefix of the forwarded notifications: a '
                    'host consumes the queues <relay_topic>.<host>.info and '
                    '.error on relay_exchange (the ones oslo.messaging\'s '
                    'notifier declares for what the relay forwards; with '
                    'route = relay, the pool option is not used).'),
    cfg.StrOpt('relay_pool',
               default='bdm_guard_relay',
               help='The queue every bdm-guard-relay instance consumes '
                    '(one oslo.messaging notification pool: each '
                    'notification goes to one instance, so instances are '
                    'competing consumers and two or more give HA). Bound to '
                    'cinder\'s <topic>.info and <topic>.error on exchange. '
                    'The hosts\' self-pings come on the shared queues '
                    'bdm_guard_relay_ping.info and .error.'),
]


# -- [bdm_guard_metrics]: per-wait and per-create metrics ------------------

METRICS_GROUP = 'bdm_guard_metrics'

_metrics_opts = [
    cfg.StrOpt('textfile',
               default=None,
               help='Path of a Prometheus text-format file that '
                    'nova-compute rewrites (atomically) with bdm-guard\'s '
                    'counters and histograms: waits and creates by outcome, '
                    'volume GETs, detection lag, lost POSTs found, '
                    'duplicates deleted, fallbacks to polling, events '
                    'health. Put it in node_exporter\'s textfile collector '
                    'directory (--collector.textfile.directory). Unset (the '
                    'default): no metrics are kept. Needs prometheus_client, '
                    'which oslo.messaging\'s oslo.metrics brings.'),
    cfg.StrOpt('state_file',
               default=None,
               help='Path of a small JSON file that nova-compute rewrites '
                    'with the release row, events health and the last waits '
                    'and creates; `bdm-guard status` reads it. Unset (the '
                    'default): none is written, unless textfile is set, '
                    'then it is <textfile without .prom>.state.json.'),
    cfg.IntOpt('last_waits',
               default=20, min=1, max=1000,
               help='How many of the latest waits and creates the state file '
                    'keeps (it stays a few KiB).'),
    cfg.FloatOpt('write_interval',
                 default=10.0, min=0.0, max=3600.0,
                 help='Seconds between two rewrites of the files: results '
                      'in between are counted at once and written together '
                      'when the interval is over (0: after every wait and '
                      'create).'),
]


def register_opts(conf):
    """Register the ``[bdm_guard]``, ``[bdm_guard_db]`` and events options.

    :param conf: an :class:`oslo_config.cfg.ConfigOpts` instance.
    """
    conf.register_opts(ALL_OPTS, group=GROUP)
    conf.register_opts(_db_opts, group=DB_GROUP)
    conf.register_opts(_events_opts, group=EVENTS_GROUP)
    conf.register_opts(_metrics_opts, group=METRICS_GROUP)


def get_conf(conf=None):
    """Return a ConfigOpts with bdm-guard's options registered.

    The one place that registers them: every module that reads an option
    gets its ConfigOpts from here.

    :param conf: an :class:`oslo_config.cfg.ConfigOpts` (its options are
        registered if they are not yet), or None for a new one holding the
        defaults (no config file or command line is read).
    :returns: the :class:`oslo_config.cfg.ConfigOpts`.
    """
    if conf is None:
        conf = cfg.ConfigOpts()
        conf([], project='bdm_guard', default_config_files=[])
    if (GROUP not in conf or DB_GROUP not in conf
            or EVENTS_GROUP not in conf or METRICS_GROUP not in conf):
        register_opts(conf)
    return conf


def list_opts():
    """Return the options for oslo-config-generator and the sphinx extension.

    :returns: ``[(group_name, [opts])]``, deep copies so that callers may
        change them freely.
    """
    return [(GROUP, copy.deepcopy(ALL_OPTS)),
            (DB_GROUP, copy.deepcopy(_db_opts)),
            (EVENTS_GROUP, copy.deepcopy(_events_opts)),
            (METRICS_GROUP, copy.deepcopy(_metrics_opts))]


@dataclasses.dataclass(frozen=True)
class ConfigProblem:
    """One bdm-guard option value that oslo.config refuses.

    :ivar group: the section (str), ``bdm_guard`` ...
    :ivar name: the option name (str).
    :ivar value: the value as written (str), or None when unknown.
    :ivar reason: oslo.config's reason (str): out of range, not a number,
        not one of the choices ...
    :ivar source: the file that set it (str), or None.
    """

    group: str
    name: str
    value: object
    reason: str
    source: object = None

    def __str__(self):
        where = ' in %s' % self.source if self.source else ''
        value = '' if self.value is None else ' = %s' % _short(self.value)
        return '[%s] %s%s%s is refused: %s' % (
            self.group, self.name, value, where, self.reason)


def _short(value, limit=40):
    text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _written(conf, group, opt):
    """``(value as written (str), file)``; ``(None, None)`` if unknown.

    Best effort, through oslo.config's namespace: the text only decorates
    the problem's message.
    """
    try:
        value, location = conf._namespace._get_file_value(
            [(group, opt.dest)])
    except Exception:  # noqa: see the docstring
        return None, None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value, getattr(location, 'detail', None)


def check_config(conf):
    """Every bdm-guard option value in ``conf`` that oslo.config refuses.

    Reads every option of :func:`list_opts` (``[bdm_guard]``,
    ``[bdm_guard_db]``, ``[bdm_guard_events]``) the way the code will read
    it, so that a value out of its ``min``/``max``, of the wrong type or
    not one of its ``choices`` is found here, at start, and not as a
    ``ConfigFileValueError`` in the first boot that reads it. The launcher
    (:mod:`bdm_guard.nova.launcher`) refuses to start nova-compute with
    any, and ``bdm-guard audit`` (:mod:`bdm_guard.audit.checks.options`)
    reports each one.

    :param conf: an :class:`oslo_config.cfg.ConfigOpts` whose files were
        parsed; bdm-guard's options are registered on it if they are not.
    :returns: a list of :class:`ConfigProblem` in :func:`list_opts` order;
        empty when every value is valid.
    """
    conf = get_conf(conf)
    problems = []
    for group, options in list_opts():
        for opt in options:
            try:
                getattr(conf[group], opt.dest)
            except (cfg.NoSuchOptError, cfg.TemplateSubstitutionError):
                # A ``$name`` reference to an option of nova's, which
                # this ConfigOpts need not have: nova's own CONF resolves
                # it when the option is read, so it is not judged here.
                continue
            except (cfg.ConfigFileValueError, ValueError) as exc:
                text = str(exc)
                reason = text.split(' is not valid: ', 1)[-1]
                value, source = _written(conf, group, opt)
                problems.append(ConfigProblem(group, opt.name, value,
                                              reason.strip(), source))
    return problems
