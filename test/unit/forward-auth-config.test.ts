/** FORWARD_AUTH_PROXIES: entries `IP-or-CIDR=style`; anything else refuses start-up naming the variable. */
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { styleOf } from '../../src/forward-auth/proxy-list.js'

t.test('off by default; addresses and ranges with their styles', async (t) => {
  t.same(loadConfig({}).forwardAuthProxies, [])
  const proxies = loadConfig({
    FORWARD_AUTH_PROXIES: '10.0.0.0/8=ingress-nginx, ' +
      '127.0.0.1=nginx,::1=caddy,192.168.1.5=envoy,172.16.0.0/12=traefik' }).forwardAuthProxies
  t.equal(styleOf(proxies, '10.2.3.4'), 'ingress-nginx')
  t.equal(styleOf(proxies, '127.0.0.1'), 'nginx')
  t.equal(styleOf(proxies, '::ffff:127.0.0.1'), 'nginx', 'an IPv4-mapped peer')
  t.equal(styleOf(proxies, '::1'), 'caddy')
  t.equal(styleOf(proxies, '172.20.0.1'), 'traefik')
  t.equal(styleOf(proxies, '127.0.0.2'), undefined, 'not listed')
  t.equal(styleOf(proxies, undefined), undefined)
})

t.test('overlapping entries of one style, and disjoint ones, are accepted', async (t) => {
  const proxies = loadConfig({ FORWARD_AUTH_PROXIES: '10.0.0.0/8=nginx,10.1.2.3=nginx,11.0.0.0/8=caddy,::1=caddy,127.0.0.1=envoy' })
    .forwardAuthProxies
  t.equal(proxies.length, 5)
  t.equal(styleOf(proxies, '10.1.2.3'), 'nginx')
  t.equal(styleOf(proxies, '11.1.1.1'), 'caddy')
})

t.test('a bad entry refuses start-up with a one-line message naming the variable', async (t) => {
  for (const bad of ['127.0.0.1', '127.0.0.1=apache', '=nginx', '300.1.1.1=nginx', '10.0.0.0/33=nginx', 'example.com=caddy',
    '127.0.0.1=nginx,10.0.0.1=Traefik', '10.0.0.0/8=nginx,10.1.2.3=traefik', '10.1.0.0/16=caddy,10.0.0.0/8=envoy',
    '127.0.0.1=nginx,::ffff:127.0.0.1=caddy', '::ffff:10.0.0.0/104=nginx,10.1.1.1=caddy']) {
    let caught: unknown
    try { loadConfig({ FORWARD_AUTH_PROXIES: bad }) } catch (err) { caught = err }
    t.ok(caught instanceof ConfigError && caught.variable === 'FORWARD_AUTH_PROXIES' && caught.message.startsWith('FORWARD_AUTH_PROXIES: ')
      && !caught.message.includes('\n'), `${bad}: ${String(caught)}`)
  }
})
