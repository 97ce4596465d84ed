# syntax=docker/dockerfile:1
#
# One image for the three programs of the stack:
#   gateway (default CMD)         sh bin/auth-gateway                 (= npm start)
#   users stub                    node dist/services/users/server.js  (= npm run start:users)
#   orders stub                   node dist/services/orders/server.js (= npm run start:orders)
# docker-compose.yml and deploy/ override the command for the stubs.
#
# The programs are started with `node` directly rather than through `npm`, so that SIGTERM reaches
# the process (graceful shutdown within SHUTDOWN_GRACE_MS) and no npm wrapper sits in PID 1's place.
# bin/auth-gateway is a short sh script that `exec`s node with the gateway's V8 memory settings of
# bin/node-flags.sh (a NODE_OPTIONS default that the operator's NODE_OPTIONS override;
# docs/operations.md, "Memory"): node still ends up as PID 1.
#
# Node: the official Node 24 LTS binary of .node-version (--build-arg NODE_VERSION), taken from the
# npm registry (package node-linux-<arch>, integrity-checked by npm) with the npm of NPM_VERSION, in
# the `node` stage below; every later stage (the build and the runtime) runs on it.
# The Node of NODE_IMAGE only fetches them; the runtime image has no other Node and no npm.
#
# Built here with podman (`make image`, scripts/podman/build-image.sh) on Debian trixie bases made
# by mmdebstrap: NODE_IMAGE=localhost/auth-gateway-node-base:trixie (nodejs, npm, ca-certificates)
# and RUNTIME_IMAGE=localhost/auth-gateway-runtime-base:trixie (ca-certificates, libstdc++6). Any
# image with npm and any Debian/Ubuntu image with libstdc++ work too (the defaults below).

ARG NODE_IMAGE=node:24-trixie-slim
ARG RUNTIME_IMAGE=debian:trixie-slim

# ---- node: Node and npm from the npm registry -> /opt/node (the official tarball's layout) ------
# The build machine's registry access is passed as build args, never written into a layer:
#   NPM_CONFIG_CAFILE    a CA bundle mounted into the build (podman build --volume ...:ro)
#   NPM_CONFIG_REGISTRY  a registry mirror
#   HTTPS_PROXY / HTTP_PROXY / NO_PROXY
FROM ${NODE_IMAGE} AS node
ARG NODE_VERSION=24.22.3
ARG NPM_VERSION=11.19.1
ARG NPM_CONFIG_CAFILE
ARG NPM_CONFIG_REGISTRY
ARG HTTPS_PROXY
ARG HTTP_PROXY
ARG NO_PROXY
WORKDIR /tmp/node
RUN set -eu; \
    case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "no Node binary for $(uname -m)" >&2; exit 1 ;; esac; \
    npm pack --silent "node-linux-$arch@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null; \
    mkdir -p /opt/node/bin /opt/node/lib/node_modules/npm; \
    tar -xzf "node-linux-$arch-$NODE_VERSION.tgz" -C /opt/node --strip-components=1 package/bin/node package/LICENSE; \
    tar -xzf "npm-$NPM_VERSION.tgz" -C /opt/node/lib/node_modules/npm --strip-components=1; \
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /opt/node/bin/npm; \
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /opt/node/bin/npx; \
    test "$(/opt/node/bin/node --version)" = "v$NODE_VERSION"

# ---- build: dependencies, patched, TypeScript compile -> dist/ (src, services, client, web) ----
# The registry is reached only in this stage and in `node`, with the same build args: podman
# (buildah) does not pass a stage's ARGs on to a stage built FROM it (BuildKit does), so a shared
# base stage could not hold them for both.
FROM ${RUNTIME_IMAGE} AS build
COPY --from=node /opt/node /opt/node
ENV PATH=/opt/node/bin:$PATH
ARG NPM_CONFIG_CAFILE
ARG NPM_CONFIG_REGISTRY
ARG HTTPS_PROXY
ARG HTTP_PROXY
ARG NO_PROXY
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency's install script runs in the build (password hashing is hash-wasm:
# nothing native to compile). That skips the project's own postinstall too, so it runs here, by
# name: patch-package applies patches/ (undici: an upstream's 100 Continue is an interim answer, as
# 102 and 103; docs/proxy.md, "Interim answers") and fails the build when a patch does not apply
# or was made for another version of its package.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY patches ./patches
RUN npm run postinstall
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY services ./services
# The auth client (/client/, /demo/) and the admin dashboard (/admin/), bundled by esbuild.
COPY client ./client
COPY web ./web
COPY scripts/build-client.mjs scripts/build-web.mjs ./scripts/
RUN npm run build
# Production dependencies only for the runtime stage: prune removes the dev ones and leaves the
# installed (patched) packages as they are.
RUN npm prune --omit=dev --no-audit --no-fund --ignore-scripts \
 && npm cache clean --force

# ---- runtime: production dependencies + compiled output only; no registry settings ------------
FROM ${RUNTIME_IMAGE} AS runtime
# Node alone (no npm): the programs are started with `node`, and nothing installs at run time.
COPY --from=node /opt/node/bin/node /usr/local/bin/node
COPY --from=node /opt/node/LICENSE /usr/local/share/doc/node/LICENSE
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The demo routes file (the table when ROUTES_FILE is unset) and the routes file format's JSON Schema.
COPY config ./config
COPY bin/auth-gateway bin/node-flags.sh ./bin/
# Files stay owned by root and read-only for the runtime user; the app writes nothing (run it with
# a read-only root filesystem). A numeric uid (1000) so that Kubernetes' runAsNonRoot can check it
# and any base image works without a passwd entry.
USER 1000:1000
EXPOSE 8080
# Liveness of the gateway; Node has fetch built in (the image has no curl).
# The stubs listen on another port: compose/Kubernetes define their own checks.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["sh", "bin/auth-gateway"]
