//! Notifications: what the host injects into the conversation when
//! background work ends (or a watch pattern matches). Each pending one is a
//! file `<root>/notifications/<id>.json`, written before it is visible, and
//! removed on `ack`; so a pending notification survives a restart and an
//! acknowledged one never comes back. Ids are derived from the task and the
//! occasion (`<task-id>.end`), so writing one twice cannot make two. Saving
//! and publishing can be two steps (a task's end saves its notice, then its
//! terminal manifest, then publishes the notice). One whose file cannot be
//! written (a full disk) is pending in memory all the same and saved later,
//! unless acknowledged first. Pending ones are indexed by id: `ack` costs one
//! lookup per id.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::TaskId;
use crate::info::{human_duration, CancelReason, ExitInfo, TaskSource, TaskStatus};
use crate::root_dir::{Folder, RootDir};
use crate::util::lock;

/// Lines of output a notification shows at most.
pub const NOTIFICATION_TAIL_LINES: usize = 20;
/// Characters of output a notification shows at most.
pub const NOTIFICATION_TAIL_CHARS: usize = 3000;
/// Characters of a task's returned value a notification shows at most.
pub const NOTIFICATION_VALUE_CHARS: usize = 4000;
/// Characters of a task's source (agent and arguments) a notification shows.
const NOTIFICATION_SOURCE_CHARS: usize = 500;

/// Why a notification was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A background or detached task ended.
    Finished,
    /// A task was found lost after a restart.
    Lost,
    /// A task was found lost, and its process still runs.
    Orphaned,
    /// An output line matched a watch pattern.
    WatchMatch,
    /// Watching stopped after its maximum number of notifications.
    WatchStopped,
    /// A heartbeat: the output since the last one.
    Progress,
    /// The task printed nothing for its idle timeout.
    Stalled,
    /// A multi-turn task (an ACP agent) finished a prompt turn and waits
    /// for a follow-up; it is still running.
    TurnEnded,
}

/// A message for the host to show its model, delivered until acknowledged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Notification {
    /// `<task-id>.<occasion>`; pass it to `ack`.
    pub id: String,
    /// Why it was made.
    pub kind: NotificationKind,
    /// The task it is about.
    pub task_id: TaskId,
    /// The task's owner; notifications are drained per owner.
    pub owner: String,
    /// The task's kind.
    pub task_kind: String,
    /// The task's description.
    pub description: String,
    /// The task's status when the notification was made.
    pub status: TaskStatus,
    /// How its process ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
    /// Why it was stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CancelReason>,
    /// The error of a failed task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Run time in milliseconds.
    pub duration_ms: u64,
    /// The last lines of output (at most 20 lines, 3,000 characters); for
    /// a heartbeat, of the output since the last one.
    pub output_tail: String,
    /// What the occasion adds: the matching line of a watch match, how long
    /// a stalled task has been silent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The delegation this task answers (agent and arguments), for a
    /// subagent started through a toolbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<TaskSource>,
    /// The value the task returned, rendered for a model (a string as it
    /// is, else compact JSON), cut in the middle to
    /// [`NOTIFICATION_VALUE_CHARS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What an ended process task used, and the limits it reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::limits::Usage>,
    /// When it was made (milliseconds since the Unix epoch).
    pub created_at_ms: u64,
    /// The text for the model: metadata first, then the output tail.
    pub text: String,
}

