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

"""The deployment-tool integration, rendered or run as far as possible here.

Kolla's template override is rendered with Jinja on a parent shaped like
kolla's ``docker/nova/nova-compute/Dockerfile.j2``; the kolla-ansible
patch's template is rendered; the OpenStack-Ansible variables are the
os_nova role's; the systemd drop-ins go through ``systemd-analyze
verify`` next to the distributions' units, and the Debian one through the
packaged init script's logic; the DevStack plugin's phases run in bash
with DevStack's helpers stubbed.
"""

import json
import os
import shutil
import subprocess
import unittest

import fixtures
from oslotest import base
import yaml

from bdm_guard.audit import api as audit
from bdm_guard.audit.parsers import ini
from bdm_guard import opts

try:
    import jinja2
except ImportError:  # pragma: no cover - nova's environment has it
    jinja2 = None

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
KOLLA = os.path.join(REPO, 'tools', 'kolla')
SYSTEMD = os.path.join(REPO, 'etc', 'systemd')

#: The blocks and lines of kolla's nova-compute Dockerfile.j2 (openstack/
#: kolla master, kolla/docker/nova/nova-compute/Dockerfile.j2) that the
#: override relies on: plugins-archive is ADDed and /plugins/* installed
#: with the image's constraints, then the footer blocks, then USER nova.
PARENT = '''FROM {{ namespace }}/{{ image_prefix }}nova-base:{{ tag }}
{% block labels %}
LABEL maintainer="{{ maintainer }}" name="{{ image_name }}"
{% endblock %}

{% block nova_compute_header %}{% endblock %}

ADD plugins-archive /
RUN if [ "$(ls /plugins)" ]; then \\
        python3 -m pip --no-cache-dir install --upgrade \\
        -c /requirements/upper-constraints.txt /plugins/*; \\
    fi

{% block nova_compute_footer %}{% endblock %}
{% block footer %}{% endblock %}

USER nova
'''


@unittest.skipIf(jinja2 is None, 'jinja2 is not installed')
class TestKolla(base.BaseTestCase):

    def render_image(self):
        # kolla-build passes the image's template as parent_template.
        env = jinja2.Environment(loader=jinja2.DictLoader({
            'nova-compute/Dockerfile.j2': PARENT,
            'override.j2': open(os.path.join(
                KOLLA, 'template-override.j2')).read()}),
            undefined=jinja2.StrictUndefined)
        parent = env.get_template('nova-compute/Dockerfile.j2')
        values = dict(namespace='kolla', image_prefix='', tag='2026.1',
                      maintainer='x', image_name='nova-compute',
                      parent_template=parent)
        return env.get_template('override.j2').render(**values)

    def test_override_switches_the_entry_point(self):
        text = self.render_image().replace('\\\n', ' ')
        lines = [line.strip() for line in text.splitlines()
                 if line.strip()]
        run = [line for line in lines if 'bdm-guard-nova-compute' in line]
        self.assertEqual(1, len(run))
        self.assertIn('ln -s bdm-guard-nova-compute '
                      '/var/lib/kolla/venv/bin/nova-compute', run[0])
        self.assertIn('mv /var/lib/kolla/venv/bin/nova-compute '
                      '/var/lib/kolla/venv/bin/nova-compute.stock', run[0])
        # After the plugin install, before the image drops root.
        self.assertLess(lines.index('ADD plugins-archive /'),
                        lines.index(run[0]))
        self.assertLess(lines.index(run[0]), lines.index('USER nova'))
        self.assertEqual('USER nova', lines[-1])

    def test_build_conf_names_the_plugin_source(self):
        conf = ini.read(os.path.join(KOLLA, 'kolla-build.conf'))
        section = 'nova-compute-plugin-bdm-guard'
        self.assertEqual('git', conf.get(section, 'type').value)

    def test_kolla_ansible_config_snippet_is_valid(self):
        path = os.path.join(KOLLA, 'config', 'nova', 'nova-compute.conf')
        conf = ini.read(path)
        known = {o.name for o in opts.ALL_OPTS}
        for name in conf.sections['bdm_guard']:
            self.assertIn(name, known)
        self.assertEqual([], [f for f in audit.audit(nova_conf=path)
                              if f.kind.startswith(('option', 'invalid'))])

    def test_kolla_ansible_patch_renders(self):
        path = os.path.join(REPO, 'patches', 'kolla-ansible',
                            '0001-nova-cell-make-the-nova-compute-command-'
                            'configurable.patch')
        with open(path) as f:
            patch = f.read()
        self.assertIn('Change-Id: I', patch)
        hunk = patch.split('templates/nova-compute.json.j2')[-1]
        new = [line[1:] for line in hunk.splitlines()
               if line[:1] in ('+', ' ') and not line.startswith('+++')]
        self.assertIn('    "command": "{{ nova_compute_command }}",', new)
        template = jinja2.Template('\n'.join(new[:2]) + '}')
        rendered = template.render(
            nova_compute_command='bdm-guard-nova-compute')
        self.assertEqual('bdm-guard-nova-compute',
                         json.loads(rendered.replace(',}', '}'))['command'])
        self.assertIn('+nova_compute_command: "nova-compute"', patch)


