"""Tasks placed on a Ray cluster: ``m.run(command, placement=RayPlacement(...))``.

Install with the extra: ``pip install "agent-tasks[ray]"`` (pulls
``ray[default]``). Every node of the cluster needs agent-tasks installed
in the Python that Ray runs there (the same environment as the host, as
Ray itself requires). Nothing here is imported by ``agent_tasks`` itself:
hosts that never place a task never import Ray.

How it works (see docs/clusters.md):

* The host's manager keeps the task's entry: a host-side function task
  (kind ``ray``) drives the remote process, so `poll` by cursor, `lines`,
  `wait_for`, watches, notifications, the roster and the `ToolBox` tools
  work unchanged on the output it streams back.
* Ray places it: a small *slot* (a Ray task, so Ray runs it on an idle
  worker without starting a process) is submitted with the task's resources
  (`num_cpus`, `memory`, `resources`, `node`); while Ray cannot give them,
  the task waits unplaced (its `location` is ``None``) and holds nothing on
  any node. The slot holds the resources as long as the process runs; the
  host cancels it when the task ends (the worker stays for the next task).
* On the node Ray chose, a per-node actor (named
  ``agent-tasks-node-<node id>`` in the Ray namespace ``agent-tasks``,
  detached, 0 CPUs, created on demand, one per node) holds a local
  `TaskManager` with its own root there and runs the process in the
  background: containment (cgroup or subreaper), limits, spill to disk and
  head + tail apply there as they do locally.
* Output streams back in order, each chunk with its stdout/stderr spans,
  every byte once: one read of at most `RayPlacement.chunk_bytes` in flight,
  so a slow host leaves the output on the node's disk (spilled), never in
  memory.
* `send` (stdin, with ``interactive=True`` or ``pty``), `send_keys`,
  `resize`, `pause`/`resume` and `cancel` (the remote tree killed, strays
  included, with the reason) cross the cluster.
* Failures are told: the node or its actor dying ends the task ``failed``
  with an error starting ``node lost`` (one notification, as any end); a
  cluster that cannot be reached at `run` raises `ClusterUnavailable`.
* The host dying kills its remote tasks: each host process has one *lease*
  actor on its own node, owned by its Ray job, so Ray kills it when the
  host's driver goes; the node actor waits on the lease for every task (a
  call that never returns while it lives) and then cancels the task (reason
  ``host lost``). Ray also kills the host's slots then.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import math
import os
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

# Ray is imported as an untyped module: it ships no type information that
# mypy --strict accepts, and this module is checked where Ray is absent.
ray: Any = importlib.import_module("ray")
importlib.import_module("ray.exceptions")
NodeAffinitySchedulingStrategy: Any = importlib.import_module(
    "ray.util.scheduling_strategies"
).NodeAffinitySchedulingStrategy

from ._arguments import invalid
from ._errors import ClusterUnavailable, NotReceiving
from ._manager import Command, Task, TaskManager
from ._native import MAX_POLL_BYTES, TaskContext
from ._types import RunOptions, SpawnOptions

__all__ = ["RayPlacement", "Location", "location", "NODE_NAMESPACE", "node_actor_name"]

NODE_NAMESPACE = "agent-tasks"
"""The Ray namespace of the per-node actors."""

DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
"""How many output bytes one read from a node brings back at most (one
read is in flight per task)."""

# Options of `run` that describe the process: they go to the node. The
# others (timeouts, owner, watches, ...) stay with the host's entry.
_REMOTE_OPTIONS = ("cwd", "env", "env_clear", "interactive", "kill_grace", "pty", "limits")
# Not offered for a placed task: `track_changes` (the files change on another
# machine) and `on_host_exit` (a placed task ends with its host; keeping it
# for a later host is the supervisor's, not carried over the cluster yet).
_HOST_OPTIONS = tuple(
    k for k in SpawnOptions.__annotations__ if k not in ("kind", "track_changes", "on_host_exit")
)


def node_actor_name(node_id: str) -> str:
    """The name of the per-node actor of the node `node_id`."""
    return f"agent-tasks-node-{node_id}"


@dataclass(frozen=True)
class Location:
    """Where a placed task runs: the Ray node (`node_id`, its `address` and
    `hostname`), and the task's id and process id in that node's manager."""

    node_id: str
    address: str
    hostname: str
    remote_task_id: Optional[str] = None
    pid: Optional[int] = None

    def __str__(self) -> str:
        return f"ray node {self.node_id[:12]} ({self.address}, {self.hostname})"


@dataclass(frozen=True)
class RayPlacement:
    """Places a task on a Ray cluster: pass it as ``m.run(command,
    placement=RayPlacement(...))``.

    `num_cpus`, `memory` (bytes) and `resources` (custom resources, e.g.
    ``{"gpu-box": 1}``) are what Ray reserves for the task while it runs;
    `node` pins it to one node (a Ray node id). `address` is the cluster's
    (``"host:port"``; default: the Ray connection this process already has,
    else ``RAY_ADDRESS``, else ``"auto"``; a process is connected to one
    cluster at a time). `chunk_bytes` bounds one page of output from the
    node, `chunks_in_flight` how many pages the node sends ahead of the
    host. A wrong value is an `InvalidArgument` naming it."""

    num_cpus: float = 1
    memory: Optional[int] = None
    resources: Mapping[str, float] = field(default_factory=dict)
    node: Optional[str] = None
    address: Optional[str] = None
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    chunks_in_flight: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.num_cpus, (int, float)) or self.num_cpus < 0:
            raise invalid("num_cpus", "a number >= 0", self.num_cpus)
        if self.memory is not None and (not isinstance(self.memory, int) or self.memory <= 0):
            raise invalid("memory", "a positive number of bytes", self.memory)
        if not isinstance(self.resources, Mapping) or not all(
            isinstance(name, str) and isinstance(amount, (int, float)) and amount >= 0
            for name, amount in self.resources.items()
        ):
            raise invalid("resources", "names (str) with amounts >= 0", self.resources)
        if self.node is not None and not isinstance(self.node, str):
            raise invalid("node", "a Ray node id (str)", self.node)
        if not isinstance(self.chunk_bytes, int) or not 1 <= self.chunk_bytes <= MAX_POLL_BYTES:
            raise invalid("chunk_bytes", f"1 to {MAX_POLL_BYTES} bytes", self.chunk_bytes)
        if not isinstance(self.chunks_in_flight, int) or self.chunks_in_flight < 1:
            raise invalid("chunks_in_flight", "an int >= 1", self.chunks_in_flight)

    def start(
        self,
        manager: TaskManager,
        command: Command,
        stdin: Union[str, bytes, None],
        options: RunOptions,
    ) -> Task:
        """Starts `command` on the cluster as a task of `manager` (called by
        `TaskManager.run`)."""
        remote: Dict[str, Any] = {}
        host: Dict[str, Any] = {}
        for key, value in dict(options).items():
            if key in _REMOTE_OPTIONS:
                remote[key] = value
            elif key in _HOST_OPTIONS:
                host[key] = value
            else:
                raise invalid(key, "no such option for a task placed on a cluster", value)
        _connect(self.address)
        if self.node is not None and self.node not in _alive_nodes():
            raise ClusterUnavailable(
                f"node {self.node!r} is not an alive node of the Ray cluster",
                reason="unknown node",
            )
        if host.get("description") is None:
            host["description"] = command if isinstance(command, str) else shlex.join(
                [os.fsdecode(os.fspath(a)) if not isinstance(a, str) else a for a in command]
            )
        argv: Union[str, List[str]] = (
            command if isinstance(command, str)
            else [os.fsdecode(a) if isinstance(a, bytes) else os.fsdecode(os.fspath(a)) for a in command]
        )
        driver = _Driver(self, manager, argv, stdin, remote)
        task = manager.spawn(driver.run, kind="ray", **host)
        manager._place(task.id, driver)
        return task

    def _actor_options(self) -> Dict[str, Any]:
        opts: Dict[str, Any] = {"num_cpus": self.num_cpus, "resources": dict(self.resources)}
        if self.memory is not None:
            opts["memory"] = self.memory
        if self.node is not None:
            opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(self.node, soft=False)
        return opts


def location(task: Task) -> Optional[Location]:
    """Where a task placed on the cluster runs, or ``None`` while Ray has
    not placed it yet (it waits for resources) or for a task that was not
    placed."""
    driver = task._manager._placed_task(task)
    return driver.location if isinstance(driver, _Driver) else None


_connect_lock = threading.Lock()


def _connect(address: Optional[str]) -> None:
    """Connects this process to the cluster, once; `ClusterUnavailable` if
    it cannot."""
    with _connect_lock:
        if ray.is_initialized():
            current = ray.get_runtime_context().gcs_address
            if address and "://" not in address and address != "auto" and address != current:
                raise ClusterUnavailable(
                    f"this process is connected to the Ray cluster at {current}, "
                    f"not {address} (one cluster per process)",
                    reason="connected elsewhere",
                )
            return
        address = address or os.environ.get("RAY_ADDRESS") or "auto"
        if ":" in address and not address.startswith(("ray://", "auto")):
            host, _, port = address.rpartition(":")
            try:
                socket.create_connection((host, int(port)), timeout=10).close()
            except (OSError, ValueError) as exc:
                raise ClusterUnavailable(
                    f"the Ray cluster at {address} cannot be reached: {exc}", reason=str(exc)
                ) from None
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterUnavailable(
                f"the Ray cluster at {address} cannot be reached: {exc}", reason=str(exc)
            ) from None


def _alive_nodes() -> List[str]:
    return [n["NodeID"] for n in ray.nodes() if n.get("Alive")]


async def _get(ref: Any) -> Any:
    """Awaits a Ray object ref on whatever event loop runs."""
    return await asyncio.wrap_future(ref.future())


# Errors that mean the node (or the actor on it) is gone.
_LOST = (
    ray.exceptions.RayActorError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.OwnerDiedError,
)


def _lost_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _Driver:
    """The host-side body of one placed task: places it, starts it on the
    node, streams its output into the host task, forwards its input and
    stop request."""

    def __init__(
        self,
        placement: RayPlacement,
        manager: TaskManager,
        command: Union[str, List[str]],
        stdin: Union[str, bytes, None],
        options: Dict[str, Any],
    ) -> None:
        self.placement = placement
        self.manager = manager
        self.command = command
        self.stdin = stdin
        self.options = options
        self.location: Optional[Location] = None
        self.node: Any = None
        self.remote_id: Optional[str] = None
        self.ended = False

    def _call(self, verb: str, *args: Any) -> "concurrent.futures.Future[Any]":
        """`verb` of the node actor for this task, as a future; fails with
        `NotReceiving` while the task has not started on a node, or after
        it ended."""
        if self.node is None or self.remote_id is None or self.ended:
            future: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
            future.set_exception(NotReceiving(
                "the task is not running on a node (not placed yet, or ended)",
                reason="not placed",
            ))
            return future
        return getattr(self.node, verb).remote(self.remote_id, *args).future()  # type: ignore[no-any-return]

    def pause(self) -> "concurrent.futures.Future[Any]":
        return self._call("pause")

    def resume(self) -> "concurrent.futures.Future[Any]":
        return self._call("resume")

    def resize(self, cols: int, rows: int) -> "concurrent.futures.Future[Any]":
        return self._call("resize", cols, rows)

    async def run(self, ctx: TaskContext) -> Any:
        slot = None
        pages: Any = None
        node: Any = None
        starting: Optional["asyncio.Future[Any]"] = None
        inbox: Optional["asyncio.Task[None]"] = None
        try:
            lease = _host_lease()
            slot = _slot.options(
                num_returns="streaming",
                _generator_backpressure_num_objects=1,
                **self.placement._actor_options(),
            ).remote()
            where = await (await slot.__anext__())
            node = _node_actor(where["node_id"])
            # Shielded: a cancel that comes while the node starts the
            # process still learns its id, and stops it (below).
            starting = asyncio.ensure_future(
                _get(node.start.remote(self.command, self.stdin, self.options, lease))
            )
            started = await asyncio.shield(starting)
            self.node, self.remote_id = node, started["id"]
            self.location = Location(
                node_id=where["node_id"],
                address=where["address"],
                hostname=where["hostname"],
                remote_task_id=started["id"],
                pid=started["pid"],
            )
            if self.options.get("interactive") or self.options.get("pty"):
                inbox = asyncio.ensure_future(self._forward_input(ctx, node, started["id"]))
            pages = node.stream.options(
                num_returns="streaming",
                _generator_backpressure_num_objects=self.placement.chunks_in_flight,
            ).remote(started["id"], 0, self.placement.chunk_bytes)
            async for ref in pages:
                page = await ref
                data: bytes = page["data"]
                for offset, length, stream in page["spans"]:
                    ctx.write(data[offset - page["cursor"]: offset - page["cursor"] + length], stream)
                if page["eof"]:
                    break
            end = await _get(node.result.remote(started["id"]))
            return self._report(ctx, end)
        except asyncio.CancelledError as exc:
            reason = str(exc.args[0]) if exc.args else "cancelled"
            remote_id = self.remote_id
            try:
                if remote_id is None and starting is not None:
                    remote_id = (await starting)["id"]
                if remote_id is not None:
                    await _get(node.cancel.remote(remote_id, reason))
            except ray.exceptions.RayError:
                pass  # it never started there, or its node is gone
            raise
        except _LOST as exc:
            ctx._fail(f"node lost: {_lost_reason(exc)}")
            return None
        except ray.exceptions.RayTaskError as exc:
            # The node refused the task (a bad `cwd`, limits it cannot
            # enforce, ...): its own error, as a local `run` would raise it.
            cause = getattr(exc, "cause", None) or exc
            ctx._fail(f"the node could not start the task: {cause}")
            return None
        finally:
            self.ended = True
            if inbox is not None:
                inbox.cancel()
            try:
                if pages is not None:
                    ray.cancel(pages)  # a stream the host stopped reading
                if slot is not None:
                    ray.cancel(slot)  # frees its resources on the node
            except Exception:
                pass  # the node or the connection is gone: nothing is held

    def _report(self, ctx: TaskContext, end: Dict[str, Any]) -> Any:
        """Ends the host's task as the process ended on its node: its exit,
        error and usage, so the result reads as a local process's."""
        if end["exit"] is None:  # it never started there
            ctx._fail(end.get("error") or f"the task ended {end['status']} on its node")
            return None
        ctx._finish_process(
            end["exit"],
            None if end["status"] == "completed" else end.get("error") or end["status"],
            end.get("usage"),
        )
        return None

    async def _forward_input(self, ctx: TaskContext, node: Any, remote_id: str) -> None:
        while True:
            message = await ctx.recv_bytes()
            if message is None:
                if not ctx.cancelled:
                    await _get(node.send.remote(remote_id, None, True))
                return
            await _get(node.send.remote(remote_id, message, False))


