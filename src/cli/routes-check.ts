/**
 * `npm run routes:check -- FILE...`: checks routes files offline, exactly as the gateway does at
 * start-up and on reload (src/proxy/routes-file.ts), for CI pipelines and reviews. One line per
 * problem on stderr and exit status 1; nothing printed and 0 when every file is valid. `${NAME}`
 * in urls is resolved from this process's environment (USERS_URL and ORDERS_URL default as in the
 * gateway); nothing is contacted and no resolved value is printed.
 */
import { DEMO_URL_DEFAULTS, readRoutesFileSync, RoutesFileError } from '../proxy/routes-file.js'

const files = process.argv.slice(2)
if (files.length === 0) {
  process.stderr.write('usage: npm run routes:check -- FILE [FILE...]\n')
  process.exit(2)
}

const vars: Record<string, string> = { ...DEMO_URL_DEFAULTS }
for (const [name, value] of Object.entries(process.env)) if (name.endsWith('_URL') && value !== undefined && value !== '') vars[name] =
  value

let failed = false
for (const file of files) {
  try {
    readRoutesFileSync(file, { vars })
  } catch (err) {
    if (!(err instanceof RoutesFileError)) throw err
    for (const line of err.problems) process.stderr.write(line + '\n')
    failed = true
  }
}
process.exit(failed ? 1 : 0)
