"""Notifications (exactly one per background end, ack, across a reopen),
one manager per root (`RootInUse`), orphans of a killed host, close_owner,
gc, load_problems, wait_foreground by id, and changed-file tracking."""

from __future__ import annotations

import asyncio
import gc as garbage
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent_tasks import (
    AgentTasksError,
    InvalidArgument,
    Notification,
    RootInUse,
    TaskManager,
    TaskNotFound,
)

from conftest import BOUND, alive, wait_until


def test_a_background_task_end_gives_exactly_one_notification(manager: TaskManager) -> None:
    task = manager.run("echo done", background=True, owner="s1", description="bg job")
    assert task.collect_blocking(timeout=BOUND).status == "completed"
    # A foreground task that ends in the foreground gives none.
    assert manager.run("true", owner="s1").wait_foreground_blocking(timeout=BOUND).finished

    notes = manager.notifications("s1")
    assert len(notes) == 1
    note = notes[0]
    assert isinstance(note, Notification)
    assert note.id == f"{task.id}.end"
    assert (note.kind, note.task_id, note.owner, note.task_kind, note.description) == (
        "finished",
        task.id,
        "s1",
        "process",
        "bg job",
    )
    assert note.status == "completed"
    assert note.exit is not None and note.exit.code == 0
    assert note.reason is None and note.error is None and note.detail is None
    assert note.output_tail == "done"
    assert task.id in note.text and "completed" in note.text
    assert note.created_at_ms > 0 and note.duration_ms >= 0
    d = note.to_dict()
    assert (d["id"], d["kind"], d["status"], d["text"]) == (note.id, "finished", "completed", note.text)
    assert manager.notifications("someone-else") == []
    assert [n.id for n in manager.notifications()] == [note.id]

    assert manager.ack([note]) == 1
    assert manager.notifications() == []
    assert manager.ack(note.id) == 0  # already acknowledged: ignored
    with pytest.raises(InvalidArgument):
        manager.ack("not a notification id")


