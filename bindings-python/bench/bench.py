"""Benchmarks of the Python binding (goals, not tests):

1. per-call overhead of `poll` on a running task, from Python (goal < 10 us);
2. a coroutine task's output path (`ctx.write`) against appending the same
   chunks to a `bytearray` (goal: within 2x), for a task whose output stays
   in memory; for information, the same for a background task, whose output
   goes to its log on disk (small writes gathered into larger ones);
3. a background process task spilled to `output.log` against
   `head -c N /dev/zero | cat > FILE` (the Rust side's `cargo bench --bench
   throughput` file case; goal >= 1.0x), rounds taking turns, median.

Run: python bindings-python/bench/bench.py   (after `pip install ./bindings-python`)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, List

from agent_tasks import TaskContext, TaskManager


def best_of(runs: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(runs))


def bench_poll(m: TaskManager) -> None:
    task = m.run("sleep 30", background=True)
    m.poll(task)  # warm up
    calls = 20_000

    def once() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            m.poll(task.id, 0, 4096)
        return (time.perf_counter() - start) / calls

    per_call = best_of(5, once)

    def once_read() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            page = m.poll(task.id, 0, 4096)
            page.text, page.next_cursor, page.eof
        return (time.perf_counter() - start) / calls

    def once_status() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            m.poll(task.id, 0, 4096).info.status
        return (time.perf_counter() - start) / calls

    per_read = best_of(5, once_read)
    per_status = best_of(5, once_status)
    # The same loop on a task with a lot of output (poll cost must not grow).
    big = m.run("head -c 50000000 /dev/zero; sleep 30", background=True)
    deadline = time.monotonic() + 30
    while m.poll(big, 0, 0).info.output.total_bytes < 50_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    end = m.poll(big, 0, 0).info.output.total_bytes

    def once_big() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            m.poll(big.id, end, 4096)
        return (time.perf_counter() - start) / calls

    per_call_big = best_of(5, once_big)

    def once_page() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            m.poll(big.id, 1_000_000, 4096).data
        return (time.perf_counter() - start) / calls

    per_page = best_of(5, once_page)
    print(f"poll on a running task (no new output): {per_call * 1e6:6.2f} us/call  (goal < 10 us)")
    print(f"poll, then .text, .next_cursor, .eof:   {per_read * 1e6:6.2f} us/call")
    print(f"poll, then .info.status:                {per_status * 1e6:6.2f} us/call")
    print(f"poll at the end of 50 MB of output:     {per_call_big * 1e6:6.2f} us/call")
    print(f"poll of a 4 KiB page from the log:      {per_page * 1e6:6.2f} us/call (with .data)")
    m.cancel_blocking(task)
    m.cancel_blocking(big)


def bench_output(m: TaskManager, chunk_size: int, total: int, background: bool = False) -> None:
    chunk = b"x" * (chunk_size - 1) + b"\n"
    count = total // chunk_size

    def baseline() -> float:
        buf = bytearray()
        start = time.perf_counter()
        for _ in range(count):
            buf += chunk
        return time.perf_counter() - start

    async def writer(ctx: TaskContext) -> float:
        write = ctx.write
        start = time.perf_counter()
        for _ in range(count):
            write(chunk)
        return time.perf_counter() - start

    async def run_task() -> float:
        # A foreground task with a memory limit above the total: the whole
        # output stays in memory, like the bytearray. A background task
        # writes to its log on disk from the first byte.
        task = m.spawn(writer, background=background)
        outcome = await task.collect()
        assert outcome.result is not None and outcome.status == "completed", outcome
        return float(outcome.result.value)

    base = best_of(5, baseline)
    ours = best_of(5, lambda: asyncio.run(run_task()))
    mb = count * chunk_size / 1e6
    where = "to disk  " if background else "in memory"
    goal = "" if background else "  (goal <= 2x)"
    print(
        f"coroutine output {where}, {chunk_size:>5} B chunks: ctx.write {mb / ours:7.1f} MB/s, "
        f"bytearray {mb / base:7.1f} MB/s, ratio {ours / base:5.2f}x{goal}"
    )


def bench_file(total: int = 1 << 30, rounds: int = 3) -> None:
    """A background process task writing `total` bytes to its log, against
    `cat` writing them to a file through a pipe, in the same run."""

    def baseline() -> float:
        with tempfile.TemporaryDirectory(prefix="agent-tasks-bench-") as d:
            start = time.perf_counter()
            subprocess.run(
                ["sh", "-c", f"head -c {total} /dev/zero | cat > '{d}/out.log'"], check=True
            )
            return time.perf_counter() - start

    def ours() -> float:
        with tempfile.TemporaryDirectory(prefix="agent-tasks-bench-") as d:
            # The cap lifted above the total, as the Rust bench does: every
            # byte goes to the log.
            with TaskManager(root=os.path.join(d, "root"), disk_limit=total + (4 << 20)) as m:
                start = time.perf_counter()
                task = m.run(["head", "-c", str(total), "/dev/zero"], background=True)
                outcome = m.collect_blocking(task.id)
                secs = time.perf_counter() - start
                assert outcome.result is not None, outcome
                assert outcome.result.output.total_bytes == total, outcome.result.output
                return secs

    baseline()
    ours()  # warm-up: page cache, binaries
    base: List[float] = []
    mine: List[float] = []
    for r in range(rounds):
        for side in ((baseline, base), (ours, mine))[:: 1 if r % 2 == 0 else -1]:
            side[1].append(side[0]())
    b, o = statistics.median(base), statistics.median(mine)
    mb = total / 1e6
    print(
        f"background task spilled to output.log, {total >> 20} MiB: {mb / o:7.0f} MB/s, "
        f"cat > FILE {mb / b:7.0f} MB/s, ratio {b / o:5.2f} (goal >= 1.0; median of {rounds})"
    )


def main() -> None:
    print(f"python {sys.version.split()[0]}")
    with TaskManager(memory_limit=64 * 1024 * 1024) as m:
        bench_poll(m)
        for size in (100, 1024, 16 * 1024):
            bench_output(m, size, 32 * 1024 * 1024)
        for size in (100, 16 * 1024):
            bench_output(m, size, 32 * 1024 * 1024, background=True)
    bench_file()


if __name__ == "__main__":
    main()
