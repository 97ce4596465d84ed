/**
 * The test tiers (docs/testing.md): `make check` runs the suite with TEST_TIER=check, `make test`
 * without. A soak inside a file the fast tier otherwise runs takes `makeTestOnly(why)` as its
 * options: skipped, with the reason, in the fast tier.
 */
export function makeTestOnly (why: string): { skip: string | false } {
  return { skip: process.env.TEST_TIER === 'check' ? `make test only: ${why}` : false }
}
