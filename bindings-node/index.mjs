// ES module entry of agent-tasks: the same objects as the CommonJS entry.
import agentTasks from './index.js'

export const {
  TaskManager,
  TaskHandle,
  TaskContext,
  EventIterator,
  AgentTasksError,
  TaskCancelledError,
  NativeTaskManager,
  NativeTaskContext,
  NativeEventStream,
  NativeEventListener,
  WaitHandle,
  __napiBindingTarget,
} = agentTasks

export default agentTasks
