//! The plain objects and string enums that cross the boundary, as napi-rs
//! declares them (and generates their TypeScript types from). Field names
//! are the schema's (`schema/*.json`) in camelCase; optional fields are
//! absent when the core's JSON omits them. Byte counts, offsets and times
//! are JS numbers (exact up to 2^53). Their conversions from the core's
//! types are in `convert`; the arguments going in are parsed in `args`.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

/// Where a task is in its life; all but `queued` and `running` are terminal.
#[napi(string_enum)]
#[derive(Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// Waiting for capacity.
    #[napi(value = "queued")]
    Queued,
    /// Running now.
    #[napi(value = "running")]
    Running,
    /// Ended successfully (exit code 0 for processes).
    #[napi(value = "completed")]
    Completed,
    /// Ended with an error, a non-zero exit, or a thrown error.
    #[napi(value = "failed")]
    Failed,
    /// Stopped by a cancel.
    #[napi(value = "cancelled")]
    Cancelled,
    /// Stopped because its timeout passed.
    #[napi(value = "timed_out")]
    TimedOut,
    /// Was running when its host died; its end is unknown.
    #[napi(value = "lost")]
    Lost,
}

/// What asked a task to stop.
#[napi(string_enum)]
#[derive(Debug, PartialEq, Eq)]
pub enum CancelKind {
    /// The host (or the model through a tool) cancelled it.
    #[napi(value = "user")]
    User,
    /// Its timeout passed.
    #[napi(value = "timeout")]
    Timeout,
    /// The manager is shutting down.
    #[napi(value = "shutdown")]
    Shutdown,
    /// Its owner's session was closed.
    #[napi(value = "owner_closed")]
    OwnerClosed,
    /// It printed nothing for its idle timeout (with `cancelOnStall`).
    #[napi(value = "stalled")]
    Stalled,
    /// Something outside the host stopped it (`agent-tasks kill`).
    #[napi(value = "external")]
    External,
}

/// How a process task's processes are kept together, so that none outlives
/// the task.
#[napi(string_enum)]
#[derive(Debug, PartialEq, Eq)]
pub enum Containment {
    /// A cgroup v2 of the task's own.
    #[napi(value = "cgroup")]
    Cgroup,
    /// The host is a child subreaper; descendants are found by a walk.
    #[napi(value = "subreaper")]
    Subreaper,
    /// The process group plus a walk of descendants.
    #[napi(value = "process_group")]
    ProcessGroup,
}

/// What a foreground timeout does.
#[napi(string_enum)]
#[derive(Debug, PartialEq, Eq)]
pub enum OnTimeout {
    /// Move the task to the background and release the waiting caller.
    #[napi(value = "detach")]
    Detach,
    /// Stop the task: it ends `timed_out`.
    #[napi(value = "kill")]
    Kill,
}

/// Why a notification was made.
#[napi(string_enum)]
#[derive(Debug, PartialEq, Eq)]
pub enum NotificationKind {
    /// A background or detached task ended.
    #[napi(value = "finished")]
    Finished,
    /// A task was found lost after a restart.
    #[napi(value = "lost")]
    Lost,
    /// A task was found lost, and its process still runs.
    #[napi(value = "orphaned")]
    Orphaned,
    /// An output line matched a watch pattern (`detail` holds the line).
    #[napi(value = "watch_match")]
    WatchMatch,
    /// Watching stopped after its maximum number of notifications.
    #[napi(value = "watch_stopped")]
    WatchStopped,
    /// A heartbeat: the output since the last one.
    #[napi(value = "progress")]
    Progress,
    /// The task printed nothing for its idle timeout.
    #[napi(value = "stalled")]
    Stalled,
    /// An ACP agent finished a turn and waits for a follow-up (`detail`
    /// holds its final message); the task still runs.
    #[napi(value = "turn_ended")]
    TurnEnded,
}

/// Why a task was asked to stop.
#[napi(object)]
pub struct CancelReason {
    /// What asked for the stop.
    pub kind: CancelKind,
    /// Free text from whoever asked.
    pub message: Option<String>,
}

