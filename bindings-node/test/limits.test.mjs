// Resource limits through the built package: `limits` on `run` and on the
// manager (its default), `unenforcedLimits`, on this host's real cgroups. A
// memory hog is killed at its limit and said so, with its peak in the
// result's usage; a bad `limits` object is INVALID_ARGUMENT naming the key.
// The tests that make limit cgroups check that none is left afterwards.
import assert from 'node:assert/strict'
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

import { TaskManager } from 'agent-tasks'

import { manager } from './helpers.mjs'

const MIB = 1024 * 1024
// Keeps 256 MiB of touched pages (8 MiB at a time), then says so.
const HOG = [
  'python3',
  '-c',
  "import sys\nkept = []\nfor i in range(32):\n    kept.append(b'x' * (8 << 20))\nprint('done'); sys.stdout.flush()",
]

/** This process's folder in the v1 hierarchy of `controller`, if writable. */
function ownV1Dir(controller) {
  let lines
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')
  } catch {
    return null
  }
  for (const line of lines) {
    const [, list, path] = line.split(/:(.*?):/)
    if (list === undefined || !list.split(',').includes(controller)) continue
    const dir = join(`/sys/fs/cgroup/${controller}`, path)
    try {
      accessSync(dir, constants.W_OK)
      return dir
    } catch {
      return null
    }
  }
  return null
}

function canLimitMemory() {
  if (ownV1Dir('memory') !== null) return true
  try {
    const own = readFileSync('/proc/self/cgroup', 'utf8').trim()
    if (!own.startsWith('0::')) return false
    const control = join('/sys/fs/cgroup', own.slice(3), 'cgroup.subtree_control')
    return existsSync(control) && readFileSync(control, 'utf8').split(/\s+/).includes('memory')
  } catch {
    return false
  }
}

/** The limit cgroups this process's managers made, still there. */
function limitCgroupsLeft() {
  const prefixes = [`agent-tasks-h${process.pid}-lim-`, `agent-tasks-h${process.pid}-mgr-`]
  return ['memory', 'pids', 'cpu'].flatMap((c) => {
    const dir = ownV1Dir(c)
    return dir === null ? [] : readdirSync(dir).filter((n) => prefixes.some((p) => n.startsWith(p)))
  })
}

const noMemoryCgroup = canLimitMemory() ? false : 'no memory controller to limit with here'

test('a memory hog is killed at its limit, with its peak in the usage', { skip: noMemoryCgroup, timeout: 120_000 }, async (t) => {
  const m = manager(t)
  const h = m.run(HOG, { limits: { memory: 64 * MIB }, timeoutMs: 60_000, onTimeout: 'kill' })
  const { result } = await m.collect(h, { signal: AbortSignal.timeout(60_000) })
  assert.equal(result.status, 'failed', JSON.stringify(result))
  assert.match(result.error, /^killed: memory limit 64 MiB reached \(OOM\), peak /)
  assert.ok(!m.poll(h).text.includes('done'))
  assert.ok(result.usage, 'usage in the result')
  assert.ok(result.usage.peakMemoryBytes > 0 && result.usage.peakMemoryBytes <= 65 * MIB, JSON.stringify(result.usage))
  assert.equal(result.usage.memorySource, 'cgroup')
  const info = m.info(h)
  assert.equal(info.limits.enforced.memory, 64 * MIB)
  assert.equal(info.limits.notEnforced, undefined)
  // The host goes on: a task without limits completes.
  const after = await m.collect(m.run('echo alive'), { signal: AbortSignal.timeout(20_000) })
  assert.equal(after.result.status, 'completed')
  await m.close()
  assert.deepEqual(limitCgroupsLeft(), [])
})

test("the manager's default limits apply to a task that sets none", { skip: noMemoryCgroup, timeout: 120_000 }, async (t) => {
  const m = manager(t, { limits: { memory: 64 * MIB }, unenforcedLimits: 'refuse' })
  const h = m.run(HOG, { timeoutMs: 60_000, onTimeout: 'kill' })
  const { result } = await m.collect(h, { signal: AbortSignal.timeout(60_000) })
  assert.equal(result.status, 'failed', JSON.stringify(result))
  assert.match(result.error, /memory limit 64 MiB reached \(OOM\)/)
  assert.ok(result.usage.peakMemoryBytes > 0)
  // A task's own limits go over the default, kind by kind.
  const own = m.run('echo ok', { limits: { pids: 64, memory: null } })
  assert.equal((await m.collect(own, { signal: AbortSignal.timeout(20_000) })).result.status, 'completed')
  assert.deepEqual(m.info(own).limits.enforced, { memory: 64 * MIB, pids: 64 })
  await m.close()
  assert.deepEqual(limitCgroupsLeft(), [])
})

