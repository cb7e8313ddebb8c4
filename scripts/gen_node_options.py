#!/usr/bin/env python3
"""The options of the Node binding's calls, in one table (SPEC below): their
names, the kind of value each takes and its doc. From it come

- bindings-node/options.js: each call's options and their kinds, which the
  wrapper (index.js) checks, with the core's "did you mean" hint, and the
  core's name of each option the core reads (`timeoutMs` is `timeout`, in
  milliseconds: the native side reads those through the core's
  `parse_options`, which checks their values);
- bindings-node/options.d.ts: their TypeScript types, with these docs.

The options the core reads are checked against the core's schema
(schema/options/*.json): each is a field of the core's struct, and each
field is an option.

Usage: python3 scripts/gen_node_options.py [--check]
(--check: fail, writing nothing, when a file is not what it would write.)
"""

import json
import re
import sys
import textwrap
from pathlib import Path
from gen_output import write_or_check

ROOT = Path(__file__).resolve().parent.parent
JS_OUT = ROOT / "bindings-node" / "options.js"
TS_OUT = ROOT / "bindings-node" / "options.d.ts"

# The TypeScript type of each kind of value. null and undefined are "not
# given" for all; for a `timeout`, null is "none".
TS_KIND = {
    "string": "string",
    "boolean": "boolean",
    "number": "number",
    "timeout": "number | null",
    "count": "number",
    "strings": "Array<string>",
    "env": "Record<string, string | undefined>",
    "caps": "Record<string, number>",
    "textOrBytes": "string | Buffer",
    "size": "TerminalSize",
    "limits": "ResourceLimits",
    "signal": "AbortSignal",
}

SIGNAL = ("signal", "signal", "Aborting it ends the wait (not the task); the Promise rejects with `signal.reason`.")
CURSOR = ("cursor", "count", "Byte offset to start from (default 0), e.g. a poll's `nextCursor`.")
REASON = ("reason", "string", "Recorded in the info and given to the task.")

