"""`TaskManager` and `Task`: the public face of agent_tasks, a thin layer
over the native manager (`agent_tasks._native`).

Timeouts: a wait given a `timeout` that passes first raises the builtin
`TimeoutError` (as `asyncio.wait_for` does; from Python 3.11 it is
`asyncio.TimeoutError` too), whichever verb it is: `collect`,
`wait_foreground_blocking`, `wait_for`, `result`, the output streams'
`next`, `EventStream.recv`, `TaskContext.recv_blocking`. A timeout given
to a *task* (`run(..., timeout=...)`) is a different thing: the task's own
limit, which moves it to the background or stops it.

Naming: every verb that waits has two forms. The plain name is awaitable
(``await manager.collect(id)``) and the ``_blocking`` form blocks the calling
thread (``manager.collect_blocking(id)``), with the GIL released and Ctrl+C
raising `KeyboardInterrupt`. Verbs that never wait (`run`, `spawn`,
`detach`, `poll`, `send`, `list`, ...) have one form that works anywhere.

Python functions as tasks: a coroutine function runs on the caller's event
loop (or, when `spawn` is called outside any loop, on an event loop the
manager owns in a background thread); a plain function runs in a worker
thread of its own. Either receives a `TaskContext`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import os
import sys
import threading
import traceback
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Concatenate,
    Coroutine,
    Dict,
    Generator,
    Generic,
    Iterable,
    List,
    Optional,
    ParamSpec,
    Protocol,
    Sequence,
    Set,
    Type,
    TypeVar,
    Union,
    cast,
    runtime_checkable,
)

from ._arguments import checked, checked_function, checked_options, count, invalid, strings
from ._bridge import not_in_event_loop
from ._events import EventStream
from ._output import LineStream, OutputStream
from ._native import DEFAULT_POLL_BYTES as _DEFAULT_POLL_BYTES
from ._native import DEFAULT_PREVIEW_BYTES as _DEFAULT_PREVIEW_BYTES
from ._native import NativeManager, NativeTask, Pending, TaskContext
from ._types import (
    Detached,
    Finished,
    ManagerOptions,
    Notification,
    PollResult,
    Preview,
    RunOptions,
    SpawnOptions,
    StrPath,
    TaskInfo,
    TaskResult,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

Outcome = Union[Finished, Detached]
"""What `wait_foreground` gives: `Finished` (``state == "finished"``, with
`result`) or `Detached` (``state == "detached"``, with `info`). Narrow it
with ``isinstance`` or by comparing `state`."""

Command = Union[str, Sequence[Union[str, bytes, "os.PathLike[str]"]]]
"""A shell string (run with ``sh -c``) or an argv."""

TaskFunction = Callable[[TaskContext], Any]
"""``fn(ctx)``: a coroutine function or a plain function."""


DEFAULT_POLL_BYTES: int = _DEFAULT_POLL_BYTES
"""How many bytes `poll` returns at most unless told otherwise (the core's)."""

DEFAULT_PREVIEW_BYTES: int = _DEFAULT_PREVIEW_BYTES
"""How many bytes of the head, and of the tail, `preview` shows unless told
otherwise (the core's)."""

# Strong references to the asyncio tasks running Python task functions
# (the event loop keeps only weak ones).
_running: Set["asyncio.Task[None]"] = set()


def _is_coroutine_function(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)


def _describe(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return str(name) if name else type(fn).__name__


def _traceback_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


async def _run_coroutine(fn: TaskFunction, ctx: TaskContext) -> None:
    try:
        value = await fn(ctx)
    except asyncio.CancelledError as exc:
        ctx._fail(f"the coroutine was cancelled: {exc}" if exc.args else "the coroutine was cancelled")
        raise
    except BaseException as exc:
        ctx._fail(_traceback_text(exc))
        if not isinstance(exc, Exception):
            raise
    else:
        ctx._complete(value)


def _run_in_thread(fn: TaskFunction, ctx: TaskContext) -> None:
    try:
        value = fn(ctx)
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            ctx._fail(
                f"{_describe(fn)} returned an awaitable; pass an `async def` function "
                "to run it as a coroutine"
            )
            return
    except BaseException as exc:  # a worker thread has nobody to re-raise to
        ctx._fail(_traceback_text(exc))
    else:
        ctx._complete(value)


def _create_task(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, None],
    context: contextvars.Context,
) -> "asyncio.Task[None]":
    """`loop.create_task(coro, context=context)`; Python 3.10 has no
    `context` argument there, but a task copies the context it is created
    in, so it is created inside `context`."""
    if sys.version_info >= (3, 11):
        return loop.create_task(coro, context=context)
    return context.run(loop.create_task, coro)


def _coroutine_starter(
    fn: TaskFunction, loop: asyncio.AbstractEventLoop, context: contextvars.Context
) -> Callable[[TaskContext], Callable[[str], None]]:
    """Called by the native side (on a runtime thread) once the task exists:
    schedules the coroutine on `loop` and returns its canceller."""

    def start(ctx: TaskContext) -> Callable[[str], None]:
        holder: List["asyncio.Task[None]"] = []

        def begin() -> None:
            try:
                task = _create_task(loop, _run_coroutine(fn, ctx), context)
            except BaseException as exc:  # never started: the task must still end
                ctx._fail(f"the coroutine could not be started: {exc!r}")
                raise
            _running.add(task)
            task.add_done_callback(_finished)
            holder.append(task)

        def _finished(task: "asyncio.Task[None]") -> None:
            _running.discard(task)
            if task.cancelled():
                # Cancelled before its first step: the body never reported.
                # (A second report is ignored, so this is safe in any case.)
                ctx._fail("the coroutine was cancelled")

        loop.call_soon_threadsafe(begin)

        def cancel(reason: str) -> None:
            def deliver() -> None:
                if holder:
                    holder[0].cancel(reason)

            try:
                loop.call_soon_threadsafe(deliver)
            except RuntimeError:
                pass  # the loop is closed; the core gives up after the stop grace

        return cancel

    return start


def _thread_starter(
    fn: TaskFunction, context: contextvars.Context
) -> Callable[[TaskContext], None]:
    """Called by the native side once the task exists: runs `fn` in a worker
    thread. A plain function is stopped cooperatively (`ctx.cancelled`)."""

    def start(ctx: TaskContext) -> None:
        thread = threading.Thread(
            target=context.run,
            args=(_run_in_thread, fn, ctx),
            name=f"agent-tasks {ctx.id}",
            daemon=True,
        )
        thread.start()

    return start


class _LoopThread:
    """An event loop in a daemon thread, for coroutine tasks spawned where no
    loop runs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="agent-tasks loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.close()

    def stop(self, join: bool = True) -> None:
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:
            return  # already closed
        if join and threading.current_thread() is not self.thread:
            self.thread.join(timeout=10)


TaskRef = Union[str, "Task"]
"""A task id, or a `Task` handle."""


def _id(task: Any, name: str = "task") -> str:
    if isinstance(task, str):
        return task
    if isinstance(task, Task):
        return task.id
    raise invalid(name, "a task id (str) or a Task", task)


NotificationRef = Union[str, Notification]
"""A notification id, or a `Notification`."""


_P = ParamSpec("_P")
_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)


class _Waitable(Protocol[_R_co]):
    """A wait started by a verb: a native `Pending`, or a verb forwarded to
    where a placed task runs (`_Forwarded`)."""

    def block_on(self, timeout: Optional[float] = None) -> _R_co: ...

    def __await__(self) -> Generator[Any, None, _R_co]: ...


class _Forwarded(Generic[_R]):
    """A verb of a placed task, running where the task runs: its future,
    then `then` on its value (on the caller's side)."""

    def __init__(self, future: "concurrent.futures.Future[Any]", then: Callable[[Any], _R]) -> None:
        self._future = future
        self._then = then

    def block_on(self, timeout: Optional[float] = None) -> _R:
        try:
            value = self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"no answer within {timeout} s") from None
        return self._then(value)

    def __await__(self) -> Generator[Any, None, _R]:
        return self._wait().__await__()

    async def _wait(self) -> _R:
        return self._then(await asyncio.wrap_future(self._future))


@runtime_checkable
class Placement(Protocol):
    """Where a task runs when it does not run on this host: an executor,
    given to `TaskManager.run` as ``placement=``. The host's manager keeps
    the task's entry (so every verb, stream, notification and tool works on
    it unchanged); the placement runs the process elsewhere and drives it
    from a host-side task. `agent_tasks.ray.RayPlacement` places tasks on a
    Ray cluster."""

    def start(
        self,
        manager: "TaskManager",
        command: "Command",
        stdin: Union[str, bytes, None],
        options: RunOptions,
    ) -> "Task":
        """Starts `command` as a task of `manager` and returns it."""
        ...


class PlacedControls(Protocol):
    """The verbs a placed task forwards to where it runs (registered by its
    `Placement` with `TaskManager._place`). `send` and `send_keys` need no
    forwarding: they reach the entry's inbox, in order, and the placement's
    host-side task passes its messages on."""

    def pause(self) -> "concurrent.futures.Future[Any]": ...

    def resume(self) -> "concurrent.futures.Future[Any]": ...

    def resize(self, cols: int, rows: int) -> "concurrent.futures.Future[Any]": ...


def _awaitable(verb: Callable[_P, "_Waitable[_R]"]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """A verb that starts a native wait (``_name``), as its awaitable form
    (``name``); a wrong argument raises when it is awaited."""
    call: Callable[_P, "_Waitable[_R]"] = checked_function(verb)

    async def method(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await call(*args, **kwargs)

    return _named(method, verb, verb.__name__.lstrip("_"), verb.__doc__)


def _blocking(verb: Callable[_P, "_Waitable[_R]"]) -> Callable[_P, _R]:
    """The same verb's blocking form (``name_blocking``), refused on the
    thread of a running event loop."""
    name = verb.__name__.lstrip("_")
    call: Callable[_P, "_Waitable[_R]"] = checked_function(verb)

    def method(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        not_in_event_loop(f"{name}_blocking()")
        return call(*args, **kwargs).block_on()

    return _named(method, verb, f"{name}_blocking", f"Blocking form of `{name}`.")


_F = TypeVar("_F", bound=Callable[..., Any])


def _named(method: _F, verb: Callable[..., Any], name: str, doc: Optional[str]) -> _F:
    method.__name__ = name
    method.__qualname__ = verb.__qualname__.rsplit(".", 1)[0] + "." + name
    method.__doc__ = doc
    method.__wrapped__ = verb  # type: ignore[attr-defined]  # its signature
    return method


def _on_task(
    verb: Callable[Concatenate["TaskManager", TaskRef, _P], _R],
) -> Callable[Concatenate["Task", _P], _R]:
    """The manager's `verb` as a method of `Task`, for that task."""

    def method(self: "Task", /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return verb(self._manager, self.id, *args, **kwargs)

    return _named(method, verb, verb.__name__, f"See `TaskManager.{verb.__name__}`.")


@checked
class TaskManager:
    """Owns all tasks of one agent process; safe to use from any thread and
    from asyncio. Sizes are bytes; timeouts are seconds, where ``None`` keeps
    the default and ``math.inf`` (`agent_tasks.NO_TIMEOUT`) means none.

    Use it as a context manager (``with`` or ``async with``) to shut it down
    on exit; a manager that is dropped cancels its tasks, and so does the
    interpreter's exit.

    `root` is the folder of the task folders (default: a private temporary
    one); the other settings are `ManagerOptions` (the core's, with its
    defaults)."""

    def __init__(self, root: Optional[StrPath] = None, **options: Unpack[ManagerOptions]) -> None:
        self._native = NativeManager(checked_options("TaskManager", ManagerOptions, options, root=root))
        self._lock = threading.Lock()
        self._loop_thread: Optional[_LoopThread] = None
        self._placed: Dict[str, PlacedControls] = {}

    def __repr__(self) -> str:
        return f"TaskManager(root={str(self.root)!r})"

    @property
    def root(self) -> str:
        """The root folder; task folders are ``<root>/tasks/<id>``."""
        return os.fspath(self._native.root)

    # -- starting tasks ------------------------------------------------------

    def run(
        self,
        command: Command,
        *,
        stdin: Union[str, bytes, None] = None,
        placement: Optional[Placement] = None,
        **options: Unpack[RunOptions],
    ) -> Task:
        """Starts a command in its own process group: a `str` runs with
        ``sh -c``, a sequence is an argv; `stdin` is written at start. The
        `options` (`RunOptions`) say where it runs, its timeouts, how it is
        watched and limited. Cancel sends SIGTERM to the group, then SIGKILL
        after `kill_grace`.

        With a `placement` (e.g. `agent_tasks.ray.RayPlacement`) the
        process runs elsewhere, and this manager keeps the task's entry:
        its output streams back, and every verb reaches it there."""
        given = checked_options("run", RunOptions, options)
        if placement is not None:
            if not isinstance(placement, Placement):
                raise invalid("placement", "a Placement (e.g. agent_tasks.ray.RayPlacement)", placement)
            return placement.start(self, command, stdin, cast(RunOptions, given))
        return Task(self, self._native.run(command, stdin, given))

    def _place(self, task_id: str, controls: PlacedControls) -> None:
        """Registers the forwarded verbs of a placed task (by its `Placement`)."""
        with self._lock:
            self._placed[task_id] = controls

    def _unplace(self, task_id: str) -> None:
        with self._lock:
            self._placed.pop(task_id, None)

    def _placed_task(self, task: TaskRef) -> Optional[PlacedControls]:
        with self._lock:
            return self._placed.get(_id(task))

    def _forward(self, task: TaskRef, future: "concurrent.futures.Future[Any]") -> "_Forwarded[TaskInfo]":
        task_id = _id(task)
        return _Forwarded(future, lambda _value: self.info(task_id))

    def spawn(self, fn: TaskFunction, **options: Unpack[SpawnOptions]) -> Task:
        """Starts ``fn(ctx)`` as a task. A coroutine function runs on the
        running event loop (or, outside any loop, on one the manager owns);
        a plain function runs in a worker thread. Its return value (JSON-like:
        None, bool, int, float, str, list, dict) becomes the result's
        `value`; an exception makes the task ``failed`` with the traceback as
        its `error`. A cancel reaches a coroutine as `asyncio.CancelledError`
        and a plain function as ``ctx.cancelled``. The `options`
        (`SpawnOptions`) are `run`'s but for starting a process; `kind`
        prefixes the id."""
        if not callable(fn):
            raise invalid("fn", "a callable", fn)
        context = contextvars.copy_context()
        if _is_coroutine_function(fn):
            starter: Callable[[TaskContext], Any] = _coroutine_starter(
                fn, self._coroutine_loop(), context
            )
        else:
            starter = _thread_starter(fn, context)
        given = checked_options("spawn", SpawnOptions, options)
        if given.get("description") is None:
            given["description"] = _describe(fn)
        return Task(self, self._native.spawn(starter, given))

    def _coroutine_loop(self) -> asyncio.AbstractEventLoop:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            pass
        with self._lock:
            if self._loop_thread is None:
                self._loop_thread = _LoopThread()
            return self._loop_thread.loop

    # -- the verbs that return at once ---------------------------------------

    def detach(self, task: TaskRef) -> TaskInfo:
        """Moves a running foreground task to the background without
        restarting it or losing a byte; its `wait_foreground` caller is
        released at once with ``detached``. For a background or finished task
        it returns the info unchanged."""
        return self._native.detach(_id(task))

    def poll(
        self, task: TaskRef, cursor: int = 0, max_bytes: int = DEFAULT_POLL_BYTES
    ) -> PollResult:
        """Non-blocking: the task's info and up to `max_bytes` of output
        written since `cursor` (a byte offset), with `next_cursor` to poll
        from next. Polling on from `next_cursor` sees every byte once."""
        return self._native.poll(_id(task), cursor, max_bytes)

    def output(
        self, task: TaskRef, cursor: int = 0, max_bytes: int = DEFAULT_POLL_BYTES
    ) -> OutputStream:
        """The task's output from byte offset `cursor` on, as it is written:
        ``async for chunk in m.output(task)`` (or ``for`` on a thread)
        yields `bytes` (at most `max_bytes` each) until the task has ended
        and every byte was read. Each step waits for the task's next write
        or its end (no polling); every byte comes once, in order."""
        return OutputStream(
            self._native, _id(task), count("cursor", cursor), count("max_bytes", max_bytes)
        )

    def lines(self, task: TaskRef, cursor: int = 0) -> LineStream:
        """The task's output from byte offset `cursor` on as lines of text
        (``str``, without the line ending), as `output` reads it; a line
        split across writes comes whole, and the last one comes even
        without a final newline."""
        return LineStream(OutputStream(self._native, _id(task), count("cursor", cursor)))

    def preview(self, task: TaskRef, head_bytes: int = DEFAULT_PREVIEW_BYTES, tail_bytes: int = DEFAULT_PREVIEW_BYTES) -> Preview:
        """The first `head_bytes` and last `tail_bytes` of the output."""
        return self._native.preview(_id(task), head_bytes, tail_bytes)

    def info(self, task: TaskRef) -> TaskInfo:
        """The task's info now."""
        return self._native.info(_id(task))

    def ids(self) -> List[str]:
        """The ids of all tasks the manager knows, oldest first."""
        return self._native.ids()

    def list(
        self,
        *,
        owner: Optional[str] = None,
        status: Union[str, Iterable[str], None] = None,
        active_only: bool = False,
    ) -> List[TaskInfo]:
        """Tasks by owner, status (one or several) and activity, oldest
        first. Foreground tasks that ended without being detached are not
        listed."""
        statuses = strings("status", status)
        return self._native.list(owner=owner, statuses=statuses, active_only=active_only)

    def send(
        self, task: TaskRef, message: Union[str, bytes, None] = None, *, eof: bool = False
    ) -> None:
        """Sends a steering message: to a Python task (``ctx.recv()``) or to
        an `interactive` process's stdin. `NotReceiving` if it can't take it.

        With ``eof=True`` the task's input is then closed (the end of input,
        after `message` if one is given): a process's stdin is closed, so
        ``wc -l`` prints its count and ends; a Python task's ``ctx.recv()``
        returns ``None`` from then on; an ACP agent ends its session once its
        turn is done; a `pty` task gets Ctrl+D. Later sends are refused.
        Neither a message nor `eof` is an `InvalidArgument` naming
        ``message``."""
        self._native.send(_id(task), message, eof=eof)

    def send_keys(self, task: TaskRef, keys: Union[str, Iterable[str]]) -> None:
        """Types keys by name into a task's input, mostly a `pty` task's
        terminal: ``"enter"``, ``"tab"``, ``"escape"``, ``"backspace"``,
        ``"up"``/``"down"``/``"left"``/``"right"``, ``"home"``, ``"end"``,
        ``"pageup"``, ``"pagedown"``, ``"delete"``, ``"f1"``..``"f12"``,
        ``"ctrl+<letter>"`` (``"ctrl+c"`` interrupts), ``"alt+<char>"``.
        An unknown name is an `InvalidArgument` naming ``keys``."""
        self._native.send_keys(_id(task), strings("keys", keys) or [])

    def _resize(self, task: TaskRef, cols: int, rows: int) -> "_Waitable[None]":
        """Resizes a `pty` task's terminal (the program gets SIGWINCH).
        `InvalidArgument` for a task without a terminal or a size of 0."""
        placed = self._placed_task(task)
        if placed is not None:
            return _Forwarded(placed.resize(cols, rows), lambda _value: None)
        return self._native.resize(_id(task), cols, rows)

    resize, resize_blocking = _awaitable(_resize), _blocking(_resize)

    def kill_orphan(self, task: TaskRef) -> TaskInfo:
        """Kills the still-running process of a task found orphaned at open
        (``info.orphan_pid``; checked to be the same process: pid and start
        time) and clears the mark. `InvalidArgument` if it has no orphan."""
        return self._native.kill_orphan(_id(task))

    def gc(self, max_age: Optional[float] = None, max_count: Optional[int] = None) -> List[str]:
        """Removes ended tasks, their folders included: those that ended more
        than `max_age` seconds ago, and the oldest beyond the newest
        `max_count`. Running tasks are never removed. Returns the removed ids."""
        return self._native.gc(max_age, max_count)

    def load_problems(self) -> List[str]:
        """Task folders and notifications found at open that could not be
        read (torn or corrupt files); they were skipped."""
        return self._native.load_problems()

    # -- events and notifications --------------------------------------------

    def events(self) -> EventStream:
        """A live stream of lifecycle events from now on: ``async for`` or
        ``for`` over it yields `Event` objects (``type`` such as
        ``"task.finished"``) in `seq` order, and a `Lagged` item (``missed``)
        when the subscriber fell behind, never a silent gap."""
        return EventStream(self._native.subscribe())

    def notifications(self, owner: Optional[str] = None) -> List[Notification]:
        """Pending notifications, oldest first: of one owner, or of all with
        ``None``. Made when a background (or detached) task ends, a watch
        pattern matches, ...; they stay pending (and survive a restart on the
        same root) until acknowledged with `ack`."""
        return self._native.notifications(owner)

    def roster(self, owner: str, budget: Optional[int] = None) -> Dict[str, Any]:
        """The owner's open background work (queued or running outside the
        foreground), newest first: ``{"text": ..., "items": [...]}``, the text
        a few lines for the model within `budget` bytes (the core's
        ``DEFAULT_ROSTER_BUDGET`` when None; ``""`` when nothing is open), the items for a UI (id, kind, agent, description, status,
        running_ms, last_line, pending_notifications). Hosts put the text in
        front of the model each turn."""
        return self._native.roster(owner, budget)

    def ack(self, ids: Union[NotificationRef, Iterable[NotificationRef]]) -> int:
        """Marks notifications delivered (by id or `Notification`, one or
        several); they never come back. Ids already acknowledged are
        ignored; returns how many were removed."""
        refs: List[Any] = (
            [ids] if isinstance(ids, (str, Notification))
            else list(ids) if isinstance(ids, Iterable) else [ids]
        )
        out: List[str] = []
        for r in refs:
            if isinstance(r, str):
                out.append(r)
            elif isinstance(r, Notification):
                out.append(r.id)
            else:
                raise invalid("ids", "a notification id (str), a Notification, or several", r)
        return self._native.ack(out)

    # -- the verbs that wait -------------------------------------------------

    async def wait_foreground(self, task: TaskRef) -> Outcome:
        """`Task.wait_foreground` by id: waits until the task ends
        (``finished``) or is no longer in the foreground (``detached``)."""
        return await self._native.wait_foreground(_id(task))

    def wait_foreground_blocking(self, task: TaskRef, timeout: Optional[float] = None) -> Outcome:
        """Blocking form of `wait_foreground`; `TimeoutError` if `timeout`
        seconds pass first."""
        not_in_event_loop("wait_foreground_blocking()")
        return self._native.wait_foreground(_id(task)).block_on(timeout)

    def _collect(self, task: TaskRef, timeout: Optional[float] = None) -> "Pending[Finished]":
        """Waits until the task ends (wherever it runs) and gives `Finished`,
        whose `result` says how it ended. `TimeoutError` if `timeout`
        seconds pass first (``None``: no limit; ``0``: answer at once); the
        task goes on."""
        return self._native.collect(_id(task), timeout)

    collect, collect_blocking = _awaitable(_collect), _blocking(_collect)

    def _cancel(self, task: TaskRef, reason: Optional[str] = None) -> "Pending[TaskInfo]":
        """Stops the task (SIGTERM then SIGKILL to a process group;
        `asyncio.CancelledError` in a coroutine; ``ctx.cancelled`` in a
        function), waits until it has ended and returns its final info.
        Idempotent; the reason is recorded and reaches the task."""
        return self._native.cancel(_id(task), reason)

    cancel, cancel_blocking = _awaitable(_cancel), _blocking(_cancel)

    def _wait_for(
        self,
        task: TaskRef,
        until: str,
        timeout: Optional[float] = None,
        cursor: int = 0,
    ) -> "Pending[Dict[str, Any]]":
        """Waits until `until` holds, the task ends, or `timeout` seconds pass
        (``None``: no limit). `until` is a regular expression over output
        lines (from byte offset `cursor`), ``"port:N"`` (a TCP port on
        127.0.0.1 accepting connections, tried every 100 ms) or ``"end"``.
        Woken by output and by the end, not by polling. Gives a dict whose
        ``state`` says what happened: ``"matched"`` (with ``line`` and
        ``cursor``, just past the line), ``"port_open"`` (with ``port``) or
        ``"ended"`` (with the result's fields); `TimeoutError` if `timeout`
        seconds pass first."""
        return self._native.wait_for(_id(task), until, timeout, cursor)

    wait_for, wait_for_blocking = _awaitable(_wait_for), _blocking(_wait_for)

    def _pause(self, task: TaskRef) -> "_Waitable[TaskInfo]":
        """Pauses a process task: SIGSTOP to every process of it. Its
        timeouts wait while it is paused; ``info.paused`` is true; it can
        still be cancelled. A function task is refused (`InvalidArgument`).
        A placed task is paused where it runs (its host-side timeouts go on,
        and ``info.paused`` stays false on the host)."""
        placed = self._placed_task(task)
        if placed is not None:
            return self._forward(task, placed.pause())
        return self._native.pause(_id(task))

    pause, pause_blocking = _awaitable(_pause), _blocking(_pause)

    def _resume(self, task: TaskRef) -> "_Waitable[TaskInfo]":
        """Resumes a paused task: SIGCONT to every process of it."""
        placed = self._placed_task(task)
        if placed is not None:
            return self._forward(task, placed.resume())
        return self._native.resume(_id(task))

    resume, resume_blocking = _awaitable(_resume), _blocking(_resume)

    async def shutdown(self, reason: Optional[str] = None) -> None:
        """Cancels every task except keep-alive ones, waits until they have
        ended, and refuses new tasks from then on (`ShutDown`); reads
        (`info`, `poll`, `collect`, `list`, `notifications`) go on answering,
        as in the core and the Node binding. If nothing is left running, the
        root is released for another manager."""
        await self._native.shutdown(reason)
        self._stop_loop()

    def _close_owner(self, owner: str, reason: Optional[str] = None) -> "Pending[List[TaskInfo]]":
        """Cancels the running tasks of `owner` (a closed session), except
        keep-alive ones; waits until they have ended; returns their final
        infos (cancel reason kind ``owner_closed``)."""
        return self._native.close_owner(owner, reason)

    close_owner, close_owner_blocking = _awaitable(_close_owner), _blocking(_close_owner)

    def shutdown_blocking(self, reason: Optional[str] = None) -> None:
        """Blocking form of `shutdown`. It refuses to run on an event loop's
        thread (coroutine tasks on a blocked loop could not wind down): use
        ``await shutdown()`` or ``async with`` there."""
        not_in_event_loop("shutdown_blocking()")
        self._native.shutdown(reason).block_on()
        self._stop_loop()

    def __del__(self) -> None:
        # Dropping the native manager cancels the tasks (the core does that
        # when its last handle goes); then the owned event loop, if any, ends.
        self.__dict__.pop("_native", None)
        loop_thread = self.__dict__.pop("_loop_thread", None)
        if loop_thread is not None:
            loop_thread.stop(join=False)

    def _stop_loop(self) -> None:
        with self._lock:
            loop_thread, self._loop_thread = self._loop_thread, None
        if loop_thread is not None:
            loop_thread.stop()

    # -- context manager -----------------------------------------------------

    def __enter__(self) -> "TaskManager":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.shutdown_blocking()

    async def __aenter__(self) -> "TaskManager":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.shutdown()


@checked
class Task:
    """A spawned task: its id, and shortcuts to the manager's verbs for it.

    ``await task`` waits until it ends, wherever it runs (a detach does not
    end the wait), and gives its `TaskResult`, as an asyncio task gives its
    value; ``task.result()`` is the blocking form. A foreground task's
    caller waits with `wait_foreground()`, which also returns when the task
    is moved to the background. ``async for chunk in task.output()`` and
    ``task.lines()`` follow its output as it is written."""

    __slots__ = ("_manager", "_native", "id")

    def __init__(self, manager: "TaskManager", native: NativeTask) -> None:
        self._manager = manager
        self._native = native
        self.id: str = native.id

    def __repr__(self) -> str:
        return f"Task(id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def info(self) -> TaskInfo:
        """The task's info now."""
        return self._native.info()

    def __await__(self) -> Generator[Any, None, TaskResult]:
        return self._final_result().__await__()

    async def _final_result(self) -> TaskResult:
        return (await self._manager.collect(self.id)).result

    def result(self, timeout: Optional[float] = None) -> TaskResult:
        """Blocks until the task ends and gives its result (``await task``
        is the awaitable form); `TimeoutError` if `timeout` seconds pass
        first (the task goes on)."""
        return self._manager.collect_blocking(self.id, timeout).result

    async def wait_foreground(self) -> Outcome:
        """Waits until the task ends (`Finished`, with `result`) or is moved
        to the background by `detach` or a foreground timeout (`Detached`,
        with `info`). For a background task this returns `Detached` at once."""
        return await self._native.wait_foreground()

    def wait_foreground_blocking(self, timeout: Optional[float] = None) -> Outcome:
        """Blocking form of `wait_foreground`; `TimeoutError` if `timeout`
        seconds pass first."""
        not_in_event_loop("wait_foreground_blocking()")
        return self._native.wait_foreground().block_on(timeout)

    output = _on_task(TaskManager.output)
    lines = _on_task(TaskManager.lines)
    detach = _on_task(TaskManager.detach)
    poll = _on_task(TaskManager.poll)
    preview = _on_task(TaskManager.preview)
    collect = _on_task(TaskManager.collect)
    collect_blocking = _on_task(TaskManager.collect_blocking)
    cancel = _on_task(TaskManager.cancel)
    cancel_blocking = _on_task(TaskManager.cancel_blocking)
    send = _on_task(TaskManager.send)
    send_keys = _on_task(TaskManager.send_keys)
    resize = _on_task(TaskManager.resize)
    resize_blocking = _on_task(TaskManager.resize_blocking)
