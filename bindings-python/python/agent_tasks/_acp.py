"""ACP agents as tasks: `run_acp` starts a coding agent that speaks the
Agent Client Protocol (Gemini CLI, Claude Code or Codex through their
adapters, ...) as a persistent background task. The protocol client, the
rendering of its updates and every policy are the core's; this converts."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Dict, Literal, Optional, Sequence, Union

from ._arguments import checked_options
from ._manager import Task, TaskManager
from ._native import spawn_acp
from ._types import AcpOptions, StrPath

if TYPE_CHECKING:
    from typing_extensions import Unpack

PermissionAnswer = Union[bool, str, None]
"""``True`` allows (the agent's allow-once option), ``False`` denies (its
reject-once option), ``None`` cancels, a string selects that option id."""

Permissions = Union[Literal["allow", "deny"], Callable[[Dict[str, Any]], PermissionAnswer]]
"""``"allow"``, ``"deny"`` (the default), or a function of the request
(``{"task_id", "title", "tool_kind", "options": [{"id", "name", "kind"}],
"tool_call"}``) called on a worker thread."""


def run_acp(
    manager: TaskManager,
    argv: Sequence[StrPath],
    goal: str,
    *,
    permissions: Optional[Permissions] = None,
    **options: Unpack[AcpOptions],
) -> Task:
    """Starts the ACP agent `argv` in the background with `goal` as its
    first prompt. Its output is the session rendered as lines; ``send``
    is a follow-up prompt (queued while a turn runs); the end of each turn
    queues a ``turn_ended`` notification with the agent's final message; it
    runs until cancelled, `idle_timeout` seconds without a follow-up, or the
    agent's exit (no task timeout unless `timeout` is given). Its terminals
    are process tasks of `manager`. ``send(task, eof=True)`` ends the session
    (``completed``) once the running turn is done. The settings are
    `AcpOptions`."""
    given = checked_options("run_acp", AcpOptions, options)
    argv = [os.fspath(a) for a in argv]
    return Task(manager, spawn_acp(manager._native, argv, goal, permissions, given))
