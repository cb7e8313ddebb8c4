"""Tasks that outlive their host (`on_host_exit="keep_running"`) from Python:
a host (a child `python -c`) is SIGKILLed or SIGTERMed while its task runs;
the task goes on under its supervisor (this interpreter running
`agent_tasks._supervisor`), a host that opens the root re-attaches to it and
reads every byte and its real end; the SIGTERMed host's other tasks are
gone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agent_tasks import InvalidArgument, TaskManager
from conftest import alive, read_all, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

HOST = """
import json, sys, time
from agent_tasks import TaskManager
m = TaskManager(root={root!r})
kept = m.run({command!r}, background=True, on_host_exit="keep_running")
other = m.run("sleep 300", background=True)
deadline = time.monotonic() + 20
while (kept.info().pid is None or other.info().pid is None) and time.monotonic() < deadline:
    time.sleep(0.01)
print(json.dumps({{"kept": kept.id, "pid": kept.info().pid, "other_id": other.id, "other": other.info().pid}}), flush=True)
sys.stdin.readline()
"""


def start_host(root: Path, command: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """A host with a kept-running task and an ordinary one; returns it once both run."""
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOST.format(root=str(root), command=command))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.kill()
        _, err = child.communicate()
        pytest.fail(f"the host did not start its tasks: {err}")
    return child, json.loads(line)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_a_kept_task_outlives_its_host_and_the_next_host_reattaches(tmp_path: Path, how: int) -> None:
    root = tmp_path / "root"
    gate = tmp_path / "go"
    command = f"seq 1 200000; while [ ! -e '{gate}' ]; do sleep 0.02; done; echo end; exit 5"
    host, started = start_host(root, command)
    host.send_signal(how)
    host.wait(timeout=30)
    # The host's other task went with it (SIGTERM runs the exit hook; a
    # SIGKILLed host's tasks die with it or are killed by its successor).
    if how == signal.SIGTERM:
        wait_until(lambda: not alive(started["other"]), what="the other task to be gone")
    assert alive(started["pid"]), "the kept task died with its host"

    m = TaskManager(root=str(root))
    try:
        if how == signal.SIGKILL:
            # The SIGKILLed host's other task outlived it: reported, and adopted by killing.
            m.kill_orphan(started["other_id"])
            wait_until(lambda: not alive(started["other"]), what="the orphan to be gone")
        task = started["kept"]
        assert m.info(task).status == "running"
        events = (root / "tasks" / started["kept"] / "events.jsonl").read_text()
        assert '"task.reattached"' in events
        gate.write_text("")
        result = m.collect_blocking(task, timeout=60).result
        assert result.status == "failed"
        assert result.exit is not None and result.exit.code == 5
        expected = "".join(f"{i}\n" for i in range(1, 200001)) + "end\n"
        assert read_all(m, task) == expected.encode()  # type: ignore[arg-type]
    finally:
        m.shutdown_blocking()


def test_keep_running_in_a_temporary_root_is_refused() -> None:
    m = TaskManager()
    try:
        with pytest.raises(InvalidArgument, match="on_host_exit"):
            m.run("true", background=True, on_host_exit="keep_running")
        with pytest.raises(InvalidArgument, match="on_host_exit"):
            m.run("true", background=True, on_host_exit="keep_runing")
    finally:
        m.shutdown_blocking()
