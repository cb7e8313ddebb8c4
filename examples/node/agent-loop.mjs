// A scripted agent loop on agent-tasks, as a Node host would run it (no real
// model). The host registers the ready-made tools (`toolDefinitions`) and
// executes the model's tool calls with a `ToolBox`. The "model" is a fixed
// script of tool calls:
//
//   1. it runs a build that outlives its 1 s foreground wait, so the build
//      moves to the background and keeps running (nothing restarts, no byte
//      is lost);
//   2. meanwhile the host runs a research subagent (an async JS function) in
//      the background and steers it with messages;
//   3. the model looks at its tasks and reads the build's new output from
//      its cursor;
//   4. at its idle point the host waits for the build's `task.finished`
//      event, injects the pending notifications into the conversation and
//      acknowledges them;
//   5. the model greps the finished log, and makes a mistake (an unknown id).
//
// Every block between <tool_result> or <notification> tags is what the model
// would be shown. Run it in a project that installed the package (see the
// README: `npm install /path/to/clone/bindings-node`, or the packed tarball):
//
//   node agent-loop.mjs
import { setTimeout as sleep } from 'node:timers/promises'

import { TaskManager, ToolBox, toolDefinitions } from 'agent-tasks'

const OWNER = 'session-1'
const BUILD =
  'for i in 1 2 3 4 5 6; do echo "   Compiling crate-$i v0.1.0"; sleep 0.3; done; ' +
  "echo 'warning: unused variable `x`'; echo '    Finished dev profile'"

const host = (text) => console.log(`\nhost: ${text}`)

/** Prints what the model is shown. */
function show(tag, name, body) {
  console.log(`\n<${tag} name="${name}">\n${body.trimEnd()}\n</${tag}>`)
}

/** One tool call of the model: prints it and its answer, returns the answer's JSON. */
async function call(tools, name, args) {
  console.log(`\n>>> model calls ${name} ${JSON.stringify(args)}`)
  const answer = await tools.call(name, args)
  show('tool_result', name, answer.text)
  return answer.json
}

/** The subagent: works until told to wrap up, taking steering as it goes. */
async function research(ctx) {
  ctx.write('subagent: reading the test suite\n')
  const notes = []
  for (;;) {
    const message = await ctx.recv()
    if (message === null || message === 'wrap up') break
    notes.push(message)
    ctx.write(`subagent: looked into ${JSON.stringify(message)}\n`)
    await sleep(50, undefined, { signal: ctx.signal }) // "thinking"
  }
  return { summary: 'the flaky test races on a temp dir', followed: notes }
}

const manager = new TaskManager()
try {
  const tools = new ToolBox(manager, OWNER, { runTimeoutMs: 1000 })
  const names = toolDefinitions('anthropic').map((t) => t.name)
  console.log(`host registers ${names.length} tools: ${names.join(', ')}`)
  // Subscribed before the build starts, so its end cannot be missed; the
  // signal bounds the wait at the idle point (the iteration ends).
  const events = manager.events({ signal: AbortSignal.timeout(60_000) })

  // 1. A build that takes longer than the 1 s foreground wait: it moves to
  //    the background and the answer shows the output so far.
  const started = await call(tools, 'task_run', { command: BUILD, description: 'cargo build (simulated)' })
  const buildId = started.task_id
  const cursor = started.next_cursor

  // 2. The host starts a subagent for the same session and steers it.
  const sub = manager.spawn(research, {
    background: true,
    owner: OWNER,
    kind: 'subagent',
    description: 'research the flaky test',
  })
  for (const message of ['look at test_cache first', 'wrap up']) manager.send(sub, message)
  host(`started ${sub.id} and sent it two messages`)

  // 3. The model works on something else, looks at its tasks, then reads
  //    only the build's new output (from the cursor).
  await sleep(500)
  await call(tools, 'task_list', {})
  await call(tools, 'task_output', { task_id: buildId, cursor })

  // 4. The host's idle point: wait (bounded) for the build to end, then
  //    inject every pending notification of the session and ack it.
  let ended = false
  for await (const item of events) {
    if (item.item === 'event' && item.taskId === buildId && item.type === 'task.finished') {
      ended = true
      break
    }
  }
  if (!ended) throw new Error('the build did not end in time')
  await sub.collect({ timeoutMs: 30_000 })
  for (const note of manager.notifications(OWNER)) {
    show('notification', note.kind, note.text)
    manager.ack(note)
  }
  host(`notifications left for ${OWNER}: ${manager.notifications(OWNER).length}`)

  // 5. The model greps the finished log for warnings.
  await call(tools, 'task_output', { task_id: buildId, filter: '^warning' })

  // 6. A mistake: the answer names the problem and the ids that exist.
  await call(tools, 'task_wait', { task_id: 'process-nosuchtask' })
} finally {
  await manager.close()
}
