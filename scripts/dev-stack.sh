#!/usr/bin/env bash
# `make run`: Redis (REDIS_URL when set, else a private redis-server on a free port), the users and
# orders stub services and the gateway, in the foreground. Ctrl-C stops everything it started.
# Logs: human-readable (pino-pretty) when stdout is a terminal, the programs' JSON lines otherwise
# (piped, redirected, CI); LOG_FORMAT=json keeps JSON lines on a terminal too.
set -euo pipefail
cd "$(dirname "$0")/.."

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
# A signal ends the script after the cleanup, whatever ran in the foreground (the orders client's
# registration): bash would otherwise go on with the next command after the trap.
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

if [ -z "${REDIS_URL:-}" ] && [ -z "${REDIS_CLUSTER_NODES:-}" ]; then
  redis_port=$(free_port)
  mkdir -p .run
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir .run --loglevel warning &
  pids+=($!)
  export REDIS_URL="redis://127.0.0.1:$redis_port"
  echo "redis: private redis-server on $REDIS_URL"
fi

# Dev keys persist across restarts so that tokens survive them; production uses JWT_KEYS_FILE.
if [ -z "${JWT_KEYS_FILE:-}" ]; then
  [ -f keys/dev-jwks.json ] || node dist/src/cli/generate-keys.js keys/dev-jwks.json
  export JWT_KEYS_FILE=keys/dev-jwks.json
fi

# The default host and ports are those of src/lib/defaults.ts (the gateway's and the stubs' config
# schemas take theirs from it too); set here so that a PORT, USERS_PORT or ORDERS_PORT of the caller
# also moves the URLs the other programs use to reach that one.
read -r default_host default_port default_users_port default_orders_port < <(node --input-type=module -e \
  "import { DEFAULT_HOST as h, DEFAULT_PORTS as p } from './dist/src/lib/defaults.js'; console.log(h, p.gateway, p.users, p.orders)")
export PORT="${PORT:-$default_port}" HOST="${HOST:-$default_host}"
export USERS_PORT="${USERS_PORT:-$default_users_port}" ORDERS_PORT="${ORDERS_PORT:-$default_orders_port}"
export USERS_URL="${USERS_URL:-http://$default_host:$USERS_PORT}" ORDERS_URL="${ORDERS_URL:-http://$default_host:$ORDERS_PORT}"
export GATEWAY_JWKS_URL="${GATEWAY_JWKS_URL:-http://$default_host:$PORT/.well-known/jwks.json}"
# Plain http on localhost: the refresh cookie cannot be Secure here.
export COOKIE_SECURE="${COOKIE_SECURE:-false}"
# The demo page of the browser client (/demo/); off unless set, on in the dev stack.
export DEMO_PAGE="${DEMO_PAGE:-true}"

pretty=0
if [ -t 1 ] && [ "${LOG_FORMAT:-}" != json ] && [ -x node_modules/.bin/pino-pretty ]; then pretty=1; fi
# Starts a program in the background; on a terminal its stdout goes through pino-pretty.
launch() {
  if [ "$pretty" = 1 ]; then
    "$@" > >(exec node_modules/.bin/pino-pretty --colorize --translateTime SYS:HH:MM:ss.l --ignore pid,hostname) &
  else
    "$@" &
  fi
  pids+=($!)
}

launch node dist/services/users/server.js
# The gateway's start command (node with its V8 memory settings, as in the image).
launch sh bin/auth-gateway

# The orders service calls the users service on each user's behalf (token exchange): unless
# ORDERS_CLIENT_ID / ORDERS_CLIENT_SECRET are given, register a client with the scope
# token-exchange as the demo admin once the gateway is up.
if [ -z "${ORDERS_CLIENT_ID:-}" ]; then
  if credentials=$(node scripts/register-orders-client.mjs "http://$HOST:$PORT"); then
    export ORDERS_CLIENT_ID="${credentials%% *}" ORDERS_CLIENT_SECRET="${credentials#* }"
    echo "orders: machine client $ORDERS_CLIENT_ID (scope token-exchange) reads profiles on the users' behalf"
  else
    echo "orders: no machine client registered; orders do not record the profile's username"
  fi
fi
launch node dist/services/orders/server.js
echo "gateway: http://$HOST:$PORT (users :$USERS_PORT, orders :$ORDERS_PORT) - Ctrl-C stops everything"
if [ "$DEMO_PAGE" = "true" ]; then echo "demo page: http://$HOST:$PORT/demo/ (the browser client: /client/auth-client.js)"; fi
wait -n
