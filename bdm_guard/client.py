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

"""The seam between bdm-guard's logic and cinder: a public Protocol.

The waiter and the creator talk to cinder only through this interface. It
has three implementations: :class:`bdm_guard.cinder.VolumeClient` (real
HTTP), the lab's simulated cinder (``bdm_guard_lab.sim.cinder``) and the
requests-mock fake of the unit tests. Every call ends in one
:class:`bdm_guard.outcome.Outcome`; none raises for an HTTP or transport
failure. Implement it to run the waiter and the creator on another
transport (a simulator, a test fake).
"""

import typing

from bdm_guard import outcome as oc


Timeout = typing.Optional[float]


class VolumeClient(typing.Protocol):
    """Volume calls that each end in one :class:`~bdm_guard.outcome.Outcome`.

    Every call carries the client's global request id (nova's
    ``context.global_id`` inside nova-compute), and takes ``timeout``: the
    seconds left of the caller's deadline, which bounds the whole call
    (None: the client's own limit).
    """

    def get_volume(self, volume_id: str, *,
                   timeout: Timeout = None) -> oc.Outcome:
        """``GET /volumes/{id}``; ``body`` is the volume dict when ok."""

    def create_volume(self, volume: dict, *,
                      timeout: Timeout = None) -> oc.Outcome:
        """``POST /volumes``, sent exactly once; ``body`` is the volume."""

    def list_volumes(self, *, metadata: typing.Optional[dict] = None,
                     timeout: Timeout = None) -> oc.Outcome:
        """``GET /volumes/detail?metadata=``; ``body`` is a list."""

    def delete_volume(self, volume_id: str, *,
                      timeout: Timeout = None) -> oc.Outcome:
        """``DELETE /volumes/{id}``."""

    def list_messages(self, volume_id: str, *,
                      timeout: Timeout = None) -> oc.Outcome:
        """``GET /messages?resource_uuid={id}``; ``body`` is a list."""

    def reauthenticate(self) -> bool:
        """Drop the cached token so that the next call gets a new one."""

    # Optional: a client that also has ``supports_idempotency_key(*,
    # timeout) -> bool`` and ``forget_idempotency_key_support() -> None``,
    # and whose ``create_volume`` takes ``idempotency_key=`` (str or None),
    # lets the creator use cinder's own key (microversion 3.72; see
    # :class:`bdm_guard.cinder.VolumeClient`). Without them, the creator
    # goes by the metadata key.
