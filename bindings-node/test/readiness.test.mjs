// Readiness waits and pause/resume through the built package.
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'

import { manager } from './helpers.mjs'

async function freePort() {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

test('waitFor: a line, a port, the end, a timeout', async (t) => {
  const m = manager(t)
  const h = m.run("sleep 0.3; echo 'ready on 8080'; sleep 30", { background: true })
  const got = await m.waitFor(h, 'ready on \\d+', { timeoutMs: 20_000 })
  assert.equal(got.state, 'matched')
  assert.equal(got.line, 'ready on 8080')
  assert.equal(got.cursor, 'ready on 8080\n'.length)
  const late = await m.waitFor(h, 'never', { timeoutMs: 100, cursor: got.cursor })
  assert.equal(late.state, 'timed_out')
  await m.cancel(h)

  const port = await freePort()
  const server = m.run(`sleep 0.3; exec python3 -m http.server ${port} --bind 127.0.0.1`, { background: true })
  const open = await m.waitFor(server, `port:${port}`, { timeoutMs: 20_000 })
  assert.deepEqual(open, { state: 'port_open', port })
  await m.cancel(server)

  const dies = m.run('exit 3', { background: true })
  const ended = await m.waitFor(dies, `port:${await freePort()}`, { timeoutMs: 20_000 })
  assert.equal(ended.state, 'ended')
  assert.equal(ended.result.status, 'failed')
  await assert.rejects(m.waitFor(dies, 'port:nope'), { code: 'INVALID_ARGUMENT' })
})

test('pause stops output, resume continues, a paused task can be cancelled', async (t) => {
  const m = manager(t)
  const h = m.run('i=0; while true; do echo line $i; i=$((i+1)); sleep 0.01; done', { background: true })
  await m.waitFor(h, 'line 3', { timeoutMs: 20_000 })
  const info = await m.pause(h)
  assert.equal(info.paused, true)
  await sleep(50) // let what is already in the pipe arrive
  const before = m.info(h).output.totalBytes
  await sleep(200) // asserts an absence: the log does not grow while paused
  assert.equal(m.info(h).output.totalBytes, before)
  assert.equal((await m.resume(h)).paused, false)
  const more = await m.waitFor(h, 'line', { timeoutMs: 20_000, cursor: before })
  assert.equal(more.state, 'matched')
  await m.pause(h)
  const final = await m.cancel(h)
  assert.equal(final.status, 'cancelled')
  assert.equal(final.paused, false)

  const fn = m.spawn(async (ctx) => { await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve)) }, { background: true })
  await assert.rejects(m.pause(fn), { code: 'INVALID_ARGUMENT' })
  await m.cancel(fn)
})

test('queueOverCapacity: a task over the cap waits queued, then runs', async (t) => {
  const m = manager(t, { maxBackground: 1, queueOverCapacity: true })
  const first = m.run('sleep 30', { background: true })
  const second = m.run('echo second', { background: true })
  assert.equal(m.info(second).status, 'queued')
  assert.equal((await m.cancel(first)).status, 'cancelled')
  const outcome = await m.collect(second, { timeoutMs: 20_000 })
  assert.equal(outcome.state, 'finished')
  assert.equal(outcome.result.status, 'completed')
})
