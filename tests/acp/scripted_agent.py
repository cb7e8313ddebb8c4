"""A scripted ACP agent for agent-tasks' tests, built on the official Python
SDK (`agent-client-protocol` on PyPI): the framing, the schema and the
capability negotiation are the SDK's, not this project's.

Each prompt is a small script; its first word picks what the agent does:

* anything else: a thought, a tool call (pending -> completed), a plan, and
  the message `Echo: <prompt>`;
* `hold`: says `holding` (a whole line), then waits until the file `release` appears in the
  session directory (turn ends `end_turn`, message `released`) or the turn
  is cancelled (message `cancel received`, stop reason `cancelled`);
* `permission`: asks permission for `Delete the build directory` and says
  what it got (`permission: selected <option>` or `permission: cancelled`);
* `terminal <command line>`: runs it in a client terminal (`sh -c`), waits
  for it, reads its output, releases it, and says
  `terminal exit=<code> output=<text>`;
* `read <path>` / `write <path> <text>`: file requests to the client; says
  `read ok: <text>`, `write ok` or `<verb> refused: <error>`;
* `crash`: says `crashing`, then the process exits with code 3 mid-turn;
* `garbage`: writes a line that is not JSON-RPC to stdout, then waits;
* `story`: a turn as a real coding agent streams it: the message `Let me
  look.` in two chunks, a tool call ``Run `ls` `` (execute) whose identical
  `in_progress` update comes three times, a permission request for it, its
  completion with the command's output (`a.txt`, `b.txt`) and a file
  location (`<cwd>/a.txt:1`), an edit tool call with a diff of `notes.txt`
  (`two` -> `2`), then the message `There are two files.`;
* `messages`: two messages told apart only by their `messageId` (`First.`,
  `Second.`), so the last one is the final message;
* `think`: says `Let me look.` (no newline), thinks (a thought chunk), then
  waits, as `hold` does, for the file `release` (message `Done.`);
* `quit <code>`: ends the turn (message `quitting`), then, between turns,
  exits with `<code>` as soon as the file `quit` appears in the session
  directory; `quit close` then closes its stdout instead and hangs (it
  exits only when signalled).
"""

import asyncio
import os
import sys
import time
from typing import Any

import acp
from acp import (
    Agent,
    InitializeResponse,
    NewSessionResponse,
    PromptResponse,
    RequestError,
    plan_entry,
    start_tool_call,
    text_block,
    tool_content,
    tool_diff_content,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
    update_tool_call,
)
from acp.schema import AgentMessageChunk, PermissionOption, ToolCallLocation, ToolCallUpdate


