"""Tasks placed on a real two-node Ray cluster (two network namespaces on
this machine, see cluster.py): the host (this process) runs in the head
namespace; the worker namespace's node has the custom resource
``worker-box``. Nothing is mocked."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest
import ray

import cluster
from conftest import BOUND, alive, wait_until, worker_commands

import agent_tasks
from agent_tasks import ClusterUnavailable, TaskManager, ToolBox
from agent_tasks.ray import NODE_NAMESPACE, RayPlacement, location, node_actor_name

ON_WORKER = RayPlacement(resources={cluster.WORKER_RESOURCE: 1}, address=cluster.ADDRESS)


def remote_info(task: agent_tasks.Task) -> Dict[str, Any]:
    """The task's info in the manager of the node it runs on."""
    where = location(task)
    assert where is not None and where.remote_task_id is not None
    node = ray.get_actor(node_actor_name(where.node_id), namespace=NODE_NAMESPACE)
    return ray.get(node.info.remote(where.remote_task_id), timeout=BOUND)  # type: ignore[no-any-return]


def test_a_custom_resource_places_the_task_on_the_worker(manager: TaskManager) -> None:
    task = manager.run("ip -4 -o addr show; echo to-stderr >&2", placement=ON_WORKER)
    result = task.result(BOUND)
    assert result.status == "completed", result.error
    page = manager.poll(task)
    # It saw the worker namespace's address, not the head's.
    assert cluster.WORKER_IP in page.text and cluster.HEAD_IP not in page.text
    assert [s.stream for s in page.spans] == ["stdout", "stderr"]
    assert page.text.endswith("to-stderr\n")
    where = location(task)
    assert where is not None and where.address == cluster.WORKER_IP
    assert result.exit is not None and result.exit.code == 0
    assert result.usage is not None
    assert manager.info(task).kind == "ray"


def test_a_failing_command_fails_with_its_exit(manager: TaskManager) -> None:
    result = manager.run("echo out; exit 3", placement=ON_WORKER).result(BOUND)
    assert result.status == "failed"
    assert result.error == "exited with code 3"


def test_a_task_the_node_refuses_fails_with_the_nodes_error(manager: TaskManager) -> None:
    task = manager.run("true", placement=ON_WORKER, cwd="/nonexistent/folder")
    result = task.result(BOUND)
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith("the node could not start the task:"), result.error
    assert "/nonexistent/folder" in result.error


def test_a_64_mb_flood_arrives_byte_exact_with_a_detach_midway(
    manager: TaskManager, tmp_path: Path
) -> None:
    flood = tmp_path / "flood.bin"  # one file system: the worker writes it, the test reads it
    task = manager.run(
        f"head -c {64 << 20} /dev/urandom > {flood} && cat {flood}", placement=ON_WORKER
    )
    wait_until(lambda: manager.info(task).output.total_bytes > 8 << 20, what="8 MB of the flood")
    info = manager.detach(task)
    assert info.detached and info.status == "running"
    digest = hashlib.sha256()
    cursor = total = 0
    for chunk in task.output(max_bytes=4 << 20):
        digest.update(chunk)
        total += len(chunk)
    assert task.result(BOUND).status == "completed"
    assert total == 64 << 20
    assert digest.hexdigest() == hashlib.sha256(flood.read_bytes()).hexdigest()
    del cursor


