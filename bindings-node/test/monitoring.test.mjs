// Watch patterns, stall detection, one manager per root, and waitForeground
// by id: core features as the binding passes them through.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

import { TaskManager } from 'agent-tasks'
import { manager, waitFor } from './helpers.mjs'

test('a watch pattern gives a watch_match notification and a task.watch_matched event', async (t) => {
  const m = manager(t)
  const events = m.events()
  const h = m.run('echo compiling; echo "error: disk full"; echo done', {
    background: true,
    owner: 'session-1',
    watch: ['^error:', 'panicked'],
    watchIntervalMs: 0,
    watchMax: 4,
  })
  await h.collect({ timeoutMs: 30_000 })
  const notes = await waitFor(() => {
    const n = m.notifications('session-1')
    return n.some((x) => x.kind === 'finished') && n
  }, { what: 'the notifications' })
  const watch = notes.filter((n) => n.kind === 'watch_match')
  assert.equal(watch.length, 1, JSON.stringify(notes))
  const [n] = watch
  assert.equal(n.taskId, h.id)
  assert.match(n.detail, /error: disk full/)
  assert.match(n.text, new RegExp(`^Background task ${h.id} printed a watched line`))
  assert.match(n.text, /error: disk full/)
  // The finished notification has no detail: the field is left out.
  assert.equal('detail' in notes.find((x) => x.kind === 'finished'), false)

  for (;;) {
    const { value } = await events.next()
    if (value.taskId === h.id && value.type === 'task.watch_matched') {
      assert.equal(value.line, 'error: disk full')
      break
    }
  }
  events.close()
})

test('monitoring options are checked', (t) => {
  const m = manager(t)
  const code = { code: 'INVALID_ARGUMENT' }
  assert.throws(() => m.run('true', { watch: ['('] }), { code: 'INVALID_ARGUMENT', message: /watch/ })
  assert.throws(() => m.run('true', { heartbeatMs: 1000 }), { code: 'INVALID_ARGUMENT', message: /heartbeat/ })
  assert.throws(() => m.run('true', { idleTimeoutMs: 0 }), code)
  assert.throws(() => m.run('true', { watch: ['x'], watchMax: 0 }), code)
  assert.throws(() => m.run('true', { watchIntervalMs: -1 }), code)
  assert.throws(() => m.spawn(async () => {}, { watch: 'not an array' }), code)
  assert.throws(() => m.spawn(async () => {}, { heartbeatMs: Infinity }), code)
})

test('idleTimeoutMs with cancelOnStall stops a silent task: timed_out, reason stalled', async (t) => {
  const m = manager(t)
  const events = m.events()
  const h = m.spawn(
    async (ctx) => {
      ctx.write('thinking\n')
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))
      throw ctx.signal.reason
    },
    { background: true, idleTimeoutMs: 150, cancelOnStall: true },
  )
  const done = await h.collect({ timeoutMs: 30_000 })
  assert.equal(done.state, 'finished')
  assert.equal(done.result.status, 'timed_out')
  assert.equal(done.result.cancelReason.kind, 'stalled')
  for (;;) {
    const { value } = await events.next()
    if (value.taskId === h.id && value.type === 'task.stalled') {
      assert.ok(value.idleMs >= 150, String(value.idleMs))
      break
    }
  }
  events.close()
  const kinds = m.notifications().filter((n) => n.taskId === h.id).map((n) => n.kind)
  assert.ok(kinds.includes('stalled'), kinds.join())
})

test('one manager per root: a second gets ROOT_IN_USE until the first is closed', async () => {
  const root = mkdtempSync(join(tmpdir(), 'agent-tasks-node-test-'))
  try {
    const first = new TaskManager({ root })
    assert.throws(() => new TaskManager({ root }), (err) => {
      assert.equal(err.name, 'AgentTasksError')
      assert.equal(err.code, 'ROOT_IN_USE')
      assert.ok(err.message.includes(root), err.message)
      return true
    })
    await first.close()
    const second = new TaskManager({ root })
    await second.close()
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})

test('waitForeground by id: detached, finished, and at once for a background task', async (t) => {
  const m = manager(t)
  const fg = m.run('sleep 30')
  const waiting = m.waitForeground(fg.id)
  m.detach(fg.id)
  const detached = await waiting
  assert.equal(detached.state, 'detached')
  assert.equal(detached.info.id, fg.id)
  assert.equal(detached.info.detached, true)

  const quick = m.spawn(async () => 'ok')
  const finished = await m.waitForeground(quick.id)
  assert.deepEqual([finished.state, finished.result.value], ['finished', 'ok'])
  // Asked again after the end: the same result.
  assert.equal((await m.waitForeground(quick.id)).result.value, 'ok')

  const bg = m.run('sleep 30', { background: true })
  assert.equal((await m.waitForeground(bg.id)).state, 'detached')
  await Promise.all([m.cancel(fg), m.cancel(bg)])
  assert.equal((await m.waitForeground(bg.id)).state, 'finished')
})
