//! Session updates rendered as readable text lines for the task's output, so
//! `poll`, `preview`, watch patterns, notifications and the model-facing
//! tools read an ACP agent like any other task. It works on the updates'
//! JSON (the wire shape), so kinds a newer agent sends that this library does
//! not know are skipped instead of breaking it.
//!
//! What the host reads is what the agent did: each of the agent's messages
//! ends its line as soon as the message ends (another message, a thought, a
//! tool call, a request of the agent's), so a line can be matched while the
//! turn runs; a tool call's status is printed when it changes, and its
//! content (the output the agent saw, diffs, file locations) is printed under
//! it, indented, within [`TOOL_OUTPUT_MAX`] per tool call. It also keeps the
//! agent's *last* message of the running turn: the final message the turn's
//! notification and the result carry.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use serde_json::Value;

/// What kind of streamed text was written last (chunks of one message are
/// joined; a switch starts a new line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Lines,
    Message,
    Thought,
}

/// What was shown of one tool call, so repeats print nothing.
#[derive(Debug, Default)]
struct ToolState {
    title: String,
    /// The title and status of the last status line printed.
    shown: Option<(String, String)>,
    /// Length and hash of the content last rendered (not the text: a tool
    /// call's output can be large and is sent whole with each update).
    content: Option<(usize, u64)>,
    /// Hash of the locations last printed.
    locations: Option<u64>,
    /// Bytes of content printed for this tool call, against
    /// [`TOOL_OUTPUT_MAX`].
    printed: usize,
    /// The note that content was left out was printed.
    cut: bool,
}

/// Turns session updates into text; one per task.
#[derive(Debug)]
pub(crate) struct Renderer {
    show_thoughts: bool,
    mode: Mode,
    /// True when the last text written ended a line.
    at_line_start: bool,
    /// The agent's last message of the running turn.
    message: String,
    /// Whether the agent is still in that message: its next chunk joins it.
    message_open: bool,
    /// The `messageId` of that message, when the agent gives one.
    message_id: Option<String>,
    /// Tool calls of the running turn by id.
    tools: HashMap<String, ToolState>,
    /// The tool call whose lines were the last written: its further content
    /// needs no header of its own.
    last_tool: Option<String>,
}

/// The most of a turn's final message kept for its notification and the
/// result; the start is dropped beyond it (the end is what answers).
const TURN_MESSAGE_MAX: usize = 64 * 1024;

/// The most content (tool output, diffs; their indentation not counted)
/// printed for one tool call; past it
/// the start and the end are kept, with a line that says what was left out.
/// The task's own output limits still apply on top of this.
pub(crate) const TOOL_OUTPUT_MAX: usize = 16 * 1024;

/// How tool content is set off under its `[tool]` line.
const INDENT: &str = "    ";

impl Renderer {
    pub(crate) fn new(show_thoughts: bool) -> Self {
        Renderer {
            show_thoughts,
            mode: Mode::Lines,
            at_line_start: true,
            message: String::new(),
            message_open: false,
            message_id: None,
            tools: HashMap::new(),
            last_tool: None,
        }
    }

    /// Ends the streamed text (a message or a thought) written last: its
    /// line end, at once, so the line is whole for readers now.
    fn end_stream(&mut self) -> String {
        self.mode = Mode::Lines;
        if self.at_line_start {
            return String::new();
        }
        self.at_line_start = true;
        "\n".to_string()
    }

    /// Text that starts on a line of its own.
    fn line(&mut self, text: &str) -> String {
        let mut out = self.end_stream();
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
        self.last_tool = None;
        out
    }

    /// The agent did something else than talk: its message is over.
    fn agent_acted(&mut self) {
        self.message_open = false;
    }

    /// A prompt sent to the agent: turn `turn` starts.
    pub(crate) fn prompt(&mut self, turn: u64, text: &str) -> String {
        self.message.clear();
        self.message_open = false;
        self.message_id = None;
        self.tools.clear();
        let quoted: Vec<String> = text.lines().map(|l| format!("> {l}")).collect();
        self.line(&format!("[turn {turn}] prompt:\n{}", quoted.join("\n")))
    }

    /// A note from this library about something the host did (queued
    /// prompts, a cancel): the agent's message may go on after it.
    pub(crate) fn note(&mut self, text: &str) -> String {
        self.line(&format!("[acp] {text}"))
    }

    /// A note about something the agent asked for (a permission, a file, a
    /// terminal): its message is over.
    pub(crate) fn agent_note(&mut self, text: &str) -> String {
        self.agent_acted();
        self.note(text)
    }

