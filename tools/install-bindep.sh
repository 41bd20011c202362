#!/bin/bash
# Install the system packages that bindep.txt lists for a profile.
#
# Usage: tools/install-bindep.sh PROFILE
# Runs as root (CI, containers) with apt-get; otherwise with sudo -n when
# that works; otherwise it prints what is missing and fails.
set -eu
profile=${1:-test}
cd "$(dirname "$0")/.."
missing=$(bindep -b "$profile" || true)
if [ -z "$missing" ]; then
    exit 0
fi
echo "bindep: installing for profile '$profile':" $missing
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "bindep: please install: $missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps Debian from starting the packaged services: the tests
# start their own instances on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    cleanup_policy=1
fi
$SUDO apt-get install -y -qq --no-install-recommends $missing
if [ "${cleanup_policy:-0}" = 1 ]; then
    $SUDO rm -f /usr/sbin/policy-rc.d
fi