/// How a process ended.
#[napi(object)]
pub struct ExitInfo {
    /// The exit code, if it exited normally.
    pub code: Option<i32>,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
}

/// Byte counts and state of a task's output stream.
#[napi(object, object_to_js = false)]
pub struct OutputStats {
    /// Bytes the task has written in all (the end offset of its stream).
    pub total_bytes: i64,
    /// Of those, bytes written to stdout.
    pub stdout_bytes: i64,
    /// Of those, bytes written to stderr.
    pub stderr_bytes: i64,
    /// Whether the output has been spilled to `output.log`.
    pub spilled: bool,
    /// Bytes of the stream stored in `output.log` from its start.
    pub disk_bytes: i64,
    /// Bytes that are neither on disk nor in memory (disk cap or error).
    pub omitted_bytes: i64,
    /// Bytes the output buffer holds in memory now.
    pub memory_bytes: i64,
    /// The last disk write error, if writing the log failed.
    pub write_error: Option<String>,
    /// Path of `output.log`, once spilled.
    pub log_path: Option<String>,
}

/// Everything known about a task at one moment.
#[napi(object, object_to_js = false)]
pub struct TaskInfo {
    /// The task's id, e.g. `process-k3f9x0a2mq`.
    pub id: String,
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
    /// Left running by `close` and `closeOwner`.
    pub keep_alive: bool,
    /// True while its processes are stopped by `pause` (until `resume`).
    /// Always present in what the manager returns; optional as in the core's
    /// schema (manifests written before it existed lack it).
    pub paused: Option<bool>,
    /// When it was spawned (milliseconds since the Unix epoch).
    pub created_at_ms: i64,
    /// When it ended (milliseconds since the Unix epoch).
    pub finished_at_ms: Option<i64>,
    /// Run time so far, or in all once it ended.
    pub duration_ms: i64,
    /// Process (group) id, for process tasks.
    pub pid: Option<u32>,
    /// The still-running process of a task found lost after a restart.
    pub orphan_pid: Option<u32>,
    /// How its processes are contained (process tasks).
    pub containment: Option<Containment>,
    /// How the process ended, for process tasks that ended.
    pub exit: Option<ExitInfo>,
    /// Why it was asked to stop, if it was.
    pub cancel_reason: Option<CancelReason>,
    /// The error message of a failed task.
    pub error: Option<String>,
    /// The last error of a host sink; the task went on.
    pub sink_error: Option<String>,
    /// Its output stream's counts.
    pub output: OutputStats,
}

/// What a task changed in its tracked folder (paths relative to it).
#[napi(object)]
pub struct ChangedFiles {
    /// The folder that was tracked.
    pub root: String,
    /// Files that exist now and did not before.
    pub created: Vec<String>,
    /// Files whose size or modification time changed.
    pub modified: Vec<String>,
    /// Files that existed before and do not now.
    pub deleted: Vec<String>,
    /// True if the folder held more files than a snapshot looks at.
    pub truncated: bool,
}

/// How a task ended: returned by `collect` and `waitForeground`.
#[napi(object)]
pub struct TaskResult {
    /// The task's id.
    pub id: String,
    /// Its terminal status.
    pub status: TaskStatus,
    /// How the process ended (process tasks).
    pub exit: Option<ExitInfo>,
    /// The value a function task returned (as JSON would carry it).
    pub value: Option<serde_json::Value>,
    /// The error of a failed task (message and stack, OS error).
    pub error: Option<String>,
    /// Why it was stopped, for `cancelled` and `timed_out`.
    pub cancel_reason: Option<CancelReason>,
    /// Run time in milliseconds.
    pub duration_ms: i64,
    /// Its output stream's final counts.
    pub output: OutputStats,
    /// What it changed in its tracked folder, if changes were tracked.
    pub changed_files: Option<ChangedFiles>,
}

/// A run of bytes of one stream inside a poll window.
#[napi(object)]
pub struct StreamSpan {
    /// Offset of the first byte in the task's stream.
    pub offset: i64,
    /// Length in bytes.
    pub len: i64,
    /// `stdout`, `stderr`, or a task-defined stream name.
    pub stream: String,
}

