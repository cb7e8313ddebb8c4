// JS async functions as tasks: every verb, steering, the AbortSignal on
// cancel and timeout, thrown errors, and a flood detached mid-way.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setImmediate as yieldToLoop } from 'node:timers/promises'

import { TaskCancelledError } from 'agent-tasks'
import { manager, readAll, waitFor } from './helpers.mjs'

test('a JS task writes text and bytes to named streams and returns a JSON value', async (t) => {
  const m = manager(t)
  const h = m.spawn(async function summarise(ctx) {
    assert.equal(typeof ctx.id, 'string')
    ctx.write('to stdout\n')
    ctx.write(Buffer.from('to stderr\n'), 'stderr')
    ctx.write(new Uint8Array([0x70, 0x0a]), 'progress')
    return { summary: 'all good', n: 3, nested: [1, null, 'x'] }
  })
  assert.match(h.id, /^fn-[a-z0-9]+$/)
  const fg = await h.waitForeground()
  assert.equal(fg.state, 'finished')
  assert.equal(fg.result.status, 'completed')
  assert.deepEqual(fg.result.value, { summary: 'all good', n: 3, nested: [1, null, 'x'] })
  assert.equal(m.info(h).description, 'summarise')
  const page = h.poll()
  assert.equal(page.text, 'to stdout\nto stderr\np\n')
  assert.deepEqual(page.spans.map((s) => s.stream), ['stdout', 'stderr', 'progress'])
  assert.equal(fg.result.output.stdoutBytes, 10)
  assert.equal(fg.result.output.stderrBytes, 10)
})

test('gathered writes keep their order across text, bytes, sizes and streams', async (t) => {
  const m = manager(t)
  const big = Buffer.alloc(40 * 1024, 'B')
  const h = m.spawn(async (ctx) => {
    ctx.write('a1 ')
    ctx.write(Buffer.from('b2 '))
    ctx.write(big)
    ctx.write('c3 ', 'stderr')
    ctx.write('c4 ', 'stderr')
    await yieldToLoop()
    ctx.write(Buffer.from('d5 '), 'stderr')
    ctx.write('e6')
  })
  await h.waitForeground()
  const page = h.poll({ maxBytes: 1 << 20 })
  const expected = `a1 b2 ${big.toString()}c3 c4 d5 e6`
  assert.equal(page.data.length, expected.length)
  assert.ok(page.text === expected, 'the bytes in the order they were written')
  const spans = page.spans.map((s) => [s.stream, s.len])
  assert.deepEqual(spans, [
    ['stdout', 6 + big.length],
    ['stderr', 9],
    ['stdout', 2],
  ])
})

test('kind, description, owner and an undefined result', async (t) => {
  const m = manager(t)
  const h = m.spawn(async () => {}, { kind: 'subagent', description: 'research', owner: 'session-7', background: true })
  assert.match(h.id, /^subagent-/)
  const done = await h.collect()
  assert.equal(done.result.status, 'completed')
  assert.equal(done.result.value, null)
  const info = h.info()
  assert.equal(info.kind, 'subagent')
  assert.equal(info.description, 'research')
  assert.equal(info.owner, 'session-7')
  assert.deepEqual(m.list({ owner: 'session-7' }).map((i) => i.id), [h.id])
  assert.deepEqual(m.list({ owner: 'nobody' }), [])
})

