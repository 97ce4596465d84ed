/**
 * The Node/V8 flags the gateway is started with (bin/node-flags.sh, sourced by bin/auth-gateway):
 * the benchmarks start every gateway process with them, so that they measure the gateway as it
 * runs in the image, compose, Kubernetes and `make run`. Reference servers (the bare proxy, the
 * floors, the upstream) run with Node's defaults, as their users would run them.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const FLAGS_FILE = fileURLToPath(new URL('../../bin/node-flags.sh', import.meta.url))

/** The value of `NAME="..."` in the flags file, split into flags. */
function flagsOf (text: string, name: string): string[] {
  const match = new RegExp(`^${name}="([^"]*)"$`, 'm').exec(text)
  if (match === null) throw new Error(`${FLAGS_FILE}: no ${name}="..." line`)
  return match[1]!.split(/\s+/).filter((flag) => flag !== '')
}

/** NODE_OPTIONS defaults and command-line flags of bin/auth-gateway, in the order node takes them. */
export function gatewayNodeFlags (): string[] {
  const text = readFileSync(FLAGS_FILE, 'utf8')
  return [...flagsOf(text, 'GATEWAY_NODE_OPTIONS'), ...flagsOf(text, 'GATEWAY_NODE_ARGS')]
}
