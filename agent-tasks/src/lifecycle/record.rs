//! Persisting and announcing: what is saved and told at each step of a
//! task's life. Events go to subscribers and, once the task has a folder, to
//! its `events.jsonl`; the manifest is rewritten at each change a restart
//! must know; the end saves the result, the notification's file and the
//! terminal manifest, in that order, and only then publishes the
//! notification and announces the end (see
//! [`TaskEntry::save_and_announce_end`] for why every crash point is safe).
//! A save asked for while the task runs never writes after its end is
//! decided. What a full disk refuses is kept and saved later (`retry`).
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
use crate::manifest::Manifest;
use crate::notifications::{
    last_lines, Notification, NotificationKind, NOTIFICATION_TAIL_CHARS, NOTIFICATION_TAIL_LINES,
    NOTIFICATION_VALUE_CHARS,
};
use crate::output::{OutputEvent, Report};
use crate::process::process_start_time;
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

    /// Writes the output gathered for the log (up to 20 ms of small writes)
    /// to it now: called before a notice that tells the owner to read (a
    /// turn's end, a watch match), so every byte the task wrote before it is
    /// in the log when the notice is seen, for readers in this process and
    /// in any other that reads the task's folder.
    pub(super) fn flush_output(&self) {
        let report = self.output.flush();
        self.act_on_output(report);
    }

    /// Saves the manifest off the runtime's worker threads: on the manager's
    /// blocking pool. The save reads the task's info when it runs, so the
    /// newest state is what is saved; a save asked for while another waits
    /// to start is that one (a flood's checkpoints queue no more than one).
    ///
    /// Once the end is decided no save starts: the end saves the manifest
    /// itself, after the jobs started before it are done (see
    /// [`TaskEntry::disk_jobs_done`]), so nothing of the task is written
    /// after its end.
    pub(super) fn persist_off_thread(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.save_waiting.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        let started = self.spawn_disk_job(move || {
            me.save_waiting.store(false, Ordering::SeqCst);
            me.persist_while_running();
        });
        if !started {
            self.save_waiting.store(false, Ordering::SeqCst);
        }
    }

    /// Starts file work on the blocking pool and tracks it, unless the end is
    /// decided. The check and the tracking happen under the `disk_jobs`
    /// lock, which the end takes only after deciding (in
    /// [`TaskEntry::disk_jobs_done`]): a job is either seen there, and
    /// waited for, or never started. (Lock order: `disk_jobs`, then `state`.)
    fn spawn_disk_job(&self, work: impl FnOnce() + Send + 'static) -> bool {
        let mut jobs = lock(&self.disk_jobs);
        if matches!(lock(&self.state).phase, Phase::Ended { .. }) {
            return false;
        }
        jobs.retain(|h| !h.is_finished());
        jobs.push(self.services.runtime.spawn_blocking(work));
        true
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
                self.persist_off_thread();
            }
            OutputEvent::CapReached { disk_bytes } => {
                self.emit(EventKind::OutputDropped {
                    disk_limit: disk_bytes,
                });
                // The cap's drop is saved (the head kept and the counts), not
                // re-derived from the log's length after a crash.
                self.persist_off_thread();
            }
            OutputEvent::Checkpoint => self.persist_off_thread(),
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
                // One slot to start (a push would take four): most tasks
                // are never sent to disk and hold only their start event.
                if st.unsaved_events.capacity() == 0 {
                    st.unsaved_events.reserve_exact(1);
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
        self.save_folder(true);
    }

    /// [`TaskEntry::persist`] for a save asked for while the task runs (a
    /// spill, a pid, a checkpoint): once the end is decided it writes no
    /// manifest (it still gives the task its folder, for the end to save
    /// into). Such a save may run late, on the blocking pool, after the end
    /// was decided: it must not put a terminal manifest on disk before the
    /// end's own saves (result, notification) are there.
    pub(crate) fn persist_while_running(&self) {
        self.save_folder(false);
    }

    fn save_folder(&self, after_end_too: bool) {
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
        // The folder is the task's from here on (the end saves into it),
        // but a save made while running never writes a terminal manifest:
        // checked on the info itself, as the end may be decided meanwhile.
        let info = self.info();
        if !after_end_too && info.status.is_terminal() {
            if had_record {
                self.end_foreground_record();
            }
            return;
        }
        let mut manifest = Manifest::new(info, start_time);
        manifest.log_head = self.output.capped_head();
        manifest.source = self.spec.source.as_deref().cloned();
        manifest.supervised = self.spec.supervised;
        if let Err(e) = self.services.store.write_manifest(&manifest) {
            self.report_disk_error("manifest.json", e.to_string());
            self.keep_unsaved();
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
        limits: Option<crate::limits::LimitsInfo>,
    ) {
        let (persisted, running) = {
            let mut st = lock(&self.state);
            st.pid = Some(pid);
            st.process_start_time = start;
            st.containment = containment.or(st.containment);
            if limits.is_some() {
                st.limits = limits;
            }
            (st.persisted, st.is_running())
        };
        if persisted {
            self.persist_off_thread();
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
        let mut manifest = Manifest::new(self.info(), start_time);
        manifest.source = self.spec.source.as_deref().cloned();
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

    /// Saves the end notification's file without publishing it (unless the
    /// model was told of the end already): see
    /// [`TaskEntry::save_and_announce_end`].
    fn save_end_notification(&self, kind: NotificationKind) -> Option<(Notification, bool)> {
        let told = lock(&self.end_told);
        if *told {
            return None;
        }
        let notification = self.notification("end", kind, self.output_tail(), None);
        let saved = match self.services.notifications.save(&notification) {
            Ok(()) => true,
            Err(e) => {
                self.report_disk_error("notifications", e);
                false
            }
        };
        drop(told);
        Some((notification, saved))
    }

    /// Publishes the saved end notification; if the model was told of the
    /// end meanwhile, its file goes instead.
    fn publish_end_notification(&self, notification: Notification, saved: bool) {
        let told = lock(&self.end_told);
        if *told {
            self.services.notifications.discard(&notification.id);
            return;
        }
        self.services.notifications.publish(notification, saved);
        if !saved {
            self.services.keep_unsaved_notifications();
        }
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
        let _ = self.spawn_disk_job(move || me.push_notification(notification));
    }

    fn push_notification(&self, notification: Notification) {
        if let Err(e) = self.services.notifications.push(notification) {
            self.report_disk_error("notifications", e);
            self.services.keep_unsaved_notifications();
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
        let (value, usage) = match (&lock(&self.state).phase, kind) {
            (Phase::Ended { result, .. }, NotificationKind::Finished) => (
                result
                    .value
                    .as_ref()
                    .map(|v| compact_value(v, NOTIFICATION_VALUE_CHARS)),
                result.usage.clone(),
            ),
            _ => (None, None),
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
            source: self.spec.source.as_deref().cloned(),
            value,
            usage,
            created_at_ms: now_ms(),
            text: String::new(),
        };
        notification.text = notification.render();
        notification
    }

    /// Saves and announces the end (the state already holds the result):
    /// result and changed files, the notification's file, the terminal
    /// manifest; then the notification is published, the `task.finished`
    /// event goes out, and last the waiters are released.
    ///
    /// The order makes every crash point safe. The saved result is the truth
    /// of the end: a crash before the terminal manifest finds it and ends
    /// the task with it (see `restore`), and queues the notification again
    /// under the same id if it was not saved. The notification is published
    /// only once the terminal manifest is saved, so a host can acknowledge
    /// only an end that no crash can turn into another: an acknowledged end
    /// never comes back.
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
        let notify = end_is_notified(result, went_background, self.services.notify_host_cancels);
        if went_background || self.is_persisted() {
            if let Err(e) = self.services.store.write_result(result) {
                self.report_disk_error("result.json", e.to_string());
                self.keep_unsaved();
            }
            if let Some(changes) = &result.changed_files {
                self.save_changed_files(changes);
            }
            pause_point("end.result_saved");
            let notice = if notify {
                self.save_end_notification(NotificationKind::Finished)
            } else {
                None
            };
            pause_point("end.notice_saved");
            self.persist();
            pause_point("end.manifest_saved");
            if let Some((notification, saved)) = notice {
                self.publish_end_notification(notification, saved);
            }
            pause_point("end.published");
        } else {
            self.remove_foreground_record();
        }
        for reached in result.usage.iter().flat_map(|u| &u.limits_reached) {
            self.emit(EventKind::LimitReached {
                limit: reached.limit,
                scope: reached.scope,
                value: reached.value,
                count: reached.count,
            });
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

    /// Saves again what could not be saved (a full disk): the result of an
    /// ended task, then its manifest. Run by the manager's retries (see
    /// [`super::Services::keep_unsaved`]); returns true once all is saved.
    pub(crate) fn save_unsaved(&self) -> bool {
        let result = {
            let mut st = lock(&self.state);
            if !st.unsaved {
                return true;
            }
            st.unsaved = false;
            match &st.phase {
                Phase::Ended { result, .. } => Some(result.as_ref().clone()),
                _ => None,
            }
        };
        if let Some(result) = result {
            if self.services.store.write_result(&result).is_err() {
                self.keep_unsaved();
                return false;
            }
        }
        // (Marks the task unsaved again if the manifest still cannot be
        // written.)
        self.persist();
        !lock(&self.state).unsaved
    }

    /// Marks the task as having unsaved records, for the manager to save
    /// once the disk takes them (see [`super::Services::keep_unsaved`]).
    fn keep_unsaved(&self) {
        lock(&self.state).unsaved = true;
        if let Some(me) = self.me.upgrade() {
            self.services.keep_unsaved(&me);
        }
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

/// Whether a task's end is told by a notification: a task that went to the
/// background, unless the host itself stopped it (cancel, shutdown, closed
/// owner) and did not ask to be told of those. One rule, for the end as it
/// happens and for an end found at `open`.
pub(super) fn end_is_notified(
    result: &TaskResult,
    went_background: bool,
    notify_host_cancels: bool,
) -> bool {
    // A stop from outside the host (`CancelKind::External`) is news to it.
    let host_cancel = result.cancel_reason.as_ref().is_some_and(|r| {
        matches!(
            r.kind,
            CancelKind::User | CancelKind::Shutdown | CancelKind::OwnerClosed
        )
    });
    went_background && (!host_cancel || notify_host_cancels)
}

/// A test hook: with `AGENT_TASKS_TEST_PAUSE_AT=<point>` in the host's
/// environment, the thread that reaches that point of an end's saving stops
/// there for good, after creating the file named by
/// `AGENT_TASKS_TEST_PAUSE_FILE`, so a crash test can SIGKILL the host at
/// that exact instant. The environment is read once; unset, a point costs a
/// load and a compare.
fn pause_point(point: &str) {
    static AT: std::sync::OnceLock<Option<(String, std::path::PathBuf)>> =
        std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        let at = std::env::var("AGENT_TASKS_TEST_PAUSE_AT").ok()?;
        let file = std::env::var_os("AGENT_TASKS_TEST_PAUSE_FILE")?;
        Some((at, file.into()))
    });
    if let Some((at, file)) = at {
        if at == point {
            let _ = std::fs::write(file, point);
            loop {
                std::thread::park();
            }
        }
    }
}
