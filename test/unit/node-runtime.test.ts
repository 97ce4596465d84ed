/**
 * One Node version for the whole project: .node-version (what scripts/ensure-node.sh installs and
 * scripts/podman/build-image.sh passes to the image) agrees with the Dockerfile's default, with
 * `engines` and with @types/node; and the suite itself runs on that release line.
 */
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ROOT } from '../helpers/processes.js'

t.test('the Node version is named once and used everywhere', async (t) => {
  const version = (await readFile(join(ROOT, '.node-version'), 'utf8')).trim()
  t.match(version, /^\d+\.\d+\.\d+$/, '.node-version is an exact version')
  const major = version.split('.')[0]
  t.ok(Number(major) >= 24, `a supported release line (Node ${major})`)

  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8')
  t.equal(/^ARG NODE_VERSION=(\S+)$/m.exec(dockerfile)?.[1], version, 'the Dockerfile\'s default NODE_VERSION')

  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string },
    devDependencies: Record<string, string> }
  t.equal(pkg.engines.node, `>=${major}`, 'engines.node')
  t.match(pkg.devDependencies['@types/node'], new RegExp(`^\\^${major}\\.`), '@types/node of the same major')

  t.equal(process.versions.node.split('.')[0], major, `the suite runs on Node ${major} (make puts .tools/node first on PATH)`)
})
