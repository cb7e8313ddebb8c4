"""A scripted agent (no real model) that delegates work to subagents.

The host registers a `researcher` subagent (a coroutine function) with its
`ToolBox`, so the tool definitions include ``task_delegate``. The "model"
delegates three research questions in one background call, steers one,
cancels one, and waits for the third; at each idle point the host injects
the roster of open work and the pending notifications (a subagent's
answer among them) into the next turn and acknowledges them. Prints the
transcript the model would see; exits non-zero if the delegation did not go
as scripted.

Run:  python examples/python/delegation.py   (after installing the wheel)
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

from agent_tasks import TaskContext, TaskManager, ToolBox

OWNER = "session-1"


def show(label: str, text: str) -> None:
    """Prints what the model is shown."""
    print(f"\n{label}")
    for line in text.rstrip().splitlines():
        print(f"    {line}")


async def call(tools: ToolBox, name: str, args: Dict[str, Any]) -> Dict[str, Any]:
    """One tool call of the model: prints it and its answer, returns the JSON."""
    print(f"\n>>> model calls {name} {args}")
    answer = await tools.call(name, args)
    show("<<< answer", answer.text)
    if answer.is_error:
        raise SystemExit(f"{name} failed: {answer.text}")
    json: Dict[str, Any] = answer.json
    return json


async def researcher(args: Dict[str, Any], ctx: TaskContext) -> Dict[str, Any]:
    """The subagent: reads, takes one steering message (or none, when told
    to stop), and answers."""
    goal = str(args["goal"])
    ctx.write(f"researching: {goal}\n")
    hint: Optional[str] = None
    if args.get("wait_for_hint"):
        hint = await ctx.recv()  # None once cancelled
    await asyncio.sleep(0.05)  # "thinking"
    ctx.write("done\n")
    return {"goal": goal, "answer": f"found it ({hint or 'no hint'})"}


def idle_point(manager: TaskManager) -> List[str]:
    """The roster and the notifications go into the model's next turn; the
    notifications are acknowledged once shown. Returns their task ids."""
    roster = manager.roster(OWNER)
    if roster["text"]:
        show("--- roster injected into the next turn", roster["text"])
    notes = manager.notifications(OWNER)
    for note in notes:
        show("--- notification injected into the next turn", note.text)
    manager.ack(notes)
    return [note.task_id for note in notes]


async def main() -> None:
    async with TaskManager() as manager:
        tools = ToolBox(manager, OWNER)
        tools.register_agent(
            "researcher",
            "Researches one question about the code base and answers it.",
            researcher,
            parameters={
                "type": "object",
                "properties": {
                    "goal": {"type": "string", "description": "The question."},
                    "wait_for_hint": {"type": "boolean"},
                },
                "required": ["goal"],
            },
        )
        names = [d["name"] for d in tools.definitions("anthropic")]
        assert names[-1] == "task_delegate", names
        print(f"host registers {len(names)} tools: {', '.join(names)}")

        # 1. Three questions in one call, in the background.
        started = await call(tools, "task_delegate", {
            "agent": "researcher",
            "background": True,
            "tasks": [
                {"goal": "why is the cache key locale-dependent?", "wait_for_hint": True},
                {"goal": "which tests are flaky?", "wait_for_hint": True},
                {"goal": "where is the retry policy?"},
            ],
        })
        ids: List[str] = [t["task_id"] for t in started["tasks"]]
        idle_point(manager)

        # 2. The model steers the first, cancels the second, waits for the third.
        await call(tools, "task_send", {"task_id": ids[0], "message": "look at fmt.rs"})
        await call(tools, "task_cancel", {"task_id": ids[1], "reason": "not needed any more"})
        await call(tools, "task_wait", {"task_id": ids[2], "timeout": 30})

        # 3. The first one's answer comes as a notification at an idle point.
        first = await manager.collect(ids[0], timeout=30)
        assert first.result.value["answer"] == "found it (look at fmt.rs)", first.result.value
        told = idle_point(manager)
        assert ids[0] in told, told
        assert manager.roster(OWNER)["text"] == "", "nothing left open"


if __name__ == "__main__":
    asyncio.run(main())