    /// Turn `turn` ended with `stop_reason`.
    pub(crate) fn turn_end(&mut self, turn: u64, stop_reason: &str) -> String {
        self.agent_acted();
        self.line(&format!("[turn {turn} ended: {stop_reason}]"))
    }

    /// The agent's final message of the running turn: the last message it
    /// sent since the prompt (the earlier ones are in the output).
    pub(crate) fn turn_message(&self) -> String {
        self.message.trim().to_string()
    }

    /// The text for one `session/update` (its `update` object); empty for
    /// kinds that are not shown.
    pub(crate) fn update(&mut self, update: &Value) -> String {
        let kind = update
            .get("sessionUpdate")
            .and_then(Value::as_str)
            .unwrap_or("");
        match kind {
            "agent_message_chunk" => {
                let id = update
                    .get("messageId")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                self.message_chunk(id, &content_text(update.get("content")))
            }
            "agent_thought_chunk" => {
                self.agent_acted();
                let text = content_text(update.get("content"));
                let mut out = String::new();
                if self.mode != Mode::Thought {
                    out = self.end_stream();
                    if self.show_thoughts {
                        out.push_str("(thinking) ");
                        self.at_line_start = false;
                    }
                    self.mode = Mode::Thought;
                    self.last_tool = None;
                }
                if self.show_thoughts && !text.is_empty() {
                    out.push_str(&text);
                    self.at_line_start = text.ends_with('\n');
                }
                out
            }
            "tool_call" | "tool_call_update" => {
                self.agent_acted();
                self.tool_call(update, kind == "tool_call")
            }
            "plan" => {
                self.agent_acted();
                let entries = update
                    .get("entries")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut text = String::from("[plan]");
                for entry in entries {
                    let mark = match entry.get("status").and_then(Value::as_str) {
                        Some("completed") => "[x]",
                        Some("in_progress") => "[~]",
                        _ => "[ ]",
                    };
                    text.push_str(&format!("\n  {mark} {}", str_field(&entry, "content")));
                }
                self.line(&text)
            }
            "current_mode_update" => {
                let mode = str_field(update, "currentModeId");
                self.line(&format!("[mode] {mode}"))
            }
            // Metadata (commands, usage, session info) and kinds this
            // library does not know: nothing shown, and a message streamed
            // around them goes on.
            _ => String::new(),
        }
    }

    /// A chunk of the agent's message `id`: it joins the message being
    /// streamed unless that one is over (the agent did something else, or
    /// the chunk names another message); a new message starts on a new line.
    fn message_chunk(&mut self, id: Option<String>, text: &str) -> String {
        if text.is_empty() {
            return String::new();
        }
        let same = self.message_open
            && match (&id, &self.message_id) {
                (Some(new), Some(old)) => new == old,
                _ => true,
            };
        let mut out = String::new();
        if !same {
            out = self.end_stream();
            self.message.clear();
            self.message_open = true;
            self.message_id = None;
        }
        if id.is_some() {
            self.message_id = id;
        }
        if self.mode != Mode::Message {
            // After a host note in the middle of a message: its rest goes on
            // a line of its own.
            out.push_str(&self.end_stream());
            self.mode = Mode::Message;
            self.last_tool = None;
        }
        self.message.push_str(text);
        if self.message.len() > TURN_MESSAGE_MAX {
            let mut cut = self.message.len() - TURN_MESSAGE_MAX;
            while !self.message.is_char_boundary(cut) {
                cut += 1;
            }
            self.message.drain(..cut);
        }
        out.push_str(text);
        self.at_line_start = text.ends_with('\n');
        out
    }