# Option objects: name -> (doc, [(snake_name, kind, doc[, TS type])]).
# A string with a TypeScript type of its own is a name the core parses.
NATIVE = {
    "ManagerOptions": ("Settings of a manager (all optional; the core's defaults otherwise).", [
        ("root", "string", "Folder for task folders (default: a private temporary folder, removed when the manager is closed or collected)."),
        ("memory_limit", "count", "Bytes of output a foreground task keeps in memory before it spills (default 1 MiB)."),
        ("disk_limit", "count", "Bytes of output one task may write to its log (default 256 MiB)."),
        ("tail_window", "count", "Bytes of the latest output kept in memory after a spill (64 KiB)."),
        ("foreground_timeout_ms", "timeout", "Default foreground timeout (60 s); null: none."),
        ("background_timeout_ms", "timeout", "Default background timeout (10 min); null: none."),
        ("on_timeout", "string", "Default action of a foreground timeout (default `detach`).", "OnTimeout"),
        ("max_background", "count", "Cap on background tasks running at once, over all owners."),
        ("max_background_per_owner", "count", "Cap on background tasks running at once for any one owner."),
        ("stop_grace_ms", "number", "How long a function task may take to return after a stop request before the manager drops it (default 5 s)."),
        ("default_owner", "string", "Owner of tasks spawned without one (default `default`)."),
        ("notify_host_cancels", "boolean", "Whether host cancels of background tasks still queue notifications."),
        ("queue_over_capacity", "boolean", "Over a background cap, wait in a FIFO queue (status `queued`) instead of failing with `CAPACITY_EXCEEDED` (default false)."),
        ("max_running_of_kind", "caps", "Caps on running tasks per kind, e.g. `{ agent: 3 }` (at most three subagents at once beside any number of commands)."),
        ("limits", "limits", "Default resource limits of every process task, for each kind a task's own `limits` does not set (default none)."),
        ("limits_ceiling", "limits", "A ceiling for all of the manager's process tasks together (one parent cgroup their own are made in; default none): at its memory the kernel kills a process of one task, which ends `failed` with `killed: memory ceiling of the manager … reached (OOM)`. Needs cgroup v1 hierarchies for its kinds, else `new TaskManager` throws `LIMITS_UNAVAILABLE`."),
        ("unenforced_limits", "string", "What to do with a task whose limits this host cannot enforce: `refuse` (default: the spawn fails with `LIMITS_UNAVAILABLE`) or `report` (it runs; `info.limits.notEnforced` says what is not applied and why).", "UnenforcedLimits"),
        ("on_host_exit", "string", "What becomes of background process tasks when the host exits, for those whose start does not say: `'kill'` (default) or `'keepRunning'` (under a supervisor process of their own, re-attached by the next host that opens the root; needs a `root`).", "'kill' | 'keepRunning'"),
        ("supervisor_program", "string", "The supervisor program of `keepRunning` tasks (default: `agent-tasks-supervisor` in this package)."),
    ]),
    "ProcessOptions": ("How a command runs (`run`'s options besides the [`TaskOptions`]).", [
        ("cwd", "string", "Working directory (default: the host's)."),
        ("env", "env", "Environment variables to set."),
        ("env_clear", "boolean", "Start from an empty environment instead of the host's."),
        ("stdin", "textOrBytes", "Bytes (or text) written to stdin at start."),
        ("interactive", "boolean", "Keep stdin open so `send` can write to it."),
        ("kill_grace_ms", "number", "Time between SIGTERM and SIGKILL on cancel (default 5 s)."),
        ("pty", "size", "Run on a pseudo-terminal of this size: stdout and stderr are then one stream (tagged stdout), and the task always takes input (`send` types, `sendKeys` types control keys; `resize` changes the size)."),
        ("limits", "limits", "Resource limits of the task's whole tree, enforced through cgroups, over the manager's default: past `memory` the task ends `failed` (`killed: memory limit … reached (OOM), peak …`); `result.usage` has what it used."),
    ]),
    "TaskOptions": ("How a task runs, for `run` and `spawn` alike: mode, timeouts, owner, monitoring (the wrapper splits a call's options into these and the [`ProcessOptions`]).", [
        ("background", "boolean", "Start in the background (default: the foreground)."),
        ("timeout_ms", "timeout", "Timeout of the mode it starts in; null: none (default: the manager's)."),
        ("background_timeout_ms", "timeout", "Timeout once in the background (after a detach, from the detach); null: none."),
        ("on_timeout", "string", "What a foreground timeout does (default: the manager's).", "OnTimeout"),
        ("description", "string", "Description shown in lists (default: the command line, or the function's name)."),
        ("owner", "string", "Owner (session key); default: the manager's default owner."),
        ("keep_alive", "boolean", "Leave it running on `close` and `closeOwner`."),
        ("track_changes", "string", "Record the files it creates, modifies and deletes under this folder."),
        ("watch", "strings", "Regexes matched against each output line; a match queues a `watch_match` notification with the line (while the task is in the background). A pattern that does not compile fails with `INVALID_ARGUMENT`."),
        ("watch_interval_ms", "number", "At most one watch notification per this many milliseconds (default 15 s); matches in between are counted in the next one."),
        ("watch_max", "count", "After this many watch notifications (default 8) watching stops, with one `watch_stopped` notice."),
        ("heartbeat_ms", "number", "A `progress` notification every this many milliseconds (at least 60,000) with the output since the last one, skipped when there is none."),
        ("idle_timeout_ms", "number", "No output for this long gives a `task.stalled` event and (in the background) a `stalled` notification."),
        ("cancel_on_stall", "boolean", "Also cancel the task when it stalls (it ends `timed_out`, reason `stalled`)."),
        ("on_host_exit", "string", "What becomes of a background process task when the host exits: `'kill'` (default: the manager's) or `'keepRunning'` (it runs on under a supervisor process of its own; the next host that opens the root re-attaches to it, or reads how it ended). `close`, `process.exit` and the signal hooks leave it running.", "'kill' | 'keepRunning'"),
    ]),
    "ListFilter": ("Which tasks `list` returns.", [
        ("owner", "string", "Only tasks of this owner."),
        ("statuses", "strings", "Only tasks in one of these statuses.", "Array<TaskStatus>"),
        ("active_only", "boolean", "Only tasks that are still running."),
    ]),
    "ToolBoxOptions": ("Settings of a toolbox (all optional; the core's defaults otherwise).", [
        ("text_budget", "count", "Most bytes of text in one answer (default 12,000)."),
        ("run_timeout_ms", "number", "How long `task_run` waits in the foreground when the model gives no `timeout` (default 60 s)."),
        ("max_run_timeout_ms", "number", "The longest `timeout` a model may ask of `task_run` (default 10 min)."),
        ("on_timeout", "string", "What a `task_run` foreground timeout does (default `detach`: the command keeps running in the background).", "OnTimeout"),
        ("wait_timeout_ms", "number", "`task_wait`'s timeout when the model gives none (default 30 s)."),
        ("max_wait_timeout_ms", "number", "The longest `timeout` a model may ask of `task_wait` (default 300 s)."),
        ("output_bytes", "count", "Bytes `task_output` reads when the model gives no `max_bytes` (default 8000)."),
        ("cwd", "string", "Working directory of `task_run` commands without a `cwd`."),
        ("env", "env", "Extra environment variables of `task_run` commands."),
        ("raw_text", "boolean", "Show output in the answers as the task wrote it (default false: cleaned of terminal escapes, `\\r` progress bars at their last state), for hosts that render terminal text. `poll` and the log always keep the raw bytes."),
        ("tty_size", "size", "The terminal size of a `task_run` with `tty: true` (default 120 × 40)."),
    ]),
    "ResourceLimits": ("Resource limits of a process task's whole tree (each optional: no limit of that kind).", [
        ("memory", "count", "Bytes of memory (at least 1 MiB; swap off); at the limit the kernel kills the task's processes."),
        ("pids", "count", "Processes and threads at once; past it `fork` fails inside the task."),
        ("cpu", "number", "A fraction of one core (`0.5`, `2`); it throttles, it never kills."),
    ]),
    "TerminalSize!": ("The size of a task's terminal, in character cells.", [
        ("cols", "number", "Columns (1 to 65535)."),
        ("rows", "number", "Rows (1 to 65535)."),
    ]),
    "AcpOptions": ("Options of `runAcp` (all optional).", [
        ("cwd", "string", "Working directory of the agent and its session (default: the host's)."),
        ("env", "env", "Extra environment variables of the agent."),
        ("permissions", "permissions", "`'allow'`, `'deny'` (the default) or a function deciding each request (a throw denies).", "'allow' | 'deny' | AcpPermissionFunction"),
        ("files", "string", "Which files the agent may read and write through the client (default `'cwd'`).", "'cwd' | 'read_cwd' | 'anywhere' | 'none'"),
        ("show_thoughts", "boolean", "Write the agent's thoughts to the output (default false)."),
        ("idle_timeout_ms", "number", "End the session this long after a turn without a follow-up."),
        ("cancel_grace_ms", "number", "How long a cancelled turn may take to end (default 5 s)."),
        ("kill_grace_ms", "number", "Time between SIGTERM and SIGKILL (default 5 s)."),
        ("handshake_timeout_ms", "number", "How long `initialize` and `session/new` may take together (default 60 s); past it the task ends `failed`."),
        ("max_message_bytes", "count", "The longest line (one message) read from the agent, in bytes (default 16 MiB, at least 1024); past it the task ends `failed`."),
        ("timeout_ms", "number", "A task timeout (default: none; the agent runs until stopped)."),
        ("owner", "string", "The owner (session key)."),
        ("description", "string", "The description shown in lists."),
        ("keep_alive", "boolean", "Left running by `close` and `closeOwner`."),
    ]),
    "WaitOptions": ("Options of the calls that wait. The one timeout rule: aborting the signal (`AbortSignal.timeout(ms)` included) ends the wait, not the task, and the Promise rejects with `signal.reason` (a `TimeoutError` for `AbortSignal.timeout`), as `fetch` and `timers/promises` do; a `timeoutMs` option, where a call has one, is part of the answer (`collect` resolves `still_running`, `waitFor` `timed_out`).", [
        SIGNAL,
    ]),
    "PollOptions": ("Options of `poll`.", [CURSOR, ("max_bytes", "count", "At most this many bytes (default 64 KiB, capped at 16 MiB).")]),
    "OutputOptions": ("Where an output stream starts and how much each wait reads.", [
        CURSOR, ("max_bytes", "count", "At most this many bytes per chunk (default 64 KiB, capped at 16 MiB)."), SIGNAL,
    ]),
    "PreviewOptions": ("Options of `preview`.", [
        ("head_bytes", "count", "Bytes from the start (default 4 KiB)."),
        ("tail_bytes", "count", "Bytes from the end (default 4 KiB)."),
    ]),
    "CollectOptions": ("Options of `collect` (see [`WaitOptions`]).", [
        ("timeout_ms", "timeout", "How long to wait: 0 answers at once; undefined or null waits until the task ends."), SIGNAL,
    ]),
    "WaitForOptions": ("Options of `waitFor` (see [`WaitOptions`]).", [
        ("timeout_ms", "timeout", "How long to wait; undefined or null waits until the condition holds or the task ends."),
        ("cursor", "count", "With a regex: the byte offset to read from (default 0)."), SIGNAL,
    ]),
    "CancelOptions": ("Options of `cancel` (see [`WaitOptions`]).", [REASON, SIGNAL]),
    "CloseOwnerOptions": ("Options of `closeOwner`.", [REASON]),
    "SendOptions": ("Options of `send`.", [("eof", "boolean", "Close the task's input after the message (if any): the end of input.")]),
    "RosterOptions": ("Options of `roster`.", [("budget", "count", "Most bytes of the text (default: the core's).")]),
    "GcOptions": ("Options of `gc`.", [
        ("max_age_ms", "number", "Remove tasks that ended more than this long ago."),
        ("max_count", "count", "Keep at most this many ended tasks (the newest)."),
    ]),
}

