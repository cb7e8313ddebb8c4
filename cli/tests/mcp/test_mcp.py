"""End to end: `agent-tasks mcp` driven by the official MCP Python SDK
(`mcp` on PyPI), a client this project did not write.

It starts the server on a fresh durable root, lists the tools, runs a
command that moves to the background on its timeout, reads its output by
cursor, waits for it, cancels another task, sends input (refused: task_run
commands have no stdin), checks that a completion notice comes in a later
answer exactly once (and as a logging message), sends malformed calls, and
checks that a disconnect stops the server's tasks cleanly. Every root is
made under a folder of the test, removed when it ends, and a server with a
private temporary root leaves nothing behind when it ends (disconnect,
SIGTERM, SIGHUP, SIGINT).

The binary is $AGENT_TASKS_BIN, else target/debug/agent-tasks
(scripts/test.sh builds it first).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import anyio
import jsonschema
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

REPO = Path(__file__).resolve().parents[3]
BIN = os.environ.get("AGENT_TASKS_BIN", str(REPO / "target" / "debug" / "agent-tasks"))
MARKER = "--- background task notifications ---"
TOOLS = {"task_run", "task_list", "task_output", "task_wait", "task_cancel", "task_send"}


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def notices_in(text: str) -> str:
    """The notifications block appended to an answer ('' if none)."""
    return text.split(MARKER, 1)[1] if MARKER in text else ""


async def with_session(
    root: Path,
    body: Callable[[ClientSession, list[Any]], Awaitable[None]],
    *extra: str,
) -> None:
    params = StdioServerParameters(
        command=BIN,
        args=["mcp", "--root", str(root), "--owner", "e2e", *extra],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    logs: list[Any] = []

    async def on_log(params: Any) -> None:
        logs.append(params)

    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, logging_callback=on_log) as session:
            await session.initialize()
            await body(session, logs)


# The folder of the running test: `run` makes its root there (see the
# autouse fixture below, which removes it).
_folder: list[Path] = []


@pytest.fixture(autouse=True)
def test_folder() -> Iterator[Path]:
    """A folder for the test's roots, removed however the test ends."""
    folder = Path(tempfile.mkdtemp(prefix="agent-tasks-mcp-"))
    _folder.append(folder)
    try:
        yield folder
    finally:
        _folder.remove(folder)
        shutil.rmtree(folder, ignore_errors=True)


def run(body: Callable[[ClientSession, list[Any]], Awaitable[None]], *extra: str) -> Path:
    root = _folder[-1] / "root"
    anyio.run(with_session, root, body, *extra)
    return root


async def call(session: ClientSession, name: str, args: dict[str, Any]) -> Any:
    return await session.call_tool(name, args, read_timeout_seconds=120)


def test_tools_are_listed_with_object_schemas() -> None:
    async def body(session: ClientSession, _logs: list[Any]) -> None:
        listed = await session.list_tools()
        names = {t.name for t in listed.tools}
        assert names == TOOLS
        for tool in listed.tools:
            assert tool.description
            assert tool.input_schema["type"] == "object"
            assert isinstance(tool.input_schema.get("properties"), dict)
            # Each schema is a valid JSON Schema of its own draft.
            validator = jsonschema.validators.validator_for(tool.input_schema)
            validator.check_schema(tool.input_schema)
        run_tool = next(t for t in listed.tools if t.name == "task_run")
        assert "command" in run_tool.input_schema["required"]
        # It accepts a call the server takes, and refuses what it refuses.
        run_schema = jsonschema.validators.validator_for(run_tool.input_schema)(run_tool.input_schema)
        assert run_schema.is_valid({"command": "echo hi", "timeout": 5})
        assert not run_schema.is_valid({"command": "echo hi", "colour": "blue"})
        assert not run_schema.is_valid({"timeout": 5})

    run(body)


