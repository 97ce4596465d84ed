#!/usr/bin/env bash
# `make image`: builds localhost/auth-gateway:latest with podman from the Dockerfile, on a base image
# made by mmdebstrap (no image registry needed), and writes the SBOM of what the image runs.
#
# The registry access of this machine reaches the build as build args, never as committed names:
# npm's `cafile` (mounted read-only into the build), `registry`, `https-proxy`/`proxy`, and the
# HTTPS_PROXY/HTTP_PROXY/NO_PROXY environment variables. The runtime stage gets none of them.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/podman/env.sh
bash scripts/podman/base-images.sh node runtime redis

out=.image
mkdir -p "$out"
args=(--format docker --network host --build-arg "NODE_IMAGE=$NODE_IMAGE" --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE"
      --build-arg "NODE_VERSION=$(tr -d '[:space:]' < .node-version)" --tag "$GATEWAY_IMAGE")

npm_get () { local v; v=$(npm config get "$1" 2>/dev/null || true); [ "$v" = "null" ] || [ "$v" = "undefined" ] && v=; printf '%s' "$v"; }
cafile=$(npm_get cafile)
if [ -n "$cafile" ] && [ -f "$cafile" ]; then
  args+=(--volume "$(readlink -f "$cafile"):/run/build-ca.crt:ro" --build-arg NPM_CONFIG_CAFILE=/run/build-ca.crt)
fi
registry=$(npm_get registry)
[ -n "$registry" ] && args+=(--build-arg "NPM_CONFIG_REGISTRY=$registry")
proxy=${HTTPS_PROXY:-${https_proxy:-$(npm_get https-proxy)}}
[ -n "$proxy" ] && args+=(--build-arg "HTTPS_PROXY=$proxy")
proxy=${HTTP_PROXY:-${http_proxy:-$(npm_get proxy)}}
[ -n "$proxy" ] && args+=(--build-arg "HTTP_PROXY=$proxy")
noproxy=${NO_PROXY:-${no_proxy:-}}
[ -n "$noproxy" ] && args+=(--build-arg "NO_PROXY=$noproxy")

echo "podman build $GATEWAY_IMAGE (Node $(tr -d '[:space:]' < .node-version) on $RUNTIME_IMAGE)"
nice podman build "${args[@]}" . 2>&1 | tee "$out/build.log" | grep -E '^(STEP|COMMIT|Successfully|Error)' || true
podman image exists "$GATEWAY_IMAGE" || { echo "image build failed (see $out/build.log)" >&2; exit 1; }
# a failed build leaves the previous image: compare against the log's last line
tail -n 1 "$out/build.log" | grep -qE '^[0-9a-f]{64}$' || { echo "image build failed (see $out/build.log)" >&2; tail -n 20 "$out/build.log" >&2; exit 1; }
podman image inspect --format '{{.Id}}' "$GATEWAY_IMAGE" > "$out/image-id"

# SBOM (CycloneDX) of the production dependencies the image holds (the lock file, pruned with --omit=dev).
npm sbom --omit=dev --package-lock-only --sbom-format cyclonedx > "$out/sbom.cdx.json"
echo "image $GATEWAY_IMAGE $(cut -c1-12 "$out/image-id"); SBOM: $out/sbom.cdx.json ($(grep -c '"bom-ref"' "$out/sbom.cdx.json") components)"
