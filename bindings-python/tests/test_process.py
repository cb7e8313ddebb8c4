"""Each verb on process tasks, from a blocking (threaded) host."""

from __future__ import annotations

import asyncio
import os
import re
import threading

import pytest

from agent_tasks import (
    NO_TIMEOUT,
    CapacityExceeded,
    Finished,
    InvalidArgument,
    NotReceiving,
    TaskManager,
)

from conftest import BOUND, alive, read_all, wait_until


def test_run_in_the_foreground_and_collect(manager: TaskManager) -> None:
    task = manager.run("echo out; echo err >&2")
    outcome = task.wait_foreground_blocking()
    assert outcome.state == "finished" and outcome.finished
    result = outcome.result
    assert result is not None
    assert result.status == "completed"
    assert result.exit is not None and result.exit.code == 0
    assert result.output.stdout_bytes == 4 and result.output.stderr_bytes == 4

    page = manager.poll(task)
    assert page.eof and page.data == b"out\nerr\n" and page.text == "out\nerr\n"
    assert [(s.stream, s.offset, s.len) for s in page.spans] == [("stdout", 0, 4), ("stderr", 4, 4)]

    again = manager.collect_blocking(task.id)
    assert again.state == "finished" and again.result is not None
    assert again.result.status == "completed"
    d = again.to_dict()
    assert d["state"] == "finished" and d["status"] == "completed" and d["exit"] == {"code": 0}


def test_a_failing_command_is_failed_with_its_exit_code(manager: TaskManager) -> None:
    result = manager.run(["sh", "-c", "exit 3"]).collect_blocking().result
    assert result is not None and result.status == "failed"
    assert result.exit is not None and result.exit.code == 3
    assert result.error is not None and "3" in result.error


def test_argv_cwd_env_and_stdin(manager: TaskManager, tmp_path: "os.PathLike[str]") -> None:
    task = manager.run(
        ["sh", "-c", 'pwd; echo "$GREETING"; cat'],
        cwd=tmp_path,
        env={"GREETING": "hello"},
        stdin="from stdin\n",
    )
    assert task.collect_blocking(timeout=20).status == "completed"
    lines = manager.poll(task).text.splitlines()
    assert os.path.realpath(lines[0]) == os.path.realpath(os.fspath(tmp_path))
    assert lines[1:] == ["hello", "from stdin"]


def test_detach_releases_the_foreground_waiter(manager: TaskManager) -> None:
    task = manager.run("echo started; sleep 30", timeout=NO_TIMEOUT)
    wait_until(lambda: manager.poll(task).data == b"started\n", what="the first line")
    outcomes = []
    waiter = threading.Thread(target=lambda: outcomes.append(task.wait_foreground_blocking()))
    waiter.start()
    info = manager.detach(task)
    waiter.join(timeout=20)
    assert not waiter.is_alive()
    assert outcomes[0].state == "detached"
    assert outcomes[0].info is not None and outcomes[0].info.detached
    assert info.detached and not info.foreground and info.status == "running"
    assert info.output.spilled and info.output.log_path is not None
    with open(info.output.log_path, "rb") as log:
        assert log.read() == b"started\n"
    # Detaching again (a background task) returns the info unchanged.
    assert manager.detach(task.id).detached
    manager.cancel_blocking(task)


def test_poll_sees_every_byte_once_across_pages(manager: TaskManager) -> None:
    task = manager.run("seq 1 20000", background=True)
    data = read_all(manager, task, max_bytes=1000)
    assert data == b"".join(b"%d\n" % i for i in range(1, 20001))


def test_collect_with_a_timeout_raises_timeout_error(manager: TaskManager) -> None:
    # The one timeout rule: a wait whose time runs out raises TimeoutError
    # (as asyncio.wait_for does); the task goes on.
    task = manager.run("sleep 30", background=True)
    with pytest.raises(TimeoutError, match=task.id):
        manager.collect_blocking(task, timeout=0)
    with pytest.raises(TimeoutError):
        manager.collect_blocking(task, timeout=0.05)
    with pytest.raises(TimeoutError):
        asyncio.run(manager.collect(task, timeout=0.05))
    with pytest.raises(TimeoutError):
        task.result(timeout=0.05)
    foreground = manager.run("sleep 30", timeout=NO_TIMEOUT)
    with pytest.raises(TimeoutError):
        foreground.wait_foreground_blocking(timeout=0.05)
    manager.cancel_blocking(foreground)
    assert manager.info(task).status == "running"
    manager.cancel_blocking(task)
    done = manager.collect_blocking(task, timeout=0)
    assert isinstance(done, Finished)
    assert done.state == "finished" and done.status == "cancelled"
    assert done.result.status == "cancelled" and done.info is None


def test_cancel_stops_the_whole_process_tree(manager: TaskManager) -> None:
    # Two grandchildren, one of which ignores SIGTERM (it needs the SIGKILL
    # that follows the kill grace).
    task = manager.run(
        "sleep 300 & echo $!; (trap '' TERM; exec sleep 300) & echo $!; wait",
        background=True,
        kill_grace=0.5,
    )
    wait_until(lambda: len(manager.poll(task).text.split()) == 2, what="both grandchild pids")
    pids = [int(p) for p in manager.poll(task).text.split()]
    assert all(alive(p) for p in pids)
    info = manager.cancel_blocking(task, reason="the user changed their mind")
    assert info.status == "cancelled"
    assert info.cancel_reason is not None
    assert info.cancel_reason.kind == "user"
    assert info.cancel_reason.message == "the user changed their mind"
    wait_until(lambda: not any(alive(p) for p in pids), what="the grandchildren to die")
    # Idempotent: the first reason stays.
    again = manager.cancel_blocking(task, reason="another reason")
    assert again.status == "cancelled" and again.cancel_reason is not None
    assert again.cancel_reason.message == "the user changed their mind"


