// A Node process that holds a manager with no running tasks exits by itself:
// nothing the addon holds (thread-safe functions, timers, the runtime) keeps
// the event loop alive; and every way Node exits (the loop drained,
// `process.exit`, an uncaught exception, SIGINT, SIGTERM) leaves no task
// process running, with Node's own exit code or signal. Checked in child
// `node -e` processes.
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
      if (onLine) onLine(stdout, child)
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

// A child that starts a background task (a shell and its `sleep`), prints
// both pids as a JSON line, then does `then` (JS code run once they run).
function taskScript(then, { before = '' } = {}) {
  return `
    const { TaskManager } = require('agent-tasks')
    ${before}
    const m = new TaskManager()
    const h = m.run('sleep 300 & echo $!; wait', { background: true })
    const started = () => {
      const text = m.poll(h).text
      if (!text) return setTimeout(started, 10)
      console.log(JSON.stringify({ shell: h.info().pid, sleep: Number(text.trim()) }))
      ${then}
    }
    started()
  `
}

/** Runs `script`; `onPids(pids, child)` once it printed them; resolves with the result and the pids. */
async function runTaskScript(script, onPids = () => {}) {
  let pids
  const r = await runNode(script, {
    onLine: (out, child) => {
      if (pids !== undefined) return
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line === undefined || !out.includes('}\n')) return
      pids = JSON.parse(line)
      onPids(pids, child)
    },
  })
  assert.ok(pids?.shell > 0 && pids?.sleep > 0, `the task printed its pids: ${r.stdout} ${r.stderr}`)
  return { r, pids }
}

async function assertGone(pids) {
  for (const pid of [pids.shell, pids.sleep]) {
    await waitFor(() => !alive(pid), { timeoutMs: 5_000, what: `task process ${pid} to be gone` })
  }
}

test('process.exit() kills the running tasks; the exit code is the one given', async () => {
  const { r, pids } = await runTaskScript(taskScript('process.exit(7)'))
  assert.equal(r.signal, null)
  assert.equal(r.code, 7)
  await assertGone(pids)
})

test('an uncaught exception kills the running tasks; Node exits 1 with the error', async () => {
  const { r, pids } = await runTaskScript(taskScript(`throw new Error('boom in the host')`))
  assert.equal(r.code, 1)
  assert.match(r.stderr, /boom in the host/)
  await assertGone(pids)
})

test('SIGINT during an awaited collect kills the running tasks; Node dies of SIGINT', async () => {
  const script = taskScript(`m.collect(h).then(() => console.log('collected'))`)
  const { r, pids } = await runTaskScript(script, (_, child) => child.kill('SIGINT'))
  assert.equal(r.signal, 'SIGINT', `stdout: ${r.stdout} stderr: ${r.stderr}`)
  assert.equal(r.code, null)
  assert.doesNotMatch(r.stdout, /collected/)
  await assertGone(pids)
})

test('SIGTERM during a foreground wait kills the running tasks; Node dies of SIGTERM', async () => {
  const script = `
    const { TaskManager } = require('agent-tasks')
    const m = new TaskManager()
    const h = m.run('sleep 300 & echo $!; wait')
    const started = () => {
      const text = m.poll(h).text
      if (!text) return setTimeout(started, 10)
      console.log(JSON.stringify({ shell: h.info().pid, sleep: Number(text.trim()) }))
    }
    started()
    h.waitForeground().then(() => console.log('waited'))
  `
  const { r, pids } = await runTaskScript(script, (_, child) => child.kill('SIGTERM'))
  assert.equal(r.signal, 'SIGTERM', `stdout: ${r.stdout} stderr: ${r.stderr}`)
  assert.doesNotMatch(r.stdout, /waited/)
  await assertGone(pids)
})

