//! Entries read back from a root at open. A task whose saved state is
//! terminal comes back as it ended. One that was still running when its host
//! died becomes `lost`, after a liveness check: if its process still runs
//! (same pid and process start time, so a reused pid is not mistaken), it is
//! reported orphaned, for the host to adopt by killing. Never restarted.

use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::context::{CancelSignal, SinkErrors};
use crate::events::EventKind;
use crate::info::{TaskResult, TaskStatus};
use crate::notifications::NotificationKind;
use crate::output::OutputBuffer;
use crate::process::process_start_time;
use crate::store::Manifest;
use crate::util::now_ms;

use super::entry::next_spawn_order;
use super::state::{Phase, TaskState};
use super::{Registry, Services, TaskEntry, TaskSpec};

impl TaskEntry {
    /// An entry for a task read back from its folder (or from the record of
    /// a foreground process) by `open`.
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
                error: if was_running {
                    Some(crate::inspect::LOST_ERROR.to_string())
                } else {
                    info.error.clone()
                },
                cancel_reason: info.cancel_reason.clone(),
                duration_ms,
                output: output.stats(),
                changed_files: None,
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
        state.cancel_reason = info.cancel_reason.clone();
        state.pid = info.pid;
        state.containment = info.containment;
        state.process_start_time = manifest.process_start_time;
        state.orphan_pid = orphan_pid;
        // A task that came from a foreground record gets its folder below.
        state.persisted = !was_running || !info.foreground;
        let entry = Arc::new(TaskEntry {
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
                source: None,
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
            changes: watch::channel(0).0,
            registry,
            services,
            disk: std::sync::Mutex::new(()),
            end_told: std::sync::Mutex::new(false),
            disk_jobs: std::sync::Mutex::new(Vec::new()),
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
}
