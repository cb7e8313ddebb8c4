"""Model-facing tools: definitions in the three shapes, and `ToolBox` calls
(dict or JSON-string arguments, typed responses, errors the model can act on)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent_tasks import InvalidArgument, TaskManager, ToolBox, ToolResponse, tool_definitions

from conftest import BOUND, wait_until

TOOLS = ["task_run", "task_list", "task_output", "task_wait", "task_cancel", "task_send"]


def output_of(answer: ToolResponse) -> str:
    """The output part of an answer's text (after the metadata)."""
    return answer.text.split("--- output ---\n", 1)[1]


def test_tool_definitions_in_three_shapes() -> None:
    openai = tool_definitions()
    assert openai == tool_definitions("openai")
    assert [d["function"]["name"] for d in openai] == TOOLS
    for d in openai:
        assert d["type"] == "function"
        assert d["function"]["description"]
        assert d["function"]["parameters"]["type"] == "object"
    run = openai[0]["function"]["parameters"]
    assert "command" in run["required"] and "timeout" in run["properties"]

    anthropic = tool_definitions("anthropic")
    assert [d["name"] for d in anthropic] == TOOLS
    assert [d["input_schema"] for d in anthropic] == [d["function"]["parameters"] for d in openai]
    mcp = tool_definitions("mcp")
    assert [d["name"] for d in mcp] == TOOLS
    assert [d["inputSchema"] for d in mcp] == [d["input_schema"] for d in anthropic]
    assert ToolBox.definitions("mcp") == mcp
    json.dumps(openai)  # plain JSON values
    with pytest.raises(InvalidArgument) as err:
        tool_definitions("gemini")  # type: ignore[arg-type]
    assert err.value.argument == "shape"


def test_task_run_in_the_foreground_finishes(manager: TaskManager) -> None:
    tools = ToolBox(manager, "s1")
    assert tools.owner == "s1"
    answer = tools.call_blocking("task_run", {"command": "echo hello", "description": "greet"})
    assert isinstance(answer, ToolResponse)
    assert not answer.is_error
    task_id = answer.json["task_id"]
    assert answer.json["result"]["status"] == "completed"
    assert answer.json["next_cursor"] == 6
    assert task_id in answer.text and "hello" in answer.text
    assert answer.text.index(task_id) < answer.text.index("hello")  # metadata first
    assert answer.to_dict() == {"text": answer.text, "json": answer.json, "is_error": False}
    assert manager.info(task_id).owner == "s1"


def test_task_run_in_the_background_then_task_output_with_a_cursor(
    manager: TaskManager, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    tools = ToolBox(manager, "s1")
    command = f"echo one; while [ ! -e '{gate}' ]; do sleep 0.01; done; echo two"
    started = tools.call_blocking("task_run", {"command": command, "background": True})
    assert not started.is_error
    task_id = started.json["task_id"]
    assert started.json["info"]["status"] == "running"
    wait_until(lambda: manager.poll(task_id).text == "one\n", what="the first line")

    first = tools.call_blocking("task_output", json.dumps({"task_id": task_id, "cursor": 0}))
    assert not first.is_error
    assert (first.json["cursor"], first.json["next_cursor"], first.json["eof"]) == (0, 4, False)
    assert output_of(first) == "one\n"

    gate.touch()
    assert manager.collect_blocking(task_id, timeout=BOUND).status == "completed"
    second = asyncio.run(tools.call("task_output", {"task_id": task_id, "cursor": first.json["next_cursor"]}))
    assert (second.json["cursor"], second.json["next_cursor"], second.json["eof"]) == (4, 8, True)
    assert output_of(second) == "two\n"

    listed = tools.call_blocking("task_list")
    assert [t["id"] for t in listed.json["tasks"]] == [task_id]


def test_an_unknown_id_is_an_error_that_lists_the_ids(manager: TaskManager) -> None:
    tools = ToolBox(manager, "s1")
    mine = tools.call_blocking("task_run", {"command": "true", "background": True}).json["task_id"]
    manager.run("true", background=True, owner="someone-else")
    answer = tools.call_blocking("task_wait", {"task_id": "process-nosuchtask", "timeout": 1})
    assert answer.is_error
    assert answer.json["error"]["code"] == "TASK_NOT_FOUND"
    assert "process-nosuchtask" in answer.text and mine in answer.text
    assert answer.to_dict()["is_error"] is True


def test_a_bad_argument_is_named(manager: TaskManager) -> None:
    tools = ToolBox(manager, "s1")
    typo = tools.call_blocking("task_run", {"command": "true", "timeot": 5})
    assert typo.is_error and typo.json["error"]["code"] == "INVALID_ARGUMENT"
    assert "`timeot`" in typo.text
    missing = tools.call_blocking("task_output", {})
    assert missing.is_error and "`task_id`" in missing.text
    wrong_type = tools.call_blocking("task_run", '{"command": "true", "timeout": "soon"}')
    assert wrong_type.is_error and "timeout" in wrong_type.text
    not_json = tools.call_blocking("task_list", "{not json")
    assert not_json.is_error and "JSON" in not_json.text
    unknown = tools.call_blocking("task_explode", {})
    assert unknown.is_error and unknown.json["error"]["code"] == "UNKNOWN_TOOL"
    assert "task_run" in unknown.text
    # What is not JSON at all is the host's mistake: an exception.
    with pytest.raises(InvalidArgument) as err:
        tools.call_blocking("task_list", {"running_only": object()})
    assert err.value.argument == "args"


def test_toolbox_settings(manager: TaskManager, tmp_path: Path) -> None:
    tools = ToolBox(manager, "s1", run_timeout=0.2, text_budget=2000, cwd=tmp_path, env={"GREETING": "hi"})
    answer = tools.call_blocking("task_run", {"command": 'echo "$GREETING from $PWD"; sleep 30'})
    assert not answer.is_error
    assert answer.json["info"]["status"] == "running"  # moved to the background
    assert f"hi from {tmp_path}" in answer.text
    cancelled = tools.call_blocking("task_cancel", {"task_id": answer.json["task_id"], "reason": "enough"})
    assert cancelled.json["info"]["status"] == "cancelled"
    with pytest.raises(InvalidArgument):
        ToolBox(manager, "s1", on_timeout="explode")
