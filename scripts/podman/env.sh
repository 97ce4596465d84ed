# Sourced by the podman scripts: the test's own containers.conf and the image names.
# shellcheck shell=bash
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
# Debian trixie carries Node 20 (bookworm's nodejs is 18, too old for the gateway).
export BASE_SUITE=${BASE_SUITE:-trixie}
export NODE_IMAGE=${NODE_IMAGE:-localhost/auth-gateway-node-base:$BASE_SUITE}
export REDIS_IMAGE=${REDIS_IMAGE:-localhost/auth-gateway-redis-base:$BASE_SUITE}
export GATEWAY_IMAGE=${GATEWAY_IMAGE:-localhost/auth-gateway:latest}
