// A test that ends without one assertion cannot fail, and tap counts it as passed. This reads tap's
// TAP output (scripts/run-tests.sh writes .tap/output.tap) and names every subtest that ended with
// an implicit plan of zero, i.e. a `1..0` line with no directive: neither skipped nor given
// `{ skip }` / `{ todo }`, it ran and asserted nothing (a loop over an empty list, an assertion
// behind a condition that did not hold, a callback that was never called).
// Usage: node scripts/empty-subtests.mjs .tap/output.tap   (prints one name a line; exit 1 when any)
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

/**
 * The names of the subtests of `tap` (TAP text) that asserted nothing, as "file > test > subtest".
 * @param {string} tap
 * @returns {string[]}
 */
export function emptySubtests (tap) {
  const lines = tap.split('\n')
  /** @type {string[]} the open `# Subtest:` names, one per indentation level */
  const open = []
  /** @type {string[]} */
  const empty = []
  for (const [i, line] of lines.entries()) {
    const subtest = /^( *)# Subtest: (.*)$/.exec(line)
    if (subtest !== null) {
      open.length = (subtest[1] ?? '').length / 4
      open.push(subtest[2] ?? '')
      continue
    }
    const plan = /^( *)1\.\.0\s*$/.exec(line)
    if (plan === null) continue
    const depth = (plan[1] ?? '').length / 4
    // The plan line sits inside the subtest it closes: its `# Subtest:` is one level up.
    const name = open.slice(0, depth).join(' > ')
    // The next result line names the test; a plan of zero inside the output of a test that was
    // reported as skipped or todo is no finding.
    const result = lines.slice(i + 1).find((l) => /^ *(not )?ok \d+/.test(l)) ?? ''
    if (/# (SKIP|TODO)\b/i.test(result)) continue
    empty.push(name === '' ? '(the top-level test)' : name)
  }
  return empty
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2]
  if (file === undefined) throw new Error('usage: node scripts/empty-subtests.mjs <tap output file>')
  const empty = emptySubtests(readFileSync(file, 'utf8'))
  for (const name of empty) console.log(name)
  process.exitCode = empty.length === 0 ? 0 : 1
}
