#!/bin/bash
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
#
# DevStack plugin: install bdm-guard into nova's Python environment and
# run nova-compute (devstack@n-cpu) through bdm-guard-nova-compute.
#
# Phases (DevStack's plugin interface): "stack install" installs the
# package; "stack post-config" writes [bdm_guard] into nova-compute's
# config ($NOVA_CPU_CONF) and, with BDM_GUARD_EVENTS, the notification
# settings of nova and cinder; "stack extra" (n-cpu is running by then)
# adds a systemd drop-in that starts the launcher with n-cpu's own
# arguments, and restarts n-cpu; "unstack" and "clean" remove the drop-in.

function install_bdm_guard {
    setup_develop $BDM_GUARD_DIR
}

function configure_bdm_guard {
    local conf=${NOVA_CPU_CONF:-$NOVA_CONF}
    if [[ -n "$BDM_GUARD_PER_GIB_ALLOWANCE" ]]; then
        iniset $conf bdm_guard per_gib_allowance $BDM_GUARD_PER_GIB_ALLOWANCE
    fi
    if [[ "$BDM_GUARD_EVENTS" == "True" ]]; then
        iniset $conf bdm_guard_events transport_url "$(get_notification_url)"
        iniset $CINDER_CONF oslo_messaging_notifications driver messagingv2
    fi
    if [[ -n "$BDM_GUARD_METRICS_TEXTFILE" ]]; then
        iniset $conf bdm_guard_metrics textfile $BDM_GUARD_METRICS_TEXTFILE
    fi
}

# The n-cpu unit's ExecStart with nova-compute replaced by the launcher.
function bdm_guard_launcher_execstart {
    local unit=$1
    local line
    line=$(grep -m1 '^ExecStart=' "$unit") || die $LINENO "no ExecStart in $unit"
    line=${line#ExecStart=}
    local binary=${line%% *}
    local args=""
    if [[ "$line" == *" "* ]]; then
        args=" ${line#* }"
    fi
    if [[ "$(basename $binary)" != "nova-compute" ]]; then
        die $LINENO "$unit does not start nova-compute: $binary"
    fi
    echo "$(dirname $binary)/bdm-guard-nova-compute$args"
}

function bdm_guard_dropin_dir {
    echo ${BDM_GUARD_SYSTEMD_DIR:-/etc/systemd/system}/devstack@n-cpu.service.d
}

function start_bdm_guard {
    local unit=${BDM_GUARD_SYSTEMD_DIR:-/etc/systemd/system}/devstack@n-cpu.service
    local execstart
    execstart=$(bdm_guard_launcher_execstart $unit) || return 1
    local dir
    dir=$(bdm_guard_dropin_dir)
    sudo mkdir -p $dir
    cat <<DROPIN | sudo tee $dir/bdm-guard.conf >/dev/null
# Written by bdm-guard's DevStack plugin: n-cpu through the launcher.
[Service]
ExecStart=
ExecStart=$execstart
RestartPreventExitStatus=2
DROPIN
    $SYSTEMCTL daemon-reload
    $SYSTEMCTL restart devstack@n-cpu.service
}

function stop_bdm_guard {
    local dir
    dir=$(bdm_guard_dropin_dir)
    sudo rm -f $dir/bdm-guard.conf
    $SYSTEMCTL daemon-reload
}

if is_service_enabled bdm-guard; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing bdm-guard"
        install_bdm_guard
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring bdm-guard"
        configure_bdm_guard
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        if is_service_enabled n-cpu; then
            echo_summary "Starting nova-compute through bdm-guard"
            start_bdm_guard
        fi
    fi
    if [[ "$1" == "unstack" || "$1" == "clean" ]]; then
        stop_bdm_guard
    fi
fi
