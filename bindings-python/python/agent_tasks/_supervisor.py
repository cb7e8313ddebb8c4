"""The supervisor of a task that outlives its host (`on_host_exit="keep_running"`):
run by the library as ``python -m agent_tasks._supervisor --agent-tasks-supervisor DIR``,
never by hand. All of it is the core's (`agent_tasks._native.supervisor_main`)."""

import sys

from agent_tasks._native import supervisor_main

sys.exit(supervisor_main())