    /// A tool call (`start`) or an update of one: its status line when the
    /// status (or title) changed, then whatever of its content and
    /// locations is new.
    fn tool_call(&mut self, update: &Value, start: bool) -> String {
        let id = str_field(update, "toolCallId");
        let mut state = self.tools.remove(&id).unwrap_or_default();
        if let Some(title) = update.get("title").and_then(Value::as_str) {
            state.title = title.to_string();
        }
        if state.title.is_empty() {
            state.title = id.clone();
        }
        let status = update.get("status").and_then(Value::as_str).or(if start {
            Some("pending")
        } else {
            None
        });
        let mut out = String::new();
        if let Some(status) = status {
            let now = (state.title.clone(), status.to_string());
            if state.shown.as_ref() != Some(&now) {
                let shown = match update.get("kind").and_then(Value::as_str) {
                    Some(kind) if start => format!("[tool] {} ({kind}): {status}", state.title),
                    _ => format!("[tool] {}: {status}", state.title),
                };
                out.push_str(&self.line(&shown));
                self.last_tool = Some(id.clone());
                state.shown = Some(now);
            }
        }
        let mut body = String::new();
        if let Some(items) = update.get("content").and_then(Value::as_array) {
            let rendered = render_content(items);
            let len = rendered.len();
            let hash = hash_of(&rendered);
            let new = match state.content {
                Some((l, h)) if l == len && h == hash => None,
                // The same content grown (streamed output): only the rest,
                // when what was shown ended a line.
                Some((l, h))
                    if l < len
                        && rendered.is_char_boundary(l)
                        && rendered[..l].ends_with('\n')
                        && hash_of(&rendered[..l]) == h =>
                {
                    Some(rendered[l..].to_string())
                }
                _ => Some(rendered),
            };
            state.content = Some((len, hash));
            if let Some(new) = new {
                body.push_str(&budgeted(&mut state, &new));
            }
        }
        if let Some(locations) = update.get("locations").and_then(Value::as_array) {
            let hash = hash_of(&serde_json::to_string(locations).unwrap_or_default());
            if state.locations != Some(hash) && !locations.is_empty() {
                for location in locations {
                    let path = str_field(location, "path");
                    match location.get("line").and_then(Value::as_u64) {
                        Some(line) => body.push_str(&format!("at {path}:{line}\n")),
                        None => body.push_str(&format!("at {path}\n")),
                    }
                }
            }
            state.locations = Some(hash);
        }
        if !body.is_empty() {
            if self.last_tool.as_deref() != Some(id.as_str()) {
                out.push_str(&self.line(&format!("[tool] {}:", state.title)));
            }
            out.push_str(&indent(&body));
            self.last_tool = Some(id.clone());
        }
        self.tools.insert(id, state);
        out
    }
}

/// `new` content of a tool call within what is left of its
/// [`TOOL_OUTPUT_MAX`]: whole, or its start and end around a line that says
/// how much was left out (once the budget is spent, one line saying so).
fn budgeted(state: &mut ToolState, new: &str) -> String {
    let room = TOOL_OUTPUT_MAX.saturating_sub(state.printed);
    if new.len() <= room {
        state.printed += new.len();
        return new.to_string();
    }
    // Less than this left is not worth a start and an end.
    const SMALLEST_CUT: usize = 256;
    if room < SMALLEST_CUT {
        if state.cut {
            return String::new();
        }
        state.cut = true;
        state.printed = TOOL_OUTPUT_MAX;
        return format!(
            "[... more output not shown: {} KiB are shown per tool call]\n",
            TOOL_OUTPUT_MAX / 1024
        );
    }
    // Cut on line ends where there are some, else on characters.
    let mut head = room / 2;
    while !new.is_char_boundary(head) {
        head -= 1;
    }
    if let Some(at) = new[..head].rfind('\n') {
        head = at + 1;
    }
    let mut tail = new.len() - room / 2;
    while !new.is_char_boundary(tail) {
        tail += 1;
    }
    if let Some(at) = new[tail..]
        .find('\n')
        .filter(|at| tail + at + 1 < new.len())
    {
        tail += at + 1;
    }
    state.printed = TOOL_OUTPUT_MAX;
    state.cut = true;
    let mut out = new[..head].to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!(
        "[... {} bytes of output not shown ...]\n",
        tail - head
    ));
    out.push_str(&new[tail..]);
    out
}

