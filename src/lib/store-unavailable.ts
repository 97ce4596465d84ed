/** Any failure to talk to Redis becomes 503 `store_unavailable`: fail closed, never a 500. */
import { gatewayError, type GatewayError } from '../errors.js'

/**
 * What is kept of a Redis error for the logs. ioredis attaches the failed command with its
 * arguments, and a rotation's arguments include the new refresh token: they are dropped here.
 */
function loggableCause (cause: unknown): unknown {
  if (!(cause instanceof Error)) return cause
  const command = (cause as { command?: { name?: unknown } }).command
  const safe = new Error(cause.message)
  safe.name = cause.name
  if (cause.stack !== undefined) safe.stack = cause.stack
  if (typeof command?.name === 'string') (safe as Error & { command: string }).command = command.name
  return safe
}

export function storeUnavailable (cause: unknown): GatewayError {
  return gatewayError('store_unavailable', undefined, { 'retry-after': '1' }, loggableCause(cause))
}

export async function orStoreUnavailable<T> (op: Promise<T>): Promise<T> {
  try {
    return await op
  } catch (err) {
    throw storeUnavailable(err)
  }
}
