// Benchmarks of the Node binding (goals, not tests):
//   1. per-call overhead of `poll` from JS (goal: under 10 µs);
//   2. a JS task's output path, `ctx.write`, against writing the same chunks
//      into an array of Buffers (goal: within 2x).
// Run with a release build: `npm run build && npm run bench`.
// Options: --quick (smaller runs, for a smoke test).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'

import { NativeTaskManager, TaskManager } from 'agent-tasks'

const quick = process.argv.includes('--quick')
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (x, digits = 2) => x.toFixed(digits)

const root = mkdtempSync(join(tmpdir(), 'agent-tasks-bench-'))
// Default limits: a foreground task keeps its first MiB in memory, then spills
// to output.log; a background task writes output.log from the start.
const manager = new TaskManager({ root })

try {
  // ---- 1. poll overhead ----------------------------------------------------
  const task = manager.run('printf "%s\\n" line-1 line-2 line-3', { background: true })
  await task.collect()
  const end = task.poll().nextCursor
  const calls = quick ? 20_000 : 200_000
  const rounds = quick ? 3 : 7

  function timePoll(poll) {
    for (let i = 0; i < 2_000; i++) poll() // warm up
    const samples = []
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now()
      for (let i = 0; i < calls; i++) poll()
      samples.push(((performance.now() - t0) * 1000) / calls)
    }
    return median(samples)
  }
  const id = task.id
  const emptyPoll = timePoll(() => manager.poll(id, { cursor: end }))
  const dataPoll = timePoll(() => manager.poll(id, { cursor: 0 }))
  const infoCall = timePoll(() => manager.info(id))
  // The same native call without the JS wrapper, to show what the wrapper costs.
  const raw = new NativeTaskManager({ root: join(root, 'raw') })
  const rawTask = raw.run('true', { background: true })
  await raw.collect(rawTask.id)
  const rawPoll = timePoll(() => raw.poll(rawTask.id, 0))
  await raw.close()

  console.log('poll overhead (median of rounds, per call)')
  console.log(`  poll, no new output             ${fmt(emptyPoll)} µs   (goal: < 10 µs)`)
  console.log(`  poll, 21 bytes of output        ${fmt(dataPoll)} µs`)
  console.log(`  info                            ${fmt(infoCall)} µs`)
  console.log(`  native poll, no JS wrapper      ${fmt(rawPoll)} µs`)

  // ---- 2. output path of a JS task ------------------------------------------
  const total = quick ? 4 << 20 : 16 << 20
  const results = []
  for (const [label, size, kind] of [
    ['100-byte text lines', 100, 'string'],
    ['4 KiB text chunks', 4096, 'string'],
    ['4 KiB Buffer chunks', 4096, 'buffer'],
  ]) {
    const count = Math.floor(total / size)
    const text = 'x'.repeat(size - 1) + '\n'
    const chunk = kind === 'string' ? text : Buffer.from(text)

    // Baseline: the same chunks into an array of Buffers (what a host does by hand).
    const baseline = []
    for (let r = 0; r < rounds; r++) {
      const out = []
      const t0 = performance.now()
      if (kind === 'string') for (let i = 0; i < count; i++) out.push(Buffer.from(chunk))
      else for (let i = 0; i < count; i++) out.push(Buffer.from(chunk)) // a copy, as the task's buffer is reused
      baseline.push(performance.now() - t0)
      if (out.length !== count) throw new Error('unreachable')
    }

    // Through a foreground JS task: ctx.write into the task's bounded output
    // (memory, then output.log past the first MiB).
    const viaTask = []
    for (let r = 0; r < rounds; r++) {
      const h = manager.spawn((ctx) => {
        const t0 = performance.now()
        for (let i = 0; i < count; i++) ctx.write(chunk)
        return performance.now() - t0
      })
      const fg = await h.waitForeground()
      if (fg.result.output.totalBytes !== count * size) throw new Error('bytes lost')
      viaTask.push(fg.result.value)
      await manager.gc({ maxCount: 0 })
    }

    // The same in a background task: output.log from the start.
    const toDisk = []
    for (let r = 0; r < rounds; r++) {
      const h = manager.spawn((ctx) => {
        const t0 = performance.now()
        for (let i = 0; i < count; i++) ctx.write(chunk)
        return performance.now() - t0
      }, { background: true })
      const done = await h.collect()
      if (done.result.output.totalBytes !== count * size) throw new Error('bytes lost')
      toDisk.push(done.result.value)
      await manager.gc({ maxCount: 0 })
    }
    const b = median(baseline)
    const v = median(viaTask)
    const d = median(toDisk)
    const mib = (count * size) / (1 << 20)
    results.push({ label, mib, b, v, d })
  }
  console.log(`\nJS task output path: ${fmt(total / (1 << 20), 0)} MiB per run, median of ${rounds} runs`)
  console.log('  time ratios are ctx.write time / array-of-Buffers time (goal: <= 2)')
  console.log('  chunks                 array of Buffers   ctx.write, foreground   ratio   ctx.write, background   ratio')
  for (const { label, mib, b, v, d } of results) {
    console.log(
      `  ${label.padEnd(22)} ${fmt(mib / (b / 1000), 0).padStart(8)} MiB/s   ${fmt(mib / (v / 1000), 0).padStart(13)} MiB/s   ${fmt(v / b).padStart(5)}x   ${fmt(mib / (d / 1000), 0).padStart(13)} MiB/s   ${fmt(d / b).padStart(5)}x`,
    )
  }
} finally {
  await manager.close()
  rmSync(root, { recursive: true, force: true })
}
