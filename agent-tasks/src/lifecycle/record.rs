//! Persisting and announcing: what is saved and told at each step of a
//! task's life. Events go to subscribers and, once the task has a folder, to
//! its `events.jsonl`; the manifest is rewritten at each change a restart
//! must know; the end saves the result, the notification and the terminal
//! manifest, in that order, before it is announced.
//!
//! A foreground process task has no folder while it stays small, but the
//! moment it has a pid it gets a line in the foreground journal
//! ([`crate::journal`]), ended when it ends or gets a folder: if the host crashes
//! meanwhile, the next `open` finds the record and reports the task lost (or
//! orphaned, while its process lives), like a background task.

use std::sync::Arc;

use crate::changes::ChangedFiles;
use crate::context::OutputEvents;
use crate::events::{Event, EventKind};
use crate::info::{compact_value, CancelKind, Containment, TaskResult};
use crate::notifications::{
    last_lines, Notification, NotificationKind, NOTIFICATION_TAIL_CHARS, NOTIFICATION_TAIL_LINES,
    NOTIFICATION_VALUE_CHARS,
};
use crate::output::{OutputEvent, Report};
use crate::process::process_start_time;
use crate::store::Manifest;
use crate::util::{lock, now_ms};

use super::state::Phase;
use super::{RootHold, TaskEntry};

/// Events kept in memory for a task that has no folder yet (written out if
/// it gets one); past this the oldest are dropped.
const MAX_UNSAVED_EVENTS: usize = 64;

impl TaskEntry {
    /// The handler a task's output writer calls with what happened to the
    /// output (never under a lock of the output's).
    pub(crate) fn output_events(me: std::sync::Weak<TaskEntry>) -> OutputEvents {
        Arc::new(move |event| {
            if let Some(entry) = me.upgrade() {
                entry.on_output_event(event);
            }
        })
    }

    /// Acts on a report of the output buffer from a call made here (spill,
    /// finish): through the writer, which hands the events to
    /// [`TaskEntry::output_events`]. (A restored task has no writer and its
    /// stream is finished: it reports nothing.)
    pub(super) fn act_on_output(&self, report: Report) {
        if let Some(writer) = &self.writer {
            writer.act(report);
        }
    }

    /// Runs file work that syncs to disk off the runtime's worker threads:
    /// on the manager's blocking pool. Jobs that save the manifest read the
    /// task's info when they run, so the newest state is what is saved,
    /// whatever order they run in.
    ///
    /// Once the end is decided no job starts: the end saves the manifest
    /// itself, after the jobs started before it are done (see
    /// [`TaskEntry::disk_jobs_done`]), so nothing of the task is written
    /// after its end.
    pub(super) fn off_thread(self: &Arc<Self>, job: fn(&TaskEntry)) {
        if matches!(lock(&self.state).phase, Phase::Ended { .. }) {
            return;
        }
        let me = self.clone();
        let running = self.services.runtime.spawn_blocking(move || job(&me));
        self.track_disk_job(running);
    }

    fn track_disk_job(&self, job: tokio::task::JoinHandle<()>) {
        let mut jobs = lock(&self.disk_jobs);
        jobs.retain(|h| !h.is_finished());
        jobs.push(job);
    }

    /// Waits until the file work started so far on the blocking pool is
    /// done (and any it started meanwhile).
    pub(super) async fn disk_jobs_done(&self) {
        loop {
            let jobs = std::mem::take(&mut *lock(&self.disk_jobs));
            if jobs.is_empty() {
                return;
            }
            for job in jobs {
                // An error here is a runtime shutting down: nothing to wait for.
                let _ = job.await;
            }
        }
    }

