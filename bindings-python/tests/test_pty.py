"""PTY mode from Python: a `pty` task sees a terminal, reads what `send`
types, reacts to `resize`, is interrupted by Ctrl+C typed with
`send_keys`; bad sizes, unknown keys and resizing a task without a
terminal are refused, naming the argument."""

from __future__ import annotations

import asyncio

import pytest

from agent_tasks import InvalidArgument, TaskManager

from conftest import read_all


def test_a_pty_task_sees_a_terminal_and_one_stream(manager: TaskManager) -> None:
    task = manager.run(
        "test -t 0 && test -t 1 && echo on-a-tty; echo to-stderr >&2; stty size",
        pty=(80, 24),
        background=True,
    )
    result = task.collect_blocking(20).result
    assert result is not None and result.status == "completed"
    out = read_all(manager, task)
    assert b"on-a-tty\r\nto-stderr\r\n24 80\r\n" in out


def test_send_keys_and_resize(manager: TaskManager) -> None:
    task = manager.run(
        "trap 'echo winch $(stty size)' WINCH; trap 'echo interrupted; exit 3' INT; "
        "echo ready; read name; echo \"hello, $name\"; while :; do sleep 0.02; done",
        pty=(80, 24),
        background=True,
    )
    got = manager.wait_for_blocking(task, "^ready", timeout=20)
    task.send("world")
    task.send_keys(["enter"])
    got = manager.wait_for_blocking(task, "^hello, ", timeout=20, cursor=got["cursor"])
    assert got["line"] == "hello, world"
    manager.resize_blocking(task, 132, 43)
    got = manager.wait_for_blocking(task, "^winch ", timeout=20, cursor=got["cursor"])
    assert got["line"] == "winch 43 132"
    manager.send_keys(task, "ctrl+c")
    result = task.collect_blocking(20).result
    assert result is not None and result.status == "failed"
    assert result.exit is not None and result.exit.code == 3


def test_resize_from_asyncio(manager: TaskManager) -> None:
    async def main() -> None:
        task = manager.run(
            "trap 'echo winch $(stty size)' WINCH; echo ready; while :; do sleep 0.02; done",
            pty=(80, 24),
            background=True,
        )
        got = await manager.wait_for(task, "^ready", timeout=20)
        await task.resize(100, 30)
        got = await manager.wait_for(task, "^winch ", timeout=20, cursor=got["cursor"])
        assert got["line"] == "winch 30 100"
        await manager.cancel(task)

    asyncio.run(main())


def test_bad_input_is_refused_naming_the_argument(manager: TaskManager) -> None:
    with pytest.raises(InvalidArgument) as bad_size:
        manager.run("true", pty=(0, 24))
    assert bad_size.value.argument == "cols"
    with pytest.raises(InvalidArgument) as too_large:
        manager.run("true", pty=(80, 70_000))
    assert too_large.value.argument == "rows"
    plain = manager.run("sleep 30", interactive=True, background=True)
    with pytest.raises(InvalidArgument) as no_terminal:
        manager.resize_blocking(plain, 80, 24)
    assert no_terminal.value.argument == "id"
    with pytest.raises(InvalidArgument) as bad_key:
        manager.send_keys(plain, ["hyper+x"])
    assert bad_key.value.argument == "keys"
    manager.cancel_blocking(plain)


def test_tools_run_on_a_terminal_and_raw_text_keeps_escapes(manager: TaskManager) -> None:
    from agent_tasks import ToolBox

    tools = ToolBox(manager, "session", tty_size=(100, 30))
    answer = tools.call_blocking(
        "task_run", {"command": "test -t 1 && echo on-a-tty; stty size", "tty": True}
    )
    assert not answer.is_error, answer.text
    assert "on-a-tty" in answer.text and "30 100" in answer.text

    colour = "printf '\\033[31mred\\033[0m\\n'"
    clean = tools.call_blocking("task_run", {"command": colour})
    assert "red" in clean.text and "\x1b[31m" not in clean.text
    raw = ToolBox(manager, "session", raw_text=True).call_blocking("task_run", {"command": colour})
    assert "\x1b[31mred\x1b[0m" in raw.text

    task = manager.run(
        "trap 'echo interrupted; exit 3' INT; echo ready; while :; do sleep 0.02; done",
        pty=(80, 24),
        background=True,
        owner="session",
    )
    manager.wait_for_blocking(task, "^ready", timeout=20)
    sent = tools.call_blocking("task_send", {"task_id": task.id, "keys": ["ctrl+c"]})
    assert not sent.is_error, sent.text
    result = task.collect_blocking(20).result
    assert result is not None and result.exit is not None and result.exit.code == 3
