"""Model-facing tools: `tool_definitions` (the tools' names, descriptions
and JSON Schemas in the OpenAI, Anthropic or MCP shape) and `ToolBox`, which
executes a model's tool call against a manager for one owner and answers
with a `ToolResponse`: text for the model (metadata first, output last,
within a budget), JSON for the host, and `is_error`. The tools and their
texts are the Rust core's (`agent_tasks::tools`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Mapping, Optional, Union

from ._manager import _not_in_event_loop
from ._native import NativeToolBox, ToolResponse
from ._native import tool_definitions as _tool_definitions

if TYPE_CHECKING:
    from ._manager import StrPath, TaskManager

ToolShape = Literal["openai", "anthropic", "mcp"]
"""``openai``: ``{"type": "function", "function": {"name", "description",
"parameters"}}``; ``anthropic``: ``{"name", "description", "input_schema"}``;
``mcp``: ``{"name", "description", "inputSchema"}`` (a ``tools/list`` entry)."""

ToolArgs = Union[Mapping[str, Any], str, None]
"""A tool call's arguments: a dict, or the JSON string a model produced."""


def tool_definitions(shape: ToolShape = "openai") -> List[Dict[str, Any]]:
    """The definitions of every tool a `ToolBox` answers (``task_run``,
    ``task_list``, ``task_output``, ``task_wait``, ``task_cancel``,
    ``task_send``), as dicts in `shape`, ready to register with a model."""
    return _tool_definitions(shape)


class ToolBox:
    """Executes tool calls against `manager`, scoped to `owner`: the model
    sees and touches only that owner's tasks. A call never raises for what
    the model got wrong (an unknown tool or id, a bad argument): the answer
    has ``is_error`` and a text naming the problem.

    Settings (``None`` keeps the core's default): `text_budget` (12,000
    bytes of text per answer), `run_timeout` (60 s: how long ``task_run``
    waits in the foreground when the model gives no timeout),
    `max_run_timeout` (600 s), `on_timeout` (``"detach"``: a command still
    running then moves to the background; or ``"kill"``), `wait_timeout`
    and `max_wait_timeout` (``task_wait``: 30 s, 300 s), `output_bytes`
    (8000: what ``task_output`` reads without ``max_bytes``), `cwd` and `env`
    (for ``task_run`` commands)."""

    __slots__ = ("_native", "manager")

    def __init__(
        self,
        manager: "TaskManager",
        owner: str,
        *,
        text_budget: Optional[int] = None,
        run_timeout: Optional[float] = None,
        max_run_timeout: Optional[float] = None,
        on_timeout: Optional[str] = None,
        wait_timeout: Optional[float] = None,
        max_wait_timeout: Optional[float] = None,
        output_bytes: Optional[int] = None,
        cwd: Optional["StrPath"] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.manager = manager
        self._native = NativeToolBox(
            manager._native,
            owner,
            text_budget=text_budget,
            run_timeout=run_timeout,
            max_run_timeout=max_run_timeout,
            on_timeout=on_timeout,
            wait_timeout=wait_timeout,
            max_wait_timeout=max_wait_timeout,
            output_bytes=output_bytes,
            cwd=os.fspath(cwd) if cwd is not None else None,
            env=list(env.items()) if env is not None else None,
        )

    def __repr__(self) -> str:
        return f"ToolBox(owner={self.owner!r})"

    @property
    def owner(self) -> str:
        """The owner this toolbox acts for."""
        return self._native.owner

    @staticmethod
    def definitions(shape: ToolShape = "openai") -> List[Dict[str, Any]]:
        """See `tool_definitions`."""
        return tool_definitions(shape)

    async def call(self, name: str, args: ToolArgs = None) -> ToolResponse:
        """Executes one tool call (``task_run`` may wait up to its timeout)."""
        return await self._native.call(name, _args(args))

    def call_blocking(self, name: str, args: ToolArgs = None) -> ToolResponse:
        """Blocking form of `call`."""
        _not_in_event_loop("call")
        return self._native.call(name, _args(args)).block_on()


def _args(args: ToolArgs) -> Union[Dict[str, Any], str, None]:
    if args is None or isinstance(args, (str, dict)):
        return args
    return dict(args)
