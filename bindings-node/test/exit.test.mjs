// A Node process that holds a manager with no running tasks exits by itself:
// nothing the addon holds (thread-safe functions, timers, the runtime) keeps
// the event loop alive. Checked in a child `node -e` process.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { alive, waitFor } from './helpers.mjs'

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')

/** Runs `script` with `node -e`; resolves with its exit code, output and run time. */
function runNode(script, { timeoutMs = 30_000, onLine } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, ['-e', script], { cwd: packageDir, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
      if (onLine) onLine(stdout)
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`node -e did not exit within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`))
    }, timeoutMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
}

test('a process holding a manager whose tasks have ended exits by itself', async () => {
  const script = `
    const { TaskManager } = require('agent-tasks')
    ;(async () => {
      const m = new TaskManager({ backgroundTimeoutMs: 600000 })
      m.onEvent(() => {})            // a callback subscription
      const events = m.events()      // an iterator nobody awaits
      const p = m.run('echo process', { background: true })
      await p.collect()
      const f = m.spawn(async (ctx) => { ctx.write('fn'); return 1 })
      await f.waitForeground()
      const d = m.run('sleep 0.2')   // a foreground task, detached, then ended
      d.detach()
      await d.collect()
      const c = m.spawn((ctx) => new Promise((r) => ctx.signal.addEventListener('abort', r)), { background: true })
      await c.cancel()
      await m.collect(p, { timeoutMs: 5, signal: new AbortController().signal })
      globalThis.keep = { m, events }
      console.log('tasks done')
    })()
  `
  const r = await runNode(script)
  assert.equal(r.stderr, '')
  assert.equal(r.stdout, 'tasks done\n')
  assert.equal(r.code, 0)
})

test('exiting without close kills the process group of a task still running', async () => {
  let pid
  const script = `
    const { TaskManager } = require('agent-tasks')
    const m = new TaskManager()
    const h = m.run('echo $$; exec sleep 300', { background: true })
    const wait = () => {
      const text = m.poll(h).text
      if (text) console.log(text.trim())
      else setTimeout(wait, 10)
    }
    wait()
  `
  const r = await runNode(script, {
    onLine: (out) => {
      pid ??= Number(out.trim()) || undefined
    },
  })
  assert.equal(r.code, 0)
  assert.ok(pid > 0, `the task printed its pid: ${r.stdout}`)
  await waitFor(() => !alive(pid), { timeoutMs: 10_000, what: `the orphan ${pid} to be killed` })
})
