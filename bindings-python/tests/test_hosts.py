"""Hosts: a threaded (blocking) host and an asyncio host; detach under a
flood; no deadlock between the GIL and Rust waits; Ctrl+C; interpreter exit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Dict, List

import pytest

from agent_tasks import NO_TIMEOUT, ShutDown, TaskContext, TaskManager

from conftest import BOUND, alive, read_all, wait_until


def test_a_threaded_host(manager: TaskManager) -> None:
    results: Dict[int, str] = {}
    errors: List[BaseException] = []

    def agent(n: int) -> None:
        try:
            task = manager.run(f"echo agent {n}; sleep 0.1; echo done {n}")
            outcome = task.wait_foreground_blocking(timeout=BOUND)
            assert outcome.status == "completed"
            results[n] = manager.poll(task).text
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=BOUND)
    assert not errors
    assert results == {n: f"agent {n}\ndone {n}\n" for n in range(8)}


def test_an_asyncio_host(manager: TaskManager) -> None:
    async def main() -> None:
        async def subagent(ctx: TaskContext) -> int:
            await asyncio.sleep(0.05)
            return len(ctx.id)

        processes = [manager.run(f"echo {n}", background=True) for n in range(5)]
        coroutines = [manager.spawn(subagent, background=True) for _ in range(5)]
        outcomes = await asyncio.gather(*(t.collect(timeout=BOUND) for t in processes + coroutines))
        assert [o.status for o in outcomes] == ["completed"] * 10
        assert [manager.poll(t).text for t in processes] == [f"{n}\n" for n in range(5)]
        # A wait that is itself cancelled (asyncio.wait_for) leaves the task alone.
        slow = manager.run("sleep 30", background=True)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(slow.collect(), 0.05)
        assert slow.info().status == "running"
        await slow.cancel()

    asyncio.run(main())


def test_blocking_waits_refuse_to_block_an_event_loop(manager: TaskManager) -> None:
    async def main() -> None:
        task = manager.run("true")
        with pytest.raises(RuntimeError, match="await"):
            task.collect_blocking()
        await task.collect()

    asyncio.run(main())


FLOOD = """
import os, sys
out = sys.stdout.buffer
i = 0
extra = None
while extra is None or extra < 200_000:
    out.write(b"%d\\n" % i)
    i += 1
    if extra is not None:
        extra += 1
    elif i % 1000 == 0 and os.path.exists(sys.argv[1]):
        extra = 0
