#!/usr/bin/env bash
# Runs the tap suite and ends with the line `N passed, N failed`, counted from tap's results.
set -uo pipefail
mkdir -p .tap
# Every process the tests start carries this id; whatever a killed test file left running is killed after the run.
run_id="$$-$(date +%s)"
AUTH_GATEWAY_RUN_ID=$run_id npx tap --reporter=tap "$@" 2>&1 | tee .tap/output.tap
status=${PIPESTATUS[0]}
bash scripts/kill-run-leftovers.sh "$run_id"
summary=$(grep -E '^# \{ total: [0-9]+' .tap/output.tap | tail -n 1)
passed=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
passed=${passed:-0}
failed=${failed:-0}
# A subtest that ran and asserted nothing could not have failed: each one counts as a failure.
empty=$(node scripts/empty-subtests.mjs .tap/output.tap)
if [ -n "$empty" ]; then
  echo "# subtests that asserted nothing (scripts/empty-subtests.mjs):"
  sed 's/^/#   /' <<<"$empty"
  failed=$((failed + $(wc -l <<<"$empty")))
  status=1
fi
# A run that failed without a failing assertion (a crash, a timeout) still counts as a failure.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ -z "$summary" ] && [ "$status" -eq 0 ]; then status=1; failed=1; fi
# CI keeps only the tail of the log: name the failures again just above the count.
if [ "$failed" -ne 0 ]; then
  echo "# failures (first 20 'not ok' lines of .tap/output.tap):"
  grep -E '^[[:space:]]*not ok' .tap/output.tap | head -n 20 | cut -c1-200
fi
echo "$passed passed, $failed failed" | tee .tap/summary
exit "$status"