/// The answer to `poll`: the task's info and the output written since a
/// cursor. Poll again from `nextCursor` to continue; every byte is seen once.
#[napi(object, object_to_js = false)]
pub struct PollResponse {
    /// The task's info now.
    pub info: TaskInfo,
    /// Offset of the first returned byte (past any omitted bytes).
    pub cursor: i64,
    /// Where to poll from next.
    pub next_cursor: i64,
    /// Bytes between the requested cursor and `cursor` that no longer exist.
    pub omitted_bytes: i64,
    /// True when the task has ended and `nextCursor` is the end of its output.
    pub eof: bool,
    /// The output bytes.
    pub data: Buffer,
    /// The output as text (invalid UTF-8 replaced; never cut inside a
    /// character while the task runs).
    pub text: String,
    /// Which streams the returned bytes came from, where known.
    pub spans: Vec<StreamSpan>,
    /// True when a waiting poll's timeout passed with nothing past the cursor.
    pub timed_out: bool,
}

/// The start and the end of a task's output, for showing to a model.
#[napi(object)]
pub struct Preview {
    /// The first bytes of the stream, as text.
    pub head: String,
    /// The last bytes of the stream (never overlapping the head), as text.
    pub tail: String,
    /// Bytes between head and tail that are not shown.
    pub omitted_bytes: i64,
    /// The stream's total length.
    pub total_bytes: i64,
    /// Head and tail joined by `[... N bytes omitted ...]` when something
    /// lies between them.
    pub text: String,
}

/// A message for the host to show its model, delivered until acknowledged.
#[napi(object)]
pub struct Notification {
    /// `<task-id>.<occasion>`; pass it to `ack`.
    pub id: String,
    /// Why it was made.
    pub kind: NotificationKind,
    /// The task it is about.
    pub task_id: String,
    /// The task's owner; notifications are drained per owner.
    pub owner: String,
    /// The task's kind.
    pub task_kind: String,
    /// The task's description.
    pub description: String,
    /// The task's status when the notification was made.
    pub status: TaskStatus,
    /// How its process ended.
    pub exit: Option<ExitInfo>,
    /// Why it was stopped.
    pub reason: Option<CancelReason>,
    /// The error of a failed task.
    pub error: Option<String>,
    /// Run time in milliseconds.
    pub duration_ms: i64,
    /// The last lines of output (at most 20 lines, 3,000 characters); for
    /// a heartbeat, of the output since the last one.
    pub output_tail: String,
    /// What the occasion adds: the matching line of a watch match, how long
    /// a stalled task has been silent.
    pub detail: Option<String>,
    /// The delegation a subagent answers: the agent and its arguments.
    pub source: Option<TaskSource>,
    /// The value the task returned, rendered for a model.
    pub value: Option<String>,
    /// When it was made (milliseconds since the Unix epoch).
    pub created_at_ms: i64,
    /// The text for the model: metadata first, then the output tail.
    pub text: String,
}

/// One open task in a [`Roster`].
#[napi(object)]
pub struct RosterItem {
    /// The task's id.
    pub id: String,
    /// Its kind (`process`, `fn`, `agent`, …).
    pub kind: String,
    /// The registered agent it runs, for a delegated subagent.
    pub agent: Option<String>,
    /// Its description.
    pub description: String,
    /// `running` or `queued`.
    pub status: TaskStatus,
    /// How long it has run, in milliseconds.
    pub running_ms: i64,
    /// Its last line of output, if it printed one.
    pub last_line: Option<String>,
    /// Notifications about it not acknowledged yet.
    pub pending_notifications: u32,
}

/// An owner's open background work: `text` for the model (within its
/// budget; empty when nothing is open), `items` for a UI.
#[napi(object)]
pub struct Roster {
    /// A few lines for the model.
    pub text: String,
    /// Every open task, newest first (the text may show fewer).
    pub items: Vec<RosterItem>,
}

