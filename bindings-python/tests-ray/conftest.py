"""The Ray tests run inside the head namespace of the two-node cluster that
`cluster.py` makes (see its docstring); `bash scripts/test.sh` runs them as
their own step:

    python bindings-python/tests-ray/cluster.py -- python -m pytest -q bindings-python/tests-ray
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import cluster  # noqa: E402

from agent_tasks import TaskManager  # noqa: E402

# Generous bounds: every wait ends as soon as its condition holds.
BOUND = 120.0


@pytest.fixture(scope="session", autouse=True)
def in_the_cluster() -> None:
    """Fails (never skips) outside the cluster's head namespace."""
    with open("/proc/self/net/fib_trie") as f:
        if cluster.HEAD_IP not in f.read():
            pytest.fail(
                "the Ray tests run inside the cluster's head namespace: "
                "python bindings-python/tests-ray/cluster.py -- python -m pytest bindings-python/tests-ray"
            )


@pytest.fixture
def manager(tmp_path: "os.PathLike[str]") -> Iterator[TaskManager]:
    m = TaskManager(os.path.join(os.fspath(tmp_path), "root"))
    try:
        yield m
    finally:
        m.shutdown_blocking()


def wait_until(condition: Callable[[], object], timeout: float = BOUND, what: str = "condition") -> None:
    """Checks `condition` until it holds; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """True if `pid` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def worker_commands() -> "list[str]":
    """The command lines of the processes in the worker namespace."""
    out = []
    for pid in cluster.ns_pids(cluster.WORKER_NS):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                out.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return out
