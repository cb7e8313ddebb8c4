"""Python functions as tasks: coroutines on the caller's event loop (or the
manager's own), plain functions in worker threads."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, List

import pytest

from agent_tasks import NotReceiving, TaskContext, TaskManager

from conftest import read_all, wait_until


def test_a_coroutine_runs_on_the_callers_loop_and_returns_json(manager: TaskManager) -> None:
    async def main() -> None:
        caller = asyncio.get_running_loop()
        seen: List[Any] = []

        async def work(ctx: TaskContext) -> Any:
            seen.append(asyncio.get_running_loop())
            ctx.write("step 1\n")
            await asyncio.sleep(0)
            ctx.write(b"step 2\n", stream="stderr")
            ctx.write(bytearray(b"progress 50%\n"), stream="progress")
            return {"answer": 42, "items": [1, 2.5, "x", None, True], "nested": {"ok": False}}

        task = manager.spawn(work, description="a subagent", kind="subagent")
        assert task.id.startswith("subagent-")
        outcome = await task.wait_foreground()
        assert outcome.state == "finished"
        assert outcome.result is not None and outcome.result.status == "completed"
        assert outcome.result.value == {
            "answer": 42,
            "items": [1, 2.5, "x", None, True],
            "nested": {"ok": False},
        }
        assert seen == [caller]
        page = manager.poll(task)
        assert page.text == "step 1\nstep 2\nprogress 50%\n"
        assert [s.stream for s in page.spans] == ["stdout", "stderr", "progress"]
        info = manager.info(task)
        assert info.description == "a subagent" and info.kind == "subagent"

    asyncio.run(main())


def test_a_plain_function_runs_in_a_worker_thread(manager: TaskManager) -> None:
    threads: List[int] = []

    def work(ctx: TaskContext) -> str:
        threads.append(threading.get_ident())
        ctx.write("working\n")
        return "done"

    task = manager.spawn(work, background=True)
    outcome = task.collect_blocking(timeout=20)
    assert outcome.result is not None and outcome.result.value == "done"
    assert threads and threads[0] != threading.get_ident()
    assert manager.poll(task).text == "working\n"
    assert task.info().description.endswith("work")


def test_a_coroutine_spawned_outside_any_loop_runs_on_the_managers_loop(manager: TaskManager) -> None:
    async def work(ctx: TaskContext) -> str:
        await asyncio.sleep(0.01)
        return threading.current_thread().name

    outcome = manager.spawn(work).wait_foreground_blocking(timeout=20)
    assert outcome.result is not None and outcome.result.value == "agent-tasks loop"


def test_a_python_exception_fails_the_task_with_its_traceback(manager: TaskManager) -> None:
    def broken_helper() -> None:
        raise ValueError("the model returned garbage")

    def plain(ctx: TaskContext) -> None:
        broken_helper()

    async def coro(ctx: TaskContext) -> None:
        await asyncio.sleep(0)
        raise KeyError("missing")

    for fn, text in ((plain, "ValueError: the model returned garbage"), (coro, "KeyError: 'missing'")):
        result = manager.spawn(fn).collect_blocking(timeout=20).result
        assert result is not None and result.status == "failed"
        assert result.error is not None
        assert "Traceback (most recent call last)" in result.error
        assert text in result.error
    assert "broken_helper" in (manager.info(manager.ids()[0]).error or "")


def test_a_value_json_cannot_hold_fails_the_task(manager: TaskManager) -> None:
    result = manager.spawn(lambda ctx: object()).collect_blocking(timeout=20).result
    assert result is not None and result.status == "failed"
    assert result.error is not None and "object" in result.error and "JSON" in result.error


def test_cancel_reaches_a_coroutine_as_cancelled_error(manager: TaskManager) -> None:
    async def main() -> None:
        seen: List[str] = []

        async def work(ctx: TaskContext) -> str:
            ctx.write("waiting\n")
            try:
                await asyncio.sleep(300)
            except asyncio.CancelledError as exc:
                seen.append(str(exc))
                assert ctx.cancelled
                assert ctx.cancel_reason is not None and ctx.cancel_reason.kind == "user"
                raise
            return "not reached"

        task = manager.spawn(work, background=True)
        await asyncio.to_thread(wait_until, lambda: manager.poll(task).text == "waiting\n")
        info = await manager.cancel(task, "enough")
        assert info.status == "cancelled"
        assert info.cancel_reason is not None and str(info.cancel_reason) == "cancelled: enough"
        assert seen == ["cancelled: enough"]

    asyncio.run(main())


def test_a_cancelled_coroutine_may_return_partial_results(manager: TaskManager) -> None:
    async def main() -> None:
        running = asyncio.Event()

        async def work(ctx: TaskContext) -> Any:
            running.set()
            try:
                await asyncio.sleep(300)
            except asyncio.CancelledError:
                reason = ctx.cancel_reason
                return {"partial": True, "reason": reason.kind if reason else None}

        task = manager.spawn(work, background=True)
        await running.wait()
        await task.cancel()
        result = (await task.collect()).result
        assert result is not None and result.status == "cancelled"
        assert result.value == {"partial": True, "reason": "user"}

    asyncio.run(main())


def test_wait_cancelled_in_a_helper_coroutine(manager: TaskManager) -> None:
    async def main() -> None:
        reasons: List[str] = []
        running = asyncio.Event()

        async def work(ctx: TaskContext) -> None:
            async def watch() -> None:
                reasons.append(str(await ctx.wait_cancelled()))

            watcher = asyncio.ensure_future(watch())
            running.set()
            try:
                await asyncio.sleep(300)
            finally:
                await asyncio.shield(watcher)

        task = manager.spawn(work, background=True)
        await running.wait()
        await manager.cancel(task, "why")
        assert reasons == ["cancelled: why"]

    asyncio.run(main())


def test_a_plain_function_sees_the_cancel_cooperatively(manager: TaskManager) -> None:
    def work(ctx: TaskContext) -> str:
        ctx.write("started\n")
        reason = ctx.wait_cancelled_blocking(timeout=60)
        assert ctx.cancelled
        return f"stopped: {reason}"

    task = manager.spawn(work, background=True)
    wait_until(lambda: manager.poll(task).text == "started\n")
    assert manager.cancel_blocking(task, "bye").status == "cancelled"
    result = task.collect_blocking().result
    assert result is not None and result.value == "stopped: cancelled: bye"


def test_steering_a_coroutine_and_a_plain_function(manager: TaskManager) -> None:
    async def coro(ctx: TaskContext) -> List[str]:
        got: List[str] = []
        while len(got) < 2:
            message = await ctx.recv()
            assert message is not None
            got.append(message)
        return got

    def plain(ctx: TaskContext) -> List[str]:
        got: List[str] = []
        while len(got) < 2:
            message = ctx.recv_blocking(timeout=30)
            assert message is not None
            got.append(message)
        with pytest.raises(TimeoutError):  # nothing more: the wait times out
            ctx.recv_blocking(timeout=0.01)
        assert ctx.try_recv() is None
        return got

    for fn in (coro, plain):
        task = manager.spawn(fn, background=True)
        manager.send(task, "look at the failing test first")
        task.send(b"then the docs")
        result = task.collect_blocking(timeout=20).result
        assert result is not None and result.status == "completed"
        assert result.value == ["look at the failing test first", "then the docs"]
        with pytest.raises(NotReceiving):
            manager.send(task, "too late")


def test_recv_returns_none_once_cancelled(manager: TaskManager) -> None:
    async def main() -> None:
        async def work(ctx: TaskContext) -> str:
            ctx.write("waiting\n")
            try:
                message = await ctx.recv()
            except asyncio.CancelledError:
                return "cancelled while waiting"
            return f"got {message}"

        def plain(ctx: TaskContext) -> str:
            ctx.write("waiting\n")
            return f"got {ctx.recv_blocking()}"

        for fn in (work, plain):
            task = manager.spawn(fn, background=True)
            await asyncio.to_thread(wait_until, lambda: manager.poll(task).text == "waiting\n")
            await task.cancel()
            result = (await task.collect()).result
            assert result is not None and result.status == "cancelled"
            assert result.value in ("cancelled while waiting", "got None")

    asyncio.run(main())


def test_detach_a_foreground_coroutine(manager: TaskManager) -> None:
    async def main() -> None:
        async def work(ctx: TaskContext) -> str:
            ctx.write("phase 1\n")
            try:
                await asyncio.sleep(300)
            finally:
                ctx.write("phase 2\n")
            return "ok"

        task = manager.spawn(work)
        waiter = asyncio.ensure_future(task.wait_foreground())
        await asyncio.to_thread(wait_until, lambda: manager.poll(task).text == "phase 1\n")
        info = task.detach()
        assert info.detached and info.output.spilled
        outcome = await waiter
        assert outcome.state == "detached"
        await task.cancel()
        assert read_all(manager, task) == b"phase 1\nphase 2\n"

    asyncio.run(main())


def test_a_task_cancelled_before_it_ran_ends_at_once(manager: TaskManager) -> None:
    async def never_started(ctx: TaskContext) -> None:
        raise AssertionError("must not run")

    def plain(ctx: TaskContext) -> bool:
        return ctx.cancelled

    async def main() -> None:
        for fn in (never_started, plain):
            task = manager.spawn(fn, background=True)
            info = await task.cancel("before it ran")  # no stop grace (5 s) passes
            assert info.status == "cancelled"
            assert info.duration_ms < 4000

    asyncio.run(main())


def test_a_coroutine_on_a_closed_loop_does_not_hang_the_manager(manager: TaskManager) -> None:
    # asyncio.run() cancels what is left on its loop when it returns: such a
    # task ends (failed, saying so) instead of running on forever.
    started = threading.Event()

    async def forever(ctx: TaskContext) -> None:
        started.set()
        await asyncio.sleep(300)

    async def main() -> str:
        task = manager.spawn(forever, background=True)
        await asyncio.to_thread(started.wait, 20)
        return task.id

    task_id = asyncio.run(main())
    result = manager.collect_blocking(task_id, timeout=20).result
    assert result is not None and result.status == "failed"
    assert result.error is not None and "cancelled" in result.error


def test_contextvars_follow_the_task(manager: TaskManager) -> None:
    import contextvars

    request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")

    def plain(ctx: TaskContext) -> str:
        return request.get()

    async def coro(ctx: TaskContext) -> str:
        return request.get()

    request.set("req-7")
    for fn in (plain, coro):
        result = manager.spawn(fn).collect_blocking(timeout=20).result
        assert result is not None and result.value == "req-7"


def test_spawn_from_many_threads(manager: TaskManager) -> None:
    def spawn_some(n: int) -> None:
        for i in range(n):
            task = manager.spawn(lambda ctx, i=i: i * 2, background=True)
            result = task.collect_blocking(timeout=20).result
            assert result is not None and result.value == i * 2

    threads = [threading.Thread(target=spawn_some, args=(20,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    assert len(manager.ids()) == 80


def test_output_of_a_python_task_spills_past_the_memory_limit(tmp_path: "os.PathLike[str]") -> None:
    with TaskManager(root=os.fspath(tmp_path), memory_limit=1024) as m:
        def chatty(ctx: TaskContext) -> None:
            for i in range(1000):
                ctx.write(f"line {i}\n")

        task = m.spawn(chatty)
        assert task.wait_foreground_blocking(timeout=20).status == "completed"
        assert task.info().output.spilled
        assert read_all(m, task, 4096) == "".join(f"line {i}\n" for i in range(1000)).encode()