test("a host's own SIGINT listener decides: the tasks run on until the host exits", async () => {
  const script = taskScript(`m.collect(h)`, {
    before: `process.on('SIGINT', () => {
      console.log('host got SIGINT')
      setTimeout(() => process.exit(3), 300)
    })`,
  })
  let stillAlive
  const { r, pids } = await runTaskScript(script, (started, child) => {
    child.kill('SIGINT')
    child.stdout.on('data', (d) => {
      if (String(d).includes('host got SIGINT')) stillAlive ??= alive(started.sleep)
    })
  })
  assert.equal(stillAlive, true, 'the task ran on after a SIGINT the host handled')
  assert.equal(r.code, 3)
  await assertGone(pids)
})

test("SIGINT kills a task a ToolBox's task_run started", async () => {
  const script = `
    const { TaskManager, ToolBox } = require('agent-tasks')
    const m = new TaskManager()
    const tools = new ToolBox(m, 'session-1')
    tools.call('task_run', { command: 'exec sleep 300', background: true }).then((answer) => {
      const started = () => {
        const pid = m.info(answer.json.info.id).pid
        if (pid === undefined) return setTimeout(started, 10)
        console.log(JSON.stringify({ shell: pid, sleep: pid }))
      }
      started()
      setInterval(() => {}, 1000)
    })
  `
  const { r, pids } = await runTaskScript(script, (_, child) => child.kill('SIGINT'))
  assert.equal(r.signal, 'SIGINT', `stdout: ${r.stdout} stderr: ${r.stderr}`)
  await assertGone(pids)
})

test('process.exit() right after run() kills the task, though its process was not started yet', async () => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'agent-tasks-exit-'))
  try {
    const pidFile = join(dir, 'pid')
    const script = `
      const { TaskManager } = require('agent-tasks')
      const m = new TaskManager()
      m.run('echo $$ > ${pidFile}.tmp && mv ${pidFile}.tmp ${pidFile} && exec sleep 300', { background: true })
      process.exit(0)
    `
    const r = await runNode(script)
    assert.equal(r.code, 0, r.stderr)
    // If the process got as far as writing its pid, it must be gone.
    let pid
    try {
      await waitFor(() => (pid = Number(readFileSync(pidFile, 'utf8'))), { timeoutMs: 1_000, what: 'a pid file' })
    } catch {
      return // killed before it wrote it
    }
    await waitFor(() => !alive(pid), { timeoutMs: 5_000, what: `task process ${pid} to be gone` })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('after every task ended, Node exits as before: no signal listener is left behind', async () => {
  // (A manager with a temporary root keeps its listeners, so that a fatal
  // signal removes the root: this one has a root of its own.)
  const script = `
    const { mkdtempSync, rmSync } = require('node:fs')
    const { join } = require('node:path')
    const { tmpdir } = require('node:os')
    const { TaskManager } = require('agent-tasks')
    const root = mkdtempSync(join(tmpdir(), 'agent-tasks-listeners-'))
    process.on('exit', () => rmSync(root, { recursive: true, force: true }))
    const m = new TaskManager({ root })
    ;(async () => {
      await m.run('true').waitForeground()
      const deadline = Date.now() + 5000
      while (process.listenerCount('SIGINT') > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20))
      }
      console.log(process.listenerCount('SIGINT'), process.listenerCount('SIGTERM'))
    })()
  `
  const r = await runNode(script)
  assert.equal(r.stdout, '0 0\n')
  assert.equal(r.code, 0)
})

test('a closed manager answers reads until Node exits; its temporary root goes at exit', async () => {
  const script = `
    const { TaskManager } = require('agent-tasks')
    const m = new TaskManager()
    ;(async () => {
      const h = m.run('echo hi', { background: true })
      await h.collect()
      await m.close()
      console.log(m.root)
      console.log((await m.collect(h)).result.status)
      process.exit(0)
    })()
  `
  const r = await runNode(script)
  assert.equal(r.code, 0, r.stderr)
  const [root, status] = r.stdout.trim().split('\n')
  assert.equal(status, 'completed')
  const { existsSync } = await import('node:fs')
  assert.equal(existsSync(root), false, `the temporary root ${root} was removed`)
})

// ---- temporary roots --------------------------------------------------------

/**
 * Runs `script` (which makes managers with temporary roots and prints each
 * root as a line `root <path>`) with TMPDIR set to a fresh folder of this
 * test; `onRoots(child)` runs once `expect` roots are printed. Resolves with
 * the result, the roots and that folder (removed after the test).
 */
async function runWithTmp(t, script, { expect = 1, onRoots = () => {} } = {}) {
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const tmp = mkdtempSync(join(tmpdir(), 'agent-tasks-node-exit-'))
  t.after(() => rmSync(tmp, { recursive: true, force: true }))
  let roots = []
  const r = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], {
      cwd: packageDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TMPDIR: tmp },
    })
    let stdout = ''
    let stderr = ''
    let told = false
    child.stdout.on('data', (d) => {
      stdout += d
      roots = [...stdout.matchAll(/^root (.+)$/gm)].map((m) => m[1])
      if (!told && roots.length >= expect) {
        told = true
        onRoots(child)
      }
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`node -e did not exit in time; stdout: ${stdout}; stderr: ${stderr}`))
    }, 30_000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
  return { r, roots, tmp }
}

