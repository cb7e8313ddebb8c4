// A typed consumer of the package, checked with `tsc --strict --noEmit`
// (`npm run typecheck`). It is compiled, never run: it proves the published
// types describe the API a TypeScript user writes against.
import {
  AgentTasksError,
  TaskCancelledError,
  TaskManager,
  ToolBox,
  toolDefinitions,
  type AnthropicTool,
  type CollectOutcome,
  type EventItem,
  type ForegroundOutcome,
  type Notification,
  type PollResponse,
  type TaskContext,
  type TaskHandle,
  type TaskInfo,
  type TaskResult,
  type TaskStatus,
  type ToolResponse,
} from 'agent-tasks'

async function agentLoop(signal: AbortSignal): Promise<string[]> {
  await using manager = new TaskManager({
    root: '/tmp/agent-tasks-typed',
    memoryLimit: 1 << 20,
    diskLimit: 256 << 20,
    maxBackground: 8,
    foregroundTimeoutMs: 60_000,
    backgroundTimeoutMs: null,
    onTimeout: 'detach',
    limits: { memory: 2 << 30, pids: 512 },
    unenforcedLimits: 'report',
  })

  const build: TaskHandle = manager.run('make -j8', {
    cwd: '/tmp',
    env: { CI: '1' },
    timeoutMs: 30_000,
    onTimeout: 'detach',
    description: 'build',
    owner: 'session-1',
    watch: ['^error'],
    watchIntervalMs: 5_000,
    watchMax: 3,
    heartbeatMs: 60_000,
    idleTimeoutMs: 120_000,
    cancelOnStall: false,
    limits: { memory: 512 << 20, cpu: 2 },
  })
  const fg: ForegroundOutcome = await manager.waitForeground(build.id, { signal })
  if (fg.state === 'detached') {
    const info: TaskInfo = fg.info
    const detached: boolean = info.detached
    void detached
  } else {
    const result: TaskResult = fg.result
    const code: number | undefined = result.exit?.code
    void code
  }

  const page: PollResponse = manager.poll(build, { cursor: 0, maxBytes: 4096 })

  const repl: TaskHandle = manager.run('python3 -i', { pty: { cols: 120, rows: 40 }, background: true })
  repl.send('print(1)')
  manager.sendKeys(repl, ['enter'])
  repl.sendKeys('ctrl+d')
  await manager.resize(repl, 100, 30)
  await repl.resize(80, 24)
  // @ts-expect-error: a terminal size is { cols, rows }
  manager.run('top', { pty: [80, 24] })
  const bytes: Buffer = page.data
  const text: string = page.text
  const next: number = page.nextCursor
  void bytes, text, next

  const sub = manager.spawn(
    async (ctx: TaskContext) => {
      ctx.write('working\n')
      ctx.write(Buffer.from([0xff]), 'stderr')
      const message: string | null = await ctx.recv()
      ctx.signal.throwIfAborted()
      return { steered: message }
    },
    { background: true, kind: 'subagent', owner: 'session-1' },
  )
  manager.send(sub, 'look at the failing test first')

  const outcome: CollectOutcome = await manager.collect(sub.id, { timeoutMs: 1000, signal })
  const statuses: TaskStatus[] = []
  if (outcome.state === 'finished') statuses.push(outcome.result.status)
  else statuses.push(outcome.info.status)

  const cancelled: TaskInfo = await sub.cancel({ reason: 'not needed' })
  statuses.push(cancelled.status)
  const reasonKind: 'user' | 'timeout' | 'shutdown' | 'owner_closed' | 'stalled' | 'external' | undefined =
    cancelled.cancelReason?.kind
  void reasonKind

  const unsubscribe: () => void = manager.onEvent((item: EventItem) => {
    if (item.item === 'event' && item.type === 'task.finished') {
      const status: TaskStatus = item.status
      void status
    }
  })
  unsubscribe()
  for await (const item of manager.events({ signal })) {
    if (item.item === 'lagged') {
      const missed: number = item.missed
      void missed
    } else if (item.type === 'task.watch_matched') {
      const line: string = item.line
      void line
    } else if (item.type === 'task.stalled') {
      const idle: number = item.idleMs
      void idle
    } else if (item.type === 'task.started') {
      const background: boolean = item.background
      void background
      break
    }
  }

  const pending: Notification[] = manager.notifications('session-1')
  const detail: string | undefined = pending[0]?.detail
  void detail
  const watchKind: boolean = pending.some((n) => n.kind === 'watch_match' || n.kind === 'progress')
  void watchKind

  const anthropic: AnthropicTool[] = toolDefinitions('anthropic')
  const names: string[] = toolDefinitions().map((t) => t.function.name)
  const schema: Record<string, any> = toolDefinitions('mcp')[0].inputSchema.properties
  void anthropic, names, schema
  const tools = new ToolBox(manager, 'session-1', {
    textBudget: 8000,
    runTimeoutMs: 30_000,
    maxRunTimeoutMs: 600_000,
    onTimeout: 'detach',
    waitTimeoutMs: 30_000,
    maxWaitTimeoutMs: 300_000,
    outputBytes: 8000,
    cwd: '/tmp',
    env: { CI: '1' },
    rawText: false,
    ttySize: { cols: 120, rows: 40 },
  })
  const answer: ToolResponse = await tools.call('task_run', { command: 'make', timeout: 30 })
  const again: ToolResponse = await tools.call('task_output', '{"task_id": "process-abc"}')
  const taskId: string = answer.json.task_id
  const failed: boolean = again.isError
  const forModel: string = answer.text
  void taskId, failed, forModel
  // @ts-expect-error: the shapes are openai, anthropic and mcp
  toolDefinitions('gemini')
  // @ts-expect-error: a toolbox needs a manager
  new ToolBox('session-1')
  const acked: number = manager.ack(pending.map((n) => n.id))
  void acked
  const listed: TaskInfo[] = manager.list({ owner: 'session-1', statuses: ['running'], activeOnly: true })
  void listed

  try {
    manager.poll('not an id')
  } catch (err) {
    if (err instanceof AgentTasksError && err.code === 'INVALID_TASK_ID') statuses.push('failed')
    if (err instanceof TaskCancelledError) statuses.push(err.reason.kind === 'user' ? 'cancelled' : 'timed_out')
  }

  // @ts-expect-error: onTimeout is 'detach' or 'kill'
  manager.run('true', { onTimeout: 'explode' })
  // @ts-expect-error: a limit's kinds are memory, pids and cpu
  manager.run('true', { limits: { memroy: 1 } })
  // @ts-expect-error: unenforcedLimits is 'refuse' or 'report'
  void new TaskManager({ unenforcedLimits: 'ignore' })
  // @ts-expect-error: poll needs a task
  manager.poll()
  // @ts-expect-error: a finished foreground outcome has no info
  if (fg.state === 'finished') void fg.info

  // Subagents: a typed runner; task_delegate in the definitions.
  const delegating: ToolBox = tools.registerAgent<{ goal: string; depth?: number }>({
    name: 'researcher',
    description: 'Researches one question.',
    parameters: { type: 'object', properties: { goal: { type: 'string' }, depth: { type: 'number' } }, required: ['goal'] },
    run: async (args, ctx: TaskContext) => {
      ctx.write(`researching ${args.goal} to depth ${args.depth ?? 1}\n`)
      const hint: string | null = await ctx.recv()
      return { goal: args.goal, hint }
    },
  })
  const delegate: AnthropicTool | undefined = delegating.definitions('anthropic').at(-1)
  void delegate
  // @ts-expect-error: an agent needs a runner
  tools.registerAgent({ name: 'x', description: 'y' })

  // A task's final result; its output as a stream of Buffers or of lines.
  const handle: TaskHandle = manager.run('make test', { background: true, timeoutMs: null, cwd: '/tmp' })
  for await (const chunk of handle.output({ cursor: 0, maxBytes: 4096, signal })) {
    const bytes: Buffer = chunk
    void bytes
  }
  for await (const line of manager.lines(handle, { signal: AbortSignal.timeout(1000) })) {
    const text: string = line
    void text
  }
  const final: TaskResult = await handle.result({ signal })
  const code: number | undefined = final.exit?.code ?? undefined
  void code
  // @ts-expect-error: a handle is not a thenable; await handle.result()
  const notAResult: TaskResult = await Promise.resolve(handle)
  void notAResult
  // @ts-expect-error: spawn options have no cwd (a JS task has no process)
  manager.spawn(async () => null, { cwd: '/tmp' })

  // Input, then its end; or the end of input alone.
  const counter: TaskHandle = manager.run('wc -l', { background: true, interactive: true })
  manager.send(counter, 'a line\n', { eof: false })
  counter.send(Buffer.from('another\n'))
  counter.send({ eof: true })
  manager.send(counter.id, null, { eof: true })
  // @ts-expect-error: eof is a boolean
  manager.send(counter, 'x', { eof: 'yes' })

  return statuses
}

void agentLoop(new AbortController().signal)
