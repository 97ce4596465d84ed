# The gateway's Node/V8 flags (docs/operations.md, "Memory"): sourced by bin/auth-gateway, and read
# by the benchmarks (bench/gateway-node-flags.ts) so that they measure the gateway as it is started.
# Plain NAME="value" lines only: the benchmarks parse them without a shell.
#
# GATEWAY_NODE_OPTIONS, V8 heap sizes, a NODE_OPTIONS default (the operator's NODE_OPTIONS come
# after and win where they repeat a flag):
#   --max-semi-space-size=16   young generation of up to 2 x 16 MB (V8 grows it under load).
#                              Nearly all of a request's garbage dies there, and a scavenge costs
#                              about the same whatever the size, so a smaller one means more pauses
#                              per request: more CPU and a longer latency tail (BENCHMARKS.md,
#                              "Young generation and latency"; `make bench-v8-flags`).
#   --max-old-space-size=256   a hard limit far above the gateway's live heap, and one that makes
#                              V8 collect when the old generation reaches about 1.3x the live heap
#                              instead of 4x (its choice when the limit is gigabytes, as on a host
#                              with no container memory limit).
# GATEWAY_NODE_ARGS, not allowed in NODE_OPTIONS, so on the command line:
#   --no-wasm-dynamic-tiering --no-wasm-tier-up   undici's HTTP parser (WebAssembly) stays on
#                              V8's baseline compiler: re-compiling its parser function with the
#                              optimizing one takes tens of MB of native memory at once under load,
#                              which the C allocator never gives back to the system.
GATEWAY_NODE_OPTIONS="--max-semi-space-size=16 --max-old-space-size=256"
GATEWAY_NODE_ARGS="--no-wasm-dynamic-tiering --no-wasm-tier-up"