async function assertNoTemporaryRoot(roots, tmp) {
  const { existsSync, readdirSync } = await import('node:fs')
  assert.ok(roots.length > 0, 'the child printed its roots')
  for (const root of roots) {
    assert.equal(dirname(root), tmp, `${root} is under the test's TMPDIR`)
    assert.equal(existsSync(root), false, `the temporary root ${root} was removed`)
  }
  assert.deepEqual(readdirSync(tmp), [], 'nothing is left in TMPDIR')
}

// A manager with a running task and one with no task, both on temporary
// roots; prints both roots, then does `then`.
function rootsScript(then) {
  return `
    const { TaskManager } = require('agent-tasks')
    const busy = new TaskManager()
    const idle = new TaskManager()
    const h = busy.run('echo started; exec sleep 300', { background: true })
    const started = () => {
      if (!busy.poll(h).text) return setTimeout(started, 10)
      console.log('root ' + busy.root)
      console.log('root ' + idle.root)
      ${then}
    }
    started()
  `
}

test('process.exit() removes the temporary roots, with a task still running', async (t) => {
  const { r, roots, tmp } = await runWithTmp(t, rootsScript('process.exit(5)'), { expect: 2 })
  assert.equal(r.code, 5, r.stderr)
  await assertNoTemporaryRoot(roots, tmp)
})

test('an uncaught exception removes the temporary roots', async (t) => {
  const { r, roots, tmp } = await runWithTmp(t, rootsScript(`throw new Error('boom in the host')`), { expect: 2 })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /boom in the host/)
  await assertNoTemporaryRoot(roots, tmp)
})

for (const signal of ['SIGTERM', 'SIGHUP', 'SIGINT']) {
  test(`${signal} removes the temporary roots; Node dies of ${signal}`, async (t) => {
    const script = rootsScript('setInterval(() => {}, 1000)')
    const { r, roots, tmp } = await runWithTmp(t, script, { expect: 2, onRoots: (child) => child.kill(signal) })
    assert.equal(r.signal, signal, `stdout: ${r.stdout} stderr: ${r.stderr}`)
    await assertNoTemporaryRoot(roots, tmp)
  })

  test(`${signal} removes the temporary root of a manager that never ran a task`, async (t) => {
    const script = `
      const { TaskManager } = require('agent-tasks')
      const m = new TaskManager()
      console.log('root ' + m.root)
      setInterval(() => {}, 1000)
    `
    const { r, roots, tmp } = await runWithTmp(t, script, { onRoots: (child) => child.kill(signal) })
    assert.equal(r.signal, signal, `stdout: ${r.stdout} stderr: ${r.stderr}`)
    await assertNoTemporaryRoot(roots, tmp)
  })
}

test('a drained event loop removes the temporary root', async (t) => {
  const script = `
    const { TaskManager } = require('agent-tasks')
    const m = new TaskManager()
    console.log('root ' + m.root)
    m.run('echo done', { background: true }).result().then((r) => console.log(r.status))
  `
  const { r, roots, tmp } = await runWithTmp(t, script)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /completed/)
  await assertNoTemporaryRoot(roots, tmp)
})
