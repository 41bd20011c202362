#!/bin/bash
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

# Apply patches/nova to the nova 34.0.0 sdist one patch at a time, and after
# each patch run nova's own checks for what the patch touches: nova's flake8
# (hacking and nova's local checks) on the changed Python files, the config
# generator when nova/conf changed, a YAML load of new release notes, and
# nova's unit tests for the touched modules plus the tests the patch adds
# (stestr). Stops at the first failure.
#
# Usage: tools/nova-series-test.sh            (tox -e nova runs this)
#
# Environment:
#   BDM_GUARD_NOVA_CACHE    sdist and virtualenv cache (default .tox/nova-cache)
#   BDM_GUARD_NOVA_RESULTS  per-patch results (default <cache>/results)
#   BDM_GUARD_NOVA_PYTHON   interpreter for the virtualenv (default python3)
#   BDM_GUARD_NOVA_KEEP=1   keep the patched nova tree (path printed at exit)
#   BDM_GUARD_SRC           bdm-guard source tree to install (default: this
#                           repository)
#
# The virtualenv holds nova's requirements and test requirements from the
# pristine sdist (pinned by patches/nova/test-constraints.txt, since nova's
# constraints URL is not reachable), python-memcached (test discovery needs
# it) and bdm-guard from this repository, reinstalled on every run. It is
# rebuilt only when one of those requirement files changes.

set -euo pipefail

NOVA_VERSION=34.0.0
NOVA_SHA256=919eef77cda4ce0cc4746a5853b5d9341ebd0ae37bc8b1939eb77d17727c00df

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERIES_DIR=$REPO/patches/nova
CONSTRAINTS=$SERIES_DIR/test-constraints.txt
CACHE=${BDM_GUARD_NOVA_CACHE:-$REPO/.tox/nova-cache}
RESULTS=${BDM_GUARD_NOVA_RESULTS:-$CACHE/results}
PYTHON=${BDM_GUARD_NOVA_PYTHON:-python3}
BDM_GUARD_SRC=${BDM_GUARD_SRC:-$REPO}

# Always run: the tests of the code the series is about.
CORE_TESTS=(
    'nova\.tests\.unit\.compute\.test_compute\.ComputeVolumeTestCase\.'
    'nova\.tests\.unit\.virt\.test_block_device\.'
    'nova\.tests\.unit\.volume\.test_cinder\.'
    'nova\.tests\.unit\.test_cinder\.'
)

die() {
    echo "nova-series-test: FAILED: $*" >&2
    exit 1
}

step() {
    echo "==> $*"
}

