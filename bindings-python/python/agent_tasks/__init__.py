"""agent_tasks: run an AI agent's long work (shell commands, subagents, any
async job) without blocking its conversation. Start a task in the
foreground, **detach** it to the background when it runs long, **poll** it
for new output, **collect** its result, **cancel** it, and steer it with
messages, with bounded memory and disk. Follow its lifecycle as events
(``m.events()``), drain the notifications a host injects into the
conversation (``m.notifications()`` / ``m.ack()``), and give a model the
ready-made tools (``tool_definitions()``, ``ToolBox``).

Every verb that waits has an awaitable form (``await m.collect(id)``) and a
blocking form for threaded hosts (``m.collect_blocking(id)``); a wait whose
`timeout` passes raises `TimeoutError`. ``await task`` gives a task's final
`TaskResult` (``task.result()`` blocks for it), and ``async for chunk in
task.output()`` / ``task.lines()`` follow its output as it is written.

>>> from agent_tasks import TaskManager
>>> with TaskManager() as m:
...     task = m.run("echo hello")
...     outcome = task.wait_foreground_blocking()
...     print(outcome.status, m.poll(task).text.strip())
completed hello
"""

from __future__ import annotations

import atexit
import math

from ._acp import PermissionAnswer, Permissions, run_acp
from ._errors import (
    AgentTasksError,
    CapacityExceeded,
    ClusterUnavailable,
    InvalidArgument,
    InvalidTaskId,
    LimitsUnavailable,
    NotReceiving,
    RootInUse,
    ShutDown,
    StorageError,
    TaskNotFound,
)
from ._events import EventItem, EventStream
from ._manager import (
    DEFAULT_POLL_BYTES,
    DEFAULT_PREVIEW_BYTES,
    Outcome,
    Placement,
    Task,
    TaskManager,
)
from ._output import LineStream, OutputStream
from ._native import MAX_POLL_BYTES, TaskContext, __version__, _at_exit
from ._types import (
    AcpAgentOptions,
    AcpOptions,
    CancelReason,
    ChangedFiles,
    Detached,
    Event,
    ExitInfo,
    FileAccess,
    Finished,
    Lagged,
    ManagerOptions,
    Notification,
    OutputStats,
    PollResult,
    Preview,
    ResourceLimits,
    RunOptions,
    SpawnOptions,
    StreamSpan,
    TaskInfo,
    TaskResult,
    ToolBoxOptions,
    ToolResponse,
    UnenforcedLimits,
)
from ._tools import AgentFunction, ToolArgs, ToolBox, ToolShape, tool_definitions

NO_TIMEOUT: float = math.inf
"""Pass as a timeout for "no timeout" (``None`` keeps the default)."""

# When the interpreter exits, shut every live manager down and wait (a few
# seconds at most) until no process task is left running.
atexit.register(_at_exit)

__all__ = [
    "run_acp",
    "Permissions",
    "PermissionAnswer",
    "FileAccess",
    "TaskManager",
    "Task",
    "TaskContext",
    "TaskInfo",
    "TaskResult",
    "ResourceLimits",
    "UnenforcedLimits",
    "ManagerOptions",
    "RunOptions",
    "SpawnOptions",
    "ToolBoxOptions",
    "AcpOptions",
    "AcpAgentOptions",
    "Outcome",
    "Finished",
    "Detached",
    "OutputStream",
    "LineStream",
    "PollResult",
    "Preview",
    "StreamSpan",
    "ExitInfo",
    "CancelReason",
    "OutputStats",
    "ChangedFiles",
    "EventStream",
    "EventItem",
    "Event",
    "Lagged",
    "Notification",
    "ToolBox",
    "ToolResponse",
    "ToolArgs",
    "AgentFunction",
    "ToolShape",
    "tool_definitions",
    "AgentTasksError",
    "TaskNotFound",
    "InvalidTaskId",
    "CapacityExceeded",
    "InvalidArgument",
    "NotReceiving",
    "RootInUse",
    "ShutDown",
    "LimitsUnavailable",
    "StorageError",
    "ClusterUnavailable",
    "Placement",
    "NO_TIMEOUT",
    "MAX_POLL_BYTES",
    "DEFAULT_POLL_BYTES",
    "DEFAULT_PREVIEW_BYTES",
    "__version__",
]
