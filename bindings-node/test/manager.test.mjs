// The manager around the verbs: options, errors with codes, AbortSignals on
// waits, events (iterator and callback), notifications, close.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

import { AgentTasksError, TaskManager } from 'agent-tasks'
import { manager, waitFor } from './helpers.mjs'

test('invalid input gives the right code', async (t) => {
  const m = manager(t, { maxBackground: 1 })
  const code = (code) => ({ name: 'AgentTasksError', code })
  assert.throws(() => m.poll('../../etc/passwd'), code('INVALID_TASK_ID'))
  assert.throws(() => m.info(''), code('INVALID_TASK_ID'))
  assert.throws(() => m.poll('process-abcdefgh'), code('TASK_NOT_FOUND'))
  assert.throws(() => m.detach('fn-zzzzzzzz'), code('TASK_NOT_FOUND'))
  await assert.rejects(m.collect('process-abcdefgh'), code('TASK_NOT_FOUND'))
  await assert.rejects(m.cancel('bad id'), code('INVALID_TASK_ID'))
  await assert.rejects(m.waitForeground('process-abcdefgh'), code('TASK_NOT_FOUND'))

  const bg = m.run('sleep 30', { background: true })
  assert.throws(() => m.run('sleep 30', { background: true }), (err) => {
    assert.ok(err instanceof AgentTasksError)
    assert.equal(err.code, 'CAPACITY_EXCEEDED')
    assert.match(err.message, /limit 1/)
    return true
  })
  assert.throws(() => m.spawn(async () => {}, { background: true }), code('CAPACITY_EXCEEDED'))
  await bg.cancel()

  assert.throws(() => m.poll(bg, { cursor: -1 }), code('INVALID_ARGUMENT'))
  assert.throws(() => m.poll(bg, { maxBytes: 1.5 }), code('INVALID_ARGUMENT'))
  assert.throws(() => m.poll(42), code('INVALID_ARGUMENT'))
  assert.throws(() => m.run('true', { timeoutMs: -5 }), code('INVALID_ARGUMENT'))
  assert.throws(() => m.run('true', { onTimeout: 'explode' }), code('INVALID_ARGUMENT'))
  assert.throws(() => m.run([]), code('INVALID_ARGUMENT'))
  assert.throws(() => m.run(42), code('INVALID_ARGUMENT'))
  assert.throws(() => m.spawn('not a function'), code('INVALID_ARGUMENT'))
  assert.throws(() => m.send(bg, 'hi'), code('NOT_RECEIVING'))
  assert.throws(() => m.ack(['not-a-notification']), code('INVALID_ARGUMENT'))
  await assert.rejects(m.collect(bg, { signal: 'nope' }), code('INVALID_ARGUMENT'))
  assert.throws(() => new TaskManager({ memoryLimit: 0 }), code('INVALID_ARGUMENT'))
  assert.throws(() => new TaskManager({ diskLimit: -1 }), code('INVALID_ARGUMENT'))
})

test('an AbortSignal ends a wait, not the task', async (t) => {
  const m = manager(t)
  const h = m.run('sleep 30', { background: true })
  const controller = new AbortController()
  const waiting = m.collect(h, { signal: controller.signal })
  controller.abort(new Error('stop waiting'))
  await assert.rejects(waiting, { message: 'stop waiting' })
  assert.equal(h.info().status, 'running')

  await assert.rejects(h.waitForeground({ signal: AbortSignal.abort() }), { name: 'AbortError' })
  const timed = AbortSignal.timeout(50)
  const fg = m.run('sleep 30')
  await assert.rejects(fg.waitForeground({ signal: timed }), { name: 'TimeoutError' })
  assert.equal(fg.info().status, 'running')
  assert.equal(fg.info().foreground, true)
  await fg.cancel()
  await h.cancel()
})

test('collect with a timeout answers still_running, then finished', async (t) => {
  const m = manager(t)
  const h = m.spawn(async (ctx) => (await ctx.recv()) ?? 'none', { background: true })
  const early = await h.collect({ timeoutMs: 30 })
  assert.equal(early.state, 'still_running')
  assert.equal(early.info.status, 'running')
  h.send('go')
  const late = await h.collect({ timeoutMs: null })
  assert.deepEqual([late.state, late.result.value], ['finished', 'go'])
})

test('events: the async iterator and the callback see the lifecycle in order', async (t) => {
  const m = manager(t)
  const seen = []
  const unsubscribe = m.onEvent((item) => seen.push(item))
  const events = m.events()
  const h = m.run('echo hi', { background: true })
  const got = []
  for await (const item of events) {
    assert.equal(item.item, 'event')
    if (item.taskId !== h.id) continue
    got.push(item)
    if (item.type === 'task.finished') break
  }
  assert.deepEqual(got.map((e) => e.type), ['task.started', 'task.finished'])
  const [started, finished] = got
  assert.deepEqual(
    { kind: started.kind, owner: started.owner, background: started.background },
    { kind: 'process', owner: 'default', background: true },
  )
  assert.equal(finished.status, 'completed')
  assert.equal(finished.exit.code, 0)
  assert.equal(typeof finished.durationMs, 'number')
  assert.ok(started.seq < finished.seq)
  assert.ok(finished.timestampMs >= started.timestampMs)
  // `break` closed the iterator.
  assert.deepEqual(await events.next(), { done: true, value: undefined })

  await waitFor(() => seen.some((e) => e.taskId === h.id && e.type === 'task.finished'), {
    what: 'the callback to see the end',
  })
  assert.deepEqual(
    seen.filter((e) => e.taskId === h.id).map((e) => e.type),
    ['task.started', 'task.finished'],
  )
  unsubscribe()
  const count = seen.length
  await m.run('true', { background: true }).collect()
  assert.equal(seen.length, count, 'no call after unsubscribe')
})