# Test id regexes for the nova files a patch touches.
tests_for_file() {
    case "$1" in
        nova/compute/manager.py)
            echo 'nova\.tests\.unit\.compute\.test_compute\.'
            echo 'nova\.tests\.unit\.compute\.test_compute_mgr\.' ;;
        nova/virt/block_device.py)
            echo 'nova\.tests\.unit\.virt\.test_block_device\.'
            echo 'nova\.tests\.unit\.compute\.test_compute_mgr\.' ;;
        nova/volume/cinder.py)
            echo 'nova\.tests\.unit\.volume\.test_cinder\.'
            echo 'nova\.tests\.unit\.test_cinder\.' ;;
        nova/exception.py)
            echo 'nova\.tests\.unit\.test_exception\.' ;;
        nova/conf/*)
            echo 'nova\.tests\.unit\.conf\.'
            echo 'nova\.tests\.unit\.test_conf\.' ;;
        nova/tests/unit/*test_*.py)
            local module=${1%.py}
            module=${module//\//.}
            echo "${module//./\\.}\\." ;;
    esac
}

fetch_sdist() {
    local sdist=$CACHE/sdist/nova-$NOVA_VERSION.tar.gz
    if [ ! -f "$sdist" ] || \
            ! echo "$NOVA_SHA256  $sdist" | sha256sum --check --status; then
        step "Downloading the nova $NOVA_VERSION sdist from PyPI"
        rm -rf "$CACHE/sdist"
        mkdir -p "$CACHE/sdist"
        "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
            "nova==$NOVA_VERSION" -d "$CACHE/sdist" \
            || die "could not download nova==$NOVA_VERSION from PyPI"
        echo "$NOVA_SHA256  $sdist" | sha256sum --check --status \
            || die "$sdist does not have sha256 $NOVA_SHA256"
    fi
    SDIST=$sdist
}

unpack() {
    step "Unpacking nova $NOVA_VERSION into a git repository"
    tar --no-same-owner -xzf "$SDIST" -C "$WORK"
    NOVA=$WORK/nova-$NOVA_VERSION
    cd "$NOVA"
    git init --quiet
    printf '.stestr/\n__pycache__/\n*.pyc\n' >> .git/info/exclude
    git add --all
    git -c user.name=nova-series-test -c user.email=nova-series-test@localhost \
        commit --quiet --message "nova $NOVA_VERSION sdist"
}

make_venv() {
    local key
    key=$(cat "$NOVA/requirements.txt" "$NOVA/test-requirements.txt" \
              "$CONSTRAINTS" "$BDM_GUARD_SRC/requirements.txt" \
          | { cat; "$PYTHON" --version; } | sha256sum | cut -c1-12)
    VENV=$CACHE/venv-$key
    if [ ! -f "$VENV/.complete" ]; then
        step "Creating the test virtualenv $VENV (a few minutes, once)"
        rm -rf "$CACHE"/venv-*
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet -c "$CONSTRAINTS" \
            -r "$NOVA/requirements.txt" -r "$NOVA/test-requirements.txt" \
            -r "$BDM_GUARD_SRC/requirements.txt" python-memcached \
            || die "could not install nova's requirements into $VENV"
        touch "$VENV/.complete"
    fi
    step "Installing bdm-guard from $BDM_GUARD_SRC"
    "$VENV/bin/pip" install --quiet --no-deps --force-reinstall \
        "$BDM_GUARD_SRC" \
        || die "could not install bdm-guard from $BDM_GUARD_SRC"
}

check_patch() {
    local patch=$1 name=${1%.patch}
    local changed py=() notes=() filters=() conf_changed=0 file
    changed=$(git diff --name-only --diff-filter=d HEAD~1 HEAD)
    filters=("${CORE_TESTS[@]}")
    for file in $changed; do
        case "$file" in
            *.py) py+=("$file") ;;
        esac
        case "$file" in
            nova/conf/*) conf_changed=1 ;;
            releasenotes/notes/*.yaml) notes+=("$file") ;;
        esac
        while read -r regex; do
            [ -n "$regex" ] && filters+=("$regex")
        done < <(tests_for_file "$file")
    done

    if [ ${#py[@]} -gt 0 ]; then
        step "$name: flake8 (nova's hacking checks) on ${#py[@]} files"
        "$VENV/bin/flake8" "${py[@]}" || die "$patch: flake8 failed"
    fi
    if [ $conf_changed = 1 ]; then
        step "$name: oslo-config-generator with nova's generator config"
        PYTHONPATH=. "$VENV/bin/oslo-config-generator" \
            --config-file etc/nova/nova-config-generator.conf \
            --output-file "$WORK/nova.conf.sample" \
            || die "$patch: the sample config cannot be generated"
    fi
    if [ ${#notes[@]} -gt 0 ]; then
        step "$name: loading ${#notes[@]} release notes"
        "$VENV/bin/python" -c 'import sys, yaml
for path in sys.argv[1:]:
    assert isinstance(yaml.safe_load(open(path)), dict), path' \
            "${notes[@]}" || die "$patch: a release note is not valid YAML"
    fi

    local regex start elapsed added
    mapfile -t filters < <(printf '%s\n' "${filters[@]}" | awk '!seen[$0]++')
    regex="^($(IFS='|'; echo "${filters[*]}"))"
    # The test methods this patch adds or changes: each must run and pass.
    added=$(git diff HEAD~1 HEAD -- 'nova/tests/*' \
        | sed -n 's/^+ *def \(test_[A-Za-z0-9_]*\)(.*/\1/p' | sort -u \
        | tr '\n' ' ')
    step "$name: nova unit tests matching $regex"
    start=$(date +%s)
    if ! "$VENV/bin/stestr" --test-path ./nova/tests/unit --top-dir ./ \
            run "$regex" > "$RESULTS/$name.log" 2>&1; then
        grep -E '^(FAIL|ERROR):' "$RESULTS/$name.log" | head -20 >&2 || true
        tail -15 "$RESULTS/$name.log" >&2
        die "$patch: nova unit tests failed (log: $RESULTS/$name.log)"
    fi
    elapsed=$(( $(date +%s) - start ))
    "$VENV/bin/stestr" last --subunit | "$VENV/bin/subunit2csv" \
        > "$RESULTS/$name.csv"
    "$VENV/bin/python" - "$RESULTS/$name.csv" "$patch" "$elapsed" \
        "$added" "${filters[@]}" >> "$RESULTS/summary.txt" <<'EOF' \
        || die "$patch: see above"
