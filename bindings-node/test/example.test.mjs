// The Node examples (examples/node/*.mjs) run against the built package, as
// they would after `npm install ./bindings-node`.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')

/** Runs examples/node/<name> in a folder where `agent-tasks` resolves to this package, like an install; its stdout. */
async function runExample(t, name) {
  const dir = mkdtempSync(join(tmpdir(), 'agent-tasks-example-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(packageDir, join(dir, 'node_modules', 'agent-tasks'), 'dir')
  copyFileSync(join(packageDir, '..', 'examples', 'node', name), join(dir, name))
  const { stdout } = await promisify(execFile)(process.execPath, [join(dir, name)], { timeout: 60_000 })
  return stdout
}

test('examples/node/subagents.mjs delegates three subagents, checks, steers, cancels, and injects roster and notifications', async (t) => {
  const stdout = await runExample(t, 'subagents.mjs')
  assert.match(stdout, /^host registers 7 tools: task_run, task_list, task_output, task_wait, task_cancel, task_send, task_delegate$/m)
  const ids = [...stdout.matchAll(/^ {4}task_id: (agent-\w+)\n {4}status: running \(background\)/gm)].slice(0, 3).map((m) => m[1])
  assert.equal(ids.length, 3, stdout)
  assert.match(stdout, /--- roster injected into the next turn\n {4}Open background work \(3\):/)
  // The check: a wait until its first line, which the answer shows.
  assert.match(stdout, /ready: an output line matched \(next cursor: \d+\): researching: Why are cached pages stale/)
  // Steered: the value answers with the hint; cancelled with the reason.
  assert.match(stdout, /"answer":"found it by following: start from auth\/session\.rs"/)
  assert.match(stdout, /status: cancelled\n {4}reason: cancelled: the uploader is being rewritten/)
  // The one that ended on its own is told once, with its value and source.
  const notes = stdout.split('--- notification injected into the next turn')
  assert.equal(notes.length, 2, 'one notification in all')
  assert.match(notes[1], new RegExp(`Background task ${ids[0]} completed`))
  assert.match(notes[1], /answers: researcher with \{"goal":"Why are cached pages stale/)
  assert.match(notes[1], /"answer":"the cache key ignores the locale"/)
})

test('examples/node/agent-loop.mjs runs the scripted agent loop through a ToolBox', async (t) => {
  const stdout = await runExample(t, 'agent-loop.mjs')
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
