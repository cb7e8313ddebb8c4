// The CommonJS side: `require` gives the same types.
import agentTasks = require('agent-tasks')

const manager: agentTasks.TaskManager = new agentTasks.TaskManager()
const handle: agentTasks.TaskHandle = manager.run(['ls', '-l'], { background: true })
void handle.collect({ timeoutMs: 0 }).then((o: agentTasks.CollectOutcome) => o.state)
void manager.close()
