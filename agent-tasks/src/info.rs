//! The public wire types: what a task is ([`TaskInfo`]), how it ended
//! ([`TaskResult`]), why it was stopped ([`CancelReason`]), and what a reader
//! gets back from `poll` ([`PollResponse`]). All derive `serde` and
//! `schemars::JsonSchema`, so bindings and tools share one shape.

use serde::{Deserialize, Serialize};

use crate::id::TaskId;
use crate::sink::Stream;

/// Where a task is in its life. Every status but `queued` and `running` is
/// terminal, and a terminal status never changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for capacity (reserved for hosts that choose queueing).
    Queued,
    /// Running now.
    Running,
    /// Ended successfully (exit code 0 for processes).
    Completed,
    /// Ended with an error, a non-zero exit, or a panic.
    Failed,
    /// Stopped by a cancel (user, shutdown, owner closed).
    Cancelled,
    /// Stopped because its timeout passed.
    TimedOut,
    /// Was running when its host died; its end is unknown.
    Lost,
}

impl TaskStatus {
    /// The status a task ends with: the stop that reached it decides
    /// (`cancelled`, `timed_out`), else whether it succeeded. The one rule
    /// for every end, a host's own or one its supervisor recorded.
    pub(crate) fn of_end(stop: Option<&CancelReason>, success: bool) -> TaskStatus {
        match stop {
            Some(reason) => reason.terminal_status(),
            None if success => TaskStatus::Completed,
            None => TaskStatus::Failed,
        }
    }

    /// True once the task has ended; the status will not change again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, TaskStatus::Queued | TaskStatus::Running)
    }

    /// The status's wire name, e.g. `timed_out`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::TimedOut => "timed_out",
            TaskStatus::Lost => "lost",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What asked a task to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelKind {
    /// The host (or the model through a tool) cancelled it.
    User,
    /// Its timeout passed.
    Timeout,
    /// The manager is shutting down.
    Shutdown,
    /// Its owner's session was closed.
    OwnerClosed,
    /// It printed nothing for its idle timeout (with `cancel_on_stall`).
    Stalled,
    /// Something outside the host stopped it (`agent-tasks kill`): news to
    /// the host, so its end is notified like a natural one.
    External,
}

/// Why a task was asked to stop; recorded in the info and passed to the task.
///
/// ```
/// use agent_tasks::{CancelKind, CancelReason};
/// let reason = CancelReason::user("the user changed their mind");
/// assert_eq!(reason.kind, CancelKind::User);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CancelReason {
    /// What asked for the stop.
    pub kind: CancelKind,
    /// Free text from whoever asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl CancelReason {
    /// A cancel by the host or the model, with an optional message.
    pub fn user(message: impl Into<String>) -> Self {
        let message = message.into();
        CancelReason {
            kind: CancelKind::User,
            message: (!message.is_empty()).then_some(message),
        }
    }

    /// A stop because the task's timeout passed.
    pub fn timeout() -> Self {
        CancelReason {
            kind: CancelKind::Timeout,
            message: None,
        }
    }

    /// A stop because the manager is shutting down.
    pub fn shutdown(message: impl Into<String>) -> Self {
        let message = message.into();
        CancelReason {
            kind: CancelKind::Shutdown,
            message: (!message.is_empty()).then_some(message),
        }
    }

    /// The terminal status a task stopped for this reason ends with.
    pub fn terminal_status(&self) -> TaskStatus {
        match self.kind {
            CancelKind::Timeout | CancelKind::Stalled => TaskStatus::TimedOut,
            _ => TaskStatus::Cancelled,
        }
    }
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            CancelKind::User => "cancelled",
            CancelKind::Timeout => "timed out",
            CancelKind::Shutdown => "shutdown",
            CancelKind::OwnerClosed => "owner closed",
            CancelKind::Stalled => "stalled",
            CancelKind::External => "stopped from outside",
        };
        match &self.message {
            Some(m) => write!(f, "{kind}: {m}"),
            None => f.write_str(kind),
        }
    }
}

/// How a process task's processes are held together, so that a cancel, a
/// timeout or the task's end reaches every descendant, including one that
/// left the process group (`setsid`, `setpgid`, a double fork).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Containment {
    /// A cgroup v2 of its own: every descendant is in it whatever it does,
    /// and the whole cgroup is killed at once.
    Cgroup,
    /// The host process is a child subreaper (orphaned descendants are
    /// adopted by the host, which reaps them) and the descendants are found
    /// by a walk of `/proc` (the task's process group, its marker variable
    /// `AGENT_TASKS_TASK`, the parent chain).
    Subreaper,
    /// The process group only, plus the same `/proc` walk when stopping; an
    /// orphan that left the group and cleared its environment can escape.
    ProcessGroup,
}

impl Containment {
    /// The wire name, e.g. `process_group`.
    pub fn as_str(self) -> &'static str {
        match self {
            Containment::Cgroup => "cgroup",
            Containment::Subreaper => "subreaper",
            Containment::ProcessGroup => "process_group",
        }
    }
}

