"""Bench of tasks placed on a Ray cluster (goals, not tests), on the
two-node cluster of bindings-python/tests-ray/cluster.py (two network
namespaces on this machine, veth between them):

1. a flood's throughput: ``cat`` of a 64 MiB file, read by the host through
   `Task.output` until its end, placed on the worker node, as a ratio to the
   same task run locally by the same manager, rounds taking turns (goal
   >= 0.8x);
2. the latency from `run` to the first output byte of ``echo hi`` placed on
   the worker (the node's actor already exists), and the first one ever
   (which creates the node's actor).

Run (root; needs ray[default] and the wheel in the same venv):

    python bindings-python/tests-ray/cluster.py -- python bindings-python/bench/ray_bench.py
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import tempfile
import time
from typing import List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests-ray"))

import cluster  # noqa: E402

from agent_tasks import TaskManager  # noqa: E402
from agent_tasks.ray import RayPlacement  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
SIZE = 64 << 20
ON_WORKER = RayPlacement(resources={cluster.WORKER_RESOURCE: 1}, address=cluster.ADDRESS)


def flood(m: TaskManager, path: str, want: str, placement: Optional[RayPlacement]) -> float:
    start = time.perf_counter()
    task = m.run(["cat", path], placement=placement, background=True)
    digest = hashlib.sha256()
    n = 0
    for chunk in task.output(max_bytes=4 << 20):
        digest.update(chunk)
        n += len(chunk)
    elapsed = time.perf_counter() - start
    assert task.result(60).status == "completed"
    assert n == SIZE and digest.hexdigest() == want
    return SIZE / elapsed / 1e6


def first_byte(m: TaskManager) -> float:
    start = time.perf_counter()
    task = m.run("echo hi", placement=ON_WORKER, background=True)
    next(iter(task.output()))
    elapsed = time.perf_counter() - start
    task.result(60)
    return elapsed * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, TaskManager(os.path.join(tmp, "root")) as m:
        path = os.path.join(tmp, "flood.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(SIZE))
        with open(path, "rb") as f:
            want = hashlib.sha256(f.read()).hexdigest()
        print(f"first run -> first byte (creates the node's actor): {first_byte(m):.0f} ms")
        latencies = [first_byte(m) for _ in range(ROUNDS * 3)]
        print(
            f"run -> first byte, placed on the worker: median {statistics.median(latencies):.0f} ms "
            f"(min {min(latencies):.0f}, max {max(latencies):.0f}, {len(latencies)} runs)"
        )
        local: List[float] = []
        remote: List[float] = []
        for _ in range(ROUNDS):
            local.append(flood(m, path, want, None))
            remote.append(flood(m, path, want, ON_WORKER))
        ratio = statistics.median(remote) / statistics.median(local)
        print(f"64 MiB flood, local:  {', '.join(f'{v:.0f}' for v in local)} MB/s")
        print(f"64 MiB flood, remote: {', '.join(f'{v:.0f}' for v in remote)} MB/s")
        print(f"remote/local (medians): {ratio:.2f}x (goal >= 0.8x); load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
