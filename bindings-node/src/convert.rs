//! Conversions from the core's types to the objects of `types`: `From`
//! impls, and for the objects on the hot path (`TaskInfo`, `OutputStats`,
//! `PollResponse`) a `ToNapiValue` that builds them through `shapes`.

use napi::bindgen_prelude::{Buffer, ToNapiValue};
use napi::sys;

use crate::shapes::{arg, build, Shape};
use crate::types::*;

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

impl From<agent_tasks::Containment> for Containment {
    fn from(c: agent_tasks::Containment) -> Self {
        match c {
            agent_tasks::Containment::Cgroup => Containment::Cgroup,
            agent_tasks::Containment::Subreaper => Containment::Subreaper,
            agent_tasks::Containment::ProcessGroup => Containment::ProcessGroup,
        }
    }
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
                K::External => CancelKind::External,
            },
            message: r.message,
        }
    }
}

impl From<agent_tasks::ExitInfo> for ExitInfo {
    fn from(e: agent_tasks::ExitInfo) -> Self {
        ExitInfo {
            code: e.code,
            signal: e.signal,
        }
    }
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
            timed_out: p.timed_out,
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
            K::Queued {
                kind,
                description,
                owner,
            } => {
                r.kind = Some(kind);
                r.description = Some(description);
                r.owner = Some(owner);
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

impl ToNapiValue for OutputStats {
    unsafe fn to_napi_value(env: sys::napi_env, o: Self) -> napi::Result<sys::napi_value> {
        // SAFETY: napi-rs calls this on the JS thread with its live `env`;
        // every value is made in that `env`, in the factory's parameter order.
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
        // SAFETY: napi-rs calls this on the JS thread with its live `env`;
        // every value is made in that `env`, in the factory's parameter order.
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
        // SAFETY: napi-rs calls this on the JS thread with its live `env`;
        // every value is made in that `env`, in the factory's parameter order.
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
                bool::to_napi_value(env, p.timed_out)?,
            ];
            build(env, Shape::PollResponse, &args)
        }
    }
}