impl std::fmt::Display for Containment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExitInfo {
    /// The exit code, if it exited normally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The signal that killed it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

/// Byte counts and state of a task's output stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OutputStats {
    /// Bytes the task has written in all (the end offset of its stream).
    pub total_bytes: u64,
    /// Of those, bytes written to stdout.
    pub stdout_bytes: u64,
    /// Of those, bytes written to stderr.
    pub stderr_bytes: u64,
    /// Whether the output has been spilled to `output.log`.
    pub spilled: bool,
    /// Bytes of the stream stored in `output.log` from its start (the head).
    pub disk_bytes: u64,
    /// Bytes that are neither on disk nor in memory (disk cap or disk error).
    pub omitted_bytes: u64,
    /// Bytes the output buffer holds in memory now (its own accounting).
    pub memory_bytes: u64,
    /// The last disk write error, if writing the log failed; the task goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_error: Option<String>,
    /// Path of `output.log`, once spilled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_path: Option<String>,
}

/// Everything known about a task at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskInfo {
    /// The task's id.
    pub id: TaskId,
    /// Its kind (`process`, `fn`, or a host's own).
    pub kind: String,
    /// A one-line description for humans and models.
    pub description: String,
    /// The session that owns it.
    pub owner: String,
    /// Where it is in its life.
    pub status: TaskStatus,
    /// True while it runs in the foreground (someone awaits it).
    pub foreground: bool,
    /// True once it was moved from the foreground to the background.
    pub detached: bool,
    /// Left running by `shutdown` and `close_owner`.
    pub keep_alive: bool,
    /// True while its processes are stopped by `pause` (until `resume`).
    #[serde(default)]
    pub paused: bool,
    /// When it was spawned (milliseconds since the Unix epoch).
    pub created_at_ms: u64,
    /// When it ended (milliseconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// Run time so far, or in all once it ended. It counts from the start of
    /// the run: a wait in the queue is not run time (0 while queued, and for
    /// a task cancelled in the queue).
    pub duration_ms: u64,
    /// Process id (the process group id) for process tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Set when the task was found lost after a restart but its process
    /// still runs: that process's id. `kill_orphan` ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphan_pid: Option<u32>,
    /// How a process task's descendants are contained (cgroup, subreaper or
    /// process group), once its process started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<Containment>,
    /// A process task's resource limits as applied: those the kernel
    /// enforces, and those asked for that are not (with why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::limits::LimitsInfo>,
    /// How the process ended, for process tasks that ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
    /// Why it was asked to stop, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<CancelReason>,
    /// The error message of a failed task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The last error of a host sink; the task went on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink_error: Option<String>,
    /// Its output stream's counts.
    pub output: OutputStats,
}

/// How a task ended: the final record returned by `collect` and
/// `wait_foreground`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskResult {
    /// The task's id.
    pub id: TaskId,
    /// Its terminal status.
    pub status: TaskStatus,
    /// How the process ended (process tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
    /// The value a function task returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// The error of a failed task (message, panic text, OS error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it was stopped, for `cancelled` and `timed_out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<CancelReason>,
    /// Run time in milliseconds, from the start of the run (a wait in the
    /// queue does not count).
    pub duration_ms: u64,
    /// Its output stream's final counts.
    pub output: OutputStats,
    /// What it changed in its tracked folder, if changes were tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_files: Option<crate::changes::ChangedFiles>,
    /// What a process task used: peak memory and CPU time, and where the
    /// figures came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::limits::Usage>,
}

/// A run of bytes of one stream inside a poll window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StreamSpan {
    /// Offset of the first byte in the task's stream.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Which stream these bytes came from.
    pub stream: Stream,
}

/// The answer to `poll`: the task's info and the output written since a
/// cursor. Polling again with `next_cursor` continues where this ended, so
/// a reader sees every byte exactly once (unless the disk cap dropped some:
/// then `omitted_bytes` says how many were skipped).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct PollResponse {
    /// The task's info now.
    pub info: TaskInfo,
    /// Offset of the first returned byte (past any omitted bytes).
    pub cursor: u64,
    /// Where to poll from next.
    pub next_cursor: u64,
    /// Bytes between the requested cursor and `cursor` that no longer exist.
    pub omitted_bytes: u64,
    /// True when the task has ended and `next_cursor` is the end of its output.
    pub eof: bool,
    /// The output bytes; serialised as lossily decoded UTF-8 text.
    #[serde(rename = "text", serialize_with = "serialize_lossy")]
    #[schemars(with = "String")]
    pub data: Vec<u8>,
    /// Which streams the returned bytes came from, where known.
    pub spans: Vec<StreamSpan>,
    /// True only for [`crate::TaskManager::poll_wait`] answering because its
    /// timeout passed with nothing past the cursor: said, never inferred
    /// from an empty page (a page may be empty for other reasons: a
    /// character whose rest is not written yet, an entry going away).
    pub timed_out: bool,
}

