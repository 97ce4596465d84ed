/**
 * The repository is its own reference: no tracked file cites a document a clone does not have
 * (a contract file outside the repository, or its numbered sections). Comments and docs cite the
 * repository's own pages instead (docs/*.md). This file is the one exception, since it names the
 * patterns it looks for.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../..')
const SELF = 'test/unit/repository-references.test.ts'

const NUMBER = String.raw`\d{1,2}(?:\.\d{1,2})?`
const NUMBERS = String.raw`${NUMBER}(?:(?:,\s*|\s+and\s+)${NUMBER})*`

/** Each pattern, and what it catches. */
const CITATIONS: ReadonlyArray<[RegExp, string]> = [
  [/CONTRACT\.md/i, 'the contract file'],
  [/\.\.\/shared(?!\/[\w-]+\.(?:js|mjs|ts)\b)/, 'a path outside the repository (../shared)'],
  [new RegExp(String.raw`\bcontract(?:'s)?\s+(?:sections?\s+|§\s*)?${NUMBERS}(?![\d.]*\d)`, 'i'), 'a numbered contract section'],
  [new RegExp(String.raw`\bsections?\s+${NUMBERS}\s+of\s+the\s+contract`, 'i'), 'a numbered contract section']
]

/** "section N" alone, unless it is a section of an RFC named right before or after it. */
const BARE_SECTION = new RegExp(String.raw`(?:\bsections?\s+|§\s*)${NUMBERS}\b`, 'gi')

function bareSectionCitations (text: string): string[] {
  const found: string[] = []
  for (const m of text.matchAll(BARE_SECTION)) {
    const before = text.slice(Math.max(0, m.index - 40), m.index)
    const after = text.slice(m.index + m[0].length, m.index + m[0].length + 20)
    if (/RFC\s*\d+\W{0,3}(?:\w+\W{1,3}){0,2}$/i.test(before) || /^\s*(?:of\s+)?(?:the\s+)?RFC/i.test(after)) continue
    found.push(m[0])
  }
  return found
}

function citationsIn (text: string): string[] {
  const found: string[] = []
  for (const [pattern, what] of CITATIONS) {
    const m = pattern.exec(text)
    if (m !== null) found.push(`${what}: "${m[0]}"`)
  }
  for (const s of bareSectionCitations(text)) found.push(`a bare section number: "${s}"`)
  return found
}

function trackedTextFiles (): string[] {
  return execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    .split('\0')
    .filter((f) => f !== '' && f !== SELF && f !== 'package-lock.json')
    .filter((f) => !/\.(?:png|jpe?g|gif|ico|woff2?|gz|tgz)$/i.test(f))
}

t.test('no tracked file cites the contract outside the repository', async (t) => {
  const files = trackedTextFiles()
  t.ok(
    files.includes('README.md') && files.includes('src/app.ts') && files.some((f) => f.startsWith('docs/')),
    'the tracked files are found'
  )
  const offenders: string[] = []
  for (const file of files) {
    const lines = readFileSync(join(root, file), 'utf8').split('\n')
    lines.forEach((line, i) => {
      for (const c of citationsIn(line)) offenders.push(`${file}:${i + 1}: ${c}`)
      // A citation wrapped onto the next line ("contract\n * section 9")
      const next = (lines[i + 1] ?? '').replace(/^\s*(?:\*|\/\/|#)?\s*/, '')
      if (citationsIn(next).length === 0 && citationsIn(line).length === 0) {
        for (const c of citationsIn(`${line} ${next}`)) offenders.push(`${file}:${i + 1}-${i + 2}: ${c}`)
      }
    })
  }
  t.same(offenders, [], 'cite a file of the repository (docs/*.md) instead')
})

t.test('the patterns catch each form of citation and leave RFC sections alone', async (t) => {
  const cited = [
    'The external contract is `../shared/CONTRACT.md`.',
    'Live user state (contract section 10): the copy',
    'Rotation (contract 4.2), with the grace window',
    'Contract sections 5 and 10 make every request',
    'as section 9 of the contract says',
    '// Section 9: the gateway\'s own routes',
    'Limits high enough (section 6 has its own tests)'
  ]
  for (const line of cited) t.not(citationsIn(line).length, 0, line)
  const fine = [
    "import { startStub } from '../shared/stub-server.js'",
    'client credentials (RFC 6749 section 4.4), never a password',
    'errors are RFC 6749 section 5.2 JSON',
    'as section 3.1 of RFC 6749 says',
    'the cut-over exchange (docs/simplejwt-api.md)',
    "the contract's one Redis round trip"
  ]
  for (const line of fine) t.same(citationsIn(line), [], line)
})
