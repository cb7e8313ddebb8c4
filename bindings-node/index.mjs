// ES module entry of agent-tasks: the same objects as the CommonJS entry.
import agentTasks from './index.js'

export const {
  TaskManager,
  TaskHandle,
  TaskContext,
  EventIterator,
  AgentTasksError,
  TaskCancelledError,
  ToolBox,
  toolDefinitions,
  runAcp,
  nativeSpawnAcp,
  NativeTaskManager,
  NativeTaskContext,
  NativeEventStream,
  NativeEventListener,
  NativeToolBox,
  nativeToolDefinitions,
  WaitHandle,
  __napiBindingTarget,
} = agentTasks

export default agentTasks