class Scripted(Agent):
    def __init__(self) -> None:
        self.conn: Any = None
        self.cwd = "/"
        self.cancelled: dict[str, asyncio.Event] = {}
        self.quitting: Any = None

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    async def initialize(self, protocol_version: int, client_capabilities: Any = None,
                         client_info: Any = None, **kwargs: Any) -> InitializeResponse:
        return InitializeResponse(protocol_version=acp.PROTOCOL_VERSION)

    async def new_session(self, cwd: str, mcp_servers: Any = None, **kwargs: Any) -> NewSessionResponse:
        self.cwd = cwd
        names = [getattr(s, "name", "?") for s in (mcp_servers or [])]
        sys.stderr.write(f"scripted agent: session in {cwd}, mcp servers {names}\n")
        sys.stderr.flush()
        return NewSessionResponse(session_id="s-1")

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        event = self.cancelled.get(session_id)
        if event is not None:
            event.set()

    async def say(self, session_id: str, text: str) -> None:
        await self.conn.session_update(session_id, update_agent_message_text(text))

    async def wait_for_release(self, cancelled: asyncio.Event) -> bool:
        """Waits for the file `release` in the session directory (removed
        then): True, or False once the turn is cancelled."""
        release = os.path.join(self.cwd, "release")
        while not os.path.exists(release):
            if cancelled.is_set():
                return False
            await asyncio.sleep(0.02)
        os.remove(release)
        return True

    async def story(self, session_id: str) -> None:
        update = self.conn.session_update
        await self.say(session_id, "Let me ")
        await self.say(session_id, "look.")
        await update(session_id, start_tool_call("t2", "Run `ls`", kind="execute", status="pending"))
        for _ in range(3):
            await update(session_id, update_tool_call("t2", status="in_progress"))
        await self.conn.request_permission(
            session_id,
            ToolCallUpdate(tool_call_id="t2", title="Run `ls`", kind="execute"),
            [
                PermissionOption(option_id="yes", name="Allow once", kind="allow_once"),
                PermissionOption(option_id="no", name="Reject", kind="reject_once"),
            ],
        )
        await update(
            session_id,
            update_tool_call(
                "t2",
                status="completed",
                content=[tool_content(text_block("a.txt\nb.txt\n"))],
                locations=[ToolCallLocation(path=os.path.join(self.cwd, "a.txt"), line=1)],
            ),
        )
        # A repeat of the same state adds nothing.
        await update(session_id, update_tool_call("t2", status="completed"))
        await update(
            session_id,
            start_tool_call(
                "t3",
                "Edit notes.txt",
                kind="edit",
                status="completed",
                content=[tool_diff_content("notes.txt", "one\n2\nthree\n", "one\ntwo\nthree\n")],
            ),
        )
        await self.say(session_id, "There are two files.")

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        text = "".join(getattr(block, "text", "") for block in prompt).strip()
        word, _, rest = text.partition(" ")
        cancelled = self.cancelled.setdefault(session_id, asyncio.Event())
        cancelled.clear()

        if word == "hold":
            await self.say(session_id, "holding\n")
            release = os.path.join(self.cwd, "release")
            while not os.path.exists(release):
                if cancelled.is_set():
                    await self.say(session_id, "cancel received")
                    return PromptResponse(stop_reason="cancelled")
                await asyncio.sleep(0.02)
            os.remove(release)
            await self.say(session_id, "released")
        elif word == "story":
            await self.story(session_id)
        elif word == "messages":
            for message_id, text in (("m1", "First."), ("m2", "Second.")):
                chunk = AgentMessageChunk(
                    session_update="agent_message_chunk", content=text_block(text), message_id=message_id
                )
                await self.conn.session_update(session_id, chunk)
        elif word == "think":
            await self.say(session_id, "Let me look.")
            await self.conn.session_update(session_id, update_agent_thought_text("hmm"))
            if not await self.wait_for_release(cancelled):
                await self.say(session_id, "cancel received")
                return PromptResponse(stop_reason="cancelled")
            await self.say(session_id, "Done.")
        elif word == "permission":
            outcome = await self.conn.request_permission(
                session_id,
                ToolCallUpdate(tool_call_id="perm-1", title="Delete the build directory", kind="delete"),
                [
                    PermissionOption(option_id="yes", name="Allow once", kind="allow_once"),
                    PermissionOption(option_id="always", name="Always allow", kind="allow_always"),
                    PermissionOption(option_id="no", name="Reject", kind="reject_once"),
                ],
            )
            chosen = outcome.outcome
            if getattr(chosen, "outcome", "") == "selected":
                await self.say(session_id, f"permission: selected {chosen.option_id}")
            else:
                await self.say(session_id, "permission: cancelled")
        elif word == "terminal":
            term = await self.conn.create_terminal(
                session_id, command="sh", args=["-c", rest], output_byte_limit=4096
            )
            exit_status = await self.conn.wait_for_terminal_exit(session_id, term.terminal_id)
            out = await self.conn.terminal_output(session_id, term.terminal_id)
            await self.conn.release_terminal(session_id, term.terminal_id)
            await self.say(
                session_id,
                f"terminal {term.terminal_id} exit={exit_status.exit_code} output={out.output.strip()}",
            )
        elif word == "read":
            try:
                got = await self.conn.read_text_file(session_id, rest)
                await self.say(session_id, f"read ok: {got.content}")
            except RequestError as e:
                await self.say(session_id, f"read refused: {e}")
        elif word == "write":
            path, _, content = rest.partition(" ")
            try:
                await self.conn.write_text_file(session_id, path, content)
                await self.say(session_id, "write ok")
            except RequestError as e:
                await self.say(session_id, f"write refused: {e}")
        elif word == "crash":
            await self.say(session_id, "crashing")
            await asyncio.sleep(0.05)
            os._exit(3)
        elif word == "quit":
            quit_file = os.path.join(self.cwd, "quit")

            async def quit_when_told() -> None:
                while not os.path.exists(quit_file):
                    await asyncio.sleep(0.02)
                if rest == "close":
                    os.close(1)
                    time.sleep(3600)
                os._exit(int(rest or "0"))

            self.quitting = asyncio.ensure_future(quit_when_told())
            await self.say(session_id, "quitting")
        elif word == "garbage":
            os.write(1, b"this is not json-rpc\n")
            await asyncio.Event().wait()
        else:
            await self.conn.session_update(session_id, update_agent_thought_text(f"thinking about {text}"))
            await self.conn.session_update(
                session_id, start_tool_call("t1", "Inspect the repository", kind="read", status="pending")
            )
            await self.conn.session_update(session_id, update_tool_call("t1", status="completed"))
            await self.conn.session_update(
                session_id,
                update_plan([plan_entry("look", status="completed"), plan_entry("answer", status="in_progress")]),
            )
            await self.say(session_id, f"Echo: {text}")
        return PromptResponse(stop_reason="end_turn")


async def main() -> None:
    await acp.run_agent(Scripted())


if __name__ == "__main__":
    asyncio.run(main())
