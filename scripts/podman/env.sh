# Sourced by the podman scripts: the test's own containers.conf and the image names.
# shellcheck shell=bash
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
export BASE_SUITE=${BASE_SUITE:-trixie}
# Debian's Node (20 in trixie) only fetches the image's Node 24 from the npm registry (Dockerfile).
export NODE_IMAGE=${NODE_IMAGE:-localhost/auth-gateway-node-base:$BASE_SUITE}
# What the image's stages run on: Debian minbase with ca-certificates and libstdc++ (Node's needs).
export RUNTIME_IMAGE=${RUNTIME_IMAGE:-localhost/auth-gateway-runtime-base:$BASE_SUITE}
export REDIS_IMAGE=${REDIS_IMAGE:-localhost/auth-gateway-redis-base:$BASE_SUITE}
export GATEWAY_IMAGE=${GATEWAY_IMAGE:-localhost/auth-gateway:latest}