test('events: detach and cancel events; close() ends the iteration, an AbortSignal rejects it', async (t) => {
  const m = manager(t)
  const events = m.events()
  const h = m.run('sleep 30')
  h.detach()
  await h.cancel({ reason: 'bye' })
  const types = []
  for (;;) {
    const { value } = await events.next()
    if (value.taskId !== h.id) continue
    types.push(value.type)
    if (value.type === 'task.spilled') {
      assert.equal(typeof value.logPath, 'string')
      assert.equal(typeof value.bufferedBytes, 'number')
    }
    if (value.type === 'task.finished') {
      assert.equal(value.status, 'cancelled')
      assert.deepEqual(value.reason, { kind: 'user', message: 'bye' })
      break
    }
  }
  // A detach spills the buffered output first, then reports the detach.
  assert.deepEqual(types, ['task.started', 'task.spilled', 'task.detached', 'task.finished'])
  const pending = events.next()
  events.close()
  assert.deepEqual(await pending, { done: true, value: undefined })

  // The one timeout rule: an aborted signal rejects the pending next() with
  // its reason, once, then the iteration is done (as events.on() does).
  const controller = new AbortController()
  const aborted = m.events({ signal: controller.signal })
  const next = aborted.next()
  controller.abort(new Error('enough'))
  await assert.rejects(next, /enough/)
  assert.deepEqual(await aborted.next(), { done: true, value: undefined })
  const timedOut = m.events({ signal: AbortSignal.timeout(1) })
  await assert.rejects(async () => {
    for await (const item of timedOut) assert.fail(`no event was expected: ${item.type}`)
  }, { name: 'TimeoutError' })
})

test('notifications: one per ended background task, for its owner, until acked', async (t) => {
  const m = manager(t)
  const a = m.run('echo built; exit 2', { background: true, owner: 'alice', description: 'build' })
  const b = m.spawn(async (ctx) => {
    ctx.write('subagent report\n')
    return 'ok'
  }, { background: true, owner: 'bob' })
  await a.collect()
  await b.collect()
  const alice = m.notifications('alice')
  assert.equal(alice.length, 1)
  const [n] = alice
  assert.equal(n.taskId, a.id)
  assert.equal(n.kind, 'finished')
  assert.equal(n.status, 'failed')
  assert.equal(n.exit.code, 2)
  assert.equal(n.outputTail, 'built')
  assert.match(n.text, new RegExp(`^Background task ${a.id} failed \\(exit code 2\\)`))
  assert.equal(m.notifications().length, 2)
  assert.equal(m.ack(alice), 1)
  assert.equal(m.ack(alice.map((x) => x.id)), 0, 'acked once only')
  assert.deepEqual(m.notifications().map((x) => x.taskId), [b.id])
})

test('notifications survive a restart until acked', async () => {
  const root = mkdtempSync(join(tmpdir(), 'agent-tasks-node-test-'))
  try {
    const first = new TaskManager({ root })
    const h = first.run('echo done', { background: true })
    await h.collect()
    await first.close()
    const second = new TaskManager({ root })
    assert.deepEqual(second.notifications().map((n) => n.taskId), [h.id])
    assert.equal(second.info(h.id).status, 'completed')
    assert.equal(second.poll(h.id).text, 'done\n')
    second.ack(second.notifications())
    await second.close()
    const third = new TaskManager({ root })
    assert.deepEqual(third.notifications(), [])
    await third.close()
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})

test('list filters by owner, status and activity', async (t) => {
  const m = manager(t)
  const running = m.run('sleep 30', { background: true, owner: 'a' })
  const done = m.run('true', { background: true, owner: 'b' })
  await done.collect()
  assert.deepEqual(m.list().map((i) => i.id), [running.id, done.id])
  assert.deepEqual(m.list({ activeOnly: true }).map((i) => i.id), [running.id])
  assert.deepEqual(m.list({ statuses: ['completed'] }).map((i) => i.id), [done.id])
  assert.deepEqual(m.list({ owner: 'a' }).map((i) => i.id), [running.id])
  const closed = await m.closeOwner('a', { reason: 'session ended' })
  assert.deepEqual(closed.map((i) => [i.id, i.status, i.cancelReason.kind]), [[running.id, 'cancelled', 'owner_closed']])
  assert.deepEqual(m.gc({ maxCount: 0 }).removed.sort(), [running.id, done.id].sort())
})

test('close cancels running tasks; then reads answer (as in the core) and new tasks fail with SHUT_DOWN', async () => {
  const m = new TaskManager()
  const h = m.run('sleep 30', { background: true })
  const fn = m.spawn((ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', resolve)), {
    background: true,
  })
  await m.close('test over')
  const info = m.info(h)
  assert.equal(info.status, 'cancelled')
  assert.deepEqual(info.cancelReason, { kind: 'shutdown', message: 'test over' })
  assert.equal(m.poll(h).eof, true)
  const collected = await m.collect(fn)
  assert.equal(collected.state, 'finished')
  assert.equal(collected.result.status, 'cancelled')
  assert.deepEqual(m.list().map((i) => i.id).sort(), [h.id, fn.id].sort())
  assert.ok(Array.isArray(m.notifications()))
  assert.throws(() => m.run('true'), { code: 'SHUT_DOWN' })
  assert.throws(() => m.spawn(async () => 1), { code: 'SHUT_DOWN' })
  await m.close() // again: nothing to do

  const d = new TaskManager()
  await d[Symbol.asyncDispose]()
  assert.deepEqual(d.list(), [])
  assert.throws(() => d.run('true'), { code: 'SHUT_DOWN' })
})
