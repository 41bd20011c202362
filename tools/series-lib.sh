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

# Shell functions the series tests share; source it after setting WORK,
# VENV and PATCH (the patch file being checked) and defining die.

# run_units MODULE...: run them with the venv's stestr, print
# "units N/M passed (K skipped)"; die on a failure or when none ran.
run_units() {
    local log=$WORK/${PATCH%.patch}.log
    "$VENV/bin/stestr" run --concurrency 2 "$@" > "$log" 2>&1 \
        || { tail -30 "$log" >&2; die "$PATCH: unit tests failed ($log)"; }
    "$VENV/bin/stestr" last --subunit | "$VENV/bin/subunit2csv" \
        > "$log.csv"
    "$VENV/bin/python" - "$log.csv" <<'EOF'
import collections
import csv
import sys

with open(sys.argv[1]) as f:
    rows = list(csv.DictReader(f))
counts = collections.Counter(row['status'] for row in rows)
if not rows or counts['failure'] or counts['fail']:
    sys.exit('%d ran, %d failed' % (len(rows), counts['failure']))
print('units %d/%d passed (%d skipped)' % (
    counts['success'], len(rows), counts['skip']))
EOF
}
