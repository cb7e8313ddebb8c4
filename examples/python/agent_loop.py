"""A minimal scripted agent loop (no real model) on agent_tasks.

The host registers the ready-made tools (`tool_definitions`) and executes
the model's tool calls with a `ToolBox`. The "model" is a fixed script of
tool calls: it runs a build that outlives its 1 s foreground wait, so the
build moves to the background and keeps running; it looks at its tasks and
reads the new output with a cursor. Meanwhile the host runs a research
subagent (a coroutine) in the background and steers it with messages. At
its idle point the host waits for the build's `task.finished` event, then
injects the pending notifications into the conversation and acknowledges
them. Every block between <tool_result> or <notification> tags is what the
model would be shown.

Run:  python examples/python/agent_loop.py   (after `pip install ./bindings-python`)
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Union

from agent_tasks import Event, TaskContext, TaskManager, ToolBox, tool_definitions

OWNER = "session-1"
BUILD = (
    'for i in 1 2 3 4 5 6; do echo "   Compiling crate-$i v0.1.0"; sleep 0.3; done; '
    "echo 'warning: unused variable `x`'; echo '    Finished dev profile'"
)


def show(tag: str, name: str, body: str) -> None:
    """Prints what the model is shown."""
    print(f'\n<{tag} name="{name}">\n{body.rstrip()}\n</{tag}>')


async def call(tools: ToolBox, name: str, args: Dict[str, Any]) -> Dict[str, Any]:
    """One tool call of the model: prints it and its answer, returns the JSON."""
    print(f"\n>>> model calls {name} {args}")
    answer = await tools.call(name, args)
    show("tool_result", name, answer.text)
    json: Dict[str, Any] = answer.json
    return json


async def research(ctx: TaskContext) -> Dict[str, Union[str, List[str]]]:
    """The subagent: works until told to wrap up, taking steering as it goes."""
    ctx.write("subagent: reading the test suite\n")
    notes: List[str] = []
    while True:
        message = await ctx.recv()
        if message is None or message == "wrap up":
            break
        notes.append(message)
        ctx.write(f"subagent: looked into {message!r}\n")
        await asyncio.sleep(0.05)  # "thinking"
    return {"summary": "the flaky test races on a temp dir", "followed": notes}


async def main() -> None:
    async with TaskManager() as manager:
        tools = ToolBox(manager, OWNER, run_timeout=1)
        names = [d["name"] for d in tool_definitions("anthropic")]
        print(f"host registers {len(names)} tools: {', '.join(names)}")
        events = manager.events()

        # 1. A build that takes longer than the 1 s foreground wait: it moves
        #    to the background and the answer shows the output so far.
        answer = await call(tools, "task_run", {"command": BUILD, "description": "cargo build (simulated)"})
        build_id: str = answer["task_id"]
        cursor: int = answer["next_cursor"]

        # 2. The host starts a subagent for the same session and steers it.
        sub = manager.spawn(research, background=True, owner=OWNER, kind="subagent", description="research the flaky test")
        for message in ("look at test_cache first", "wrap up"):
            manager.send(sub, message)
        print(f"\nhost: started {sub.id} and sent it two messages")

        # 3. The model works on something else, looks at its tasks, then
        #    reads only the build's new output (from the cursor).
        await asyncio.sleep(0.5)
        await call(tools, "task_list", {})
        await call(tools, "task_output", {"task_id": build_id, "cursor": cursor})

        # 4. The host's idle point: wait (bounded) for the build to end, then
        #    inject every pending notification of the session and ack it.
        async def build_finished() -> None:
            async for item in events:
                if isinstance(item, Event) and item.task_id == build_id and item.type == "task.finished":
                    return

        await asyncio.wait_for(build_finished(), timeout=30)
        await sub.collect(timeout=30)
        for note in manager.notifications(OWNER):
            show("notification", note.kind, note.text)
            manager.ack(note)
        assert manager.notifications(OWNER) == []

        # 5. The model greps the finished log for warnings.
        await call(tools, "task_output", {"task_id": build_id, "filter": "^warning"})

        # 6. A mistake: the answer names the problem and the ids that exist.
        await call(tools, "task_wait", {"task_id": "process-nosuchtask"})


if __name__ == "__main__":
    asyncio.run(main())