test('an unknown limit is INVALID_ARGUMENT with a "did you mean" hint', (t) => {
  const m = manager(t)
  assert.throws(() => m.run('true', { limits: { memroy: 1 } }), (err) => {
    assert.equal(err.code, 'INVALID_ARGUMENT')
    assert.match(err.message, /`limits\.memroy`/)
    assert.match(err.message, /did you mean `memory`\?/)
    return true
  })
  assert.throws(() => new TaskManager({ limits: { cpus: 1 } }), (err) => {
    assert.equal(err.code, 'INVALID_ARGUMENT')
    assert.match(err.message, /`limits\.cpus`.*did you mean `cpu`\?/)
    return true
  })
  assert.deepEqual(m.list(), [])
})

for (const [limits, name] of [
  [{ memory: '64M' }, 'limits.memory'],
  [{ memory: 1.5 }, 'limits.memory'],
  [{ pids: -1 }, 'limits.pids'],
  [{ cpu: 'half' }, 'limits.cpu'],
  // The core's ranges.
  [{ memory: 1000 }, 'limits.memory'],
  [{ pids: 0 }, 'limits.pids'],
  [{ cpu: 0 }, 'limits.cpu'],
  [[1], 'limits'],
  ['64M', 'limits'],
]) {
  test(`limits ${JSON.stringify(limits)} is INVALID_ARGUMENT naming ${name}`, (t) => {
    const m = manager(t)
    assert.throws(() => m.run('true', { limits }), (err) => {
      assert.equal(err.code, 'INVALID_ARGUMENT')
      assert.ok(err.message.startsWith(`invalid argument \`${name}\``), err.message)
      return true
    })
  })
}

test('a bad default or policy is refused when the manager is made', async (t) => {
  assert.throws(() => manager(t, { limits: { memory: 10 } }), (err) => {
    assert.equal(err.code, 'INVALID_ARGUMENT')
    assert.match(err.message, /`limits\.memory`/)
    return true
  })
  assert.throws(() => manager(t, { unenforcedLimits: 'ignore' }), (err) => {
    assert.equal(err.code, 'INVALID_ARGUMENT')
    assert.match(err.message, /`unenforcedLimits`.*refuse, report/)
    return true
  })
  const m = manager(t, { unenforcedLimits: 'report' })
  assert.equal((await m.collect(m.run('true'), { signal: AbortSignal.timeout(20_000) })).result.status, 'completed')
})

test("at the manager's memory ceiling the hog is stopped and said so, the others run on", { skip: ownV1Dir('memory') === null ? 'no v1 memory hierarchy for a ceiling here' : false, timeout: 120_000 }, async (t) => {
  const m = manager(t, { limitsCeiling: { memory: 96 * MIB } })
  const quiet = m.run('echo waiting; sleep 1000', { background: true })
  await m.waitFor(quiet, 'waiting', { signal: AbortSignal.timeout(20_000) })
  const { result } = await m.collect(m.run(HOG, { timeoutMs: 60_000, onTimeout: 'kill' }), { signal: AbortSignal.timeout(60_000) })
  assert.equal(result.status, 'failed', JSON.stringify(result))
  assert.match(result.error, /^killed: memory ceiling of the manager 96 MiB reached \(OOM\)/)
  assert.deepEqual(result.usage.limitsReached.map((r) => [r.limit, r.scope]), [['memory', 'ceiling']])
  assert.equal(m.info(quiet).status, 'running')
  await m.close()
  // The ceiling is let go at the close; the kernel may take a moment to let
  // go of the killed tasks' cgroups inside it.
  for (const deadline = Date.now() + 20_000; limitCgroupsLeft().length > 0 && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  assert.deepEqual(limitCgroupsLeft(), [])
})

test('a bad ceiling is refused by name', (t) => {
  assert.throws(() => manager(t, { limitsCeiling: { pids: 0 } }), (err) => {
    assert.equal(err.code, 'INVALID_ARGUMENT')
    assert.match(err.message, /`limitsCeiling\.pids`/)
    return true
  })
  assert.throws(() => manager(t, { limitsCeiling: { memroy: MIB } }), (err) => {
    assert.equal(err.code, 'INVALID_ARGUMENT')
    assert.match(err.message, /`limitsCeiling\.memroy`/)
    assert.match(err.message, /did you mean `memory`\?/)
    return true
  })
})
