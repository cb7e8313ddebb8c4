// What a Node user expects of the API: a task's result awaited from its
// handle, its output streamed with `for await` (woken by the task, every
// byte once, across a spill to disk), one timeout rule, and option errors
// that name the option in JavaScript's terms.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { AgentTasksError, TaskManager } from 'agent-tasks'

import { manager, seqText } from './helpers.mjs'

function invalidArgument(pattern) {
  return (err) => {
    assert.ok(err instanceof AgentTasksError, String(err))
    assert.equal(err.code, 'INVALID_ARGUMENT')
    assert.match(err.message, pattern)
    return true
  }
}

test('a handle is not a thenable; result() is the final result, foreground or background', async (t) => {
  const m = manager(t)
  const handle = m.run('echo hi')
  assert.equal(typeof handle.then, 'undefined')
  // Returned from an async function, the handle stays a handle.
  const returned = await (async () => m.run('echo again', { background: true }))()
  assert.equal(returned.kind, 'process')
  const result = await handle.result()
  assert.equal(result.status, 'completed')
  assert.equal(result.id, handle.id)
  assert.equal((await returned.result()).status, 'completed')
  const fn = m.spawn(async () => ({ answer: 42 }), { background: true })
  assert.deepEqual((await fn.result()).value, { answer: 42 })
  const failing = m.run('exit 3')
  const failed = await m.result(failing)
  assert.equal(failed.status, 'failed')
  assert.equal(failed.exit.code, 3)
  // A signal ends the wait (not the task), rejecting with its reason.
  const long = m.run('sleep 30', { background: true })
  await assert.rejects(long.result({ signal: AbortSignal.timeout(20) }), { name: 'TimeoutError' })
  assert.equal(long.info().status, 'running')
  await long.cancel()
})

test('output() streams every byte once across a spill, woken by the task; lines() splits across chunks', async (t) => {
  // A memory buffer of 16 KiB: the output spills to disk early.
  const m = manager(t, { memoryLimit: 16 * 1024 })
  const script = 'for i in 1 2 3 4; do seq 1 20000; sleep 0.05; done'
  const task = m.run(script, { background: true })
  const chunks = []
  for await (const chunk of task.output({ maxBytes: 7001 })) {
    assert.ok(Buffer.isBuffer(chunk))
    assert.ok(chunk.length > 0 && chunk.length <= 7001)
    chunks.push(chunk)
  }
  const expected = seqText(20000).repeat(4)
  assert.ok(chunks.length > 4, `${chunks.length} chunks`)
  assert.equal(Buffer.concat(chunks).toString(), expected)
  assert.equal(task.info().output.spilled, true)
  // Lines from chunks of 7001 bytes (lines split across chunks), again from 0.
  const lines = []
  for await (const line of task.lines({ maxBytes: 7001 })) lines.push(line)
  assert.deepEqual(lines, expected.trimEnd().split('\n'))
  // From a cursor.
  const from = Buffer.byteLength(seqText(20000))
  let rest = ''
  for await (const chunk of m.output(task.id, { cursor: from })) rest += chunk
  assert.equal(rest, seqText(20000).repeat(3))
})

test('output() waits for the task: steered output arrives as it is written; a last line without newline counts', async (t) => {
  const m = manager(t)
  const task = m.spawn(async (ctx) => {
    for (;;) {
      const message = await ctx.recv()
      if (message === null || message === 'stop') break
      ctx.write(message)
    }
  }, { background: true })
  const lines = task.lines()
  m.send(task, 'one\ntw')
  m.send(task, 'o\r\nthree')
  assert.deepEqual(await lines.next(), { done: false, value: 'one' })
  assert.deepEqual(await lines.next(), { done: false, value: 'two' })
  assert.equal(task.info().status, 'running', 'woken by the output, not by the end')
  const last = lines.next()
  m.send(task, 'stop')
  assert.deepEqual(await last, { done: false, value: 'three' })
  assert.deepEqual(await lines.next(), { done: true, value: undefined })
})

