"""Type stubs of the native module (pyo3). The public API is re-exported
from `agent_tasks`; `NativeManager`, `NativeTask`, `NativeEvents`,
`NativeToolBox` and `Pending` are the engine behind `TaskManager`, `Task`,
`EventStream` and `ToolBox`."""

import os
from typing import (
    Any,
    Callable,
    Dict,
    Generator,
    Generic,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    final,
)

_T = TypeVar("_T", covariant=True)

TaskStatus = Literal["queued", "running", "completed", "failed", "cancelled", "timed_out", "lost"]
CancelKind = Literal["user", "timeout", "shutdown", "owner_closed", "stalled", "external"]
Containment = Literal["cgroup", "subreaper", "process_group"]
EventType = Literal[
    "task.started",
    "task.detached",
    "task.spilled",
    "task.finished",
    "task.lost",
    "task.orphaned",
    "task.output_dropped",
    "task.watch_matched",
    "task.heartbeat",
    "task.stalled",
    "task.sink_error",
    "task.paused",
    "task.resumed",
    "task.queued",
]
NotificationKind = Literal[
    "finished", "lost", "orphaned", "watch_match", "watch_stopped", "progress", "stalled",
    "turn_ended"
]

MAX_POLL_BYTES: int
DEFAULT_POLL_BYTES: int
DEFAULT_PREVIEW_BYTES: int
__version__: str

def _at_exit(timeout: float = 10.0) -> None: ...
def tool_definitions(shape: str = "openai") -> List[Dict[str, Any]]: ...

