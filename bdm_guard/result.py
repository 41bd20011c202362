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

"""What an idempotent create returns."""

import dataclasses


@dataclasses.dataclass
class CreateResult:
    """What one idempotent create did.

    :ivar volume: the volume dict (created or adopted).
    :ivar outcome: ``"created"`` or ``"adopted"``.
    :ivar posts: POST /volumes sent.
    :ivar reconciles: lookups by key (``GET /volumes/detail?metadata=``),
        the first one before any POST included.
    :ivar deleted_duplicates: ids of duplicates deleted.
    :ivar undeleted_duplicates: ids of duplicates that could not be deleted
        (attached, or still transitional after duplicate_settle_timeout).
    :ivar created_at: the ``clock`` value when the volume was known.
    :ivar key: the idempotency key.
    """

    volume: dict
    outcome: str
    posts: int = 0
    reconciles: int = 0
    deleted_duplicates: list = dataclasses.field(default_factory=list)
    undeleted_duplicates: list = dataclasses.field(default_factory=list)
    created_at: float = 0.0
    key: str = None
