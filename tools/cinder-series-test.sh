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

# Apply patches/cinder/*.patch one by one to the cinder 29.0.0 sdist and,
# after each patch, run what cinder's gate would run on it:
#
# - the commit message rules of cinder's contributor guide a series can
#   break on its own: subject and body lines <= 72 characters, a
#   Closes-Bug/Related-Bug trailer (#TBD-<n> names report <n> of bugs.rst)
#   or an Implements: blueprint one, Change-Id last, and no Signed-off-by
#   (the person who proposes the series signs with `git commit -s`);
# - whitespace (`git diff --check`, as cinder's pre-commit hooks);
# - flake8 with hacking, flake8-import-order and cinder's local checks
#   (cinder/tests/hacking, e.g. C311), as cinder's tox.ini [flake8] sets them,
#   on the Python files the patch changes (not doc/, releasenotes/, tools/,
#   as in cinder's pre-commit config);
# - YAML on the changed *.yaml, and `reno lint` on the release notes the
#   patch adds (in a scratch repository: the sdist is one commit, and reno
#   rejects cinder's own history squashed into one);
# - doc8 on the changed doc/ files (cinder's [doc8] settings);
# - check_uptodate: regenerate cinder/opts.py with cinder's
#   tools/config/generate_cinder_opts.py and require no difference;
# - cinder's unit tests for the modules the patch touches: the test modules
#   it changes, test_<name> for each changed cinder/**/<name>.py (looked up
#   from cinder/tests/unit/<package>/ up to cinder/tests/unit/), and the
#   EXTRA_TESTS below. A test fails the patch unless it also fails on the
#   unpatched base in the same environment. The base is run only where a
#   patch has failures: their modules run again on a second copy of the
#   sdist, and the tests failing there too are listed at the end. (Running
#   every module of the series on the base first cost as much as a patch,
#   for tests that pass.)
# - cinder's functional tests (cinder/tests/functional, real API, WSGI,
#   scheduler and volume services in process) for the functional test
#   modules the patch changes and the EXTRA_TESTS of its files, the same way.
#
# Usage: tools/cinder-series-test.sh [path/to/cinder-29.0.0.tar.gz]
# Environment: PYTHON (default python3) with cinder and its test and lint
# requirements; CINDER_VERSION (29.0.0); CINDER_SERIES_CONCURRENCY (test
# processes, default 2); CINDER_SERIES_DIR (default patches/cinder);
# KEEP_WORKDIR=1 keeps the temporary repository.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATCH_DIR=${CINDER_SERIES_DIR:-$ROOT/patches/cinder}
PYTHON=${PYTHON:-python3}
CINDER_VERSION=${CINDER_VERSION:-29.0.0}
CONCURRENCY=${CINDER_SERIES_CONCURRENCY:-2}
WORK=$(mktemp -d -t cinder-series.XXXXXX)
if [ "${KEEP_WORKDIR:-0}" != 1 ]; then
    trap 'rm -rf "$WORK"' EXIT
else
    echo "Work directory: $WORK"
fi
BIN=$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")

# Source files whose tests are not named after them: "file: test modules".
EXTRA_TESTS="
cinder/volume/flows/manager/create_volume.py: cinder.tests.unit.volume.flows.test_create_volume_flow cinder.tests.unit.volume.test_volume
cinder/volume/flows/api/create_volume.py: cinder.tests.unit.volume.flows.test_create_volume_flow
cinder/volume/manager.py: cinder.tests.unit.volume.test_volume cinder.tests.unit.volume.test_volume_manager
cinder/volume/api.py: cinder.tests.unit.volume.test_volume
cinder/db/api.py: cinder.tests.unit.test_db_api
cinder/db/models.py: cinder.tests.unit.db.test_migrations cinder.tests.unit.objects.test_objects
cinder/objects/volume.py: cinder.tests.unit.objects.test_objects
cinder/objects/base.py: cinder.tests.unit.objects.test_objects
cinder/api/openstack/api_version_request.py: cinder.tests.unit.api.test_versions cinder.tests.functional.api_sample_tests.test_versions
cinder/api/v3/volumes.py: cinder.tests.functional.test_volumes
"

# As cinder's tox.ini [testenv].
export OS_STDOUT_CAPTURE=1 OS_STDERR_CAPTURE=1 OS_TEST_TIMEOUT=60
export OS_CINDER_DISABLE_EVENTLET_PATCHING=False PYTHONDONTWRITEBYTECODE=1

SDIST=${1:-}
if [ -z "$SDIST" ]; then
    "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
        "cinder==$CINDER_VERSION" -d "$WORK/sdist" 2>/dev/null
    SDIST=$(ls "$WORK"/sdist/cinder-*.tar.gz)
fi