    fn on_output_event(self: &Arc<Self>, event: OutputEvent) {
        match event {
            OutputEvent::Spilled { buffered } => {
                self.emit(EventKind::Spilled {
                    buffered_bytes: buffered,
                    log_path: self.output.log_path().display().to_string(),
                });
                self.off_thread(TaskEntry::persist);
            }
            OutputEvent::CapReached { disk_bytes } => {
                self.emit(EventKind::OutputDropped {
                    disk_limit: disk_bytes,
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
            self.append_events(&[event]);
        }
    }

    fn append_events(&self, events: &[Event]) {
        if let Err(e) = self.services.store.append_events(&self.spec.id, events) {
            self.report_disk_error("events.jsonl", e.to_string());
        }
    }

    /// Tells subscribers a task file could not be written (bus only: writing
    /// it to `events.jsonl` could fail the same way).
    pub(super) fn report_disk_error(&self, file: &str, error: String) {
        self.services.bus.publish(
            &self.spec.id,
            EventKind::SinkError {
                sink: file.to_string(),
                error,
            },
        );
    }

    /// Gives the task a folder if it has none, and saves its manifest. A
    /// foreground record, if any, is removed: the folder now tells the story.
    pub(crate) fn persist(&self) {
        let _disk = lock(&self.disk);
        let (unsaved, start_time, had_record) = {
            let mut st = lock(&self.state);
            // Read lazily: only tasks with a folder (or a record) need it for
            // recovery, and the process is still running then.
            if let (Some(pid), None, true) = (st.pid, st.process_start_time, st.is_running()) {
                st.process_start_time = process_start_time(pid);
            }
            let unsaved = if st.persisted {
                Vec::new()
            } else {
                st.persisted = true;
                std::mem::take(&mut st.unsaved_events)
            };
            let had_record = std::mem::take(&mut st.foreground_record);
            (unsaved, st.process_start_time, had_record)
        };
        self.append_events(&unsaved);
        let manifest = Manifest::new(self.info(), start_time);
        if let Err(e) = self.services.store.write_manifest(&manifest) {
            self.report_disk_error("manifest.json", e.to_string());
        }
        if had_record {
            self.end_foreground_record();
        }
    }

    /// Ends the task's line in the foreground journal.
    fn end_foreground_record(&self) {
        if let Err(e) = self.services.store.remove_foreground_record(&self.spec.id) {
            self.report_disk_error("foreground record", e.to_string());
        }
    }

    pub(super) fn is_persisted(&self) -> bool {
        lock(&self.state).persisted
    }

    /// Records the process the task started, so recovery can recognise it: a
    /// task with a folder saves its manifest; a foreground one without a
    /// folder writes its small record.
    pub(crate) fn on_pid(
        self: &Arc<Self>,
        pid: u32,
        containment: Option<Containment>,
        start: Option<u64>,
    ) {
        let (persisted, running) = {
            let mut st = lock(&self.state);
            st.pid = Some(pid);
            st.process_start_time = start;
            st.containment = containment.or(st.containment);
            (st.persisted, st.is_running())
        };
        if persisted {
            self.off_thread(TaskEntry::persist);
        } else if running {
            // Not synced (it must outlive a crash of the host, not of the
            // machine): written here, like a log append.
            self.write_foreground_record();
        }
    }

    /// Writes the record of a foreground process that has no folder (if it
    /// still has none and still runs).
    fn write_foreground_record(&self) {
        let _disk = lock(&self.disk);
        let start_time = {
            let mut st = lock(&self.state);
            let Some(pid) = st.pid else {
                return;
            };
            if st.persisted || !st.is_running() {
                return;
            }
            if st.process_start_time.is_none() {
                st.process_start_time = process_start_time(pid);
            }
            st.foreground_record = true;
            st.process_start_time
        };
        let manifest = Manifest::new(self.info(), start_time);
        if let Err(e) = self.services.store.write_foreground_record(&manifest) {
            self.report_disk_error("foreground record", e.to_string());
        }
    }

    /// Announces the start (the event; a background task's folder is made
    /// by its driver, off the worker threads, before the task runs).
    pub(crate) fn announce_start(&self) {
        self.emit(EventKind::Started {
            kind: self.spec.kind.clone(),
            description: self.spec.description.clone(),
            owner: self.spec.owner.clone(),
            background: self.spec.background,
        });
    }

    /// The last lines of the task's output, as a notification shows them.
    pub(super) fn output_tail(&self) -> String {
        // Clean for the model: no escape sequences, progress bars in their
        // last state (the log keeps the raw bytes).
        self.output
            .text_since(0, 16 * 1024)
            .map(|text| crate::clean::clean_text(text.as_bytes()))
            .map(|text| last_lines(&text, NOTIFICATION_TAIL_LINES, NOTIFICATION_TAIL_CHARS))
            .unwrap_or_default()
    }

    /// Queues the end notification, unless a tool answer already told the
    /// model of the end (see [`TaskEntry::end_was_told`]).
    pub(super) fn queue_notification(&self, kind: NotificationKind) {
        let told = lock(&self.end_told);
        if *told {
            return;
        }
        self.queue_notification_for("end", kind, self.output_tail(), None);
        drop(told);
    }

    pub(super) fn queue_notification_for(
        &self,
        occasion: &str,
        kind: NotificationKind,
        output_tail: String,
        detail: Option<String>,
    ) {
        let notification = self.notification(occasion, kind, output_tail, detail);
        self.push_notification(notification);
    }

    /// [`TaskEntry::queue_notification_for`] with the saving (a synced file)
    /// done on the blocking pool: for monitoring notices raised on a worker
    /// thread or by the task's own writes.
    pub(super) fn queue_notification_off_thread(
        self: &Arc<Self>,
        occasion: &str,
        kind: NotificationKind,
        output_tail: String,
        detail: Option<String>,
    ) {
        let notification = self.notification(occasion, kind, output_tail, detail);
        let me = self.clone();
        let saving = self
            .services
            .runtime
            .spawn_blocking(move || me.push_notification(notification));
        self.track_disk_job(saving);
    }

    fn push_notification(&self, notification: Notification) {
        if let Err(e) = self.services.notifications.push(notification) {
            self.report_disk_error("notifications", e);
        }
    }

    fn notification(
        &self,
        occasion: &str,
        kind: NotificationKind,
        output_tail: String,
        detail: Option<String>,
    ) -> Notification {
        let info = self.info();
        let value = match (&lock(&self.state).phase, kind) {
            (Phase::Ended { result, .. }, NotificationKind::Finished) => result
                .value
                .as_ref()
                .map(|v| compact_value(v, NOTIFICATION_VALUE_CHARS)),
            _ => None,
        };
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
            source: self.spec.source.clone(),
            value,
            created_at_ms: now_ms(),
            text: String::new(),
        };
        notification.text = notification.render();
        notification
    }

    /// Saves and announces the end (the state already holds the result):
    /// result and changed files, the notification, the terminal manifest,
    /// then the `task.finished` event, and last the waiters are released.
    ///
    /// `root` is the driver's hold on the root folder: it is let go after the
    /// last write and before the waiters are released, so a host that drops
    /// the manager once its waits return can reopen the root at once.
    pub(super) fn save_and_announce_end(
        &self,
        result: &TaskResult,
        went_background: bool,
        root: Arc<RootHold>,
    ) {
        // A stop from outside the host (`agent-tasks kill`) is news to it.
        let host_cancel = result.cancel_reason.as_ref().is_some_and(|r| {
            matches!(
                r.kind,
                CancelKind::User | CancelKind::Shutdown | CancelKind::OwnerClosed
            ) && !crate::inspect::is_kill_from_outside(r)
        });
        let notify = went_background && (!host_cancel || self.services.notify_host_cancels);
        if went_background || self.is_persisted() {
            if let Err(e) = self.services.store.write_result(result) {
                self.report_disk_error("result.json", e.to_string());
            }
            if let Some(changes) = &result.changed_files {
                self.save_changed_files(changes);
            }
            // The notification is saved before the terminal manifest: after a
            // crash in between, recovery finds the task unfinished and
            // rewrites the same notification id, never a second one.
            if notify {
                self.queue_notification(NotificationKind::Finished);
            }
            self.persist();
        } else {
            self.remove_foreground_record();
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
        drop(root);
        lock(&self.state).announce();
        self.notify_waiters();
    }

    /// Ends the foreground record, if the task has one (an append, not
    /// synced: done wherever the end is recorded).
    pub(super) fn remove_foreground_record(&self) {
        let had_record = std::mem::take(&mut lock(&self.state).foreground_record);
        if had_record {
            self.end_foreground_record();
        }
    }

    fn save_changed_files(&self, changes: &ChangedFiles) {
        if let Err(e) = self
            .services
            .store
            .write_json(&self.spec.id, "files.json", changes)
        {
            self.report_disk_error("files.json", e.to_string());
        }
    }
}
