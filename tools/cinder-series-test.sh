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

# Apply patches/cinder/*.patch one by one to the cinder 29.0.0 sdist and run
# cinder's own unit tests for the modules the series touches after each
# patch. A patch fails when it does not apply, when a test fails that did
# not already fail on the unpatched base (recorded first, same environment),
# or when cinder's own flake8 rules (its tox.ini [flake8] settings and the
# local hacking checks of cinder/tests/hacking/checks.py, e.g. C311) flag a
# Python file the patch changes.
#
# Usage: tools/cinder-series-test.sh [path/to/cinder-29.0.0.tar.gz]
# Environment: PYTHON (default: python3 on PATH) must have cinder's
# test requirements and bdm-guard importable; CINDER_VERSION (29.0.0);
# KEEP_WORKDIR=1 keeps the temporary git repository.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATCH_DIR=$ROOT/patches/cinder
PYTHON=${PYTHON:-python3}
CINDER_VERSION=${CINDER_VERSION:-29.0.0}
WORK=$(mktemp -d -t cinder-series.XXXXXX)
if [ "${KEEP_WORKDIR:-0}" != 1 ]; then
    trap 'rm -rf "$WORK"' EXIT
fi

# Cinder unit test modules covering the modules the series changes
# (cinder/db/api.py, objects/volume.py, scheduler/, volume/flows/), and the
# test modules the series adds (run once they exist).
TEST_MODULES="
cinder.tests.unit.test_db_api
cinder.tests.unit.test_db_worker_api
cinder.tests.unit.objects.test_cleanable
cinder.tests.unit.db.test_fresh_volumes
cinder.tests.unit.objects.test_volume
cinder.tests.unit.objects.test_objects
cinder.tests.unit.scheduler.test_scheduler
cinder.tests.unit.scheduler.test_filter_scheduler
cinder.tests.unit.scheduler.test_create_volume_flow
cinder.tests.unit.volume.flows.test_create_volume_flow
cinder.tests.unit.volume.flows.test_common
cinder.tests.unit.volume.test_volume
"

SDIST=${1:-}
if [ -z "$SDIST" ]; then
    "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
        "cinder==$CINDER_VERSION" -d "$WORK/sdist"
    SDIST=$(ls "$WORK"/sdist/cinder-*.tar.gz)
fi

REPO=$WORK/cinder-$CINDER_VERSION
tar --no-same-owner -xzf "$SDIST" -C "$WORK"
cd "$REPO"
git init -q
git config user.name "cinder series test"
git config user.email "series-test@example.invalid"
git add -A
git commit -q -m "Import cinder $CINDER_VERSION sdist"

# Run the existing modules of $TEST_MODULES; write failing test ids to $1.
run_tests() {
    local failed_file=$1 modules=""
    for module in $TEST_MODULES; do
        if [ -f "${module//.//}.py" ]; then
            modules="$modules $module"
        fi
    done
    # cinder's test fixtures turn DeprecationWarnings back on (thousands of
    # lines per run): keep stderr in a file and show its tail on failure.
    OS_CINDER_DISABLE_EVENTLET_PATCHING=False \
    PYTHONPATH="$REPO:$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
        "$PYTHON" - "$failed_file" $modules 2>"$failed_file.stderr" \
        <<'EOF' || { tail -n 40 "$failed_file.stderr" >&2; return 1; }
import sys
import unittest

failed_file, modules = sys.argv[1], sys.argv[2:]
suite = unittest.defaultTestLoader.loadTestsFromNames(modules)
result = unittest.TestResult()
suite.run(result)
bad = sorted({test.id() for test, _ in result.failures + result.errors})
with open(failed_file, 'w') as out:
    out.writelines(name + '\n' for name in bad)
print('  %d tests in %d modules, %d failed or errored, %d skipped'
      % (result.testsRun, len(modules), len(bad), len(result.skipped)))
EOF
    if [ -s "$failed_file" ]; then
        grep -v -e DeprecationWarning -e obj_make_list "$failed_file.stderr" \
            | tail -n 40 >&2
    fi
}

echo "Base: cinder $CINDER_VERSION"
run_tests "$WORK/base-failures"
status=0
for patch in "$PATCH_DIR"/*.patch; do
    echo "Patch: $(basename "$patch")"
    if ! git am -q --3way "$patch"; then
        echo "  FAILED: does not apply"
        exit 1
    fi
    changed=$(git diff --name-only --diff-filter=d HEAD~1 HEAD -- '*.py')
    if [ -n "$changed" ]; then
        # cinder's pep8 env: flake8 reads cinder's tox.ini in $REPO.
        if ! lint=$("$PYTHON" -m flake8 $changed 2>&1); then
            echo "  FAILED: cinder's flake8/hacking checks:"
            echo "$lint" | sed 's/^/    /'
            status=1
        fi
    fi
    run_tests "$WORK/failures"
    new=$(comm -13 "$WORK/base-failures" "$WORK/failures")
    if [ -n "$new" ]; then
        echo "  FAILED: new test failures:"
        echo "$new" | sed 's/^/    /'
        status=1
    else
        echo "  OK: no test fails that passed on the base"
    fi
done
if [ -s "$WORK/base-failures" ]; then
    echo "Failing on the unpatched base too (environment), ignored:"
    sed 's/^/  /' "$WORK/base-failures"
fi
exit $status