@final
class ExitInfo:
    """How a process ended."""

    @property
    def code(self) -> Optional[int]: ...
    @property
    def signal(self) -> Optional[int]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class CancelReason:
    """Why a task was asked to stop; `str()` gives e.g. ``cancelled: not needed``."""

    @property
    def kind(self) -> CancelKind: ...
    @property
    def message(self) -> Optional[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class OutputStats:
    """Byte counts and state of a task's output stream."""

    @property
    def total_bytes(self) -> int: ...
    @property
    def stdout_bytes(self) -> int: ...
    @property
    def stderr_bytes(self) -> int: ...
    @property
    def spilled(self) -> bool: ...
    @property
    def disk_bytes(self) -> int: ...
    @property
    def omitted_bytes(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...
    @property
    def write_error(self) -> Optional[str]: ...
    @property
    def log_path(self) -> Optional[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class TaskInfo:
    """Everything known about a task at one moment."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def status(self) -> TaskStatus: ...
    @property
    def is_terminal(self) -> bool: ...
    @property
    def foreground(self) -> bool: ...
    @property
    def detached(self) -> bool: ...
    @property
    def keep_alive(self) -> bool: ...
    @property
    def paused(self) -> bool: ...
    @property
    def created_at_ms(self) -> int: ...
    @property
    def finished_at_ms(self) -> Optional[int]: ...
    @property
    def duration_ms(self) -> int: ...
    @property
    def pid(self) -> Optional[int]: ...
    @property
    def orphan_pid(self) -> Optional[int]:
        """The process of a task found lost after a restart that still runs."""
    @property
    def containment(self) -> Optional[Containment]:
        """How a process task's processes are contained: ``cgroup``, ``subreaper`` or ``process_group``."""
    @property
    def exit(self) -> Optional[ExitInfo]: ...
    @property
    def cancel_reason(self) -> Optional[CancelReason]: ...
    @property
    def error(self) -> Optional[str]: ...
    @property
    def sink_error(self) -> Optional[str]: ...
    @property
    def output(self) -> OutputStats: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class TaskResult:
    """How a task ended."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> TaskStatus: ...
    @property
    def exit(self) -> Optional[ExitInfo]: ...
    @property
    def value(self) -> Any: ...
    @property
    def error(self) -> Optional[str]: ...
    @property
    def cancel_reason(self) -> Optional[CancelReason]: ...
    @property
    def duration_ms(self) -> int: ...
    @property
    def output(self) -> OutputStats: ...
    @property
    def changed_files(self) -> Optional[ChangedFiles]:
        """What it changed in its `track_changes` folder, if tracked."""
    def to_dict(self) -> Dict[str, Any]: ...

@final
class ChangedFiles:
    """What a task changed in its tracked folder (paths relative to it)."""

    @property
    def root(self) -> str: ...
    @property
    def created(self) -> List[str]: ...
    @property
    def modified(self) -> List[str]: ...
    @property
    def deleted(self) -> List[str]: ...
    @property
    def truncated(self) -> bool: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class Finished:
    """A wait's answer when the task has ended (`collect`, or
    `wait_foreground` when it ended in the foreground)."""

    @property
    def state(self) -> Literal["finished"]: ...
    @property
    def finished(self) -> Literal[True]: ...
    @property
    def result(self) -> TaskResult: ...
    @property
    def info(self) -> None: ...
    @property
    def status(self) -> TaskStatus: ...
    @property
    def id(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class Detached:
    """`wait_foreground`'s answer when the task was moved to (or started
    in) the background; it goes on running."""

    @property
    def state(self) -> Literal["detached"]: ...
    @property
    def finished(self) -> Literal[False]: ...
    @property
    def result(self) -> None: ...
    @property
    def info(self) -> TaskInfo: ...
    @property
    def status(self) -> TaskStatus: ...
    @property
    def id(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class StreamSpan:
    """A run of bytes of one stream inside a poll window."""

    @property
    def offset(self) -> int: ...
    @property
    def len(self) -> int: ...
    @property
    def stream(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class PollResult:
    """The answer to `poll`: info, and the output since the cursor."""

    @property
    def info(self) -> TaskInfo: ...
    @property
    def status(self) -> TaskStatus: ...
    @property
    def cursor(self) -> int: ...
    @property
    def next_cursor(self) -> int: ...
    @property
    def omitted_bytes(self) -> int: ...
    @property
    def eof(self) -> bool: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def data(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    @property
    def spans(self) -> List[StreamSpan]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class Preview:
    """The start and the end of a task's output."""

    @property
    def head(self) -> bytes: ...
    @property
    def tail(self) -> bytes: ...
    @property
    def omitted_bytes(self) -> int: ...
    @property
    def total_bytes(self) -> int: ...
    @property
    def text(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class Event:
    """One lifecycle event of one task. `type` says what happened; the
    fields of other types are ``None``."""

    @property
    def seq(self) -> int: ...
    @property
    def task_id(self) -> str: ...
    @property
    def timestamp_ms(self) -> int: ...
    @property
    def type(self) -> EventType: ...
    @property
    def kind(self) -> Optional[str]:
        """``task.started``, ``task.queued``: the task's kind."""
    @property
    def description(self) -> Optional[str]:
        """``task.started``, ``task.queued``."""
    @property
    def owner(self) -> Optional[str]:
        """``task.started``, ``task.queued``."""
    @property
    def background(self) -> Optional[bool]:
        """``task.started``."""
    @property
    def buffered_bytes(self) -> Optional[int]:
        """``task.spilled``."""
    @property
    def log_path(self) -> Optional[str]:
        """``task.spilled``."""
    @property
    def status(self) -> Optional[TaskStatus]:
        """``task.finished``."""
    @property
    def exit(self) -> Optional[ExitInfo]:
        """``task.finished``."""
    @property
    def reason(self) -> Optional[CancelReason]:
        """``task.finished``."""
    @property
    def error(self) -> Optional[str]:
        """``task.finished`` (a failed task) and ``task.sink_error``."""
    @property
    def duration_ms(self) -> Optional[int]:
        """``task.finished``."""
    @property
    def pid(self) -> Optional[int]:
        """``task.orphaned``."""
    @property
    def disk_limit(self) -> Optional[int]:
        """``task.output_dropped``."""
    @property
    def line(self) -> Optional[str]:
        """``task.watch_matched``."""
    @property
    def new_bytes(self) -> Optional[int]:
        """``task.heartbeat``."""
    @property
    def idle_ms(self) -> Optional[int]:
        """``task.stalled``."""
    @property
    def sink(self) -> Optional[str]:
        """``task.sink_error``: ``output.log`` or ``host``."""
    def to_dict(self) -> Dict[str, Any]: ...

@final
class Lagged:
    """The subscriber fell behind: `missed` events were skipped."""

    @property
    def missed(self) -> int: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class Notification:
    """A message for the host to show its model, pending until acknowledged."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> NotificationKind: ...
    @property
    def task_id(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def task_kind(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def status(self) -> TaskStatus: ...
    @property
    def exit(self) -> Optional[ExitInfo]: ...
    @property
    def reason(self) -> Optional[CancelReason]: ...
    @property
    def error(self) -> Optional[str]: ...
    @property
    def duration_ms(self) -> int: ...
    @property
    def output_tail(self) -> str: ...
    @property
    def value(self) -> Optional[str]:
        """The value the task returned, rendered for a model (a subagent's answer)."""
    @property
    def source(self) -> Optional[Dict[str, Any]]:
        """The delegation a subagent answers: ``{"agent": ..., "arguments": ...}``."""
    @property
    def detail(self) -> Optional[str]: ...
    @property
    def created_at_ms(self) -> int: ...
    @property
    def text(self) -> str:
        """The text for the model: metadata first, then the output tail."""
    def to_dict(self) -> Dict[str, Any]: ...

@final
class ToolResponse:
    """What a tool call answers."""

    @property
    def text(self) -> str:
        """Text for the model: metadata first, then output, within the budget."""
    @property
    def json(self) -> Dict[str, Any]:
        """Structured data for the host (or ``{"error": {"code", "message"}}``)."""
    @property
    def is_error(self) -> bool: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class Pending(Generic[_T]):
    """A wait running in Rust: ``await`` it, or block on it."""

    def done(self) -> bool: ...
    def add_done_callback(self, callback: Callable[[], object]) -> None: ...
    def wait(self, timeout: Optional[float] = None) -> bool: ...
    def result(self) -> _T: ...
    def block_on(self, timeout: Optional[float] = None) -> _T: ...
    def cancel(self) -> None: ...
    def __await__(self) -> Generator[Any, None, _T]: ...

@final
class TaskContext:
    """What a running Python task sees: its output, its stop signal, and its
    steering messages."""

    @property
    def id(self) -> str: ...
    def write(self, data: Union[str, bytes, bytearray], stream: Optional[str] = None) -> None:
        """Appends to the task's output on `stream` (``"stdout"`` by default,
        ``"stderr"``, or a name of the task's own)."""
    @property
    def cancelled(self) -> bool:
        """True once the task was asked to stop."""
    @property
    def cancel_reason(self) -> Optional[CancelReason]: ...
    def wait_cancelled(self) -> Pending[CancelReason]:
        """Awaitable: waits until the task is asked to stop."""
    def wait_cancelled_blocking(self, timeout: Optional[float] = None) -> CancelReason:
        """Blocks until the task is asked to stop; `TimeoutError` if
        `timeout` seconds pass first."""
    def recv(self) -> Pending[Optional[str]]:
        """Awaitable: the next steering message, or ``None`` once the task is
        asked to stop."""
    def recv_blocking(self, timeout: Optional[float] = None) -> Optional[str]:
        """Blocks for the next steering message; ``None`` once the task is
        asked to stop; `TimeoutError` if `timeout` seconds pass first."""
    def try_recv(self) -> Optional[str]: ...
    def _complete(self, value: object) -> None: ...
    def _fail(self, error: str) -> None: ...

@final
class NativeTask:
    @property
    def id(self) -> str: ...
    def info(self) -> TaskInfo: ...
    def wait_foreground(self) -> Pending[Union[Finished, Detached]]: ...

@final
class NativeManager:
    def __init__(
        self,
        root: Optional[str] = None,
        *,
        memory_limit: Optional[int] = None,
        disk_limit: Optional[int] = None,
        tail_window: Optional[int] = None,
        foreground_timeout: Optional[float] = None,
        background_timeout: Optional[float] = None,
        on_timeout: Optional[str] = None,
        max_background: Optional[int] = None,
        max_background_per_owner: Optional[int] = None,
        max_running_of_kind: Optional[Mapping[str, int]] = None,
        stop_grace: Optional[float] = None,
        default_owner: Optional[str] = None,
        notify_host_cancels: bool = False,
        queue_over_capacity: bool = False,
    ) -> None: ...
    @property
    def root(self) -> str: ...
    def run(
        self,
        command: Union[str, Sequence[Union[str, bytes, "os.PathLike[str]"]]],
        *,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        env_clear: bool = False,
        stdin: Union[str, bytes, None] = None,
        interactive: bool = False,
        background: bool = False,
        timeout: Optional[float] = None,
        background_timeout: Optional[float] = None,
        on_timeout: Optional[str] = None,
        description: Optional[str] = None,
        owner: Optional[str] = None,
        keep_alive: bool = False,
        kill_grace: Optional[float] = None,
        watch: Optional[List[str]] = None,
        watch_interval: Optional[float] = None,
        watch_max: Optional[int] = None,
        heartbeat: Optional[float] = None,
        idle_timeout: Optional[float] = None,
        cancel_on_stall: bool = False,
        track_changes: Optional[str] = None,
        pty: Optional[Tuple[int, int]] = None,
    ) -> NativeTask: ...
    def spawn(
        self,
        starter: Callable[[TaskContext], Any],
        description: str,
        *,
        kind: str = "fn",
        background: bool = False,
        timeout: Optional[float] = None,
        background_timeout: Optional[float] = None,
        on_timeout: Optional[str] = None,
        owner: Optional[str] = None,
        keep_alive: bool = False,
        watch: Optional[List[str]] = None,
        watch_interval: Optional[float] = None,
        watch_max: Optional[int] = None,
        heartbeat: Optional[float] = None,
        idle_timeout: Optional[float] = None,
        cancel_on_stall: bool = False,
        track_changes: Optional[str] = None,
    ) -> NativeTask: ...
    def detach(self, id: str) -> TaskInfo: ...
    def poll(self, id: str, cursor: int, max_bytes: int) -> PollResult: ...
    def preview(self, id: str, head_bytes: int, tail_bytes: int) -> Preview: ...
    def info(self, id: str) -> TaskInfo: ...
    def ids(self) -> List[str]: ...
    def list(
        self,
        *,
        owner: Optional[str] = None,
        statuses: Optional[List[str]] = None,
        active_only: bool = False,
    ) -> List[TaskInfo]: ...
    def send(
        self, id: str, message: Union[str, bytes, None] = None, *, eof: bool = False
    ) -> None: ...
    def send_keys(self, id: str, keys: List[str]) -> None: ...
    def resize(self, id: str, cols: int, rows: int) -> Pending[None]: ...
    def collect(self, id: str, timeout: Optional[float] = None) -> Pending[Finished]: ...
    def poll_wait(
        self, id: str, cursor: int, max_bytes: int, timeout: Optional[float] = None
    ) -> Pending[PollResult]: ...
    def cancel(self, id: str, reason: Optional[str] = None) -> Pending[TaskInfo]: ...
    def wait_for(
        self, id: str, until: str, timeout: Optional[float] = None, cursor: Optional[int] = None
    ) -> Pending[Dict[str, Any]]: ...
    def pause(self, id: str) -> Pending[TaskInfo]: ...
    def resume(self, id: str) -> Pending[TaskInfo]: ...
    def shutdown(self, reason: Optional[str] = None) -> Pending[None]: ...
    def wait_foreground(self, id: str) -> Pending[Union[Finished, Detached]]: ...
    def close_owner(self, owner: str, reason: Optional[str] = None) -> Pending[List[TaskInfo]]: ...
    def subscribe(self) -> NativeEvents: ...
    def notifications(self, owner: Optional[str] = None) -> List[Notification]: ...
    def roster(self, owner: str, budget: Optional[int] = None) -> Dict[str, Any]: ...
    def ack(self, ids: List[str]) -> int: ...
    def load_problems(self) -> List[str]: ...
    def kill_orphan(self, id: str) -> TaskInfo: ...
    def gc(self, max_age: Optional[float] = None, max_count: Optional[int] = None) -> List[str]: ...

@final
class NativeEvents:
    def wait(self, timeout: Optional[float] = None) -> Pending[None]:
        """`TimeoutError` if `timeout` seconds pass before an item or the end."""
    def take(self) -> Union[Event, Lagged, None]: ...
    def try_recv(self) -> Union[Event, Lagged, None]: ...
    @property
    def closed(self) -> bool: ...

@final
class NativeToolBox:
    def __init__(
        self,
        manager: NativeManager,
        owner: str,
        *,
        text_budget: Optional[int] = None,
        run_timeout: Optional[float] = None,
        max_run_timeout: Optional[float] = None,
        on_timeout: Optional[str] = None,
        wait_timeout: Optional[float] = None,
        max_wait_timeout: Optional[float] = None,
        output_bytes: Optional[int] = None,
        cwd: Optional[str] = None,
        env: Optional[List[Tuple[str, str]]] = None,
        raw_text: bool = False,
        tty_size: Optional[Tuple[int, int]] = None,
    ) -> None: ...
    @property
    def owner(self) -> str: ...
    def register_agent(
        self,
        name: str,
        description: str,
        factory: Callable[[Dict[str, Any]], Callable[[TaskContext], Any]],
        parameters: Optional[Dict[str, Any]] = None,
    ) -> None: ...
    def register_acp_agent(
        self,
        name: str,
        description: str,
        argv: List[str],
        *,
        cwd: Optional[str] = None,
        env: Optional[Dict[str, str]] = None,
        permissions: Any = None,
        files: str = "cwd",
        show_thoughts: bool = False,
        idle_timeout: Optional[float] = None,
        cancel_grace: Optional[float] = None,
        kill_grace: Optional[float] = None,
        handshake_timeout: Optional[float] = None,
        max_message_bytes: Optional[int] = None,
    ) -> None: ...
    def definitions(self, shape: str = "openai") -> List[Dict[str, Any]]: ...
    def call(self, name: str, args: Union[Dict[str, Any], str, None] = None) -> Pending[ToolResponse]: ...

def spawn_acp(
    manager: NativeManager,
    argv: List[str],
    goal: str,
    *,
    cwd: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    permissions: Union[str, Callable[[Dict[str, Any]], Union[bool, str, None]], None] = None,
    files: str = "cwd",
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
) -> NativeTask: ...