out.flush()
"""


def test_detach_during_a_process_flood_loses_no_byte(tmp_path: "os.PathLike[str]") -> None:
    # The flood runs until told to stop (after the detach), then writes
    # 200,000 more lines: the detach happens in the middle of it.
    stop = os.path.join(os.fspath(tmp_path), "stop")
    with TaskManager(root=os.path.join(os.fspath(tmp_path), "root"), memory_limit=256 * 1024) as m:
        task = m.run([sys.executable, "-c", FLOOD, stop], timeout=NO_TIMEOUT)
        wait_until(lambda: m.poll(task, 0, 0).info.output.total_bytes > 300_000, what="output to flow")
        info = m.detach(task)
        assert info.detached and info.status == "running"
        open(stop, "w").close()
        assert task.wait_foreground_blocking().state == "detached"
        data = read_all(m, task, 1 << 20)
        assert task.collect_blocking().status == "completed"
        lines = data.split(b"\n")
        assert lines[-1] == b"" and len(lines) > 200_000
        assert data == b"".join(b"%d\n" % i for i in range(len(lines) - 1))


def test_detach_during_a_coroutine_flood_loses_no_byte(tmp_path: "os.PathLike[str]") -> None:
    with TaskManager(root=os.fspath(tmp_path), memory_limit=64 * 1024) as m:
        started = threading.Event()
        detached = threading.Event()

        async def flood(ctx: TaskContext) -> int:
            i = 0
            extra = 0
            while extra < 50_000:
                ctx.write(b"%d\n" % i)
                i += 1
                if i == 5000:
                    started.set()
                if detached.is_set():
                    extra += 1
                if i % 1000 == 0:
                    await asyncio.sleep(0)
            return i

        task = m.spawn(flood, timeout=NO_TIMEOUT)
        assert started.wait(BOUND)
        info = m.detach(task)
        detached.set()
        assert info.detached and info.status == "running"
        result = task.collect_blocking(timeout=BOUND).result
        assert result is not None and result.status == "completed"
        assert read_all(m, task, 1 << 20) == b"".join(b"%d\n" % i for i in range(result.value))


def test_no_deadlock_when_a_python_task_writes_while_a_thread_blocks_in_collect(
    manager: TaskManager,
) -> None:
    # The plain function writes (taking the GIL for each write) while the
    # main thread blocks in collect: the blocking wait must release the GIL.
    def writer(ctx: TaskContext) -> int:
        for i in range(20_000):
            ctx.write(b"%d\n" % i)
        return 20_000

    async def coro_writer(ctx: TaskContext) -> int:
        for i in range(20_000):
            ctx.write(b"%d\n" % i)
            if i % 100 == 0:
                await asyncio.sleep(0)
        return 20_000

    for fn in (writer, coro_writer):
        task = manager.spawn(fn, background=True)
        outcome = manager.collect_blocking(task, timeout=BOUND)
        assert outcome.state == "finished", "collect did not see the task end"
        assert outcome.result is not None and outcome.result.value == 20_000
    # And with the writer started after the wait began, from another thread.
    box: List[object] = []
    gate = threading.Event()

    def late_writer(ctx: TaskContext) -> str:
        gate.wait(BOUND)
        for _ in range(1000):
            ctx.write("x" * 100)
        return "ok"

    task = manager.spawn(late_writer, background=True)
    waiter = threading.Thread(target=lambda: box.append(manager.collect_blocking(task, timeout=BOUND)))
    waiter.start()
    gate.set()
    waiter.join(BOUND)
    assert not waiter.is_alive() and box


def test_context_managers_shut_down_on_exit(tmp_path: "os.PathLike[str]") -> None:
    with TaskManager(root=os.fspath(tmp_path)) as m:
        task = m.run("sleep 30", background=True)
    assert task.info().status == "cancelled"
    assert task.info().cancel_reason is not None and task.info().cancel_reason.kind == "shutdown"  # type: ignore[union-attr]
    with pytest.raises(ShutDown):
        m.run("true")

    async def main() -> None:
        async with TaskManager(root=os.fspath(tmp_path)) as am:
            async def forever(ctx: TaskContext) -> None:
                await asyncio.sleep(300)

            coro = am.spawn(forever, background=True)
            proc = am.run("sleep 30", background=True)
        assert coro.info().status == "cancelled"
        assert proc.info().status == "cancelled"

    asyncio.run(main())


def run_script(body: str, timeout: float = 60) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(body)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def main_thread_blocked(pid: int) -> bool:
    """True once the process's main thread sleeps in the kernel."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "S"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_interrupts_a_blocking_wait() -> None:
    child = run_script(
        """
        import time
        from agent_tasks import TaskManager
        m = TaskManager()
        task = m.run("sleep 60", background=True)
        start = time.monotonic()
        try:
            print("waiting", flush=True)
            m.collect_blocking(task)
            print("not interrupted", flush=True)
        except KeyboardInterrupt:
            print(f"interrupted {time.monotonic() - start:.1f}", flush=True)
        """
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "waiting\n"
        wait_until(lambda: main_thread_blocked(child.pid), what="the child to block")
        child.send_signal(signal.SIGINT)
        # The child's wait is on a 60 s sleep: ending within the bound means
        # Ctrl+C interrupted it.
        out, err = child.communicate(timeout=BOUND)
        assert out.startswith("interrupted"), (out, err)
    finally:
        child.kill()
        child.wait()


def test_the_interpreter_exits_promptly_after_the_manager_is_dropped() -> None:
    child = run_script(
        """
        import asyncio, time
        from agent_tasks import TaskManager
        m = TaskManager()
        proc = m.run("sleep 300 & echo $!; wait", background=True)
        def spin(ctx):
            while not ctx.cancelled:
                try:
                    ctx.wait_cancelled_blocking(0.05)
                except TimeoutError:
                    pass
        async def forever(ctx):
            await asyncio.sleep(300)
        plain = m.spawn(spin, background=True)
        coro = m.spawn(forever, background=True)
        deadline = time.monotonic() + 20
        while not proc.poll().text.strip() and time.monotonic() < deadline:
            time.sleep(0.01)
        print(proc.info().pid, proc.poll().text.strip(), flush=True)
        del m, proc, plain, coro
        """
    )
    try:
        # Its tasks would run for 300 s: exiting within the bound is prompt.
        out, err = child.communicate(timeout=BOUND)
        assert child.returncode == 0, err
        pids = [int(p) for p in out.split()]
        assert len(pids) == 2, (out, err)
        wait_until(lambda: not any(alive(p) for p in pids), timeout=5, what="the processes to be gone")
    finally:
        child.kill()
        child.wait()


def test_the_interpreter_exits_promptly_with_a_live_manager() -> None:
    # Never dropped: the at-exit hook shuts it down.
    child = run_script(
        """
        import time
        from agent_tasks import TaskManager
        m = TaskManager()
        proc = m.run("sleep 300 & echo $!; wait", background=True)
        deadline = time.monotonic() + 20
        while not proc.poll().text.strip() and time.monotonic() < deadline:
            time.sleep(0.01)
        print(proc.info().pid, proc.poll().text.strip(), flush=True)
        """
    )
    try:
        out, err = child.communicate(timeout=BOUND)
        assert child.returncode == 0, err
        pids = [int(p) for p in out.split()]
        assert len(pids) == 2, (out, err)
        wait_until(lambda: not any(alive(p) for p in pids), timeout=5, what="the processes to be gone")
    finally:
        child.kill()
        child.wait()
