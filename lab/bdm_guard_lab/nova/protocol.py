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

"""The JSON-lines protocol between the lab and its nova child.

Shared by both sides; imports nothing from nova.
"""

import json

#: Events the child sends.
EVENTS = ('ready', 'progress', 'booted', 'deleted', 'error')


def encode(event, **fields):
    """One protocol line: ``{"event": event, ...fields}`` and a newline."""
    return json.dumps(dict(fields, event=event)) + '\n'


def command(name, **args):
    """One command line for the child: ``{"cmd": name, "args": args}``."""
    return json.dumps({'cmd': name, 'args': args}) + '\n'


def decode(line):
    """Decode one line.

    :returns: the dict.
    :raises ValueError: not a JSON object with an ``event``.
    """
    data = json.loads(line)
    if not isinstance(data, dict) or data.get('event') not in EVENTS:
        raise ValueError('not a lab nova event: %r' % line[:200])
    return data
