#!/usr/bin/env bash
# Installs Debian packages that the test suite drives for real, when their command is missing.
# Arguments: `command=package` pairs (a command looked up on the PATH, or an absolute path).
# Runs apt-get only as root; otherwise it names what is missing and exits 1.
set -euo pipefail
missing=()
for pair in "$@"; do
  cmd=${pair%%=*}
  pkg=${pair#*=}
  if [[ "$cmd" == /* ]]; then [ -e "$cmd" ] && continue; else command -v "$cmd" >/dev/null 2>&1 && continue; fi
  missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages for the tests: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "missing Debian packages: ${missing[*]} (install them with 'sudo apt-get install ${missing[*]}')" >&2
exit 1
