// The wrapper's option tables (options.js), which refuse unknown options, list
// exactly the fields of the option types (options.d.ts): both are generated
// from one table, which the generator checks against the core's schema.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { test } from 'node:test'

const require = createRequire(import.meta.url)
const { specs } = require('../options.js')
const dts = ['../options.d.ts', '../index.d.ts'].map((f) => readFileSync(new URL(f, import.meta.url), 'utf8')).join('\n')

/** The field names of `export interface <name>…{ … }` in index.d.ts (and `signal` if it extends WaitOptions). */
function fields(name) {
  const start = dts.search(new RegExp(`export interface ${name}[ <]`))
  assert.ok(start >= 0, `index.d.ts declares ${name}`)
  const header = dts.slice(start, dts.indexOf('\n', start))
  const body = dts.slice(start, dts.indexOf('\n}', start))
  const names = [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1])
  if (header.includes(' extends WaitOptions ')) names.push('signal')
  return names.sort()
}

const keys = (o) => Object.keys(o).sort()

test('the option tables match the generated option types', () => {
  assert.deepEqual(keys(specs.manager), fields('ManagerOptions'))
  assert.deepEqual(keys(specs.run), [...fields('TaskOptions'), ...fields('ProcessOptions')].sort())
  assert.deepEqual(keys(specs.spawn), [...fields('TaskOptions'), 'kind'].sort())
  assert.deepEqual(keys(specs.toolBox), fields('ToolBoxOptions'))
  assert.deepEqual(keys(specs.list), fields('ListFilter'))
  // The options of the other calls.
  assert.deepEqual(keys(specs.poll), fields('PollOptions'))
  assert.deepEqual(keys(specs.preview), fields('PreviewOptions'))
  assert.deepEqual(keys(specs.collect), fields('CollectOptions'))
  assert.deepEqual(keys(specs.waitFor), fields('WaitForOptions'))
  assert.deepEqual(keys(specs.cancel), fields('CancelOptions'))
  assert.deepEqual(keys(specs.closeOwner), fields('CloseOwnerOptions'))
  assert.deepEqual(keys(specs.gc), fields('GcOptions'))
  assert.deepEqual(keys(specs.output), fields('OutputOptions'))
  assert.deepEqual(keys(specs.waitForeground), fields('WaitOptions'))
  assert.deepEqual(keys(specs.agent), fields('AgentDefinition'))
  assert.deepEqual(keys(specs.acp), fields('AcpOptions'))
})
