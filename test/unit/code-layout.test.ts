/**
 * The code-layout map (docs/code-layout.md) cannot drift: every folder of the repository that the
 * map must cover has a row, and every folder the map names exists. Folders come from `git
 * ls-files`, so what is generated or ignored (dist/, node_modules/, .tools/) never counts.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../..')

function trackedFolders (): Set<string> {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    .split('\0').filter((f) => f !== '')
  const folders = new Set<string>()
  for (const file of files) {
    const parts = file.split('/')
    for (let depth = 1; depth < parts.length; depth++) folders.add(parts.slice(0, depth).join('/') + '/')
  }
  return folders
}

/** The folders the map must list: the top-level ones, the ones right below each, and all of src/. */
function foldersToMap (all: Set<string>): string[] {
  return [...all].filter((folder) => {
    if (folder.startsWith('.')) return false
    const depth = folder.split('/').length - 1
    return depth <= 2 || folder.startsWith('src/')
  }).sort()
}

/** The folders named in the first column of the map's tables. */
function mappedFolders (): Set<string> {
  const page = readFileSync(join(root, 'docs/code-layout.md'), 'utf8')
  const named = new Set<string>()
  for (const line of page.split('\n')) {
    if (!line.startsWith('| `')) continue
    const firstCell = line.split('|')[1] ?? ''
    for (const m of firstCell.matchAll(/`([^`]+\/)`/g)) named.add(m[1]!)
  }
  return named
}

t.test('docs/code-layout.md names every folder of the repository, and only real ones', async (t) => {
  const all = trackedFolders()
  const mapped = mappedFolders()
  const required = foldersToMap(all)
  t.ok(required.includes('src/routes/oauth/') && required.includes('test/unit/') && required.includes('web/admin/'),
    'the folders to map are found')
  t.same(required.filter((folder) => !mapped.has(folder)), [], 'every folder has a row in docs/code-layout.md')
  t.same([...mapped].filter((folder) => !all.has(folder)).sort(), [], 'every folder of docs/code-layout.md exists')
})

t.test('the check notices a missing row and a folder that does not exist', async (t) => {
  const required = foldersToMap(new Set([
    'src/',
    'src/routes/',
    'src/routes/new-area/',
    'deploy/',
    'deploy/edge/',
    'deploy/edge/nginx/',
    '.ci/'
  ]))
  t.same(required, ['deploy/', 'deploy/edge/', 'src/', 'src/routes/', 'src/routes/new-area/'],
    'every depth of src/, two levels elsewhere, no hidden folder')
  const mapped = mappedFolders()
  t.notOk(mapped.has('src/routes/new-area/'), 'a new folder would be reported missing')
  t.notOk(trackedFolders().has('src/no-such-folder/'), 'a row for a folder that is gone would be reported')
})