# Each call's options: option objects by name (`Name-`: but a task's own
# options), and options the wrapper reads itself.
CALLS = {
    "manager": ["ManagerOptions"],
    "run": ["ProcessOptions", "TaskOptions"],
    "spawn": [{"kind": "string"}, "TaskOptions"],
    "send": ["SendOptions"],
    "poll": ["PollOptions"],
    "preview": ["PreviewOptions"],
    "collect": ["CollectOptions"],
    "result": ["WaitOptions"],
    "cancel": ["CancelOptions"],
    "waitFor": ["WaitForOptions"],
    "waitForeground": ["WaitOptions"],
    "events": ["WaitOptions"],
    "output": ["OutputOptions"],
    "list": ["ListFilter"],
    "roster": ["RosterOptions"],
    "closeOwner": ["CloseOwnerOptions"],
    "gc": ["GcOptions"],
    "toolBox": ["ToolBoxOptions"],
    "agent": [{"name": "string", "description": "string", "parameters": "object", "run": "func"}],
    "acp": ["AcpOptions"],
    # registerAcpAgent: runAcp's options but the task's own.
    "acpAgent": ["AcpOptions-"],
}
ACP_TASK_ONLY = {"timeout_ms", "owner", "description", "keep_alive"}

# The calls whose options the core reads (`parse_options` into the core's
# struct, schema/options/<file>), but for those the wrapper hands over
# apart (JS_ONLY). Of their kinds, the wrapper checks and converts those in
# WRAPPER (an object it reads, a timeout's null, which is none); the core
# checks every other value (kind `core`).
CORE = {
    "manager": "manager_options",
    "run": "task_options",
    "spawn": "task_options",
    "toolBox": "tool_box_options",
    "acp": "acp_options",
    "acpAgent": "acp_options",
}
JS_ONLY = {"stdin", "permissions"}
WRAPPER = {"timeout", "env", "size", "limits", "textOrBytes", "permissions"}


