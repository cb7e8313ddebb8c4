// Tasks that outlive their host (`onHostExit: 'keepRunning'`): every way a
// Node host ends (`process.exit`, an uncaught exception, SIGINT, SIGKILL)
// leaves its kept task running under its supervisor (the
// `agent-tasks-supervisor` this package carries) and kills its other tasks;
// a manager that opens the root again re-attaches to the kept task and reads
// every byte and its real end. Hosts are child `node -e` processes.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { TaskManager } from '../index.js'
import { alive, readAll, waitFor } from './helpers.mjs'

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')

/** A host with a kept task and an ordinary one, ended by `end` once both run. */
function runHost(root, command, end) {
  const script = `
    const { TaskManager } = require('agent-tasks')
    const m = new TaskManager({ root: ${JSON.stringify(root)} })
    const kept = m.run(${JSON.stringify(command)}, { background: true, onHostExit: 'keepRunning' })
    const other = m.run('sleep 300', { background: true })
    const ready = () => {
      if (kept.info().pid && other.info().pid) {
        console.log(JSON.stringify({ kept: kept.id, pid: kept.info().pid, otherId: other.id, other: other.info().pid }))
        ${end}
      } else setTimeout(ready, 10)
    }
    ready()
    setInterval(() => {}, 1000)
  `
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { cwd: packageDir, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let started
    child.stdout.on('data', (d) => {
      stdout += d
      if (!started && stdout.includes('\n')) {
        started = JSON.parse(stdout.split('\n')[0])
        if (!end) child.kill('SIGKILL')
      }
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the host did not end; stdout: ${stdout}; stderr: ${stderr}`))
    }, 30_000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (!started) reject(new Error(`the host never started its tasks: ${stderr}`))
      else resolve({ started, code, signal, stderr })
    })
  })
}

const ENDINGS = {
  'process.exit': 'process.exit(3)',
  'an uncaught exception': "setTimeout(() => { throw new Error('boom') }, 0)",
  SIGINT: "process.kill(process.pid, 'SIGINT')",
  SIGKILL: '',
}

for (const [how, end] of Object.entries(ENDINGS)) {
  test(`a kept task outlives a host ended by ${how}; the next manager re-attaches`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-tasks-supervised-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const root = join(dir, 'root')
    const gate = join(dir, 'go')
    const command = `seq 1 100000; while [ ! -e '${gate}' ]; do sleep 0.02; done; echo end; exit 4`
    const { started } = await runHost(root, command, end)
    if (how !== 'SIGKILL') {
      await waitFor(() => !alive(started.other), { what: 'the other task to be gone' })
    }
    assert.ok(alive(started.pid), 'the kept task died with its host')

    const m = new TaskManager({ root })
    t.after(() => m.close())
    if (how === 'SIGKILL') {
      // The SIGKILLed host's other task outlived it: reported, and adopted by killing.
      await m.killOrphan(started.otherId)
      await waitFor(() => !alive(started.other), { what: 'the orphan to be gone' })
    }
    assert.equal(m.info(started.kept).status, 'running')
    const journal = readFileSync(join(root, 'tasks', started.kept, 'events.jsonl'), 'utf8')
    assert.ok(journal.includes('"task.reattached"'), journal)
    writeFileSync(gate, '')
    const result = (await m.collect(started.kept, { timeoutMs: 60_000 })).result
    assert.equal(result.status, 'failed')
    assert.equal(result.exit.code, 4)
    let expected = ''
    for (let i = 1; i <= 100000; i++) expected += `${i}\n`
    const data = await readAll(m, started.kept)
    assert.equal(Buffer.from(data).toString(), `${expected}end\n`)
  })
}

test('keepRunning is refused where it cannot apply, with the option named', () => {
  const m = new TaskManager()
  try {
    assert.throws(() => m.run('true', { background: true, onHostExit: 'keepRunning' }), /onHostExit/)
    assert.throws(() => m.run('true', { background: true, onHostExit: 'keep' }), /onHostExit/)
  } finally {
    m.close()
  }
  assert.ok(existsSync(join(packageDir, 'agent-tasks-supervisor')), 'npm run build puts the supervisor here')
})
