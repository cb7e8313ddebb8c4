//! Model-facing tools: ready-made tool definitions for LLM function calling
//! and a dispatcher, [`ToolBox`], that executes a tool call against the
//! manager for one owner and answers with text for the model (metadata
//! first, output last, within a budget) plus structured JSON for the host.
//!
//! ```no_run
//! use agent_tasks::tools::{definitions, ToolBox};
//! # async fn demo(manager: agent_tasks::TaskManager) {
//! let anthropic_tools: Vec<_> = definitions().iter().map(|t| t.anthropic()).collect();
//! let toolbox = ToolBox::new(manager, "session-1");
//! let answer = toolbox
//!     .call("task_run", serde_json::json!({"command": "cargo test", "timeout": 30}))
//!     .await;
//! println!("{}", answer.text);
//! # }
//! ```

mod agents;
mod cancel;
mod definitions;
mod delegate;
mod list;
mod output;
mod render;
mod run;
mod send;
mod wait;

use std::time::Duration;

use regex::Regex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use agents::{delegate_definition, DelegateArgs, MAX_DELEGATIONS, TASK_DELEGATE};
pub use agents::{Agent, AgentFuture, AGENT_KIND};
pub use definitions::{
    definitions, definitions_in, CancelArgs, ListArgs, OutputArgs, RunArgs, RunLimits, SendArgs,
    ToolDefinition, ToolShape, WaitArgs,
};
use definitions::{TASK_CANCEL, TASK_LIST, TASK_OUTPUT, TASK_RUN, TASK_SEND, TASK_WAIT};
use render::{cap, cap_middle, duration, field, finish, task_header, Body, Caps, Draft};

use crate::clean::{clean_cut, clean_start};
use crate::commands::shell_command;
use crate::config::{OnTimeout, SpawnOptions};
use crate::context::Message;
use crate::durations::timeout_from_secs;
use crate::error::Error;
use crate::info::{compact_value, CancelReason, PollResponse, TaskInfo, TaskResult};
use crate::manager::{CollectOutcome, ForegroundOutcome, ListFilter, TaskManager};
use crate::process::Key;
use crate::readiness::{WaitOutcome, WaitUntil};

/// What a tool call answers.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ToolResponse {
    /// Text for the model: metadata first (task id, status, exit, cursor,
    /// bytes omitted), then output, within the toolbox's budget.
    pub text: String,
    /// Structured data for the host (the task's info, cursors, …; or
    /// `{"error": {"code", "message"}}`).
    pub json: Value,
    /// True when the call failed (unknown tool or id, bad argument).
    pub is_error: bool,
}

/// Settings of a [`ToolBox`].
#[derive(Clone, Debug)]
pub struct ToolBoxConfig {
    /// Most bytes of text in one answer (default 12,000). Every answer
    /// fits, whatever the arguments: free-text fields (description, cancel
    /// reason, error, echoed filter, quoted values) are capped with a
    /// visible `…` in proportion to the budget, output is cut head and tail
    /// to the room the metadata leaves, and the leading metadata (task id,
    /// status, exit, cursor) is the last thing a cut reaches: at the
    /// smallest budget accepted, [`MIN_TEXT_BUDGET`] (500 bytes), those
    /// lines are still whole.
    pub text_budget: usize,
    /// Foreground wait of `task_run` when the model gives no timeout
    /// (default 60 s).
    pub run_timeout: Duration,
    /// The longest `timeout` a model may ask of `task_run` (default 10 min).
    pub max_run_timeout: Duration,
    /// What a `task_run` foreground timeout does (default: detach, so the
    /// command keeps running in the background).
    pub on_timeout: OnTimeout,
    /// `task_wait`'s default and largest timeouts (30 s, 300 s).
    pub wait_timeout: Duration,
    /// See `wait_timeout`.
    pub max_wait_timeout: Duration,
    /// Bytes `task_output` reads when the model gives no `max_bytes` (8000;
    /// at least 1).
    pub output_bytes: usize,
    /// Working directory of `task_run` commands without a `cwd`.
    pub cwd: Option<std::path::PathBuf>,
    /// Extra environment of `task_run` commands.
    pub env: Vec<(String, String)>,
    /// Show output as the task wrote it. By default (false) output in the
    /// answers is cleaned for the model: terminal escape sequences (colours,
    /// cursor moves) are removed and `\r` progress bars show their last
    /// state. For hosts that render terminal text themselves. `poll` and the
    /// log always keep the raw bytes.
    pub raw_text: bool,
    /// Columns and rows of the terminal of a `task_run` with `tty=true`
    /// (default 120 × 40).
    pub tty_size: (u16, u16),
}

