"""Awaiting a task for its result, and following its output as a stream
(`task.output()` chunks, `task.lines()` lines; async and blocking), woken
by the task's progress, ending with the task, no byte lost or repeated."""

from __future__ import annotations

import asyncio
import os
import subprocess
from typing import List

import pytest

from agent_tasks import Finished, LineStream, Task, TaskContext, TaskManager, TaskResult

from conftest import BOUND

LINES = 200_000  # about 1.3 MB of `seq` output: past a 64 KiB memory buffer


def seq(n: int) -> bytes:
    return subprocess.run(["seq", "1", str(n)], check=True, capture_output=True).stdout


def test_await_a_task_for_its_result(manager: TaskManager) -> None:
    async def main() -> None:
        result = await manager.run("echo hi")
        assert isinstance(result, TaskResult)
        assert result.status == "completed" and result.exit is not None and result.exit.code == 0

        async def answer(ctx: TaskContext) -> int:
            return 42

        assert (await manager.spawn(answer)).value == 42
        # A detach does not end the wait for the result (wait_foreground's does).
        task = manager.run("read line; echo $line", interactive=True)
        waiting = asyncio.ensure_future(task.wait_foreground())
        final = asyncio.ensure_future(_awaited(task))
        await asyncio.sleep(0)
        manager.detach(task)
        assert (await waiting).state == "detached"
        assert not final.done()
        manager.send(task, "bye\n")
        assert (await asyncio.wait_for(final, BOUND)).status == "completed"

    asyncio.run(main())
    # The blocking form.
    assert manager.run("exit 3").result(BOUND).exit.code == 3  # type: ignore[union-attr]


async def _awaited(task: Task) -> TaskResult:
    return await task


def test_output_streams_every_byte_once_past_the_memory_buffer(tmp_path: "os.PathLike[str]") -> None:
    with TaskManager(root=os.fspath(tmp_path), memory_limit=64 * 1024) as m:

        async def main() -> None:
            task = m.run(f"sleep 0.2; seq 1 {LINES}", background=True)
            chunks: List[bytes] = []
            async for chunk in task.output(max_bytes=100_000):
                assert chunk, "no empty chunk"
                chunks.append(chunk)
            assert len(chunks) > 1
            assert b"".join(chunks) == seq(LINES)
            info = task.info()
            assert info.status == "completed", "the stream ends once the task has ended"
            assert info.output.spilled, "the output went past the memory buffer"

        asyncio.run(main())
        # The blocking iterator, and lines, over the same (ended) task.
        task = m.run(f"seq 1 {LINES}", background=True)
        assert b"".join(task.output(max_bytes=50_000)) == seq(LINES)
        lines = list(task.lines())
        assert lines == [str(i) for i in range(1, LINES + 1)]


def test_lines_come_whole_across_chunks_and_a_timeout_loses_nothing(manager: TaskManager) -> None:
    def talker(ctx: TaskContext) -> None:
        ctx.write("hel")
        ctx.recv_blocking(BOUND)
        ctx.write("lo\nwor")
        ctx.recv_blocking(BOUND)
        ctx.write("ld\r\nlast")

    task = manager.spawn(talker, background=True)
    lines: LineStream = task.lines()
    # "hel" is read but makes no line yet: the wait times out, keeping it.
    with pytest.raises(TimeoutError):
        lines.next_blocking(timeout=0.2)
    task.send("go")
    assert lines.next_blocking(BOUND) == "hello"
    assert lines.cursor == len(b"hello\n")
    task.send("go")
    assert list(lines) == ["world", "last"]
    assert lines.cursor == len(b"hello\nworld\r\nlast")


def test_a_cancelled_step_loses_nothing_and_a_cursor_resumes(manager: TaskManager) -> None:
    async def main() -> None:
        task = manager.run("read line; echo first; read line; echo second", interactive=True, background=True)
        stream = task.output()
        # Cancelled from outside while waiting: nothing read, nothing lost.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(stream.__anext__(), 0.05)
        with pytest.raises(TimeoutError):
            await stream.next(timeout=0.05)
        assert stream.cursor == 0
        manager.send(task, "\n")
        assert await asyncio.wait_for(stream.__anext__(), BOUND) == b"first\n"
        # A new stream from the cursor picks up where this one stopped.
        again = task.output(cursor=stream.cursor)
        manager.send(task, "\n")
        rest = [chunk async for chunk in again]
        assert b"".join(rest) == b"second\n"
        assert again.ended and again.cursor == len(b"first\nsecond\n")
        finished = await task.collect(BOUND)
        assert isinstance(finished, Finished) and finished.result.status == "completed"

    asyncio.run(main())
