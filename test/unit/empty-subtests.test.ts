/**
 * scripts/empty-subtests.mjs, which scripts/run-tests.sh runs over tap's output: a subtest that ran
 * and asserted nothing is named (the run fails); a skipped, todo or asserting one is not.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { emptySubtests } from '../../scripts/empty-subtests.mjs'

const root = resolve(import.meta.dirname, '../..')

// The shape of `tap --reporter=tap`: a file is a subtest of the run, its tests subtests of the file.
const run = [
  'TAP version 14',
  '# Subtest: test/integration/a.test.ts',
  '    # Subtest: asserts',
  '        ok 1 - should be equal',
  '        1..1',
  '    ok 1 - asserts # time=3ms',
  '    ',
  '    # Subtest: loops over nothing',
  '        1..0',
  '    ok 2 - loops over nothing # time=1ms',
  '    ',
  '    # Subtest: a group',
  '        # Subtest: inner, empty',
  '            1..0',
  '        ok 1 - inner, empty # time=0ms',
  '        ',
  '        1..1',
  '    ok 3 - a group # time=1ms',
  '    ',
  '    ok 4 - counted with MONITOR # SKIP on a single Redis only',
  '    # Subtest: skipped from inside',
  '        1..0',
  '    ok 5 - skipped from inside # SKIP not here',
  '    ',
  '    1..5',
  'ok 1 - test/integration/a.test.ts # time=900ms',
  '',
  '# Subtest: test/unit/nothing.test.ts',
  '    1..0 # no tests found',
  'ok 2 - test/unit/nothing.test.ts # SKIP no tests found',
  '',
  '1..2',
  '# { total: 6, pass: 6 }'
].join('\n')

t.test('names every subtest that ended with a plan of zero, and only those', async (t) => {
  t.same(emptySubtests(run), [
    'test/integration/a.test.ts > loops over nothing',
    'test/integration/a.test.ts > a group > inner, empty'
  ])
  t.same(emptySubtests(run.replace(/^ *1\.\.0$/gm, (l) => l.replace('1..0', '1..1'))), [], 'nothing once each asserts')
})

t.test('the command prints the names and exits 1; 0 on a clean run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-empty-subtests-'))
  writeFileSync(join(dir, 'dirty.tap'), run)
  writeFileSync(join(dir, 'clean.tap'), run.replace(/^( *)1\.\.0$/gm, '$11..1'))
  const dirty = spawnSync(process.execPath, ['scripts/empty-subtests.mjs', join(dir, 'dirty.tap')], { cwd: root, encoding: 'utf8' })
  t.equal(dirty.status, 1)
  t.equal(dirty.stdout, 'test/integration/a.test.ts > loops over nothing\ntest/integration/a.test.ts > a group > inner, empty\n')
  const clean = spawnSync(process.execPath, ['scripts/empty-subtests.mjs', join(dir, 'clean.tap')], { cwd: root, encoding: 'utf8' })
  t.same([clean.status, clean.stdout], [0, ''])
})
