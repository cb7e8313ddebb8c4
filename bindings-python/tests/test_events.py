"""Events: typed, in order, as async and blocking iterators, `Lagged` for a
subscriber that falls behind; watch patterns and the monitoring options."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from pathlib import Path
from typing import List

import pytest

from agent_tasks import (
    Event,
    EventStream,
    InvalidArgument,
    Lagged,
    TaskContext,
    TaskManager,
)

from conftest import BOUND, wait_until

# The core's event bus holds this many events for a subscriber.
BUS_CAPACITY = 4096


def events_until_finished(stream: EventStream, task_id: str) -> List[Event]:
    """Reads (blocking, bounded) until the task's `task.finished`; every item
    must be an event."""
    seen: List[Event] = []
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        item = stream.recv_blocking(timeout=max(0.0, deadline - time.monotonic()))
        assert isinstance(item, Event), item
        seen.append(item)
        if item.task_id == task_id and item.type == "task.finished":
            return seen
    pytest.fail("no task.finished in time")


def test_events_arrive_in_order_for_a_task(manager: TaskManager) -> None:
    stream = manager.events()
    task = manager.run("echo a; read x; echo b", interactive=True, description="gated")
    wait_until(lambda: manager.poll(task).text == "a\n", what="the first line")
    manager.detach(task)
    manager.send(task, "go\n")
    assert task.collect_blocking(timeout=BOUND).status == "completed"

    events = [e for e in events_until_finished(stream, task.id) if e.task_id == task.id]
    types = [e.type for e in events]
    assert types[0] == "task.started"
    assert types[-1] == "task.finished"
    assert types.index("task.detached") < len(types) - 1
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(e.timestamp_ms > 0 for e in events)
    for e in events:
        d = e.to_dict()
        assert (d["seq"], d["task_id"], d["type"]) == (e.seq, e.task_id, e.type)

    started, finished = events[0], events[-1]
    assert (started.kind, started.description, started.owner, started.background) == (
        "process",
        "gated",
        "default",
        False,
    )
    assert started.status is None and started.line is None
    assert finished.status == "completed"
    assert finished.exit is not None and finished.exit.code == 0
    assert finished.reason is None and finished.error is None
    assert isinstance(finished.duration_ms, int)
    assert finished.to_dict() == {
        "seq": finished.seq,
        "task_id": task.id,
        "timestamp_ms": finished.timestamp_ms,
        "type": "task.finished",
        "status": "completed",
        "exit": {"code": 0},
        "duration_ms": finished.duration_ms,
    }


def test_async_iteration_and_waits_that_time_out(manager: TaskManager) -> None:
    async def main() -> None:
        stream = manager.events()
        with pytest.raises(TimeoutError):  # the one timeout rule
            await stream.recv(timeout=0.01)
        with pytest.raises(TimeoutError):
            await asyncio.to_thread(stream.recv_blocking, 0.01)
        # A wait cancelled from outside loses nothing.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(stream.recv(), 0.01)

        async def job(ctx: TaskContext) -> str:
            return "ok"

        task = manager.spawn(job, background=True, description="job")
        seen: List[str] = []

        async def until_finished() -> None:
            async for item in stream:
                assert isinstance(item, Event)
                seen.append(item.type)
                if item.type == "task.finished":
                    assert item.status == "completed"
                    return

        await asyncio.wait_for(until_finished(), BOUND)
        assert seen[0] == "task.started"
        assert (await task.collect(timeout=BOUND)).result.value == "ok"

    asyncio.run(main())


def test_a_subscriber_that_falls_behind_gets_lagged(manager: TaskManager) -> None:
    lines = BUS_CAPACITY + 500
    stream = manager.events()  # never read while the task runs

    def chatty(ctx: TaskContext) -> None:
        for _ in range(lines):
            ctx.write("x\n")

    # Every line matches: one `task.watch_matched` event each.
    task = manager.spawn(chatty, watch=["^x$"], watch_interval=0, watch_max=lines + 1)
    assert task.wait_foreground_blocking(timeout=BOUND).status == "completed"

    first = stream.recv_blocking(timeout=BOUND)
    assert isinstance(first, Lagged)
    assert first.missed > 0
    assert first.to_dict() == {"item": "lagged", "missed": first.missed}
    rest = events_until_finished(stream, task.id)
    # Nothing else is lost: the missed ones and the rest make every event.
    assert first.missed + len(rest) == rest[-1].seq == lines + 2
    assert [e.seq for e in rest] == list(range(first.missed + 1, rest[-1].seq + 1))
    assert {e.type for e in rest[:-1]} == {"task.watch_matched"}
    assert rest[0].line == "x"


def test_a_watch_pattern_match_gives_an_event_and_a_notification(manager: TaskManager) -> None:
    stream = manager.events()
    task = manager.run(
        "echo starting; echo 'ERROR: disk full'; echo done",
        background=True,
        owner="s1",
        watch="^ERROR",
    )
    assert task.collect_blocking(timeout=BOUND).status == "completed"
    matched = [e for e in events_until_finished(stream, task.id) if e.type == "task.watch_matched"]
    assert [e.line for e in matched] == ["ERROR: disk full"]

    notes = [n for n in manager.notifications("s1") if n.kind == "watch_match"]
    assert len(notes) == 1
    note = notes[0]
    assert note.task_id == task.id and note.owner == "s1"
    assert note.detail is not None and "ERROR: disk full" in note.detail
    assert "ERROR: disk full" in note.text
    assert note.to_dict()["kind"] == "watch_match"
    assert manager.ack(note) == 1


def test_monitoring_options_are_checked_by_the_core(manager: TaskManager) -> None:
    with pytest.raises(InvalidArgument) as bad_regex:
        manager.run("true", watch=["("])
    assert bad_regex.value.argument == "watch"
    with pytest.raises(InvalidArgument) as short_heartbeat:
        manager.run("true", background=True, heartbeat=1)
    assert short_heartbeat.value.argument == "heartbeat"
    with pytest.raises(InvalidArgument) as zero_idle:
        manager.run("true", idle_timeout=0)
    assert zero_idle.value.argument == "idle_timeout"
    with pytest.raises(InvalidArgument) as negative:
        manager.run("true", watch=["x"], watch_interval=-1)
    assert negative.value.argument == "watch_interval"
    # Valid ones are accepted.
    task = manager.run("true", background=True, heartbeat=60, idle_timeout=30, cancel_on_stall=True)
    assert task.collect_blocking(timeout=BOUND).status == "completed"


def test_a_stalled_task_is_cancelled_when_asked(manager: TaskManager) -> None:
    stream = manager.events()
    task = manager.run(
        "echo hi; sleep 30", background=True, idle_timeout=0.2, cancel_on_stall=True
    )
    outcome = task.collect_blocking(timeout=BOUND)
    assert outcome.status == "timed_out"
    types = [e.type for e in events_until_finished(stream, task.id) if e.task_id == task.id]
    assert "task.stalled" in types


def test_blocking_iteration_ends_once_the_manager_is_gone(tmp_path: Path) -> None:
    m = TaskManager(tmp_path / "root")
    stream = m.events()
    task = m.spawn(lambda ctx: "done")
    assert task.wait_foreground_blocking(timeout=BOUND).status == "completed"
    m.shutdown_blocking()
    del task, m
    gc.collect()
    seen: List[str] = []
    reader = threading.Thread(target=lambda: seen.extend(item.to_dict()["type"] for item in stream), daemon=True)
    reader.start()
    reader.join(BOUND)
    assert not reader.is_alive()
    assert seen == ["task.started", "task.finished"]
    assert stream.closed and stream.try_recv() is None
