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
# each patch run nova's own checks: nova's flake8 (hacking and nova's local
# checks) on the changed Python files; the config generator, whose sample for
# the nova.conf namespace must list exactly the options nova registers, in
# the same groups; a YAML and reno lint of the release notes; nova's unit
# tests for the touched modules; and nova's functional boot-from-volume tests
# (test_boot_from_volume.py, the regressions that create BDM volumes, and the
# regression tests the series adds). Prints one summary line per patch and
# stops at the first failure. At the end, tools/nova-waiter-conformance.py
# replays tests/unit/data/waiter-cases.yaml against the patched nova. Each
# commit message is checked too: subject <= 72, a Closes-Bug/Related-Bug
# trailer, Change-Id last, and no Signed-off-by (the proposer adds theirs).
#
# Usage: tools/nova-series-test.sh            (tox -e nova runs this)
#
# Environment:
#   BDM_GUARD_NOVA_SERIES   the series to test (a directory with a `series`
#                           file; default patches/nova; tox -e nova-route-b
#                           sets patches/nova/route-b)
#   BDM_GUARD_NOVA_BASE     a series applied first, untested (its own env
#                           tests it); route B sets patches/nova
#   BDM_GUARD_NOVA_CACHE    sdist and virtualenv cache (default .tox/nova-cache)
#   BDM_GUARD_NOVA_RESULTS  per-patch results (default <cache>/results)
#   BDM_GUARD_NOVA_PYTHON   interpreter for the virtualenv (default python3)
#   BDM_GUARD_NOVA_KEEP=1   keep the patched nova tree (path printed at exit)
#
# The virtualenv holds nova's requirements and test requirements from the
# pristine sdist, openstack-placement (nova's functional tests need it), reno
# and python-memcached (test discovery needs it), pinned by
# patches/nova/test-constraints.txt since nova's constraints URL is not
# reachable. The series does not depend on bdm-guard, so it is not
# installed. The virtualenv is rebuilt only when one of those files changes.

set -euo pipefail

NOVA_VERSION=34.0.0
NOVA_SHA256=919eef77cda4ce0cc4746a5853b5d9341ebd0ae37bc8b1939eb77d17727c00df

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERIES_DIR=${BDM_GUARD_NOVA_SERIES:-$REPO/patches/nova}
BASE_DIR=${BDM_GUARD_NOVA_BASE:-}
CONSTRAINTS=$REPO/patches/nova/test-constraints.txt
CACHE=${BDM_GUARD_NOVA_CACHE:-$REPO/.tox/nova-cache}
RESULTS=${BDM_GUARD_NOVA_RESULTS:-$CACHE/results}
PYTHON=${BDM_GUARD_NOVA_PYTHON:-python3}
EXTRA_PACKAGES=(python-memcached reno 'openstack-placement>=9.0.0.0b1')

die() {
    echo "nova-series-test: FAILED: $*" >&2
    exit 1
}

step() {
    echo "==> $*"
}

