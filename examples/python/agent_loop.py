"""A minimal scripted agent loop (no real model) on agent_tasks.

The "model" is a fixed script of tool calls. It runs a long build in the
foreground, the user detaches it to the background, the model keeps working
and polls the build now and then, starts a research subagent (a coroutine)
in the background and steers it with messages, then collects both. Every
block between <tool_result> tags is what the model would be shown.

Run:  python examples/python/agent_loop.py   (after `pip install ./bindings-python`)
"""

from __future__ import annotations

import asyncio
from typing import Dict, List, Union

from agent_tasks import NO_TIMEOUT, Outcome, PollResult, TaskContext, TaskManager

BUILD = 'for i in 1 2 3 4 5 6 7 8; do echo "compiling unit $i"; sleep 0.25; done; echo "build ok"'


def show(tool: str, body: str) -> None:
    """Prints a tool result as the model would see it."""
    print(f'\n<tool_result name="{tool}">\n{body.rstrip()}\n</tool_result>')


def page_text(page: PollResult) -> str:
    """Metadata first, then output, so the task id can never be cut off."""
    head = f"task {page.info.id}: {page.status}, cursor {page.next_cursor}"
    if page.omitted_bytes:
        head += f", {page.omitted_bytes} bytes omitted"
    return f"{head}\n{page.text or '(no new output)'}"


def outcome_text(outcome: Outcome) -> str:
    result = outcome.result
    if result is None:
        return f"task {outcome.id}: still {outcome.status}"
    lines = [f"task {result.id}: {result.status} in {result.duration_ms} ms"]
    if result.exit is not None:
        lines.append(f"exit code: {result.exit.code}")
    if result.value is not None:
        lines.append(f"value: {result.value}")
    if result.error:
        lines.append(f"error: {result.error}")
    return "\n".join(lines)


async def research(ctx: TaskContext) -> Dict[str, Union[str, List[str]]]:
    """The subagent: works until told to wrap up, taking steering as it goes."""
    ctx.write("subagent: reading the test suite\n")
    notes: List[str] = []
    while True:
        message = await ctx.recv()
        if message is None or message == "wrap up":
            break
        notes.append(message)
        ctx.write(f"subagent: steering received: {message}\n")
        await asyncio.sleep(0.05)  # "thinking"
        ctx.write(f"subagent: looked into {message!r}\n")
    ctx.write("subagent: writing the summary\n")
    return {"summary": "the flaky test races on a temp dir", "followed": notes}


async def main() -> None:
    async with TaskManager(foreground_timeout=NO_TIMEOUT) as manager:
        # Turn 1: the model runs the build in the foreground.
        print("model: run_command(build)")
        build = manager.run(BUILD, description="build the project")
        waiter = asyncio.ensure_future(build.wait_foreground())
        done, _ = await asyncio.wait({waiter}, timeout=0.6)
        if not done:
            # It runs long: the user presses the "to background" key.
            info = manager.detach(build)
            print(f"host: detached {info.id} (output spilled to disk: {info.output.spilled})")
        outcome = await waiter
        first = manager.poll(build)
        show("run_command", f"moved to the background ({outcome.state})\n{page_text(first)}")
        cursor = first.next_cursor

        # Turn 2: the model keeps working and starts a subagent.
        print("\nmodel: (reads the README while the build runs)")
        sub = manager.spawn(research, background=True, description="research the flaky test", kind="subagent")
        show("start_subagent", f"started {sub.id} in the background")

        # Turn 3: poll the build: only what is new since the last look.
        await asyncio.sleep(0.5)
        page = manager.poll(build, cursor)
        cursor = page.next_cursor
        show("task_output", page_text(page))

        # Turn 4: steer the subagent twice, then tell it to wrap up.
        for message in ("look at test_cache first", "ignore the docs job", "wrap up"):
            manager.send(sub, message)
            print(f"model: send({sub.id}, {message!r})")

        # Turn 5: collect both (bounded waits), and show the model the results.
        for task in (build, sub):
            outcome = await manager.collect(task, timeout=30)
            rest = manager.poll(task, cursor if task is build else 0)
            show("task_collect", f"{outcome_text(outcome)}\n--- output ---\n{rest.text}")

        print("\nbackground tasks:", [(i.id, i.status) for i in manager.list()])


if __name__ == "__main__":
    asyncio.run(main())
