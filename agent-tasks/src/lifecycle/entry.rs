//! [`TaskEntry`]: one task as the manager holds it. Its fixed facts
//! ([`TaskSpec`]) and its changing state (behind one lock) are kept apart
//! from its live handles (cancel signal, inbox, output writer); the future
//! itself only the driver owns. The verbs that act on one task live here.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::{Monitoring, OnTimeout};
use crate::context::{
    CancelSignal, Control, ControlRequest, Inbox, Message, OutputWriter, SinkErrors,
};
use crate::error::Error;
use crate::id::TaskId;
use crate::info::{CancelKind, CancelReason, TaskInfo, TaskResult, TaskStatus};
use crate::output::OutputBuffer;
use crate::process::{kill_group, process_start_time};
use crate::util::{deadline, lock, millis, now_ms};

use super::state::{Phase, Placement, TaskState};
use super::{Registry, Services};

/// Orders tasks by when they were spawned (or loaded), even within one
/// millisecond.
static SPAWN_ORDER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(super) fn next_spawn_order() -> u64 {
    SPAWN_ORDER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
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
    /// The delegation it answers, for a subagent.
    /// Boxed: 96 bytes inline, and only subagents have one.
    pub source: Option<Box<crate::info::TaskSource>>,
    /// Run by a supervisor process that outlives the host
    /// ([`OnHostExit::KeepRunning`](crate::OnHostExit::KeepRunning)):
    /// `shutdown` and the exit hooks leave it running.
    pub supervised: bool,
}

