"""Invalid ids and arguments raise the right exception, all under one base."""

from __future__ import annotations

import asyncio
import math
import os
from typing import Callable, Dict, List, Tuple

import pytest

import agent_tasks
from agent_tasks import (
    AgentTasksError,
    CapacityExceeded,
    InvalidArgument,
    InvalidTaskId,
    NotReceiving,
    ShutDown,
    StorageError,
    TaskContext,
    TaskManager,
    TaskNotFound,
    ToolBox,
)
from conftest import BOUND


def test_every_error_shares_one_base() -> None:
    for cls in (TaskNotFound, InvalidTaskId, CapacityExceeded, InvalidArgument, NotReceiving, ShutDown, StorageError):
        assert issubclass(cls, AgentTasksError)
    assert issubclass(TaskNotFound, LookupError)
    assert issubclass(InvalidTaskId, ValueError) and issubclass(InvalidArgument, ValueError)
    assert issubclass(StorageError, OSError)


@pytest.mark.parametrize("bad", ["", "../etc", "bad id", "Process-abcd1234", "x" * 200, "fn-ab", "fn-ABCD1234"])
def test_malformed_ids_are_invalid_task_id(manager: TaskManager, bad: str) -> None:
    for call in (
        lambda: manager.poll(bad),
        lambda: manager.detach(bad),
        lambda: manager.info(bad),
        lambda: manager.send(bad, "x"),
        lambda: manager.preview(bad),
        lambda: manager.collect_blocking(bad),
        lambda: manager.cancel_blocking(bad),
    ):
        with pytest.raises(InvalidTaskId) as caught:
            call()
        assert caught.value.code == "INVALID_TASK_ID"
        assert caught.value.reason


def test_unknown_ids_are_task_not_found(manager: TaskManager) -> None:
    for call in (
        lambda: manager.poll("process-abcd1234"),
        lambda: manager.detach("process-abcd1234"),
        lambda: manager.collect_blocking("process-abcd1234", timeout=0),
        lambda: manager.cancel_blocking("process-abcd1234"),
    ):
        with pytest.raises(TaskNotFound) as caught:
            call()
        assert caught.value.code == "TASK_NOT_FOUND"
        assert caught.value.task_id == "process-abcd1234"
        assert "process-abcd1234" in str(caught.value)

    async def main() -> None:
        with pytest.raises(TaskNotFound):
            await manager.collect("fn-abcd1234")
        with pytest.raises(TaskNotFound):
            await manager.cancel("fn-abcd1234")

    asyncio.run(main())


def test_invalid_arguments_name_the_argument(manager: TaskManager, tmp_path: "os.PathLike[str]") -> None:
    task = manager.run("true")
    cases = {
        "cursor": lambda: manager.poll(task, -1),
        "max_bytes": lambda: manager.poll(task, 0, -5),
        "head_bytes": lambda: manager.preview(task, -1, 10),
        "on_timeout": lambda: manager.run("true", on_timeout="explode"),
        "timeout": lambda: manager.run("true", timeout=-1),
        "kill_grace": lambda: manager.run("true", kill_grace=math.nan),
        "command": lambda: manager.run("   "),
        "status": lambda: manager.list(status="sleeping"),
        "fn": lambda: manager.spawn(42),  # type: ignore[arg-type]
        "memory_limit": lambda: TaskManager(root=os.fspath(tmp_path), memory_limit=0),
        "disk_limit": lambda: TaskManager(root=os.fspath(tmp_path), disk_limit=-1),
        "stop_grace": lambda: TaskManager(root=os.fspath(tmp_path), stop_grace=-0.5),
    }
    for argument, call in cases.items():
        with pytest.raises(InvalidArgument) as caught:
            call()
        assert caught.value.code == "INVALID_ARGUMENT"
        assert caught.value.argument == argument, (argument, caught.value)
        assert argument in str(caught.value)
    with pytest.raises(InvalidArgument, match="argv"):
        manager.run([])
    with pytest.raises(InvalidArgument):
        manager.collect_blocking(task, timeout=-1)


