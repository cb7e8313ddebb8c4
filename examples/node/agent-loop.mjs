// A scripted agent loop on agent-tasks, as a Node host would run it:
//
//   1. the model runs a long command in the foreground; the host detaches it
//      when it takes too long (nothing restarts, no byte is lost);
//   2. the model keeps working and polls the command now and then;
//   3. it starts a subagent (an async JS function) in the background and
//      steers it with a message;
//   4. it collects both, and the host injects the end-of-task notifications
//      into the conversation.
//
// Lines starting with `model>` are what the model would see as tool results.
// Run it after `npm install ./bindings-node` in the repository root:
//
//   node examples/node/agent-loop.mjs
import { setTimeout as sleep } from 'node:timers/promises'

import { TaskManager } from 'agent-tasks'

const host = (text) => console.log(`host>  ${text}`)
const model = (text) => console.log(text.replace(/\n$/, '').split('\n').map((l) => `model> ${l}`).join('\n'))

const manager = new TaskManager({ defaultOwner: 'session-1' })
try {
  // 1. A long command in the foreground.
  const build = manager.run(
    'for i in 1 2 3 4 5 6 7 8; do echo "compiling unit $i/8"; sleep 0.25; done; echo "build ok"',
    { description: 'build the project', timeoutMs: 60_000, onTimeout: 'detach' },
  )
  host(`run ${build.id} in the foreground`)
  const foreground = build.waitForeground()
  // The user (or the host's own policy) decides it takes too long.
  while (!build.poll().text.includes('unit 2/8')) await sleep(20)
  const info = build.detach()
  const fg = await foreground
  host(`detached ${info.id}: the foreground wait returned "${fg.state}", the build goes on`)
  const firstPage = build.poll()
  model(`Command moved to the background as ${build.id} (still ${firstPage.info.status}). Output so far:\n${firstPage.text}`)
  let cursor = firstPage.nextCursor

  // 2. The model keeps working, then polls: it sees only what is new.
  host('the model edits a file while the build runs')
  await sleep(400)
  const page = build.poll({ cursor })
  cursor = page.nextCursor
  model(`[${build.id} ${page.info.status}] new output:\n${page.text}`)

  // 3. A subagent as an async function, in the background, steered once.
  const subagent = manager.spawn(
    async function research(ctx) {
      const notes = []
      for (let step = 1; step <= 4; step++) {
        ctx.write(`step ${step}: reading the test suite\n`)
        await sleep(150, undefined, { signal: ctx.signal })
        const steer = ctx.tryRecv()
        if (steer) {
          ctx.write(`steered: ${steer}\n`)
          notes.push(steer)
        }
      }
      return { verdict: 'test_login is flaky: its timeout is 50 ms', steeredBy: notes }
    },
    { background: true, kind: 'subagent', description: 'find why test_login fails' },
  )
  host(`spawned ${subagent.id} in the background`)
  await sleep(200)
  subagent.send('focus on test_login first')
  host(`sent a steering message to ${subagent.id}`)

  // 4. Collect both.
  const built = await build.collect({ timeoutMs: 30_000 })
  const researched = await subagent.collect({ timeoutMs: 30_000 })
  const rest = build.poll({ cursor })
  model(`[${build.id} ${built.result.status}, exit ${built.result.exit?.code}] final output:\n${rest.text}`)
  model(`[${subagent.id} ${researched.result.status}] result: ${JSON.stringify(researched.result.value)}`)

  // The host injects the notifications at its next idle point, then acks them.
  for (const n of manager.notifications('session-1')) {
    model(n.text)
  }
  host(`acknowledged ${manager.ack(manager.notifications('session-1'))} notifications`)
} finally {
  await manager.close()
}
