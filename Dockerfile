# syntax=docker/dockerfile:1
#
# One image for the three programs of the stack:
#   gateway (default CMD)         node dist/src/server.js            (= npm start)
#   users stub                    node dist/services/users/server.js  (= npm run start:users)
#   orders stub                   node dist/services/orders/server.js (= npm run start:orders)
# docker-compose.yml and deploy/ override the command for the stubs.
#
# The programs are started with `node` directly rather than through `npm`, so that SIGTERM reaches
# the process (graceful shutdown within SHUTDOWN_GRACE_MS) and no npm wrapper sits in PID 1's place.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: dev dependencies + TypeScript compile -> dist/ ------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, so that this layer is cached until package*.json change.
# (Password hashing uses hash-wasm: WebAssembly, nothing native to compile.)
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# ---- runtime: production dependencies + compiled output only ----------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force
COPY --from=build /app/dist ./dist
# Files stay owned by root and read-only for the runtime user; the app writes nothing but /tmp.
USER node
EXPOSE 8080
# Liveness of the gateway; node:20 has fetch built in (the slim image has no curl).
# The stubs listen on another port: compose/Kubernetes define their own checks.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/src/server.js"]
