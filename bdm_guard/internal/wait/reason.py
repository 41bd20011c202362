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

"""Cinder's own reason for a failed volume: its user messages.

Only messages whose ``resource_uuid`` is the volume are believed: a cinder
that ignores the filter (microversions below 3.5) would otherwise lend the
volume another volume's reason. No reason is better than a wrong one.
"""

import typing

from bdm_guard import exception
from bdm_guard import outcome as oc


def for_volume(client, volume_id: str,
               timeout: typing.Optional[float] = None
               ) -> typing.Optional[str]:
    """Cinder's newest user message about ``volume_id``, or None.

    :param client: a :class:`bdm_guard.client.VolumeClient`.
    :param volume_id: the canonical volume id.
    :param timeout: seconds the call may take (what is left of the wait).
    :returns: ``"<user_message> (<event_id>)"`` or None (no message, or
        cinder could not be asked).
    """
    try:
        result = client.list_messages(volume_id, timeout=timeout)
    except exception.CinderUnavailable:
        return None
    if result.kind != oc.OK or not isinstance(result.body, list):
        return None
    messages = [m for m in result.body if isinstance(m, dict)
                and str(m.get('resource_uuid') or '').lower() == volume_id]
    messages.sort(key=lambda m: str(m.get('created_at') or ''))
    for message in reversed(messages):
        text = message.get('user_message')
        if isinstance(text, str) and text:
            return '%s (%s)' % (text[:512], message.get('event_id', '?'))
    return None
