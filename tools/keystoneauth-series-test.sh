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

# Apply patches/keystoneauth to the keystoneauth1 sdist pinned by the master
# upper-constraints one patch at a time, and after each patch run
# keystoneauth's own checks on what it touched: the commit message rules
# (subject <= 72, a Related-Bug or Closes-Bug, Change-Id last, no
# Signed-off-by: the proposer adds theirs with `git commit -s`); the linters
# of keystoneauth's pre-commit config (hacking 8.1.0 with
# flake8-import-order, ruff check, ruff format --check) and mypy on the
# changed Python files; reno lint when a release note is added; and
# keystoneauth's unit tests for the touched modules. For a patch that
# changes library code and its tests, the changed tests are run again with
# the library code of the parent commit and must fail there, so a fix's
# tests are shown to test the fix. Prints one summary line per patch and
# stops at the first failure.
#
# Usage: tools/keystoneauth-series-test.sh     (tox -e keystoneauth runs this)
#
# Environment:
#   BDM_GUARD_KSA_CACHE    sdist and virtualenv cache (default .tox/ksa-cache)
#   BDM_GUARD_KSA_PYTHON   interpreter for the virtualenv (default python3)
#   BDM_GUARD_KSA_KEEP=1   keep the patched tree (path printed at exit)
#
# The virtualenv holds keystoneauth's requirements and test requirements
# (without requests-kerberos, which needs the krb5 headers; its tests are
# skipped), the linters and reno, pinned by
# patches/keystoneauth/test-constraints.txt. pre-commit itself is not run:
# it fetches its hooks from git hosts that are not reachable here.

set -euo pipefail

KSA_VERSION=5.18.1
KSA_SHA256=8970f9d103f335c39151366d70c001d1bb99b00d73845f03d47825e8dc35ff78

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERIES_DIR=$REPO/patches/keystoneauth
CONSTRAINTS=$SERIES_DIR/test-constraints.txt
CACHE=${BDM_GUARD_KSA_CACHE:-$REPO/.tox/ksa-cache}
PYTHON=${BDM_GUARD_KSA_PYTHON:-python3}
PACKAGES=(fixtures oslo.config oslo.utils oslotest betamax requests-mock
          stestr testresources testtools PyYAML lxml oauthlib
          hacking flake8-import-order ruff mypy types-requests types-PyYAML
          types-simplejson types-lxml reno)

die() {
    echo "keystoneauth-series-test: FAILED: $*" >&2
    exit 1
}

step() {
    echo "==> $*"
}

fetch_sdist() {
    local sdist=$CACHE/sdist/keystoneauth1-$KSA_VERSION.tar.gz
    if [ ! -f "$sdist" ] || \
            ! echo "$KSA_SHA256  $sdist" | sha256sum --check --status; then
        step "Downloading the keystoneauth1 $KSA_VERSION sdist from PyPI"
        rm -rf "$CACHE/sdist"
        mkdir -p "$CACHE/sdist"
        "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
            "keystoneauth1==$KSA_VERSION" -d "$CACHE/sdist" \
            || die "could not download keystoneauth1==$KSA_VERSION"
        echo "$KSA_SHA256  $sdist" | sha256sum --check --status \
            || die "$sdist does not have sha256 $KSA_SHA256"
    fi
    SDIST=$sdist
}

unpack() {
    step "Unpacking keystoneauth1 $KSA_VERSION into a git repository"
    tar --no-same-owner -xzf "$SDIST" -C "$WORK"
    KSA=$WORK/keystoneauth1-$KSA_VERSION
    cd "$KSA"
    git init --quiet
    printf '.stestr/\n__pycache__/\n*.pyc\n.mypy_cache/\n' >> .git/info/exclude
    git add --all
    git -c user.name=ksa-series-test -c user.email=ksa-series-test@localhost \
        commit --quiet --message "keystoneauth1 $KSA_VERSION sdist"
}

make_venv() {
    local key
    key=$(cat "$KSA/requirements.txt" "$CONSTRAINTS" \
          | { cat; echo "${PACKAGES[*]}"; "$PYTHON" --version; } \
          | sha256sum | cut -c1-12)
    VENV=$CACHE/venv-$key
    if [ ! -f "$VENV/.complete" ]; then
        step "Creating the test virtualenv $VENV (about a minute, once)"
        rm -rf "$CACHE"/venv-*
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet -c "$CONSTRAINTS" \
            -r "$KSA/requirements.txt" "${PACKAGES[@]}" \
            || die "could not install keystoneauth's requirements"
        touch "$VENV/.complete"
    fi
}

