// The model-facing tools: definitions in three shapes, and ToolBox calls
// (the tools' behaviour is the core's; these check it arrives intact).
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

import { AgentTasksError, TaskManager, ToolBox, toolDefinitions } from 'agent-tasks'
import { manager, waitFor } from './helpers.mjs'

const NAMES = ['task_run', 'task_list', 'task_output', 'task_wait', 'task_cancel', 'task_send']

test('tool definitions in the openai, anthropic and mcp shapes', () => {
  const openai = toolDefinitions('openai')
  assert.deepEqual(openai.map((t) => t.function.name), NAMES)
  for (const t of openai) {
    assert.equal(t.type, 'function')
    assert.equal(typeof t.function.description, 'string')
    assert.equal(t.function.parameters.type, 'object')
  }
  assert.deepEqual(toolDefinitions(), openai, 'openai is the default shape')

  const anthropic = toolDefinitions('anthropic')
  assert.deepEqual(anthropic.map((t) => t.name), NAMES)
  assert.deepEqual(Object.keys(anthropic[0]).sort(), ['description', 'input_schema', 'name'])
  const run = anthropic[0].input_schema
  assert.deepEqual(run.required, ['command'])
  assert.equal(run.properties.command.type, 'string')
  assert.equal(run.properties.timeout.type, 'number')

  const mcp = toolDefinitions('mcp')
  assert.deepEqual(mcp.map((t) => t.name), NAMES)
  assert.deepEqual(Object.keys(mcp[2]).sort(), ['description', 'inputSchema', 'name'])
  assert.deepEqual(mcp[2].inputSchema, openai[2].function.parameters)
  assert.deepEqual(mcp[2].inputSchema.required, ['task_id'])

  // Fresh objects every call: a caller may change them.
  mcp[0].name = 'changed'
  assert.equal(toolDefinitions('mcp')[0].name, 'task_run')
  assert.throws(() => toolDefinitions('gemini'), { code: 'INVALID_ARGUMENT', message: /shape/ })
})

test('ToolBox: task_run in the foreground answers with the result', async (t) => {
  const m = manager(t)
  const tools = new ToolBox(m, 'session-1')
  assert.equal(tools.owner, 'session-1')
  assert.deepEqual(tools.definitions('anthropic'), toolDefinitions('anthropic'))
  const answer = await tools.call('task_run', { command: 'echo hello; echo oops >&2; exit 3', description: 'greet' })
  assert.equal(answer.isError, false)
  assert.deepEqual(Object.keys(answer).sort(), ['isError', 'json', 'text'])
  const id = answer.json.task_id
  assert.match(id, /^process-/)
  assert.equal(answer.json.result.status, 'failed')
  assert.equal(answer.json.result.exit.code, 3)
  assert.equal(answer.json.next_cursor, 11)
  // Metadata first (the id), output last.
  assert.ok(answer.text.indexOf(id) < answer.text.indexOf('hello'), answer.text)
  assert.match(answer.text, /^exit_code: 3$/m)
  assert.match(answer.text, /oops\s*$/)
  const info = m.info(id)
  assert.equal(info.owner, 'session-1')
  assert.equal(info.description, 'greet')
})

