// Subagents the model delegates to, from Node: agents registered with a
// ToolBox (JS async runners), their values in the model's texts and
// notifications, steering and cancel through the tools, the roster.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { AgentTasksError, ToolBox, toolDefinitions } from 'agent-tasks'

import { manager, waitFor } from './helpers.mjs'

const researcher = {
  name: 'researcher',
  description: 'Researches one question.',
  async run(args, ctx) {
    ctx.write(`researching ${args.goal}\n`)
    // A steering message, or the cancel (its reason is the throw).
    const hint = await Promise.race([
      ctx.recv(),
      new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    ])
    return { goal: args.goal, heard: hint }
  },
}

const summariser = {
  name: 'summariser',
  description: 'Summarises.',
  parameters: {
    type: 'object',
    properties: { goal: { type: 'string' }, style: { type: 'string' } },
    required: ['goal'],
  },
  run: (args, ctx) => {
    ctx.write('summarising\n')
    return `summary of ${args.goal}${args.style ? ` (${args.style})` : ''}`
  },
}

const broken = {
  name: 'broken',
  description: 'Fails.',
  run: async () => {
    throw new Error('the broken agent gave up')
  },
}

test('delegation: values reach the model, steering and cancel reach the runner, the roster lists what is open', async (t) => {
  const m = manager(t)
  const tools = new ToolBox(m, 's')
  assert.ok(tools.definitions().every((d) => d.function.name !== 'task_delegate'))
  assert.equal(tools.registerAgent(researcher), tools)
  tools.registerAgent(summariser).registerAgent(broken)
  for (const shape of ['openai', 'anthropic', 'mcp']) {
    const defs = tools.definitions(shape)
    const last = defs.at(-1)
    assert.equal(shape === 'openai' ? last.function.name : last.name, 'task_delegate', shape)
    assert.equal(defs.length, toolDefinitions(shape).length + 1)
  }
  assert.match(JSON.stringify(tools.definitions('anthropic').at(-1)), /`summariser`: Summarises\. Arguments: goal \(required\), style/)

  // Two in the background, in one call.
  const started = await tools.call('task_delegate', {
    agent: 'researcher',
    background: true,
    tasks: [{ goal: 'a' }, { goal: 'b' }],
  })
  assert.equal(started.isError, false, started.text)
  const ids = started.json.tasks.map((task) => task.task_id)
  assert.equal(ids.length, 2)
  assert.ok(ids.every((id) => id.startsWith('agent-')), ids.join())
  const roster = m.roster('s')
  assert.deepEqual(roster.items.map((i) => i.id), [...ids].reverse())
  assert.equal(roster.items[0].agent, 'researcher')
  assert.match(roster.text, /^Open background work \(2\):/)

  // Steering reaches ctx.recv(); the value reaches task_wait.
  const sent = await tools.call('task_send', { task_id: ids[0], message: 'look at the lexer' })
  assert.equal(sent.isError, false, sent.text)
  const waited = await tools.call('task_wait', { task_id: ids[0], timeout: 30 })
  assert.match(waited.text, /status: completed/)
  assert.match(waited.text, /look at the lexer/)
  // The model saw the end in task_wait: it is not notified of it again.
  assert.deepEqual(m.notifications('s').filter((n) => n.taskId === ids[0] && n.kind === 'finished'), [])
  const output = await tools.call('task_output', { task_id: ids[0] })
  assert.match(output.text, /researching a/)
  assert.match(output.text, /"heard":"look at the lexer"/)

  // The cancel reaches the runner: its signal aborts with the reason.
  const cancelled = await tools.call('task_cancel', { task_id: ids[1], reason: 'enough' })
  assert.match(cancelled.text, /status: cancelled/)
  assert.equal(m.info(ids[1]).cancelReason.message, 'enough')
  assert.equal(m.roster('s').text, '')

  // In the foreground: the value is in the answer.
  const quick = await tools.call('task_delegate', {
    agent: 'summariser',
    tasks: [{ goal: 'the logs', style: 'short' }],
  })
  assert.match(quick.text, /summary of the logs \(short\)/)

  // A runner that throws: failed with its message; the manager goes on.
  const failed = await tools.call('task_delegate', { agent: 'broken', tasks: [{ goal: 'x' }] })
  assert.match(failed.text, /status: failed/)
  assert.match(failed.text, /the broken agent gave up/)

  // Unseen by the model: the notification carries the value and the source.
  const bg = await tools.call('task_delegate', { agent: 'summariser', background: true, tasks: [{ goal: 'z' }] })
  const id = bg.json.tasks[0].task_id
  const [note] = await waitFor(() => {
    const notes = m.notifications('s').filter((n) => n.taskId === id)
    return notes.length > 0 ? notes : null
  }, { what: 'the notification' })
  assert.equal(note.value, 'summary of z')
  assert.deepEqual(note.source, { agent: 'summariser', arguments: { goal: 'z' } })
  assert.match(note.text, /answers: summariser with/)
})

