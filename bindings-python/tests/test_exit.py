"""Every way a Python host ends leaves no task process running and no
temporary root behind: SIGTERM and SIGHUP (Python dies of the signal, as it
would have), a handler the host set itself (the host decides; its exit runs
the at-exit hook), a normal exit, an uncaught exception and Ctrl+C. Each
host is a child `python -c` with its own TMPDIR, so its temporary root is
found (and its absence checked) without racing other processes."""

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

from conftest import BOUND, alive, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# A host with a temporary root and a running background task (a shell and
# its `sleep`): prints the root and both pids as a JSON line, then runs
# `then` once told to (a line on its stdin).
HOST = """
import json, os, signal, sys, time
{before}
from agent_tasks import TaskManager
m = TaskManager()
task = m.run("sleep 300 & echo $!; wait", background=True)
deadline = time.monotonic() + 20
while not m.poll(task).text.strip() and time.monotonic() < deadline:
    time.sleep(0.01)
print(json.dumps({{"root": m.root, "shell": task.info().pid, "sleep": int(m.poll(task).text)}}), flush=True)
sys.stdin.readline()
print("going", flush=True)
{then}
"""


def start_host(tmp_path: Path, then: str, before: str = "") -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Starts a host whose temporary roots go under `tmp_path/tmp`; returns it once its task runs."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = HOST.format(before=textwrap.dedent(before), then=textwrap.dedent(then))
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.kill()
        _, err = child.communicate()
        pytest.fail(f"the host did not start its task: {err}")
    started = json.loads(line)
    assert Path(started["root"]).parent == tmp, started
    assert Path(started["root"]).is_dir()
    assert alive(started["shell"]) and alive(started["sleep"])
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline() == "going\n"
    return child, started


def assert_cleaned_up(tmp_path: Path, started: dict[str, Any]) -> None:
    """The task's processes are gone, and so is every temporary root."""
    for pid in (started["shell"], started["sleep"]):
        wait_until(lambda: not alive(pid), timeout=10, what=f"task process {pid} to be gone")
    assert not Path(started["root"]).exists(), "the temporary root was removed"
    assert list((tmp_path / "tmp").iterdir()) == []


def main_thread_sleeps(pid: int) -> bool:
    """True once the process's main thread sleeps in the kernel."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "S"
    except FileNotFoundError:
        return True


# The main thread blocked in the library (GIL released), in a Python sleep,
# and spinning in Python code (GIL held).
WAITS = {
    "blocking collect": "m.collect_blocking(task)",
    "time.sleep": "time.sleep(300)",
    "busy loop": "while True: pass",
}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("wait", list(WAITS), ids=list(WAITS))
def test_a_fatal_signal_kills_the_tasks_and_removes_the_temporary_root(
    tmp_path: Path, sig: signal.Signals, wait: str
) -> None:
    child, started = start_host(tmp_path, WAITS[wait])
    try:
        if wait != "busy loop":
            wait_until(lambda: main_thread_sleeps(child.pid), what="the host to block")
        child.send_signal(sig)
        _, err = child.communicate(timeout=BOUND)
        # Python died of the signal, as it would have without the library.
        assert child.returncode == -sig, (child.returncode, err)
        assert_cleaned_up(tmp_path, started)
    finally:
        child.kill()
        child.wait()


def test_a_handler_the_host_set_decides_and_its_exit_cleans_up(tmp_path: Path) -> None:
    before = """
    def on_term(signum, frame):
        print("host handler", flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, on_term)
    """
    child, started = start_host(tmp_path, "time.sleep(300)", before=before)
    try:
        wait_until(lambda: main_thread_sleeps(child.pid), what="the host to block")
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=BOUND)
        assert "host handler" in out, (out, err)
        assert child.returncode == 3, err
        assert_cleaned_up(tmp_path, started)
    finally:
        child.kill()
        child.wait()


def test_an_ignored_signal_stays_ignored(tmp_path: Path) -> None:
    # `nohup` sets SIGHUP to ignored: the library does not take it over.
    before = "signal.signal(signal.SIGHUP, signal.SIG_IGN)"
    child, started = start_host(tmp_path, "print('still here', flush=True); time.sleep(300)", before=before)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "still here\n"
        child.send_signal(signal.SIGHUP)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=BOUND)
        assert child.returncode == -signal.SIGTERM, (child.returncode, err)
        assert_cleaned_up(tmp_path, started)
    finally:
        child.kill()
        child.wait()


EXITS = {
    "normal exit": ("pass", 0),
    "sys.exit": ("sys.exit(4)", 4),
    "uncaught exception": ("raise RuntimeError('boom in the host')", 1),
    # Python dies of an uncaught KeyboardInterrupt's SIGINT.
    "Ctrl+C": ("os.kill(os.getpid(), signal.SIGINT); time.sleep(300)", -signal.SIGINT),
}


@pytest.mark.parametrize("then,code", list(EXITS.values()), ids=list(EXITS))
def test_every_exit_path_kills_the_tasks_and_removes_the_temporary_root(
    tmp_path: Path, then: str, code: int
) -> None:
    child, started = start_host(tmp_path, then)
    try:
        _, err = child.communicate(timeout=BOUND)
        assert child.returncode == code, err
        assert_cleaned_up(tmp_path, started)
    finally:
        child.kill()
        child.wait()


def test_a_forked_child_dies_of_sigterm_and_leaves_the_hosts_tasks_alone(tmp_path: Path) -> None:
    # A child forked from the host (multiprocessing's fork) has the handler
    # but not the thread that acts on it: it dies of the signal at once, and
    # the host's tasks and root are its parent's business.
    then = """
    pid = os.fork()
    if pid == 0:
        time.sleep(300)
        os._exit(0)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print("child", os.WIFSIGNALED(status) and os.WTERMSIG(status), flush=True)
    print("task", m.info(task).status, flush=True)
    """
    child, started = start_host(tmp_path, then)
    try:
        assert child.stdout is not None
        forked = int(child.stdout.readline())
        wait_until(lambda: main_thread_sleeps(forked), what="the forked child to sleep")
        os.kill(forked, signal.SIGTERM)
        out, err = child.communicate(timeout=BOUND)
        assert f"child {int(signal.SIGTERM)}\n" in out, (out, err)
        assert "task running\n" in out, (out, err)
        assert child.returncode == 0, err
        assert_cleaned_up(tmp_path, started)
    finally:
        child.kill()
        child.wait()