def _where() -> Dict[str, Any]:
    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "address": ray.util.get_node_ip_address(),
        "hostname": socket.gethostname(),
    }


def _slot_body() -> Any:
    """A placed task's slot: a Ray task holding the task's resources on the
    node Ray chose; it says where it runs, then holds them until the host
    cancels it (the task ended) or Ray kills it (its host died). A task, not
    an actor: Ray runs it on an idle worker, without starting a process."""
    yield _where()
    while True:
        # A cancel reaches a generator between two items: one more item
        # (never read; with a backpressure of 1 it waits, costing nothing)
        # lets the host's cancel end it within half a second, and the
        # worker stays for the next task.
        time.sleep(0.5)
        yield None


class _HostLease:
    """One per host process, on the host's node, owned by the host's Ray
    job: Ray kills it when the host goes, and the node actors, which wait
    on it for each task, then cancel the host's tasks."""

    async def hold(self) -> None:
        await asyncio.Event().wait()


_lease: Any = None


def _host_lease() -> Any:
    global _lease
    with _connect_lock:
        if _lease is None:
            _lease = _HostLeaseActor.options(
                num_cpus=0,
                max_restarts=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(
                    ray.get_runtime_context().get_node_id(), soft=True
                ),
            ).remote()
        return _lease


def _node_actor(node_id: str) -> Any:
    """The node's actor, created on demand (one per node)."""
    return _NodeAgentActor.options(
        name=node_actor_name(node_id),
        namespace=NODE_NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        num_cpus=0,
        max_restarts=0,
        max_concurrency=10000,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote()


class _NodeAgent:
    """One per node: a local `TaskManager` (its own root on this node) that
    runs the placed processes, and answers the hosts' reads and verbs."""

    def __init__(self) -> None:
        self.manager = TaskManager()
        self.watchers: Dict[str, "asyncio.Task[None]"] = {}

    async def start(
        self, command: Union[str, List[str]], stdin: Union[str, bytes, None],
        options: Dict[str, Any], lease: Any,
    ) -> Dict[str, Any]:
        task = self.manager.run(
            command, stdin=stdin, background=True, background_timeout=math.inf, **options
        )
        self.watchers[task.id] = asyncio.ensure_future(self._watch(task.id, lease))
        # The pid is in the info once the runtime has started the process
        # (no event says it): looked at briefly, for the host's `location`.
        info = task.info()
        for _ in range(500):
            if info.pid is not None or info.is_terminal:
                break
            await asyncio.sleep(0.01)
            info = task.info()
        return {"id": task.id, "pid": info.pid}

    async def _watch(self, task_id: str, lease: Any) -> None:
        """Cancels the task once its host's lease is gone (the host died): a
        remote task never outlives its host. A call to the lease that never
        returns while it lives: no polling."""
        hold = asyncio.ensure_future(_get(lease.hold.remote()))
        end = asyncio.ensure_future(self.manager.collect(task_id))
        try:
            await asyncio.wait({hold, end}, return_when=asyncio.FIRST_COMPLETED)
            if not end.done():
                await self.manager.cancel(task_id, "host lost")
        finally:
            hold.cancel()
            end.cancel()
            self.watchers.pop(task_id, None)

    async def read(self, task_id: str, cursor: int, max_bytes: int) -> Dict[str, Any]:
        try:
            page = await self.manager._native.poll_wait(task_id, cursor, max_bytes, 30.0)
        except TimeoutError:
            page = self.manager.poll(task_id, cursor, max_bytes)
        data = page.data
        return {
            "data": data,
            "cursor": page.cursor,
            "spans": [(s.offset, s.len, s.stream) for s in page.spans],
            "next_cursor": page.next_cursor,
            "eof": page.eof,
            "omitted": page.omitted_bytes,
        }

    async def stream(self, task_id: str, cursor: int, max_bytes: int) -> Any:
        """The task's output from `cursor` on, as pages (a Ray streaming
        generator: the host bounds how many are in flight)."""
        while True:
            page = await self.read(task_id, cursor, max_bytes)
            cursor = page["next_cursor"]
            yield page
            if page["eof"]:
                return

    async def result(self, task_id: str) -> Dict[str, Any]:
        result = (await self.manager.collect(task_id)).result
        exit, usage = result.exit, result.usage
        return {
            "status": result.status,
            "exit": None if exit is None else exit.to_dict(),
            "error": result.error,
            "usage": None if usage is None else usage.to_dict(),
        }

    async def send(self, task_id: str, message: Optional[bytes], eof: bool) -> None:
        self.manager.send(task_id, message, eof=eof)

    async def resize(self, task_id: str, cols: int, rows: int) -> None:
        await self.manager.resize(task_id, cols, rows)

    async def pause(self, task_id: str) -> bool:
        return (await self.manager.pause(task_id)).paused

    async def resume(self, task_id: str) -> bool:
        return (await self.manager.resume(task_id)).paused

    async def cancel(self, task_id: str, reason: str) -> Dict[str, Any]:
        info = await self.manager.cancel(task_id, reason)
        return {"status": info.status}

    async def info(self, task_id: str) -> Dict[str, Any]:
        return self.manager.info(task_id).to_dict()

    async def where(self) -> Dict[str, Any]:
        return {**_where(), "root": self.manager.root, "pid": os.getpid()}


_slot: Any = ray.remote(max_retries=0)(_slot_body)
_HostLeaseActor: Any = ray.remote(_HostLease)
_NodeAgentActor: Any = ray.remote(_NodeAgent)
