// A scripted agent (no real model) that delegates work to subagents, as a
// Node host would run it: the host registers a `researcher` agent (a JS
// async function) with its ToolBox; the "model" delegates three research
// questions in one `task_delegate` call, checks one, steers one, cancels
// one, waits for one; at each idle point the host injects the roster of
// open work and the pending notifications (each told once). Prints the
// transcript the model would see. Run it in a project that installed the
// package (see the README):
//
//   node subagents.mjs
import { setTimeout as sleep } from 'node:timers/promises'

import { TaskManager, ToolBox } from 'agent-tasks'

const OWNER = 'session-1'

function show(label, text) {
  console.log(`\n${label}`)
  for (const line of text.trimEnd().split('\n')) console.log(`    ${line}`)
}

/** One tool call of the model: prints it and its answer, returns the answer's JSON. */
async function call(tools, name, args) {
  console.log(`\n>>> model calls ${name} ${JSON.stringify(args)}`)
  const answer = await tools.call(name, args)
  show('<<< answer', answer.text)
  return answer.json
}

/** The host's idle point: the roster and the notifications go into the model's next turn; notifications are acked once shown. */
function idlePoint(manager) {
  const roster = manager.roster(OWNER)
  if (roster.text !== '') show('--- roster injected into the next turn', roster.text)
  const notes = manager.notifications(OWNER)
  for (const note of notes) show('--- notification injected into the next turn', note.text)
  manager.ack(notes)
}

/** The subagent: a real one would run its own model loop here. */
async function researcher(args, ctx) {
  ctx.write(`researching: ${args.goal}\n`)
  // Steered, stopped, or done after a while: whichever comes first.
  const stopped = new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null), { once: true }))
  const hint = await Promise.race([ctx.recv(), sleep(300, undefined, { signal: ctx.signal }).catch(() => null), stopped])
  if (ctx.signal.aborted) return { stopped: ctx.signal.reason.message }
  if (typeof hint === 'string') {
    ctx.write(`steered: ${hint}\n`)
    return { question: args.goal, answer: `found it by following: ${hint}` }
  }
  return { question: args.goal, answer: 'the cache key ignores the locale' }
}

// At most three subagents at once, beside any number of commands.
const manager = new TaskManager({ maxRunningOfKind: { agent: 3 } })
try {
  const tools = new ToolBox(manager, OWNER).registerAgent({
    name: 'researcher',
    description: 'Researches one question in the code base and answers it.',
    parameters: {
      type: 'object',
      properties: { goal: { type: 'string', description: 'the question' } },
      required: ['goal'],
    },
    run: researcher,
  })
  const names = tools.definitions('anthropic').map((d) => d.name)
  console.log(`host registers ${names.length} tools: ${names.join(', ')}`)

  const started = await call(tools, 'task_delegate', {
    agent: 'researcher',
    background: true,
    tasks: [
      { goal: 'Why are cached pages stale after a language switch?' },
      { goal: 'Which module owns session expiry?' },
      { goal: 'Is the retry loop in the uploader bounded?' },
    ],
  })
  const ids = started.tasks.map((t) => t.task_id)
  idlePoint(manager)

  // The model checks on the first: it waits (briefly) until it has said
  // what it is doing; the answer shows its output so far.
  await call(tools, 'task_wait', { task_id: ids[0], until: '^researching', timeout: 10 })
  await call(tools, 'task_send', { task_id: ids[1], message: 'start from auth/session.rs' })
  await call(tools, 'task_cancel', { task_id: ids[2], reason: 'the uploader is being rewritten' })
  await call(tools, 'task_wait', { task_id: ids[1], timeout: 30 })

  // The first ends on its own while the model does other things: the host
  // tells it at the next idle point, once (the second idle point is quiet).
  await manager.result(ids[0])
  idlePoint(manager)
  idlePoint(manager)
} finally {
  await manager.close()
}
