//! The plain objects that cross the boundary, and their conversions from the
//! core's wire types. Field names are the schema's (`schema/*.json`) in
//! camelCase; optional fields are absent when the core's JSON omits them.
//! Byte counts, offsets and times are JS numbers (exact up to 2^53).

use std::time::Duration;

use napi::bindgen_prelude::{Buffer, ToNapiValue};
use napi::sys;
use napi_derive::napi;

use crate::errors::{invalid, CoreResultExt};
use crate::shapes::{arg, build, Shape};

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

impl From<agent_tasks::TaskStatus> for TaskStatus {
    fn from(s: agent_tasks::TaskStatus) -> Self {
        use agent_tasks::TaskStatus as S;
        match s {
            S::Queued => TaskStatus::Queued,
            S::Running => TaskStatus::Running,
            S::Completed => TaskStatus::Completed,
            S::Failed => TaskStatus::Failed,
            S::Cancelled => TaskStatus::Cancelled,
            S::TimedOut => TaskStatus::TimedOut,
            S::Lost => TaskStatus::Lost,
        }
    }
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
}

/// What a foreground timeout does.
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

impl From<agent_tasks::Containment> for Containment {
    fn from(c: agent_tasks::Containment) -> Self {
        match c {
            agent_tasks::Containment::Cgroup => Containment::Cgroup,
            agent_tasks::Containment::Subreaper => Containment::Subreaper,
            agent_tasks::Containment::ProcessGroup => Containment::ProcessGroup,
        }
    }
}

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

impl From<agent_tasks::CancelReason> for CancelReason {
    fn from(r: agent_tasks::CancelReason) -> Self {
        use agent_tasks::CancelKind as K;
        CancelReason {
            kind: match r.kind {
                K::User => CancelKind::User,
                K::Timeout => CancelKind::Timeout,
                K::Shutdown => CancelKind::Shutdown,
                K::OwnerClosed => CancelKind::OwnerClosed,
                K::Stalled => CancelKind::Stalled,
            },
            message: r.message,
        }
    }
}

/// How a process ended.
#[napi(object)]
pub struct ExitInfo {
    /// The exit code, if it exited normally.
    pub code: Option<i32>,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
}

