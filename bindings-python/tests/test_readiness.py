"""Readiness waits and pause/resume from Python (blocking and asyncio)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from agent_tasks import InvalidArgument, TaskManager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wait_for_a_line_a_port_the_end_and_a_timeout(manager: TaskManager) -> None:
    task = manager.run("sleep 0.3; echo 'ready on 8080'; sleep 30", background=True)
    got = manager.wait_for_blocking(task, r"ready on \d+", timeout=20)
    assert got["state"] == "matched" and got["line"] == "ready on 8080"
    assert got["cursor"] == len("ready on 8080\n")
    with pytest.raises(TimeoutError):  # the one timeout rule
        manager.wait_for_blocking(task, "never", timeout=0.1, cursor=got["cursor"])
    manager.cancel_blocking(task)

    port = free_port()
    server = manager.run(
        f"sleep 0.3; exec python3 -m http.server {port} --bind 127.0.0.1", background=True
    )
    assert manager.wait_for_blocking(server, f"port:{port}", timeout=20) == {
        "state": "port_open",
        "port": port,
    }
    manager.cancel_blocking(server)

    dies = manager.run("exit 3", background=True)
    ended = manager.wait_for_blocking(dies, f"port:{free_port()}", timeout=20)
    assert ended["state"] == "ended" and ended["status"] == "failed"

    with pytest.raises(InvalidArgument):
        manager.wait_for_blocking(dies, "port:nope")


def test_pause_stops_output_and_resume_continues(manager: TaskManager) -> None:
    task = manager.run(
        "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.01; done", background=True
    )
    manager.wait_for_blocking(task, "line 3", timeout=20)
    info = manager.pause_blocking(task)
    assert info.paused and info.status == "running"
    time.sleep(0.05)  # let what is already in the pipe arrive
    before = manager.info(task).output.total_bytes
    time.sleep(0.2)
    assert manager.info(task).output.total_bytes == before
    assert not manager.resume_blocking(task).paused
    got = manager.wait_for_blocking(task, "line", timeout=20, cursor=before)
    assert got["state"] == "matched"
    final = manager.cancel_blocking(task)
    assert final.status == "cancelled" and not final.paused


def test_pause_from_asyncio_and_a_function_task_is_refused(manager: TaskManager) -> None:
    async def main() -> None:
        task = manager.run("sleep 30", background=True)
        info = await manager.pause(task)
        assert info.paused
        cancelled = await manager.cancel(task)
        assert cancelled.status == "cancelled"

        async def body(ctx):  # noqa: ANN001
            await asyncio.sleep(30)

        fn = manager.spawn(body, background=True)
        with pytest.raises(InvalidArgument):
            await manager.pause(fn)
        await manager.cancel(fn)

    asyncio.run(main())


def test_queue_over_capacity(tmp_path) -> None:  # noqa: ANN001
    import os

    with TaskManager(
        root=os.path.join(os.fspath(tmp_path), "q"), max_background=1, queue_over_capacity=True
    ) as m:
        first = m.run("sleep 30", background=True)
        second = m.run("echo second", background=True)
        assert m.info(second).status == "queued"
        assert m.cancel_blocking(first).status == "cancelled"
        result = m.collect_blocking(second, timeout=20).result
        assert result is not None and result.status == "completed"


def test_a_queued_spawn_is_announced_by_a_queued_event(tmp_path) -> None:  # noqa: ANN001
    import os

    from agent_tasks import Event

    with TaskManager(
        root=os.path.join(os.fspath(tmp_path), "q"), max_background=1, queue_over_capacity=True
    ) as m:
        events = m.events()
        first = m.run("sleep 30", background=True)
        second = m.run("echo second", background=True, description="the second")
        assert m.info(second).duration_ms == 0
        m.cancel_blocking(first)
        m.collect_blocking(second, timeout=20)
        seen = []
        while (item := events.try_recv()) is not None:
            if isinstance(item, Event) and item.task_id == second.id:
                seen.append(item)
        assert [e.type for e in seen[:2]] == ["task.queued", "task.started"]
        assert seen[0].description == "the second" and seen[0].kind == "process"