def camel(name):
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def fields(group):
    if isinstance(group, dict):
        return [(k, v) for k, v in group.items()]
    skip = ACP_TASK_ONLY if group.endswith("-") else set()
    return [f[:2] for f in NATIVE[group.rstrip("-")][1] if f[0] not in skip]


def core_name(snake):
    return snake.removesuffix("_ms")


def checked_against_schema(call, names):
    """The core's names of `call`'s options, each a field of the core's struct, and every field one."""
    schema = json.loads((ROOT / "schema" / "options" / f"{CORE[call]}.json").read_text())
    known = set(schema["properties"])
    unknown = sorted(set(names.values()) - known)
    if unknown:
        sys.exit(f"gen_node_options: {call}: not options of the core's {schema['title']}: {unknown}")
    if call in ("manager", "run", "toolBox", "acp"):
        left = sorted(known - set(names.values()) - ({"kind"} if call == "run" else set()))
        if left:
            sys.exit(f"gen_node_options: {call}: options of the core's {schema['title']} the Node table lacks: {left}")


def js():
    specs, names = {}, {}
    for call, groups in CALLS.items():
        spec = {}
        for group in groups:
            for snake, kind in fields(group):
                js_name = camel(snake)
                if call in CORE and snake not in JS_ONLY:
                    names[js_name] = core_name(snake)
                    kind = kind if kind in WRAPPER else "core"
                spec[js_name] = kind
        if call in CORE:
            checked_against_schema(call, {k: names[k] for k in spec if k in names})
        specs[call] = spec
    lines = [
        "// GENERATED by scripts/gen_node_options.py — do not edit.",
        "'use strict'",
        "// The options of each call and the kind of value each takes (see",
        "// index.js, which checks them), and the core's name of each option the",
        "// core reads (`parse_options`; kind `core`: the core checks the value).",
        "",
        "const specs = {",
    ]
    lines += [f"  {call}: {fmt(spec)}," for call, spec in specs.items()]
    lines += ["}", "", f"const coreNames = {fmt(dict(sorted(names.items())))}", ""]
    lines += ["module.exports = { specs, coreNames }", ""]
    return "\n".join(lines)


