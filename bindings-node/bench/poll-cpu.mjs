// Poll overhead in CPU time per call (process.cpuUsage, user + system), for
// comparing two builds on a loaded machine, where wall-clock rounds swing:
// run it in each checkout in turn (`node bench/poll-cpu.mjs`), several times.
// Prints the minimum and the median of 31 rounds of 20,000 calls, in µs.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TaskManager } from 'agent-tasks'

const root = mkdtempSync(join(tmpdir(), 'agent-tasks-poll-cpu-'))
const m = new TaskManager({ root })
const t = m.run('printf "%s\\n" line-1 line-2 line-3', { background: true })
await t.collect()
const id = t.id
const end = m.poll(id).nextCursor
const N = 20_000
const R = 31

function time(f) {
  for (let i = 0; i < 5_000; i++) f() // warm up
  const samples = []
  for (let r = 0; r < R; r++) {
    const c0 = process.cpuUsage()
    for (let i = 0; i < N; i++) f()
    const c = process.cpuUsage(c0)
    samples.push((c.user + c.system) / N)
  }
  samples.sort((a, b) => a - b)
  return `${samples[0].toFixed(2)}/${samples[R >> 1].toFixed(2)}`
}

const empty = time(() => m.poll(id, { cursor: end }))
const data = time(() => m.poll(id, { cursor: 0 }))
const info = time(() => m.info(id))
console.log(`poll, no new output ${empty}   poll, 21 bytes ${data}   info ${info}   (µs of CPU per call, min/median)`)
await m.close()
rmSync(root, { recursive: true, force: true })
