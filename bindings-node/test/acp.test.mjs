// ACP agents from Node (`runAcp`), against the scripted agent built on the
// official ACP Python SDK (tests/acp/scripted_agent.py at the repository
// root). scripts/test.sh installs the SDK and sets AGENT_TASKS_ACP_PYTHON;
// without it these tests fail, never skip.
import assert from 'node:assert/strict'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { runAcp, ToolBox } from 'agent-tasks'

import { manager, waitFor } from './helpers.mjs'

const AGENT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'acp', 'scripted_agent.py')

function python() {
  const python = process.env.AGENT_TASKS_ACP_PYTHON
  if (!python) {
    throw new Error(
      'AGENT_TASKS_ACP_PYTHON is not set: it must name a python with the ACP SDK ' +
        '(python3 -m venv target/acp-venv && target/acp-venv/bin/pip install agent-client-protocol==0.12.1); ' +
        'scripts/test.sh sets it up',
    )
  }
  return python
}

async function line(m, task, pattern) {
  const got = await m.waitFor(task, pattern, { timeoutMs: 30_000 })
  assert.equal(got.state, 'matched', JSON.stringify(got))
  return got.line
}

async function permissionAnswer(t, permissions) {
  const m = manager(t)
  const task = runAcp(m, [python(), AGENT], 'permission', { permissions })
  const said = await line(m, task, '^permission: ')
  await m.cancel(task, { reason: 'done' })
  return said
}

test('an ACP agent runs its goal, notifies each turn and takes follow-ups', async (t) => {
  const m = manager(t)
  const task = runAcp(m, [python(), AGENT], 'hello from node')
  assert.equal(task.kind, 'acp')
  await line(m, task, '^\\[turn 1 ended: end_turn\\]$')
  assert.match(m.poll(task.id, { maxBytes: 1 << 20 }).text, /\[turn 1\] prompt:\n> hello from node/)
  const note = await waitFor(() => m.notifications().find((n) => n.id === `${task.id}.t1`), { what: 'turn 1 notice' })
  assert.equal(note.kind, 'turn_ended')
  assert.match(note.text, /Echo: hello from node/)
  m.send(task.id, 'and again')
  await line(m, task, '^\\[turn 2 ended')
  const info = await m.cancel(task, { reason: 'done' })
  assert.equal(info.status, 'cancelled')
})

test('permission requests follow the policy, a function included', async (t) => {
  assert.equal(await permissionAnswer(t, 'allow'), 'permission: selected yes')
  assert.equal(await permissionAnswer(t, 'deny'), 'permission: selected no')
  assert.equal(await permissionAnswer(t, undefined), 'permission: selected no')
  const asked = []
  const chosen = await permissionAnswer(t, async (request) => {
    asked.push(request)
    return 'always'
  })
  assert.equal(chosen, 'permission: selected always')
  assert.equal(asked[0].title, 'Delete the build directory')
  assert.deepEqual(asked[0].options.map((o) => o.kind), ['allow_once', 'allow_always', 'reject_once'])
  assert.equal(await permissionAnswer(t, () => null), 'permission: cancelled')
  assert.equal(
    await permissionAnswer(t, () => {
      throw new Error('no')
    }),
    'permission: selected no',
  )
})

test('bad arguments name the argument', (t) => {
  const m = manager(t)
  assert.throws(() => runAcp(m, [python(), AGENT], 'goal', { permissions: 'maybe' }), { code: 'INVALID_ARGUMENT', message: /permissions/ })
  assert.throws(() => runAcp(m, [python(), AGENT], 'goal', { files: 'everywhere' }), { code: 'INVALID_ARGUMENT', message: /files/ })
  assert.throws(() => runAcp(m, [python(), AGENT], '  '), { code: 'INVALID_ARGUMENT', message: /goal/ })
  assert.throws(() => runAcp({}, ['x'], 'goal'), { code: 'INVALID_ARGUMENT', message: /manager/ })
})

test('the model delegates to an ACP agent registered on a ToolBox', async (t) => {
  const m = manager(t)
  const tools = new ToolBox(m, 's1')
  tools.registerAcpAgent({ name: 'coder', description: 'A scripted coding agent.', argv: [python(), AGENT] })
  assert.equal(tools.definitions().at(-1).function.name, 'task_delegate')
  const started = await tools.call('task_delegate', { agent: 'coder', tasks: [{ goal: 'hello from a model' }] })
  assert.equal(started.isError, false, started.text)
  const id = started.json.tasks[0].task_id
  assert.equal(m.info(id).kind, 'agent')
  await line(m, id, '^\\[turn 1 ended: end_turn\\]$')
  assert.match(m.poll(id, { maxBytes: 1 << 20 }).text, /> hello from a model/)
  assert.match(m.roster('s1').text, new RegExp(id))
  const stopped = await tools.call('task_cancel', { task_id: id })
  assert.equal(stopped.isError, false, stopped.text)
  assert.throws(
    () => tools.registerAcpAgent({ name: 'coder2', description: 'x', argv: [python(), AGENT], timeoutMs: 5 }),
    /timeoutMs/,
  )
})

test('send with { eof: true } ends an ACP session completed with its last turn', async (t) => {
  const m = manager(t)
  const task = runAcp(m, [python(), AGENT], 'hello from node')
  await line(m, task, '^\\[turn 1 ended: end_turn\\]$')
  task.send({ eof: true })
  const done = await task.collect({ timeoutMs: 60_000 })
  assert.equal(done.result.status, 'completed', done.result.error)
  assert.equal(done.result.value.turns, 1)
  assert.equal(done.result.value.message, 'Echo: hello from node')
})

test('the handshake and one message of the agent are bounded: past either the task fails naming the bound', async (t) => {
  const m = manager(t)
  // An agent that reads every request and answers none.
  const silent = runAcp(m, ['sh', '-c', 'cat >/dev/null'], 'hello', { handshakeTimeoutMs: 300 })
  let done = await silent.collect({ timeoutMs: 30_000 })
  assert.equal(done.result.status, 'failed')
  assert.match(done.result.error, /did not answer `initialize` within the handshake timeout/)

  // One line past the bound, without a newline.
  const flood = runAcp(m, ['sh', '-c', "head -c 100000 /dev/zero | tr '\\0' x; cat >/dev/null"], 'hello', { maxMessageBytes: 4096 })
  done = await flood.collect({ timeoutMs: 30_000 })
  assert.equal(done.result.status, 'failed')
  assert.match(done.result.error, /longer than the limit of 4 KiB/)

  assert.throws(() => runAcp(m, ['sh'], 'hello', { maxMessageBytes: 10 }), { code: 'INVALID_ARGUMENT', message: /`maxMessageBytes`: 10 bytes is too small/ })
  assert.throws(() => runAcp(m, ['sh'], 'hello', { maxMessageBytes: -1 }), { code: 'INVALID_ARGUMENT', message: /`maxMessageBytes`/ })
})
