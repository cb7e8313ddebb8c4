"""Type stubs of the native module (pyo3). The public API is re-exported
from `agent_tasks`; `NativeManager`, `NativeTask`, `NativeEvents`,
`NativeToolBox` and `Pending` are the engine behind `TaskManager`, `Task`,
`EventStream` and `ToolBox`. The values they give are the classes of
`agent_tasks._types` (generated from the core's schemas)."""

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

from ._types import (
    CancelReason,
    Detached,
    Event,
    Finished,
    Lagged,
    Notification,
    PollResult,
    Preview,
    TaskInfo,
    ToolResponse,
)

_T = TypeVar("_T", covariant=True)

MAX_POLL_BYTES: int
DEFAULT_POLL_BYTES: int
DEFAULT_PREVIEW_BYTES: int
__version__: str

def _at_exit(timeout: float = 10.0) -> None: ...
def tool_definitions(shape: str = "openai") -> List[Dict[str, Any]]: ...
def cancel_reason_text(kind: str, message: Optional[str] = None) -> str: ...
def closest_name(given: str, known: List[str]) -> Optional[str]: ...

@final
class LineSplitter:
    """The core's line rule: bytes in, whole lines of text out."""

    def push(self, data: bytes) -> List[str]: ...
    def finish(self) -> Optional[str]: ...

@final
class WireValue:
    """A core value's wire form, converted a field at a time when read."""

    def __getitem__(self, key: str) -> Any: ...
    def get(self, key: str, default: Any = None) -> Any: ...
    def at(self, key: str) -> Optional[WireValue]: ...
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