# Unit test id regexes for the nova files a patch touches.
tests_for_file() {
    case "$1" in
        # The classes that cover the BDM volume create and wait; the whole
        # of test_compute and test_compute_mgr would take minutes per patch.
        nova/compute/manager.py)
            echo 'nova\.tests\.unit\.compute\.test_compute\.ComputeVolumeTestCase\.'
            # ComputeManagerBuildInstanceTestCase alone is ~600 tests and
            # most of the series' time: only its BDM and volume tests.
            echo 'nova\.tests\.unit\.compute\.test_compute_mgr\.ComputeManagerBuildInstanceTestCase\.test_[a-z_]*(block_device|bdm|volume)' ;;
        nova/virt/block_device.py)
            echo 'nova\.tests\.unit\.virt\.test_block_device\.'
            echo 'nova\.tests\.unit\.compute\.test_compute\.ComputeVolumeTestCase\.' ;;
        nova/volume/cinder.py)
            echo 'nova\.tests\.unit\.volume\.test_cinder\.'
            echo 'nova\.tests\.unit\.test_cinder\.' ;;
        nova/exception.py)
            echo 'nova\.tests\.unit\.test_exception\.' ;;
        nova/api/openstack/compute/server_external_events.py|\
        nova/api/openstack/compute/schemas/server_external_events.py)
            echo 'nova\.tests\.unit\.api\.openstack\.compute\.test_server_external_events\.' ;;
        # A new object version must come with its hash.
        nova/objects/*.py)
            echo 'nova\.tests\.unit\.objects\.test_objects\.'
            local module=${1#nova/objects/}
            echo "nova\\.tests\\.unit\\.objects\\.test_${module%.py}\\." ;;
        nova/api/openstack/api_version_request.py)
            echo 'nova\.tests\.unit\.api\.openstack\.test_api_version_request\.'
            echo 'nova\.tests\.unit\.api\.openstack\.compute\.test_versions\.' ;;
        nova/conf/*)
            echo 'nova\.tests\.unit\.conf\.'
            echo 'nova\.tests\.unit\.test_conf\.' ;;
        # test_compute is ~2000 tests; the series only changes its volume
        # test case.
        nova/tests/unit/compute/test_compute.py)
            echo 'nova\.tests\.unit\.compute\.test_compute\.ComputeVolumeTestCase\.' ;;
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
              "$CONSTRAINTS" \
          | { cat; echo "${EXTRA_PACKAGES[*]}"; "$PYTHON" --version; } \
          | sha256sum | cut -c1-12)
    VENV=$CACHE/venv-$key
    if [ ! -f "$VENV/.complete" ]; then
        step "Creating the test virtualenv $VENV (a few minutes, once)"
        rm -rf "$CACHE"/venv-*
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet -c "$CONSTRAINTS" \
            -r "$NOVA/requirements.txt" -r "$NOVA/test-requirements.txt" \
            "${EXTRA_PACKAGES[@]}" \
            || die "could not install nova's requirements into $VENV"
        touch "$VENV/.complete"
    fi
    if "$VENV/bin/python" -c 'import bdm_guard' 2> /dev/null; then
        die "bdm_guard is importable in $VENV; the series must not need it"
    fi
}

# nova's functional tests about creating and waiting for BDM volumes: the
# boot-from-volume tests and the regressions that create volumes from an
# image, a snapshot or nothing, or touch the wait.
function functional_filters {
    echo 'nova\.tests\.functional\.test_boot_from_volume\.'
    # A new microversion changes the versions documents' samples.
    if git diff --name-only HEAD~1 HEAD | grep -q '^doc/api_samples/versions/'
    then
        echo 'nova\.tests\.functional\.api_sample_tests\.test_versions\.'
    fi
    grep -l -E "'source_type': '(image|blank|snapshot)'|VolumeNotCreated|block_device_allocate|_await_block_device_map_created" \
            nova/tests/functional/regressions/test_bug_*.py \
        | sed 's/\.py$//; s#/#.#g; s/\./\\./g; s/$/\\./'
}

# run_tests LABEL TEST_PATH REGEX LOG_NAME: run stestr and print
# "LABEL passed/ran ..." for the patch summary.
run_tests() {
    local label=$1 path=$2 regex=$3 log=$RESULTS/$4
    local start elapsed
    start=$(date +%s)
    if ! "$VENV/bin/stestr" --test-path "$path" --top-dir ./ \
            run --concurrency 2 "$regex" > "$log.log" 2>&1; then
        "$VENV/bin/stestr" last --subunit | "$VENV/bin/subunit2csv" \
            | grep -v ',success,' | cut -d, -f1,2 | head -20 >&2 || true
        tail -15 "$log.log" >&2
        die "$PATCH: nova $label tests failed (log: $log.log)"
    fi
    elapsed=$(( $(date +%s) - start ))
    "$VENV/bin/stestr" last --subunit | "$VENV/bin/subunit2csv" > "$log.csv"
    "$VENV/bin/python" - "$log.csv" "$label" "$elapsed" <<'EOF' \
        || die "$PATCH: see above"
import collections
import csv
import sys

path, label, elapsed = sys.argv[1:4]
with open(path) as f:
    rows = list(csv.DictReader(f))
counts = collections.Counter(row['status'] for row in rows)
if not rows or counts['fail']:
    sys.exit('%s tests: %d ran, %d failed' % (label, len(rows),
                                               counts['fail']))
print('%s %d/%d passed (%d skipped, %s s)' % (
    label, counts['success'], len(rows), counts['skip'], elapsed))
EOF
}

check_config() {
    PYTHONPATH=. "$VENV/bin/oslo-config-generator" \
        --config-file etc/nova/nova-config-generator.conf \
        --output-file "$WORK/nova.conf.sample" \
        || die "$PATCH: the sample config cannot be generated"
    PYTHONPATH=. "$VENV/bin/oslo-config-generator" --namespace nova.conf \
        --output-file "$WORK/nova-only.conf.sample" \
        || die "$PATCH: the nova.conf sample cannot be generated"
    # The sample lists exactly nova.conf.opts.list_opts(), and each of those
    # options is registered on nova.conf.CONF in the same group.
    PYTHONPATH=. "$VENV/bin/python" - "$WORK/nova-only.conf.sample" <<'EOF'
import re
import sys

from oslo_config import generator

import nova.conf
from nova.conf import opts

sample = set()
group = None
for line in open(sys.argv[1]):
    m = re.match(r'^\[(\S+)\]$', line)
    if m:
        group = m.group(1)
        continue
    m = re.match(r'^#?([A-Za-z0-9_-]+) =( |$)', line)
    if m and group:
        sample.add((group, m.group(1).replace("-", "_")))
listed = set()
# What the generator lists for the nova.conf namespace (nova's list_opts
# plus the keystoneauth options the generator adds for auth sections).
for _ns, groups in generator._list_opts(['nova.conf']):
    for grp, options in groups:
        name = getattr(grp, 'name', grp) or 'DEFAULT'
        for opt in options:
            listed.add((name, opt.dest))
nova_listed = set()
for grp, options in opts.list_opts():
    name = getattr(grp, 'name', grp) or 'DEFAULT'
    for opt in options:
        nova_listed.add((name, opt.dest))
conf = nova.conf.CONF
# Every option nova lists is in the sample, in the group nova registers it
# in (nova registers some options only when their module is imported, so
# this compares with list_opts() rather than with nova.conf.CONF).
missing = sorted(nova_listed - sample)
missing += sorted(nova_listed - sample)
errors = []
# The generator also writes keystoneauth's session and auth plugin options
# into nova's auth sections; anything else only in the sample, or a group
# nova does not register, is an error.
groups = {g for g, _o in nova_listed}
extra = sorted((g, o) for g, o in sample - nova_listed
               if g not in groups or g == 'DEFAULT')
if extra:
    errors.append('in the sample but not registered by nova: %s' % extra)
if missing:
    errors.append('listed but not registered or not in the sample: %s'
                  % missing)
if errors:
    sys.exit('; '.join(errors))
print(len(sample))
EOF
}

check_notes() {
    "$VENV/bin/python" - "$@" <<'EOF'
import sys

import yaml

SECTIONS = {'prelude', 'features', 'issues', 'upgrade', 'deprecations',
            'critical', 'security', 'fixes', 'other'}
for path in sys.argv[1:]:
    note = yaml.safe_load(open(path))
    assert isinstance(note, dict), path
    assert set(note) <= SECTIONS, (path, set(note) - SECTIONS)
    for section, items in note.items():
        if section == 'prelude':
            assert isinstance(items, str), path
            continue
        assert isinstance(items, list) and items, (path, section)
        assert all(isinstance(i, str) and i.strip() for i in items), path
EOF
}

reno_lint() {
    local dir=$WORK/reno
    rm -rf "$dir"
    mkdir -p "$dir/releasenotes/notes"
    cp "$@" "$dir/releasenotes/notes/"
    (cd "$dir" && git init --quiet && git add --all \
        && git -c user.name=nova-series-test \
               -c user.email=nova-series-test@localhost \
               commit --quiet --message notes \
        && "$VENV/bin/reno" lint)
}

# The commit message rules of nova's contributor guide that a series can
# break on its own: subject <= 72 characters, a Closes-Bug/Related-Bug
# trailer (#TBD-<n> placeholders name the report in bugs.rst), Change-Id
# last. No Signed-off-by: the person who proposes the series signs each
# commit with `git commit -s`; none may be invented here.
check_message() {
    local msg subject
    msg=$(git log -1 --format=%B)
    subject=$(git log -1 --format=%s)
    [ "${#subject}" -le 72 ] \
        || die "$PATCH: subject is ${#subject} characters (max 72)"
    echo "$msg" | grep -qE '^((Closes|Partial|Related)-Bug: #([0-9]+|TBD-[0-9]+)|(Partial-)?Implements: blueprint [a-z0-9-]+)$' \
        || die "$PATCH: no Closes-Bug/Related-Bug or Implements trailer"
    echo "$msg" | grep -v '^$' | tail -1 \
            | grep -qE '^Change-Id: I[0-9a-f]{40}$' \
        || die "$PATCH: the last line is not a Change-Id"
    if echo "$msg" | grep -qi '^Signed-off-by:'; then
        die "$PATCH: carries a Signed-off-by; the proposer adds their own"
    fi
}

check_patch() {
    local name=${PATCH%.patch}
    local changed py=() notes=() filters=() ffilters=() conf_changed=0
    local file summary=() missing regex count
    changed=$(git diff --name-only --diff-filter=d HEAD~1 HEAD)
    for file in $changed; do
        case "$file" in
            *.py) py+=("$file") ;;
        esac
        case "$file" in
            nova/conf/*) conf_changed=1 ;;
            releasenotes/notes/*.yaml) notes+=("$file") ;;
            nova/tests/functional/*test_*.py)
                regex=${file%.py}
                regex=${regex//\//.}
                ffilters+=("${regex//./\\.}\\.") ;;
        esac
        while read -r regex; do
            [ -n "$regex" ] && filters+=("$regex")
        done < <(tests_for_file "$file")
    done
    rm -f "$RESULTS/$name"-*

    if [ ${#py[@]} -gt 0 ]; then
        step "$name: flake8 (nova's hacking checks) on ${#py[@]} files"
        "$VENV/bin/flake8" "${py[@]}" || die "$PATCH: flake8 failed"
        summary+=("flake8 ${#py[@]} files ok")
    fi
    if [ $conf_changed = 1 ]; then
        step "$name: config generator vs the options nova registers"
        count=$(check_config) \
            || die "$PATCH: the sample config does not match nova's options"
        summary+=("config sample = registered ($count nova options)")
    fi
    if [ ${#notes[@]} -gt 0 ]; then
        step "$name: linting ${#notes[@]} release notes"
        check_notes "${notes[@]}" || die "$PATCH: a release note is invalid"
        # nova 34's own notes do not pass reno lint from the one-commit
        # sdist (two notes share a UID), so lint the new notes on their own.
        reno_lint "${notes[@]}" > "$RESULTS/$name-reno.log" 2>&1 \
            || { tail -20 "$RESULTS/$name-reno.log" >&2
                 die "$PATCH: reno lint failed"; }
        summary+=("reno lint ok (${#notes[@]} new)")
    fi

    # The test methods this patch adds or changes: each must run and pass.
    ADDED=$(git diff HEAD~1 HEAD -- 'nova/tests/*' \
        | sed -n 's/^+ *def \(test_[A-Za-z0-9_]*\)(.*/\1/p' | sort -u \
        | tr '\n' ' ')

    if [ ${#filters[@]} -gt 0 ]; then
        mapfile -t filters < <(printf '%s\n' "${filters[@]}" \
                               | awk '!seen[$0]++')
        regex="^($(IFS='|'; echo "${filters[*]}"))"
        step "$name: nova unit tests matching $regex"
        summary+=("$(run_tests unit ./nova/tests/unit "$regex" \
                       "$name-unit")")
    fi

    mapfile -t ffilters < <({ functional_filters
                              printf '%s\n' "${ffilters[@]}"; } \
                            | awk 'NF && !seen[$0]++')
    regex="^($(IFS='|'; echo "${ffilters[*]}"))"
    step "$name: nova functional tests matching $regex"
    summary+=("$(run_tests functional ./nova/tests/functional "$regex" \
                   "$name-functional")")
    grep -q 'BootFromVolumeTest\.test_reboot_bfv_instance,success' \
            "$RESULTS/$name-functional.csv" \
        || die "$PATCH: BootFromVolumeTest.test_reboot_bfv_instance failed"

    missing=$("$VENV/bin/python" - "$ADDED" "$RESULTS/$name"-*.csv <<'EOF'
import csv
import sys

passed = set()
for path in sys.argv[2:]:
    with open(path) as f:
        # test ids end in [tags] and, for testscenarios, (scenario).
        passed |= {row['test'].split('[')[0].split('(')[0].rsplit('.', 1)[-1]
                   for row in csv.DictReader(f) if row['status'] == 'success'}
print(' '.join(n for n in sys.argv[1].split() if n not in passed))
EOF
    )
    [ -z "$missing" ] \
        || die "$PATCH: added or changed tests that did not pass: $missing"
    summary+=("$(echo "$ADDED" | wc -w) added/changed tests all passed")

    local line
    line="$PATCH: $(printf '%s; ' "${summary[@]}")"
    echo "${line%; }" >> "$RESULTS/summary.txt"
    echo "${line%; }"
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
        OS_STDOUT_CAPTURE=1 OS_STDERR_CAPTURE=1 OS_LOG_CAPTURE=1 \
        OS_TEST_TIMEOUT=160 OS_NOVA_DISABLE_EVENTLET_PATCHING=False

    fetch_sdist
    unpack
    make_venv

    local base=0
    if [ -n "$BASE_DIR" ]; then
        while read -r PATCH; do
            case "$PATCH" in ''|'#'*) continue ;; esac
            base=$((base + 1))
            git -c user.name=nova-series-test \
                    -c user.email=nova-series-test@localhost \
                    am --quiet "$BASE_DIR/$PATCH" \
                || { git am --abort || true
                     die "base series: $PATCH does not apply"; }
        done < "$BASE_DIR/series"
        step "Applied the $base patches of $BASE_DIR (tested on their own)"
    fi

    local count=0 start=$SECONDS
    while read -r PATCH; do
        case "$PATCH" in ''|'#'*) continue ;; esac
        count=$((count + 1))
        step "Applying $PATCH"
        git -c user.name=nova-series-test \
                -c user.email=nova-series-test@localhost \
                am --quiet "$SERIES_DIR/$PATCH" \
            || { git am --abort || true; die "$PATCH does not apply"; }
        check_message
        check_patch
    done < "$SERIES_DIR/series"
    [ $count -gt 0 ] || die "$SERIES_DIR/series lists no patch"
    if grep -rqE --include='*.py' '^\s*(import|from) bdm_guard' nova; then
        die "the patched nova imports bdm_guard"
    fi
    git diff --quiet HEAD~$((count + base)) HEAD -- requirements.txt \
        || die "the series changes nova's requirements.txt"

    step "Replaying the waiter cases against the patched nova"
    PYTHONPATH=. "$VENV/bin/python" "$REPO/tools/nova-waiter-conformance.py" \
            "$REPO/tests/unit/data/waiter-cases.yaml" \
            > "$RESULTS/conformance.txt" \
        || { cat "$RESULTS/conformance.txt"
             die "the waiter conformance replay failed"; }
    cat "$RESULTS/conformance.txt"

    step "All $count patches applied and passed nova's tests" \
        "($((SECONDS - start)) s after the virtualenv):"
    cat "$RESULTS/summary.txt"
}

main "$@"
