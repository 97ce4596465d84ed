# The two commands of the contract: `make run` (the dev stack) and `make test` (the whole suite).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help install build run test typecheck lint validate-deploy bench keys redis-server test-packages clean

help:
	@echo "make run    - install, build and run Redis, the users and orders services and the gateway on http://127.0.0.1:8080"
	@echo "make test   - install, type-check, lint, validate deploy files and run the tap suite against real redis-server processes"
	@echo "make bench  - proxy benchmark (autocannon): upstream direct vs bare proxy vs gateway"

# npm ci when the lock file is newer than the last install
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

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

test: build test-packages typecheck lint validate-deploy
	@bash scripts/run-tests.sh

bench: build redis-server
	node dist/bench/proxy-bench.js

keys: build
	npm run keys:generate --silent -- keys/jwks.json

clean:
	rm -rf dist .tap coverage .run
