#!/usr/bin/env bash
# Base images without any registry: Debian minbase root filesystems made by mmdebstrap and
# imported into podman. Built only when missing (cached across runs); FORCE=1 rebuilds them.
#   NODE_IMAGE     nodejs, npm, ca-certificates  (the Dockerfile's --build-arg NODE_IMAGE)
#   RUNTIME_IMAGE  ca-certificates, libstdc++6   (the Dockerfile's --build-arg RUNTIME_IMAGE)
#   REDIS_IMAGE    redis-server                  (Redis for the compose stack; only with `redis` as argument)
# Usage: base-images.sh [node] [runtime] [redis]   (default: node runtime)
set -euo pipefail
source "$(dirname "$0")/env.sh"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
want=("$@"); [ ${#want[@]} -eq 0 ] && want=(node runtime)

build_base () { # name image packages
  local name=$1 image=$2 packages=$3
  if [ "${FORCE:-0}" != 1 ] && podman image exists "$image"; then return 0; fi
  echo "building base image $image ($BASE_SUITE: $packages) with mmdebstrap; this takes a few minutes"
  local tar
  tar=$(mktemp --suffix=.tar)
  trap 'rm -f "$tar"' RETURN
  nice mmdebstrap --quiet --variant=minbase --include="$packages" "$BASE_SUITE" "$tar" "$mirror"
  podman import --quiet --change 'CMD ["/bin/bash"]' "$tar" "$image" >/dev/null
  echo "$name base image: $image"
}

for w in "${want[@]}"; do
  case $w in
    node) build_base node "$NODE_IMAGE" nodejs,npm,ca-certificates ;;
    runtime) build_base runtime "$RUNTIME_IMAGE" ca-certificates,libstdc++6 ;;
    redis) build_base redis "$REDIS_IMAGE" redis-server ;;
    *) echo "unknown base image: $w" >&2; exit 2 ;;
  esac
done
