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

"""Fixtures for the lab's functional tests: real cinder behind the proxy.

One cinder (:class:`bdm_guard_lab.cinder.service.CinderService`) is shared by
a test class (it starts in about 3 s); every test gets its own
:class:`bdm_guard_lab.faults.proxy.FaultProxy` with its own rules, and its own
idempotency key, so counts never mix.
"""

import uuid

import fixtures
from oslo_config import cfg
import testtools

from bdm_guard import cinder
from bdm_guard import create
from bdm_guard import opts
from bdm_guard_lab.cinder import service as cinder_service
from bdm_guard_lab.faults import proxy as lab_proxy
from bdm_guard_lab.faults import scenario as lab_scenario


def guard_conf(**overrides):
    """``[bdm_guard]`` options tuned for quick tests (seconds).

    :param overrides: option name -> value.
    :returns: a ConfigOpts.
    """
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], project='bdm_guard', default_config_files=[])
    values = {'poll_initial_interval': 0.2, 'creating_max_interval': 1.0,
              'downloading_max_interval': 1.0, 'reconcile_grace': 6.0,
              'not_found_grace': 10.0, 'post_retry_interval': 0.2,
              'post_retry_max_interval': 1.0, 'base_deadline': 60.0,
              'create_timeout': 60.0, 'duplicate_settle_timeout': 30.0}
    values.update(overrides)
    for name, value in values.items():
        conf.set_override(name, value, 'bdm_guard')
    return conf


class LabCinder(fixtures.Fixture):
    """A started :class:`CinderService` with quick volumes.

    :ivar svc: the service.
    """

    def _setUp(self):
        self.svc = self.useFixture(cinder_service.CinderService(
            create_seconds=0.5, download_seconds_per_gib=1.0,
            create_jitter=0.0))


class LabTestCase(testtools.TestCase):
    """Tests sharing one real cinder per class (``cls.lab``, ``cls.svc``)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lab = LabCinder()
        cls.lab.setUp()
        cls.svc = cls.lab.svc

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanUp()
        super().tearDownClass()


class Faults(fixtures.Fixture):
    """A fault proxy in front of ``svc`` with the given rules.

    :param svc: a started CinderService.
    :param rules: scenario rules (list of dicts, as in the YAML).
    :param seed: the scenario seed.

    :ivar proxy: the :class:`FaultProxy`.
    :ivar client: a :class:`bdm_guard.cinder.VolumeClient` through it.
    """

    def __init__(self, svc, rules, seed=1):
        super().__init__()
        self.svc = svc
        self.scenario = lab_scenario.parse(
            {'name': 'test', 'seed': seed, 'rules': rules}, 'test')

    def _setUp(self):
        self.proxy = self.useFixture(lab_proxy.FaultProxy(
            self.svc.base_url, self.scenario,
            project_id=self.svc.project_id))
        self.client = cinder.VolumeClient(
            self.svc.session(endpoint=self.proxy.endpoint),
            endpoint_override=self.proxy.endpoint)


def new_key():
    """A fresh idempotency key, as nova would derive it for one BDM."""
    return create.key_for_bdm(str(uuid.uuid4()), str(uuid.uuid4()))


def volumes_with_key(svc, key):
    """Volumes in cinder carrying ``key``, read straight from its API."""
    return [v for v in svc.list_volumes()
            if v.get('metadata', {}).get(create.IDEMPOTENCY_METADATA_KEY)
            == key]