def test_wrong_arguments_raise_invalid_argument_naming_them(
    manager: TaskManager, tmp_path: "os.PathLike[str]"
) -> None:
    # Every wrong argument, whatever its kind (a wrong type the native side
    # cannot convert, a value the layer checks, an unknown keyword, a
    # missing one), raises InvalidArgument naming it and what was expected.
    task = manager.run("sleep 30", background=True)
    toolbox = ToolBox(manager, "tests")
    cases: Dict[str, Tuple[str, str, Callable[[], object]]] = {
        "a str timeout": ("timeout", "float", lambda: manager.collect_blocking(task, timeout="5")),
        "a str task timeout": ("timeout", "float", lambda: manager.run("true", timeout="5")),
        "a str timeout, awaited": (
            "timeout", "float", lambda: asyncio.run(manager.collect(task, timeout="5"))
        ),
        "poll(None)": ("task", "task id", lambda: manager.poll(None)),
        "ToolBox(None, ...)": ("manager", "TaskManager", lambda: ToolBox(None, "o")),
        "an unknown keyword": ("tiemout", "did you mean `timeout`", lambda: manager.run("true", tiemout=5)),
        "an unknown keyword, awaited": (
            "tiemout", "timeout", lambda: asyncio.run(manager.collect(task, tiemout=1))
        ),
        "a missing argument": ("command", "missing", lambda: manager.run()),
        "a str cursor": ("cursor", "int", lambda: manager.poll(task, "zero")),
        "an int message": ("message", "str, bytes", lambda: manager.send(task, 42)),
        "an int command": ("command", "shell string", lambda: manager.run(123)),
        "a str flag": ("background", "bool", lambda: manager.run("true", background="yes")),
        "an int policy": ("on_timeout", "str", lambda: manager.run("true", on_timeout=3)),
        "an env value": ("env", "Mapping", lambda: manager.run("true", env={"A": 1})),
        "an int cwd": ("cwd", "path", lambda: manager.run("true", cwd=5)),
        "an int root": ("root", "path", lambda: TaskManager(root=5)),
        "a str size": ("memory_limit", "int", lambda: TaskManager(memory_limit="1M")),
        "an int status": ("status", "str", lambda: manager.list(status=5)),
        "an int ack": ("ids", "notification id", lambda: manager.ack(5)),
        "a str budget": ("text_budget", "int", lambda: ToolBox(manager, "o", text_budget="big")),
        "a None owner": ("owner", "str", lambda: ToolBox(manager, None)),
        "int tool args": ("args", "dict", lambda: toolbox.call_blocking("task_list", 5)),
        "an int until": ("until", "str", lambda: manager.wait_for_blocking(task, 5)),
        "a str output cursor": ("cursor", "int", lambda: manager.output(task, cursor="x")),
        "an int kind": ("kind", "str", lambda: manager.spawn(lambda ctx: None, kind=5)),
        "a str result timeout": ("timeout", "float", lambda: task.result(timeout="x")),
        "a str max_age": ("max_age", "float", lambda: manager.gc(max_age="old")),
        "a str event timeout": ("timeout", "float", lambda: manager.events().recv_blocking(timeout="1")),
        "a str stream timeout": ("timeout", "float", lambda: task.output().next_blocking(timeout="1")),
        "a str line timeout": ("timeout", "float", lambda: task.lines().next_blocking(timeout="1")),
        "a negative max_bytes": ("max_bytes", "int", lambda: task.output(max_bytes=-1)),
    }
    for case, (argument, expected, call) in cases.items():
        with pytest.raises(InvalidArgument) as caught:
            call()
        assert caught.value.code == "INVALID_ARGUMENT", case
        assert caught.value.argument == argument, (case, caught.value)
        assert f"`{argument}`" in str(caught.value), (case, caught.value)
        assert expected in str(caught.value), (case, caught.value)
    # A TypeError raised by other code, deeper down, is not taken for one.
    def broken(ctx: TaskContext) -> None:
        raise TypeError("not about an argument")

    assert "not about an argument" in (manager.spawn(broken).result(BOUND).error or "")


def test_a_task_context_names_its_wrong_arguments(manager: TaskManager) -> None:
    def body(ctx: TaskContext) -> List[str]:
        seen = []
        for call in (
            lambda: ctx.write(42),
            lambda: ctx.write("x", stream=5),
            lambda: ctx.recv_blocking(timeout="1"),
            lambda: ctx.wait_cancelled_blocking(timeout=[1]),
        ):
            try:
                call()
            except InvalidArgument as e:
                seen.append(e.argument or "")
        return seen

    result = manager.spawn(body).result(BOUND)
    assert result.value == ["data", "stream", "timeout", "timeout"], result.error


def test_not_receiving(manager: TaskManager) -> None:
    task = manager.run("true")
    task.wait_foreground_blocking()
    with pytest.raises(NotReceiving) as caught:
        manager.send(task, "hello")
    assert caught.value.task_id == task.id and caught.value.reason


def test_shut_down(tmp_path: "os.PathLike[str]") -> None:
    m = TaskManager(root=os.fspath(tmp_path))
    m.shutdown_blocking()
    with pytest.raises(ShutDown) as caught:
        m.spawn(lambda ctx: None)
    assert caught.value.code == "SHUT_DOWN"


def test_after_shutdown_reads_answer_and_new_tasks_are_refused(tmp_path: "os.PathLike[str]") -> None:
    # The core's rule, the same in Node: a shut-down manager answers reads
    # (info, poll, collect, list, notifications) and refuses only new tasks.
    m = TaskManager(root=os.fspath(tmp_path))
    task = m.run("sleep 30", background=True)
    m.shutdown_blocking("test over")
    info = m.info(task)
    assert info.status == "cancelled"
    assert info.cancel_reason is not None and info.cancel_reason.kind == "shutdown"
    assert m.poll(task).eof
    outcome = m.collect_blocking(task, timeout=0)
    assert outcome.state == "finished" and outcome.status == "cancelled"
    assert [i.id for i in m.list()] == [task.id]
    m.notifications()
    with pytest.raises(ShutDown):
        m.run("true")
    with pytest.raises(ShutDown):
        m.spawn(lambda ctx: None)
    m.shutdown_blocking()  # again: nothing to do


def test_an_unusable_root_is_a_storage_error(tmp_path: "os.PathLike[str]") -> None:
    blocker = os.path.join(os.fspath(tmp_path), "file")
    with open(blocker, "w") as f:
        f.write("not a folder")
    with pytest.raises(StorageError) as caught:
        TaskManager(root=os.path.join(blocker, "root"))
    assert caught.value.code == "IO_ERROR"
    assert isinstance(caught.value, OSError)
    assert caught.value.path == os.path.join(blocker, "root")


def test_errors_are_exported() -> None:
    for name in (
        "AgentTasksError",
        "TaskNotFound",
        "InvalidTaskId",
        "CapacityExceeded",
        "InvalidArgument",
        "RootInUse",
    ):
        assert name in agent_tasks.__all__


def test_a_huge_wait_limit_means_no_limit(manager: TaskManager) -> None:
    # Issue 20 item 21: a finite wait too large for the clock (1e300 s)
    # is no limit, never an overflow (it used to panic).
    task = manager.run("echo hi")
    outcome = task.wait_foreground_blocking(timeout=1e300)
    assert outcome.finished
    assert task.collect_blocking(timeout=1e300).status == "completed"
