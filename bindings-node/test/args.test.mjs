// The wrapper's option tables (options.js), which refuse unknown options, list
// exactly the fields of the native option objects whose TypeScript types
// napi-rs generates from the Rust structs: a field added in Rust and not in
// the table (or the reverse) fails here, not in a user's call.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { test } from 'node:test'

const require = createRequire(import.meta.url)
const { specs, taskOptions, processOptions } = require('../options.js')
const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8')

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
  assert.deepEqual(keys(taskOptions), fields('TaskOptions'))
  assert.deepEqual(keys(processOptions), fields('ProcessOptions'))
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
