/** The bench's reading of `wrk --latency` output (bench/latency-client.ts): times in us, ms and s, errors. */
import t from 'tap'
import { parseWrk, wrkMicros } from '../../bench/latency-client.js'

const QUIET_RUN = `Running 5s test @ http://127.0.0.1:41234/api/orders
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   151.83us   45.32us   3.21ms   97.12%
    Req/Sec     6.55k   312.45     6.91k    86.00%
  Latency Distribution
     50%  143.00us
     75%  151.00us
     90%  165.00us
     99%  310.00us
  32610 requests in 5.00s, 7.81MB read
Requests/sec:   6521.43
Transfer/sec:      1.56MB
`

const BAD_RUN = `Running 2s test @ http://127.0.0.1:41234/api/orders
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms    2.01ms   1.01s    99.00%
    Req/Sec     4.10k   200.00     4.50k    70.00%
  Latency Distribution
     50%  800.00us
     75%    1.10ms
     90%    1.50ms
     99%   12.34ms
  8200 requests in 2.00s, 1.90MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 17
Requests/sec:   4100.00
Transfer/sec:    950.00KB
`

// As wrk 4.1.0 (Debian) prints it on a busy machine.
const DEBIAN_RUN = `Running 1s test @ http://127.0.0.1:43001/x
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.71ms   22.85ms 126.96ms   88.63%
    Req/Sec     1.22k     1.59k    5.31k    90.00%
  Latency Distribution
     50%    0.88ms
     75%   12.03ms
     90%   40.59ms
     99%  108.64ms
  1221 requests in 1.02s, 147.86KB read
Requests/sec:   1199.12
Transfer/sec:    145.21KB
`

t.test('wrk times in microseconds', async (t) => {
  t.equal(wrkMicros('143.00us'), 143)
  t.equal(wrkMicros('1.10ms'), 1100)
  t.equal(wrkMicros('1.01s'), 1_010_000)
  t.equal(wrkMicros('2.00m'), 120_000_000)
  t.throws(() => wrkMicros('12.0KB'), /not a wrk time/)
})

t.test('a clean run', async (t) => {
  const r = parseWrk(QUIET_RUN, 1)
  t.match(r, { tool: 'wrk', connections: 1, requests: 32610, rps: 6521.43, p50: 143, p90: 165, p99: 310, non2xx: 0, socketErrors: 0 })
  t.equal(r.max, 3210)
})

t.test('wrk 4.1.0 output', async (t) => {
  t.match(parseWrk(DEBIAN_RUN, 1), { requests: 1221, rps: 1199.12, p50: 880, p90: 40_590, p99: 108_640, max: 126_960, non2xx: 0,
    socketErrors: 0 })
})

t.test('a run with errors and millisecond percentiles', async (t) => {
  const r = parseWrk(BAD_RUN, 8)
  t.match(r, { connections: 8, requests: 8200, p50: 800, p90: 1500, p99: 12340, max: 1_010_000, non2xx: 17, socketErrors: 3 })
})

t.test('output without a latency distribution is refused', async (t) => {
  t.throws(() => parseWrk(QUIET_RUN.replace(/ {2}Latency Distribution[\s\S]*?(?= {2}\d+ requests)/, ''), 1), /without its 50% latency/)
})