class TestOpenStackAnsible(base.BaseTestCase):
    #: os_nova defaults/main.yml (openstack-ansible-os_nova master): the
    #: variables the role reads; nothing else in user_variables reaches it.
    OS_NOVA_VARIABLES = {'nova_user_pip_packages', 'nova_nova_conf_overrides',
                         'nova_compute_init_overrides'}

    def test_user_variables(self):
        path = os.path.join(REPO, 'tools', 'osa', 'user_variables.yml')
        with open(path) as f:
            data = yaml.safe_load(f)
        self.assertEqual(self.OS_NOVA_VARIABLES, set(data))
        self.assertEqual(['bdm-guard'], data['nova_user_pip_packages'])
        self.assertEqual(
            '{{ nova_bin }}/bdm-guard-nova-compute',
            data['nova_compute_init_overrides']['Service']['ExecStart'])
        known = {o.name for o in opts.ALL_OPTS}
        for name in data['nova_nova_conf_overrides']['bdm_guard']:
            self.assertIn(name, known)
        self.assertEqual((True, path), audit.launcher_deployed([path]))


# The units as the packages ship them: Debian bookworm nova-compute
# 2:26.2.2-1~deb12u5 (lib/systemd/system/nova-compute.service) and RDO's
# openstack-nova-compute.service.
DEBIAN_UNIT = '''[Unit]
Description=OpenStack Nova Compute (nova-compute)
After=libvirtd.service network-online.target local-fs.target
Wants=network-online.target

[Service]
User=nova
Group=nova
Type=notify
WorkingDirectory=~
RuntimeDirectory=nova lock/nova
CacheDirectory=nova
ExecStart=%(wrapper)s systemd-start
Restart=on-failure
LimitNOFILE=65535
TimeoutStopSec=15
NotifyAccess=all

[Install]
WantedBy=multi-user.target
'''
RDO_UNIT = '''[Unit]
Description=OpenStack Nova Compute Server
After=syslog.target network.target libvirtd.service

[Service]
Environment=LIBGUESTFS_ATTACH_METHOD=appliance
Type=notify
NotifyAccess=all
TimeoutStartSec=0
Restart=always
User=nova
ExecStart=%(binary)s

[Install]
WantedBy=multi-user.target
'''
# The lines of Debian's /etc/init.d/nova-compute (openstack-pkg-tools'
# init-script-template) that choose the binary and its arguments.
INIT_SCRIPT = '''#!/bin/sh
NAME=nova-compute
DAEMON_ARGS="--config-file=/etc/nova/nova-compute.conf"
if [ -z "${DAEMON}" ] ; then
\tDAEMON=/usr/bin/${NAME}
fi
CONFIG_FILE=/etc/nova/nova.conf
LOGFILE=/var/log/nova/${NAME}.log
DAEMON_ARGS="--config-file=${CONFIG_FILE} ${DAEMON_ARGS}"
DAEMON_ARGS="$DAEMON_ARGS --log-file=$LOGFILE"
case "$1" in
systemd-start)
\techo $DAEMON $DAEMON_ARGS
\t;;
esac
'''


def _value(path, key):
    with open(path) as f:
        return [line.split('=', 1)[1].strip() for line in f
                if line.startswith(key + '=')]


