"""ACP agents as tasks: `run_acp` starts a coding agent that speaks the
Agent Client Protocol (Gemini CLI, Claude Code or Codex through their
adapters, ...) as a persistent background task. The protocol client, the
rendering of its updates and every policy are the core's; this converts."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Literal, Mapping, Optional, Sequence, Union

from ._arguments import env_dict, given, optional_fspath
from ._manager import Task, TaskManager
from ._native import spawn_acp

StrPath = Union[str, "os.PathLike[str]"]

PermissionAnswer = Union[bool, str, None]
"""``True`` allows (the agent's allow-once option), ``False`` denies (its
reject-once option), ``None`` cancels, a string selects that option id."""

Permissions = Union[Literal["allow", "deny"], Callable[[Dict[str, Any]], PermissionAnswer]]
"""``"allow"``, ``"deny"`` (the default), or a function of the request
(``{"task_id", "title", "tool_kind", "options": [{"id", "name", "kind"}],
"tool_call"}``) called on a worker thread."""

FileAccess = Literal["cwd", "read_cwd", "anywhere", "none"]
"""Which files the agent may read and write through the client (default
``"cwd"``: inside the session directory)."""


def run_acp(
    manager: TaskManager,
    argv: Sequence[StrPath],
    goal: str,
    *,
    cwd: Optional[StrPath] = None,
    env: Optional[Mapping[str, str]] = None,
    permissions: Optional[Permissions] = None,
    files: FileAccess = "cwd",
    show_thoughts: bool = False,
    idle_timeout: Optional[float] = None,
    cancel_grace: Optional[float] = None,
    kill_grace: Optional[float] = None,
    handshake_timeout: Optional[float] = None,
    max_message_bytes: Optional[int] = None,
    timeout: Optional[float] = None,
    owner: Optional[str] = None,
    description: Optional[str] = None,
    keep_alive: bool = False,
) -> Task:
    """Starts the ACP agent `argv` in the background with `goal` as its
    first prompt. Its output is the session rendered as lines; ``send``
    is a follow-up prompt (queued while a turn runs); the end of each turn
    queues a ``turn_ended`` notification with the agent's final message; it
    runs until cancelled, `idle_timeout` seconds without a follow-up, or the
    agent's exit (no task timeout unless `timeout` is given). Its terminals are process tasks of `manager`.

    `handshake_timeout` (seconds, default 60) bounds ``initialize`` and
    ``session/new``; `max_message_bytes` (default 16 MiB) bounds one line of
    the agent's output. Past either the task ends ``failed`` with an error
    naming the bound. ``send(task, eof=True)`` ends the session
    (``completed``) once the running turn is done."""
    options = given(
        locals(),
        "manager",
        "argv",
        "goal",
        "permissions",
        cwd=optional_fspath("cwd", cwd),
        env=env_dict("env", env),
    )
    argv = [os.fspath(a) for a in argv]
    return Task(manager, spawn_acp(manager._native, argv, goal, permissions, options))
