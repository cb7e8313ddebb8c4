// A typed consumer of `runAcp` (checked by `npm run typecheck`, never run).
import { runAcp, TaskManager, type AcpPermissionAnswer, type AcpPermissionRequest, type TaskHandle } from 'agent-tasks'

export async function delegateToCoder(manager: TaskManager): Promise<TaskHandle> {
  const ask = async (request: AcpPermissionRequest): Promise<AcpPermissionAnswer> =>
    request.toolKind === 'read' ? true : request.options.find((o) => o.kind === 'reject_once')?.id ?? false
  const coder = runAcp(manager, ['gemini', '--experimental-acp'], 'make the failing test pass', {
    cwd: '/work/repo',
    permissions: ask,
    files: 'read_cwd',
    idleTimeoutMs: 30 * 60_000,
  })
  runAcp(manager, ['my-agent'], 'look around', { permissions: 'deny' })
  manager.send(coder.id, 'then update the changelog')
  return coder
}
