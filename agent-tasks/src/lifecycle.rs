//! The life of one task: its shared entry (status, flags, result), the
//! transitions between statuses (a terminal status is final), detach, the
//! cancel request, and the driver that runs the task's future beside its
//! timeout and stop-grace timers. The timers live inside the driver, so they
//! end with the task and never keep a runtime alive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinError;
use tokio::time::Instant;

use crate::capacity::Capacity;
use crate::config::OnTimeout;
use crate::context::{CancelSignal, Message, OutputWriter, SinkErrors, TaskContext};
use crate::error::Error;
use crate::id::TaskId;
use crate::info::{CancelReason, ExitInfo, TaskInfo, TaskResult, TaskStatus};
use crate::output::OutputBuffer;
use crate::task::{BackgroundTask, TaskOutcome};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
}

#[derive(Debug)]
struct TaskState {
    status: TaskStatus,
    foreground: bool,
    detached: bool,
    counted_background: bool,
    background_since: Option<Instant>,
    cancel_reason: Option<CancelReason>,
    result: Option<TaskResult>,
    finished_at_ms: Option<u64>,
    duration: Option<Duration>,
}

/// One task as the manager holds it: the saved facts and state, apart from
/// the live future (which only the driver owns).
pub(crate) struct TaskEntry {
    pub spec: TaskSpec,
    pub created_at_ms: u64,
    started: Instant,
    pub output: Arc<OutputBuffer>,
    writer: OutputWriter,
    pub cancel: CancelSignal,
    inbox: Option<mpsc::Sender<Message>>,
    pid: Arc<AtomicU32>,
    sink_errors: Arc<SinkErrors>,
    state: Mutex<TaskState>,
    changes: watch::Sender<u64>,
    registry: Weak<Mutex<Registry>>,
}

/// What the waiting side learns from [`TaskEntry::wait_until`].
pub(crate) enum Settled {
    Terminal(TaskResult),
    Detached(TaskInfo),
}

impl TaskEntry {
    pub(crate) fn new(
        spec: TaskSpec,
        output: Arc<OutputBuffer>,
        writer: OutputWriter,
        sink_errors: Arc<SinkErrors>,
        inbox: Option<mpsc::Sender<Message>>,
        registry: Weak<Mutex<Registry>>,
    ) -> (Arc<TaskEntry>, Arc<AtomicU32>) {
        let pid = Arc::new(AtomicU32::new(0));
        let background = spec.background;
        let entry = Arc::new(TaskEntry {
            spec,
            created_at_ms: now_ms(),
            started: Instant::now(),
            output,
            writer,
            cancel: CancelSignal::new(),
            inbox,
            pid: pid.clone(),
            sink_errors,
            state: Mutex::new(TaskState {
                status: TaskStatus::Running,
                foreground: !background,
                detached: false,
                counted_background: background,
                background_since: background.then(Instant::now),
                cancel_reason: None,
                result: None,
                finished_at_ms: None,
                duration: None,
            }),
            changes: watch::channel(0).0,
            registry,
        });
        (entry, pid)
    }

    fn notify(&self) {
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
        let pid = self.pid.load(Ordering::Relaxed);
        let result = st.result.as_ref();
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
            pid: (pid != 0).then_some(pid),
            exit: result.and_then(|r| r.exit),
            cancel_reason: st.cancel_reason.clone(),
            error: result.and_then(|r| r.error.clone()),
            sink_error: lock(&self.sink_errors.last).clone(),
            output: self.output.stats(),
        }
    }

    pub(crate) fn result(&self) -> Option<TaskResult> {
        lock(&self.state).result.clone()
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
            self.output.spill();
            self.notify();
        }
        self.info()
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

    /// Records the task's end. Called once, by the driver.
    fn finish(&self, joined: Result<TaskOutcome, JoinError>) {
        self.output.finish();
        self.writer.close_sinks();
        let registry = self.registry.upgrade();
        {
            let mut reg = registry.as_ref().map(|r| lock(r));
            let mut st = lock(&self.state);
            let (outcome, stop_error) = match joined {
                Ok(outcome) => (Some(outcome), None),
                Err(e) if e.is_panic() => (None, Some(panic_text(e))),
                Err(_) => (
                    None,
                    Some(
                        "the task did not stop within its grace period and was dropped".to_string(),
                    ),
                ),
            };
            let status = match (&st.cancel_reason, &outcome) {
                (Some(reason), _) => reason.terminal_status(),
                (None, Some(o)) if o.success => TaskStatus::Completed,
                _ => TaskStatus::Failed,
            };
            let duration = self.started.elapsed();
            let exit: Option<ExitInfo> = outcome.as_ref().and_then(|o| o.exit);
            let error = stop_error.or_else(|| outcome.as_ref().and_then(|o| o.error.clone()));
            let value = outcome.and_then(|o| o.value);
            st.status = status;
            st.duration = Some(duration);
            st.finished_at_ms = Some(now_ms());
            st.result = Some(TaskResult {
                id: self.spec.id.clone(),
                status,
                exit,
                value,
                error,
                cancel_reason: st.cancel_reason.clone(),
                duration_ms: duration.as_millis() as u64,
                output: self.output.stats(),
            });
            if st.counted_background {
                st.counted_background = false;
                if let Some(reg) = reg.as_mut() {
                    reg.capacity.remove(&self.spec.owner);
                }
            }
        }
        self.notify();
    }

    /// Waits until the task is terminal, or (with `until_detached`) no longer
    /// in the foreground.
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

fn panic_text(e: JoinError) -> String {
    let payload = e.into_panic();
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    };
    format!("the task panicked: {text}")
}

/// Runs a task to its end beside its timers, then records the end.
pub(crate) async fn drive(
    entry: Arc<TaskEntry>,
    task: Box<dyn BackgroundTask>,
    ctx: TaskContext,
    grace: Duration,
) {
    let mut join = tokio::spawn(task.run(ctx));
    let mut changes = entry.changes.subscribe();
    let far = Duration::from_secs(86_400 * 365);
    let mut abort_at: Option<Instant> = None;
    let mut stopping = false;
    let joined = loop {
        let deadline = entry.deadline();
        tokio::select! {
            joined = &mut join => break joined,
            _ = entry.cancel.cancelled(), if !stopping => {
                stopping = true;
                abort_at = Some(Instant::now() + grace);
            }
            _ = tokio::time::sleep_until(abort_at.unwrap_or_else(|| Instant::now() + far)), if abort_at.is_some() => {
                join.abort();
                abort_at = None;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(|| Instant::now() + far)), if deadline.is_some() && !stopping => {
                entry.on_deadline();
            }
            _ = changes.changed() => {}
        }
    };
    entry.finish(joined);
}