REPO=$WORK/cinder-$CINDER_VERSION
BASE_REPO=$WORK/base-tree/cinder-$CINDER_VERSION
tar --no-same-owner -xzf "$SDIST" -C "$WORK"
cd "$REPO"
export PYTHONPATH=$REPO
git init -q
git config user.name "cinder series test"
git config user.email "series-test@example.invalid"
git add -A
git commit -q -m "Import cinder $CINDER_VERSION sdist"

# Files a patch file changes (new names; deleted files left out).
patch_files() {
    sed -n 's|^+++ b/||p' "$1" | sort -u
}

# The cinder test modules for a list of changed files (stdin), one a line.
test_modules() {
    local file dir name extra
    while read -r file; do
        case $file in
            cinder/tests/unit/*/test_*.py|cinder/tests/unit/test_*.py)
                echo "${file%.py}" | tr / . ;;
            cinder/tests/functional/test_*.py|cinder/tests/functional/*/test_*.py)
                echo "${file%.py}" | tr / . ;;
            cinder/tests/*) ;;
            cinder/db/migrations/versions/*.py)
                echo cinder.tests.unit.db.test_migrations ;;
            # The API reference's samples are what the api-sample tests check.
            api-ref/source/v3/samples/versions/*)
                echo cinder.tests.functional.api_sample_tests.test_versions ;;
            api-ref/source/v3/samples/volumes/*)
                echo cinder.tests.functional.api_sample_tests.test_volumes ;;
            cinder/*.py)
                extra=$(echo "$EXTRA_TESTS" | sed -n "s|^$file: ||p")
                for module in $extra; do echo "$module"; done
                name=$(basename "$file")
                dir=$(dirname "${file#cinder/}")
                while :; do
                    if [ "$dir" = . ]; then
                        candidate=cinder/tests/unit/test_$name
                    else
                        candidate=cinder/tests/unit/$dir/test_$name
                    fi
                    if [ -f "$candidate" ] || grep -qx "$candidate" \
                            "$WORK/all-files"; then
                        echo "${candidate%.py}" | tr / .
                        break
                    fi
                    [ "$dir" = . ] && break
                    dir=$(dirname "$dir")
                done ;;
        esac
    done | sort -u
}

# Run the modules of $2.. that exist, each in its own process (cinder's
# tests are not all isolated from the modules run before them in one
# process), $CONCURRENCY at a time, largest first; write the failing test
# ids to $1, "run failed skipped" to $1.counts and the traces to $1.traces.
run_tests() {
    local out=$1 modules="" module i=0 crashed=0
    shift
    for module in "$@"; do
        if [ -f "${module//.//}.py" ]; then
            modules="$modules $(wc -c <"${module//.//}.py") $module"
        fi
    done
    : >"$out"
    : >"$out.traces"
    echo "0 0 0" >"$out.counts"
    [ -z "$modules" ] && return 0
    for module in $(printf '%s %s\n' $modules | sort -rn | cut -d' ' -f2); do
        i=$((i + 1))
        while [ "$(jobs -rp | wc -l)" -ge "$CONCURRENCY" ]; do
            wait -n || crashed=1
        done
        "$PYTHON" - "$out.$i" "$module" 2>"$out.$i.stderr" <<'EOF' &
import sys
import traceback
import unittest

# stestr's discovery imports every cinder test module before any test
# runs, and novaclient with them: imported first under the mocks of
# test_volume's extend tests, it fails to find its translations.
import cinder.compute.nova  # noqa

out, module = sys.argv[1:]
result = unittest.TestResult()
try:
    unittest.defaultTestLoader.loadTestsFromName(module).run(result)
except Exception:
    result.errors.append((unittest.FunctionTestCase(
        lambda: None, description=module), traceback.format_exc()))
bad = {}
for test, trace in result.failures + result.errors:
    bad.setdefault(test.id(), trace)
with open(out, 'w') as stream:
    stream.writelines(name + '\n' for name in sorted(bad))
with open(out + '.counts', 'w') as stream:
    stream.write('%d %d %d\n' % (result.testsRun, len(bad),
                                 len(result.skipped)))
with open(out + '.traces', 'w') as stream:
    for name in sorted(bad):
        stream.write('=== %s\n%s\n' % (name, bad[name]))
EOF
    done
    while [ "$(jobs -rp | wc -l)" -gt 0 ]; do
        wait -n || crashed=1
    done
    : >"$out.all-counts"
    for i in $(seq 1 "$i"); do
        if [ ! -f "$out.$i.counts" ]; then
            crashed=1
            continue
        fi
        cat "$out.$i" >>"$out"
        cat "$out.$i.counts" >>"$out.all-counts"
        cat "$out.$i.traces" >>"$out.traces"
    done
    sort -u -o "$out" "$out"
    awk '{r += $1; f += $2; s += $3} END {print r + 0, f + 0, s + 0}' \
        "$out.all-counts" >"$out.counts"
    if [ $crashed = 1 ]; then
        echo "    test runner crashed:" >&2
        cat "$out".*.stderr | grep -v -i eventlet | tail -n 40 >&2
        return 1
    fi
}

# Show each test named in $1 with its traceback from the traces file $2.
show_traces() {
    local name
    while read -r name; do
        echo "    $name"
        awk -v name="=== $name" '
            $0 == name {on = 1; tb = 0; n = 0; next}
            /^=== / {on = 0}
            on && /^Traceback/ {tb = 1}
            on && tb && n++ < 25 {print "      " $0}' "$2"
    done <"$1"
}

# Print what HEAD's commit message breaks, if anything; fail if it does.
check_message() {
    local msg subject bad=0
    msg=$(git log -1 --format=%B)
    subject=$(git log -1 --format=%s)
    if [ "${#subject}" -gt 72 ]; then
        echo "subject is ${#subject} characters (max 72)"
        bad=1
    fi
    if echo "$msg" | awk 'NR > 2' | grep -qE '^.{73,}$'; then
        echo "the body has lines over 72 characters"
        bad=1
    fi
    if ! echo "$msg" | grep -qE '^((Closes|Partial|Related)-Bug: #([0-9]+|TBD-[0-9]+)|(Partial-)?Implements: blueprint [a-z0-9-]+)$'; then
        echo "no Closes-Bug/Related-Bug or Implements trailer"
        bad=1
    fi
    if ! echo "$msg" | grep -v '^$' | tail -1 \
            | grep -qE '^Change-Id: I[0-9a-f]{40}$'; then
        echo "the last line is not a Change-Id"
        bad=1
    fi
    if echo "$msg" | grep -qi '^Signed-off-by:'; then
        echo "carries a Signed-off-by; the proposer adds their own"
        bad=1
    fi
    return $bad
}

git ls-files >"$WORK/all-files"
for patch in "$PATCH_DIR"/*.patch; do
    patch_files "$patch"
done >"$WORK/series-files"
# Every module a patch of the series may test, for the base run.
test_modules <"$WORK/series-files" >"$WORK/series-modules"

echo "Base: cinder $CINDER_VERSION, $(wc -l <"$WORK/series-modules") test" \
    "modules the series touches, run on the base where a patch fails"
: >"$WORK/base"
: >"$WORK/base-checked"

# The module of each test id on stdin (the longest dotted prefix that is a
# file of the base), one a line.
id_modules() {
    local id module
    while read -r id; do
        module=$id
        while [ -n "$module" ] && [ "${module%.*}" != "$module" ]; do
            if [ -f "$BASE_REPO/${module//.//}.py" ]; then
                echo "$module"
                break
            fi
            module=${module%.*}
        done
    done | sort -u
}

# Add to $WORK/base the failures of $1 (test ids, one a line) that also
# fail on the unpatched base: their modules run on a fresh copy of the
# sdist, extracted the first time.
check_on_base() {
    local ids=$1 modules
    comm -23 "$ids" "$WORK/base-checked" >"$WORK/to-check"
    [ -s "$WORK/to-check" ] || return 0
    if [ ! -d "$BASE_REPO" ]; then
        mkdir -p "$WORK/base-tree"
        tar --no-same-owner -xzf "$SDIST" -C "$WORK/base-tree"
    fi
    modules=$(id_modules <"$WORK/to-check")
    if [ -n "$modules" ]; then
        # shellcheck disable=SC2086
        (cd "$BASE_REPO" && PYTHONPATH=$BASE_REPO \
            run_tests "$WORK/base-run" $modules) || true
        comm -12 "$WORK/to-check" "$WORK/base-run" >>"$WORK/base"
        sort -u -o "$WORK/base" "$WORK/base"
    fi
    cat "$WORK/to-check" >>"$WORK/base-checked"
    sort -u -o "$WORK/base-checked" "$WORK/base-checked"
}

status=0
patches=0
passed=0
for patch in "$PATCH_DIR"/*.patch; do
    patches=$((patches + 1))
    ok=1
    echo "Patch $(basename "$patch")"
    if ! git am -q --3way "$patch" 2>"$WORK/am.log"; then
        echo "  apply: FAILED"
        sed 's/^/    /' "$WORK/am.log"
        exit 1
    fi
    echo "  apply: ok ($(git log -1 --format=%s))"
    git diff --name-only --diff-filter=d HEAD~1 HEAD >"$WORK/changed"

    if problems=$(check_message); then
        echo "  commit message: ok"
    else
        echo "  commit message: FAILED"
        echo "$problems" | sed 's/^/    /'
        ok=0
    fi

    if lint=$(git diff --check HEAD~1 HEAD); then
        echo "  whitespace: ok"
    else
        echo "  whitespace: FAILED"
        echo "$lint" | sed 's/^/    /'
        ok=0
    fi

    py=$(grep -E '\.py$' "$WORK/changed" \
        | grep -v -E '^(doc|releasenotes|tools)/' || true)
    if [ -z "$py" ]; then
        echo "  flake8 + hacking: no Python file changed"
    elif lint=$("$PYTHON" -m flake8 $py 2>&1); then
        echo "  flake8 + hacking: ok ($(echo "$py" | wc -l) files)"
    else
        echo "  flake8 + hacking: FAILED"
        echo "$lint" | sed 's/^/    /'
        ok=0
    fi

    yaml=$(grep -E '\.ya?ml$' "$WORK/changed" || true)
    if [ -n "$yaml" ]; then
        if lint=$("$PYTHON" -c 'import sys, yaml
for name in sys.argv[1:]:
    with open(name) as stream:
        yaml.safe_load(stream)' $yaml 2>&1); then
            echo "  yaml: ok ($(echo "$yaml" | wc -l) files)"
        else
            echo "  yaml: FAILED"
            echo "$lint" | tail -n 5 | sed 's/^/    /'
            ok=0
        fi
    fi
    notes=$(git diff --name-only --diff-filter=A HEAD~1 HEAD \
        -- 'releasenotes/notes/*.yaml')
    if [ -n "$notes" ]; then
        scratch=$WORK/reno
        rm -rf "$scratch"
        mkdir -p "$scratch/releasenotes/notes"
        cp $notes "$scratch/releasenotes/notes/"
        if lint=$(cd "$scratch" && git init -q && git add -A \
                && git -c user.name=lint -c user.email=lint@example.invalid \
                    commit -q -m notes \
                && "$BIN/reno" -q lint . 2>&1); then
            echo "  reno lint: ok ($(echo "$notes" | wc -l) notes)"
        else
            echo "  reno lint: FAILED"
            echo "$lint" | grep -v -e '^scanning' -e '^including' \
                -e '^no configuration' | sed 's/^/    /'
            ok=0
        fi
    fi

    docs=$(grep -E '^doc/.*\.(rst|inc|txt)$' "$WORK/changed" || true)
    if [ -n "$docs" ]; then
        if [ ! -x "$BIN/doc8" ]; then
            echo "  doc8: not installed, skipped"
        elif lint=$("$BIN/doc8" $docs 2>&1); then
            echo "  doc8: ok ($(echo "$docs" | wc -l) files)"
        else
            echo "  doc8: FAILED"
            echo "$lint" | sed 's/^/    /'
            ok=0
        fi
    fi

    # cinder's tools/config/check_uptodate.sh, with our Python.
    mv cinder/opts.py "$WORK/opts.py.orig"
    if ! "$PYTHON" tools/config/generate_cinder_opts.py \
            >"$WORK/genopts.log" 2>&1; then
        echo "  check_uptodate: FAILED (generate_cinder_opts.py)"
        tail -n 20 "$WORK/genopts.log" | sed 's/^/    /'
        ok=0
    elif lint=$(diff -u "$WORK/opts.py.orig" cinder/opts.py); then
        echo "  check_uptodate: ok (cinder/opts.py regenerated, no change)"
    else
        echo "  check_uptodate: FAILED (cinder/opts.py is not up to date)"
        echo "$lint" | sed 's/^/    /'
        ok=0
    fi
    mv "$WORK/opts.py.orig" cinder/opts.py

    test_modules <"$WORK/changed" >"$WORK/modules"
    start=$SECONDS
    if ! run_tests "$WORK/after" $(cat "$WORK/modules"); then
        ok=0
    fi
    read -r run failed skipped <"$WORK/after.counts"
    check_on_base "$WORK/after"
    comm -13 "$WORK/base" "$WORK/after" >"$WORK/new-failures"
    new=$(wc -l <"$WORK/new-failures")
    echo "  unit tests: $(wc -l <"$WORK/modules") modules," \
        "$run run, $skipped skipped, $((failed - new)) failing as on the" \
        "base, $new new failures ($((SECONDS - start)) s)"
    sed 's/^/    /' "$WORK/modules"
    if [ "$new" != 0 ]; then
        echo "  unit tests: FAILED:"
        show_traces "$WORK/new-failures" "$WORK/after.traces"
        ok=0
    elif [ "$run" = 0 ]; then
        echo "  unit tests: FAILED (no test ran)"
        ok=0
    fi
    if [ $ok = 1 ]; then
        echo "  => PASS"
        passed=$((passed + 1))
    else
        echo "  => FAIL"
        status=1
    fi
done

if [ -s "$WORK/base" ]; then
    echo "Failing on the unpatched base too (environment), not counted:"
    sed 's/^/  /' "$WORK/base"
fi
echo "Series: $passed of $patches patches pass"
exit $status