test('a runner sees its cancel: ctx.signal aborts with the reason', async (t) => {
  const m = manager(t)
  const tools = new ToolBox(m, 's')
  let seen
  tools.registerAgent({
    name: 'waiter',
    description: 'Waits until stopped.',
    run: (args, ctx) =>
      new Promise((resolve) => {
        ctx.write(`waiting on ${args.goal}\n`)
        ctx.signal.addEventListener('abort', () => {
          seen = ctx.signal.reason
          resolve('stopped')
        })
      }),
  })
  const bg = await tools.call('task_delegate', { agent: 'waiter', background: true, tasks: [{ goal: 'q' }] })
  const id = bg.json.tasks[0].task_id
  await waitFor(() => m.poll(id).text === 'waiting on q\n', { what: 'the runner to start' })
  await tools.call('task_cancel', { task_id: id, reason: 'not needed' })
  assert.equal(seen.code, 'TASK_CANCELLED')
  assert.deepEqual(seen.reason, { kind: 'user', message: 'not needed' })
})

test('bad agents and delegations are refused, naming the problem', async (t) => {
  const m = manager(t)
  const tools = new ToolBox(m, 's')
  const run = () => null
  const refused = (agent, pattern) =>
    assert.throws(() => tools.registerAgent(agent), (err) => {
      assert.ok(err instanceof AgentTasksError)
      assert.equal(err.code, 'INVALID_ARGUMENT')
      assert.match(err.message, pattern)
      return true
    })
  refused({ name: 'Bad Name', description: 'x', run }, /`agent`.*Bad Name/)
  refused({ name: 'x', description: 'x', parameters: { type: 'object', properties: {} }, run }, /`parameters`/)
  refused({ name: 'x', description: 'x', run: 'not a function' }, /`run`: expected a function, got a string/)
  refused({ name: 'x', description: 'x', run, runner: run }, /`runner`: not an option of agent/)
  refused(null, /`agent`: expected an object, got null/)
  tools.registerAgent({ ...summariser, name: 'summariser' })
  refused({ ...summariser }, /registered already/)
  const unknown = await tools.call('task_delegate', { agent: 'nobody', tasks: [{ goal: 'x' }] })
  assert.equal(unknown.isError, true)
  assert.match(unknown.text, /the agents are: summariser/)
  const noGoal = await tools.call('task_delegate', { agent: 'summariser', tasks: [{}] })
  assert.equal(noGoal.isError, true)
  assert.match(noGoal.text, /tasks\[0\]\.goal/)
})

test('a 10 MB value reaches the model within the text budget, head and tail', async (t) => {
  const m = manager(t)
  const tools = new ToolBox(m, 's', { textBudget: 4000 })
  tools.registerAgent({
    name: 'verbose',
    description: 'Says a lot.',
    run: () => `start-${'x'.repeat(10 * 1024 * 1024)}-end`,
  })
  const answer = await tools.call('task_delegate', { agent: 'verbose', tasks: [{ goal: 'talk' }] })
  assert.equal(answer.isError, false, answer.text)
  assert.ok(Buffer.byteLength(answer.text) <= 4000, `${Buffer.byteLength(answer.text)} bytes`)
  assert.match(answer.text, /start-x/)
  assert.match(answer.text, /x-end/)
})

test('maxRunningOfKind caps racing delegations: exactly K run', async (t) => {
  const m = manager(t, { maxRunningOfKind: { agent: 2 } })
  const tools = new ToolBox(m, 's').registerAgent({
    name: 'sleeper',
    description: 'Sleeps until stopped.',
    run: (args, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null))),
  })
  const answers = await Promise.all(
    Array.from({ length: 5 }, (_, i) =>
      tools.call('task_delegate', { agent: 'sleeper', background: true, tasks: [{ goal: `g${i}` }] }),
    ),
  )
  const ok = answers.filter((a) => !a.isError)
  assert.equal(ok.length, 2, answers.map((a) => a.text).join('\n---\n'))
  for (const refused of answers.filter((a) => a.isError)) assert.match(refused.text, /agent/)
  assert.equal(m.list({ activeOnly: true }).length, 2)
  assert.throws(() => manager(t, { maxRunningOfKind: { agent: -1 } }), { code: 'INVALID_ARGUMENT', message: /`maxRunningOfKind`/ })
  for (const info of m.list({ activeOnly: true })) await m.cancel(info.id)
})
