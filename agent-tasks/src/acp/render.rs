//! Session updates rendered as readable text lines for the task's output, so
//! `poll`, `preview`, watch patterns, notifications and the model-facing
//! tools read an ACP agent like any other task. It works on the updates'
//! JSON (the wire shape), so kinds a newer agent sends that this library does
//! not know are skipped instead of breaking it. It also gathers the agent's
//! message of the running turn: the final message the turn's notification
//! carries.

use std::collections::HashMap;

use serde_json::Value;

/// What kind of streamed text was written last (chunks of one message are
/// joined; a switch starts a new line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Lines,
    Message,
    Thought,
}

/// Turns session updates into text; one per task.
#[derive(Debug)]
pub(crate) struct Renderer {
    show_thoughts: bool,
    mode: Mode,
    /// True when the last text written ended a line.
    at_line_start: bool,
    /// The agent's message text of the running turn.
    turn_message: String,
    /// Tool call titles by id, for updates that carry only the id.
    tools: HashMap<String, String>,
}

/// The most of a turn's message kept for its notification and the result;
/// the start is dropped beyond it (the end is what answers).
const TURN_MESSAGE_MAX: usize = 64 * 1024;

impl Renderer {
    pub(crate) fn new(show_thoughts: bool) -> Self {
        Renderer {
            show_thoughts,
            mode: Mode::Lines,
            at_line_start: true,
            turn_message: String::new(),
            tools: HashMap::new(),
        }
    }

    /// Text that starts on a line of its own.
    fn line(&mut self, text: &str) -> String {
        let mut out = String::new();
        if !self.at_line_start {
            out.push('\n');
        }
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
        self.mode = Mode::Lines;
        self.at_line_start = true;
        out
    }

    /// Streamed text of `mode`, joined to what came before in that mode.
    fn stream(&mut self, mode: Mode, lead: &str, text: &str) -> String {
        let mut out = String::new();
        if self.mode != mode {
            if !self.at_line_start {
                out.push('\n');
            }
            out.push_str(lead);
            self.mode = mode;
        }
        out.push_str(text);
        if !out.is_empty() {
            self.at_line_start = out.ends_with('\n');
        }
        out
    }

    /// A prompt sent to the agent: turn `turn` starts.
    pub(crate) fn prompt(&mut self, turn: u64, text: &str) -> String {
        self.turn_message.clear();
        let quoted: Vec<String> = text.lines().map(|l| format!("> {l}")).collect();
        self.line(&format!("[turn {turn}] prompt:\n{}", quoted.join("\n")))
    }

    /// A note from this library (queued prompts, refusals, errors).
    pub(crate) fn note(&mut self, text: &str) -> String {
        self.line(&format!("[acp] {text}"))
    }

    /// Turn `turn` ended with `stop_reason`.
    pub(crate) fn turn_end(&mut self, turn: u64, stop_reason: &str) -> String {
        self.line(&format!("[turn {turn} ended: {stop_reason}]"))
    }

    /// The agent's message of the running turn (what it said since the
    /// last prompt).
    pub(crate) fn turn_message(&self) -> String {
        self.turn_message.trim().to_string()
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
                let text = content_text(update.get("content"));
                self.turn_message.push_str(&text);
                if self.turn_message.len() > TURN_MESSAGE_MAX {
                    let mut cut = self.turn_message.len() - TURN_MESSAGE_MAX;
                    while !self.turn_message.is_char_boundary(cut) {
                        cut += 1;
                    }
                    self.turn_message.drain(..cut);
                }
                self.stream(Mode::Message, "", &text)
            }
            "agent_thought_chunk" if self.show_thoughts => {
                let text = content_text(update.get("content"));
                self.stream(Mode::Thought, "(thinking) ", &text)
            }
            "tool_call" => {
                let id = str_field(update, "toolCallId");
                let title = str_field(update, "title");
                if !id.is_empty() {
                    self.tools.insert(id.clone(), title.clone());
                }
                let status = update
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("pending");
                let kind = update.get("kind").and_then(Value::as_str);
                let shown = match kind {
                    Some(k) => format!("[tool] {title} ({k}): {status}"),
                    None => format!("[tool] {title}: {status}"),
                };
                self.line(&shown)
            }
            "tool_call_update" => {
                let id = str_field(update, "toolCallId");
                if let Some(title) = update.get("title").and_then(Value::as_str) {
                    self.tools.insert(id.clone(), title.to_string());
                }
                match update.get("status").and_then(Value::as_str) {
                    Some(status) => {
                        let title = self.tools.get(&id).cloned().unwrap_or(id);
                        self.line(&format!("[tool] {title}: {status}"))
                    }
                    None => String::new(),
                }
            }
            "plan" => {
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
            _ => String::new(),
        }
    }
}

fn str_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The text of a content block; a placeholder for non-text content.
fn content_text(content: Option<&Value>) -> String {
    let Some(content) = content else {
        return String::new();
    };
    match content.get("type").and_then(Value::as_str) {
        Some("text") => str_field(content, "text"),
        Some("resource_link") => format!("[link {}]", str_field(content, "uri")),
        Some(other) => format!("[{other}]"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_turn_reads_as_lines() {
        let mut r = Renderer::new(false);
        let mut out = r.prompt(1, "fix the build\nplease");
        for update in [
            json!({"sessionUpdate": "agent_thought_chunk", "content": {"type": "text", "text": "hmm"}}),
            json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "Looking"}}),
            json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": " at it."}}),
            json!({"sessionUpdate": "tool_call", "toolCallId": "t1", "title": "Run tests", "kind": "execute", "status": "pending"}),
            json!({"sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "completed"}),
            json!({"sessionUpdate": "plan", "entries": [
                {"content": "read", "status": "completed", "priority": "high"},
                {"content": "fix", "status": "in_progress", "priority": "high"}]}),
            json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "Done."}}),
            json!({"sessionUpdate": "something_new", "x": 1}),
        ] {
            out.push_str(&r.update(&update));
        }
        out.push_str(&r.turn_end(1, "end_turn"));
        assert_eq!(
            out,
            "[turn 1] prompt:\n> fix the build\n> please\nLooking at it.\n\
             [tool] Run tests (execute): pending\n[tool] Run tests: completed\n\
             [plan]\n  [x] read\n  [~] fix\nDone.\n[turn 1 ended: end_turn]\n"
        );
        assert_eq!(r.turn_message(), "Looking at it.Done.");
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
