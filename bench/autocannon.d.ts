/** The little of autocannon@8 the proxy benchmark uses (the package ships no types). */
declare module 'autocannon' {
  export interface Options {
    url: string
    connections?: number
    duration?: number
    pipelining?: number
    method?: string
    headers?: Record<string, string>
    timeout?: number
    /** Requests per second over all connections (open loop); unset: as fast as possible. */
    overallRate?: number
    /** Called before each request; may change its headers (the soak rotates tokens this way). */
    requests?: Array<{ method?: string, path?: string, setupRequest?: (req: RequestParams) => RequestParams }>
  }

  export interface RequestParams {
    method?: string
    path?: string
    headers?: Record<string, string>
    [key: string]: unknown
  }

  export interface Histogram {
    average: number
    stddev: number
    min: number
    max: number
    total: number
    p50: number
    p90: number
    p99: number
    [percentile: string]: number
  }

  export interface Result {
    url: string
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    '2xx': number
    requests: Histogram & { sent: number }
    latency: Histogram
    throughput: Histogram
    statusCodeStats: Record<string, { count: number }>
  }

  export default function autocannon (opts: Options): Promise<Result> & { stop: () => void }
}