test('one timeout rule: timeoutMs answers a state, a signal rejects with its reason', async (t) => {
  const m = manager(t)
  const task = m.run('sleep 30', { background: true })
  assert.equal((await m.collect(task, { timeoutMs: 10 })).state, 'still_running')
  assert.equal((await m.waitFor(task, 'never printed', { timeoutMs: 10 })).state, 'timed_out')
  const timeout = { name: 'TimeoutError' }
  await assert.rejects(m.collect(task, { signal: AbortSignal.timeout(10) }), timeout)
  await assert.rejects(m.waitFor(task, 'never', { signal: AbortSignal.timeout(10) }), timeout)
  await assert.rejects(m.waitForeground(m.run('sleep 30'), { signal: AbortSignal.timeout(10) }), timeout)
  await assert.rejects(task.result({ signal: AbortSignal.timeout(10) }), timeout)
  await assert.rejects(async () => {
    for await (const chunk of task.output({ signal: AbortSignal.timeout(10) })) assert.fail(`no output: ${chunk}`)
  }, timeout)
  await assert.rejects(async () => {
    for await (const item of m.events({ signal: AbortSignal.timeout(10) })) assert.fail(`no event: ${item.type}`)
  }, timeout)
  assert.equal(task.info().status, 'running', 'no wait ended the task')
  for (const info of m.list({ activeOnly: true })) await m.cancel(info.id)
})

test('unknown options and wrong types are INVALID_ARGUMENT naming the option, in JS terms', async (t) => {
  const m = manager(t)
  assert.throws(() => m.run('true', { tiemoutMs: 5 }), invalidArgument(/`tiemoutMs`: not an option of run; did you mean `timeoutMs`\?/))
  assert.throws(() => m.run('true', { timeoutMs: '5' }), invalidArgument(/`timeoutMs`: expected a number of milliseconds or null, got a string \("5"\)/))
  assert.throws(() => m.run(42), invalidArgument(/`command`: expected a string or an array of strings, got the number 42/))
  assert.throws(() => m.run(['ls', 1]), invalidArgument(/`command`/))
  assert.throws(() => m.run('true', 'fast'), invalidArgument(/`options`: expected an object, got a string/))
  assert.throws(() => m.run('true', { env: 'A=1' }), invalidArgument(/`env`: expected an object of strings/))
  assert.throws(() => m.run('true', { watch: '^error' }), invalidArgument(/`watch`: invalid type: string "\^error", expected a sequence/))
  assert.throws(() => m.spawn(async () => null, { kind: 3 }), invalidArgument(/`kind`: invalid type: integer `3`, expected a string/))
  assert.throws(() => m.spawn('not a function'), invalidArgument(/`fn`: expected a function, got a string/))
  assert.throws(() => m.poll(null), invalidArgument(/`task`: expected a task id or an object with an `id`, got null/))
  assert.throws(() => m.poll('process-x', { curser: 0 }), invalidArgument(/`curser`: not an option of poll; did you mean `cursor`\?/))
  assert.throws(() => m.poll('process-x', { maxBytes: -1 }), invalidArgument(/`maxBytes`: expected a non-negative integer, got the number -1/))
  await assert.rejects(m.collect('process-x', { timeout: 5 }), invalidArgument(/`timeout`: not an option of collect; did you mean `timeoutMs`\?/))
  await assert.rejects(m.collect('process-x', { signal: 'stop' }), invalidArgument(/`signal`: expected an AbortSignal, got a string/))
  await assert.rejects(m.waitFor('process-x', /ready/), invalidArgument(/`until`: expected a string, got a RegExp/))
  assert.throws(() => m.list({ status: ['running'] }), invalidArgument(/`status`: not an option of list; did you mean `statuses`\?/))
  assert.throws(() => m.roster(7), invalidArgument(/`owner`: expected a string/))
  assert.throws(() => new TaskManager({ maxBackground: 1.5 }), invalidArgument(/`maxBackground`: invalid type: floating point `1.5`, expected a non-negative int/))
  assert.throws(() => new TaskManager({ rot: '/tmp' }), invalidArgument(/`rot`: not an option of manager; did you mean `root`\?/))
  // What a value means is the core's check, naming the same option.
  assert.throws(() => m.run('true', { timeoutMs: -1 }), invalidArgument(/`timeoutMs`/))
  assert.throws(() => m.run('true', { onTimeout: 'explode' }), invalidArgument(/`onTimeout`/))
  // The core's rules, in the names given.
  assert.throws(
    () => m.run('true', { background: true, timeoutMs: 5, backgroundTimeoutMs: 6 }),
    invalidArgument(/`backgroundTimeoutMs`: give `timeoutMs` or `backgroundTimeoutMs` for a task started in the background, not both/),
  )
})

test('null options are "not given" (a timeout of null is none)', async (t) => {
  const m = manager(t)
  const task = m.run('echo fine', { env: null, cwd: null, description: null, timeoutMs: null, watch: null })
  assert.equal((await task.result()).status, 'completed')
  assert.equal(task.info().description, 'echo fine')
})