/// Checks a notification id: `<task-id>.<occasion>`.
pub(crate) fn validate_notification_id(raw: &str) -> Result<(), Error> {
    let bad = || Error::InvalidArgument {
        name: "ids".to_string(),
        message: format!(
            "`{}` is not a notification id (expected `<task-id>.<occasion>`)",
            raw.chars().take(80).collect::<String>()
        ),
    };
    let (task, occasion) = raw.rsplit_once('.').ok_or_else(bad)?;
    TaskId::parse(task).map_err(|_| bad())?;
    let occasion_ok = !occasion.is_empty()
        && occasion.len() <= 16
        && occasion
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if occasion_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The last `max_lines` lines of `text`, at most `max_chars` characters,
/// cut on character boundaries.
pub(crate) fn last_lines(text: &str, max_lines: usize, max_chars: usize) -> String {
    let trimmed = text.trim_end_matches('\n');
    // The n-th newline from the end opens the last n lines.
    let start = trimmed
        .rmatch_indices('\n')
        .nth(max_lines.saturating_sub(1))
        .map_or(0, |(i, _)| i + 1);
    let tail = &trimmed[start..];
    let chars = tail.chars().count();
    if chars <= max_chars {
        tail.to_string()
    } else {
        tail.chars().skip(chars - max_chars).collect()
    }
}

impl Notification {
    /// Renders the model-facing text from the other fields.
    pub(crate) fn render(&self) -> String {
        let mut head = match self.kind {
            NotificationKind::Finished => {
                format!("Background task {} {}", self.task_id, self.status)
            }
            NotificationKind::Lost => format!(
                "Background task {} was lost: its host stopped while it ran",
                self.task_id
            ),
            NotificationKind::Orphaned => format!(
                "Background task {} was lost, but its process still runs (orphaned)",
                self.task_id
            ),
            NotificationKind::WatchMatch => {
                format!("Background task {} printed a watched line", self.task_id)
            }
            NotificationKind::WatchStopped => format!(
                "Background task {}: watching stopped after too many matches",
                self.task_id
            ),
            NotificationKind::Progress => {
                format!("Background task {} is still {}", self.task_id, self.status)
            }
            NotificationKind::Stalled => {
                format!(
                    "Background task {} has printed nothing for a while",
                    self.task_id
                )
            }
            NotificationKind::TurnEnded => format!(
                "Background agent {} finished a turn and waits for a follow-up \
                 (send one with task_send, or stop it with task_cancel)",
                self.task_id
            ),
        };
        if let Some(exit) = self.exit {
            match (exit.code, exit.signal) {
                (Some(code), _) => head.push_str(&format!(" (exit code {code})")),
                (None, Some(sig)) => head.push_str(&format!(" (signal {sig})")),
                _ => {}
            }
        }
        let mut text = format!(
            "{head}\nkind: {}  description: {}\nduration: {}",
            self.task_kind,
            self.description,
            human_duration(self.duration_ms)
        );
        if let Some(reason) = &self.reason {
            text.push_str(&format!("  reason: {reason}"));
        }
        if let Some(source) = &self.source {
            text.push('\n');
            text.push_str(&source.answers_line(NOTIFICATION_SOURCE_CHARS));
        }
        if let Some(error) = &self.error {
            text.push_str(&format!("\nerror: {error}"));
        }
        if let Some(usage) = &self.usage {
            text.push_str(&usage.text_lines());
        }
        if let Some(value) = &self.value {
            text.push_str(&format!("\nresult:\n{value}"));
        }
        if let Some(detail) = &self.detail {
            text.push_str(&format!("\n{detail}"));
        }
        if self.output_tail.is_empty() {
            // A turn's notice carries its final message in the detail.
            if self.kind != NotificationKind::TurnEnded {
                text.push_str("\n(no output)");
            }
        } else {
            let label = if self.kind == NotificationKind::Progress {
                "new output"
            } else {
                "last output"
            };
            text.push_str(&format!("\n{label}:\n{}", self.output_tail));
        }
        text
    }
}

/// The pending notifications, on disk and in memory.
pub(crate) struct NotificationQueue {
    /// `<root>/notifications`, through the locked root's descriptor.
    dir: Folder,
    pending: Mutex<Pending>,
}

/// What is pending, in delivery order, with an index by id so `ack` and a
/// replacing `push` cost one lookup per id, whatever is pending.
#[derive(Default)]
struct Pending {
    by_order: BTreeMap<(u64, String), Notification>,
    /// The `created_at_ms` of each pending id (its key in `by_order`).
    index: HashMap<String, u64>,
    /// Pending ids whose file could not be saved (a full disk): they are
    /// delivered from memory and saved by [`NotificationQueue::save_unsaved`]
    /// once the disk takes them again, unless acknowledged first.
    unsaved: HashSet<String>,
}

impl Pending {
    fn insert(&mut self, notification: Notification) {
        self.remove(&notification.id);
        let at = notification.created_at_ms;
        self.index.insert(notification.id.clone(), at);
        self.by_order
            .insert((at, notification.id.clone()), notification);
    }

    /// Removes a pending notification; false if none has that id.
    fn remove(&mut self, id: &str) -> bool {
        let Some(at) = self.index.remove(id) else {
            return false;
        };
        self.by_order.remove(&(at, id.to_string()));
        self.unsaved.remove(id);
        true
    }
}

impl NotificationQueue {
    /// A queue in `<root>/notifications`, loaded with what is pending there.
    /// Unreadable files are reported and skipped.
    pub(crate) fn open(root: &RootDir) -> (Self, Vec<String>) {
        let dir = root.folder("notifications");
        let mut pending = Pending::default();
        let mut problems = Vec::new();
        if let Ok(entries) = dir.entries() {
            for (name, _) in entries {
                if std::path::Path::new(&name)
                    .extension()
                    .and_then(|e| e.to_str())
                    != Some("json")
                {
                    continue;
                }
                match dir.read(&name).map_err(|e| e.to_string()).and_then(|b| {
                    serde_json::from_slice::<Notification>(&b).map_err(|e| e.to_string())
                }) {
                    Ok(n) => pending.insert(n),
                    Err(e) => problems.push(format!("{}: {e}", dir.path().join(&name).display())),
                }
            }
        }
        (
            NotificationQueue {
                dir,
                pending: Mutex::new(pending),
            },
            problems,
        )
    }

    /// The file name of notification `id` in the folder.
    fn file_name(id: &str) -> String {
        format!("{id}.json")
    }

    /// Saves a notification's file without making it pending: the end of a
    /// task saves its notice, then its terminal manifest, and only then
    /// publishes it (see [`NotificationQueue::publish`]), so no host can
    /// acknowledge an end that a crash could still turn into another.
    pub(crate) fn save(&self, notification: &Notification) -> Result<(), String> {
        let name = Self::file_name(&notification.id);
        serde_json::to_vec_pretty(notification)
            .map_err(std::io::Error::other)
            .and_then(|json| self.dir.write_atomic(&name, &json))
            .map_err(|e| format!("saving {}: {e}", self.dir.path().join(&name).display()))
    }

    /// Makes a notification pending (in memory). `saved` tells whether its
    /// file was written; if not, it is kept to be saved later. The same id
    /// replaces the pending one (it is the same occasion).
    pub(crate) fn publish(&self, notification: Notification, saved: bool) {
        let mut pending = lock(&self.pending);
        let id = notification.id.clone();
        pending.insert(notification);
        if !saved {
            pending.unsaved.insert(id);
        }
    }

    /// Saves and queues a notification. Returns a write error, if any; the
    /// notification is queued in memory all the same (and saved again later).
    pub(crate) fn push(&self, notification: Notification) -> Result<(), String> {
        let saved = self.save(&notification);
        self.publish(notification, saved.is_ok());
        saved
    }

    /// Removes the file of a notification that was saved but will not be
    /// published (the model was told of the end meanwhile).
    pub(crate) fn discard(&self, id: &str) {
        let _ = self.dir.remove_file(&Self::file_name(id));
    }

    /// Saves the pending notifications whose files could not be written
    /// before. Returns true when none is left unsaved.
    pub(crate) fn save_unsaved(&self) -> bool {
        // Under the lock: an `ack` cannot slip between the check that a
        // notification is pending and its file being written.
        let mut pending = lock(&self.pending);
        if pending.unsaved.is_empty() {
            return true;
        }
        let ids: Vec<String> = pending.unsaved.iter().cloned().collect();
        for id in ids {
            let saved = match pending.index.get(&id) {
                Some(at) => match pending.by_order.get(&(*at, id.clone())) {
                    Some(notification) => self.save(notification).is_ok(),
                    None => true,
                },
                None => true,
            };
            if saved {
                pending.unsaved.remove(&id);
            }
        }
        pending.unsaved.is_empty()
    }

    /// Pending notifications, oldest first, of one owner or of all.
    pub(crate) fn pending(&self, owner: Option<&str>) -> Vec<Notification> {
        lock(&self.pending)
            .by_order
            .values()
            .filter(|n| owner.is_none_or(|o| n.owner == o))
            .cloned()
            .collect()
    }

    /// Marks notifications delivered: they are removed for good. Unknown ids
    /// (already acknowledged) are ignored; returns how many were removed.
    /// One index lookup per id: linear in the ids, not in ids × pending.
    pub(crate) fn ack(&self, ids: &[String]) -> Result<usize, Error> {
        for id in ids {
            validate_notification_id(id)?;
        }
        let mut pending = lock(&self.pending);
        let mut removed = 0;
        for id in ids {
            if pending.remove(id) {
                removed += 1;
                let name = Self::file_name(id);
                // (No file, or not even its folder: one never saved.)
                match self.dir.remove_file(&name) {
                    Err(e)
                        if !matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                        ) =>
                    {
                        let path = self.dir.path().join(&name);
                        return Err(Error::io("removing an acknowledged notification", path, e));
                    }
                    _ => {}
                }
            }
        }
        Ok(removed)
    }
}

