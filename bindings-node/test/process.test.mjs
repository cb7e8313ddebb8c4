// Process tasks through the built package: every verb, detach during a
// flood, cancel of a process tree, and the foreground timeout policies.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { alive, manager, readAll, seqText, waitFor } from './helpers.mjs'

test('run in the foreground and finish: waitForeground, info, poll, preview, collect', async (t) => {
  const m = manager(t)
  const h = m.run('printf "hello\\n"; printf "oops\\n" >&2; exit 3', { description: 'greet' })
  assert.match(h.id, /^process-[a-z0-9]+$/)
  assert.equal(h.kind, 'process')
  const fg = await h.waitForeground()
  assert.equal(fg.state, 'finished')
  assert.equal(fg.result.status, 'failed')
  assert.equal(fg.result.exit.code, 3)
  assert.equal(fg.result.output.stdoutBytes, 6)
  assert.equal(fg.result.output.stderrBytes, 5)

  const info = m.info(h.id)
  assert.equal(info.description, 'greet')
  assert.equal(info.status, 'failed')
  assert.equal(info.foreground, false)

  const page = m.poll(h.id)
  assert.ok(Buffer.isBuffer(page.data))
  assert.equal(page.data.toString(), page.text)
  assert.ok(page.text.includes('hello\n') && page.text.includes('oops\n'))
  assert.equal(page.eof, true)
  assert.equal(page.nextCursor, 11)
  assert.deepEqual(new Set(page.spans.map((s) => s.stream)), new Set(['stdout', 'stderr']))

  const preview = m.preview(h, { headBytes: 3, tailBytes: 3 })
  assert.equal(preview.totalBytes, 11)
  assert.equal(preview.omittedBytes, 5)
  assert.match(preview.text, /\[\.\.\. 5 bytes omitted \.\.\.\]/)

  const collected = await m.collect(h)
  assert.equal(collected.state, 'finished')
  assert.equal(collected.result.id, h.id)
  // A foreground task that ended without detaching is not background work.
  assert.equal(m.list().length, 0)
})

test('argv, cwd, env, stdin', async (t) => {
  const m = manager(t)
  const h = m.run(['sh', '-c', 'pwd; echo "$GREETING"; cat'], {
    cwd: '/tmp',
    env: { GREETING: 'hi there' },
    stdin: 'from stdin',
  })
  const fg = await h.waitForeground()
  assert.equal(fg.result.status, 'completed')
  assert.equal(h.poll().text, '/tmp\nhi there\nfrom stdin')
})

test('detach a running foreground task: the waiter is released, the task goes on', async (t) => {
  const m = manager(t)
  const h = m.run('echo start; while [ ! -e "$STOP" ]; do sleep 0.02; done; echo end', {
    env: { STOP: `${m.root}/stop` },
  })
  const waiting = h.waitForeground()
  await waitFor(() => h.poll().text.includes('start'), { what: 'first output' })
  const info = h.detach()
  assert.equal(info.detached, true)
  assert.equal(info.foreground, false)
  assert.equal(info.output.spilled, true)
  const fg = await waiting
  assert.equal(fg.state, 'detached')
  assert.equal(fg.info.status, 'running')
  // A second wait, and a detach of a background task, answer at once.
  assert.equal((await m.waitForeground(h)).state, 'detached')
  assert.equal(m.detach(h).detached, true)
  assert.deepEqual(m.list({ activeOnly: true }).map((i) => i.id), [h.id])

  const still = await h.collect({ timeoutMs: 0 })
  assert.equal(still.state, 'still_running')
  assert.equal(still.info.id, h.id)

  const { writeFileSync } = await import('node:fs')
  writeFileSync(`${m.root}/stop`, '')
  const done = await h.collect({ timeoutMs: 20_000 })
  assert.equal(done.state, 'finished')
  assert.equal(done.result.status, 'completed')
  assert.equal((await readAll(m, h.id)).toString(), 'start\nend\n')
})

test('detach during a flood loses no byte, with a reader polling throughout', async (t) => {
  const m = manager(t, { memoryLimit: 64 << 20 })
  const stop = `${m.root}/stop`
  // Numbered lines as fast as awk prints them, until the stop file exists.
  const h = m.run(
    `awk 'BEGIN { for (i = 1; ; i++) { print i; if (i % 20000 == 0 && system("test -e ${stop}") == 0) exit } }'`,
    { timeoutMs: null },
  )
  const { writeFileSync } = await import('node:fs')
  const chunks = []
  let cursor = 0
  let detachedAt = -1
  for (;;) {
    const page = m.poll(h.id, { cursor, maxBytes: 256 << 10 })
    if (page.data.length > 0) chunks.push(page.data)
    assert.equal(page.cursor, cursor, 'no byte is skipped')
    assert.equal(page.omittedBytes, 0)
    cursor = page.nextCursor
    if (detachedAt < 0 && cursor > 1 << 20) {
      const info = m.detach(h.id)
      assert.equal(info.status, 'running')
      assert.equal(info.detached, true)
      assert.equal(info.output.spilled, true)
      detachedAt = cursor
    }
    if (detachedAt > 0 && cursor > detachedAt + (2 << 20)) writeFileSync(stop, '')
    if (page.eof) break
    if (page.data.length === 0) await m.collect(h.id, { timeoutMs: 20 })
  }
  const result = await h.collect()
  assert.equal(result.result.status, 'completed')
  const all = Buffer.concat(chunks)
  assert.equal(all.length, result.result.output.totalBytes)
  assert.ok(all.length > detachedAt + (2 << 20), 'the flood went on after the detach')
  const lines = all.toString().split('\n')
  assert.equal(lines.pop(), '', 'the output ends with a full line')
  assert.equal(lines.length % 20000, 0)
  assert.ok(all.equals(Buffer.from(seqText(lines.length))), 'every byte once, in order')
  // A second reader from 0 reads the same bytes back from disk.
  assert.ok((await readAll(m, h.id, { maxBytes: 4 << 20 })).equals(all))
})

