#!/usr/bin/env node
'use strict'
// Extracts every JavaScript and TypeScript block (```js, ```mjs, ```ts) of
// the READMEs into test/types/readme/, one module a block, so that
// `npm run typecheck` checks them with `tsc --strict` against the package's
// own types (test/types/tsconfig.readme.json). A block that uses `require`
// becomes a CommonJS module (.cts), any other an ES module (.mts, top-level
// await allowed). Names a snippet leaves to the reader (`model`, the host's
// LLM client) are declared in test/types/readme-globals.d.ts.
const { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } = require('node:fs')
const { join, relative } = require('node:path')

const packageDir = join(__dirname, '..')
const readmes = [join(packageDir, '..', 'README.md'), join(packageDir, 'README.md')].filter((p) => existsSync(p))
const out = join(packageDir, 'test', 'types', 'readme')
rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })

const FENCE = /^```(js|javascript|mjs|cjs|ts|typescript)\s*$/
let count = 0
for (const readme of readmes) {
  const lines = readFileSync(readme, 'utf8').split('\n')
  const name = relative(join(packageDir, '..'), readme).replace(/[^A-Za-z0-9]+/g, '-').replace(/-md$/, '')
  for (let i = 0; i < lines.length; i++) {
    if (!FENCE.test(lines[i])) continue
    const start = i + 1
    let end = start
    while (end < lines.length && !lines[end].startsWith('```')) end++
    const body = lines.slice(start, end).join('\n')
    const commonjs = /\brequire\(/.test(body)
    const file = join(out, `${name}-line-${start}.${commonjs ? 'cts' : 'mts'}`)
    // `export {}` keeps a block without imports a module of its own.
    writeFileSync(file, `// ${relative(packageDir, readme)}, line ${start}\n${body}\n${commonjs ? '' : 'export {}\n'}`)
    count++
    i = end
  }
}
if (count === 0) {
  console.error('readme-snippets: no js/ts block found in', readmes.join(', '))
  process.exit(1)
}
console.log(`readme-snippets: ${count} blocks written to ${relative(packageDir, out)}`)
