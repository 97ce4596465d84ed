/**
 * The client key of per-IP limits (docs/abuse-protection.md, issue "abuse protection"): an IPv4 client
 * is itself, an IPv4-mapped IPv6 address is its IPv4 address in any notation, and an IPv6 client
 * is bucketed by its /64 whatever the notation (compressed, expanded, upper case, zone id,
 * embedded dotted quad).
 */
import t from 'tap'
import { clientBucket } from '../../src/limits/client-ip.js'

t.test('IPv4 addresses are their own bucket', async (t) => {
  t.equal(clientBucket('127.0.0.1'), '127.0.0.1')
  t.equal(clientBucket('203.0.113.5'), '203.0.113.5')
  t.not(clientBucket('203.0.113.5'), clientBucket('203.0.113.6'), 'neighbouring IPv4 clients are different clients')
})

t.test('an IPv4-mapped IPv6 address is the same client as its IPv4 address', async (t) => {
  t.equal(clientBucket('::ffff:10.0.0.1'), '10.0.0.1')
  t.equal(clientBucket('::FFFF:10.0.0.1'), '10.0.0.1', 'upper case')
  t.equal(clientBucket('::ffff:127.0.0.1'), clientBucket('127.0.0.1'))
  t.equal(clientBucket('0:0:0:0:0:ffff:10.0.0.1'), '10.0.0.1', 'expanded with a dotted quad')
  t.equal(clientBucket('::ffff:a00:1'), '10.0.0.1', 'hex notation')
  t.equal(clientBucket('0000:0000:0000:0000:0000:ffff:0a00:0001'), '10.0.0.1', 'fully expanded hex notation')
  t.not(clientBucket('::ffff:10.0.0.1'), clientBucket('::ffff:10.0.0.2'), 'different mapped clients stay apart')
})

t.test('IPv6 clients are bucketed by /64', async (t) => {
  const a = clientBucket('2001:db8::1')
  t.equal(a, '2001:0db8:0000:0000::/64')
  t.equal(clientBucket('2001:db8::2'), a, 'another host of the same /64')
  t.equal(clientBucket('2001:db8::ffff:ffff:ffff:ffff'), a, 'the last host of the /64')
  t.equal(clientBucket('2001:DB8::1'), a, 'upper case')
  t.equal(clientBucket('2001:0db8:0000:0000:0000:0000:0000:0001'), a, 'fully expanded')
  t.equal(clientBucket('2001:db8:0:0:1::'), a, 'compressed at the end')
  t.equal(clientBucket('2001:db8::1%eth0'), a, 'a zone id is ignored')
  t.not(clientBucket('2001:db8:0:1::1'), a, 'the neighbouring /64 is another client')
  t.not(clientBucket('2001:db9::1'), a)
  t.equal(clientBucket('::1'), '0000:0000:0000:0000::/64', 'loopback')
  t.equal(clientBucket('fe80::1%lo0'), 'fe80:0000:0000:0000::/64')
})

t.test('an embedded dotted quad does not shift the /64', async (t) => {
  // 2001::3:4:5:6:1.2.3.4 is 2001:0:3:4:5:6:102:304: the '::' stands for one group, not two.
  t.equal(clientBucket('2001::3:4:5:6:1.2.3.4'), '2001:0000:0003:0004::/64')
  t.equal(clientBucket('2001::3:4:5:6:1.2.3.4'), clientBucket('2001:0:3:4:5:6:102:304'))
  t.equal(clientBucket('64:ff9b::192.0.2.1'), clientBucket('64:ff9b::c000:201'), 'NAT64 prefix: one /64')
  t.not(clientBucket('64:ff9b::192.0.2.1'), '192.0.2.1', 'only ::ffff:0:0/96 is IPv4-mapped')
})

t.test('the bucket of every notation of one address is the same', async (t) => {
  const forms = ['2001:db8:aa:bb::1', '2001:db8:aa:bb:0:0:0:1', '2001:0DB8:00AA:00BB::0001', '2001:db8:aa:bb::0.0.0.1']
  const buckets = new Set(forms.map(clientBucket))
  t.equal(buckets.size, 1, [...buckets].join(' '))
  t.equal([...buckets][0], '2001:0db8:00aa:00bb::/64')
})
