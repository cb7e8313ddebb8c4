// PTY mode through the built package: a `pty` task sees a terminal and one
// stream, reads what `send` types, reacts to `resize`, is interrupted by
// Ctrl+C typed with `sendKeys`; the tools run on a terminal and type keys;
// bad sizes, unknown keys and resizing a task without a terminal are refused.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { ToolBox } from 'agent-tasks'

import { manager, readAll } from './helpers.mjs'

test('a pty task sees a terminal; stdout and stderr are one stream', async (t) => {
  const m = manager(t)
  const h = m.run('test -t 0 && test -t 1 && echo on-a-tty; echo to-stderr >&2; stty size', {
    pty: { cols: 80, rows: 24 },
    background: true,
  })
  const done = await h.collect({ timeoutMs: 20_000 })
  assert.equal(done.result.status, 'completed')
  const out = (await readAll(m, h.id)).toString()
  assert.ok(out.includes('on-a-tty\r\nto-stderr\r\n24 80\r\n'), JSON.stringify(out))
})

test('send types, sendKeys types control keys, resize reaches the program', async (t) => {
  const m = manager(t)
  const h = m.run(
    "trap 'echo winch $(stty size)' WINCH; trap 'echo interrupted; exit 3' INT; " +
      'echo ready; read name; echo "hello, $name"; while :; do sleep 0.02; done',
    { pty: { cols: 80, rows: 24 }, background: true },
  )
  let got = await m.waitFor(h, '^ready', { timeoutMs: 20_000 })
  h.send('world')
  h.sendKeys(['enter'])
  got = await m.waitFor(h, '^hello, ', { timeoutMs: 20_000, cursor: got.cursor })
  assert.equal(got.line, 'hello, world')
  await h.resize(132, 43)
  got = await m.waitFor(h, '^winch ', { timeoutMs: 20_000, cursor: got.cursor })
  assert.equal(got.line, 'winch 43 132')
  m.sendKeys(h, 'ctrl+c')
  const done = await h.collect({ timeoutMs: 20_000 })
  assert.equal(done.result.status, 'failed')
  assert.equal(done.result.exit.code, 3)
})

test('the tools run on a terminal and type keys; raw text keeps escapes', async (t) => {
  const m = manager(t)
  const tools = new ToolBox(m, 'session', { ttySize: { cols: 100, rows: 30 } })
  const ran = await tools.call('task_run', { command: 'test -t 1 && echo on-a-tty; stty size', tty: true })
  assert.equal(ran.isError, false, ran.text)
  assert.ok(ran.text.includes('on-a-tty') && ran.text.includes('30 100'), ran.text)

  const colour = "printf '\\033[31mred\\033[0m\\n'"
  const clean = await tools.call('task_run', { command: colour })
  assert.ok(clean.text.includes('red') && !clean.text.includes('\x1b[31m'), clean.text)
  const raw = await new ToolBox(m, 'session', { rawText: true }).call('task_run', { command: colour })
  assert.ok(raw.text.includes('\x1b[31mred\x1b[0m'), raw.text)

  const h = m.run("trap 'echo interrupted; exit 3' INT; echo ready; while :; do sleep 0.02; done", {
    pty: { cols: 80, rows: 24 },
    background: true,
    owner: 'session',
  })
  await m.waitFor(h, '^ready', { timeoutMs: 20_000 })
  const sent = await tools.call('task_send', { task_id: h.id, keys: ['ctrl+c'] })
  assert.equal(sent.isError, false, sent.text)
  const done = await h.collect({ timeoutMs: 20_000 })
  assert.equal(done.result.exit.code, 3)
})

test('bad sizes, unknown keys and a task without a terminal are refused', async (t) => {
  const m = manager(t)
  assert.throws(() => m.run('true', { pty: { cols: 0, rows: 24 } }), { code: 'INVALID_ARGUMENT', message: /`cols`/ })
  assert.throws(() => m.run('true', { pty: { cols: 80, rows: 70_000 } }), { code: 'INVALID_ARGUMENT', message: /`rows`/ })
  const plain = m.run('sleep 30', { interactive: true, background: true })
  await assert.rejects(m.resize(plain, 80, 24), { code: 'INVALID_ARGUMENT', message: /no terminal/ })
  assert.throws(() => m.sendKeys(plain, ['hyper+x']), { code: 'INVALID_ARGUMENT', message: /`keys`/ })
  await m.cancel(plain)
})
