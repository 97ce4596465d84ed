/** Any failure to talk to Redis becomes 503 `store_unavailable`: fail closed, never a 500. */
import { gatewayError, type GatewayError } from '../errors.js'

export function storeUnavailable (cause: unknown): GatewayError {
  return gatewayError('store_unavailable', undefined, { 'retry-after': '1' }, cause)
}

export async function orStoreUnavailable<T> (op: Promise<T>): Promise<T> {
  try {
    return await op
  } catch (err) {
    throw storeUnavailable(err)
  }
}
