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

"""The seed's database for the lab: Galera behind haproxy, one node lagging.

:class:`GaleraLab` starts a 3-node :class:`~bdm_guard_lab.db.galera_cluster.
GaleraCluster` and two real haproxies in front of it
(``doc/source/contributor/lab-recipes.rst``, "The seed, end to end, for
real"): one in ``balance roundrobin`` over every
node (a multi-writer VIP), one with node 1 as the single writer and the
others ``backup``. Each arm of a demo picks a configuration by name
(:mod:`bdm_guard_lab.db.variants`) and gets a fresh database through the
matching haproxy (:meth:`GaleraLab.cinder_kwargs`: leftover volumes and
services would show in the next arm); cinder runs ``db_sync`` on it, and
the last node lags while the arm's creates run (:meth:`GaleraLab.lag`),
whatever the variant. Every arm runs the installed, stock cinder: the
variants are configuration only.

The lag is ``BACKUP STAGE BLOCK_COMMIT`` plus ``wsrep_desync`` on node 3 by
default: node 3 stops applying write-sets, so an INSERT committed through
node 1 or 2 is missing from a read on node 3, and the scheduler's UPDATE of
the new volume matches 0 rows there, as in the seed.
"""

import contextlib
import dataclasses

import fixtures
from oslo_log import log as logging

from bdm_guard_lab.db import galera_cluster
from bdm_guard_lab.db import haproxy
from bdm_guard_lab.db import mariadb
from bdm_guard_lab.db import variants

LOG = logging.getLogger(__name__)

#: Real seconds node 3 lags from the start of an arm's creates. It must stay
#: below bdm-guard's ``not_found_grace`` (30 scenario seconds, 15 real ones
#: at the demo's default time scale 0.5: a 404 after it is a vanished
#: volume, by design) and Galera's ``repl.causal_read_timeout`` (30 s).
DEFAULT_LAG_SECONDS = 10.0
LAG_METHODS = ('commit', 'ftwrl')


def check_installed():
    """Fail early, in one line, when Galera or haproxy is missing.

    :raises bdm_guard_lab.exception.LabError: naming the bindep profile.
    """
    mariadb.check_installed()
    mariadb.binary('haproxy')


@contextlib.contextmanager
def running(lab):
    """Set up a :class:`GaleraLab` for the block, then clean it up.

    Unlike ``with lab:``, a failure at start raises the lab's own error
    (a :class:`bdm_guard_lab.exception.LabError`), not the fixtures library's
    ``MultipleExceptions`` wrapper.
    """
    try:
        lab.setUp()
    except fixtures.MultipleExceptions as exc:
        raise exc.args[0][1]
    try:
        yield lab
    finally:
        lab.cleanUp()


def without_simulated_lag(scenario):
    """The scenario without its ``visibility_lag`` rules (Galera lags)."""
    return dataclasses.replace(scenario, rules=tuple(
        rule for rule in scenario.rules if rule.fault != 'visibility_lag'))


class GaleraLab(fixtures.Fixture):
    """A Galera cluster, its two haproxies, and lag on its last node.

    :param lag_seconds: real seconds the last node lags per arm (None: for
        the whole block of :meth:`lag`).
    :param lag_method: ``commit`` or ``ftwrl`` (see
        :meth:`bdm_guard_lab.db.galera_cluster.GaleraCluster.lag`).
    :param size: Galera nodes.
    :raises ValueError: unknown ``lag_method``.
    :raises bdm_guard_lab.exception.LabError: from ``setUp`` when MariaDB,
        Galera or haproxy is not installed or does not start.

    After ``setUp``: ``cluster``, ``proxy`` (roundrobin), ``single_proxy``
    (single writer); after each :meth:`lag` block, ``last_lag`` (see
    :meth:`bdm_guard_lab.db.galera_cluster.GaleraCluster.lag`).
    """

    def __init__(self, lag_seconds=DEFAULT_LAG_SECONDS, lag_method='commit',
                 size=3):
        super().__init__()
        if lag_method not in LAG_METHODS:
            raise ValueError('lag_method must be one of %s' % (LAG_METHODS,))
        self.lag_seconds = lag_seconds
        self.lag_method = lag_method
        self.size = size
        self.last_lag = None

    def _setUp(self):
        check_installed()
        self.cluster = self.useFixture(galera_cluster.GaleraCluster(
            size=self.size, database=None))
        self.proxy = self.useFixture(haproxy.galera_haproxy(self.cluster))
        self.single_proxy = self.useFixture(haproxy.galera_haproxy(
            self.cluster, single_writer=True))

    def database(self, name, variant=variants.MULTI_WRITER.name):
        """Drop and create database ``name``; return its URL via haproxy.

        :param name: the database name.
        :param variant: a :data:`bdm_guard_lab.db.variants.NAMES` entry; it
            picks the haproxy.
        :returns: an SQLAlchemy URL (str).
        :raises ValueError: unknown variant.
        """
        chosen = variants.get(variant)
        proxy = self.single_proxy if chosen.single_writer else self.proxy
        self.cluster.create_database(name, drop=True)
        return self.cluster.nodes[0].url(name, port=proxy.port)

    def cinder_kwargs(self, name, variant=variants.MULTI_WRITER.name):
        """Keyword arguments of a CinderService for ``variant``.

        :param name: the database to create afresh for this cinder.
        :param variant: a :data:`bdm_guard_lab.db.variants.NAMES` entry.
        :returns: ``{'db_connection': url, 'database_options': dict}`` for
            :class:`bdm_guard_lab.cinder.service.CinderService`.
        :raises ValueError: unknown variant.
        """
        return {'db_connection': self.database(name, variant),
                'database_options': dict(
                    variants.get(variant).database_options)}

    @contextlib.contextmanager
    def lag(self):
        """Make the last node lag while the block runs (see the class)."""
        node = self.cluster.nodes[-1]
        try:
            with self.cluster.lag(node, self.lag_seconds, self.lag_method):
                yield node
        finally:
            self.last_lag = self.cluster.last_lag
