// Shared test helpers. Waits wait on conditions with generous bounds (the CI
// machine has two shared cores), never on bare sleeps.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { TaskManager } from 'agent-tasks'

/** A manager on a fresh temporary root; `t.after` closes it and removes the root. */
export function manager(t, options = {}) {
  const root = mkdtempSync(join(tmpdir(), 'agent-tasks-node-test-'))
  let m
  try {
    m = new TaskManager({ root, ...options })
  } catch (err) {
    // Refused options: the root goes now, no manager holds it.
    rmSync(root, { recursive: true, force: true })
    throw err
  }
  t.after(async () => {
    await m.close()
    // Nothing of an ended task is written after close returns (the core's
    // end waits for its file work); the retries only cover a keep-alive
    // task, which close leaves running.
    rmSync(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 })
  })
  return m
}

/** Waits until `condition()` is truthy (and returns it), checking every `every` ms, for at most `timeoutMs`. */
export async function waitFor(condition, { timeoutMs = 20_000, every = 10, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await condition()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(every)
  }
}

/** Polls a task from `cursor` until eof; returns all bytes. Waits for new output with a bounded `collect`. */
export async function readAll(m, id, { cursor = 0, maxBytes = 1 << 20, timeoutMs = 60_000 } = {}) {
  const chunks = []
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const page = m.poll(id, { cursor, maxBytes })
    if (page.data.length > 0) chunks.push(page.data)
    cursor = page.nextCursor
    if (page.eof) return Buffer.concat(chunks)
    if (page.data.length === 0) {
      if (Date.now() > deadline) throw new Error(`task ${id} did not end within ${timeoutMs} ms`)
      await m.collect(id, { timeoutMs: 20 })
    }
  }
}

/** True while a process with this pid exists (a zombie counts as gone). */
export function alive(pid) {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    // A zombie has exited; it only waits to be reaped.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !/^\d+ \(.*\) [ZX] /.test(stat)
  } catch {
    return false
  }
}

/** The numbers 1..n, one a line, as `seq 1 n` prints them. */
export function seqText(n) {
  const parts = new Array(n)
  for (let i = 0; i < n; i++) parts[i] = String(i + 1)
  return parts.join('\n') + '\n'
}