/// Each line of `text` set off by [`INDENT`] (empty lines stay empty); the
/// result ends a line.
fn indent(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.lines() {
        if !line.is_empty() {
            out.push_str(INDENT);
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn hash_of(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// A tool call's content as text lines: what the agent saw (text blocks),
/// diffs of edits, and the terminals it embeds.
fn render_content(items: &[Value]) -> String {
    let mut out = String::new();
    for item in items {
        let text = match item.get("type").and_then(Value::as_str) {
            Some("content") => content_text(item.get("content")),
            Some("diff") => diff_text(
                &str_field(item, "path"),
                item.get("oldText").and_then(Value::as_str),
                &str_field(item, "newText"),
            ),
            Some("terminal") => format!("[terminal {}]", str_field(item, "terminalId")),
            Some(other) => format!("[{other}]"),
            None => String::new(),
        };
        if text.is_empty() {
            continue;
        }
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// An edit as its changed lines: the lines the old and new text do not
/// share at their start and end, `-` removed and `+` added, under a header
/// with the path and the first changed line.
fn diff_text(path: &str, old: Option<&str>, new: &str) -> String {
    let Some(old) = old else {
        let mut out = format!("new file {path}\n");
        for line in new.lines() {
            out.push_str(&format!("+{line}\n"));
        }
        return out;
    };
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let removed = &old[prefix..old.len() - suffix];
    let added = &new[prefix..new.len() - suffix];
    if removed.is_empty() && added.is_empty() {
        return format!("diff {path}: no change\n");
    }
    let mut out = format!("diff {path} (line {})\n", prefix + 1);
    for line in removed {
        out.push_str(&format!("-{line}\n"));
    }
    for line in added {
        out.push_str(&format!("+{line}\n"));
    }
    out
}

/// `text` quoted as code for a note: in backticks, unless it has backticks
/// of its own (a title like ``Run `ls` ``), which already set the code
/// apart: doubling them would not.
pub(crate) fn quoted(text: &str) -> String {
    if text.contains('`') {
        text.to_string()
    } else {
        format!("`{text}`")
    }
}

fn str_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The text of a content block (an embedded text resource's text too); a
/// placeholder for other content.
fn content_text(content: Option<&Value>) -> String {
    let Some(content) = content else {
        return String::new();
    };
    match content.get("type").and_then(Value::as_str) {
        Some("text") => str_field(content, "text"),
        Some("resource_link") => format!("[link {}]", str_field(content, "uri")),
        Some("resource") => match content.get("resource") {
            Some(resource) if resource.get("text").is_some() => str_field(resource, "text"),
            Some(resource) => format!("[resource {}]", str_field(resource, "uri")),
            None => "[resource]".to_string(),
        },
        Some(other) => format!("[{other}]"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(chunk: &str) -> Value {
        json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": chunk}})
    }

    fn render(r: &mut Renderer, updates: &[Value]) -> String {
        updates.iter().map(|u| r.update(u)).collect()
    }

    #[test]
    fn a_turn_reads_as_lines_and_its_final_message_is_the_last_one() {
        let mut r = Renderer::new(false);
        let mut out = r.prompt(1, "fix the build\nplease");
        out.push_str(&render(
            &mut r,
            &[
                json!({"sessionUpdate": "agent_thought_chunk", "content": {"type": "text", "text": "hmm"}}),
                text("Looking"),
                text(" at it."),
                json!({"sessionUpdate": "tool_call", "toolCallId": "t1", "title": "Run tests", "kind": "execute", "status": "pending"}),
                json!({"sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "completed"}),
                json!({"sessionUpdate": "plan", "entries": [
                    {"content": "read", "status": "completed", "priority": "high"},
                    {"content": "fix", "status": "in_progress", "priority": "high"}]}),
                text("Done."),
                json!({"sessionUpdate": "something_new", "x": 1}),
            ],
        ));
        out.push_str(&r.turn_end(1, "end_turn"));
        assert_eq!(
            out,
            "[turn 1] prompt:\n> fix the build\n> please\nLooking at it.\n\
             [tool] Run tests (execute): pending\n[tool] Run tests: completed\n\
             [plan]\n  [x] read\n  [~] fix\nDone.\n[turn 1 ended: end_turn]\n"
        );
        // The earlier message is in the output; the final one is the last.
        assert_eq!(r.turn_message(), "Done.");
    }

    #[test]
    fn a_message_ends_its_line_as_soon_as_the_agent_moves_on() {
        let mut r = Renderer::new(false);
        r.prompt(1, "go");
        assert_eq!(r.update(&text("Let me look.")), "Let me look.");
        // A hidden thought: nothing of it is shown, but the line ends now.
        let thought = json!({"sessionUpdate": "agent_thought_chunk", "content": {"type": "text", "text": "hmm"}});
        assert_eq!(r.update(&thought), "\n");
        assert_eq!(r.update(&thought), "");
        assert_eq!(r.update(&text("Two files.")), "Two files.");
        assert_eq!(r.turn_message(), "Two files.");
        // Metadata in the middle of a message does not split it.
        let usage = json!({"sessionUpdate": "usage_update", "used": 1, "size": 2});
        assert_eq!(r.update(&usage), "");
        assert_eq!(r.update(&text(" Done.")), " Done.");
        assert_eq!(r.turn_message(), "Two files. Done.");
        // A host note in the middle does not end the message either.
        assert_eq!(r.note("follow-up queued"), "\n[acp] follow-up queued\n");
        assert_eq!(r.update(&text(" More.")), " More.");
        assert_eq!(r.turn_message(), "Two files. Done. More.");
    }

    #[test]
    fn messages_are_told_apart_by_their_id() {
        let mut r = Renderer::new(false);
        r.prompt(1, "go");
        let chunk = |id: &str, t: &str| {
            json!({"sessionUpdate": "agent_message_chunk", "messageId": id,
                   "content": {"type": "text", "text": t}})
        };
        let out = render(
            &mut r,
            &[
                chunk("m1", "First"),
                chunk("m1", "."),
                chunk("m2", "Second."),
            ],
        );
        assert_eq!(out, "First.\nSecond.");
        assert_eq!(r.turn_message(), "Second.");
    }

    #[test]
    fn a_status_line_is_printed_when_it_changes_and_content_under_it() {
        let mut r = Renderer::new(false);
        r.prompt(1, "go");
        let update = |v: Value| {
            let mut u = json!({"sessionUpdate": "tool_call_update", "toolCallId": "t1"});
            if let (Some(u), Some(v)) = (u.as_object_mut(), v.as_object()) {
                u.extend(v.clone());
            }
            u
        };
        let output = |t: &str| json!([{"type": "content", "content": {"type": "text", "text": t}}]);
        let out = render(
            &mut r,
            &[
                json!({"sessionUpdate": "tool_call", "toolCallId": "t1", "title": "Run `ls`", "kind": "execute"}),
                update(json!({"status": "in_progress"})),
                update(json!({"status": "in_progress"})),
                update(json!({"status": "in_progress"})),
                // Output streamed: each update carries all of it so far.
                update(json!({"content": output("a.txt\n")})),
                update(json!({"content": output("a.txt\nb.txt\n")})),
                update(json!({"content": output("a.txt\nb.txt\n")})),
                update(
                    json!({"status": "completed", "locations": [{"path": "/w/a.txt", "line": 3}]}),
                ),
                update(
                    json!({"status": "completed", "locations": [{"path": "/w/a.txt", "line": 3}]}),
                ),
                json!({"sessionUpdate": "tool_call", "toolCallId": "t2", "title": "Edit", "kind": "edit",
                       "status": "completed", "content": [
                           {"type": "diff", "path": "n.txt", "oldText": "one\ntwo\nthree\n", "newText": "one\n2\nthree\n"},
                           {"type": "diff", "path": "new.txt", "oldText": null, "newText": "hi\n"},
                           {"type": "terminal", "terminalId": "term-1"}]}),
            ],
        );
        assert_eq!(
            out,
            "[tool] Run `ls` (execute): pending\n\
             [tool] Run `ls`: in_progress\n\
             \x20   a.txt\n\
             \x20   b.txt\n\
             [tool] Run `ls`: completed\n\
             \x20   at /w/a.txt:3\n\
             [tool] Edit (edit): completed\n\
             \x20   diff n.txt (line 2)\n\
             \x20   -two\n\
             \x20   +2\n\
             \x20   new file new.txt\n\
             \x20   +hi\n\
             \x20   [terminal term-1]\n"
        );
        // Content of an earlier tool call after other lines gets its header.
        let more = r.update(&update(json!({"content": output("a.txt\nb.txt\nc.txt\n")})));
        assert_eq!(more, "[tool] Run `ls`:\n    c.txt\n");
    }

    #[test]
    fn tool_output_is_bounded_per_tool_call() {
        let mut r = Renderer::new(false);
        r.prompt(1, "go");
        let big: String = (0..4000).map(|i| format!("line {i}\n")).collect();
        let out = r.update(&json!({"sessionUpdate": "tool_call", "toolCallId": "t1", "title": "cat",
            "status": "completed", "content": [{"type": "content", "content": {"type": "text", "text": big}}]}));
        // The budget counts the content, not its indentation.
        let content: usize = out.lines().skip(1).map(|l| l.trim_start().len() + 1).sum();
        assert!(content < TOOL_OUTPUT_MAX + 100, "{content}");
        assert!(out.contains("    line 0\n"), "the start is kept");
        assert!(out.ends_with("    line 3999\n"), "the end is kept");
        assert!(out.contains("bytes of output not shown"), "the cut is said");
    }

    #[test]
    fn titles_with_backticks_are_not_quoted_again() {
        assert_eq!(quoted("Run ls"), "`Run ls`");
        assert_eq!(quoted("Run `ls`"), "Run `ls`");
    }

    #[test]
    fn thoughts_are_shown_when_asked() {
        let mut r = Renderer::new(true);
        let text = r.update(
            &json!({"sessionUpdate": "agent_thought_chunk", "content": {"type": "text", "text": "hmm"}}),
        );
        assert_eq!(text, "(thinking) hmm");
    }
}
