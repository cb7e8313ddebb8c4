//! The life of one task: its shared entry (status, flags, result), the
//! transitions between statuses (a terminal status is final), detach, the
//! cancel request, what is saved and announced at each step (manifest,
//! events, the end notification), and the driver that runs the task's future
//! beside its timeout and stop-grace timers. The timers live inside the
//! driver, so they end with the task and never keep a runtime alive.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::capacity::Capacity;
use crate::changes::{diff, snapshot, ChangedFiles};
use crate::config::{Monitoring, OnTimeout};
use crate::context::{CancelSignal, Message, OutputWriter, SinkErrors, TaskContext};
use crate::error::Error;
use crate::events::{Event, EventBus, EventKind};
use crate::id::TaskId;
use crate::info::{CancelKind, CancelReason, TaskInfo, TaskResult, TaskStatus};
use crate::notifications::{
    last_lines, Notification, NotificationKind, NotificationQueue, NOTIFICATION_TAIL_CHARS,
    NOTIFICATION_TAIL_LINES,
};
use crate::output::{OutputBuffer, OutputEvent};
use crate::process::{kill_group, process_start_time};
use crate::store::{Manifest, TaskStore};
use crate::task::{BackgroundTask, TaskOutcome};
use crate::watch::WatchEvent;

/// Events kept in memory for a task that has no folder yet (written out if
/// it gets one); past this the oldest are dropped.
const MAX_UNSAVED_EVENTS: usize = 64;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Orders tasks by when they were spawned (or loaded), even within one
/// millisecond.
static SPAWN_ORDER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn next_spawn_order() -> u64 {
    SPAWN_ORDER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// All tasks of a manager plus the capacity counters, under one lock so a
/// spawn's cap check and insert are atomic. Lock order: registry, then a
/// task's state; never the other way.
#[derive(Default)]
pub(crate) struct Registry {
    pub tasks: HashMap<TaskId, Arc<TaskEntry>>,
    pub capacity: Capacity,
    pub closed: bool,
}

/// What every task of a manager shares: the event bus, the task folders,
/// the notification queue.
pub(crate) struct Services {
    pub bus: EventBus,
    pub store: TaskStore,
    pub notifications: NotificationQueue,
    pub notify_host_cancels: bool,
}

/// The fixed facts of a task, decided at spawn.
pub(crate) struct TaskSpec {
    pub id: TaskId,
    pub kind: String,
    pub description: String,
    pub owner: String,
    pub keep_alive: bool,
    pub background: bool,
    pub foreground_timeout: Option<Duration>,
    pub background_timeout: Option<Duration>,
    pub on_timeout: OnTimeout,
    pub track_changes: Option<PathBuf>,
    pub monitoring: Monitoring,
}

#[derive(Debug)]
struct TaskState {
    status: TaskStatus,
    foreground: bool,
    detached: bool,
    counted_background: bool,
    background_since: Option<Instant>,
    cancel_reason: Option<CancelReason>,
    /// Set last, once the end is saved and announced: waiters key on it.
    result: Option<TaskResult>,
    error: Option<String>,
    exit: Option<crate::info::ExitInfo>,
    finished_at_ms: Option<u64>,
    duration: Option<Duration>,
    pid: Option<u32>,
    containment: Option<crate::info::Containment>,
    process_start_time: Option<u64>,
    orphan_pid: Option<u32>,
    /// True once the task has a folder (background, detached or spilled).
    persisted: bool,
    unsaved_events: Vec<Event>,
    heartbeats: u32,
    stalls: u32,
}

/// One task as the manager holds it: the saved facts and state, apart from
/// the live future (which only the driver owns).
pub(crate) struct TaskEntry {
    pub spec: TaskSpec,
    pub created_at_ms: u64,
    /// Sort key for listings: creation time, then spawn order.
    pub order: (u64, u64),
    started: Instant,
    pub output: Arc<OutputBuffer>,
    writer: Option<OutputWriter>,
    pub cancel: CancelSignal,
    inbox: Option<mpsc::Sender<Message>>,
    sink_errors: Arc<SinkErrors>,
    state: Mutex<TaskState>,
    changes: watch::Sender<u64>,
    registry: Weak<Mutex<Registry>>,
    services: Arc<Services>,
    /// Serialises manifest writes so the newest info is the one saved, and
    /// orders `events.jsonl` (taken before `state`).
    disk: Mutex<()>,
}

/// What the waiting side learns from [`TaskEntry::wait_until`].
pub(crate) enum Settled {
    Terminal(TaskResult),
    Detached(TaskInfo),
}

/// The parts a new task's entry is made of.
pub(crate) struct NewEntry {
    pub spec: TaskSpec,
    pub output: Arc<OutputBuffer>,
    pub writer: OutputWriter,
    pub sink_errors: Arc<SinkErrors>,
    pub inbox: Option<mpsc::Sender<Message>>,
    pub registry: Weak<Mutex<Registry>>,
    pub services: Arc<Services>,
}

impl TaskEntry {
    pub(crate) fn new(parts: NewEntry) -> Arc<TaskEntry> {
        let background = parts.spec.background;
        let created_at_ms = now_ms();
        let entry = Arc::new(TaskEntry {
            spec: parts.spec,
            created_at_ms,
            order: (created_at_ms, next_spawn_order()),
            started: Instant::now(),
            output: parts.output,
            writer: Some(parts.writer),
            cancel: CancelSignal::new(),
            inbox: parts.inbox,
            sink_errors: parts.sink_errors,
            state: Mutex::new(TaskState {
                status: TaskStatus::Running,
                foreground: !background,
                detached: false,
                counted_background: background,
                background_since: background.then(Instant::now),
                cancel_reason: None,
                result: None,
                error: None,
                exit: None,
                finished_at_ms: None,
                duration: None,
                pid: None,
                containment: None,
                process_start_time: None,
                orphan_pid: None,
                persisted: false,
                unsaved_events: Vec::new(),
                heartbeats: 0,
                stalls: 0,
            }),
            changes: watch::channel(0).0,
            registry: parts.registry,
            services: parts.services,
            disk: Mutex::new(()),
        });
        let weak = Arc::downgrade(&entry);
        entry.output.set_observer(Box::new(move |event| {
            if let Some(entry) = weak.upgrade() {
                entry.on_output_event(event);
            }
        }));
        entry
    }

    /// An entry for a task read back from its folder by `open`. A task that
    /// was still running becomes `lost` (or orphaned, if its process lives).
    pub(crate) fn restore(
        manifest: Manifest,
        saved_result: Option<TaskResult>,
        output: Arc<OutputBuffer>,
        registry: Weak<Mutex<Registry>>,
        services: Arc<Services>,
    ) -> Arc<TaskEntry> {
        let info = manifest.info;
        let was_running = !info.status.is_terminal();
        let orphan_pid = match (was_running, info.pid, manifest.process_start_time) {
            (true, Some(pid), Some(start)) if process_start_time(pid) == Some(start) => Some(pid),
            _ => info.orphan_pid,
        };
        let status = if was_running {
            TaskStatus::Lost
        } else {
            info.status
        };
        let error = if was_running {
            Some("the host stopped while the task ran; its end is unknown".to_string())
        } else {
            info.error.clone()
        };
        let duration = Duration::from_millis(info.duration_ms);
        let finished_at_ms = info.finished_at_ms.or(Some(now_ms()));
        let result = match saved_result {
            Some(result) if !was_running => result,
            _ => TaskResult {
                id: info.id.clone(),
                status,
                exit: info.exit,
                value: None,
                error: error.clone(),
                cancel_reason: info.cancel_reason.clone(),
                duration_ms: info.duration_ms,
                output: output.stats(),
                changed_files: None,
            },
        };
        let entry = Arc::new(TaskEntry {
            spec: TaskSpec {
                id: info.id.clone(),
                kind: info.kind.clone(),
                description: info.description.clone(),
                owner: info.owner.clone(),
                keep_alive: info.keep_alive,
                background: !info.foreground,
                foreground_timeout: None,
                background_timeout: None,
                on_timeout: OnTimeout::Kill,
                track_changes: None,
                monitoring: Monitoring::default(),
            },
            created_at_ms: info.created_at_ms,
            order: (info.created_at_ms, next_spawn_order()),
            started: Instant::now(),
            output,
            writer: None,
            cancel: CancelSignal::new(),
            inbox: None,
            sink_errors: Arc::new(SinkErrors::default()),
            state: Mutex::new(TaskState {
                status,
                foreground: false,
                detached: info.detached,
                counted_background: false,
                background_since: None,
                cancel_reason: info.cancel_reason.clone(),
                result: Some(result),
                error,
                exit: info.exit,
                finished_at_ms,
                duration: Some(duration),
                pid: info.pid,
                containment: info.containment,
                process_start_time: manifest.process_start_time,
                orphan_pid,
                persisted: true,
                unsaved_events: Vec::new(),
                heartbeats: 0,
                stalls: 0,
            }),
            changes: watch::channel(0).0,
            registry,
            services,
            disk: Mutex::new(()),
        });
        if was_running {
            entry.emit(EventKind::Lost {});
            if let Some(pid) = orphan_pid {
                entry.emit(EventKind::Orphaned { pid });
            }
            let kind = if orphan_pid.is_some() {
                NotificationKind::Orphaned
            } else {
                NotificationKind::Lost
            };
            // The end notification's id is fixed per task, so a crash before
            // the manifest below is saved cannot make a second one.
            entry.queue_notification(kind);
            entry.persist();
        }
        entry
    }

    fn notify_waiters(&self) {
        self.changes.send_modify(|version| *version += 1);
    }

    pub(crate) fn status(&self) -> TaskStatus {
        lock(&self.state).status
    }

    pub(crate) fn is_listed(&self) -> bool {
        let st = lock(&self.state);
        // A foreground task that ended without detaching was never background work.
        !(st.status.is_terminal() && st.foreground && !st.detached)
    }

    pub(crate) fn info(&self) -> TaskInfo {
        let st = lock(&self.state);
        TaskInfo {
            id: self.spec.id.clone(),
            kind: self.spec.kind.clone(),
            description: self.spec.description.clone(),
            owner: self.spec.owner.clone(),
            status: st.status,
            foreground: st.foreground && !st.status.is_terminal(),
            detached: st.detached,
            keep_alive: self.spec.keep_alive,
            created_at_ms: self.created_at_ms,
            finished_at_ms: st.finished_at_ms,
            duration_ms: st
                .duration
                .unwrap_or_else(|| self.started.elapsed())
                .as_millis() as u64,
            pid: st.pid,
            orphan_pid: st.orphan_pid,
            containment: st.containment,
            exit: st.exit,
            cancel_reason: st.cancel_reason.clone(),
            error: st.error.clone(),
            sink_error: lock(&self.sink_errors.last).clone(),
            output: self.output.stats(),
        }
    }

    pub(crate) fn result(&self) -> Option<TaskResult> {
        lock(&self.state).result.clone()
    }

    pub(crate) fn finished_at_ms(&self) -> Option<u64> {
        let st = lock(&self.state);
        if st.result.is_some() {
            st.finished_at_ms
        } else {
            None
        }
    }

    /// Publishes an event, and appends it to `events.jsonl` once the task has
    /// a folder (until then it is kept to be written with the folder).
    pub(crate) fn emit(&self, kind: EventKind) {
        let event = self.services.bus.publish(&self.spec.id, kind);
        let _disk = lock(&self.disk);
        let persisted = {
            let mut st = lock(&self.state);
            if !st.persisted {
                if st.unsaved_events.len() == MAX_UNSAVED_EVENTS {
                    st.unsaved_events.remove(0);
                }
                st.unsaved_events.push(event.clone());
            }
            st.persisted
        };
        if persisted {
            if let Err(e) = self.services.store.append_events(&self.spec.id, &[event]) {
                self.report_disk_error("events.jsonl", e.to_string());
            }
        }
    }

    /// Tells subscribers a task file could not be written (bus only: writing
    /// it to `events.jsonl` could fail the same way).
    fn report_disk_error(&self, file: &str, error: String) {
        self.services.bus.publish(
            &self.spec.id,
            EventKind::SinkError {
                sink: file.to_string(),
                error,
            },
        );
    }

    /// Gives the task a folder if it has none, and saves its manifest.
    pub(crate) fn persist(&self) {
        let _disk = lock(&self.disk);
        let (unsaved, start_time) = {
            let mut st = lock(&self.state);
            // Read lazily: only tasks with a folder need it for recovery, and
            // the process is still running whenever a folder is first made.
            if let (Some(pid), None, None) = (st.pid, st.process_start_time, st.result.as_ref()) {
                st.process_start_time = process_start_time(pid);
            }
            let unsaved = if st.persisted {
                Vec::new()
            } else {
                st.persisted = true;
                std::mem::take(&mut st.unsaved_events)
            };
            (unsaved, st.process_start_time)
        };
        if let Err(e) = self.services.store.append_events(&self.spec.id, &unsaved) {
            self.report_disk_error("events.jsonl", e.to_string());
        }
        let manifest = Manifest::new(self.info(), start_time);
        if let Err(e) = self.services.store.write_manifest(&manifest) {
            self.report_disk_error("manifest.json", e.to_string());
        }
    }

    fn is_persisted(&self) -> bool {
        lock(&self.state).persisted
    }

    fn on_output_event(&self, event: OutputEvent) {
        match event {
            OutputEvent::Spilled { buffered } => {
                self.emit(EventKind::Spilled {
                    buffered_bytes: buffered,
                    log_path: self.output.log_path().display().to_string(),
                });
                self.persist();
            }
            OutputEvent::CapReached => {
                let stats = self.output.stats();
                self.emit(EventKind::OutputDropped {
                    disk_limit: stats.disk_bytes,
                });
            }
            OutputEvent::WriteFailed(error) => self.emit(EventKind::SinkError {
                sink: "output.log".to_string(),
                error,
            }),
            OutputEvent::HostSinkFailed(error) => self.emit(EventKind::SinkError {
                sink: "host".to_string(),
                error,
            }),
        }
    }

    /// Records the process the task started, so recovery can recognise it.
    pub(crate) fn on_pid(&self, pid: u32, containment: Option<crate::info::Containment>) {
        let persisted = {
            let mut st = lock(&self.state);
            st.pid = Some(pid);
            st.containment = containment.or(st.containment);
            st.persisted
        };
        if persisted {
            self.persist();
        }
    }

    /// Announces the start; background tasks get their folder at once.
    pub(crate) fn started(&self) {
        self.emit(EventKind::Started {
            kind: self.spec.kind.clone(),
            description: self.spec.description.clone(),
            owner: self.spec.owner.clone(),
            background: self.spec.background,
        });
        if self.spec.background {
            self.persist();
        }
    }

    /// Asks the task to stop. The first reason is the one recorded. Returns
    /// false when the task had already ended.
    pub(crate) fn request_cancel(&self, reason: CancelReason) -> bool {
        let mut st = lock(&self.state);
        if st.status.is_terminal() {
            return false;
        }
        if st.cancel_reason.is_none() {
            st.cancel_reason = Some(reason.clone());
            self.cancel.cancel(reason);
        }
        true
    }

    /// Moves a running foreground task to the background: its buffered
    /// output is written to disk first, then the waiter is released.
    pub(crate) fn detach(&self) -> TaskInfo {
        let registry = self.registry.upgrade();
        let moved = {
            let mut reg = registry.as_ref().map(|r| lock(r));
            let mut st = lock(&self.state);
            if st.status.is_terminal() || !st.foreground {
                false
            } else {
                st.foreground = false;
                st.detached = true;
                st.background_since = Some(Instant::now());
                if !st.counted_background {
                    st.counted_background = true;
                    if let Some(reg) = reg.as_mut() {
                        reg.capacity.add(&self.spec.owner);
                    }
                }
                true
            }
        };
        if moved {
            // A spill saves the manifest itself (see `on_output_event`).
            let spilled = self.output.spill();
            self.emit(EventKind::Detached {});
            if !spilled {
                self.persist();
            }
            self.notify_waiters();
        }
        self.info()
    }

    /// Ends the orphaned process of a lost task (if it is still the same
    /// process), and forgets it.
    pub(crate) fn kill_orphan(&self) -> Result<TaskInfo, Error> {
        let (pid, start) = {
            let st = lock(&self.state);
            match st.orphan_pid {
                Some(pid) => (pid, st.process_start_time),
                None => {
                    return Err(Error::InvalidArgument {
                        name: "id".to_string(),
                        message: format!("task `{}` has no orphaned process", self.spec.id),
                    })
                }
            }
        };
        if start.is_some() && process_start_time(pid) == start {
            kill_group(pid);
        }
        lock(&self.state).orphan_pid = None;
        self.persist();
        Ok(self.info())
    }

    /// When the current timeout passes, if there is one.
    fn deadline(&self) -> Option<Instant> {
        let st = lock(&self.state);
        if st.status.is_terminal() {
            return None;
        }
        if st.foreground {
            self.spec.foreground_timeout.map(|t| self.started + t)
        } else {
            let since = st.background_since.unwrap_or(self.started);
            self.spec.background_timeout.map(|t| since + t)
        }
    }

    fn on_deadline(&self) {
        let foreground = lock(&self.state).foreground;
        if foreground && self.spec.on_timeout == OnTimeout::Detach {
            self.detach();
        } else {
            self.request_cancel(CancelReason::timeout());
        }
    }

    /// The last lines of the task's output, as a notification shows them.
    fn output_tail(&self) -> String {
        self.output
            .text_since(0, 16 * 1024)
            .map(|text| last_lines(&text, NOTIFICATION_TAIL_LINES, NOTIFICATION_TAIL_CHARS))
            .unwrap_or_default()
    }

    fn queue_notification(&self, kind: NotificationKind) {
        self.queue_notification_for("end", kind, self.output_tail(), None);
    }

    fn queue_notification_for(
        &self,
        occasion: &str,
        kind: NotificationKind,
        output_tail: String,
        detail: Option<String>,
    ) {
        let info = self.info();
        let mut notification = Notification {
            id: format!("{}.{occasion}", self.spec.id),
            kind,
            task_id: self.spec.id.clone(),
            owner: self.spec.owner.clone(),
            task_kind: self.spec.kind.clone(),
            description: self.spec.description.clone(),
            status: info.status,
            exit: info.exit,
            reason: info.cancel_reason,
            error: info.error,
            duration_ms: info.duration_ms,
            output_tail,
            detail,
            created_at_ms: now_ms(),
            text: String::new(),
        };
        notification.text = notification.render();
        if let Err(e) = self.services.notifications.push(notification) {
            self.report_disk_error("notifications", e);
        }
    }

    fn in_background(&self) -> bool {
        !lock(&self.state).foreground
    }

    /// A watch pattern matched (or watching stopped): an event always, a
    /// notification while the task is in the background.
    pub(crate) fn on_watch(&self, event: WatchEvent) {
        match event {
            WatchEvent::Matched { line, skipped, nth } => {
                self.emit(EventKind::WatchMatched { line: line.clone() });
                if self.in_background() {
                    let mut detail = format!("matched line: {line}");
                    if skipped > 0 {
                        detail.push_str(&format!(
                            "\n({skipped} more matching lines were held back by the rate limit)"
                        ));
                    }
                    self.queue_notification_for(
                        &format!("w{nth}"),
                        NotificationKind::WatchMatch,
                        String::new(),
                        Some(detail),
                    );
                }
            }
            WatchEvent::Stopped { total_matches } => {
                if self.in_background() {
                    self.queue_notification_for(
                        "wstop",
                        NotificationKind::WatchStopped,
                        String::new(),
                        Some(format!(
                            "{total_matches} lines matched; no more watch notices will come"
                        )),
                    );
                }
            }
        }
    }

    /// A heartbeat: a progress notification with the output written since
    /// `cursor`, skipped when there is none (or the task is in the
    /// foreground). Advances `cursor` when it reports.
    fn heartbeat(&self, cursor: &mut u64) {
        let total = self.output.len();
        if total <= *cursor || !self.in_background() {
            return;
        }
        let new_bytes = total - *cursor;
        let text = self
            .output
            .text_since(*cursor, 16 * 1024)
            .unwrap_or_default();
        *cursor = total;
        self.emit(EventKind::Heartbeat { new_bytes });
        let nth = {
            let mut st = lock(&self.state);
            st.heartbeats += 1;
            st.heartbeats
        };
        let tail = last_lines(&text, NOTIFICATION_TAIL_LINES, NOTIFICATION_TAIL_CHARS);
        self.queue_notification_for(&format!("h{nth}"), NotificationKind::Progress, tail, None);
    }

    /// The task has printed nothing for `idle`.
    fn on_stall(&self, idle: Duration) {
        let idle_ms = idle.as_millis() as u64;
        self.emit(EventKind::Stalled { idle_ms });
        let message = format!("no output for {:.1} s", idle.as_secs_f64());
        if self.in_background() {
            let nth = {
                let mut st = lock(&self.state);
                st.stalls += 1;
                st.stalls
            };
            let tail = self.output_tail();
            self.queue_notification_for(
                &format!("s{nth}"),
                NotificationKind::Stalled,
                tail,
                Some(message.clone()),
            );
        }
        if self.spec.monitoring.cancel_on_stall {
            self.request_cancel(CancelReason {
                kind: CancelKind::Stalled,
                message: Some(message),
            });
        }
    }

    /// Records the task's end. Called once, by the driver.
    fn finish(&self, joined: Result<TaskOutcome, String>, changed_files: Option<ChangedFiles>) {
        self.output.finish();
        if let Some(writer) = &self.writer {
            writer.close_sinks();
        }
        let registry = self.registry.upgrade();
        let (result, went_background, notify) = {
            let mut reg = registry.as_ref().map(|r| lock(r));
            let mut st = lock(&self.state);
            let (outcome, stop_error) = match joined {
                Ok(outcome) => (Some(outcome), None),
                Err(e) => (None, Some(e)),
            };
            let status = match (&st.cancel_reason, &outcome) {
                (Some(reason), _) => reason.terminal_status(),
                (None, Some(o)) if o.success => TaskStatus::Completed,
                _ => TaskStatus::Failed,
            };
            let duration = self.started.elapsed();
            st.exit = outcome.as_ref().and_then(|o| o.exit);
            st.error = stop_error.or_else(|| outcome.as_ref().and_then(|o| o.error.clone()));
            st.status = status;
            st.duration = Some(duration);
            st.finished_at_ms = Some(now_ms());
            if st.counted_background {
                st.counted_background = false;
                if let Some(reg) = reg.as_mut() {
                    reg.capacity.remove(&self.spec.owner);
                }
            }
            let host_cancel = st.cancel_reason.as_ref().is_some_and(|r| {
                matches!(
                    r.kind,
                    CancelKind::User | CancelKind::Shutdown | CancelKind::OwnerClosed
                )
            });
            let went_background = self.spec.background || st.detached;
            let result = TaskResult {
                id: self.spec.id.clone(),
                status,
                exit: st.exit,
                value: outcome.and_then(|o| o.value),
                error: st.error.clone(),
                cancel_reason: st.cancel_reason.clone(),
                duration_ms: duration.as_millis() as u64,
                output: self.output.stats(),
                changed_files,
            };
            let notify = went_background && (!host_cancel || self.services.notify_host_cancels);
            (result, went_background, notify)
        };
        if went_background || self.is_persisted() {
            if let Err(e) = self.services.store.write_result(&result) {
                self.report_disk_error("result.json", e.to_string());
            }
            if let Some(changes) = &result.changed_files {
                if let Err(e) = self
                    .services
                    .store
                    .write_json(&self.spec.id, "files.json", changes)
                {
                    self.report_disk_error("files.json", e.to_string());
                }
            }
            // The notification is saved before the terminal manifest: after a
            // crash in between, recovery finds the task unfinished and
            // rewrites the same notification id, never a second one.
            if notify {
                self.queue_notification(NotificationKind::Finished);
            }
            self.persist();
        }
        // Announced last, so a host that reacts to the event finds the
        // notification queued and the result saved.
        self.emit(EventKind::Finished {
            status: result.status,
            exit: result.exit,
            reason: result.cancel_reason.clone(),
            error: result.error.clone(),
            duration_ms: result.duration_ms,
        });
        lock(&self.state).result = Some(result);
        self.notify_waiters();
    }

    /// Waits until the task's end is recorded, or (with `until_detached`)
    /// until it is no longer in the foreground.
    pub(crate) async fn wait_until(&self, until_detached: bool) -> Settled {
        let mut changes = self.changes.subscribe();
        loop {
            {
                let st = lock(&self.state);
                if let Some(result) = &st.result {
                    return Settled::Terminal(result.clone());
                }
                if until_detached && !st.foreground {
                    drop(st);
                    return Settled::Detached(self.info());
                }
            }
            if changes.changed().await.is_err() {
                // The sender lives in `self`, so this cannot happen; wait on.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Delivers a steering message.
    pub(crate) fn send(&self, message: Message) -> Result<(), Error> {
        let refuse = |reason: &str| Error::NotReceiving {
            id: self.spec.id.to_string(),
            reason: reason.to_string(),
        };
        if self.status().is_terminal() {
            return Err(refuse("it has ended"));
        }
        let Some(inbox) = &self.inbox else {
            return Err(refuse(
                "it takes no input (start a process with `interactive(true)`)",
            ));
        };
        inbox.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => refuse("its inbox is full"),
            mpsc::error::TrySendError::Closed(_) => refuse("it no longer reads messages"),
        })
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    };
    format!("the task panicked: {text}")
}

/// Polls a future, turning a panic inside it into an error, so a task's
/// panic fails the task instead of unwinding through the driver. Running the
/// task inside the driver (not as a second spawned task) saves a spawn and a
/// cross-thread wake-up per task.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(panic_text(payload))),
        }
    }
}