/// One task as the manager holds it.
pub(crate) struct TaskEntry {
    pub spec: TaskSpec,
    pub created_at_ms: u64,
    /// Sort key for listings: creation time, then spawn order.
    pub order: (u64, u64),
    pub(super) started: Instant,
    pub output: Arc<OutputBuffer>,
    pub(super) writer: Option<OutputWriter>,
    pub cancel: CancelSignal,
    pub(super) inbox: Option<Arc<Inbox>>,
    /// Signal requests to a pausable task (pause, resume); one at a time.
    pub(super) controls: tokio::sync::Mutex<Option<mpsc::Sender<ControlRequest>>>,
    pub(super) sink_errors: Arc<SinkErrors>,
    pub(super) state: Mutex<TaskState>,
    /// Wakes whoever waits on the task's state (its driver, `wait`,
    /// `collect`): a waiter arms a `notified()` before it reads the state,
    /// so no change between the read and the wait is missed. (A watch
    /// channel did the same with a 344-byte allocation per task.)
    pub(super) changes: tokio::sync::Notify,
    pub(super) registry: Weak<Mutex<Registry>>,
    pub(super) services: Arc<Services>,
    /// Serialises manifest writes so the newest info is the one saved, and
    /// orders `events.jsonl` (taken before `state`).
    pub(super) disk: Mutex<()>,
    /// True once a tool answer showed the model this task's end: its end
    /// notification is then not queued (or, if queued, acknowledged). The
    /// check and the queueing happen under this lock.
    pub(super) end_told: Mutex<bool>,
    /// File work running on the blocking pool (manifest saves, monitoring
    /// notices): the end waits for it, so a notice raised before the end is
    /// queued before the end is announced, and nothing of the task is
    /// written after its end (a shutdown that returns leaves no writer).
    pub(super) disk_jobs: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The entry itself, for work that must hand an `Arc` of it on (saving
    /// again what a full disk refused).
    pub(super) me: Weak<TaskEntry>,
    /// A manifest save is queued on the blocking pool and has not started.
    pub(super) save_waiting: std::sync::atomic::AtomicBool,
}

/// What the waiting side learns from [`TaskEntry::wait_until`].
pub(crate) enum Settled {
    Terminal(TaskResult),
    Detached(TaskInfo),
}

/// Why a detach did not happen.
#[derive(Debug)]
pub(crate) enum DetachError {
    /// A background cap is full; the task stays in the foreground.
    Capacity(Error),
}

/// The parts a new task's entry is made of.
pub(crate) struct NewEntry {
    pub spec: TaskSpec,
    pub output: Arc<OutputBuffer>,
    pub sink_errors: Arc<SinkErrors>,
    /// When an earlier host created the task (a re-attach); else now.
    pub created_at_ms: Option<u64>,
    pub inbox: Option<Arc<Inbox>>,
    pub controls: Option<mpsc::Sender<ControlRequest>>,
    pub registry: Weak<Mutex<Registry>>,
    pub services: Arc<Services>,
}

impl TaskEntry {
    /// A new running task. `writer` is made by the caller from the entry's
    /// output-event handler (see [`TaskEntry::output_events`]).
    pub(crate) fn new(
        parts: NewEntry,
        make_writer: impl FnOnce(Weak<TaskEntry>) -> OutputWriter,
    ) -> Arc<TaskEntry> {
        let now = Instant::now();
        let placement = if parts.spec.background {
            Placement::Background { since: now }
        } else {
            Placement::Foreground
        };
        let created_at_ms = parts.created_at_ms.unwrap_or_else(now_ms);
        // A re-attached task's run time counts from its creation.
        let started = now
            .checked_sub(std::time::Duration::from_millis(
                now_ms().saturating_sub(created_at_ms),
            ))
            .unwrap_or(now);
        Arc::new_cyclic(|me| TaskEntry {
            writer: Some(make_writer(me.clone())),
            spec: parts.spec,
            created_at_ms,
            order: (created_at_ms, next_spawn_order()),
            started,
            output: parts.output,
            cancel: CancelSignal::new(),
            inbox: parts.inbox,
            controls: tokio::sync::Mutex::new(parts.controls),
            sink_errors: parts.sink_errors,
            state: Mutex::new(TaskState::new(Phase::Running(placement))),
            changes: tokio::sync::Notify::new(),
            registry: parts.registry,
            services: parts.services,
            disk: Mutex::new(()),
            end_told: Mutex::new(false),
            disk_jobs: Mutex::new(Vec::new()),
            me: me.clone(),
            save_waiting: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The model has seen this task's end in a tool answer: its end
    /// notification would tell it again, so it is dropped (acknowledged if
    /// already queued, never queued if not). Watch, progress and stall
    /// notices are not affected.
    pub(crate) fn end_was_told(&self) {
        let mut told = lock(&self.end_told);
        *told = true;
        let id = format!("{}.end", self.spec.id);
        if let Err(e) = self.services.notifications.ack(&[id]) {
            self.report_disk_error("notifications", e.to_string());
        }
    }

    pub(crate) fn writer(&self) -> Option<&OutputWriter> {
        self.writer.as_ref()
    }

    pub(super) fn notify_waiters(&self) {
        self.changes.notify_waiters();
    }

    pub(crate) fn status(&self) -> TaskStatus {
        lock(&self.state).status()
    }

    pub(crate) fn is_listed(&self) -> bool {
        let st = lock(&self.state);
        // A foreground task that ended without detaching was never background work.
        st.is_running() || self.spec.background || st.detached
    }

    pub(crate) fn info(&self) -> TaskInfo {
        let st = lock(&self.state);
        // The cancel reason lives in one place per phase: the stop request
        // (the task's `CancelSignal`) while it runs, the result once ended.
        let (status, exit, error, duration_ms, finished_at_ms, cancel_reason) = match &st.phase {
            Phase::Queued => (
                TaskStatus::Queued,
                None,
                None,
                0,
                None,
                self.cancel.reason(),
            ),
            Phase::Running(_) => (
                TaskStatus::Running,
                None,
                None,
                millis(st.ran_from.unwrap_or(self.started).elapsed()),
                None,
                self.cancel.reason(),
            ),
            Phase::Ended {
                result,
                finished_at_ms,
                ..
            } => (
                result.status,
                result.exit,
                result.error.clone(),
                result.duration_ms,
                Some(*finished_at_ms),
                result.cancel_reason.clone(),
            ),
        };
        TaskInfo {
            id: self.spec.id.clone(),
            kind: self.spec.kind.clone(),
            description: self.spec.description.clone(),
            owner: self.spec.owner.clone(),
            status,
            foreground: st.in_foreground(),
            detached: st.detached,
            keep_alive: self.spec.keep_alive,
            paused: st.paused_since.is_some(),
            created_at_ms: self.created_at_ms,
            finished_at_ms,
            duration_ms,
            pid: st.pid,
            orphan_pid: st.orphan_pid,
            containment: st.containment,
            limits: st.limits.clone(),
            exit,
            cancel_reason,
            error,
            sink_error: lock(&self.sink_errors.last).clone(),
            output: self.output.stats(),
        }
    }

    /// The result, once the end is saved and announced.
    pub(crate) fn result(&self) -> Option<TaskResult> {
        lock(&self.state).announced_result().cloned()
    }

    /// When the task ended, once its end is announced.
    /// The pid of the task's first process while the task runs.
    pub(crate) fn running_pid(&self) -> Option<u32> {
        let st = lock(&self.state);
        st.pid.filter(|_| st.is_running())
    }

    pub(crate) fn finished_at_ms(&self) -> Option<u64> {
        match &lock(&self.state).phase {
            Phase::Ended {
                finished_at_ms,
                announced: true,
                ..
            } => Some(*finished_at_ms),
            _ => None,
        }
    }

    /// Waits until the task's end is announced, or (with `until_detached`)
    /// until it is no longer in the foreground.
    pub(crate) async fn wait_until(&self, until_detached: bool) -> Settled {
        loop {
            let changed = self.changes.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let st = lock(&self.state);
                if let Some(result) = st.announced_result() {
                    return Settled::Terminal(result.clone());
                }
                if until_detached && !st.in_foreground() && st.is_running() {
                    drop(st);
                    return Settled::Detached(self.info());
                }
            }
            changed.await;
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

    /// Asks the task to stop. The first reason is the one recorded. Returns
    /// false when the task had already ended.
    pub(crate) fn request_cancel(self: &Arc<Self>, reason: CancelReason) -> bool {
        if let Some(pending) = self.take_if_queued(&reason) {
            pending.cancel_unstarted();
            return true;
        }
        let mut st = lock(&self.state);
        if !st.is_running() {
            return false;
        }
        // Under the state lock, so the end (taken under it too) sees the
        // request or not at all.
        if self.cancel.cancel(reason) {
            // A paused task is continued by its stop (see `ProcessTask`).
            st.resume(Instant::now());
        }
        true
    }

    /// Pauses (`SIGSTOP`) or resumes (`SIGCONT`) every process of the task.
    /// Only tasks that run processes can; a task that ended or is stopping
    /// is refused. Pausing a paused task (or resuming a running one) changes
    /// nothing.
    pub(crate) async fn set_paused(self: &Arc<Self>, pause: bool) -> Result<(), Error> {
        let refuse = |why: &str| {
            Error::invalid_argument(
                "id",
                format!(
                    "task `{}` cannot be {}: {why}",
                    self.spec.id,
                    if pause { "paused" } else { "resumed" }
                ),
            )
        };
        let controls = self.controls.lock().await;
        let Some(tx) = controls.as_ref() else {
            return Err(refuse(
                "only process tasks can be paused (a function task runs in the host)",
            ));
        };
        {
            let st = lock(&self.state);
            if !st.is_running() {
                return Err(refuse("it has ended"));
            }
            if st.is_queued() {
                return Err(refuse("it is queued and has not started"));
            }
            if st.paused_since.is_some() == pause {
                return Ok(());
            }
            if pause && self.cancel.is_cancelled() {
                return Err(refuse("it is stopping"));
            }
        }
        let signal = if pause {
            nix::sys::signal::Signal::SIGSTOP
        } else {
            nix::sys::signal::Signal::SIGCONT
        };
        let (done, answered) = tokio::sync::oneshot::channel();
        let request = ControlRequest {
            control: Control::Signal(signal),
            done,
        };
        match (tx.send(request).await, answered.await) {
            (Ok(()), Ok(Ok(()))) => {}
            (Ok(()), Ok(Err(why))) => return Err(refuse(&why)),
            _ => return Err(refuse("it has ended")),
        }
        {
            let mut st = lock(&self.state);
            if !st.is_running() || (pause && self.cancel.is_cancelled()) {
                return Err(refuse("it has ended or is stopping"));
            }
            if pause {
                st.pause(Instant::now());
            } else {
                st.resume(Instant::now());
            }
        }
        self.emit(if pause {
            crate::events::EventKind::Paused {}
        } else {
            crate::events::EventKind::Resumed {}
        });
        if lock(&self.state).persisted {
            self.persist_off_thread();
        }
        self.notify_waiters();
        Ok(())
    }

    /// Resizes the task's terminal (a PTY process task): the child sees the
    /// new size and gets `SIGWINCH`. Refused for a task without a terminal,
    /// and for one that is queued or has ended.
    pub(crate) async fn resize(&self, cols: u16, rows: u16) -> Result<(), Error> {
        crate::process::check_terminal_size(cols, rows)?;
        let refuse = |why: &str| {
            Error::invalid_argument(
                "id",
                format!(
                    "the terminal of task `{}` cannot be resized: {why}",
                    self.spec.id
                ),
            )
        };
        let controls = self.controls.lock().await;
        let Some(tx) = controls.as_ref() else {
            return Err(refuse(
                "it has no terminal (start a process task with `pty`)",
            ));
        };
        {
            let st = lock(&self.state);
            if !st.is_running() {
                return Err(refuse("it has ended"));
            }
            if st.is_queued() {
                return Err(refuse("it is queued and has not started"));
            }
        }
        let (done, answered) = tokio::sync::oneshot::channel();
        let request = ControlRequest {
            control: Control::Resize { cols, rows },
            done,
        };
        match (tx.send(request).await, answered.await) {
            (Ok(()), Ok(Ok(()))) => Ok(()),
            (Ok(()), Ok(Err(why))) => Err(refuse(&why)),
            _ => Err(refuse("it has ended")),
        }
    }

    /// Moves a running foreground task to the background: its buffered
    /// output is written to disk first, then the waiter is released. The
    /// background caps hold: over a cap the task stays in the foreground,
    /// untouched, and the error says which cap. Returns whether it moved.
    pub(crate) fn detach(self: &Arc<Self>) -> Result<bool, DetachError> {
        let registry = self.registry.upgrade();
        {
            let mut reg = registry.as_ref().map(|r| lock(r));
            let mut st = lock(&self.state);
            if !st.in_foreground() {
                return Ok(false);
            }
            if let Some(reg) = reg.as_mut() {
                reg.capacity
                    .check(
                        &self.spec.owner,
                        self.services.max_background,
                        self.services.max_background_per_owner,
                    )
                    .map_err(DetachError::Capacity)?;
                reg.capacity.add(&self.spec.owner);
            }
            st.move_to_background(Instant::now());
        }
        // A spill saves the manifest itself (see `on_output_event`).
        let report = self.output.spill();
        let spilled = !report.events.is_empty();
        self.act_on_output(report);
        self.emit(crate::events::EventKind::Detached {});
        if !spilled {
            self.persist_off_thread();
        }
        self.notify_waiters();
        Ok(true)
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

    /// Whether the task is paused, and since when a silence counts: the
    /// last output, or the last resume if that came later.
    pub(super) fn quiet_since(&self) -> (bool, Instant) {
        let (paused, resumed_at, ran_from) = {
            let st = lock(&self.state);
            (st.paused_since.is_some(), st.resumed_at, st.ran_from)
        };
        let last = self
            .output
            .last_write()
            .unwrap_or(ran_from.unwrap_or(self.started));
        (paused, resumed_at.map_or(last, |at| at.max(last)))
    }

    /// When the current timeout passes: `None` if there is none (or it lies
    /// beyond what an `Instant` can hold).
    /// While paused there is none; the time spent paused pushes it back.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let st = lock(&self.state);
        if st.paused_since.is_some() {
            return None;
        }
        let (from, timeout) = match st.phase {
            Phase::Running(Placement::Foreground) => (self.started, self.spec.foreground_timeout),
            Phase::Running(Placement::Background { since }) => {
                (since, self.spec.background_timeout)
            }
            Phase::Ended { .. } | Phase::Queued => return None,
        };
        let from = from.checked_add(st.paused_total)?;
        timeout.and_then(|t| deadline(from, t))
    }

    /// The current timeout passed. A foreground task whose policy is
    /// `Detach` moves to the background; if a background cap is full it is
    /// stopped instead (`timed_out`, the reason says why), so the caps hold.
    pub(super) fn on_deadline(self: &Arc<Self>) {
        let foreground = lock(&self.state).in_foreground();
        if foreground && self.spec.on_timeout == OnTimeout::Detach {
            if let Err(DetachError::Capacity(e)) = self.detach() {
                self.request_cancel(CancelReason {
                    kind: CancelKind::Timeout,
                    message: Some(format!(
                        "the foreground timeout passed and the task could not move to the background: {e}"
                    )),
                });
            }
        } else {
            self.request_cancel(CancelReason::timeout());
        }
    }
}
