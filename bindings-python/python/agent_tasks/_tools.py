"""Model-facing tools: `tool_definitions` (the tools' names, descriptions
and JSON Schemas in the OpenAI, Anthropic or MCP shape) and `ToolBox`, which
executes a model's tool call against a manager for one owner and answers
with a `ToolResponse`: text for the model (metadata first, output last,
within a budget), JSON for the host, and `is_error`. The tools and their
texts are the Rust core's (`agent_tasks::tools`)."""

from __future__ import annotations

import contextvars
import os
import functools
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Literal,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Union,
    overload,
)

from ._acp import Permissions
from ._arguments import checked, checked_options, invalid
from ._bridge import not_in_event_loop
from ._manager import (
    _coroutine_starter,
    _is_coroutine_function,
    _thread_starter,
)
from ._native import NativeToolBox, TaskContext
from ._types import AcpAgentOptions, StrPath, ToolBoxOptions, ToolResponse
from ._native import tool_definitions as _tool_definitions

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._manager import TaskManager

ToolShape = Literal["openai", "anthropic", "mcp"]
"""``openai``: ``{"type": "function", "function": {"name", "description",
"parameters"}}``; ``anthropic``: ``{"name", "description", "input_schema"}``;
``mcp``: ``{"name", "description", "inputSchema"}`` (a ``tools/list`` entry)."""

ToolArgs = Union[Mapping[str, Any], str, None]
"""A tool call's arguments: a dict, or the JSON string a model produced."""

AgentFunction = Callable[[Dict[str, Any], TaskContext], Any]
"""``fn(args, ctx)``: a subagent's body, a coroutine function or a plain
function; `args` are the model's arguments (at least ``goal``), `ctx` the
task's context (write output, ``recv`` steering messages, see ``cancelled``).
Its return value (JSON-like) is the subagent's result."""


class _ShapedDefinitions(Protocol):
    def __call__(self, shape: ToolShape = "openai") -> List[Dict[str, Any]]: ...


class _Definitions:
    """``ToolBox.definitions(shape)`` on the class: the task tools (as
    `tool_definitions`); ``toolbox.definitions(shape)`` on a toolbox: the
    tools it answers, with ``task_delegate`` once an agent is registered."""

    @overload
    def __get__(self, obj: None, objtype: Any = None) -> _ShapedDefinitions: ...
    @overload
    def __get__(self, obj: "ToolBox", objtype: Any = None) -> _ShapedDefinitions: ...
    def __get__(self, obj: Optional["ToolBox"], objtype: Any = None) -> _ShapedDefinitions:
        if obj is None:
            return tool_definitions
        return obj._native.definitions


def tool_definitions(shape: ToolShape = "openai") -> List[Dict[str, Any]]:
    """The definitions of every tool a `ToolBox` answers (``task_run``,
    ``task_list``, ``task_output``, ``task_wait``, ``task_cancel``,
    ``task_send``), as dicts in `shape`, ready to register with a model."""
    return _tool_definitions(shape)


@checked
class ToolBox:
    """Executes tool calls against `manager`, scoped to `owner`: the model
    sees and touches only that owner's tasks. A call never raises for what
    the model got wrong (an unknown tool or id, a bad argument): the answer
    has ``is_error`` and a text naming the problem.

    The settings are `ToolBoxOptions` (``None`` keeps the core's default)."""

    __slots__ = ("_native", "manager")

    def __init__(self, manager: "TaskManager", owner: str, **options: Unpack[ToolBoxOptions]) -> None:
        from ._manager import TaskManager

        if not isinstance(manager, TaskManager):
            raise invalid("manager", "a TaskManager", manager)
        self.manager = manager
        given = checked_options("ToolBox", ToolBoxOptions, options)
        self._native = NativeToolBox(manager._native, owner, given)

    def __repr__(self) -> str:
        return f"ToolBox(owner={self.owner!r})"

    @property
    def owner(self) -> str:
        """The owner this toolbox acts for."""
        return self._native.owner

    definitions = _Definitions()

    def register_agent(
        self,
        name: str,
        description: str,
        fn: AgentFunction,
        *,
        parameters: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Registers a subagent the model can delegate to with the
        ``task_delegate`` tool (which `definitions` then includes). `name` is
        lowercase letters, digits, ``_`` and ``-``; `description` is for the
        model; `parameters` is the JSON Schema of its arguments (default: a
        required string ``goal``; a custom one must keep it). `fn(args, ctx)`
        runs as a task of kind ``agent``: a coroutine function on the event
        loop running when this is called (else on a loop the manager owns),
        a plain function in a worker thread."""
        if not callable(fn):
            raise invalid("fn", "a callable", fn)
        context = contextvars.copy_context()
        loop = self.manager._coroutine_loop() if _is_coroutine_function(fn) else None

        def factory(args: Dict[str, Any]) -> Callable[[TaskContext], Any]:
            bound = functools.partial(fn, args)
            if loop is not None:
                return _coroutine_starter(bound, loop, context)
            return _thread_starter(bound, context)

        schema = dict(parameters) if isinstance(parameters, Mapping) else parameters
        self._native.register_agent(name, description, factory, schema)

    def register_acp_agent(
        self,
        name: str,
        description: str,
        argv: Sequence[StrPath],
        *,
        permissions: Optional[Permissions] = None,
        **options: Unpack[AcpAgentOptions],
    ) -> None:
        """Registers an ACP coding agent the model can delegate to with
        ``task_delegate`` (its argument ``goal`` is the first prompt): each
        delegation starts `argv` as a persistent ACP task in the background,
        with `permissions` and `options` (`AcpAgentOptions`, as `run_acp`
        takes them); its terminals are
        process tasks of this toolbox's manager. The roster lists it; each
        turn's end queues a ``turn_ended`` notification."""
        given = checked_options("register_acp_agent", AcpAgentOptions, options)
        argv = [os.fspath(a) for a in argv]
        self._native.register_acp_agent(name, description, argv, permissions, given)

    async def call(self, name: str, args: ToolArgs = None) -> ToolResponse:
        """Executes one tool call (``task_run`` may wait up to its timeout)."""
        return await self._native.call(name, _args(args))

    def call_blocking(self, name: str, args: ToolArgs = None) -> ToolResponse:
        """Blocking form of `call`."""
        not_in_event_loop("call_blocking()")
        return self._native.call(name, _args(args)).block_on()


def _args(args: ToolArgs) -> Union[Dict[str, Any], str, None]:
    if args is None or isinstance(args, (str, dict)):
        return args
    if isinstance(args, Mapping):
        return dict(args)
    raise invalid("args", "a dict, a JSON string or None", args)
