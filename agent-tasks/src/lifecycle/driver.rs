//! The driver: one future per task that runs the task's own future beside
//! its timers (timeout, stop grace, heartbeat, stall) and then records the
//! end. The timers are plain `select!` arms inside it, so they end with the
//! task and never keep a runtime or a host process alive. Deadlines that do
//! not fit in an `Instant` mean "no deadline": no duration can overflow.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use crate::changes::{diff, snapshot, ChangedFiles};
use crate::context::TaskContext;
use crate::info::{TaskResult, TaskStatus};
use crate::task::{BackgroundTask, TaskOutcome};
use crate::util::{deadline, lock, millis, now_ms, sleep_until};

use super::{RootHold, TaskEntry};

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
struct CatchPanic<F>(F);

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let inner = Pin::new(&mut self.0);
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

/// How the task's own future ended, as the driver saw it.
struct Joined {
    outcome: Result<TaskOutcome, String>,
    /// Whether a stop had been asked for when the future returned.
    stop_requested: bool,
}

/// Runs a task to its end beside its timers, then records the end. Holds
/// the root until the end is saved. The task and its context come boxed:
/// the arguments of an async fn stay in its state for its whole life, and
/// the context alone is 232 bytes a task (the box is freed once the task's
/// future is made).
pub(crate) async fn drive(
    entry: Arc<TaskEntry>,
    start: Box<(Box<dyn BackgroundTask>, TaskContext)>,
    grace: Duration,
    root: Arc<super::RootHold>,
) {
    if entry.spec.background {
        // The folder and manifest exist before the task starts (saved off
        // the worker threads: they are synced to disk).
        let me = entry.clone();
        let _ = tokio::task::spawn_blocking(move || me.persist_while_running()).await;
    }
    let before = match &entry.spec.track_changes {
        Some(dir) => Some(snapshot_off_thread(dir.clone()).await),
        None => None,
    };
    // Unboxed in a block of its own, so the emptied box is freed here, not
    // at the end of the task.
    let (task, ctx) = {
        let start = start;
        *start
    };
    let mut run = CatchPanic(task.run(ctx));
    let mut abort_at: Option<Instant> = None;
    let mut stopping = false;
    let heartbeat = entry.spec.monitoring.heartbeat;
    let mut next_heartbeat = heartbeat.and_then(|every| deadline(Instant::now(), every));
    let mut heartbeat_cursor = 0u64;
    let idle = entry.spec.monitoring.idle_timeout;
    // The start of the silence last reported: each silence is reported
    // once; until new output comes, the timer only checks back every `idle`.
    let mut reported_silence: Option<Instant> = None;
    let joined = loop {
        // Armed before the state is read (deadlines, silence): a change in
        // between wakes this loop.
        let changed = entry.changes.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let timeout_at = if stopping { None } else { entry.deadline() };
        // A paused task is silent on purpose: no stall while paused, and the
        // silence after a resume counts from the resume.
        let (paused, quiet_since) = entry.quiet_since();
        let stall_at = match idle {
            Some(idle) if !stopping && !paused => {
                let from = if reported_silence == Some(quiet_since) {
                    Instant::now()
                } else {
                    quiet_since
                };
                deadline(from, idle)
            }
            _ => None,
        };
        let wake_at = [
            abort_at.filter(|_| stopping),
            timeout_at,
            next_heartbeat,
            stall_at,
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            outcome = &mut run => break Joined {
                outcome,
                stop_requested: entry.cancel.is_cancelled(),
            },
            _ = entry.cancel.cancelled(), if !stopping => {
                stopping = true;
                abort_at = deadline(Instant::now(), grace);
            }
            // One timer for the four deadlines (stop grace, timeout,
            // heartbeat, stall): each armed timer is a future held for the
            // task's whole life, and 100,000 waiting tasks feel every one.
            _ = sleep_until(wake_at), if wake_at.is_some() => {
                let now = Instant::now();
                if stopping && abort_at.is_some_and(|at| at <= now) {
                    // Dropping the future stops it (a process task's guard kills its group).
                    break Joined {
                        outcome: Err("the task did not stop within its grace period and was dropped".to_string()),
                        stop_requested: true,
                    };
                }
                if timeout_at.is_some_and(|at| at <= now) {
                    entry.on_deadline();
                }
                if next_heartbeat.is_some_and(|at| at <= now) {
                    entry.heartbeat(&mut heartbeat_cursor);
                    next_heartbeat = heartbeat.and_then(|every| deadline(Instant::now(), every));
                }
                if stall_at.is_some_and(|at| at <= now) {
                    // Output may have come since the timer was set: check again.
                    let (paused, quiet_since) = entry.quiet_since();
                    let new_silence = reported_silence != Some(quiet_since);
                    let silent_enough = idle
                        .and_then(|idle| deadline(quiet_since, idle))
                        .is_some_and(|at| at <= Instant::now());
                    if let (Some(idle), true, true, false) = (idle, new_silence, silent_enough, paused) {
                        reported_silence = Some(quiet_since);
                        entry.on_stall(idle);
                    }
                }
            }
            _ = &mut changed => {}
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
    // Boxed: the end's state (the result, the saves) is the largest part
    // of this future, and would otherwise be held by every running task.
    Box::pin(entry.finish(joined, changed_files, root)).await;
}

impl TaskEntry {
    /// Records the end of a task cancelled while queued: it never ran.
    pub(super) async fn finish_unstarted(self: &Arc<Self>, root: Arc<RootHold>) {
        let joined = Joined {
            outcome: Ok(TaskOutcome {
                success: false,
                value: None,
                // Said in words too: a stopped task that ran has no error.
                error: Some("it never started: stopped while queued".to_string()),
                exit: None,
                usage: None,
                ended_on_its_own: false,
            }),
            stop_requested: true,
        };
        self.finish(joined, None, root).await;
    }

    /// Records the task's end. Called once, by the driver.
    async fn finish(
        self: &Arc<Self>,
        joined: Joined,
        changed_files: Option<ChangedFiles>,
        root: Arc<RootHold>,
    ) {
        let report = self.output.finish();
        self.act_on_output(report);
        if let Some(writer) = self.writer() {
            writer.close_sinks();
        }
        let (outcome, stop_error) = match joined.outcome {
            Ok(outcome) => (Some(outcome), None),
            Err(e) => (None, Some(e)),
        };
        // A task that ended by itself before any stop reached it keeps its
        // natural status, even if a cancel came in meanwhile.
        let natural =
            !joined.stop_requested || outcome.as_ref().is_some_and(|o| o.ended_on_its_own);
        // A process stopped from outside the host (`agent-tasks kill`) ends
        // `cancelled`, with the reason the command left before it signalled
        // (one that completed all the same keeps its status; the request is
        // taken either way).
        let killed_from_outside = match (natural, &outcome, self.running_pid()) {
            // Read here, not on the blocking pool: for nearly every task it is
            // one `openat` that finds nothing, where a hop to the pool would
            // cost every task's end a thread switch (the spawn path's budget).
            (true, Some(o), Some(pid)) => {
                let dir = self.services.store.folder(&self.spec.id);
                crate::inspect::take_kill_request(&dir, pid).filter(|_| !o.success)
            }
            _ => None,
        };
        let registry = self.registry.upgrade();
        let mut startable = Vec::new();
        let (result, went_background) = {
            let mut reg = registry.as_ref().map(|r| lock(r));
            let mut st = lock(&self.state);
            // The stop request, unless the task ended on its own first
            // (then only a stop from outside counts).
            let cancel_reason = if natural {
                killed_from_outside
            } else {
                self.cancel.reason()
            };
            let status = TaskStatus::of_end(
                cancel_reason.as_ref(),
                outcome.as_ref().is_some_and(|o| o.success),
            );
            let usage = outcome.as_ref().and_then(|o| o.usage.clone());
            let result = TaskResult {
                id: self.spec.id.clone(),
                status,
                exit: outcome.as_ref().and_then(|o| o.exit),
                error: stop_error.or_else(|| outcome.as_ref().and_then(|o| o.error.clone())),
                value: outcome.and_then(|o| o.value),
                cancel_reason,
                // Run time: from the start of the run (not the wait in the
                // queue); none for a task that never left the queue.
                duration_ms: if st.is_queued() {
                    0
                } else {
                    millis(st.ran_from.unwrap_or(self.started).elapsed())
                },
                output: self.output.stats(),
                changed_files,
                usage,
            };
            let held = st.end(result.clone(), now_ms());
            if let (Some(held), Some(reg)) = (held, reg.as_mut()) {
                // Every running task counts for its kind; background ones
                // also hold a background slot; a task ended in the queue
                // held neither.
                if held.kind {
                    reg.capacity.remove_kind(&self.spec.kind);
                }
                if held.background {
                    reg.capacity.remove(&self.spec.owner);
                }
                if held.kind || held.background {
                    startable = reg.take_startable(&self.services);
                }
            }
            (result, self.spec.background || st.detached)
        };
        // A slot freed: queued tasks that fit now start (no lock is held).
        for pending in startable {
            pending.start();
        }
        // Notices raised by the task's last output are queued before its end
        // is saved, and no earlier manifest save lands after the end's (none
        // starts once the end is decided).
        self.disk_jobs_done().await;
        // (Read after those jobs: a spill's save gives the task its folder.)
        let syncs_files = went_background || self.is_persisted();
        if !syncs_files {
            // A foreground task without a folder: nothing to sync, only its
            // record to remove (if it has one) and the end to announce.
            self.save_and_announce_end(&result, went_background, root);
            return;
        }
        // Saving syncs files: it runs on the blocking pool, and the waiters
        // are released only once it is done.
        let me = self.clone();
        let saved = tokio::task::spawn_blocking(move || {
            me.save_and_announce_end(&result, went_background, root);
        })
        .await;
        if let Err(e) = saved {
            // Only a runtime shutting down cancels it; waiters must not hang.
            self.report_disk_error("result.json", format!("saving the end failed: {e}"));
            lock(&self.state).announce();
            self.notify_waiters();
        }
    }
}