def fmt(d):
    return "{ " + ", ".join(f"{k}: '{v}'" for k, v in d.items()) + " }"


def doc(text, indent):
    width = 100 - len(indent) - 4
    wrapped = textwrap.wrap(text, width - 3)
    if len(wrapped) == 1:
        return [f"{indent}/** {wrapped[0]} */"]
    return [f"{indent}/**", *[f"{indent} * {line}" for line in wrapped], f"{indent} */"]


def ts():
    lines = [
        "// GENERATED by scripts/gen_node_options.py — do not edit.",
        "// The options the calls take (see index.d.ts).",
        "",
        "/// <reference types=\"node\" />",
        "",
        "import type { AcpPermissionFunction, OnTimeout, UnenforcedLimits } from './index.js'",
        "import type { TaskStatus } from './types.js'",
    ]
    for name, (text, group) in sorted(NATIVE.items(), key=lambda item: item[0].rstrip("!")):
        required = name.endswith("!")
        lines += [""] + doc(text, "") + [f"export interface {name.rstrip('!')} {{"]
        for field in group:
            snake, kind, text = field[:3]
            ty = field[3] if len(field) > 3 else TS_KIND[kind]
            lines += doc(text, "  ")
            lines.append(f"  {camel(snake)}{'' if required else '?'}: {ty}")
        lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    outputs = {JS_OUT: js(), TS_OUT: ts()}
    return write_or_check(outputs, "python3 scripts/gen_node_options.py")


if __name__ == "__main__":
    sys.exit(main())
