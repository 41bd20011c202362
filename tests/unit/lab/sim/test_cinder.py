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

"""The simulated cinder, its faults, and the model's parameters."""

import os

import fixtures
from oslotest import base

from bdm_guard import exception
from bdm_guard import outcome as oc
from bdm_guard_lab.sim import cinder as sim_cinder
from bdm_guard_lab.sim import engine as sim
from bdm_guard_lab.sim import model as sim_model

IMAGE = '6018366c-f658-47a7-9ed3-4fe53a096533'
BODY = {'size': 10, 'imageRef': IMAGE, 'metadata': {'k': 'v'}}
# 2 s creating, 20 s downloading (10 GiB x 2 s), no spread.
WORK = sim_model.Workload(creating_median=2.0, creating_sigma=0.0,
                          gib_median=2.0, gib_sigma=0.0, latency=0.5)


class TestSimCinder(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.sim = sim.Simulation()
        self.cinder = sim_cinder.SimCinder(self.sim, WORK, seed=7)

    def run_in_sim(self, func, faults=sim_model.Faults()):
        client = self.cinder.client(0, faults)
        task = self.sim.spawn(func, client)
        self.sim.run()
        if task.error:
            raise task.error
        return task.result

    def test_volume_passes_through_its_statuses(self):
        def boot(client):
            new = client.create_volume(BODY)
            seen = [new.body['status']]
            for at in (1.9, 10, 21):
                self.sim.sleep(at - self.sim.clock())
                seen.append(client.get_volume(new.body['id']).body['status'])
            return new, seen

        new, seen = self.run_in_sim(boot)
        self.assertEqual(oc.OK, new.kind)
        self.assertEqual(202, new.status_code)
        # Each GET answers 0.5 s (the latency) after it reached cinder.
        self.assertEqual(['creating', 'creating', 'downloading',
                          'downloading'], seen[:4])
        self.assertEqual(IMAGE,
                         new.body['volume_image_metadata']['image_id'])
        self.assertEqual({'POST': 1, 'GET volume': 3},
                         dict(self.cinder.requests))
        self.assertEqual(4, sum(self.cinder.rate.values()))

    def test_available_then_deletable_and_listed_by_metadata(self):
        def boot(client):
            vid = client.create_volume(BODY).body['id']
            early = client.delete_volume(vid)
            self.sim.sleep(30)
            listed = client.list_volumes(metadata={'k': 'v'})
            other = client.list_volumes(metadata={'k': 'w'})
            status = client.get_volume(vid).body['status']
            late = client.delete_volume(vid)
            gone = client.get_volume(vid)
            return early, listed, other, status, late, gone

        early, listed, other, status, late, gone = self.run_in_sim(boot)
        self.assertEqual((oc.REJECTED, 400),
                         (early.kind, early.status_code))
        self.assertEqual(1, len(listed.body))
        self.assertEqual([], other.body)
        self.assertEqual('available', status)
        self.assertEqual(oc.OK, late.kind)
        self.assertEqual(oc.NOT_FOUND, gone.kind)
        self.assertEqual({}, self.cinder.live_by_owner())
        self.assertEqual(1, self.cinder.made(0))

    def test_post_faults(self):
        cases = (('lost_request', oc.UNKNOWN, None, 0),
                 ('lost_response', oc.UNKNOWN, None, 1),
                 ('gateway_504', oc.UNKNOWN, 504, 1),
                 ('no_server_503', oc.NOT_SENT, 503, 0))
        for owner, (name, kind, code, made) in enumerate(cases):
            faults = sim_model.Faults(**{name: 1.0})
            client = self.cinder.client(owner, faults)
            task = self.sim.spawn(client.create_volume, BODY)
            self.sim.run()
            self.assertEqual((kind, code), (task.result.kind,
                                            task.result.status_code), name)
            self.assertEqual(made, self.cinder.made(owner), name)
        self.assertEqual(2, self.cinder.requests['POST'])
        self.assertEqual(2, self.cinder.lost['POST'])

    def test_visibility_lag_and_read_resets(self):
        lag = sim_model.Faults(lag_s=3.0, lag_share=1.0)

        def boot(client):
            vid = client.create_volume(BODY).body['id']
            early = (client.get_volume(vid).kind,
                     client.list_volumes(metadata={'k': 'v'}).body)
            self.sim.sleep(3)
            return early, client.get_volume(vid).kind

        early, late = self.run_in_sim(boot, lag)
        self.assertEqual((oc.NOT_FOUND, []), early)
        self.assertEqual(oc.OK, late)

        reset = sim_model.Faults(read_reset=1.0)
        vid = '00000000-0000-4000-8000-000000000001'
        result = self.run_in_sim(lambda c: c.get_volume(vid), reset)
        self.assertEqual((oc.UNKNOWN, None), (result.kind,
                                              result.status_code))
        self.assertEqual(1, self.cinder.lost['GET volume'])

    def test_error_volume_has_a_user_message(self):
        work = sim_model.Workload(error_share=1.0, latency=0.0)
        cinder = sim_cinder.SimCinder(self.sim, work, seed=1)
        client = cinder.client(0, sim_model.Faults())

        def boot():
            vid = client.create_volume({'size': 1}).body['id']
            self.sim.sleep(3600)
            return (client.get_volume(vid).body['status'],
                    client.list_messages(vid).body)

        task = self.sim.spawn(boot)
        self.sim.run()
        status, messages = task.result
        self.assertEqual('error', status)
        self.assertIn('create volume', messages[0]['user_message'])

    def test_same_seed_same_volume_timing(self):
        one = sim_cinder.SimCinder(sim.Simulation(), sim_model.Workload(), 3)
        two = sim_cinder.SimCinder(sim.Simulation(), sim_model.Workload(), 3)
        a, b = one.create(5, BODY), two.create(5, BODY)
        self.assertEqual((a.id, a.done_at), (b.id, b.done_at))
        self.assertNotEqual(a.id, one.create(5, BODY).id)


class TestModel(base.BaseTestCase):

    def test_packaged_scenarios(self):
        self.assertEqual(sim_model.Faults(), sim_model.load_faults('none'))
        seed = sim_model.load_faults('seed')
        self.assertEqual((0.10, 3.0, 0.34), (seed.lost_request, seed.lag_s,
                                             seed.lag_share))
        # First rule that fires wins: 5% of the 90% not lost.
        self.assertAlmostEqual(0.045, seed.lost_response)
        harsh = sim_model.load_faults('harsh')
        self.assertGreater(harsh.gateway_504_s, 0)
        self.assertGreater(harsh.read_reset, 0)

    def test_scenario_file(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 's.yaml')
        with open(path, 'w') as f:
            f.write('name: mine\nrules:\n'
                    '  - {fault: no_server_503, probability: 0.2}\n'
                    '  - {fault: gateway_504, probability: 0.5, seconds: 30,'
                    ' forward: false}\n'
                    '  - {fault: reset, probability: 0.5}\n'
                    '  - {fault: reset, probability: 0.5}\n'
                    '  - {fault: lost_request, probability: 0.3,'
                    ' methods: [GET], path: "^/volumes/detail$"}\n')
        faults = sim_model.load_faults(path)
        self.assertEqual((0.2, 0.4, 30.0, False, 0.75),
                         (faults.no_server_503, faults.gateway_504,
                          faults.gateway_504_s, faults.gateway_504_forward,
                          faults.read_reset))
        self.assertEqual(0.0, faults.lost_request)   # GET rule: ignored

    def test_bad_input_is_a_typed_error(self):
        self.assertRaises(exception.InvalidInput, sim_model.load_faults,
                          '/nonexistent/scenario.yaml')
        self.assertRaises(exception.InvalidInput, sim_model.load_faults,
                          'nonesuch')
        self.assertRaises(exception.InvalidInput, sim_model.Faults,
                          lost_request=0.7, lost_response=0.7)
        self.assertRaises(exception.InvalidInput, sim_model.Faults,
                          lag_s=-1)
        self.assertRaises(exception.InvalidInput, sim_model.Workload,
                          boots=0)
        self.assertRaises(exception.InvalidInput, sim_model.Workload,
                          gib_median=float('nan'))
        self.assertRaises(exception.InvalidInput, sim_model.Workload,
                          sizes=((10, 1.0), (0, 1.0)))