/// Where a delegated task came from.
#[napi(object)]
pub struct TaskSource {
    /// The agent's registered name.
    pub agent: String,
    /// The arguments it was started with (at least `goal`).
    pub arguments: serde_json::Value,
}

/// How `collect` ended: the result, or the info of a task still running
/// when the timeout passed.
#[napi(discriminant = "state", discriminant_case = "snake_case")]
pub enum CollectOutcome {
    /// The task has ended.
    Finished {
        /// Its result.
        result: TaskResult,
    },
    /// The timeout passed first.
    StillRunning {
        /// The task's info now.
        info: TaskInfo,
    },
}

/// What ended a readiness wait (`waitFor`).
// Converted to a JS object at once: a boxed variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[napi(discriminant = "state", discriminant_case = "snake_case")]
pub enum WaitOutcome {
    /// An output line matched.
    Matched {
        /// The line, without its newline.
        line: String,
        /// The offset just past the line.
        cursor: i64,
    },
    /// The port accepted a connection.
    PortOpen {
        /// The port.
        port: u32,
    },
    /// The task ended first.
    Ended {
        /// Its result.
        result: TaskResult,
    },
    /// The timeout passed first.
    TimedOut,
}

/// How a foreground wait ended: the task finished, or it was moved to the
/// background (by `detach` or a foreground timeout) and runs on.
#[napi(discriminant = "state", discriminant_case = "snake_case")]
pub enum ForegroundOutcome {
    /// The task ended while the caller waited.
    Finished {
        /// Its result.
        result: TaskResult,
    },
    /// The task was moved to the background.
    Detached {
        /// Its info at the detach.
        info: TaskInfo,
    },
}

/// What `gc` removed.
#[napi(object)]
pub struct GcReport {
    /// Ids of the tasks removed (their folders and their entries).
    pub removed: Vec<String>,
}

/// One item of the event stream, flat: `item` is `event` (with the event's
/// fields) or `lagged` (with `missed`). Its precise TypeScript type is the
/// `EventItem` union in the header of `index.d.ts`; this loose shape is
/// internal.
#[napi(object, object_from_js = false)]
pub struct EventRecord {
    /// `event` or `lagged`.
    pub item: String,
    /// For `lagged`: how many events were missed.
    pub missed: Option<i64>,
    /// Increases by one with every event of the manager.
    pub seq: Option<i64>,
    /// The task it is about.
    pub task_id: Option<String>,
    /// When it happened (milliseconds since the Unix epoch).
    pub timestamp_ms: Option<i64>,
    /// `task.started`, `task.finished`, …
    pub r#type: Option<String>,
    /// `task.started`: the task's kind.
    pub kind: Option<String>,
    /// `task.started`: its description.
    pub description: Option<String>,
    /// `task.started`: its owner.
    pub owner: Option<String>,
    /// `task.started`: true if it started in the background.
    pub background: Option<bool>,
    /// `task.spilled`: bytes buffered in memory and written first.
    pub buffered_bytes: Option<i64>,
    /// `task.spilled`: path of the log.
    pub log_path: Option<String>,
    /// `task.finished`: the terminal status.
    pub status: Option<TaskStatus>,
    /// `task.finished`: how its process ended.
    pub exit: Option<ExitInfo>,
    /// `task.finished`: why it was stopped.
    pub reason: Option<CancelReason>,
    /// `task.finished`, `task.sink_error`: the error.
    pub error: Option<String>,
    /// `task.finished`: run time in milliseconds.
    pub duration_ms: Option<i64>,
    /// `task.orphaned`: the orphan's process (group) id.
    pub pid: Option<u32>,
    /// `task.output_dropped`: the cap that was reached.
    pub disk_limit: Option<i64>,
    /// `task.sink_error`: `output.log` or `host`.
    pub sink: Option<String>,
    /// `task.watch_matched`: the matching line.
    pub line: Option<String>,
    /// `task.heartbeat`: bytes written since the last heartbeat.
    pub new_bytes: Option<i64>,
    /// `task.stalled`: how long it has been silent, in milliseconds.
    pub idle_ms: Option<i64>,
}