def test_a_notification_survives_reopening_until_acked(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = TaskManager(root)
    task = first.run("echo persisted", background=True, owner="s1")
    assert task.collect_blocking(timeout=BOUND).status == "completed"
    (note,) = first.notifications()
    first.shutdown_blocking()
    del first, task
    garbage.collect()

    second = TaskManager(root)
    assert second.load_problems() == []
    again = second.notifications("s1")
    assert [n.id for n in again] == [note.id]
    assert again[0].text == note.text
    assert second.info(note.task_id).status == "completed"
    assert second.ack(again) == 1
    second.shutdown_blocking()
    del second
    garbage.collect()

    third = TaskManager(root)
    assert third.notifications() == []
    third.shutdown_blocking()


def test_a_second_manager_on_the_same_root_raises_root_in_use(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = TaskManager(root)
    with pytest.raises(RootInUse) as err:
        TaskManager(root)
    assert isinstance(err.value, AgentTasksError)
    assert err.value.code == "ROOT_IN_USE"
    assert err.value.path == str(root)
    assert str(root) in str(err.value)
    # A shutdown that leaves nothing running releases the root.
    first.shutdown_blocking()
    second = TaskManager(root)
    second.shutdown_blocking()


def test_notify_host_cancels(tmp_path: Path) -> None:
    for notify, expected in ((False, 0), (True, 1)):
        with TaskManager(tmp_path / f"root-{notify}", notify_host_cancels=notify) as m:
            task = m.run("sleep 30", background=True)
            assert task.cancel_blocking("not needed").status == "cancelled"
            assert len(m.notifications()) == expected


def test_close_owner_cancels_that_owners_tasks(manager: TaskManager) -> None:
    a1 = manager.run("sleep 30", background=True, owner="a")
    a2 = manager.run("sleep 30", background=True, owner="a")
    kept = manager.run("sleep 30", background=True, owner="a", keep_alive=True)
    b = manager.run("sleep 30", background=True, owner="b")
    infos = manager.close_owner_blocking("a", "session closed")
    assert sorted(i.id for i in infos) == sorted([a1.id, a2.id])
    for info in infos:
        assert info.status == "cancelled"
        assert info.cancel_reason is not None
        assert (info.cancel_reason.kind, info.cancel_reason.message) == ("owner_closed", "session closed")
    assert b.info().status == "running" and kept.info().status == "running"
    assert asyncio.run(manager.close_owner("nobody")) == []
    kept.cancel_blocking()
    b.cancel_blocking()


def test_gc_removes_ended_tasks_and_spares_running_ones(manager: TaskManager) -> None:
    ended = []
    for n in range(3):
        task = manager.run(f"echo {n}", background=True)
        assert task.collect_blocking(timeout=BOUND).status == "completed"
        ended.append(task.id)
    running = manager.run("sleep 30", background=True)
    assert manager.gc(max_age=3600) == []
    removed = manager.gc(max_count=1)
    assert sorted(removed) == sorted(ended[:2])
    for id in removed:
        assert not os.path.exists(os.path.join(manager.root, "tasks", id))
        with pytest.raises(TaskNotFound):
            manager.info(id)
    assert manager.gc(max_count=0) == [ended[2]]
    assert manager.ids() == [running.id]
    with pytest.raises(InvalidArgument):
        manager.gc(max_count=-1)
    running.cancel_blocking()


def test_load_problems_lists_unreadable_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "notifications").mkdir(parents=True)
    (root / "notifications" / "process-abcdabcd.end.json").write_text("{torn")
    with TaskManager(root) as m:
        problems = m.load_problems()
        assert len(problems) == 1 and "process-abcdabcd.end.json" in problems[0]
        assert m.notifications() == []


def test_wait_foreground_by_id(manager: TaskManager) -> None:
    task = manager.run("echo fg")
    outcome = manager.wait_foreground_blocking(task.id, timeout=BOUND)
    assert outcome.state == "finished" and outcome.status == "completed"
    background = manager.run("sleep 30", background=True)
    assert asyncio.run(manager.wait_foreground(background)).state == "detached"
    with pytest.raises(TaskNotFound):
        manager.wait_foreground_blocking("process-nosuchtask")
    background.cancel_blocking()


def test_changed_files_are_tracked(manager: TaskManager, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "edit.txt").write_text("old")
    (work / "gone.txt").write_text("bye")
    task = manager.run(
        "echo 'new content' > edit.txt; rm gone.txt; echo hi > new.txt",
        cwd=work,
        track_changes=work,
    )
    result = task.wait_foreground_blocking(timeout=BOUND).result
    assert result is not None
    changes = result.changed_files
    assert changes is not None
    assert (changes.created, changes.modified, changes.deleted) == (["new.txt"], ["edit.txt"], ["gone.txt"])
    assert changes.root == str(work) and not changes.truncated
    assert result.to_dict()["changed_files"] == changes.to_dict()
    plain = manager.run("true").wait_foreground_blocking(timeout=BOUND).result
    assert plain is not None and plain.changed_files is None


# A host that starts a background command and then dies with SIGKILL.
CRASHING_HOST = textwrap.dedent(
    """
    import json, os, sys, time
    from agent_tasks import NO_TIMEOUT, TaskManager

    root, ready = sys.argv[1], sys.argv[2]
    m = TaskManager(root)
    task = m.run("echo before-crash; exec sleep 1000", background=True, timeout=NO_TIMEOUT, owner="s1")
    manifest = os.path.join(root, "tasks", task.id, "manifest.json")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        saved = open(manifest).read() if os.path.exists(manifest) else ""
        if "process_start_time" in saved and m.info(task).output.total_bytes > 0:
            break
        time.sleep(0.01)
    with open(ready + ".tmp", "w") as f:
        json.dump({"id": task.id, "pid": m.info(task).pid}, f)
    os.rename(ready + ".tmp", ready)
    time.sleep(1000)
    """
)


def test_kill_orphan_ends_the_process_a_killed_host_left(manager: TaskManager, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):  # a task without an orphan
        manager.kill_orphan(manager.run("true", background=True))

    root, ready = tmp_path / "crashed", tmp_path / "ready.json"
    host = subprocess.Popen([sys.executable, "-c", CRASHING_HOST, str(root), str(ready)])
    pid = None
    try:
        wait_until(lambda: ready.exists() or host.poll() is not None, what="the host to be ready")
        assert host.poll() is None, "the host died early"
        started = json.loads(ready.read_text())
        pid = started["pid"]
        host.kill()
        host.wait(timeout=BOUND)
        assert alive(pid)

        with TaskManager(root) as m:
            info = m.info(started["id"])
            assert info.status == "lost"
            assert info.orphan_pid == pid
            assert "before-crash" in m.poll(info.id).text
            kinds = {(n.task_id, n.kind) for n in m.notifications("s1")}
            assert kinds == {(info.id, "orphaned")}
            after = m.kill_orphan(info.id)
            assert after.orphan_pid is None
            wait_until(lambda: not alive(pid), what="the orphan to die")
            with pytest.raises(InvalidArgument):
                m.kill_orphan(info.id)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        if pid is not None and alive(pid):
            os.killpg(pid, signal.SIGKILL)
