//! Entries read back from a root at open. A task whose saved state is
//! terminal comes back as it ended. One whose result was saved ended with
//! it, even if its host died before the terminal manifest (the end is
//! recorded and told now, under the notification id it would have had). One
//! that waited in the queue never started: it ends `cancelled` ("the host
//! stopped before it started"), told like any host cancel. One that was
//! still running when its host died becomes `lost`, after a liveness check:
//! if its process still runs (same pid and process start time, so a reused
//! pid is not mistaken), it is reported orphaned, for the host to adopt by
//! killing. Never restarted.

use std::sync::{Arc, Mutex, Weak};

use tokio::time::Instant;

use crate::context::{CancelSignal, SinkErrors};
use crate::events::EventKind;
use crate::info::{CancelKind, CancelReason, TaskResult, TaskStatus};
use crate::manifest::Manifest;
use crate::notifications::NotificationKind;
use crate::output::OutputBuffer;
use crate::process::process_start_time;
use crate::util::now_ms;

use super::entry::next_spawn_order;
use super::record::end_is_notified;
use super::state::{Phase, TaskState};
use super::{Registry, Services, TaskEntry, TaskSpec};

/// The end of a supervised task found at open that cannot say more.
fn failed_at_open(manifest: &Manifest, error: String) -> TaskResult {
    let info = &manifest.info;
    TaskResult {
        id: info.id.clone(),
        status: TaskStatus::Failed,
        exit: None,
        value: None,
        error: Some(error),
        cancel_reason: None,
        duration_ms: now_ms().saturating_sub(info.created_at_ms),
        output: info.output.clone(),
        changed_files: None,
        usage: None,
    }
}

/// A supervised task found at open (see [`TaskEntry::supervised_at_open`]).
pub(crate) enum SupervisedAtOpen {
    /// Its supervisor lives and answered an attach.
    Running(Box<FoundRunning>),
    /// It ended while no host was attached, or its supervisor died: the end
    /// to record now.
    Ended(Box<TaskResult>),
}

/// A live supervisor, attached.
pub(crate) struct FoundRunning {
    pub attached: crate::supervisor::Attached,
    pub snapshot: crate::output::OutputSnapshot,
    pub task: crate::process::ProcessTask,
}

/// The cancel reason of a task found queued at open.
pub(crate) const NEVER_STARTED: &str = "the host stopped before it started";

impl TaskEntry {
    /// What became of a supervised task that was running when its host
    /// died: its supervisor lives (attach to it), or it ended meanwhile
    /// (its exit record is its end, told once), or its supervisor died
    /// (the task ends `failed`, its processes killed). `None` after a
    /// reboot: no supervisor of before runs, and nothing is probed. With
    /// `every_byte` (the host tees output to sinks of its own) every chunk
    /// comes with its bytes.
    pub(crate) fn supervised_at_open(
        folder: &crate::root_dir::Folder,
        manifest: &mut Manifest,
        every_byte: bool,
    ) -> Option<SupervisedAtOpen> {
        use crate::supervisor::{attach, read_spec, supervisor_lives, ExitRecord};
        if manifest.rebooted_since() {
            return None;
        }
        let ended = |manifest: &mut Manifest, record: ExitRecord| {
            manifest.log_head = record.log_head;
            manifest.info.finished_at_ms = Some(record.ended_at_ms);
            let result = record.result(&manifest.info);
            Some(SupervisedAtOpen::Ended(Box::new(result)))
        };
        if let Some(Ok(record)) = ExitRecord::read(folder) {
            return ended(manifest, record);
        }
        let problem = if supervisor_lives(folder) {
            let found = read_spec(folder)
                .map_err(|e| format!("reading its supervisor's spec: {e}"))
                .and_then(|spec| Ok((spec, attach(folder, every_byte)?)));
            match found {
                Ok((spec, (attached, snapshot))) => {
                    return Some(SupervisedAtOpen::Running(Box::new(FoundRunning {
                        attached,
                        snapshot,
                        task: spec.task,
                    })));
                }
                Err(e) => Some(e),
            }
        } else {
            None
        };
        // It may have ended between the two looks.
        match ExitRecord::read(folder) {
            Some(Ok(record)) => return ended(manifest, record),
            Some(Err(e)) => {
                return Some(SupervisedAtOpen::Ended(Box::new(failed_at_open(
                    manifest,
                    format!("reading its exit record: {e}"),
                ))))
            }
            None => {}
        }
        // The supervisor is gone (or does not answer): nothing of the task
        // may run on untracked.
        let info = &manifest.info;
        if let (Some(pid), Some(start)) = (info.pid, manifest.start_time_this_boot()) {
            if process_start_time(pid) == Some(start) {
                crate::process::kill_task_now(info.id.as_str(), pid);
            }
        }
        let error = match problem {
            Some(problem) => format!("{} ({problem})", crate::supervisor::SUPERVISOR_DIED),
            None => crate::supervisor::SUPERVISOR_DIED.to_string(),
        };
        Some(SupervisedAtOpen::Ended(Box::new(failed_at_open(
            manifest, error,
        ))))
    }

