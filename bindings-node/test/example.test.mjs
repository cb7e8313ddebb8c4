// The Node example (examples/node/agent-loop.mjs) runs against the built
// package, as it would after `npm install ./bindings-node`.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const example = join(packageDir, '..', 'examples', 'node', 'agent-loop.mjs')

test('examples/node/agent-loop.mjs runs the scripted agent loop', async (t) => {
  // A folder where `agent-tasks` resolves to this package, like an install.
  const dir = mkdtempSync(join(tmpdir(), 'agent-tasks-example-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(packageDir, join(dir, 'node_modules', 'agent-tasks'), 'dir')
  copyFileSync(example, join(dir, 'agent-loop.mjs'))
  const { stdout } = await promisify(execFile)(process.execPath, [join(dir, 'agent-loop.mjs')], {
    timeout: 60_000,
  })
  assert.match(stdout, /host> {2}detached process-\w+: the foreground wait returned "detached"/)
  assert.match(stdout, /model> Command moved to the background as process-\w+ \(still running\)/)
  assert.match(stdout, /model> \[process-\w+ completed, exit 0\] final output:/)
  assert.match(stdout, /model> build ok/)
  assert.match(stdout, /model> \[subagent-\w+ completed\] result: \{"steeredBy":\["focus on test_login first"\],"verdict":".*"\}/)
  assert.match(stdout, /model> Background task process-\w+ completed \(exit code 0\)/)
  assert.match(stdout, /model> Background task subagent-\w+ completed/)
  assert.match(stdout, /host> {2}acknowledged 2 notifications/)
  // Every unit line appears exactly once across the polls.
  for (let i = 1; i <= 8; i++) {
    const lines = stdout.split('\n').filter((l) => l === `model> compiling unit ${i}/8`)
    assert.ok(lines.length >= 1, `unit ${i} shown`)
  }
})