impl NotificationKind {
    /// Every kind, in declaration order.
    pub const ALL: [NotificationKind; 8] = [
        NotificationKind::Finished,
        NotificationKind::Lost,
        NotificationKind::Orphaned,
        NotificationKind::WatchMatch,
        NotificationKind::WatchStopped,
        NotificationKind::Progress,
        NotificationKind::Stalled,
        NotificationKind::TurnEnded,
    ];

    /// The kind's wire name, e.g. `watch_match`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Finished => "finished",
            NotificationKind::Lost => "lost",
            NotificationKind::Orphaned => "orphaned",
            NotificationKind::WatchMatch => "watch_match",
            NotificationKind::WatchStopped => "watch_stopped",
            NotificationKind::Progress => "progress",
            NotificationKind::Stalled => "stalled",
            NotificationKind::TurnEnded => "turn_ended",
        }
    }
}

impl std::fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for NotificationKind {
    type Err = crate::Error;

    /// A kind from its wire name; anything else is an `InvalidArgument`
    /// naming `kind` and listing the names.
    fn from_str(s: &str) -> crate::Result<Self> {
        crate::names::by_name("kind", s, &NotificationKind::ALL, NotificationKind::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_end() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let tail = last_lines(&text, 20, 3000);
        assert!(tail.starts_with("line 11\n"));
        assert!(tail.ends_with("line 30"));
        assert_eq!(last_lines("a\nb\n", 20, 3000), "a\nb");
        assert_eq!(last_lines("single", 20, 3000), "single");
        assert_eq!(last_lines(&"x".repeat(5000), 20, 3000).len(), 3000);
        assert_eq!(last_lines("", 20, 3000), "");
    }

    fn note(task: &str) -> Notification {
        serde_json::from_value(serde_json::json!({
            "id": format!("process-{task}.end"), "kind": "finished",
            "task_id": format!("process-{task}"), "owner": "o", "task_kind": "process",
            "description": "true", "status": "completed", "duration_ms": 1,
            "output_tail": "", "created_at_ms": 1, "text": "done",
        }))
        .expect("a notification")
    }

    #[test]
    fn unsaved_notifications_are_saved_later_unless_acknowledged() {
        let dir = tempfile::tempdir().expect("tempdir");
        // `notifications` is a file: no notification can be saved.
        std::fs::write(dir.path().join("notifications"), "").expect("write");
        let (queue, problems) = NotificationQueue::open(&RootDir::open(dir.path()).expect("root"));
        assert!(problems.is_empty());
        assert!(queue.push(note("aaaa")).is_err());
        assert!(queue.push(note("bbbb")).is_err());
        assert_eq!(queue.pending(None).len(), 2, "kept in memory");
        assert_eq!(
            queue.ack(&["process-aaaa.end".to_string()]).expect("ack"),
            1
        );
        assert!(!queue.save_unsaved(), "the disk still refuses");
        // Room again: the one still pending is saved, the acknowledged one not.
        std::fs::remove_file(dir.path().join("notifications")).expect("rm");
        assert!(queue.save_unsaved());
        let saved = dir.path().join("notifications");
        assert!(saved.join("process-bbbb.end.json").exists());
        assert!(!saved.join("process-aaaa.end.json").exists());
        let (reopened, _) = NotificationQueue::open(&RootDir::open(dir.path()).expect("root"));
        let ids: Vec<_> = reopened.pending(None).into_iter().map(|n| n.id).collect();
        assert_eq!(ids, ["process-bbbb.end"]);
    }

    #[test]
    fn notification_ids_are_checked() {
        assert!(validate_notification_id("process-abcd1234.end").is_ok());
        for bad in [
            "",
            "x",
            "../x.end",
            "process-abcd1234.",
            "process-abcd1234.E",
            "a/b.end",
        ] {
            assert!(validate_notification_id(bad).is_err(), "{bad}");
        }
    }
}