async fn snapshot_off_thread(dir: PathBuf) -> crate::changes::Snapshot {
    tokio::task::spawn_blocking(move || snapshot(&dir))
        .await
        .unwrap_or_default()
}

/// Runs a task to its end beside its timers, then records the end.
pub(crate) async fn drive(
    entry: Arc<TaskEntry>,
    task: Box<dyn BackgroundTask>,
    ctx: TaskContext,
    grace: Duration,
) {
    let before = match &entry.spec.track_changes {
        Some(dir) => Some(snapshot_off_thread(dir.clone()).await),
        None => None,
    };
    let mut run = CatchPanic(Box::pin(task.run(ctx)));
    let mut changes = entry.changes.subscribe();
    let far = Duration::from_secs(86_400 * 365);
    let mut abort_at: Option<Instant> = None;
    let mut stopping = false;
    let heartbeat = entry.spec.monitoring.heartbeat;
    let mut next_heartbeat = heartbeat.map(|every| Instant::now() + every);
    let mut heartbeat_cursor = 0u64;
    let idle = entry.spec.monitoring.idle_timeout;
    // The start of the silence last reported: each silence is reported
    // once; until new output comes, the timer only checks back every `idle`.
    let mut reported_silence: Option<Instant> = None;
    let joined = loop {
        let deadline = entry.deadline();
        let quiet_since = entry.output.last_write().unwrap_or(entry.started);
        let stall_at = idle.map(|idle| {
            if reported_silence == Some(quiet_since) {
                Instant::now() + idle
            } else {
                quiet_since + idle
            }
        });
        tokio::select! {
            joined = &mut run => break joined,
            _ = entry.cancel.cancelled(), if !stopping => {
                stopping = true;
                abort_at = Some(Instant::now() + grace);
            }
            _ = tokio::time::sleep_until(abort_at.unwrap_or_else(|| Instant::now() + far)), if abort_at.is_some() => {
                // Dropping the future stops it (a process task's guard kills its group).
                break Err("the task did not stop within its grace period and was dropped".to_string());
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(|| Instant::now() + far)), if deadline.is_some() && !stopping => {
                entry.on_deadline();
            }
            _ = tokio::time::sleep_until(next_heartbeat.unwrap_or_else(|| Instant::now() + far)), if next_heartbeat.is_some() => {
                entry.heartbeat(&mut heartbeat_cursor);
                next_heartbeat = heartbeat.map(|every| Instant::now() + every);
            }
            _ = tokio::time::sleep_until(stall_at.unwrap_or_else(|| Instant::now() + far)), if stall_at.is_some() && !stopping => {
                // Output may have come since the timer was set: check again.
                let quiet_since = entry.output.last_write().unwrap_or(entry.started);
                let new_silence = reported_silence != Some(quiet_since);
                if let Some(idle) = idle.filter(|idle| new_silence && quiet_since + *idle <= Instant::now()) {
                    reported_silence = Some(quiet_since);
                    entry.on_stall(idle);
                }
            }
            _ = changes.changed() => {}
        }
    };
    drop(run);
    let changed_files = match (&entry.spec.track_changes, before) {
        (Some(dir), Some(before)) => {
            let after = snapshot_off_thread(dir.clone()).await;
            Some(diff(dir, &before, &after))
        }
        _ => None,
    };
    entry.finish(joined, changed_files);
}