def test_detach_cursor_wait_cancel_send_and_one_notice() -> None:
    async def body(session: ClientSession, logs: list[Any]) -> None:
        # A command that outlives its foreground timeout moves to the background.
        ran = await call(
            session,
            "task_run",
            {"command": "echo one; sleep 2; echo two", "timeout": 0.5, "description": "slow"},
        )
        assert not ran.is_error, text_of(ran)
        slow = ran.structured_content["task_id"]
        assert slow in text_of(ran)
        assert ran.structured_content["info"]["status"] == "running"

        # Output by cursor: from 0, then only what is new.
        page = await call(session, "task_output", {"task_id": slow, "cursor": 0})
        assert not page.is_error, text_of(page)
        assert "one" in text_of(page)
        cursor = page.structured_content["next_cursor"]
        assert cursor >= len("one\n")

        # Steering: a command started with stdin open reads what is sent.
        reader = await call(
            session, "task_run", {"command": "read line; echo got $line", "background": True, "stdin": True}
        )
        reader_id = reader.structured_content["task_id"]
        typed = await call(session, "task_send", {"task_id": reader_id, "message": "hello\n"})
        assert not typed.is_error, text_of(typed)
        read_back = await call(session, "task_wait", {"task_id": reader_id, "timeout": 60})
        assert read_back.structured_content["info"]["status"] == "completed", text_of(read_back)
        assert "got hello" in text_of(read_back)

        # A second task, cancelled; and input for it, refused (no stdin).
        bg = await call(session, "task_run", {"command": "sleep 1000", "background": True})
        other = bg.structured_content["task_id"]
        sent = await call(session, "task_send", {"task_id": other, "message": "hello\n"})
        assert sent.is_error, text_of(sent)
        assert "cannot receive messages" in text_of(sent)
        cancelled = await call(session, "task_cancel", {"task_id": other, "reason": "not needed"})
        assert not cancelled.is_error, text_of(cancelled)
        assert cancelled.structured_content["info"]["status"] == "cancelled"

        # Wait for the slow one; then its new output from the cursor.
        waited = await call(session, "task_wait", {"task_id": slow, "timeout": 60})
        assert not waited.is_error, text_of(waited)
        assert waited.structured_content["ended"] is True
        assert waited.structured_content["info"]["status"] == "completed"
        rest = await call(session, "task_output", {"task_id": slow, "cursor": cursor})
        assert rest.structured_content["cursor"] == cursor
        assert rest.structured_content["next_cursor"] == cursor + len("two\n")
        assert "two" in text_of(rest)

        # Its end was shown by task_wait: no notice repeats it (told once).
        # A background task nobody waits for: its notice comes in a later
        # answer, exactly once, and as a logging message.
        unseen = await call(session, "task_run", {"command": "echo unseen-done", "background": True})
        quiet = unseen.structured_content["task_id"]
        answers = [text_of(x) for x in (waited, rest)]
        deadline = time.monotonic() + 60
        while sum(quiet in notices_in(a) for a in answers) == 0 and time.monotonic() < deadline:
            answers.append(text_of(await call(session, "task_list", {})))
            await anyio.sleep(0.1)
        for _ in range(2):
            answers.append(text_of(await call(session, "task_list", {})))
        assert sum(quiet in notices_in(a) for a in answers) == 1, answers
        assert not any(quiet in notices_in(a) for a in answers[-2:])
        assert not any(slow in notices_in(a) for a in answers), answers

        deadline = time.monotonic() + 30
        while not any(quiet in json.dumps(getattr(p, "data", None)) for p in logs):
            assert time.monotonic() < deadline, logs
            await anyio.sleep(0.05)

    run(body)


def test_malformed_calls_are_error_results_and_the_server_goes_on() -> None:
    async def body(session: ClientSession, _logs: list[Any]) -> None:
        bad = [
            ("no_such_tool", {}),
            ("task_output", {}),  # task_id missing
            ("task_output", {"task_id": "process-n0such0000"}),
            ("task_output", {"task_id": "../../etc/passwd"}),
            ("task_run", {"command": "true", "colour": "blue"}),  # unknown field
            ("task_run", {"command": 42}),  # wrong type
            ("task_wait", {"task_id": "x", "timeout": "soon"}),
        ]
        for name, args in bad:
            answer = await call(session, name, args)
            assert answer.is_error, (name, args, text_of(answer))
            assert text_of(answer).startswith("error:"), text_of(answer)
            assert "error" in answer.structured_content
        ok = await call(session, "task_run", {"command": "echo still-here"})
        assert not ok.is_error, text_of(ok)
        assert "still-here" in text_of(ok)

    run(body)


def test_a_disconnect_stops_the_tasks_cleanly() -> None:
    ids: list[str] = []

    async def body(session: ClientSession, _logs: list[Any]) -> None:
        bg = await call(session, "task_run", {"command": "sleep 1000", "background": True})
        ids.append(bg.structured_content["task_id"])

    root = run(body)
    manifest = root / "tasks" / ids[0] / "manifest.json"
    deadline = time.monotonic() + 60
    while json.loads(manifest.read_text())["info"]["status"] == "running":
        assert time.monotonic() < deadline, "the task was not stopped"
        time.sleep(0.05)
    info = json.loads(manifest.read_text())["info"]
    assert info["status"] == "cancelled", info
    assert info["cancel_reason"]["kind"] == "shutdown", info


def test_keep_alive_lets_running_tasks_finish_after_a_disconnect() -> None:
    ids: list[str] = []

    async def body(session: ClientSession, _logs: list[Any]) -> None:
        bg = await call(session, "task_run", {"command": "sleep 0.5; echo kept", "background": True})
        ids.append(bg.structured_content["task_id"])

    root = run(body, "--keep-alive")
    manifest = root / "tasks" / ids[0] / "manifest.json"
    deadline = time.monotonic() + 60
    while json.loads(manifest.read_text())["info"]["status"] == "running":
        assert time.monotonic() < deadline, "the task never ended"
        time.sleep(0.05)
    assert json.loads(manifest.read_text())["info"]["status"] == "completed"
    assert (root / "tasks" / ids[0] / "output.log").read_text() == "kept\n"


@pytest.mark.parametrize("end", ["disconnect", "SIGTERM", "SIGHUP", "SIGINT"])
def test_a_private_temporary_root_goes_with_the_server(test_folder: Path, end: str) -> None:
    tmp = test_folder / "tmp"
    tmp.mkdir()
    server = subprocess.Popen(
        [BIN, "mcp", "--owner", "e2e"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(tmp)},
    )
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.startswith("agent-tasks-") for p in tmp.iterdir()):
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "the server made no temporary root"
            time.sleep(0.02)
        # A session that started: initialize, answered, then initialized.
        assert server.stdin is not None and server.stdout is not None
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-03-26",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        }
        server.stdin.write(json.dumps(initialize).encode() + b"\n")
        server.stdin.flush()
        assert json.loads(server.stdout.readline())["id"] == 1
        server.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        server.stdin.flush()
        if end != "disconnect":
            server.send_signal(getattr(signal, end))
        # (Closes stdin: the client's disconnect.)
        _, err = server.communicate(timeout=60)
        assert server.returncode == 0, err
        assert list(tmp.iterdir()) == [], "the temporary root was removed"
    finally:
        server.kill()
        server.wait()
