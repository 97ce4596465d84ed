#!/usr/bin/env bash
# Makes sure redis-server is on the PATH: installs Debian's package when running as root.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server not found: installing Debian's redis-server package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq redis-server >/dev/null
  # The package may start a system-wide service on 6379; the project starts its own servers.
  (command -v service >/dev/null 2>&1 && service redis-server stop >/dev/null 2>&1) || true
  exit 0
fi
echo "redis-server is missing: install it with 'sudo apt-get install redis-server' (or set REDIS_URL to a running Redis)" >&2
exit 1
