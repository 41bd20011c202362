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

"""The ``events`` arm: bdm-guard woken by cinder's notifications.

Like the ``guard`` arm (:class:`bdm_guard_lab.arms.run.GuardArm`), plus a
real RabbitMQ (:class:`bdm_guard_lab.broker.RabbitMQ`) that the arm's cinder
sends its notifications to (driver ``messagingv2``; RPC stays ``fake:/``),
and one :class:`bdm_guard.events.EventSource` shared by every boot, as one
nova-compute process would share it. Each boot takes its watch before the
POST and passes it as the waker of :func:`bdm_guard.create.
create_and_wait`.
"""

import fixtures
from oslo_log import log as logging

from bdm_guard import cinder
from bdm_guard import create
from bdm_guard import events
from bdm_guard import exception
from bdm_guard import opts
from bdm_guard_lab.arms import run as arms
from bdm_guard_lab import broker
from bdm_guard_lab import exception as lab_exception

LOG = logging.getLogger(__name__)

#: Real seconds the listener may take to prove itself before the boots.
HEALTHY_TIMEOUT = 60.0


class EventsLab(fixtures.Fixture):
    """The broker and the process's event source for one arm run.

    :param conf: bdm-guard options (None: defaults), copied into a fresh
        ConfigOpts with ``[bdm_guard_events] transport_url`` pointing at
        the lab's broker.

    After ``setUp``: ``url`` (for cinder's notifications), ``rabbit``,
    ``source``, ``conf``.
    """

    def __init__(self, conf=None):
        super().__init__()
        self.base_conf = conf

    def _setUp(self):
        self.rabbit = self.useFixture(broker.RabbitMQ())
        self.url = self.rabbit.url
        self.conf = opts.get_conf(self.base_conf)
        self.conf.set_override('transport_url', self.url, 'bdm_guard_events')
        policy = events.queue_policy(self.conf)
        if policy:
            self.rabbit.set_policy(policy['name'], policy['pattern'],
                                   policy['definition'], policy['apply-to'])
        self.source = events.EventSource(self.conf).start()
        self.addCleanup(self.source.stop)
        if not self.source.wait_healthy(HEALTHY_TIMEOUT):
            raise lab_exception.LabError(
                reason='the notification listener did not get its own ping '
                       'within %.0f s' % HEALTHY_TIMEOUT)

    def runner(self, svc, proxy, seed, time_scale):
        """The arm's boot runner against ``svc`` behind ``proxy``."""
        return EventsArm(svc, proxy, seed, self.source,
                         time_scale=time_scale, conf=self.conf)

    def figures(self):
        """The source's counters, added to the arm's figures."""
        return {'event_counts': self.source.counts}


class EventsArm(arms.GuardArm):
    """Boots like :class:`GuardArm`, woken by the shared event source.

    :param source: the started :class:`bdm_guard.events.EventSource`.
    """

    kind = 'bdm_guard_events'

    def __init__(self, svc, proxy, seed, source, *, time_scale=1.0,
                 conf=None):
        super().__init__(svc, proxy, seed, time_scale=time_scale, conf=conf)
        self.source = source

    def boot(self, name, size_gb, image_id, index):
        """Create and wait with an event watch; see GuardArm.boot."""
        client = cinder.VolumeClient(
            self.svc.session(endpoint=self.proxy.endpoint),
            endpoint_override=self.proxy.endpoint)
        instance, bdm = arms.instance_and_bdm(self.seed, index)
        key = create.key_for_bdm(instance, bdm)
        scale = self.scale
        watch = self.source.expect(
            self.svc.project_id,
            wait=lambda event, seconds: event.wait(seconds * scale))
        try:
            result, _ = create.create_and_wait(
                client, size_gb, idempotency_key=key, image_id=image_id,
                name=name, conf=self.conf, sleep=self.clock.sleep,
                clock=self._monotonic, waker=watch,
                allocate_retries=arms.NOVA_ALLOCATE_RETRIES,
                allocate_retries_interval=arms.NOVA_ALLOCATE_RETRIES_INTERVAL)
        except exception.VolumeWaitError as exc:
            return exc.kwargs.get('volume_id'), 'wait:%s' % type(
                exc).__name__
        except exception.BdmGuardException as exc:
            return None, 'create:%s' % type(exc).__name__
        finally:
            watch.close()
        return result.volume['id'], None