impl From<agent_tasks::ExitInfo> for ExitInfo {
    fn from(e: agent_tasks::ExitInfo) -> Self {
        ExitInfo {
            code: e.code,
            signal: e.signal,
        }
    }
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

/// A count or offset as a JS number (exact below 2^53, which no real count
/// reaches).
pub(crate) fn num(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl From<agent_tasks::OutputStats> for OutputStats {
    fn from(o: agent_tasks::OutputStats) -> Self {
        OutputStats {
            total_bytes: num(o.total_bytes),
            stdout_bytes: num(o.stdout_bytes),
            stderr_bytes: num(o.stderr_bytes),
            spilled: o.spilled,
            disk_bytes: num(o.disk_bytes),
            omitted_bytes: num(o.omitted_bytes),
            memory_bytes: num(o.memory_bytes),
            write_error: o.write_error,
            log_path: o.log_path,
        }
    }
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

impl From<agent_tasks::TaskInfo> for TaskInfo {
    fn from(i: agent_tasks::TaskInfo) -> Self {
        TaskInfo {
            id: i.id.to_string(),
            kind: i.kind,
            description: i.description,
            owner: i.owner,
            status: i.status.into(),
            foreground: i.foreground,
            detached: i.detached,
            keep_alive: i.keep_alive,
            paused: Some(i.paused),
            created_at_ms: num(i.created_at_ms),
            finished_at_ms: i.finished_at_ms.map(num),
            duration_ms: num(i.duration_ms),
            pid: i.pid,
            orphan_pid: i.orphan_pid,
            containment: i.containment.map(Into::into),
            exit: i.exit.map(Into::into),
            cancel_reason: i.cancel_reason.map(Into::into),
            error: i.error,
            sink_error: i.sink_error,
            output: i.output.into(),
        }
    }
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

impl From<agent_tasks::TaskResult> for TaskResult {
    fn from(r: agent_tasks::TaskResult) -> Self {
        TaskResult {
            id: r.id.to_string(),
            status: r.status.into(),
            exit: r.exit.map(Into::into),
            value: r.value,
            error: r.error,
            cancel_reason: r.cancel_reason.map(Into::into),
            duration_ms: num(r.duration_ms),
            output: r.output.into(),
            changed_files: r.changed_files.map(|c| ChangedFiles {
                root: c.root,
                created: c.created,
                modified: c.modified,
                deleted: c.deleted,
                truncated: c.truncated,
            }),
        }
    }
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
}

impl From<agent_tasks::PollResponse> for PollResponse {
    fn from(p: agent_tasks::PollResponse) -> Self {
        let text = match std::str::from_utf8(&p.data) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(&p.data).into_owned(),
        };
        PollResponse {
            info: p.info.into(),
            cursor: num(p.cursor),
            next_cursor: num(p.next_cursor),
            omitted_bytes: num(p.omitted_bytes),
            eof: p.eof,
            data: p.data.into(),
            text,
            spans: p
                .spans
                .into_iter()
                .map(|s| StreamSpan {
                    offset: num(s.offset),
                    len: num(s.len),
                    stream: s.stream.as_str().to_owned(),
                })
                .collect(),
        }
    }
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

impl From<agent_tasks::Preview> for Preview {
    fn from(p: agent_tasks::Preview) -> Self {
        Preview {
            text: p.text(),
            head: String::from_utf8_lossy(&p.head).into_owned(),
            tail: String::from_utf8_lossy(&p.tail).into_owned(),
            omitted_bytes: num(p.omitted_bytes),
            total_bytes: num(p.total_bytes),
        }
    }
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

impl From<agent_tasks::Roster> for Roster {
    fn from(r: agent_tasks::Roster) -> Self {
        Roster {
            text: r.text,
            items: r
                .items
                .into_iter()
                .map(|i| RosterItem {
                    id: i.id,
                    kind: i.kind,
                    agent: i.agent,
                    description: i.description,
                    status: i.status.into(),
                    running_ms: num(i.running_ms),
                    last_line: i.last_line,
                    pending_notifications: u32::try_from(i.pending_notifications)
                        .unwrap_or(u32::MAX),
                })
                .collect(),
        }
    }
}

/// Where a delegated task came from.
#[napi(object)]
pub struct TaskSource {
    /// The agent's registered name.
    pub agent: String,
    /// The arguments it was started with (at least `goal`).
    pub arguments: serde_json::Value,
}

impl From<agent_tasks::TaskSource> for TaskSource {
    fn from(s: agent_tasks::TaskSource) -> Self {
        TaskSource {
            agent: s.agent,
            arguments: s.arguments,
        }
    }
}

impl From<agent_tasks::Notification> for Notification {
    fn from(n: agent_tasks::Notification) -> Self {
        use agent_tasks::NotificationKind as K;
        Notification {
            id: n.id,
            kind: match n.kind {
                K::Finished => NotificationKind::Finished,
                K::Lost => NotificationKind::Lost,
                K::Orphaned => NotificationKind::Orphaned,
                K::WatchMatch => NotificationKind::WatchMatch,
                K::WatchStopped => NotificationKind::WatchStopped,
                K::Progress => NotificationKind::Progress,
                K::Stalled => NotificationKind::Stalled,
                K::TurnEnded => NotificationKind::TurnEnded,
            },
            task_id: n.task_id.to_string(),
            owner: n.owner,
            task_kind: n.task_kind,
            description: n.description,
            status: n.status.into(),
            exit: n.exit.map(Into::into),
            reason: n.reason.map(Into::into),
            error: n.error,
            duration_ms: num(n.duration_ms),
            output_tail: n.output_tail,
            detail: n.detail,
            source: n.source.map(Into::into),
            value: n.value,
            created_at_ms: num(n.created_at_ms),
            text: n.text,
        }
    }
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

impl From<agent_tasks::CollectOutcome> for CollectOutcome {
    fn from(o: agent_tasks::CollectOutcome) -> Self {
        match o {
            agent_tasks::CollectOutcome::Finished(r) => {
                CollectOutcome::Finished { result: r.into() }
            }
            agent_tasks::CollectOutcome::StillRunning(i) => {
                CollectOutcome::StillRunning { info: i.into() }
            }
        }
    }
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

impl From<agent_tasks::WaitOutcome> for WaitOutcome {
    fn from(o: agent_tasks::WaitOutcome) -> Self {
        match o {
            agent_tasks::WaitOutcome::Matched { line, cursor } => WaitOutcome::Matched {
                line,
                cursor: num(cursor),
            },
            agent_tasks::WaitOutcome::PortOpen { port } => WaitOutcome::PortOpen {
                port: u32::from(port),
            },
            agent_tasks::WaitOutcome::Ended(result) => WaitOutcome::Ended {
                result: (*result).into(),
            },
            agent_tasks::WaitOutcome::TimedOut => WaitOutcome::TimedOut,
        }
    }
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

impl From<agent_tasks::ForegroundOutcome> for ForegroundOutcome {
    fn from(o: agent_tasks::ForegroundOutcome) -> Self {
        match o {
            agent_tasks::ForegroundOutcome::Finished(r) => {
                ForegroundOutcome::Finished { result: r.into() }
            }
            agent_tasks::ForegroundOutcome::Detached(i) => {
                ForegroundOutcome::Detached { info: i.into() }
            }
        }
    }
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

impl EventRecord {
    fn empty(item: &str) -> Self {
        EventRecord {
            item: item.to_owned(),
            missed: None,
            seq: None,
            task_id: None,
            timestamp_ms: None,
            r#type: None,
            kind: None,
            description: None,
            owner: None,
            background: None,
            buffered_bytes: None,
            log_path: None,
            status: None,
            exit: None,
            reason: None,
            error: None,
            duration_ms: None,
            pid: None,
            disk_limit: None,
            sink: None,
            line: None,
            new_bytes: None,
            idle_ms: None,
        }
    }
}

impl From<agent_tasks::EventItem> for EventRecord {
    fn from(item: agent_tasks::EventItem) -> Self {
        use agent_tasks::EventKind as K;
        let event = match item {
            agent_tasks::EventItem::Lagged { missed } => {
                let mut r = EventRecord::empty("lagged");
                r.missed = Some(num(missed));
                return r;
            }
            agent_tasks::EventItem::Event(e) => e,
        };
        let mut r = EventRecord::empty("event");
        r.seq = Some(num(event.seq));
        r.task_id = Some(event.task_id.to_string());
        r.timestamp_ms = Some(num(event.timestamp_ms));
        let name = event.kind.type_name();
        match event.kind {
            K::Started {
                kind,
                description,
                owner,
                background,
            } => {
                r.kind = Some(kind);
                r.description = Some(description);
                r.owner = Some(owner);
                r.background = Some(background);
            }
            K::Detached {} | K::Paused {} | K::Resumed {} => {}
            K::Spilled {
                buffered_bytes,
                log_path,
            } => {
                r.buffered_bytes = Some(num(buffered_bytes));
                r.log_path = Some(log_path);
            }
            K::Finished {
                status,
                exit,
                reason,
                error,
                duration_ms,
            } => {
                r.status = Some(status.into());
                r.exit = exit.map(Into::into);
                r.reason = reason.map(Into::into);
                r.error = error;
                r.duration_ms = Some(num(duration_ms));
            }
            K::Lost {} => {}
            K::Orphaned { pid } => {
                r.pid = Some(pid);
            }
            K::OutputDropped { disk_limit } => {
                r.disk_limit = Some(num(disk_limit));
            }
            K::WatchMatched { line } => {
                r.line = Some(line);
            }
            K::Heartbeat { new_bytes } => {
                r.new_bytes = Some(num(new_bytes));
            }
            K::Stalled { idle_ms } => {
                r.idle_ms = Some(num(idle_ms));
            }
            K::SinkError { sink, error } => {
                r.sink = Some(sink);
                r.error = Some(error);
            }
        }
        r.r#type = Some(name.to_owned());
        r
    }
}

// ---- inputs ------------------------------------------------------------

/// A byte count given as a JS number: a non-negative integer.
pub(crate) fn bytes(name: &str, value: f64) -> napi::Result<u64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= 9_007_199_254_740_992.0
    {
        Ok(value as u64)
    } else {
        Err(invalid(
            name,
            format!("expected a non-negative integer, got {value}"),
        ))
    }
}

/// A byte count that must fit in memory (`usize`).
pub(crate) fn size(name: &str, value: f64) -> napi::Result<usize> {
    let n = bytes(name, value)?;
    usize::try_from(n).map_err(|_| invalid(name, format!("{value} is too large")))
}

/// A duration in milliseconds; `Infinity` means none (`Ok(None)`). The rule
/// is the core's [`agent_tasks::timeout_from_millis`].
pub(crate) fn millis(name: &str, value: f64) -> napi::Result<Option<Duration>> {
    agent_tasks::timeout_from_millis(name, Some(value)).js()
}

/// A duration that must be finite (the core's
/// [`agent_tasks::duration_from_millis`]).
pub(crate) fn finite_millis(name: &str, value: f64) -> napi::Result<Duration> {
    agent_tasks::duration_from_millis(name, value).js()
}

/// An `onTimeout` option: the core's names (`detach`, `kill`).
pub(crate) fn on_timeout(name: &str, value: &str) -> napi::Result<agent_tasks::OnTimeout> {
    agent_tasks::parse_name(name, value).js()
}

// ---- hot objects, built by `shapes` -----------------------------------------

impl ToNapiValue for OutputStats {
    unsafe fn to_napi_value(env: sys::napi_env, o: Self) -> napi::Result<sys::napi_value> {
        unsafe {
            let args = [
                i64::to_napi_value(env, o.total_bytes)?,
                i64::to_napi_value(env, o.stdout_bytes)?,
                i64::to_napi_value(env, o.stderr_bytes)?,
                bool::to_napi_value(env, o.spilled)?,
                i64::to_napi_value(env, o.disk_bytes)?,
                i64::to_napi_value(env, o.omitted_bytes)?,
                i64::to_napi_value(env, o.memory_bytes)?,
                arg(env, o.write_error)?,
                arg(env, o.log_path)?,
            ];
            build(env, Shape::OutputStats, &args)
        }
    }
}

impl ToNapiValue for TaskInfo {
    unsafe fn to_napi_value(env: sys::napi_env, i: Self) -> napi::Result<sys::napi_value> {
        unsafe {
            let args = [
                String::to_napi_value(env, i.id)?,
                String::to_napi_value(env, i.kind)?,
                String::to_napi_value(env, i.description)?,
                String::to_napi_value(env, i.owner)?,
                TaskStatus::to_napi_value(env, i.status)?,
                bool::to_napi_value(env, i.foreground)?,
                bool::to_napi_value(env, i.detached)?,
                bool::to_napi_value(env, i.keep_alive)?,
                bool::to_napi_value(env, i.paused.unwrap_or(false))?,
                i64::to_napi_value(env, i.created_at_ms)?,
                i64::to_napi_value(env, i.duration_ms)?,
                OutputStats::to_napi_value(env, i.output)?,
                arg(env, i.finished_at_ms)?,
                arg(env, i.pid)?,
                arg(env, i.orphan_pid)?,
                arg(env, i.containment)?,
                arg(env, i.exit)?,
                arg(env, i.cancel_reason)?,
                arg(env, i.error)?,
                arg(env, i.sink_error)?,
            ];
            build(env, Shape::TaskInfo, &args)
        }
    }
}

impl ToNapiValue for PollResponse {
    unsafe fn to_napi_value(env: sys::napi_env, p: Self) -> napi::Result<sys::napi_value> {
        unsafe {
            let args = [
                TaskInfo::to_napi_value(env, p.info)?,
                i64::to_napi_value(env, p.cursor)?,
                i64::to_napi_value(env, p.next_cursor)?,
                i64::to_napi_value(env, p.omitted_bytes)?,
                bool::to_napi_value(env, p.eof)?,
                Buffer::to_napi_value(env, p.data)?,
                String::to_napi_value(env, p.text)?,
                Vec::<StreamSpan>::to_napi_value(env, p.spans)?,
            ];
            build(env, Shape::PollResponse, &args)
        }
    }
}