def test_cancel_kills_the_remote_tree_with_a_setsid_grandchild(
    manager: TaskManager, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    marker = f"1000.{os.getpid()}"  # in the sleeps' command lines, to find them
    task = manager.run(
        f"setsid sh -c 'exec sleep {marker}1' & echo $! > {pids}; echo started; "
        f"exec sleep {marker}2",
        placement=ON_WORKER,
    )
    assert manager.wait_for_blocking(task, "started", BOUND)["state"] == "matched"
    grandchild = int(pids.read_text())
    where = location(task)
    assert where is not None and where.pid is not None
    assert alive(grandchild) and alive(where.pid)
    info = manager.cancel_blocking(task, "the test stops it")
    assert info.status == "cancelled"
    assert info.cancel_reason is not None and info.cancel_reason.message == "the test stops it"
    wait_until(lambda: not alive(grandchild) and not alive(where.pid), what="the remote tree's end")
    wait_until(
        lambda: not [c for c in worker_commands() if marker in c], what="nothing left on the worker"
    )
    remote = remote_info(task)
    assert remote["status"] == "cancelled"
    assert "the test stops it" in remote["cancel_reason"]["message"]


def test_a_cancel_right_after_run_leaves_nothing_on_the_worker(manager: TaskManager) -> None:
    marker = f"1000.{os.getpid()}4"
    for _ in range(3):
        task = manager.run(f"exec sleep {marker}", placement=ON_WORKER)
        assert manager.cancel_blocking(task, "changed my mind").status == "cancelled"
    wait_until(
        lambda: not [c for c in worker_commands() if marker in c], what="nothing left on the worker"
    )


def test_stdin_steering_and_wait_for_cross_the_cluster(manager: TaskManager) -> None:
    task = manager.run(
        "echo ready; while read line; do echo \"got:$line\"; done; echo bye",
        placement=ON_WORKER,
        interactive=True,
    )
    assert manager.wait_for_blocking(task, "^ready$", BOUND)["state"] == "matched"
    manager.send(task, "hello\n")
    hit = manager.wait_for_blocking(task, r"^got:hello$", BOUND)
    assert hit["state"] == "matched" and hit["line"] == "got:hello"
    manager.send(task, "again\n", eof=True)
    assert task.result(BOUND).status == "completed"
    assert manager.poll(task).text == "ready\ngot:hello\ngot:again\nbye\n"
    assert list(task.lines()) == ["ready", "got:hello", "got:again", "bye"]


def test_stdin_bytes_arrive_exact(manager: TaskManager) -> None:
    task = manager.run("od -An -tx1", placement=ON_WORKER, interactive=True)
    manager.send(task, b"\xff\xfe\x00\n", eof=True)
    assert task.result(BOUND).status == "completed"
    assert manager.poll(task).text.split() == ["ff", "fe", "00", "0a"]


def test_pause_and_resume_reach_the_remote_process(manager: TaskManager) -> None:
    task = manager.run(
        "echo ready; while read line; do echo \"got:$line\"; done",
        placement=ON_WORKER,
        interactive=True,
    )
    manager.wait_for_blocking(task, "^ready$", BOUND)
    manager.pause_blocking(task)
    assert remote_info(task)["paused"] is True
    manager.resume_blocking(task)
    assert remote_info(task)["paused"] is False
    manager.send(task, "after\n", eof=True)
    assert manager.wait_for_blocking(task, "^got:after$", BOUND)["state"] == "matched"
    assert task.result(BOUND).status == "completed"


def test_a_pty_task_takes_keys_and_resizes_across_the_cluster(manager: TaskManager) -> None:
    task = manager.run(
        "stty size; echo ready; read line; echo \"got:$line\"; stty size",
        placement=ON_WORKER,
        pty=(100, 30),
    )
    assert manager.wait_for_blocking(task, "^ready", BOUND)["state"] == "matched"
    manager.resize_blocking(task, 120, 40)
    manager.send(task, "hello")
    manager.send_keys(task, ["enter"])
    assert task.result(BOUND).status == "completed"
    lines = [line.strip() for line in manager.poll(task).text.splitlines()]
    assert lines[0] == "30 100" and "got:hello" in lines and lines[-1] == "40 120"


def test_more_tasks_than_the_cluster_cpus_wait_then_run(manager: TaskManager) -> None:
    # The worker has 2 CPUs and the resource; each task takes 1 CPU there.
    one_cpu = RayPlacement(num_cpus=1, resources={cluster.WORKER_RESOURCE: 1})
    tasks = [
        manager.run("echo started; cat > /dev/null", placement=one_cpu, interactive=True)
        for _ in range(cluster.CPUS + 1)
    ]

    def started() -> "list[agent_tasks.Task]":
        return [t for t in tasks if manager.poll(t).text == "started\n"]

    # Ray places two of them (in an order of its own), not the third.
    wait_until(lambda: len(started()) == cluster.CPUS, what="two tasks placed and started")
    running = started()
    (waiting,) = [t for t in tasks if t not in running]
    assert location(waiting) is None
    assert manager.poll(waiting).data == b""
    assert manager.info(waiting).status == "running"
    assert len(started()) == cluster.CPUS
    manager.send(running[0], eof=True)
    assert running[0].result(BOUND).status == "completed"
    assert manager.wait_for_blocking(waiting, "^started$", BOUND)["state"] == "matched"
    where = location(waiting)
    assert where is not None and where.address == cluster.WORKER_IP
    for task in (running[1], waiting):
        manager.send(task, eof=True)
        assert task.result(BOUND).status == "completed"


def test_an_unknown_node_or_cluster_is_a_typed_error(manager: TaskManager) -> None:
    with pytest.raises(ClusterUnavailable, match="not an alive node"):
        manager.run("true", placement=RayPlacement(node="ff" * 28))
    with pytest.raises(ClusterUnavailable, match="one cluster per process"):
        manager.run("true", placement=RayPlacement(address=f"{cluster.WORKER_IP}:{cluster.PORT}"))
    with pytest.raises(agent_tasks.InvalidArgument) as bad:
        RayPlacement(num_cpus=-1)
    assert bad.value.argument == "num_cpus"
    with pytest.raises(agent_tasks.InvalidArgument) as bad:
        manager.run("true", placement=ON_WORKER, track_changes="/tmp")
    assert bad.value.argument == "track_changes"
    with pytest.raises(agent_tasks.InvalidArgument) as bad:
        manager.run("true", placement=ON_WORKER, background=True, on_host_exit="keep_running")
    assert bad.value.argument == "on_host_exit"
    assert manager.ids() == []
    # A host that is not connected yet, given an address where no cluster is.
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import agent_tasks
            from agent_tasks.ray import RayPlacement
            m = agent_tasks.TaskManager()
            try:
                m.run("true", placement=RayPlacement(address="{cluster.HEAD_IP}:1"))
            except agent_tasks.ClusterUnavailable as e:
                print("ClusterUnavailable", e.code, m.ids())
            m.shutdown_blocking()
        """)],
        capture_output=True, text=True, timeout=BOUND,
    )
    assert out.stdout.startswith("ClusterUnavailable CLUSTER_UNAVAILABLE []"), out.stderr


def test_toolbox_tools_read_a_placed_task_as_a_local_one(manager: TaskManager) -> None:
    box = ToolBox(manager, "session")
    command = "printf 'line %s\\n' 1 2 3; echo warn >&2; exit 2"
    texts = []
    for placement in (None, ON_WORKER):
        task = manager.run(command, placement=placement, owner="session", background=True)
        task.result(BOUND)
        for tool in ("task_output", "task_wait"):
            text = box.call_blocking(tool, {"task_id": task.id}).text
            text = re.sub(r"(process|ray)-[a-z0-9]+", "ID", text)
            text = re.sub(r"(?m)^(duration|used): .*$", r"\1: X", text)
            texts.append(text)
    local, remote = texts[:2], texts[2:]
    assert local == remote
    assert "line 3" in remote[0] and "warn" in remote[0] and "exit_code: 2" in remote[0]


HOST = """
import sys
from agent_tasks import TaskManager
from agent_tasks.ray import RayPlacement, location
m = TaskManager()
task = m.run(
    "setsid sh -c 'exec sleep {marker}1' & echo $! > {pids}; echo started; exec sleep {marker}2",
    placement=RayPlacement(resources={{"{resource}": 1}}, address="{address}"),
    background=True,
)
m.wait_for_blocking(task, "started", 120)
print(location(task).pid, flush=True)
sys.stdin.read()
"""


def test_the_host_killed_kills_its_remote_tasks(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    marker = f"1000.{os.getpid()}3"
    script = tmp_path / "host.py"
    script.write_text(HOST.format(
        marker=marker, pids=pids, resource=cluster.WORKER_RESOURCE, address=cluster.ADDRESS
    ))
    host = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert host.stdout is not None
        remote_pid = int(host.stdout.readline())
        grandchild = int(pids.read_text())
        assert alive(remote_pid) and alive(grandchild)
        host.send_signal(signal.SIGKILL)
        host.wait(BOUND)
        wait_until(
            lambda: not alive(remote_pid) and not alive(grandchild), what="the remote tree's end"
        )
        wait_until(
            lambda: not [c for c in worker_commands() if marker in c],
            what="nothing left on the worker",
        )
    finally:
        host.kill()
        host.wait()


def test_zz_the_worker_raylet_killed_fails_the_task_node_lost(manager: TaskManager) -> None:
    # Last: it takes the worker node away.
    task = manager.run("echo started; exec sleep 1000", placement=ON_WORKER, background=True)
    assert manager.wait_for_blocking(task, "^started$", BOUND)["state"] == "matched"
    where = location(task)
    assert where is not None and where.pid is not None
    raylet = cluster.worker_raylet_pid()
    assert raylet is not None
    os.kill(raylet, signal.SIGKILL)
    result = manager.collect_blocking(task, BOUND).result
    assert result.status == "failed"
    assert result.error is not None and result.error.startswith("node lost"), result.error
    told = [n for n in manager.notifications() if n.task_id == task.id]
    assert len(told) == 1 and told[0].status == "failed"
    # The node's processes go with it (its actor's manager is dropped).
    wait_until(lambda: not alive(where.pid), what="the lost node's process to end")
