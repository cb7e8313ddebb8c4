import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TaskManager } from 'agent-tasks'
const root = mkdtempSync(join(tmpdir(), 'pollab-'))
const m = new TaskManager({ root })
const t = m.run('printf "%s\\n" line-1 line-2 line-3', { background: true })
await t.collect()
const id = t.id
const end = m.poll(id).nextCursor
const N = 20000, R = 31
function time(f) { for (let i = 0; i < 5000; i++) f(); const s = []; for (let r = 0; r < R; r++) { const c0 = process.cpuUsage(); for (let i = 0; i < N; i++) f(); const c = process.cpuUsage(c0); s.push((c.user + c.system) / N) } s.sort((a, b) => a - b); return `${s[0].toFixed(2)}/${s[R >> 1].toFixed(2)}` }
const e = time(() => m.poll(id, { cursor: end }))
const d = time(() => m.poll(id, { cursor: 0 }))
const i = time(() => m.info(id))
console.log(`${process.env.LABEL} empty ${e}  data ${d}  info ${i}  (min/median µs)`)
await m.close()
rmSync(root, { recursive: true, force: true })