import collections
import csv
import sys

path, patch, elapsed, added = sys.argv[1:5]
modules = [f.replace('\\', '').rstrip('.') for f in sys.argv[5:]]
with open(path) as f:
    rows = list(csv.DictReader(f))
counts = collections.Counter(row['status'] for row in rows)
passed = {row['test'].split('[')[0].rsplit('.', 1)[-1] for row in rows
          if row['status'] == 'success'}
missing = [name for name in added.split() if name not in passed]
ran = len(rows)
if ran == 0 or counts['fail'] or missing:
    sys.exit('%s: %d tests ran, %d failed; new or changed tests that did '
             'not pass: %s' % (patch, ran, counts['fail'],
                               ', '.join(missing) or 'none'))
print('%s: ran %d, passed %d, skipped %d, failed %d in %s s '
      '(%d new or changed tests, all passed); modules: %s'
      % (patch, ran, counts['success'], counts['skip'], counts['fail'],
         elapsed, len(added.split()), ', '.join(modules)))
EOF
    tail -1 "$RESULTS/summary.txt"
}

main() {
    command -v git > /dev/null || die "git is required"
    [ -f "$SERIES_DIR/series" ] || die "$SERIES_DIR/series is missing"
    mkdir -p "$CACHE" "$RESULTS"
    : > "$RESULTS/summary.txt"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/nova-series.XXXXXX")
    if [ "${BDM_GUARD_NOVA_KEEP:-0}" = 1 ]; then
        trap 'echo "Patched nova tree kept in $WORK"' EXIT
    else
        trap 'rm -rf "$WORK"' EXIT
    fi
    unset PYTHONPATH
    export LANGUAGE=en_US LC_ALL=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
        OS_STDOUT_CAPTURE=1 OS_STDERR_CAPTURE=1 OS_TEST_TIMEOUT=160 \
        OS_NOVA_DISABLE_EVENTLET_PATCHING=False

    fetch_sdist
    unpack
    make_venv

    local patch count=0
    while read -r patch; do
        case "$patch" in ''|'#'*) continue ;; esac
        count=$((count + 1))
        step "Applying $patch"
        git -c user.name=nova-series-test \
                -c user.email=nova-series-test@localhost \
                am --quiet "$SERIES_DIR/$patch" \
            || { git am --abort || true; die "$patch does not apply"; }
        check_patch "$patch"
    done < "$SERIES_DIR/series"
    [ $count -gt 0 ] || die "$SERIES_DIR/series lists no patch"

    step "All $count patches applied and passed nova's tests:"
    cat "$RESULTS/summary.txt"
}

main "$@"
