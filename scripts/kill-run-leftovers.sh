#!/usr/bin/env bash
# The last net of a test run (scripts/run-tests.sh): processes and containers that a test file left
# behind because it was killed (tap's timeout, SIGKILL) before its teardown ran.
#   processes: those whose environment carries AUTH_GATEWAY_RUN_ID=<run id> (set by dev-tools' spawnTracked),
#              and redis-servers whose working folder is a gw-redis-<run id>-* folder
#   containers: those labelled auth-gateway-test-run=<run id> (test/helpers/podman.ts)
# Usage: kill-run-leftovers.sh RUN_ID. Prints what it killed; never touches anything else.
set -uo pipefail
run_id=${1:?run id}
killed=0
for environ in /proc/[0-9]*/environ; do
  pid=${environ#/proc/}; pid=${pid%/environ}
  [ "$pid" = "$$" ] && continue
  # redis-server rewrites its environment: it is recognised by its working folder (dev-tools/redis-server.ts)
  if { tr '\0' '\n' < "$environ"; } 2>/dev/null | grep -qx "AUTH_GATEWAY_RUN_ID=$run_id" ||
     [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == */gw-redis-"$run_id"-* ]]; then
    echo "left over after the tests: pid $pid $(tr '\0' ' ' < /proc/"$pid"/cmdline 2>/dev/null | cut -c1-120)" >&2
    kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1))
  fi
done
rm -rf "${TMPDIR:-/tmp}"/gw-redis-"$run_id"-* 2>/dev/null
if command -v podman >/dev/null 2>&1; then
  export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "$0")" && pwd)/podman/containers.conf}
  left=$(podman ps -aq --filter "label=auth-gateway-test-run=$run_id" 2>/dev/null)
  if [ -n "$left" ]; then
    echo "left over after the tests: containers $left" >&2
    podman rm -f -t 0 $left >/dev/null 2>&1
    killed=$((killed + $(wc -w <<<"$left")))
  fi
fi
exit 0
