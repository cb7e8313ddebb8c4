"""ACP agents from Python (`run_acp`), against the scripted agent built on
the official ACP Python SDK (`tests/acp/scripted_agent.py` at the repository
root). `scripts/test.sh` installs the SDK and sets AGENT_TASKS_ACP_PYTHON;
without it these tests fail, never skip."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Dict, List

import pytest

from agent_tasks import InvalidArgument, PermissionAnswer, TaskManager, run_acp

AGENT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "acp", "scripted_agent.py")


def agent_python() -> str:
    python = os.environ.get("AGENT_TASKS_ACP_PYTHON")
    if not python:
        pytest.fail(
            "AGENT_TASKS_ACP_PYTHON is not set: it must name a python with the ACP SDK "
            "(python3 -m venv target/acp-venv && target/acp-venv/bin/pip install "
            "agent-client-protocol==0.12.1); scripts/test.sh sets it up"
        )
    return python


async def line(manager: TaskManager, task: Any, pattern: str) -> str:
    got = await manager.wait_for(task, pattern, timeout=30)
    assert got["state"] == "matched", got
    return str(got["line"])


def permission_answer(manager: TaskManager, permissions: Any) -> str:
    async def run() -> str:
        task = run_acp(manager, [agent_python(), AGENT], "permission", permissions=permissions)
        said = await line(manager, task, "^permission: ")
        await manager.cancel(task, "done")
        return said

    return asyncio.run(run())


def test_goal_turns_and_follow_ups(manager: TaskManager) -> None:
    async def run() -> None:
        task = run_acp(manager, [agent_python(), AGENT], "hello from python")
        await line(manager, task, r"^\[turn 1 ended: end_turn\]$")
        text = manager.poll(task, 0, 1 << 20).text
        assert "[turn 1] prompt:\n> hello from python" in text
        notes = [n for n in manager.notifications() if n.id == f"{task.id}.t1"]
        for _ in range(2000):
            if notes:
                break
            await asyncio.sleep(0.01)
            notes = [n for n in manager.notifications() if n.id == f"{task.id}.t1"]
        assert notes and notes[0].kind == "turn_ended"
        assert "Echo: hello from python" in notes[0].text
        manager.send(task, "and again")
        await line(manager, task, r"^\[turn 2 ended")
        info = await manager.cancel(task, "done")
        assert info.status == "cancelled"
        assert info.kind == "acp"

    asyncio.run(run())


def test_permission_policies(manager: TaskManager) -> None:
    assert permission_answer(manager, "allow") == "permission: selected yes"
    assert permission_answer(manager, "deny") == "permission: selected no"
    assert permission_answer(manager, None) == "permission: selected no"
    asked: List[Dict[str, Any]] = []

    def choose(request: Dict[str, Any]) -> PermissionAnswer:
        asked.append(request)
        return "always"

    assert permission_answer(manager, choose) == "permission: selected always"
    assert asked[0]["title"] == "Delete the build directory"
    assert [o["kind"] for o in asked[0]["options"]] == ["allow_once", "allow_always", "reject_once"]
    assert permission_answer(manager, lambda request: None) == "permission: cancelled"

    def broken(request: Dict[str, Any]) -> PermissionAnswer:
        raise RuntimeError("no")

    # A callback that raises denies.
    assert permission_answer(manager, broken) == "permission: selected no"


def test_bad_arguments_name_the_argument(manager: TaskManager) -> None:
    with pytest.raises(InvalidArgument, match="permissions"):
        run_acp(manager, [agent_python(), AGENT], "goal", permissions="maybe")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="files"):
        run_acp(manager, [agent_python(), AGENT], "goal", files="everywhere")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="goal"):
        run_acp(manager, [agent_python(), AGENT], "  ")


def test_the_model_delegates_to_a_registered_acp_agent(manager: TaskManager) -> None:
    from agent_tasks import ToolBox

    async def run() -> None:
        tools = ToolBox(manager, "s1")
        tools.register_acp_agent("coder", "A scripted coding agent.", [agent_python(), AGENT])
        names = [d["function"]["name"] for d in tools.definitions()]
        assert names[-1] == "task_delegate"
        started = await tools.call(
            "task_delegate", {"agent": "coder", "tasks": [{"goal": "hello from a model"}]}
        )
        assert not started.is_error, started.text
        task_id = started.json["tasks"][0]["task_id"]
        assert manager.info(task_id).kind == "agent"
        await line(manager, task_id, r"^\[turn 1 ended: end_turn\]$")
        assert "> hello from a model" in manager.poll(task_id, 0, 1 << 20).text
        roster = manager.roster("s1")
        assert task_id in roster["text"], roster
        stopped = await tools.call("task_cancel", {"task_id": task_id})
        assert not stopped.is_error, stopped.text

    asyncio.run(run())


def test_eof_ends_an_acp_session_completed(manager: TaskManager) -> None:
    async def run() -> None:
        task = run_acp(manager, [agent_python(), AGENT], "hello from python")
        await line(manager, task, r"^\[turn 1 ended: end_turn\]$")
        manager.send(task, eof=True)
        finished = await manager.collect(task, timeout=60)
        assert finished.status == "completed", finished.result.error
        value = finished.result.value
        assert isinstance(value, dict)
        assert value["turns"] == 1
        assert value["message"] == "Echo: hello from python"

    asyncio.run(run())


def test_handshake_and_message_bounds(manager: TaskManager) -> None:
    async def run() -> None:
        # An agent that reads every request and answers none.
        silent = run_acp(manager, ["sh", "-c", "cat >/dev/null"], "hello", handshake_timeout=0.3)
        finished = await manager.collect(silent, timeout=30)
        assert finished.status == "failed"
        error = finished.result.error or ""
        assert "did not answer `initialize` within the handshake timeout" in error, error

        # One line past the bound, without a newline.
        flood = run_acp(
            manager,
            ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; cat >/dev/null"],
            "hello",
            max_message_bytes=4096,
        )
        finished = await manager.collect(flood, timeout=30)
        assert finished.status == "failed"
        error = finished.result.error or ""
        assert "longer than the limit of 4 KiB" in error, error

        with pytest.raises(InvalidArgument) as caught:
            run_acp(manager, ["sh"], "hello", max_message_bytes=10)
        assert caught.value.argument == "max_message_bytes"

    asyncio.run(run())
