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

test('examples/node/agent-loop.mjs runs the scripted agent loop through a ToolBox', async (t) => {
  // A folder where `agent-tasks` resolves to this package, like an install.
  const dir = mkdtempSync(join(tmpdir(), 'agent-tasks-example-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(packageDir, join(dir, 'node_modules', 'agent-tasks'), 'dir')
  copyFileSync(example, join(dir, 'agent-loop.mjs'))
  const { stdout } = await promisify(execFile)(process.execPath, [join(dir, 'agent-loop.mjs')], {
    timeout: 60_000,
  })
  assert.match(stdout, /^host registers 6 tools: task_run, task_list, task_output, task_wait, task_cancel, task_send$/m)
  // The build outlived its 1 s foreground wait and moved to the background.
  const build = /<tool_result name="task_run">\ntask_id: (process-\w+)\nstatus: running \(background\)/.exec(stdout)
  assert.ok(build, stdout)
  const id = build[1]
  assert.match(stdout, /note: still running after 1\.0 s, so it was moved to the background/)
  assert.match(stdout, new RegExp(`<tool_result name="task_list">\\n2 tasks \\(\\d running\\):\\n${id}`))
  // The host drained and acked both notifications at its idle point.
  assert.match(stdout, new RegExp(`<notification name="finished">\\nBackground task ${id} completed \\(exit code 0\\)`))
  assert.match(stdout, /<notification name="finished">\nBackground task subagent-\w+ completed\nkind: subagent/)
  assert.match(stdout, /subagent: looked into "look at test_cache first"/)
  assert.match(stdout, /host: notifications left for session-1: 0/)
  // The filtered log and the mistake.
  assert.match(stdout, /filter: \^warning \(1 of 8 lines matched\)\n--- output ---\nwarning: unused variable `x`\n<\/tool_result>/)
  assert.match(stdout, new RegExp(`error: no task with id \`process-nosuchtask\`; your tasks are: .*${id}`))
  // No compile line is in both the task_run answer and the task_output one read from its cursor.
  const answers = [...stdout.matchAll(/<tool_result name="task_(?:run|output)">([\s\S]*?)<\/tool_result>/g)].slice(0, 2)
  for (let i = 1; i <= 6; i++) {
    const line = `   Compiling crate-${i} v0.1.0`
    const seen = answers.filter((m) => m[1].split('\n').includes(line)).length
    assert.ok(seen <= 1, `crate ${i} shown at most once before the end`)
  }
})
