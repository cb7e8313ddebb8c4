"""Shared helpers for the binding's tests. They run against the installed
wheel (`pip install ./bindings-python`), never the source tree."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
from typing import Callable, Iterator

import pytest

# Temporary roots (a `TaskManager()` without a root) and pytest's own
# folders go under one folder of this run, removed when the interpreter
# exits. Registered before `agent_tasks` is imported, so it runs after the
# library's at-exit hook (at-exit hooks run last first): a temporary root
# still there then is a leak of the library, and fails the run.
_RUN_TMP = tempfile.mkdtemp(prefix="agent-tasks-pytest-")
os.environ["TMPDIR"] = _RUN_TMP
tempfile.tempdir = None


def _remove_run_tmp() -> None:
    left = [name for name in os.listdir(_RUN_TMP) if name.startswith("agent-tasks-")]
    shutil.rmtree(_RUN_TMP, ignore_errors=True)
    if left:
        print(f"error: temporary roots left behind at exit: {left}", file=sys.stderr, flush=True)
        os._exit(1)


atexit.register(_remove_run_tmp)

import agent_tasks  # noqa: E402
from agent_tasks import Task, TaskManager  # noqa: E402

# Generous bounds: waits end as soon as their condition holds.
BOUND = 20.0


def wait_until(condition: Callable[[], object], timeout: float = BOUND, what: str = "condition") -> None:
    """Polls `condition` until it is true; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def read_all(manager: TaskManager, task: Task, max_bytes: int = 64 * 1024) -> bytes:
    """Polls from cursor 0 until eof and returns every byte seen."""
    out = bytearray()
    cursor = 0
    deadline = time.monotonic() + BOUND * 3
    while True:
        page = manager.poll(task, cursor, max_bytes)
        assert page.omitted_bytes == 0
        assert page.cursor == cursor
        out += page.data
        cursor = page.next_cursor
        if page.eof:
            return bytes(out)
        if not page.data:
            if time.monotonic() > deadline:
                pytest.fail("output did not end in time")
            time.sleep(0.005)


def alive(pid: int) -> bool:
    """True if `pid` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, IndexError):
        return sys.platform != "linux"


@pytest.fixture
def manager(tmp_path: "os.PathLike[str]") -> Iterator[TaskManager]:
    with TaskManager(root=os.path.join(os.fspath(tmp_path), "root")) as m:
        yield m