test('a thrown error makes the task failed with its message and stack', async (t) => {
  const m = manager(t)
  const h = m.spawn(async function explode() {
    await yieldToLoop()
    throw new RangeError('the model asked for too much')
  })
  const fg = await h.waitForeground()
  assert.equal(fg.result.status, 'failed')
  assert.match(fg.result.error, /^RangeError: the model asked for too much\n/)
  assert.match(fg.result.error, /at explode \(.*function\.test\.mjs/)
  assert.equal(h.info().error, fg.result.error)

  const sync = m.spawn(() => {
    throw 'a plain string'
  })
  assert.equal((await sync.waitForeground()).result.error, 'thrown: a plain string')

  const cyclic = m.spawn(async () => {
    const o = {}
    o.self = o
    return o
  })
  const r = (await cyclic.waitForeground()).result
  assert.equal(r.status, 'failed')
  assert.match(r.error, /cannot be turned into JSON: TypeError/)
})

test('steering: send reaches ctx.recv, in order; send to an ended task is NOT_RECEIVING', async (t) => {
  const m = manager(t)
  const h = m.spawn(async (ctx) => {
    const got = []
    for (;;) {
      const message = await ctx.recv()
      if (message === 'done') break
      got.push(message)
      ctx.write(`steered: ${message}\n`)
    }
    return got
  }, { background: true })
  m.send(h, 'look at the failing test first')
  h.send(Buffer.from('then the docs'))
  m.send(h.id, 'done')
  const done = await h.collect({ timeoutMs: 20_000 })
  assert.deepEqual(done.result.value, ['look at the failing test first', 'then the docs'])
  assert.throws(() => m.send(h, 'late'), { name: 'AgentTasksError', code: 'NOT_RECEIVING' })
})

test('cancel aborts ctx.signal with the reason; the task ends cancelled', async (t) => {
  const m = manager(t)
  const h = m.spawn(async (ctx) => {
    ctx.write('waiting\n')
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }))
    const r = ctx.signal.reason
    ctx.write(`${r instanceof TaskCancelledError} ${r.name} ${r.code} ${r.reason.kind} ${r.reason.message}\n`)
    assert.equal(ctx.write('ignored?'), true) // still running: writes count until it returns
    throw r
  }, { background: true })
  await waitFor(() => h.poll().text.includes('waiting'), { what: 'the task to start' })
  const info = await h.cancel({ reason: 'the user moved on' })
  assert.equal(info.status, 'cancelled')
  assert.deepEqual(info.cancelReason, { kind: 'user', message: 'the user moved on' })
  assert.equal(info.error, 'cancelled: the user moved on')
  assert.equal(h.poll().text, 'waiting\ntrue AbortError TASK_CANCELLED user the user moved on\nignored?')
})

test('a JS task that ignores its signal is dropped after the stop grace; later writes are refused', async (t) => {
  const m = manager(t, { stopGraceMs: 100 })
  let ctxSeen
  let release
  const h = m.spawn(async (ctx) => {
    ctxSeen = ctx
    await new Promise((resolve) => {
      release = resolve
    })
  }, { background: true })
  await waitFor(() => ctxSeen, { what: 'the task to start' })
  const info = await h.cancel()
  assert.equal(info.status, 'cancelled')
  assert.equal(ctxSeen.signal.aborted, true)
  // The context learns of the end asynchronously; the output never takes a late byte.
  await waitFor(() => ctxSeen.write('too late') === false, { what: 'writes to be refused' })
  assert.equal(await ctxSeen.recv(), null)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(h.poll().text, '')
  assert.equal(h.info().output.totalBytes, 0)
  release()
})

test('a foreground timeout aborts the signal with kind timeout (onTimeout kill)', async (t) => {
  const m = manager(t)
  const h = m.spawn(
    (ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    { timeoutMs: 100, onTimeout: 'kill' },
  )
  const fg = await h.waitForeground()
  assert.equal(fg.result.status, 'timed_out')
  assert.equal(fg.result.cancelReason.kind, 'timeout')
  assert.equal(fg.result.error, 'timed out')
})

test('detach of a flooding JS task loses no byte', async (t) => {
  const m = manager(t, { memoryLimit: 64 << 20 })
  let stop = false
  const h = m.spawn(async (ctx) => {
    let i = 0
    while (!stop) {
      for (let k = 0; k < 1000; k++) ctx.write(`${++i}\n`)
      await yieldToLoop()
    }
    return i
  })
  const waiting = h.waitForeground()
  await waitFor(() => h.info().output.totalBytes > 512 << 10, { what: 'half a MiB of output' })
  const info = h.detach()
  assert.equal(info.status, 'running')
  assert.equal(info.detached, true)
  assert.equal((await waiting).state, 'detached')
  const detachedAt = info.output.totalBytes
  await waitFor(() => h.info().output.totalBytes > detachedAt + (512 << 10), { what: 'more output after the detach' })
  stop = true
  const done = await h.collect({ timeoutMs: 20_000 })
  const n = done.result.value
  const all = await readAll(m, h.id, { maxBytes: 4 << 20 })
  const expected = Array.from({ length: n }, (_, k) => `${k + 1}\n`).join('')
  assert.equal(all.length, Buffer.byteLength(expected))
  assert.ok(all.equals(Buffer.from(expected)))
})

test('a foreground JS task polled while running, then collected', async (t) => {
  const m = manager(t)
  let go
  const gate = new Promise((resolve) => {
    go = resolve
  })
  const h = m.spawn(async (ctx) => {
    ctx.write('part one\n')
    await gate
    ctx.write('part two\n')
    return 42
  })
  await waitFor(() => h.poll().text === 'part one\n', { what: 'the first part' })
  const page = h.poll()
  assert.equal(page.eof, false)
  assert.equal(page.info.status, 'running')
  assert.equal(page.info.foreground, true)
  go()
  const done = await m.collect(h, { timeoutMs: 20_000 })
  assert.equal(done.result.value, 42)
  assert.equal(h.poll({ cursor: page.nextCursor }).text, 'part two\n')
})