test('ToolBox: task_run in the background, then task_output with a cursor', async (t) => {
  const m = manager(t)
  const dir = mkdtempSync(join(tmpdir(), 'agent-tasks-tools-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const tools = new ToolBox(m, 'session-1', { cwd: dir, env: { GREETING: 'two' } })
  const started = await tools.call(
    'task_run',
    // Arguments as a JSON string, as some clients send them.
    JSON.stringify({
      command: 'echo one; while [ ! -e go ]; do sleep 0.02; done; echo "$GREETING"',
      background: true,
      description: 'two steps',
    }),
  )
  assert.equal(started.isError, false, started.text)
  const id = started.json.task_id
  assert.equal(started.json.info.status, 'running')
  assert.match(started.text, /background/)

  await waitFor(() => m.poll(id).text === 'one\n', { what: 'the first line' })
  const first = await tools.call('task_output', { task_id: id, cursor: 0 })
  assert.equal(first.isError, false, first.text)
  assert.deepEqual([first.json.cursor, first.json.next_cursor, first.json.eof], [0, 4, false])
  assert.match(first.text, /one\s*$/)
  assert.match(first.text, /next cursor: 4/)

  const listed = await tools.call('task_list', {})
  assert.match(listed.text, new RegExp(`${id}\\s+running`))
  assert.deepEqual(listed.json.tasks.map((i) => i.id), [id])

  writeFileSync(join(dir, 'go'), '')
  const waited = await tools.call('task_wait', { task_id: id, timeout: 30 })
  assert.equal(waited.json.ended, true, waited.text)
  assert.equal(waited.json.result.status, 'completed')
  const rest = await tools.call('task_output', { task_id: id, cursor: first.json.next_cursor })
  assert.deepEqual([rest.json.cursor, rest.json.next_cursor, rest.json.eof], [4, 8, true])
  assert.match(rest.text, /two\s*$/)
  assert.doesNotMatch(rest.text, /^one$/m, 'only what is new')
})

test('ToolBox: errors name the problem and never reject', async (t) => {
  const m = manager(t)
  const tools = new ToolBox(m, 'session-1')
  // (A foreground task that ended without being detached is not listed.)
  const mine = await tools.call('task_run', { command: 'true', background: true })
  const theirs = m.run('true', { owner: 'someone-else', background: true })
  await theirs.collect()

  const unknownId = await tools.call('task_output', { task_id: 'process-nosuchtask' })
  assert.equal(unknownId.isError, true)
  assert.equal(unknownId.json.error.code, 'TASK_NOT_FOUND')
  assert.match(unknownId.text, /^error: no task with id `process-nosuchtask`/)
  assert.ok(unknownId.text.includes(mine.json.task_id), 'the answer lists the ids that exist')
  // Another owner's task is invisible.
  const other = await tools.call('task_wait', { task_id: theirs.id })
  assert.equal(other.json.error.code, 'TASK_NOT_FOUND')
  assert.ok(!other.text.includes(`your tasks are: ${theirs.id}`))

  const wrongType = await tools.call('task_output', { task_id: 42 })
  assert.equal(wrongType.isError, true)
  assert.equal(wrongType.json.error.code, 'INVALID_ARGUMENT')
  assert.match(wrongType.text, /invalid argument `task_id`/)
  const missing = await tools.call('task_run', {})
  assert.match(missing.text, /invalid argument `command`/)
  const badRegex = await tools.call('task_output', { task_id: mine.json.task_id, filter: '(' })
  assert.match(badRegex.text, /invalid argument `filter`/)
  const badJson = await tools.call('task_list', '{not json')
  assert.equal(badJson.json.error.code, 'INVALID_ARGUMENT')
  const unknownTool = await tools.call('task_explode', {})
  assert.equal(unknownTool.json.error.code, 'UNKNOWN_TOOL')
  assert.match(unknownTool.text, /task_run, task_list, task_output, task_wait, task_cancel, task_send/)

  // The host's own mistakes are thrown.
  await assert.rejects(tools.call(42, {}), { code: 'INVALID_ARGUMENT' })
  await assert.rejects(tools.call('task_list', { n: 1n }), { code: 'INVALID_ARGUMENT', message: /args/ })
  assert.throws(() => new ToolBox({}, 'x'), { code: 'INVALID_ARGUMENT', message: /manager/ })
  assert.throws(() => new ToolBox(m, 'x', { textBudget: -1 }), (err) => err instanceof AgentTasksError && err.code === 'INVALID_ARGUMENT')
  assert.throws(() => new ToolBox(m, 'x', { onTimeout: 'explode' }), { code: 'INVALID_ARGUMENT' })
})

test('ToolBox: a foreground task_run that outlives runTimeoutMs moves to the background; task_cancel stops it', async (t) => {
  const m = manager(t)
  const tools = new ToolBox(m, 'session-1', { runTimeoutMs: 200 })
  const answer = await tools.call('task_run', { command: 'echo started; sleep 30' })
  assert.equal(answer.isError, false, answer.text)
  const id = answer.json.task_id
  assert.equal(answer.json.info.detached, true)
  assert.match(answer.text, /moved to the background/)
  assert.equal(m.info(id).status, 'running')
  const cancelled = await tools.call('task_cancel', { task_id: id, reason: 'enough' })
  assert.equal(cancelled.json.info.status, 'cancelled')
  assert.deepEqual(cancelled.json.info.cancel_reason, { kind: 'user', message: 'enough' })
})

test('ToolBox: after the manager is closed task_run answers SHUT_DOWN, reads still answer', async () => {
  const m = new TaskManager()
  const tools = new ToolBox(m, 'session-1')
  await m.close()
  const run = await tools.call('task_run', { command: 'true' })
  assert.equal(run.isError, true)
  assert.equal(run.json.error.code, 'SHUT_DOWN')
  const list = await tools.call('task_list', {})
  assert.equal(list.isError, false, list.text)
  const late = new ToolBox(m, 'session-2')
  assert.equal((await late.call('task_list', {})).isError, false)
})
