// The TypeScript types of the values (types.d.ts, generated from the core's
// JSON Schema in schema/ by scripts/gen_node_types.py) are current and agree
// with schema/ (field names in camelCase, the same required and optional
// fields, the same enum values), index.d.ts exports them, and the objects
// the binding returns have the fields their types declare.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { manager } from './helpers.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const dts = readFileSync(join(here, '..', 'types.d.ts'), 'utf8')
const schemaDir = join(here, '..', '..', 'schema')
const schema = (name) => JSON.parse(readFileSync(join(schemaDir, `${name}.json`), 'utf8'))

const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase())

/** Fields of `export interface Name { ... }`: name -> optional? */
function tsInterface(name) {
  const m = new RegExp(`export interface ${name} \\{([\\s\\S]*?)\\n\\}`).exec(dts)
  assert.ok(m, `index.d.ts declares interface ${name}`)
  const body = m[1].replace(/\/\*\*[\s\S]*?\*\//g, '')
  const fields = new Map()
  for (const line of body.split('\n')) {
    const f = /^\s*(\w+)(\??):/.exec(line)
    if (f) fields.set(f[1], f[2] === '?')
  }
  return fields
}

/** Fields of a JSON Schema object: camelCased name -> optional? */
function schemaObject(s) {
  const required = new Set(s.required ?? [])
  return new Map(Object.keys(s.properties ?? {}).map((k) => [camel(k), !required.has(k)]))
}

/** The string values of `export type Name = 'a' | 'b'`. */
function tsUnion(name) {
  const m = new RegExp(`export type ${name} = ([^\\n]+)`).exec(dts)
  assert.ok(m, `index.d.ts declares type ${name}`)
  return [...m[1].matchAll(/'([^']+)'/g)].map((x) => x[1]).sort()
}

function schemaEnum(s) {
  if (s.enum) return [...s.enum].sort()
  return s.oneOf.map((o) => o.const ?? o.enum?.[0]).sort()
}

test('types.d.ts is what scripts/gen_node_types.py makes of schema/, and index.d.ts exports it', () => {
  execFileSync('python3', [join(here, '..', '..', 'scripts', 'gen_node_types.py'), '--check'], { stdio: 'inherit' })
  assert.match(readFileSync(join(here, '..', 'index.d.ts'), 'utf8'), /^export \* from '\.\/types\.js'$/m)
})

const objects = [
  // [TypeScript interface, schema file, $def or null, extra fields the binding adds]
  ['TaskInfo', 'task_info', null, []],
  ['OutputStats', 'task_info', 'OutputStats', []],
  ['ExitInfo', 'task_info', 'ExitInfo', []],
  ['CancelReason', 'cancel_reason', null, []],
  ['TaskResult', 'task_result', null, []],
  ['ChangedFiles', 'changed_files', null, []],
  ['Notification', 'notification', null, []],
  ['PollResponse', 'poll_response', null, ['data']],
  ['StreamSpan', 'poll_response', 'StreamSpan', []],
  ['Preview', 'preview', null, ['text']],
]

for (const [ts, file, def, extra] of objects) {
  test(`${ts} agrees with schema/${file}.json${def ? ` ($defs/${def})` : ''}`, () => {
    const root = schema(file)
    const s = def ? root.$defs[def] : root
    const expected = schemaObject(s)
    for (const name of extra) expected.set(name, false)
    assert.deepEqual(
      [...tsInterface(ts)].sort(),
      [...expected].sort(),
      'the same fields, with the same optionality',
    )
  })
}

for (const [ts, file, def] of [
  ['TaskStatus', 'task_info', 'TaskStatus'],
  ['CancelKind', 'cancel_reason', 'CancelKind'],
  ['NotificationKind', 'notification', 'NotificationKind'],
]) {
  test(`${ts} has the values of schema/${file}.json $defs/${def}`, () => {
    assert.deepEqual(tsUnion(ts), schemaEnum(schema(file).$defs[def]))
  })
}

test('TaskEvent and EventItem agree with schema/event.json and event_item.json', () => {
  const event = schema('event')
  const base = tsInterface('EventBase')
  assert.deepEqual([...base].sort(), [...schemaObject(event)].sort())
  const union = /export type TaskEvent = EventBase &([\s\S]*?)\n\n/.exec(dts)[1]
  const members = union.split(/\n\s*\| /).filter((m) => m.includes("type: '"))
  const variants = event.oneOf
  assert.equal(members.length, variants.length, 'one union member per event type')
  for (const v of variants) {
    const type = v.properties.type.const
    const member = members.find((m) => m.includes(`type: '${type}'`))
    assert.ok(member, `TaskEvent has ${type}`)
    const fields = new Map([...member.matchAll(/(\w+)(\??): /g)].map((x) => [x[1], x[2] === '?']))
    assert.deepEqual([...fields].sort(), [...schemaObject(v)].sort(), `fields of ${type}`)
  }
  const item = schema('event_item')
  const tags = item.oneOf.map((o) => o.properties.item.const).sort()
  assert.deepEqual(tags, ['event', 'lagged'])
  assert.match(dts, /export type EventItem = \(\{ item: 'event' \} & TaskEvent\) \| \{ item: 'lagged'; missed: number \}/)
})

test('returned objects carry exactly the declared fields', async (t) => {
  const m = manager(t)
  const h = m.run('echo hi; exit 1', { background: true })
  const done = await h.collect()
  const declared = (name) => new Set(tsInterface(name).keys())
  const check = (name, obj) => {
    for (const key of Object.keys(obj)) assert.ok(declared(name).has(key), `${name}.${key} is declared`)
    for (const [key, optional] of tsInterface(name)) if (!optional) assert.ok(key in obj, `${name}.${key} is present`)
  }
  check('TaskResult', done.result)
  check('OutputStats', done.result.output)
  check('ExitInfo', done.result.exit)
  const info = m.info(h)
  check('TaskInfo', info)
  const page = m.poll(h)
  check('PollResponse', page)
  for (const span of page.spans) check('StreamSpan', span)
  check('Preview', m.preview(h))
  const [n] = m.notifications()
  check('Notification', n)
})
