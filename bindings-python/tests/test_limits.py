"""Resource limits through the binding: `limits=` on `run` and on the
manager (its default), `unenforced_limits=`, on this host's real cgroups.
A memory hog is killed at its limit and said so, with its peak in the
result's usage; a bad `limits` dict is an `InvalidArgument` naming the key.
Every test that makes limit cgroups checks that none is left afterwards."""

from __future__ import annotations

import os
import sys
import time
from typing import List, Optional

import pytest

from agent_tasks import AgentTasksError, InvalidArgument, LimitsUnavailable, TaskManager
from conftest import BOUND

MIB = 1 << 20

# Keeps 256 MiB of touched pages (8 MiB at a time), then says so.
HOG = [
    sys.executable,
    "-c",
    "import sys\nkept = []\nfor i in range(32):\n    kept.append(b'x' * (8 << 20))\nprint('done'); sys.stdout.flush()",
]


def _own_v1_dir(controller: str) -> Optional[str]:
    """This process's folder in the v1 hierarchy of `controller`, if writable."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and controller in parts[1].split(","):
            folder = os.path.join(f"/sys/fs/cgroup/{controller}", parts[2].lstrip("/"))
            return folder if os.access(folder, os.W_OK) else None
    return None


def _can_limit_memory() -> bool:
    if _own_v1_dir("memory") is not None:
        return True
    try:
        with open("/proc/self/cgroup") as f:
            own = f.read().strip()
        if own.startswith("0::"):
            folder = os.path.join("/sys/fs/cgroup", own[3:].lstrip("/"))
            with open(os.path.join(folder, "cgroup.subtree_control")) as f:
                return "memory" in f.read().split()
    except OSError:
        pass
    return False


needs_memory_cgroup = pytest.mark.skipif(
    not _can_limit_memory(), reason="no memory controller to limit with here"
)


def _limit_cgroups_left() -> List[str]:
    """The limit cgroups this process's managers made (tasks' and ceilings'), still there."""
    prefixes = (f"agent-tasks-h{os.getpid()}-lim-", f"agent-tasks-h{os.getpid()}-mgr-")
    left = []
    for controller in ("memory", "pids", "cpu"):
        folder = _own_v1_dir(controller)
        if folder is not None:
            left += [os.path.join(folder, n) for n in os.listdir(folder) if n.startswith(prefixes)]
    return left


@needs_memory_cgroup
def test_a_memory_hog_is_killed_at_its_limit_with_its_peak_in_the_usage(tmp_path: "os.PathLike[str]") -> None:
    with TaskManager(root=os.path.join(os.fspath(tmp_path), "root")) as manager:
        task = manager.run(HOG, limits={"memory": 64 * MIB}, timeout=BOUND * 3, on_timeout="kill")
        result = task.collect_blocking(timeout=BOUND * 3).result
        assert result is not None
        assert result.status == "failed", result.to_dict()
        assert result.error is not None
        assert result.error.startswith("killed: memory limit 64 MiB reached (OOM), peak "), result.error
        assert "done" not in manager.poll(task).text
        assert result.usage is not None
        assert 0 < result.usage.peak_memory_bytes <= 65 * MIB, result.usage.to_dict()
        assert result.usage.memory_source == "cgroup"
        info = manager.info(task)
        assert info.limits is not None and info.limits.enforced.memory == 64 * MIB
        assert info.limits.not_enforced is None
        # The host goes on: a task without limits completes.
        after = manager.run("echo alive").collect_blocking(timeout=BOUND).result
        assert after is not None and after.status == "completed"
    assert _limit_cgroups_left() == []


@needs_memory_cgroup
def test_the_managers_default_limits_apply_to_a_task_that_sets_none(tmp_path: "os.PathLike[str]") -> None:
    with TaskManager(
        root=os.path.join(os.fspath(tmp_path), "root"),
        limits={"memory": 64 * MIB},
        unenforced_limits="refuse",
    ) as manager:
        task = manager.run(HOG, timeout=BOUND * 3, on_timeout="kill")
        result = task.collect_blocking(timeout=BOUND * 3).result
        assert result is not None and result.status == "failed", result.to_dict()
        assert result.error is not None and "memory limit 64 MiB" in result.error and "OOM" in result.error
        assert result.usage is not None and result.usage.peak_memory_bytes > 0
        # A task's own limits go over the default, kind by kind.
        own = manager.run("echo ok", limits={"pids": 64, "memory": None})
        assert own.collect_blocking(timeout=BOUND).status == "completed"
        limits = manager.info(own).limits
        assert limits is not None
        assert limits.enforced.memory == 64 * MIB and limits.enforced.pids == 64
    assert _limit_cgroups_left() == []