class TestSystemd(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def stub(self, name, text='#!/bin/sh\nexit 0\n'):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path

    def test_debian_dropin_keeps_the_packaged_arguments(self):
        dropin = os.path.join(SYSTEMD, 'debian', 'nova-compute.service.d',
                              'bdm-guard.conf')
        self.assertEqual([], _value(dropin, 'ExecStart'))
        env = dict(e.split('=', 1) for e in _value(dropin, 'Environment'))
        self.assertEqual('/usr/local/bin/bdm-guard-nova-compute',
                         env['DAEMON'])
        init = self.stub('nova-compute.init', INIT_SCRIPT)
        out = subprocess.run([init, 'systemd-start'], env=dict(env),
                             capture_output=True, text=True,
                             check=True).stdout.split()
        self.assertEqual(['/usr/local/bin/bdm-guard-nova-compute',
                          '--config-file=/etc/nova/nova.conf',
                          '--config-file=/etc/nova/nova-compute.conf',
                          '--log-file=/var/log/nova/nova-compute.log'], out)
        self.assertEqual(['2'], _value(dropin, 'RestartPreventExitStatus'))

    def test_rdo_dropin(self):
        dropin = os.path.join(SYSTEMD, 'rdo',
                              'openstack-nova-compute.service.d',
                              'bdm-guard.conf')
        self.assertEqual(['', '/usr/local/bin/bdm-guard-nova-compute'],
                         _value(dropin, 'ExecStart'))

    def verify(self, unit_name, unit_text, dropin_dir, replace=None):
        units = os.path.join(self.tmp, 'units')
        os.makedirs(os.path.join(units, unit_name + '.d'), exist_ok=True)
        with open(os.path.join(units, unit_name), 'w') as f:
            f.write(unit_text)
        with open(os.path.join(dropin_dir, 'bdm-guard.conf')) as f:
            text = f.read()
        for old, new in (replace or {}).items():
            text = text.replace(old, new)
        with open(os.path.join(units, unit_name + '.d', 'bdm-guard.conf'),
                  'w') as f:
            f.write(text)
        return subprocess.run(
            ['systemd-analyze', 'verify', os.path.join(units, unit_name)],
            env=dict(os.environ, SYSTEMD_UNIT_PATH=units + ':'),
            capture_output=True, text=True, timeout=60)

    @unittest.skipIf(not shutil.which('systemd-analyze'),
                     'systemd-analyze is not installed')
    def test_systemd_analyze_verify(self):
        wrapper = self.stub('nova-compute.init')
        launcher = self.stub('bdm-guard-nova-compute')
        nova = self.stub('nova-compute')
        debian = self.verify(
            'nova-compute.service', DEBIAN_UNIT % {'wrapper': wrapper},
            os.path.join(SYSTEMD, 'debian', 'nova-compute.service.d'))
        self.assertEqual(0, debian.returncode,
                         debian.stdout + debian.stderr)
        rdo_dir = os.path.join(SYSTEMD, 'rdo',
                               'openstack-nova-compute.service.d')
        pip = '/usr/local/bin/bdm-guard-nova-compute'
        rdo = self.verify('openstack-nova-compute.service',
                          RDO_UNIT % {'binary': nova}, rdo_dir,
                          {pip: launcher})
        self.assertEqual(0, rdo.returncode, rdo.stdout + rdo.stderr)
        # The drop-in's ExecStart is the one systemd checks.
        missing = self.verify('openstack-nova-compute.service',
                              RDO_UNIT % {'binary': nova}, rdo_dir,
                              {pip: os.path.join(self.tmp, 'missing')})
        self.assertNotEqual(0, missing.returncode)
        self.assertIn('missing', missing.stdout + missing.stderr)


DEVSTACK_STUBS = r'''
set -e
DEST=%(tmp)s
LOG=%(tmp)s/calls.log
SYSTEMCTL="echo systemctl"
NOVA_CPU_CONF=/etc/nova/nova-cpu.conf
CINDER_CONF=/etc/cinder/cinder.conf
BDM_GUARD_SYSTEMD_DIR=%(tmp)s/systemd
function trueorfalse {
    local v=${!2:-$1}; [[ "$v" == "True" ]] && echo True || echo False
}
function enable_service {
    echo "enable_service $*" >> $LOG; ENABLED="$ENABLED $*"
}
function is_service_enabled { [[ " $ENABLED n-cpu " == *" $1 "* ]]; }
function setup_develop { echo "setup_develop $*" >> $LOG; }
function iniset { echo "iniset $*" >> $LOG; }
function get_notification_url {
    echo "rabbit://stackrabbit:secret@192.0.2.1:5672/"
}
function echo_summary { :; }
function die { echo "die $*" >&2; exit 1; }
function sudo { "$@"; }
'''


class TestDevStack(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        os.mkdir(os.path.join(self.tmp, 'systemd'))
        with open(os.path.join(self.tmp, 'systemd',
                               'devstack@n-cpu.service'), 'w') as f:
            f.write('[Unit]\nDescription = Devstack devstack@n-cpu.service'
                    '\n\n[Service]\nExecStart = /opt/stack/data/venv/bin/'
                    'nova-compute --config-file /etc/nova/nova-cpu.conf\n'
                    .replace(' = ', '='))

    def run_phases(self, *phases, **env):
        script = DEVSTACK_STUBS % {'tmp': self.tmp}
        script += ''.join('%s=%s\n' % item for item in env.items())
        script += 'source %s/devstack/settings\n' % REPO
        for phase in phases:
            script += 'source %s/devstack/plugin.sh %s\n' % (REPO, phase)
        result = subprocess.run(['bash', '-c', script], capture_output=True,
                                text=True, timeout=60)
        calls = ''
        if os.path.exists(os.path.join(self.tmp, 'calls.log')):
            with open(os.path.join(self.tmp, 'calls.log')) as f:
                calls = f.read()
        return result, calls

    def test_stack_installs_configures_and_switches_n_cpu(self):
        result, calls = self.run_phases(
            'stack install', 'stack post-config', 'stack extra',
            BDM_GUARD_PER_GIB_ALLOWANCE='25', BDM_GUARD_EVENTS='True')
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('setup_develop %s/bdm-guard' % self.tmp, calls)
        self.assertIn('iniset /etc/nova/nova-cpu.conf bdm_guard '
                      'per_gib_allowance 25', calls)
        self.assertIn('iniset /etc/nova/nova-cpu.conf bdm_guard_events '
                      'transport_url rabbit://', calls)
        self.assertIn('iniset /etc/cinder/cinder.conf '
                      'oslo_messaging_notifications driver messagingv2',
                      calls)
        dropin = os.path.join(self.tmp, 'systemd', 'devstack@n-cpu.service.d',
                              'bdm-guard.conf')
        self.assertEqual(['', '/opt/stack/data/venv/bin/bdm-guard-nova-'
                          'compute --config-file /etc/nova/nova-cpu.conf'],
                         _value(dropin, 'ExecStart'))
        self.assertIn('systemctl restart devstack@n-cpu.service',
                      result.stdout)
        result, _ = self.run_phases('unstack')
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertFalse(os.path.exists(dropin))

    def test_defaults_leave_options_alone(self):
        result, calls = self.run_phases('stack post-config')
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertNotIn('iniset', calls)

    def test_disabled_service_does_nothing(self):
        # disable_service bdm-guard after enable_plugin.
        script = DEVSTACK_STUBS % {'tmp': self.tmp} + (
            'source %s/devstack/settings\nENABLED=""\n'
            'source %s/devstack/plugin.sh stack install\n' % (REPO, REPO))
        result = subprocess.run(['bash', '-c', script], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(0, result.returncode, result.stderr)
        with open(os.path.join(self.tmp, 'calls.log')) as f:
            self.assertNotIn('setup_develop', f.read())

    def test_a_unit_without_nova_compute_is_refused(self):
        with open(os.path.join(self.tmp, 'systemd',
                               'devstack@n-cpu.service'), 'w') as f:
            f.write('[Service]\nExecStart=/usr/bin/true\n')
        result, _ = self.run_phases('stack extra')
        self.assertNotEqual(0, result.returncode)
        self.assertIn('does not start nova-compute', result.stderr)
