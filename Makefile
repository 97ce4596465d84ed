# The two commands of the contract: `make run` (the dev stack) and `make test` (the whole suite).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Node 24 LTS (.node-version) for every target: scripts/ensure-node.sh installs it into .tools/node
# when the machine's node is older, and this PATH puts it before the machine's (npm included, which
# runs on the first node on PATH).
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)

.PHONY: help node install build build-tools run check test typecheck lint validate-deploy bench bench-direct bench-v8-flags bench-upload bench-websockets bench-jwt soak keys redis-server test-packages clean image test-image chaos audit

help:
	@echo "make run    - install, build and run Redis, the users and orders services and the gateway on http://127.0.0.1:8080"
	@echo "make check  - the contributor's tier (minutes): type-check, lint, unit and property tests, integration tests on real Redis"
	@echo "              (needs only redis-server; no browser, nginx, Caddy, Python, promtool, podman, Django, image or cluster runs,"
	@echo "              no multi-replica races or soaks: docs/testing.md lists what only make test runs)"
	@echo "make test   - install, type-check, lint, validate deploy files and run the tap suite against real redis-server processes"
	@echo "make bench  - proxy benchmark (autocannon, wrk): upstream direct vs bare proxy vs the session-check floors vs gateway vs nginx + /auth/check vs the full chain"
	@echo "make bench-direct - the direct GET path against reply-from only (PROXY_DIRECT_GET), interleaved A/B (BENCH_AB_ROUNDS)"
	@echo "make bench-v8-flags - gateway latency, CPU and GC under Node/V8 flags (BENCH_V8_VARIANTS) against the bare proxy, wrk at 1 and 8 connections"
	@echo "make bench-jwt - access-token verification: jose (today) vs fast-jwt / @fastify/jwt, cache on and off, bad tokens"
	@echo "make soak   - memory soak (SOAK_SECONDS, default 600): the gateway's RSS must stay under 150 MB and flat"
	@echo "make capacity - 1, 2 and 3 gateway replicas on one Redis: per-request CPU, Redis commands, memory (docs/capacity.md)"
	@echo "make image  - container image localhost/auth-gateway:latest with podman (+ SBOM in .image/)"
	@echo "make chaos  - chaos soak (CHAOS_SECONDS, default 600): two replicas + Redis, kill -9 every 30 s"

# The project's Node (a no-op when the machine's node is recent enough or .tools/node has it)
node:
	@bash scripts/ensure-node.sh

# npm ci when the lock file is newer than the last install
node_modules/.package-lock.json: package.json package-lock.json | node
	npm ci --no-audit --no-fund
	@touch $@

install: node node_modules/.package-lock.json

build: install
	npm run build --silent

# redis-server from Debian's packages when missing (root), else say how to install it
redis-server:
	@bash scripts/ensure-redis.sh

# Everything the suite drives for real (browser, Django, podman, ...): Debian packages, installed when missing
test-packages: redis-server
	@bash scripts/ensure-packages.sh $$(grep -v '^#' scripts/test-packages.txt)

typecheck: install
	npm run typecheck --silent

lint: install
	npm run lint --silent

validate-deploy: build
	bash deploy/validate.sh

run: build
	@if [ -z "$$REDIS_URL" ] && [ -z "$$REDIS_CLUSTER_NODES" ]; then bash scripts/ensure-redis.sh; fi
	@bash scripts/dev-stack.sh

test: build build-tools test-packages typecheck lint validate-deploy audit image
	@bash scripts/run-tests.sh

# Integration tests that drive more than Redis (a browser, nginx, Caddy, Python OAuth clients, promtool): `make test` only.
CHECK_SKIPS := auth-client-browser edge-caddy edge-nginx edge-nginx-browser machine-clients-oauthlib oauth-authlib observability-rules
# Several gateway replicas raced against each other for hundreds of rounds (*-replicas, the property
# test of revocation across replicas): `make test` only. A soak inside another file is skipped
# under TEST_TIER=check (test/helpers/tiers.ts).
CHECK_SLOW := $(wildcard test/integration/*-replicas.test.ts) test/property/session-cache-revocation.test.ts
CHECK_TESTS = $(filter-out $(CHECK_SLOW),$(wildcard test/unit/*.test.ts test/property/*.test.ts \
	$(filter-out $(CHECK_SKIPS:%=test/integration/%.test.ts),$(wildcard test/integration/*.test.ts))))
CHECK_JOBS ?= 3

# The fast tier: no Debian package but redis-server, no container image, no Redis Cluster variants (test/cluster/).
check: build redis-server typecheck lint
	@TEST_TIER=check bash scripts/run-tests.sh --jobs=$(CHECK_JOBS) $(CHECK_TESTS)

# The bench, the chaos soak and their helpers (dev-tools/): never part of dist/ in the image
build-tools: install
	npx tsc -p tsconfig.tools.json

# Container image with podman on an mmdebstrap base (no registry); writes .image/sbom.cdx.json
image: install
	@bash scripts/ensure-packages.sh podman=podman runc=runc mmdebstrap=mmdebstrap podman-compose=podman-compose /usr/libexec/podman/catatonit=catatonit /usr/lib/cni/dnsname=golang-github-containernetworking-plugin-dnsname
	@bash scripts/podman/build-image.sh

# The image run for real (also part of `make test`)
test-image: image build redis-server
	@bash scripts/run-tests.sh test/image

# Supply chain: exact versions in the lock file, npm audit --omit=dev (exceptions: audit-exceptions.json)
audit: install
	@node scripts/supply-chain/audit.mjs

chaos: build-tools redis-server
	node dist/dev-tools/chaos-soak.js

bench-direct: build-tools redis-server
	node dist/bench/direct-path-ab.js

bench-v8-flags: build-tools redis-server
	@bash scripts/ensure-packages.sh wrk=wrk
	node dist/bench/v8-flags-ab.js

# nginx (the nginx + /auth/check target) and wrk (latency in microseconds at 1 and 8 connections) from Debian's packages
bench: build-tools redis-server
	@bash scripts/ensure-packages.sh /usr/sbin/nginx=nginx wrk=wrk
	node dist/bench/proxy-bench.js

# The gateway's peak RSS during one UPLOAD_MB (default 100) MB upload through a route's body_limit (BENCHMARKS.md)
bench-upload: build-tools redis-server
	node dist/bench/upload-memory.js

# Token verification in one process (no Redis): jose + our LRU against fast-jwt (issue 13); BENCH_JWT_ROUNDS, BENCH_JWT_MS
# The gateway's memory per idle proxied WebSocket with SOCKETS (default 1000) open (BENCHMARKS.md)
bench-websockets: build-tools redis-server
	node dist/bench/idle-websockets.js

bench-jwt: build-tools
	node dist/bench/jwt-verify-bench.js

# Memory soak: SOAK_SECONDS (default 600) of steady load; fails when the gateway's RSS is over 150 MB or keeps growing
soak: build-tools redis-server
	node dist/bench/soak.js

# Capacity model check (docs/capacity.md): 1, 2 and 3 gateway replicas on one Redis; CAPACITY_REPLICAS, CAPACITY_ROUNDS, BENCH_DURATION
.PHONY: capacity
capacity: build-tools redis-server
	node dist/bench/capacity.js

keys: build
	npm run keys:generate --silent -- keys/jwks.json

clean:
	rm -rf dist .tap coverage .run
