"""The exceptions of agent_tasks: one base, `AgentTasksError`, and a
subclass per core error. Each carries the core's stable `code` and the
fields the error names (`task_id`, `argument`, ...)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Type


class AgentTasksError(Exception):
    """Base of every agent_tasks error. `code` is a short stable string
    (e.g. ``TASK_NOT_FOUND``); `str(error)` is a complete sentence."""

    code: str = "AGENT_TASKS_ERROR"
    task_id: Optional[str] = None
    argument: Optional[str] = None
    reason: Optional[str] = None

    def __init__(self, message: str, *, code: Optional[str] = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        for name, value in details.items():
            setattr(self, name, value)


class TaskNotFound(AgentTasksError, LookupError):
    """No task with this id is known to the manager (`task_id`)."""

    code = "TASK_NOT_FOUND"


class InvalidTaskId(AgentTasksError, ValueError):
    """The id does not follow the `<kind>-<random>` grammar (`task_id`, `reason`)."""

    code = "INVALID_TASK_ID"


class CapacityExceeded(AgentTasksError):
    """Spawning would exceed a cap on running background tasks
    (`scope`, `limit`, `running`)."""

    code = "CAPACITY_EXCEEDED"
    scope: Optional[str] = None
    limit: Optional[int] = None
    running: Optional[int] = None


class InvalidArgument(AgentTasksError, ValueError):
    """An argument is missing, out of range or malformed (`argument` names it)."""

    code = "INVALID_ARGUMENT"


class NotReceiving(AgentTasksError):
    """The task exists but cannot take a steering message (`task_id`, `reason`)."""

    code = "NOT_RECEIVING"


class RootInUse(AgentTasksError):
    """Another manager (in this or another process) has the root folder open
    (`path`). A manager releases its root when it is shut down with nothing
    left running, or when it is dropped."""

    code = "ROOT_IN_USE"
    path: Optional[str] = None


class ShutDown(AgentTasksError):
    """The manager has been shut down and accepts no new tasks."""

    code = "SHUT_DOWN"


class LimitsUnavailable(AgentTasksError):
    """The task asks for resource limits this host cannot enforce (`kinds`:
    ``memory``, ``pids``, ``cpu``; `reason`) and the manager's
    `unenforced_limits` is ``"refuse"`` (the default)."""

    code = "LIMITS_UNAVAILABLE"
    kinds: Optional[List[str]] = None


class ClusterUnavailable(AgentTasksError, ConnectionError):
    """A task placed on a cluster (`agent_tasks.ray.RayPlacement`) cannot
    start because the cluster cannot be reached or cannot take it (no such
    node); raised by `run`, before anything is registered (`reason`)."""

    code = "CLUSTER_UNAVAILABLE"


class StorageError(AgentTasksError, OSError):
    """A file-system operation on the task folder failed (`path`, `errno`)."""

    code = "IO_ERROR"
    path: Optional[str] = None


BY_CODE: Dict[str, Type[AgentTasksError]] = {c.code: c for c in AgentTasksError.__subclasses__()}
"""The class of each core error code (the native module raises them)."""

__all__ = [
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
]