# Unit test modules for a file the patch touches.
tests_for_file() {
    case "$1" in
        keystoneauth1/tests/unit/*test_*.py)
            local module=${1%.py}
            echo "${module//\//.}" ;;
        keystoneauth1/*.py)
            local name
            name=$(basename "${1%.py}")
            local dir
            dir=$(dirname "$1")
            dir=${dir#keystoneauth1}
            local candidate=keystoneauth1/tests/unit${dir}/test_${name}.py
            [ -f "$candidate" ] && echo "${candidate%.py}" | tr / . ;;
    esac
}

check_message() {
    local msg subject
    msg=$(git log -1 --format=%B)
    subject=$(git log -1 --format=%s)
    [ "${#subject}" -le 72 ] \
        || die "$PATCH: subject is ${#subject} characters (max 72)"
    echo "$msg" | grep -qE '^(Closes|Partial|Related)-Bug: #[0-9]+$' \
        || die "$PATCH: no Closes-Bug/Related-Bug trailer"
    echo "$msg" | grep -v '^$' | tail -1 | grep -qE '^Change-Id: I[0-9a-f]{40}$' \
        || die "$PATCH: the last line is not a Change-Id"
    if echo "$msg" | grep -qi '^Signed-off-by:'; then
        die "$PATCH: carries a Signed-off-by; the proposer adds their own"
    fi
    if echo "$msg" | awk 'NR > 2' | grep -qE '^.{73,}$'; then
        die "$PATCH: the body has lines over 72 characters"
    fi
}

run_lint() {
    local py=("$@")
    [ "${#py[@]}" -gt 0 ] || return 0
    "$VENV/bin/flake8" "${py[@]}" || die "$PATCH: flake8/hacking"
    "$VENV/bin/ruff" check "${py[@]}" || die "$PATCH: ruff check"
    "$VENV/bin/ruff" format --check "${py[@]}" || die "$PATCH: ruff format"
    local lib=()
    local f
    for f in "${py[@]}"; do
        case "$f" in
            keystoneauth1/tests/*) ;;
            *) lib+=("$f") ;;
        esac
    done
    if [ "${#lib[@]}" -gt 0 ]; then
        "$VENV/bin/mypy" --cache-dir "$WORK/mypy_cache" "${lib[@]}" \
            > "$WORK/mypy.log" 2>&1 \
            || { cat "$WORK/mypy.log" >&2; die "$PATCH: mypy"; }
    fi
}

# shellcheck source=tools/series-lib.sh
. "$REPO/tools/series-lib.sh"

# The patch's changed tests must fail with the parent's library code.
check_tests_need_fix() {
    local modules=$1
    shift
    local log=$WORK/${PATCH%.patch}-without-fix.log
    git checkout --quiet HEAD~1 -- "$@"
    if "$VENV/bin/stestr" run --concurrency 2 $modules > "$log" 2>&1; then
        git checkout --quiet HEAD -- "$@"
        die "$PATCH: its tests pass without its library change ($log)"
    fi
    local failed
    failed=$("$VENV/bin/stestr" last --subunit | "$VENV/bin/subunit2csv" \
             | grep -c ',failure,' || true)
    git checkout --quiet HEAD -- "$@"
    echo "without the fix: $failed of its tests fail"
}

main() {
    [ -f "$SERIES_DIR/series" ] || die "no $SERIES_DIR/series"
    mkdir -p "$CACHE"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/ksa-series.XXXXXX")
    if [ "${BDM_GUARD_KSA_KEEP:-0}" = 1 ]; then
        trap 'echo "patched tree kept in $WORK"' EXIT
    else
        trap 'rm -rf "$WORK"' EXIT
    fi
    fetch_sdist
    unpack
    make_venv
    "$VENV/bin/pip" install --quiet --no-deps -e "$KSA" \
        || die "could not install the unpacked keystoneauth1"
    local summary=()
    while read -r PATCH; do
        case "$PATCH" in ''|'#'*) continue ;; esac
        step "Applying $PATCH"
        git -c user.name=ksa-series-test \
            -c user.email=ksa-series-test@localhost \
            am --quiet --keep-cr "$SERIES_DIR/$PATCH" \
            || die "$PATCH does not apply"
        check_message
        local files py=() lib=() tests=() notes=() f t
        mapfile -t files < <(git diff --name-only --diff-filter=AM HEAD~1)
        for f in "${files[@]}"; do
            case "$f" in
                *.py) py+=("$f")
                      case "$f" in
                          keystoneauth1/tests/*) ;;
                          *) lib+=("$f") ;;
                      esac
                      while read -r t; do
                          [ -n "$t" ] && tests+=("$t")
                      done < <(tests_for_file "$f") ;;
                releasenotes/notes/*.yaml) notes+=("$f") ;;
            esac
        done
        run_lint "${py[@]}"
        if [ "${#notes[@]}" -gt 0 ]; then
            "$VENV/bin/reno" lint > "$WORK/reno.log" 2>&1 \
                || { cat "$WORK/reno.log" >&2; die "$PATCH: reno lint"; }
        fi
        local line="$PATCH: message ok, lint ok"
        [ "${#notes[@]}" -eq 0 ] || line+=", reno ok"
        if [ "${#tests[@]}" -gt 0 ]; then
            mapfile -t tests < <(printf '%s\n' "${tests[@]}" | sort -u)
            line+=", $(run_units "${tests[@]}")"
            if [ "${#lib[@]}" -gt 0 ]; then
                line+=", $(check_tests_need_fix "${tests[*]}" "${lib[@]}")"
            fi
        fi
        echo "$line"
        summary+=("$line")
    done < "$SERIES_DIR/series"
    step "Summary"
    printf '%s\n' "${summary[@]}"
}

main "$@"
