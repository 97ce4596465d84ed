/** Reading the gateway's /metrics in tests. */

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
export function sample (text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels === '' ? ' ' : `{${labels}} `}`))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

/** Whether the gateway at `baseUrl` reaches Redis (`gateway_redis_up` 1); readiness no longer says. */
export async function redisUp (baseUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(3000) })
    return res.status === 200 && sample(await res.text(), 'gateway_redis_up') === 1
  } catch {
    return false
  }
}
