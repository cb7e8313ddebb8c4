"""Subagents the model delegates to, from Python: agents registered with a
ToolBox (coroutine and plain functions), their values in the model's texts
and notifications, steering and cancel through the tools, the roster."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Dict

import pytest

from agent_tasks import CapacityExceeded, InvalidArgument, TaskContext, TaskManager, ToolBox


async def researcher(args: Dict[str, Any], ctx: TaskContext) -> Dict[str, Any]:
    ctx.write(f"researching {args['goal']}\n")
    hint = await ctx.recv()
    return {"goal": args["goal"], "heard": hint}


def summariser(args: Dict[str, Any], ctx: TaskContext) -> str:
    ctx.write("summarising\n")
    return f"summary of {args['goal']}"


def broken(args: Dict[str, Any], ctx: TaskContext) -> None:
    raise RuntimeError("the broken agent gave up")


def test_delegation_steering_results_and_roster(manager: TaskManager) -> None:
    asyncio.run(_delegation_steering_results_and_roster(manager))


async def _delegation_steering_results_and_roster(manager: TaskManager) -> None:
    tools = ToolBox(manager, "s")
    assert all(d["function"]["name"] != "task_delegate" for d in tools.definitions())
    tools.register_agent("researcher", "Researches one question.", researcher)
    tools.register_agent(
        "summariser",
        "Summarises.",
        summariser,
        parameters={
            "type": "object",
            "properties": {"goal": {"type": "string"}, "style": {"type": "string"}},
            "required": ["goal"],
        },
    )
    tools.register_agent("broken", "Fails.", broken)
    names = [d["name"] for d in tools.definitions("anthropic")]
    assert names[-1] == "task_delegate"
    assert "task_delegate" not in [d["name"] for d in ToolBox.definitions("anthropic")]

    started = await tools.call(
        "task_delegate",
        {"agent": "researcher", "background": True, "tasks": [{"goal": "a"}, {"goal": "b"}]},
    )
    assert not started.is_error, started.text
    ids = [t["task_id"] for t in started.json["tasks"]]
    assert len(ids) == 2 and all(i.startswith("agent-") for i in ids)

    roster = manager.roster("s")
    assert [item["id"] for item in roster["items"]] == list(reversed(ids))
    assert roster["items"][0]["agent"] == "researcher"
    assert roster["text"].startswith("Open background work (2):")

    sent = await tools.call("task_send", {"task_id": ids[0], "message": "look at the lexer"})
    assert not sent.is_error, sent.text
    waited = await tools.call("task_wait", {"task_id": ids[0], "timeout": 30})
    assert "status: completed" in waited.text, waited.text
    assert "look at the lexer" in waited.text, waited.text

    cancelled = await tools.call("task_cancel", {"task_id": ids[1], "reason": "enough"})
    assert "status: cancelled" in cancelled.text, cancelled.text
    assert manager.roster("s")["text"] == ""

    quick = await tools.call(
        "task_delegate", {"agent": "summariser", "tasks": [{"goal": "the logs", "style": "short"}]}
    )
    assert "summary of the logs" in quick.text, quick.text

    failed = await tools.call("task_delegate", {"agent": "broken", "tasks": [{"goal": "x"}]})
    assert "status: failed" in failed.text and "the broken agent gave up" in failed.text

    # Unseen by the model: the notification carries the value and the source.
    bg = await tools.call(
        "task_delegate", {"agent": "summariser", "background": True, "tasks": [{"goal": "z"}]}
    )
    task_id = bg.json["tasks"][0]["task_id"]
    deadline = time.monotonic() + 30
    while True:
        notes = [n for n in manager.notifications("s") if n.task_id == task_id]
        if notes or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert notes, "no notification"
    assert notes[0].value == "summary of z"
    assert notes[0].source == {"agent": "summariser", "arguments": {"goal": "z"}}
    assert "answers: summariser with" in notes[0].text


def test_bad_agents_and_delegations_are_refused(manager: TaskManager) -> None:
    tools = ToolBox(manager, "s")
    with pytest.raises(InvalidArgument):
        tools.register_agent("Bad Name", "x", summariser)
    with pytest.raises(InvalidArgument):
        tools.register_agent("x", "x", summariser, parameters={"type": "object", "properties": {}})
    with pytest.raises(InvalidArgument):
        tools.register_agent("x", "x", "not callable")  # type: ignore[arg-type]
    tools.register_agent("summariser", "Summarises.", summariser)
    answer = tools.call_blocking("task_delegate", {"agent": "nobody", "tasks": [{"goal": "x"}]})
    assert answer.is_error and "the agents are: summariser" in answer.text
    answer = tools.call_blocking("task_delegate", {"agent": "summariser", "tasks": [{}]})
    assert answer.is_error and "tasks[0].goal" in answer.text


async def sleeper(args: Dict[str, Any], ctx: TaskContext) -> None:
    await ctx.wait_cancelled()


def test_max_running_of_kind_caps_racing_delegations(tmp_path: "os.PathLike[str]") -> None:
    asyncio.run(_max_running_of_kind_caps_racing_delegations(os.fspath(tmp_path)))


async def _max_running_of_kind_caps_racing_delegations(root: str) -> None:
    async with TaskManager(root=root, max_running_of_kind={"agent": 2}) as manager:
        tools = ToolBox(manager, "s")
        tools.register_agent("sleeper", "Sleeps until stopped.", sleeper)
        answers = await asyncio.gather(
            *(
                tools.call(
                    "task_delegate",
                    {"agent": "sleeper", "background": True, "tasks": [{"goal": f"g{i}"}]},
                )
                for i in range(5)
            )
        )
        started = [a for a in answers if not a.is_error]
        assert len(started) == 2, "\n---\n".join(a.text for a in answers)
        for refused in (a for a in answers if a.is_error):
            assert "agent" in refused.text, refused.text
        assert len(manager.list(active_only=True)) == 2
        # Other kinds are not capped by it.
        other = manager.run("sleep 30", background=True)
        assert len(manager.list(active_only=True)) == 3
        # A direct spawn of the capped kind is refused too.
        with pytest.raises(CapacityExceeded):
            manager.spawn(sleeper_fn, kind="agent", background=True)
        for info in manager.list(active_only=True):
            await manager.cancel(info.id)
        assert other.info().status == "cancelled"


def sleeper_fn(ctx: TaskContext) -> None:
    ctx.wait_cancelled_blocking()


@pytest.mark.parametrize(
    "caps", [{"agent": -1}, {"agent": "two"}, {1: 2}, ["agent"], "agent=2"]
)
def test_max_running_of_kind_refuses_what_is_not_a_mapping_of_caps(
    tmp_path: "os.PathLike[str]", caps: Any
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        TaskManager(root=os.fspath(tmp_path), max_running_of_kind=caps)
    assert caught.value.argument == "max_running_of_kind"
