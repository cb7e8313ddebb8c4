"""A scripted model server for the real-agent tests (tests/acp_real.rs).

Standard library only. It speaks just enough of two model APIs, each as a
stream of server-sent events: OpenAI chat completions (POST
.../chat/completions, used by opencode) and Anthropic Messages (POST
.../messages, used by Claude Code, and its .../messages/count_tokens). What it answers depends only on the
request (no state), keyed by a word in the conversation's latest user text:

* RUN-A-COMMAND: "Let me look." and a call of the agent's shell tool running
  `echo tool-$((6*7))-out`; once the tool's result is the newest message,
  "There are two files." (the final message; the command's output,
  tool-42-out, is only in the tool's result).
* FOLLOW-UP: "Follow-up answered."
* HANG: "Working on it" then nothing until the client goes away (a turn to
  cancel), 120 s at most.
* anything else, and every request without tools (titles, summaries):
  a short text.

Usage: model_server.py PORT_FILE LOG_FILE [debug]. Listens on 127.0.0.1, an
ephemeral port written to PORT_FILE once it accepts; one line per request
in LOG_FILE (with `debug`, the conversation's last two messages too).
"""

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMAND = "echo tool-$((6*7))-out"
DEBUG = False
SHELL_TOOLS = ("bash", "shell", "exec_command", "run_shell_command")


def last_text(content):
    """The last text block of a message's content (agents merge turns)."""
    if isinstance(content, str):
        return content
    texts = [p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text"]
    texts = [t for t in texts if t.strip()]
    return texts[-1] if texts else ""


def plan(messages, tools, api):
    """(texts, tool_call or None, hang) for a conversation."""
    tool_names = [t.get("function", t).get("name", "") if api == "openai" else t.get("name", "") for t in tools]
    last_user_text = ""
    for m in messages:
        if m.get("role") == "user" and last_text(m.get("content")):
            last_user_text = last_text(m.get("content"))
    last = messages[-1] if messages else {}
    content = last.get("content")
    if api == "openai":
        tool_done = last.get("role") == "tool"
    else:
        tool_done = last.get("role") == "user" and isinstance(content, list) and bool(content) and (
            isinstance(content[-1], dict) and content[-1].get("type") == "tool_result"
        )
    if not tools:
        return ["Scripted title"], None, False
    if "RUN-A-COMMAND" in last_user_text:
        if tool_done:
            return ["There are two files."], None, False
        # Claude Code's is mcp__acp__Bash when the client serves terminals.
        shell = next((n for n in tool_names if n.split("__")[-1].lower() in SHELL_TOOLS), None)
        if shell is None:
            return ["No shell tool among " + ",".join(tool_names)], None, False
        return ["Let me look."], (shell, {"command": COMMAND, "description": "List the files", "timeout": 60000}), False
    if "FOLLOW-UP" in last_user_text:
        return ["Follow-up answered."], None, False
    if "HANG" in last_user_text:
        return ["Working on it"], None, True
    return ["Nothing scripted for this."], None, False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def log(self, line):
        with open(LOG, "a") as f:
            f.write(line + "\n")

    def do_GET(self):
        self.log("GET " + self.path)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            req = {}
        path = self.path.split("?", 1)[0]
        if path.endswith("/messages/count_tokens"):
            # Claude Code counts tokens now and then: a plain JSON answer.
            self.log("POST " + self.path)
            answer = b'{"input_tokens": 10}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        if path.endswith("/chat/completions"):
            api = "openai"
            messages = req.get("messages", [])
        elif path.endswith("/messages"):
            api = "anthropic"
            messages = req.get("messages", [])
        else:
            self.log("POST " + self.path + " (unknown)")
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if DEBUG:
            self.log(json.dumps(messages[-2:])[:3000])
        texts, call, hang = plan(messages, req.get("tools") or [], api)
        self.log(f"POST {self.path} tools={len(req.get('tools') or [])} -> {texts} {call} hang={hang}")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            (self.openai if api == "openai" else self.anthropic)(req, texts, call, hang)
        except (BrokenPipeError, ConnectionResetError):
            self.log("client went away")
        self.close_connection = True

    def event(self, data, name=None):
        head = f"event: {name}\n" if name else ""
        self.wfile.write((head + "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n").encode())
        self.wfile.flush()

    def hang(self):
        # Until the client goes away: a write to a closed socket fails.
        end = time.monotonic() + 120
        while time.monotonic() < end:
            time.sleep(0.5)
            self.wfile.write(b": still working\n\n")
            self.wfile.flush()

    def openai(self, req, texts, call, hang):
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": int(time.time()), "model": req.get("model", "m")}

        def chunk(delta, finish=None):
            self.event(dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish}]))

        chunk({"role": "assistant", "content": ""})
        for t in texts:
            chunk({"content": t})
        if hang:
            self.hang()
            return
        if call:
            name, args = call
            chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                   "function": {"name": name, "arguments": json.dumps(args)}}]})
        chunk({}, "tool_calls" if call else "stop")
        self.event(dict(base, choices=[], usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}))
        self.event("[DONE]")

    def anthropic(self, req, texts, call, hang):
        model = req.get("model", "m")
        self.event({"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 1}}}, "message_start")
        index = 0
        for t in texts:
            self.event({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}, "content_block_start")
            self.event({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": t}}, "content_block_delta")
            if hang:
                self.hang()
                return
            self.event({"type": "content_block_stop", "index": index}, "content_block_stop")
            index += 1
        if call:
            name, args = call
            self.event({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": "toolu_1", "name": name, "input": {}}}, "content_block_start")
            self.event({"type": "content_block_delta", "index": index, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(args)}}, "content_block_delta")
            self.event({"type": "content_block_stop", "index": index}, "content_block_stop")
        self.event({"type": "message_delta", "delta": {"stop_reason": "tool_use" if call else "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 5}}, "message_delta")
        self.event({"type": "message_stop"}, "message_stop")


if __name__ == "__main__":
    PORT_FILE, LOG = sys.argv[1], sys.argv[2]
    DEBUG = len(sys.argv) > 3
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(PORT_FILE + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(PORT_FILE + ".tmp", PORT_FILE)
    server.serve_forever()