impl PollResponse {
    /// The output decoded as UTF-8, with invalid bytes replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// The start and the end of a task's output, for showing to a model.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Preview {
    /// The first bytes of the stream.
    #[serde(serialize_with = "serialize_lossy")]
    #[schemars(with = "String")]
    pub head: Vec<u8>,
    /// The last bytes of the stream (never overlapping the head).
    #[serde(serialize_with = "serialize_lossy")]
    #[schemars(with = "String")]
    pub tail: Vec<u8>,
    /// Bytes between head and tail that are not shown.
    pub omitted_bytes: u64,
    /// The stream's total length.
    pub total_bytes: u64,
}

impl Preview {
    /// Head and tail as text, joined by `[... N bytes omitted ...]` when
    /// something lies between them.
    pub fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.omitted_bytes > 0 {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&omitted_marker(self.omitted_bytes));
            text.push('\n');
        }
        text.push_str(&String::from_utf8_lossy(&self.tail));
        text
    }
}

/// Where a delegated task came from: the registered agent the model asked
/// for and the arguments it gave, so a result can say what it answers.
///
/// ```
/// use agent_tasks::TaskSource;
/// let source = TaskSource::new("researcher", serde_json::json!({"goal": "find the bug"}));
/// assert_eq!(source.agent, "researcher");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskSource {
    /// The agent's registered name.
    pub agent: String,
    /// The arguments it was started with (at least `goal`).
    pub arguments: serde_json::Value,
}

impl TaskSource {
    /// A source: `agent` started with `arguments`.
    pub fn new(agent: impl Into<String>, arguments: serde_json::Value) -> Self {
        TaskSource {
            agent: agent.into(),
            arguments,
        }
    }

    /// One line for a model: the agent and its arguments, cut to `max`
    /// characters.
    pub(crate) fn summary(&self, max: usize) -> String {
        format!(
            "{} with {}",
            self.agent,
            compact_value(&self.arguments, max.saturating_sub(self.agent.len() + 6))
        )
    }

    /// The `answers: <agent> with <arguments>` line every text for a model
    /// about a subagent shows (the end notification, `task_wait`,
    /// `task_output`): one line (a line break shows as `⏎`, so an argument
    /// cannot pose as another line), about `max` characters at most.
    pub(crate) fn answers_line(&self, max: usize) -> String {
        let summary = self.summary(max);
        let flat = if summary.contains(['\n', '\r']) {
            summary.replace("\r\n", "⏎").replace(['\n', '\r'], "⏎")
        } else {
            summary
        };
        format!("answers: {flat}")
    }
}

/// A task's value for a model: a string as it is, anything else as compact
/// JSON, cut in the middle to at most about `max` characters (head and
/// tail kept, the number of characters left out said between them).
pub(crate) fn compact_value(value: &serde_json::Value, max: usize) -> String {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let count = text.chars().count();
    if count <= max {
        return text;
    }
    let keep = max.saturating_sub(40) / 2;
    let head: String = text.chars().take(keep).collect();
    let tail: String = text.chars().skip(count - keep).collect();
    format!(
        "{head}[... {} characters omitted ...]{tail}",
        count - 2 * keep
    )
}

/// The text put between the kept head and tail of an over-long output.
pub(crate) fn omitted_marker(omitted: u64) -> String {
    format!("[... {omitted} bytes omitted ...]")
}

/// A duration for people and models: `850 ms`, `12.3 s`, `4 min 5 s`.
pub(crate) fn human_duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

fn serialize_lossy<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

impl TaskStatus {
    /// Every status, in declaration order.
    pub const ALL: [TaskStatus; 7] = [
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
        TaskStatus::TimedOut,
        TaskStatus::Lost,
    ];
}

impl std::str::FromStr for TaskStatus {
    type Err = crate::Error;

    /// A status from its wire name (`timed_out`, …); anything else is an
    /// `InvalidArgument` naming `status` and listing the names.
    ///
    /// ```
    /// use agent_tasks::TaskStatus;
    /// assert_eq!("lost".parse::<TaskStatus>()?, TaskStatus::Lost);
    /// assert!("done".parse::<TaskStatus>().unwrap_err().to_string().contains("timed_out"));
    /// # Ok::<(), agent_tasks::Error>(())
    /// ```
    fn from_str(s: &str) -> crate::Result<Self> {
        crate::names::by_name("status", s, &TaskStatus::ALL, TaskStatus::as_str)
    }
}

impl CancelKind {
    /// Every kind, in declaration order.
    pub const ALL: [CancelKind; 6] = [
        CancelKind::User,
        CancelKind::Timeout,
        CancelKind::Shutdown,
        CancelKind::OwnerClosed,
        CancelKind::Stalled,
        CancelKind::External,
    ];

    /// The kind's wire name, e.g. `owner_closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelKind::User => "user",
            CancelKind::Timeout => "timeout",
            CancelKind::Shutdown => "shutdown",
            CancelKind::OwnerClosed => "owner_closed",
            CancelKind::Stalled => "stalled",
            CancelKind::External => "external",
        }
    }
}

impl std::fmt::Display for CancelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CancelKind {
    type Err = crate::Error;

    /// A kind from its wire name; anything else is an `InvalidArgument`
    /// naming `kind` and listing the names.
    fn from_str(s: &str) -> crate::Result<Self> {
        crate::names::by_name("kind", s, &CancelKind::ALL, CancelKind::as_str)
    }
}
