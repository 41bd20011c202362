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

"""Field findings for the creator: answers checked, one request per boot.

Each fault is put on the HTTP boundary (requests-mock); each test checks
the volumes left in cinder: never a duplicate, never a leak.
"""

import requests_mock

from bdm_guard import exception
from tests.unit.create import base as create_base

DEEP = '[' * 100000 + ']' * 100000


class TestPostAnswers(create_base.FaultTest):
    """16.3: a POST answer that cannot be read is an unknown outcome."""

    def answer_post_with(self, respond):
        real = self.fake.post

        def post(request):
            real(request)          # cinder made the volume...
            return respond(request)  # ...the client cannot read the answer
        self.fake.post = post

    def test_deeply_nested_answer_is_reconciled(self):
        self.answer_post_with(lambda request: requests_mock.create_response(
            request, status_code=202, text=DEEP,
            headers={'Content-Type': 'application/json'}))
        result = self.create()
        self.assertEqual('adopted', result.how)
        self.assertEqual(1, self.fake.post_count)
        self.assertEqual([result.volume['id']], self.with_key())

    def test_answer_without_a_uuid_id_is_reconciled(self):
        for body in ({'volume': {'id': 'not-a-uuid'}}, {'volume': {}},
                     {'volume': []}, []):
            self.reset()
            self.answer_post_with(
                lambda request, body=body: self.fake.respond(
                    request, 202, body))
            result = self.create()
            self.assertEqual('adopted', result.how, body)
            self.assertEqual(1, self.fake.post_count)
            self.assertEqual([result.volume['id']], self.with_key())


class TestListAnswers(create_base.FaultTest):
    """16.3: entries that are not cinder volumes are never adopted."""

    resume = True

    def test_foreign_ids_and_bad_statuses_are_skipped(self):
        self.fake.list_extra = [
            {'id': '../../etc/passwd', 'status': 'available',
             'metadata': {create_base.KEY_META: create_base.KEY}},
            {'id': 42, 'status': 'available',
             'metadata': {create_base.KEY_META: create_base.KEY}},
            {'id': '11111111-2222-4333-8444-555555555555',
             'status': ['available'],
             'metadata': {create_base.KEY_META: create_base.KEY}},
            {'id': '11111111-2222-4333-8444-666666666666',
             'status': None,
             'metadata': {create_base.KEY_META: create_base.KEY}}]
        result = self.create()
        self.assertEqual('created', result.how)
        self.assertEqual([result.volume['id']], self.with_key())
        self.assertEqual([], self.fake.deleted)

    def test_a_known_volume_with_a_bad_status_is_not_adopted(self):
        vid = self.add(status='available')
        self.fake.list_extra = []
        real = self.fake.view

        def view(vol):
            shown = real(vol)
            if vol['id'] == vid:
                shown['status'] = {'not': 'a string'}
            return shown
        self.fake.view = view
        # Never adopted, never deleted: it is left alone and a new one made.
        result = self.create()
        self.assertNotEqual(vid, result.volume['id'])
        self.assertIn(vid, self.fake.volumes)
        self.assertEqual([], self.fake.deleted)


class TestOneRequestPerBoot(create_base.FaultTest):
    """16.9: no lookup before the first POST unless resuming."""

    def requests(self):
        return [(method, path.rsplit('/v3/', 1)[-1].split('/', 1)[-1])
                for _, method, path in self.fake.requests]

    def test_happy_path_is_one_post(self):
        result = self.create()
        self.assertEqual('created', result.how)
        self.assertEqual([('POST', 'volumes')], self.requests())
        self.assertEqual(0, result.lookups)

    def test_resume_looks_up_first(self):
        vid = self.add(status='available')
        result = self.create(resume=True)
        self.assertEqual(vid, result.volume['id'])
        self.assertEqual(0, self.fake.post_count)

    def test_unknown_outcome_still_looks_up(self):
        self.fake.posts = ['lost_response', 'ok']
        result = self.create()
        self.assertEqual('adopted', result.how)
        self.assertEqual(1, self.fake.post_count)
        self.assertGreaterEqual(result.lookups, 1)
        self.assertEqual([result.volume['id']], self.with_key())

    def test_errors_are_typed(self):
        self.fake.posts = ['rejected']
        self.assertRaises(exception.VolumeCreateRejected, self.create)
        self.assertEqual([], self.with_key())