    /// Settles the end a manifest read back at open leaves open: a task
    /// whose result was saved ended with it (its host died before the
    /// terminal manifest); a task that waited in the queue never started,
    /// and ends cancelled. The manifest is updated to that end; returns
    /// true if there was one to record (see [`TaskEntry::restore`]).
    pub(crate) fn settle_saved_end(manifest: &mut Manifest, saved: Option<&TaskResult>) -> bool {
        let info = &mut manifest.info;
        if info.status.is_terminal() {
            return false;
        }
        let ended = match saved {
            Some(result) if result.status.is_terminal() => result.clone(),
            _ if info.status == TaskStatus::Queued => TaskResult {
                id: info.id.clone(),
                status: TaskStatus::Cancelled,
                exit: None,
                value: None,
                error: None,
                cancel_reason: Some(CancelReason {
                    kind: CancelKind::Shutdown,
                    message: Some(NEVER_STARTED.to_string()),
                }),
                duration_ms: 0,
                output: info.output.clone(),
                changed_files: None,
                usage: None,
            },
            _ => return false,
        };
        info.status = ended.status;
        info.exit = ended.exit;
        info.error = ended.error.clone();
        info.cancel_reason = ended.cancel_reason.clone();
        info.duration_ms = ended.duration_ms;
        info.output = ended.output.clone();
        info.finished_at_ms = Some(info.finished_at_ms.unwrap_or_else(now_ms));
        // (`foreground` stays as saved: whether the end is told depends on
        // whether the task went to the background.)
        true
    }

    /// An entry for a task read back from its folder (or from the record of
    /// a foreground process) by `open`. With `ended_now` (see
    /// [`TaskEntry::settle_saved_end`]) its end is recorded and told now.
    pub(crate) fn restore(
        manifest: Manifest,
        saved_result: Option<TaskResult>,
        ended_now: bool,
        output: Arc<OutputBuffer>,
        registry: Weak<Mutex<Registry>>,
        services: Arc<Services>,
    ) -> Arc<TaskEntry> {
        let rebooted = manifest.rebooted_since();
        let start_time = manifest.start_time_this_boot();
        let info = manifest.info;
        let was_running = !info.status.is_terminal();
        let orphan_pid = match (was_running, info.pid, start_time) {
            (true, Some(pid), Some(start)) if process_start_time(pid) == Some(start) => Some(pid),
            // After a reboot no process of before runs: nothing is probed.
            _ if rebooted => None,
            _ => info.orphan_pid,
        };
        // Its run time ends at its host's last record of it (the rule the
        // `agent-tasks` command shows for a root no host holds).
        let duration_ms = if was_running {
            crate::inspect::lost_run_time_ms(&info, &services.store.task_dir(&info.id))
        } else {
            info.duration_ms
        };
        let result = match saved_result {
            Some(result) if !was_running => result,
            _ => TaskResult {
                id: info.id.clone(),
                status: if was_running {
                    TaskStatus::Lost
                } else {
                    info.status
                },
                exit: info.exit,
                value: None,
                error: if was_running && rebooted {
                    Some(crate::inspect::REBOOTED_ERROR.to_string())
                } else if was_running {
                    Some(crate::inspect::LOST_ERROR.to_string())
                } else {
                    info.error.clone()
                },
                cancel_reason: info.cancel_reason.clone(),
                duration_ms,
                output: output.stats(),
                changed_files: None,
                usage: None,
            },
        };
        let mut state = TaskState::new(Phase::Ended {
            result: Box::new(result),
            finished_at_ms: info.finished_at_ms.unwrap_or_else(|| {
                if was_running {
                    info.created_at_ms.saturating_add(duration_ms)
                } else {
                    now_ms()
                }
            }),
            announced: true,
        });
        state.detached = info.detached;
        state.pid = info.pid;
        state.containment = info.containment;
        state.limits = info.limits.clone();
        state.process_start_time = start_time;
        state.orphan_pid = orphan_pid;
        // A task that came from a foreground record gets its folder below.
        state.persisted = !was_running || !info.foreground;
        let went_background = !info.foreground || info.detached;
        let entry = Arc::new_cyclic(|me| TaskEntry {
            spec: TaskSpec {
                id: info.id.clone(),
                kind: info.kind.clone(),
                description: info.description.clone(),
                owner: info.owner.clone(),
                keep_alive: info.keep_alive,
                // A lost foreground task is listed like background work.
                background: !info.foreground || was_running,
                foreground_timeout: None,
                background_timeout: None,
                on_timeout: crate::config::OnTimeout::Kill,
                track_changes: None,
                monitoring: crate::config::Monitoring::default(),
                source: manifest.source.clone().map(Box::new),
                supervised: manifest.supervised,
            },
            created_at_ms: info.created_at_ms,
            order: (info.created_at_ms, next_spawn_order()),
            started: Instant::now(),
            output,
            writer: None,
            controls: tokio::sync::Mutex::new(None),
            cancel: CancelSignal::new(),
            inbox: None,
            sink_errors: Arc::new(SinkErrors::default()),
            state: std::sync::Mutex::new(state),
            changes: tokio::sync::Notify::new(),
            registry,
            services,
            disk: std::sync::Mutex::new(()),
            end_told: std::sync::Mutex::new(false),
            disk_jobs: std::sync::Mutex::new(Vec::new()),
            me: me.clone(),
            save_waiting: std::sync::atomic::AtomicBool::new(false),
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
        } else if let (true, Some(result)) = (ended_now, entry.result()) {
            entry.emit(EventKind::Finished {
                status: result.status,
                exit: result.exit,
                reason: result.cancel_reason.clone(),
                error: result.error.clone(),
                duration_ms: result.duration_ms,
            });
            if end_is_notified(&result, went_background, entry.services.notify_host_cancels) {
                // Same id as the end's own: a notice saved before the crash
                // is replaced, not doubled.
                entry.queue_notification(NotificationKind::Finished);
            }
            entry.persist();
        }
        entry
    }
}