def test_send_to_an_interactive_process(manager: TaskManager) -> None:
    task = manager.run("cat", interactive=True, background=True)
    manager.send(task, "first line\n")
    task.send(b"second line\n")
    wait_until(lambda: manager.poll(task).text == "first line\nsecond line\n", what="the echo")
    with pytest.raises(NotReceiving):
        manager.send(manager.run("sleep 5", background=True), "no stdin")
    manager.cancel_blocking(task)


def test_foreground_timeouts_kill_or_detach(manager: TaskManager) -> None:
    killed = manager.run("sleep 30", timeout=0.2, on_timeout="kill")
    outcome = killed.wait_foreground_blocking()
    assert outcome.status == "timed_out"
    assert outcome.result is not None and outcome.result.cancel_reason is not None
    assert outcome.result.cancel_reason.kind == "timeout"

    detached = manager.run("sleep 30", timeout=0.2, on_timeout="detach")
    outcome = detached.wait_foreground_blocking()
    assert outcome.state == "detached" and outcome.status == "running"
    manager.cancel_blocking(detached)


def test_list_filters(manager: TaskManager) -> None:
    a = manager.run("sleep 30", background=True, owner="alice")
    b = manager.run("true", background=True, owner="bob")
    b.collect_blocking(timeout=20)
    fg = manager.run("true")
    fg.wait_foreground_blocking()
    # (Order is by creation time in ms, so tasks made in the same ms compare as sets.)
    assert {i.id for i in manager.list()} == {a.id, b.id}  # the foreground task is not listed
    assert [i.id for i in manager.list(owner="alice")] == [a.id]
    assert [i.id for i in manager.list(active_only=True)] == [a.id]
    assert [i.id for i in manager.list(status="completed")] == [b.id]
    assert {i.id for i in manager.list(status=["completed", "running"])} == {a.id, b.id}
    assert set(manager.ids()) == {a.id, b.id, fg.id}
    assert manager.info(a).owner == "alice"
    manager.cancel_blocking(a)


def test_preview_shows_head_and_tail(manager: TaskManager) -> None:
    task = manager.run("seq 1 10000", background=True)
    task.collect_blocking(timeout=20)
    preview = manager.preview(task, head_bytes=8, tail_bytes=11)
    assert preview.head == b"1\n2\n3\n4\n"
    assert preview.tail == b"9999\n10000\n"
    assert preview.omitted_bytes == preview.total_bytes - 19
    assert re.search(r"\[\.\.\. \d+ bytes omitted \.\.\.\]", preview.text)


def test_capacity_is_enforced(tmp_path: "os.PathLike[str]") -> None:
    with TaskManager(root=os.fspath(tmp_path), max_background=1) as m:
        running = m.run("sleep 30", background=True)
        with pytest.raises(CapacityExceeded) as caught:
            m.run("sleep 30", background=True)
        assert caught.value.code == "CAPACITY_EXCEEDED"
        assert caught.value.limit == 1 and caught.value.running == 1
        m.cancel_blocking(running)
        m.run("true", background=True)  # room again


def test_info_objects_have_attributes_and_dicts(manager: TaskManager) -> None:
    task = manager.run("echo hi", description="say hi", owner="me")
    task.wait_foreground_blocking()
    info = task.info()
    assert info.id == task.id and info.kind == "process"
    assert info.description == "say hi" and info.owner == "me"
    assert info.status == "completed" and info.is_terminal
    assert info.pid is not None and info.exit is not None and info.exit.code == 0
    assert info.finished_at_ms is not None and info.finished_at_ms >= info.created_at_ms
    d = info.to_dict()
    assert d["id"] == task.id and d["status"] == "completed" and d["output"]["total_bytes"] == 3
    assert "TaskInfo(" in repr(info) and task.id in repr(info)


def test_send_eof_closes_an_interactive_process_input(manager: TaskManager) -> None:
    # `wc -l` counts until its stdin ends: without the end of input it never does.
    task = manager.run("wc -l", interactive=True, background=True)
    manager.send(task, "one\n")
    task.send(b"two\n")
    manager.send(task, "three\n", eof=True)
    assert manager.collect_blocking(task, timeout=BOUND).status == "completed"
    assert read_all(manager, task).strip() == b"3"
    with pytest.raises(NotReceiving):
        manager.send(task, "too late\n")

    # The end of input alone, from the handle.
    task = manager.run("wc -l", interactive=True, background=True)
    task.send("a\n")
    task.send(eof=True)
    assert task.collect_blocking(timeout=BOUND).status == "completed"
    assert read_all(manager, task).strip() == b"1"

    # Neither a message nor the end of input names what is missing.
    with pytest.raises(InvalidArgument) as nothing:
        manager.send(manager.run("cat", interactive=True, background=True))
    assert nothing.value.argument == "message"