def test_an_unknown_limit_is_invalid_argument_with_a_hint(manager: TaskManager, tmp_path: "os.PathLike[str]") -> None:
    with pytest.raises(InvalidArgument) as caught:
        manager.run("true", limits={"memroy": 1})  # type: ignore[typeddict-unknown-key]
    assert caught.value.argument == "limits.memroy"
    assert "did you mean `memory`?" in str(caught.value)
    with pytest.raises(InvalidArgument) as caught:
        TaskManager(root=os.path.join(os.fspath(tmp_path), "other"), limits={"cpus": 1.0})  # type: ignore[typeddict-unknown-key]
    assert caught.value.argument == "limits.cpus"
    assert "did you mean `cpu`?" in str(caught.value)
    assert manager.ids() == []


@pytest.mark.parametrize(
    "limits, argument",
    [
        ({"memory": "64M"}, "limits.memory"),
        ({"memory": 1.5}, "limits.memory"),
        ({"pids": -1}, "limits.pids"),
        ({"pids": True}, "limits.pids"),
        ({"cpu": "half"}, "limits.cpu"),
        # The core's ranges.
        ({"memory": 1000}, "limits.memory"),
        ({"pids": 0}, "limits.pids"),
        ({"cpu": 0.0}, "limits.cpu"),
        ([("memory", 1)], "limits"),
    ],
)
def test_a_bad_limit_is_invalid_argument_naming_it(manager: TaskManager, limits: object, argument: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        manager.run("true", limits=limits)  # type: ignore[arg-type]
    assert caught.value.argument == argument, str(caught.value)
    assert manager.ids() == []


def test_a_bad_default_or_policy_is_refused_at_the_managers_making(tmp_path: "os.PathLike[str]") -> None:
    root = os.path.join(os.fspath(tmp_path), "root")
    with pytest.raises(InvalidArgument) as caught:
        TaskManager(root=root, limits={"memory": 10})
    assert caught.value.argument == "limits.memory"
    with pytest.raises(InvalidArgument) as caught:
        TaskManager(root=root, unenforced_limits="ignore")  # type: ignore[arg-type]
    assert caught.value.argument == "unenforced_limits"
    assert "refuse" in str(caught.value) and "report" in str(caught.value)
    with TaskManager(root=root, unenforced_limits="report") as manager:
        assert manager.run("true").collect_blocking(timeout=BOUND).status == "completed"


def test_limits_unavailable_is_a_typed_error() -> None:
    assert issubclass(LimitsUnavailable, AgentTasksError)
    assert LimitsUnavailable.code == "LIMITS_UNAVAILABLE"


@pytest.mark.skipif(_own_v1_dir("memory") is None, reason="no v1 memory hierarchy for a ceiling here")
def test_at_the_managers_memory_ceiling_the_hog_is_stopped_and_said_so(tmp_path: "os.PathLike[str]") -> None:
    with TaskManager(
        root=os.path.join(os.fspath(tmp_path), "root"), limits_ceiling={"memory": 96 * MIB}
    ) as manager:
        quiet = manager.run("echo waiting; sleep 1000", background=True)
        manager.wait_for_blocking(quiet, "waiting", timeout=BOUND)
        result = manager.run(HOG, timeout=BOUND * 3, on_timeout="kill").collect_blocking(timeout=BOUND * 3).result
        assert result is not None and result.status == "failed", result.to_dict()
        assert result.error is not None
        assert result.error.startswith("killed: memory ceiling of the manager 96 MiB reached (OOM)"), result.error
        assert result.usage is not None
        assert [(r.limit, r.scope) for r in result.usage.limits_reached] == [("memory", "ceiling")]
        # The other task under the same ceiling runs on.
        assert manager.info(quiet).status == "running"
        manager.cancel_blocking(quiet)
    # The ceiling is let go at the shutdown; the kernel may take a moment
    # to let go of the killed tasks' cgroups inside it.
    deadline = time.monotonic() + BOUND
    while _limit_cgroups_left() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _limit_cgroups_left() == []


def test_a_bad_ceiling_is_refused_by_name(tmp_path: "os.PathLike[str]") -> None:
    root = os.path.join(os.fspath(tmp_path), "root")
    with pytest.raises(InvalidArgument) as caught:
        TaskManager(root=root, limits_ceiling={"pids": 0})
    assert caught.value.argument == "limits_ceiling.pids"
    with pytest.raises(InvalidArgument) as caught:
        TaskManager(root=root, limits_ceiling={"memroy": MIB})  # type: ignore[typeddict-unknown-key]
    assert caught.value.argument == "limits_ceiling.memroy"
    assert "did you mean `memory`?" in str(caught.value)
