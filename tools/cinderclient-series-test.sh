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

# Apply patches/python-cinderclient to the python-cinderclient sdist pinned
# by this repository's upper-constraints.txt one patch at a time, and after
# each patch run python-cinderclient's own checks: the commit message rules
# (subject <= 72, a *-Bug or *Implements trailer, Change-Id last, no
# Signed-off-by: the proposer adds theirs with `git commit -s`, body lines
# <= 72); its pep8 env's flake8 with hacking 7.0 and flake8-import-order on
# the whole tree; reno lint on the release notes the patch adds; and all of
# its unit tests (cinderclient.tests.unit, under a second). For a patch
# that changes library code and its tests, the changed tests are run again
# with the library code of the parent commit and must fail there, so the
# tests are shown to test the change. Then, with the whole series applied,
# bdm-guard's tests of the creator's cinder-side key run against the patched
# cinderclient (tests.unit.create.test_cinder_key; they skip without it).
# Prints one summary line per patch and stops at the first failure.
#
# Usage: tools/cinderclient-series-test.sh    (tox -e cinderclient runs this)
#
# Environment:
#   BDM_GUARD_CC_CACHE     sdist and virtualenv cache (default .tox/cc-cache)
#   BDM_GUARD_CC_PYTHON    interpreter for the virtualenv (default python3)
#   BDM_GUARD_CC_KEEP=1    keep the patched tree (path printed at exit)
#   BDM_GUARD_PYTHON       interpreter with bdm-guard and its test
#                          requirements for the last step (tox sets it to the
#                          env's); unset: that step is skipped, and said so
#
# The virtualenv holds cinderclient's requirements and test requirements and
# reno, pinned by patches/python-cinderclient/test-constraints.txt (a freeze
# of a venv built from upper-constraints.txt, with cinderclient's own
# hacking>=7.0.0,<7.1.0, which upper-constraints does not pin).

set -euo pipefail

# tox's env for bdm-guard sets these; cinderclient's runs take its own
# .stestr.conf and only its virtualenv (the library step sets both again).
unset OS_TEST_PATH PYTHONPATH

CC_VERSION=9.10.0
CC_SHA256=fb856e6f4382a4c84d82f00415e3c66514b73e12d94679935182ba4f86510916

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERIES_DIR=$REPO/patches/python-cinderclient
CONSTRAINTS=$SERIES_DIR/test-constraints.txt
CACHE=${BDM_GUARD_CC_CACHE:-$REPO/.tox/cc-cache}
PYTHON=${BDM_GUARD_CC_PYTHON:-python3}
LIBRARY_TESTS=tests.unit.create.test_cinder_key

die() {
    echo "cinderclient-series-test: FAILED: $*" >&2
    exit 1
}

step() {
    echo "==> $*"
}

fetch_sdist() {
    local sdist=$CACHE/sdist/python_cinderclient-$CC_VERSION.tar.gz
    if [ ! -f "$sdist" ] || \
            ! echo "$CC_SHA256  $sdist" | sha256sum --check --status; then
        step "Downloading the python-cinderclient $CC_VERSION sdist from PyPI"
        rm -rf "$CACHE/sdist"
        mkdir -p "$CACHE/sdist"
        "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
            "python-cinderclient==$CC_VERSION" -d "$CACHE/sdist" \
            || die "could not download python-cinderclient==$CC_VERSION"
        echo "$CC_SHA256  $sdist" | sha256sum --check --status \
            || die "$sdist does not have sha256 $CC_SHA256"
    fi
    SDIST=$sdist
}

unpack() {
    step "Unpacking python-cinderclient $CC_VERSION into a git repository"
    tar --no-same-owner -xzf "$SDIST" -C "$WORK"
    CC=$WORK/python_cinderclient-$CC_VERSION
    cd "$CC"
    git init --quiet
    printf '.stestr/\n__pycache__/\n*.pyc\n*.egg-info/\n' >> .git/info/exclude
    git add --all
    git -c user.name=cc-series-test -c user.email=cc-series-test@localhost \
        commit --quiet --message "python-cinderclient $CC_VERSION sdist"
}

make_venv() {
    local key
    key=$(cat "$CC/requirements.txt" "$CC/test-requirements.txt" \
              "$CONSTRAINTS" | { cat; "$PYTHON" --version; } \
          | sha256sum | cut -c1-12)
    VENV=$CACHE/venv-$key
    if [ ! -f "$VENV/.complete" ]; then
        step "Creating the test virtualenv $VENV (about a minute, once)"
        rm -rf "$CACHE"/venv-*
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet -c "$CONSTRAINTS" \
            -r "$CC/requirements.txt" -r "$CC/test-requirements.txt" reno \
            || die "could not install cinderclient's requirements"
        touch "$VENV/.complete"
    fi
}

check_message() {
    local msg subject
    msg=$(git log -1 --format=%B)
    subject=$(git log -1 --format=%s)
    [ "${#subject}" -le 72 ] \
        || die "$PATCH: subject is ${#subject} characters (max 72)"
    echo "$msg" | grep -qE \
        '^((Closes|Partial|Related)-Bug: #(TBD-)?[0-9]+|(Partial-)?Implements: blueprint [a-z0-9-]+)$' \
        || die "$PATCH: no *-Bug or Implements trailer"
    echo "$msg" | grep -v '^$' | tail -1 | grep -qE '^Change-Id: I[0-9a-f]{40}$' \
        || die "$PATCH: the last line is not a Change-Id"
    if echo "$msg" | grep -qi '^Signed-off-by:'; then
        die "$PATCH: carries a Signed-off-by; the proposer adds their own"
    fi
    if echo "$msg" | awk 'NR > 2' | grep -qE '^.{73,}$'; then
        die "$PATCH: the body has lines over 72 characters"
    fi
}

