// How tap runs the .ts tests (.taprc: `node-arg`, with `type-strip-only` so that tap's ts-node
// loader stays out): each TypeScript module is transpiled by esbuild (already a dev dependency, for
// the browser bundles) in the test's own thread, with an inline source map for stack traces and
// coverage. Transpile only, as before; `make check` and `make test` type-check with tsc separately.
// An import of `./x.js` from a TypeScript module loads `./x.ts` (the NodeNext spelling the sources use).
import { existsSync, readFileSync } from 'node:fs'
import { registerHooks } from 'node:module'
import { fileURLToPath } from 'node:url'
import { transformSync } from 'esbuild'

/** @type {import('esbuild').TransformOptions['tsconfigRaw']} */
const tsconfigRaw = { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } }

registerHooks({
  resolve (specifier, context, nextResolve) {
    const parent = context.parentURL
    if (parent !== undefined && parent.endsWith('.ts') && specifier.endsWith('.js') &&
      (specifier.startsWith('./') || specifier.startsWith('../'))) {
      const url = new URL(`${specifier.slice(0, -3)}.ts`, parent)
      if (existsSync(url)) return { url: url.href, format: 'module', shortCircuit: true }
    }
    return nextResolve(specifier, context)
  },
  load (url, context, nextLoad) {
    if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context)
    const file = fileURLToPath(url)
    const { code } = transformSync(readFileSync(file, 'utf8'), {
      loader: 'ts', format: 'esm', target: 'node24', sourcemap: 'inline', sourcefile: file, tsconfigRaw
    })
    return { format: 'module', source: code, shortCircuit: true }
  }
})
