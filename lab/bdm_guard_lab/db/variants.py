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

"""The ways to run cinder's database on Galera that the lab compares.

Each :class:`Variant` is configuration only, no code: how haproxy spreads
cinder's connections over the nodes and which ``[database]`` options
cinder.conf sets. Every variant runs on the same cluster with the same node
lagging (:class:`bdm_guard_lab.db.lagging_galera.GaleraLab`), so that any
arm of a demo (the library mode's arms,
:mod:`bdm_guard_lab.arms.library_mode`, or real nova) can take a variant
by name: ``GaleraLab.cinder_kwargs(database_name, variant_name)``.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way to configure cinder's database on Galera.

    :ivar name: the name on the command line (``--db-variant``).
    :ivar title: one line for tables and logs.
    :ivar single_writer: haproxy sends every connection to node 1, the
        other nodes are ``backup`` (used only when node 1 is down);
        False: ``balance roundrobin`` over every node.
    :ivar database_options: cinder.conf ``[database]`` options,
        ``((name, value), ...)``.
    """

    name: str
    title: str
    single_writer: bool = False
    database_options: tuple = ()


#: Stock cinder on a multi-writer VIP (haproxy roundrobin over 3 nodes).
MULTI_WRITER = Variant('multi-writer', 'stock cinder, haproxy roundrobin')
#: oslo.db >= 12.3.0 sets ``SET SESSION wsrep_sync_wait = 3`` on every new
#: connection: reads (1) and UPDATE/DELETE (2) wait for the node to apply
#: what the cluster had committed.
SYNC_WAIT = Variant('sync-wait', '[database] mysql_wsrep_sync_wait = 3',
                    database_options=(('mysql_wsrep_sync_wait', 3),))
#: One writer node, the others ``backup``, as kolla-ansible's and
#: OpenStack-Ansible's haproxy templates deploy Galera.
SINGLE_WRITER = Variant('single-writer',
                        'haproxy single writer (others backup)',
                        single_writer=True)

VARIANTS = {v.name: v for v in (MULTI_WRITER, SYNC_WAIT, SINGLE_WRITER)}
NAMES = tuple(VARIANTS)


def get(name):
    """The :class:`Variant` called ``name``.

    :param name: one of :data:`NAMES`.
    :returns: a :class:`Variant`.
    :raises ValueError: unknown name.
    """
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError('database variant must be one of %s, not %r'
                         % (', '.join(NAMES), name)) from None