# reno lint on the notes alone: the sdist is one commit, in which reno
# finds notes of the same UID (bug-1608166-ad91a7a9f50e658a.yaml and
# bug-1675973-ad91a7a9f50e658a.yaml) and stops before it reads the others.
run_reno() {
    local scratch=$WORK/reno-${PATCH%.patch}
    mkdir -p "$scratch/releasenotes/notes"
    cp "$@" "$scratch/releasenotes/notes/"
    (cd "$scratch" && git init --quiet && git add --all &&
     git -c user.name=cc-series-test -c user.email=cc-series-test@localhost \
         commit --quiet --message notes &&
     "$VENV/bin/reno" lint) > "$WORK/reno.log" 2>&1 \
        || { cat "$WORK/reno.log" >&2; die "$PATCH: reno lint"; }
}

# shellcheck source=tools/series-lib.sh
. "$REPO/tools/series-lib.sh"

# The patch's changed tests must fail with the parent's library code.
check_tests_need_fix() {
    local modules=$1
    shift
    local log=$WORK/${PATCH%.patch}-without-change.log
    git checkout --quiet HEAD~1 -- "$@"
    if "$VENV/bin/stestr" run --concurrency 2 $modules > "$log" 2>&1; then
        git checkout --quiet HEAD -- "$@"
        die "$PATCH: its tests pass without its library change ($log)"
    fi
    # A test that ends in SystemExit (argparse refusing an option the
    # parent's shell lacks) ends its stestr worker too, so only the failures
    # stestr reports are counted, not the tests that did not run.
    local failed
    failed=$(grep -E '^ - Failed: ' "$log" | awk '{print $3}')
    git checkout --quiet HEAD -- "$@"
    echo "without the change: its tests fail (${failed:-?} failures reported)"
}

# bdm-guard's creator tests of the cinder-side key, on the patched client.
run_library_tests() {
    if [ -z "${BDM_GUARD_PYTHON:-}" ]; then
        echo "library: skipped (BDM_GUARD_PYTHON not set)"
        return 0
    fi
    # testtools.run, not stestr: stestr's discovery imports every test
    # module, and the lab's need the db and nova extras this env lacks.
    local log=$WORK/library.log
    (cd "$REPO" && PYTHONPATH=$CC:$REPO:$REPO/lab \
        BDM_GUARD_REQUIRE_CINDER_KEY=1 \
        "$BDM_GUARD_PYTHON" -m testtools.run "$LIBRARY_TESTS") > "$log" 2>&1 \
        || { tail -40 "$log" >&2; die "bdm-guard's $LIBRARY_TESTS failed"; }
    local ran
    ran=$(grep -E '^Ran [0-9]+ tests' "$log" | awk '{print $2}')
    echo "library: $LIBRARY_TESTS on the patched client, $ran ran, OK"
}

main() {
    [ -f "$SERIES_DIR/series" ] || die "no $SERIES_DIR/series"
    mkdir -p "$CACHE"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/cc-series.XXXXXX")
    if [ "${BDM_GUARD_CC_KEEP:-0}" = 1 ]; then
        trap 'echo "patched tree kept in $WORK"' EXIT
    else
        trap 'rm -rf "$WORK"' EXIT
    fi
    fetch_sdist
    unpack
    make_venv
    "$VENV/bin/pip" install --quiet --no-deps -e "$CC" \
        || die "could not install the unpacked python-cinderclient"
    local summary=()
    while read -r PATCH; do
        case "$PATCH" in ''|'#'*) continue ;; esac
        step "Applying $PATCH"
        git -c user.name=cc-series-test \
            -c user.email=cc-series-test@localhost \
            am --quiet --keep-cr "$SERIES_DIR/$PATCH" \
            || die "$PATCH does not apply"
        check_message
        local files lib=() tests=() notes=() f
        mapfile -t files < <(git diff --name-only --diff-filter=AM HEAD~1)
        for f in "${files[@]}"; do
            case "$f" in
                cinderclient/tests/unit/*test_*.py)
                    f=${f%.py}
                    tests+=("${f//\//.}") ;;
                cinderclient/tests/*) ;;
                cinderclient/*.py) lib+=("$f") ;;
                releasenotes/notes/*.yaml) notes+=("$f") ;;
            esac
        done
        "$VENV/bin/flake8" || die "$PATCH: flake8/hacking"
        local line="$PATCH: message ok, flake8 ok"
        if [ "${#notes[@]}" -gt 0 ]; then
            run_reno "${notes[@]}"
            line+=", reno ok"
        fi
        line+=", $(run_units cinderclient.tests.unit)"
        if [ "${#lib[@]}" -gt 0 ] && [ "${#tests[@]}" -gt 0 ]; then
            line+=", $(check_tests_need_fix "${tests[*]}" "${lib[@]}")"
        fi
        echo "$line"
        summary+=("$line")
    done < "$SERIES_DIR/series"
    summary+=("$(run_library_tests)")
    step "Summary"
    printf '%s\n' "${summary[@]}"
}

main "$@"