test('non-UTF-8 output: bytes exact in the Buffer, text decoded lossily', async (t) => {
  const m = manager(t)
  const h = m.run("printf 'a\\377b\\303\\251'")
  await h.waitForeground()
  const page = h.poll()
  assert.deepEqual([...page.data], [0x61, 0xff, 0x62, 0xc3, 0xa9])
  assert.equal(page.text, 'a\uFFFDbé')
})

test('cancel kills the whole process tree and records the reason', async (t) => {
  const m = manager(t)
  const h = m.run(
    "sleep 1000 & echo $!; sh -c 'sleep 1000 & echo $!; wait' & wait",
    { background: true },
  )
  const pids = await waitFor(() => {
    const lines = h.poll().text.trim().split('\n').filter(Boolean)
    return lines.length >= 2 ? lines.map(Number) : null
  }, { what: 'the grandchildren to start' })
  for (const pid of pids) assert.ok(alive(pid))
  const info = await m.cancel(h, { reason: 'not needed' })
  assert.equal(info.status, 'cancelled')
  assert.deepEqual(info.cancelReason, { kind: 'user', message: 'not needed' })
  await waitFor(() => pids.every((pid) => !alive(pid)), { what: 'every process of the tree to die' })
  // Idempotent.
  assert.equal((await h.cancel()).status, 'cancelled')
})

test('cancel escalates to SIGKILL after the kill grace', async (t) => {
  const m = manager(t)
  const h = m.run("trap '' TERM; sleep 1000 & echo $!; wait", { background: true, killGraceMs: 200 })
  const pid = await waitFor(() => Number(h.poll().text.trim()) || null, { what: 'the child to start' })
  const info = await h.cancel()
  assert.equal(info.status, 'cancelled')
  assert.equal(info.exit?.signal, 9, 'SIGTERM was ignored, so it took SIGKILL after the grace')
  await waitFor(() => !alive(pid), { what: 'the TERM-ignoring child to die' })
})

test('a foreground timeout detaches (onTimeout detach) or kills (onTimeout kill)', async (t) => {
  const m = manager(t)
  const slow = 'echo begin; sleep 30'
  const detached = m.run(slow, { timeoutMs: 100, onTimeout: 'detach' })
  const fg = await detached.waitForeground()
  assert.equal(fg.state, 'detached')
  assert.equal(fg.info.status, 'running')
  await detached.cancel()

  const killed = m.run(slow, { timeoutMs: 100, onTimeout: 'kill' })
  const end = await killed.waitForeground()
  assert.equal(end.state, 'finished')
  assert.equal(end.result.status, 'timed_out')
  assert.equal(end.result.cancelReason.kind, 'timeout')
})

test('send with { eof: true } closes an interactive process stdin: wc -l ends with the count', async (t) => {
  const m = manager(t)
  const h = m.run('wc -l', { background: true, interactive: true })
  m.send(h, 'one\n')
  h.send(Buffer.from('two\n'))
  m.send(h, 'three\n', { eof: true })
  const done = await h.collect({ timeoutMs: 20_000 })
  assert.equal(done.result.status, 'completed')
  assert.equal(h.poll().text.trim(), '3')
  assert.throws(() => m.send(h, 'too late\n'), { code: 'NOT_RECEIVING' })

  // The end of input alone, from the handle and from the manager.
  const alone = m.run('wc -l', { background: true, interactive: true })
  alone.send('a\n')
  alone.send({ eof: true })
  assert.equal((await alone.collect({ timeoutMs: 20_000 })).result.status, 'completed')
  assert.equal(alone.poll().text.trim(), '1')
  const empty = m.run('wc -l', { background: true, interactive: true })
  m.send(empty, null, { eof: true })
  assert.equal((await empty.collect({ timeoutMs: 20_000 })).result.status, 'completed')
  assert.equal(empty.poll().text.trim(), '0')

  // Neither a message nor the end of input; a mistyped option.
  const cat = m.run('cat', { background: true, interactive: true })
  assert.throws(() => m.send(cat), { code: 'INVALID_ARGUMENT', message: /`message`/ })
  assert.throws(() => m.send(cat, 'x', { eof: 'yes' }), { code: 'INVALID_ARGUMENT', message: /`eof`/ })
  assert.throws(() => m.send(cat, 'x', { eop: true }), { code: 'INVALID_ARGUMENT', message: /did you mean `eof`/ })
  await m.cancel(cat)
})

test('send writes to an interactive process stdin', async (t) => {
  const m = manager(t)
  const h = m.run('read line; echo "got $line"', { background: true, interactive: true })
  m.send(h, 'steer\n')
  const done = await h.collect({ timeoutMs: 20_000 })
  assert.equal(done.result.status, 'completed')
  assert.equal(h.poll().text, 'got steer\n')
})