impl ToolBoxConfig {
    /// Checks the settings a [`ToolBox`] is made with: a `text_budget` below
    /// [`MIN_TEXT_BUDGET`] or an `output_bytes` of 0 is refused with
    /// [`Error::InvalidArgument`] naming the setting.
    ///
    /// ```
    /// use agent_tasks::tools::{ToolBoxConfig, MIN_TEXT_BUDGET};
    /// let small = ToolBoxConfig { text_budget: 50, ..Default::default() };
    /// assert!(small.check().is_err());
    /// let enough = ToolBoxConfig { text_budget: MIN_TEXT_BUDGET, ..Default::default() };
    /// assert!(enough.check().is_ok());
    /// ```
    pub fn check(&self) -> crate::Result<()> {
        if self.text_budget < MIN_TEXT_BUDGET {
            return Err(Error::invalid_argument(
                "text_budget",
                format!(
                    "{} bytes is too small: an answer needs at least {MIN_TEXT_BUDGET} bytes to carry the task id, status and cursor",
                    self.text_budget
                ),
            ));
        }
        if self.output_bytes == 0 {
            return Err(Error::invalid_argument(
                "output_bytes",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

impl Default for ToolBoxConfig {
    fn default() -> Self {
        ToolBoxConfig {
            text_budget: 12_000,
            run_timeout: Duration::from_secs(60),
            max_run_timeout: Duration::from_secs(600),
            on_timeout: OnTimeout::Detach,
            wait_timeout: Duration::from_secs(30),
            max_wait_timeout: Duration::from_secs(300),
            output_bytes: 8000,
            cwd: None,
            env: Vec::new(),
            raw_text: false,
            tty_size: (120, 40),
        }
    }
}

/// The smallest [`ToolBoxConfig::text_budget`] a [`ToolBox`] accepts: room
/// for the lines every answer opens with (task id, status, exit, cursor)
/// whole, beside the output. A smaller budget would cut them, and an answer
/// that loses its task id loses the task for the model.
pub const MIN_TEXT_BUDGET: usize = 500;

/// Bytes a filtered `task_output` scans for matching lines at most.
const FILTER_SCAN_BYTES: usize = 1 << 20;
/// Bytes read before a page's start to see an escape sequence open there
/// from its beginning (a page then starts after it).
const SEQUENCE_LOOKBACK: usize = 4096;
/// Room kept for an `output: N bytes (next cursor: N)` line.
const CURSOR_LINE: usize = 80;
/// Most tasks `task_list` shows.
const LIST_MAX: usize = 50;
/// Most bytes of a description in a `task_list` line.
const LIST_DESCRIPTION_CAP: usize = 100;
/// Room kept for `task_list`'s "older not shown" line.
const LIST_MORE_LINE: usize = 64;

/// Most bytes of an error message (also in the host's JSON); the text for
/// the model is cut to the budget besides.
const ERROR_CAP: usize = 4000;
/// Most bytes of the detail of a bad argument (serde quotes the offending
/// value, a regex error the whole pattern): its start and end are kept.
const DETAIL_CAP: usize = 400;
/// Most bytes of a name the caller gave (a tool, an argument, an id).
const NAME_CAP: usize = 80;

/// A failed call: what the model is told.
struct ToolError {
    code: &'static str,
    message: String,
}

impl ToolError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        ToolError {
            code,
            message: cap_middle(&message.into(), ERROR_CAP),
        }
    }

    fn argument(name: &str, message: impl std::fmt::Display) -> Self {
        ToolError::new(
            "INVALID_ARGUMENT",
            format!(
                "invalid argument `{}`: {}",
                cap(name, NAME_CAP),
                cap_middle(&message.to_string(), DETAIL_CAP)
            ),
        )
    }

    fn core(e: Error) -> Self {
        ToolError::new(e.code(), e.to_string())
    }
}

/// A successful call before its text is finished.
struct Answer {
    draft: Draft,
    json: Value,
}

type ToolResult = Result<Answer, ToolError>;

/// Executes tool calls against a manager, scoped to one owner: the model
/// sees and touches only that owner's tasks.
#[derive(Clone, Debug)]
pub struct ToolBox {
    manager: TaskManager,
    owner: String,
    config: ToolBoxConfig,
    /// Subagents the model can delegate to (`task_delegate`).
    agents: Vec<Agent>,
}

fn parse<T: DeserializeOwned>(args: Value) -> Result<T, ToolError> {
    let args = match args {
        // Some clients pass the arguments as a JSON string.
        Value::String(s) => serde_json::from_str(&s).map_err(|e| {
            ToolError::new(
                "INVALID_ARGUMENT",
                format!("the arguments are not valid JSON: {e}"),
            )
        })?,
        Value::Null => json!({}),
        other => other,
    };
    if !args.is_object() {
        return Err(ToolError::new(
            "INVALID_ARGUMENT",
            "the arguments must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize::<_, T>(args).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names missing and unknown fields in backticks, at the root.
        let name = if path == "." {
            inner
                .split('`')
                .nth(1)
                .map(str::to_string)
                .unwrap_or_else(|| "arguments".to_string())
        } else {
            path
        };
        ToolError::argument(&name, inner)
    })
}

fn seconds(
    name: &str,
    value: Option<f64>,
    default: Duration,
    max: Duration,
) -> Result<Duration, ToolError> {
    // The core's rule (NaN, negative: refused; huge: the longest), then
    // this toolbox's default and largest.
    match timeout_from_secs(name, value).map_err(ToolError::core)? {
        Some(limit) if value.is_some() => Ok(limit.min(max)),
        _ if value.is_some() => Ok(max), // +inf: as long as allowed
        _ => Ok(default.min(max)),
    }
}

impl ToolBox {
    /// A toolbox for `owner`'s tasks with default settings.
    pub fn new(manager: TaskManager, owner: impl Into<String>) -> Self {
        ToolBox {
            manager,
            owner: owner.into(),
            config: ToolBoxConfig::default(),
            agents: Vec::new(),
        }
    }

    /// A toolbox with custom settings, refused as
    /// [`ToolBoxConfig::check`] says (a `text_budget` below
    /// [`MIN_TEXT_BUDGET`], an `output_bytes` of 0).
    pub fn with_config(
        manager: TaskManager,
        owner: impl Into<String>,
        config: ToolBoxConfig,
    ) -> crate::Result<Self> {
        config.check()?;
        Ok(ToolBox {
            manager,
            owner: owner.into(),
            config,
            agents: Vec::new(),
        })
    }

    /// Registers a subagent the model can delegate to: the toolbox's
    /// definitions then include `task_delegate`. Refused (naming the
    /// problem) for a bad name, a schema without a required string `goal`,
    /// or a name already registered.
    ///
    /// ```
    /// use agent_tasks::tools::{Agent, ToolBox};
    /// # async fn demo(manager: agent_tasks::TaskManager) -> agent_tasks::Result<()> {
    /// let mut tools = ToolBox::new(manager, "session-1");
    /// tools.register_agent(Agent::new("summariser", "Summarises a text.", |args, _ctx| async move {
    ///     Ok(serde_json::json!({"summary": format!("about {}", args["goal"])}))
    /// }))?;
    /// assert!(tools.definitions().iter().any(|d| d.name == "task_delegate"));
    /// # Ok(()) }
    /// ```
    pub fn register_agent(&mut self, agent: Agent) -> crate::Result<&mut Self> {
        agent.check()?;
        if self.agents.iter().any(|a| a.name() == agent.name()) {
            return Err(Error::invalid_argument(
                "agent",
                format!("an agent named `{}` is registered already", agent.name()),
            ));
        }
        // An ACP agent's terminals are process tasks of this toolbox's manager.
        self.agents.push(agent.with_terminals(&self.manager));
        Ok(self)
    }

    /// Registers an ACP coding agent (shorthand for
    /// `register_agent(Agent::acp(name, description, make))`): `make` builds
    /// its [`AcpTask`](crate::AcpTask) from the model's arguments, and its
    /// terminals are served by process tasks of this toolbox's manager.
    ///
    /// ```
    /// use agent_tasks::acp::{AcpTask, PermissionPolicy};
    /// use agent_tasks::tools::ToolBox;
    /// # async fn demo(manager: agent_tasks::TaskManager) -> agent_tasks::Result<()> {
    /// let mut tools = ToolBox::new(manager, "session-1");
    /// tools.register_acp_agent("coder", "A coding agent in the repository.", |args| {
    ///     AcpTask::new(["my-acp-agent"], args["goal"].as_str().unwrap_or_default())
    ///         .cwd("/tmp")
    ///         .permissions(PermissionPolicy::DenyAll)
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn register_acp_agent<F>(
        &mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        make: F,
    ) -> crate::Result<&mut Self>
    where
        F: Fn(&Value) -> crate::AcpTask + Send + Sync + 'static,
    {
        self.register_agent(Agent::acp(name, description, make))
    }

    /// The registered agents.
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// The owner this toolbox acts for.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The tools this toolbox answers: the task tools, and `task_delegate`
    /// once an agent is registered.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        let mut all = definitions();
        if !self.agents.is_empty() {
            all.push(delegate_definition(&self.agents));
        }
        all
    }

    /// Executes one tool call. Never panics and always answers: failures
    /// come back with `is_error` and a text naming the problem.
    pub async fn call(&self, name: &str, args: Value) -> ToolResponse {
        let result = match name {
            TASK_RUN => self.run(args).await,
            TASK_LIST => self.list(args),
            TASK_OUTPUT => self.output(args),
            TASK_WAIT => self.wait(args).await,
            TASK_CANCEL => self.cancel(args).await,
            TASK_SEND => self.send(args),
            TASK_DELEGATE if !self.agents.is_empty() => self.delegate(args).await,
            other => Err(ToolError::new(
                "UNKNOWN_TOOL",
                format!(
                    "there is no tool `{}`; the tools are: {}",
                    cap(other, NAME_CAP),
                    self.definitions()
                        .iter()
                        .map(|d| d.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        };
        let (answer, is_error) = match result {
            Ok(answer) => (answer, false),
            Err(e) => (
                Answer {
                    draft: Draft::lines(vec![format!("error: {}", e.message)]),
                    json: json!({ "error": { "code": e.code, "message": e.message } }),
                },
                true,
            ),
        };
        // The one place every answer's text is finished within the budget.
        let Answer { draft, mut json } = answer;
        let done = finish(draft, self.config.text_budget, self.config.raw_text);
        if let Some(omitted) = json.get_mut("bytes_omitted") {
            *omitted = json!(done.omitted);
        }
        ToolResponse {
            text: done.text,
            json,
            is_error,
        }
    }

    /// [`ToolBox::call`] with the arguments as a JSON string.
    pub async fn call_json(&self, name: &str, args: &str) -> ToolResponse {
        self.call(name, Value::String(args.to_string())).await
    }

    fn caps(&self) -> Caps {
        Caps::for_budget(self.config.text_budget)
    }

    /// The metadata lines an answer about one task opens with
    /// ([`task_header`]), and for a subagent the `answers:` line (the agent
    /// and arguments it works for), rendered as the end notification renders
    /// it.
    fn header(&self, info: &TaskInfo) -> Vec<String> {
        let mut lines = task_header(info, self.caps());
        // The task was just read; gone since, it simply has no source line.
        if let Ok(Some(source)) = self.manager.source(info.id.as_str()) {
            lines.push(source.answers_line(self.caps().field));
        }
        lines
    }

    /// For an answer that shows the model a task's end: the value the task
    /// returned (a subagent's answer), as a metadata block cut in the middle
    /// to a third of the budget; and the end counts as told, so the end
    /// notification does not repeat it.
    fn told_end(&self, id: &str, result: Option<&TaskResult>, meta: &mut Vec<String>) {
        if let Some(usage) = result.and_then(|r| r.usage.as_ref()) {
            meta.extend(usage.text_lines().lines().skip(1).map(str::to_string));
        }
        if let Some(value) = result.and_then(|r| r.value.as_ref()) {
            let budget = self.config.text_budget / 3;
            meta.push(format!(
                "result:\n{}",
                cap_middle(&compact_value(value, budget), budget)
            ));
        }
        // The task exists (it was just read); a failure here only means a
        // notification may repeat what the model saw.
        let _ = self.manager.end_was_told(id);
    }

    /// A page of task `id`'s output for a text view: up to `max` bytes from
    /// `cursor`, both ends moved to points outside any escape sequence and
    /// character, so the page cleaned alone shows no piece of one (no
    /// `;32mline 0334 ok`), and pages read on from `next_cursor` clean to
    /// what the whole output cleans to. A start inside a sequence moves on
    /// past it (a `tail` view starts on a line when one starts near); an end
    /// inside one moves back to its start, where the next page begins, or to
    /// the page's last line break when more output follows. The cursors of
    /// the answer are those of the moved ends.
    fn text_page(
        &self,
        id: &str,
        cursor: u64,
        max: usize,
        tail: bool,
    ) -> Result<PollResponse, ToolError> {
        let start = self.clean_start(id, cursor, tail)?;
        let mut page = self.manager.poll(id, start, max).map_err(ToolError::core)?;
        if page.eof || page.data.is_empty() {
            return Ok(page);
        }
        let more = page.next_cursor < page.info.output.total_bytes;
        let mut cut = clean_cut(&page.data, more);
        if cut == 0 {
            // One sequence longer than the page (an image, a long title):
            // it shows no text, so the page reads on to its end.
            let mut len = max;
            while cut == 0 && len < crate::MAX_POLL_BYTES {
                len = len.saturating_mul(4).min(crate::MAX_POLL_BYTES);
                let longer = self
                    .manager
                    .poll(id, page.cursor, len)
                    .map_err(ToolError::core)?;
                if longer.cursor != page.cursor {
                    break;
                }
                let end = clean_start(&longer.data, 1, false);
                if end < longer.data.len() || longer.eof {
                    page = longer;
                    cut = end;
                } else if longer.data.len() < len {
                    break; // the rest is not written yet
                }
            }
            if cut == 0 {
                // Not ended within the most a poll reads, or not written
                // yet: shown as it is, so the reader moves on.
                cut = page.data.len();
            }
        }
        if cut < page.data.len() {
            page.data.truncate(cut);
            page.next_cursor = page.cursor + cut as u64;
            page.eof = false;
            let end = page.next_cursor;
            page.spans.retain(|s| s.offset < end);
            if let Some(last) = page.spans.last_mut() {
                last.len = last.len.min(end - last.offset);
            }
        }
        Ok(page)
    }

    /// `cursor` moved on to the first point outside any escape sequence and
    /// character, seen from [`SEQUENCE_LOOKBACK`] bytes before it; for a
    /// `tail` view to a line start when one comes soon.
    fn clean_start(&self, id: &str, cursor: u64, tail: bool) -> Result<u64, ToolError> {
        if cursor == 0 {
            return Ok(0);
        }
        let from = cursor.saturating_sub(SEQUENCE_LOOKBACK as u64);
        let before = (cursor - from) as usize;
        let window = self
            .manager
            .poll(id, from, before + SEQUENCE_LOOKBACK)
            .map_err(ToolError::core)?;
        if window.cursor != from || window.data.len() <= before {
            // A gap (the disk cap) or nothing past the cursor yet: nothing
            // to see a sequence in.
            return Ok(cursor);
        }
        let mut at = clean_start(&window.data, before, tail);
        if tail && at == window.data.len() {
            // Nothing starts after the cursor (it is in the last character):
            // the view starts at that character's first byte instead.
            at = before;
            while at > before.saturating_sub(3) && window.data[at] & 0b1100_0000 == 0b1000_0000 {
                at -= 1;
            }
            return Ok(from + at as u64);
        }
        Ok((from + at as u64).max(cursor))
    }

    /// The owner's latest ids, at most 20 and within the ids cap.
    fn known_ids(&self) -> String {
        let tasks = self.manager.list(&ListFilter::owner(self.owner.clone()));
        if tasks.is_empty() {
            return "you have no tasks".to_string();
        }
        let room = self.caps().ids;
        let mut ids = String::new();
        let mut shown = 0;
        for info in tasks.iter().rev().take(20) {
            let id = info.id.as_str();
            if shown > 0 && ids.len() + id.len() + 2 > room {
                break;
            }
            if shown > 0 {
                ids.push_str(", ");
            }
            ids.push_str(id);
            shown += 1;
        }
        if shown < tasks.len() {
            format!("your latest tasks are: {ids}, … ({} in all)", tasks.len())
        } else {
            format!("your tasks are: {ids}")
        }
    }

    /// The info of one of this owner's tasks, or an error that lists the
    /// ids that do exist.
    fn task(&self, id: &str) -> Result<TaskInfo, ToolError> {
        match self.manager.info(id) {
            Ok(info) if info.owner == self.owner => Ok(info),
            Ok(_) | Err(Error::TaskNotFound { .. }) => Err(ToolError::new(
                "TASK_NOT_FOUND",
                format!(
                    "no task with id `{}`; {}",
                    cap(id, NAME_CAP),
                    self.known_ids()
                ),
            )),
            Err(e) => Err(ToolError::new(
                e.code(),
                format!("{}; {}", cap(&e.to_string(), DETAIL_CAP), self.known_ids()),
            )),
        }
    }

    /// An answer of `meta`, then the task's whole output so far (head and
    /// tail within the room `meta` leaves) under a line saying where it
    /// ends; `json` is given that end (the next cursor) and the bytes left
    /// out between head and tail. The tail of every
    /// answer that shows a task's output at its end (`task_run`, `task_wait`).
    fn answer_with_output(
        &self,
        id: &str,
        mut meta: Vec<String>,
        json: impl FnOnce(u64, u64) -> Value,
    ) -> ToolResult {
        let (data, omitted, end) = self.read_all(id, &meta, CURSOR_LINE)?;
        meta.push(format!("output: {end} bytes (next cursor: {end})"));
        let at = meta.len();
        Ok(Answer {
            draft: Draft {
                meta,
                body: Some(Body {
                    label: "output",
                    data,
                    omitted,
                    omitted_line_at: at,
                }),
            },
            json: json(end, omitted),
        })
    }

    /// The task's whole output so far, its head and tail within the room
    /// `meta` (and `reserve` bytes of metadata still to come) leave: the
    /// text, the bytes left out in between, and the output's end.
    fn read_all(
        &self,
        id: &str,
        meta: &[String],
        reserve: usize,
    ) -> Result<(Vec<u8>, u64, u64), ToolError> {
        let room = Draft::lines(meta.to_vec()).room(self.config.text_budget, reserve);
        let half = room.saturating_sub(64) / 2;
        let mut preview = self
            .manager
            .preview(id, half, half)
            .map_err(ToolError::core)?;
        if preview.omitted_bytes > 0 {
            // Head and tail meet at no cut of the writer's: each is moved
            // to a point outside any escape sequence (the head back, the
            // tail on), so neither shows a piece of one.
            let head_end = clean_cut(&preview.head, true);
            let dropped = preview.head.len() - head_end;
            preview.head.truncate(head_end);
            let tail_from = preview.total_bytes - preview.tail.len() as u64;
            let tail_start = self.clean_start(id, tail_from, true)?;
            // (A start moved back into the head's side is not taken.)
            let skip = (tail_start.saturating_sub(tail_from) as usize).min(preview.tail.len());
            preview.tail.drain(..skip);
            preview.omitted_bytes += (dropped + skip) as u64;
        }
        Ok((
            preview.text().into_bytes(),
            preview.omitted_bytes,
            preview.total_bytes,
        ))
    }

    /// One line saying how a readiness wait ended.
    fn readiness_line(&self, outcome: &WaitOutcome) -> String {
        match outcome {
            WaitOutcome::Matched { line, cursor } => {
                let shown = if self.config.raw_text {
                    line.clone()
                } else {
                    crate::clean::clean_text(line.as_bytes())
                };
                format!(
                    "ready: an output line matched (next cursor: {cursor}): {}",
                    field(&shown, self.caps().field)
                )
            }
            WaitOutcome::PortOpen { port } => {
                format!("ready: port {port} accepts connections")
            }
            WaitOutcome::Ended(_) => "not ready: the task ended first".to_string(),
            WaitOutcome::TimedOut => "not ready: the wait timed out; the task goes on".to_string(),
        }
    }
}
