//! Read-only access to a task root from outside its host: what a person's
//! inspection tool (the `agent-tasks` command) needs while a host holds the
//! root. A [`RootReader`] never takes the root lock and never writes: it reads
//! the task folders (`<root>/tasks/<id>/manifest.json`, `output.log`,
//! `events.jsonl`, `result.json`, `files.json`), the records of running
//! foreground processes (the journal in `<root>/foreground/`) and the pending
//! notifications (`<root>/notifications/<id>.json`), with the core's own
//! types. Unreadable (torn, corrupt) files are reported as [`RootProblem`]s,
//! never fatal to a listing.
//!
//! Whether a host holds the root is read without taking the lock
//! ([`RootReader::holder`], from `/proc/locks`); with no host, a task saved
//! as running is shown as a reopening host would show it
//! ([`TaskRecord::as_reopened`]: `lost`, its run time frozen at the host's
//! last record of it).
//!
//! The one thing here that acts is [`kill_task_processes`]: it stops a task's
//! processes with signals only (SIGTERM, a grace, SIGKILL), after checking
//! that the task's pid still names the process it started (same process
//! start time), so a reused pid is never hit. The owning host then sees its
//! task end and records it as usual. Before it signals a task of a live
//! host, the command leaves a [`KillRequest`] in the task's folder (its one
//! write, atomic), so the host records the end as `cancelled`, saying who
//! stopped it, rather than as a process that failed of a signal.
//!
//! ```no_run
//! use agent_tasks::inspect::RootReader;
//! let root = RootReader::open("/var/lib/my-agent/tasks")?;
//! let (tasks, problems) = root.tasks();
//! for record in &tasks {
//!     println!("{} {}", record.info.id, record.info.status);
//! }
//! for problem in &problems {
//!     eprintln!("unreadable: {}", problem.message);
//! }
//! # Ok::<(), agent_tasks::inspect::InspectError>(())
//! ```

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use serde::{Deserialize, Serialize};

use crate::changes::ChangedFiles;
use crate::events::Event;
use crate::id::TaskId;
use crate::info::{CancelReason, TaskInfo, TaskResult, TaskStatus};
use crate::manifest::Manifest;
use crate::notifications::Notification;
use crate::process::{kill_group, process_start_time, signal_task};

/// What went wrong reading a root or acting on a task in it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The root folder does not exist (or is not a folder).
    #[error("no such root: {} does not exist or is not a folder", path.display())]
    NoSuchRoot {
        /// The path given.
        path: PathBuf,
    },
    /// The folder exists but holds none of a task root's folders.
    #[error("not a task root: {} has no tasks/, foreground/ or notifications/ folder", path.display())]
    NotATaskRoot {
        /// The path given.
        path: PathBuf,
    },
    /// The id is not a task id (refused before it is used as a path).
    #[error("invalid task id `{id}`")]
    InvalidTaskId {
        /// The id given (shortened).
        id: String,
    },
    /// No task with this id is stored in the root.
    #[error("no such task: `{id}` is not in {}", root.display())]
    NoSuchTask {
        /// The id asked for.
        id: String,
        /// The root searched.
        root: PathBuf,
    },
    /// A file of the task could not be read or parsed (a torn manifest).
    #[error("{}: {message}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The task has no process to stop (a function task, or it never started one).
    #[error("task `{id}` has no process")]
    NoProcess {
        /// The task's id.
        id: String,
    },
    /// The task's pid is now another process (or its start time was never
    /// saved): nothing is signalled.
    #[error("task `{id}`: pid {pid} is not the task's process any more (start time {found:?}, the task's {expected:?}); nothing was signalled")]
    StartTimeMismatch {
        /// The task's id.
        id: String,
        /// Its pid.
        pid: u32,
        /// The start time saved with the task.
        expected: Option<u64>,
        /// The start time of the process that has the pid now.
        found: Option<u64>,
    },
}

/// A file or folder under the root that could not be read; skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootProblem {
    /// The file.
    pub path: PathBuf,
    /// The task it belongs to, when the path says so.
    pub task_id: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

/// Where a task's record was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordSource {
    /// Its folder, `<root>/tasks/<id>/manifest.json`.
    Folder,
    /// The small record of a running foreground process that has no folder,
    /// a line of the journal in `<root>/foreground/`: its output is in the host's memory.
    ForegroundRecord,
}

/// One task as stored in a root.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRecord {
    /// The info as last saved by the host (counts of a running task's
    /// output are those of the last save).
    pub info: TaskInfo,
    /// Start time of the task's process (clock ticks since boot, field 22
    /// of `/proc/<pid>/stat`), as saved with the task.
    pub process_start_time: Option<u64>,
    /// Where the record came from.
    pub source: RecordSource,
    /// The task's folder (it may not exist for a foreground record).
    pub dir: PathBuf,
    /// Run by a supervisor process of its own
    /// ([`OnHostExit::KeepRunning`](crate::OnHostExit::KeepRunning)): it
    /// runs on with no host, and its exit record says how it ended.
    pub supervised: bool,
}

impl TaskRecord {
    /// Path of the task's `output.log` (it exists once the output spilled).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("output.log")
    }

    /// True if the task's process (its pid with the saved start time) is
    /// alive now. False for a task without a process.
    pub fn process_alive(&self) -> bool {
        process_matches(
            self.info.orphan_pid.or(self.info.pid),
            self.process_start_time,
        )
    }
}

/// The error text of a task that was running when its host died (what a
/// reopening host records).
pub const LOST_ERROR: &str = "the host stopped while the task ran; its end is unknown";
/// The error text of a task that was running when the machine restarted
/// (its boot id changed): its end is unknown, and no process of it can run.
pub const REBOOTED_ERROR: &str =
    "the machine restarted while the task ran (its boot id changed); its end is unknown";
/// The error text of a task that was queued when its host died: it never
/// ran.
pub const NEVER_STARTED_ERROR: &str = "the host stopped before the task started";

impl TaskRecord {
    /// The task as a host that reopened the root now would show it, for a
    /// root no host holds (see [`RootReader::holder`]). A task saved as
    /// ended is unchanged. One saved as running is `lost` with its end
    /// unknown (its pid in `orphan_pid` while that process still runs, as
    /// the reopening host reports it orphaned), and its run time is frozen
    /// at the host's last record of it: the later of the saved run time and
    /// the last change to the task's files (manifest, log, events), so it
    /// no longer grows with the clock. One saved as queued never ran: it is
    /// `cancelled`, with no run time.
    pub fn as_reopened(&self) -> TaskInfo {
        let mut info = self.info.clone();
        if info.status.is_terminal() {
            return info;
        }
        // (A start time saved in another boot reads as none: after a
        // reboot no supervisor of before runs, and the task is lost.)
        let rebooted = info.pid.is_some() && self.process_start_time.is_none();
        if self.supervised && !rebooted {
            if let Some(shown) = self.as_supervised() {
                return shown;
            }
        }
        if info.status == TaskStatus::Queued {
            info.status = TaskStatus::Cancelled;
            info.error = Some(NEVER_STARTED_ERROR.to_string());
            info.duration_ms = 0;
            info.finished_at_ms = Some(info.created_at_ms);
            return info;
        }
        if self.process_alive() {
            info.orphan_pid = info.orphan_pid.or(info.pid);
        }
        info.duration_ms = lost_run_time_ms(&info, &self.dir);
        info.finished_at_ms = Some(info.created_at_ms.saturating_add(info.duration_ms));
        info.status = TaskStatus::Lost;
        info.error = Some(LOST_ERROR.to_string());
        info
    }
}

impl TaskRecord {
    /// A supervised task with no host: running while its supervisor lives,
    /// else as its exit record says (or `failed` if its supervisor died
    /// without one). `None` if its folder cannot be read.
    fn as_supervised(&self) -> Option<TaskInfo> {
        let (parent, name) = (self.dir.parent()?, self.dir.file_name()?);
        let folder = crate::root_dir::RootDir::open(parent)
            .ok()?
            .folder(PathBuf::from(name));
        let mut info = self.info.clone();
        let ended = match crate::supervisor::ExitRecord::read(&folder) {
            Some(Ok(record)) => record.result(&info),
            _ if crate::supervisor::supervisor_lives(&folder) => return Some(info),
            _ => TaskResult {
                id: info.id.clone(),
                status: TaskStatus::Failed,
                exit: None,
                value: None,
                error: Some(crate::supervisor::SUPERVISOR_DIED.to_string()),
                cancel_reason: None,
                duration_ms: lost_run_time_ms(&info, &self.dir),
                output: info.output.clone(),
                changed_files: None,
                usage: None,
            },
        };
        info.status = ended.status;
        info.exit = ended.exit;
        info.error = ended.error;
        info.cancel_reason = ended.cancel_reason;
        info.duration_ms = ended.duration_ms;
        info.output = ended.output;
        info.finished_at_ms = Some(info.created_at_ms.saturating_add(info.duration_ms));
        Some(info)
    }
}

/// The run time of a task whose host died while it ran (`info` as last
/// saved, `task_dir` its folder): up to the host's last record of it, the
/// later of the saved run time and the last change to the task's files
/// (manifest, log, events). The one rule for a reopening host and for a
/// reader of a root no host holds.
pub(crate) fn lost_run_time_ms(info: &TaskInfo, task_dir: &Path) -> u64 {
    let last_record_ms = ["manifest.json", "output.log", "events.jsonl"]
        .iter()
        .filter_map(|name| modified_ms(&task_dir.join(name)))
        .max();
    let ran_until = last_record_ms.map_or(0, |at| at.saturating_sub(info.created_at_ms));
    info.duration_ms.max(ran_until)
}

/// A file's modification time in ms since the epoch, if it exists.
fn modified_ms(path: &Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

fn process_matches(pid: Option<u32>, start: Option<u64>) -> bool {
    match (pid, start) {
        (Some(pid), Some(start)) => process_start_time(pid) == Some(start),
        _ => false,
    }
}

/// Bytes read from a task's `output.log` as stored (a capped log holds its
/// head, the `[... N bytes omitted ...]` marker line, then its tail).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogChunk {
    /// The bytes read.
    pub data: Vec<u8>,
    /// File offset of the first byte.
    pub offset: u64,
    /// Where to read next.
    pub next_offset: u64,
    /// The file's length when read (0 if it does not exist yet).
    pub file_len: u64,
}

/// Events read from a task's `events.jsonl` from a file offset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventsChunk {
    /// The complete, readable events.
    pub events: Vec<Event>,
    /// Lines that could not be parsed.
    pub problems: Vec<RootProblem>,
    /// File offset after the last complete line (a line being written is
    /// left for the next read).
    pub next_offset: u64,
}

/// What [`kill_task_processes`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillOutcome {
    /// Its processes ended after SIGTERM, within the grace.
    Terminated,
    /// Something was still alive after the grace and got SIGKILL.
    Killed,
    /// Its process is not running (it ended already); nothing was signalled.
    NotRunning,
}

/// Whether a host holds a root now (see [`RootReader::holder`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootHolder {
    /// A host has the root open: it holds the root's lock. `pid` is the
    /// holder's process as `/proc/locks` names it (none when it is not
    /// visible from here).
    Host {
        /// The holding process.
        pid: Option<u32>,
    },
    /// No host holds the root: what it saved as running ended with its host
    /// (see [`TaskRecord::as_reopened`]).
    Free,
}

impl RootHolder {
    /// True while a host holds the root.
    pub fn is_held(&self) -> bool {
        matches!(self, RootHolder::Host { .. })
    }
}

/// Read-only view of a task root. Cheap to make; every call reads the files
/// anew, so it sees what the host saved since.
#[derive(Clone, Debug)]
pub struct RootReader {
    root: PathBuf,
}

const TASK_ROOT_DIRS: [&str; 3] = ["tasks", "foreground", "notifications"];

impl RootReader {
    /// A reader of `root`: fails if the folder does not exist, or is neither
    /// empty nor holding any of a root's folders (`tasks/`, `foreground/`,
    /// `notifications/`).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, InspectError> {
        let root = root.into();
        if !root.is_dir() {
            return Err(InspectError::NoSuchRoot { path: root });
        }
        let has_root_dir = TASK_ROOT_DIRS.iter().any(|d| root.join(d).is_dir());
        let empty = std::fs::read_dir(&root)
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false);
        if !has_root_dir && !empty {
            return Err(InspectError::NotATaskRoot { path: root });
        }
        Ok(RootReader { root })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a host holds the root now: a manager holds an exclusive
    /// `flock` on the root folder while it has the root open (also after a
    /// crash of its host, the kernel drops it). Read from `/proc/locks`,
    /// so the test neither takes the lock nor writes: a host opening the
    /// root at the same instant is never refused because of it. Where
    /// `/proc/locks` cannot be read, a non-blocking shared lock on a
    /// separate open of the folder is tried and given back at once.
    pub fn holder(&self) -> Result<RootHolder, InspectError> {
        use std::os::unix::fs::MetadataExt;
        let unreadable = |e: std::io::Error| InspectError::Unreadable {
            path: self.root.clone(),
            message: e.to_string(),
        };
        let meta = std::fs::metadata(&self.root).map_err(unreadable)?;
        // `/proc/locks` names the holder without touching the lock. It is
        // read in pieces, though, and the kernel lists it by position: a
        // lock that goes away between two pieces shifts the rest, and the
        // next piece can skip an entry (the host's). So a holder it lists
        // is one, and "not listed" is confirmed by trying the lock (a
        // host's `open` allows for such a try, see `store::RootLock`).
        if let Ok(locks) = std::fs::read_to_string("/proc/locks") {
            let (major, minor) = (
                nix::sys::stat::major(meta.dev()),
                nix::sys::stat::minor(meta.dev()),
            );
            let listed = flock_holder(&locks, major, minor, meta.ino());
            if listed.is_held() {
                return Ok(listed);
            }
        }
        let dir = std::fs::File::open(&self.root).map_err(unreadable)?;
        match nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockSharedNonblock) {
            // Given back at once (the lock is dropped with its descriptor).
            Ok(lock) => {
                drop(lock);
                Ok(RootHolder::Free)
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(RootHolder::Host { pid: None }),
            Err((_, errno)) => Err(unreadable(std::io::Error::from(errno))),
        }
    }

    fn tasks_dir(&self) -> PathBuf {
        self.root.join("tasks")
    }

    fn parse_id(id: &str) -> Result<TaskId, InspectError> {
        TaskId::parse(id).map_err(|_| InspectError::InvalidTaskId {
            id: id.chars().take(80).collect(),
        })
    }

    /// Every task of the root, oldest first: the task folders, then the
    /// records of running foreground processes without a folder. Unreadable
    /// manifests and records are listed as problems.
    pub fn tasks(&self) -> (Vec<TaskRecord>, Vec<RootProblem>) {
        let mut records = Vec::new();
        let mut problems = Vec::new();
        let mut seen = std::collections::HashSet::new();
        match std::fs::read_dir(self.tasks_dir()) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let Ok(id) = TaskId::parse(&name) else {
                        continue; // not a task folder of ours
                    };
                    let path = entry.path().join("manifest.json");
                    if !path.exists() {
                        continue; // a folder being made
                    }
                    match read_manifest(&path, &id) {
                        Ok(m) => {
                            seen.insert(id.clone());
                            records.push(TaskRecord {
                                supervised: m.supervised,
                                process_start_time: m.start_time_this_boot(),
                                info: m.info,
                                source: RecordSource::Folder,
                                dir: entry.path(),
                            });
                        }
                        Err(message) => problems.push(RootProblem {
                            path,
                            task_id: Some(name),
                            message,
                        }),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => problems.push(RootProblem {
                path: self.tasks_dir(),
                task_id: None,
                message: e.to_string(),
            }),
        }
        let journal = crate::journal::read_journal(&self.root.join("foreground"));
        for manifest in journal.live {
            if seen.contains(&manifest.info.id) {
                continue; // a stale record: the folder is the truth
            }
            records.push(TaskRecord {
                supervised: false,
                process_start_time: manifest.start_time_this_boot(),
                dir: self.tasks_dir().join(manifest.info.id.as_str()),
                info: manifest.info,
                source: RecordSource::ForegroundRecord,
            });
        }
        for (path, message) in journal.problems {
            problems.push(RootProblem {
                path,
                task_id: None,
                message,
            });
        }
        records.sort_by(|a, b| {
            (a.info.created_at_ms, a.info.id.as_str())
                .cmp(&(b.info.created_at_ms, b.info.id.as_str()))
        });
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        (records, problems)
    }

    /// One task: its folder's manifest, else its foreground record.
    pub fn task(&self, id: &str) -> Result<TaskRecord, InspectError> {
        let task_id = Self::parse_id(id)?;
        let dir = self.tasks_dir().join(task_id.as_str());
        let manifest = dir.join("manifest.json");
        if manifest.exists() {
            let m =
                read_manifest(&manifest, &task_id).map_err(|message| InspectError::Unreadable {
                    path: manifest.clone(),
                    message,
                })?;
            return Ok(TaskRecord {
                supervised: m.supervised,
                process_start_time: m.start_time_this_boot(),
                info: m.info,
                source: RecordSource::Folder,
                dir,
            });
        }
        let journal = crate::journal::read_journal(&self.root.join("foreground"));
        if let Some(m) = journal.live.into_iter().find(|m| m.info.id == task_id) {
            return Ok(TaskRecord {
                supervised: false,
                process_start_time: m.start_time_this_boot(),
                info: m.info,
                source: RecordSource::ForegroundRecord,
                dir,
            });
        }
        Err(InspectError::NoSuchTask {
            id: id.to_string(),
            root: self.root.clone(),
        })
    }

    /// The task's `result.json`, once it ended (`None` before).
    pub fn result(&self, id: &str) -> Result<Option<TaskResult>, InspectError> {
        self.task_json(id, "result.json")
    }

    /// The task's changed-files report, `files.json` (`None` if changes
    /// were not tracked or it has not ended).
    pub fn changed_files(&self, id: &str) -> Result<Option<ChangedFiles>, InspectError> {
        self.task_json(id, "files.json")
    }

    fn task_json<T: serde::de::DeserializeOwned>(
        &self,
        id: &str,
        name: &str,
    ) -> Result<Option<T>, InspectError> {
        let task_id = Self::parse_id(id)?;
        let path = self.tasks_dir().join(task_id.as_str()).join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| InspectError::Unreadable {
                        path,
                        message: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(InspectError::Unreadable {
                path,
                message: e.to_string(),
            }),
        }
    }

    /// Reads up to `max_bytes` of the task's `output.log` from file offset
    /// `offset`, as stored. An absent log reads as empty.
    pub fn read_log(
        &self,
        id: &str,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, InspectError> {
        let task_id = Self::parse_id(id)?;
        let path = self.tasks_dir().join(task_id.as_str()).join("output.log");
        let unreadable = |e: std::io::Error| InspectError::Unreadable {
            path: path.clone(),
            message: e.to_string(),
        };
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LogChunk {
                    offset,
                    next_offset: offset,
                    ..LogChunk::default()
                })
            }
            Err(e) => return Err(unreadable(e)),
        };
        let file_len = file.metadata().map_err(unreadable)?.len();
        let mut data = Vec::new();
        if offset < file_len {
            file.seek(SeekFrom::Start(offset)).map_err(unreadable)?;
            let want = (file_len - offset).min(max_bytes as u64);
            file.take(want).read_to_end(&mut data).map_err(unreadable)?;
        }
        Ok(LogChunk {
            offset,
            next_offset: offset + data.len() as u64,
            data,
            file_len,
        })
    }

    /// The task's events from file offset `offset` of its `events.jsonl`
    /// (0 for all of them).
    pub fn events(&self, id: &str, offset: u64) -> Result<EventsChunk, InspectError> {
        let task_id = Self::parse_id(id)?;
        let path = self.tasks_dir().join(task_id.as_str()).join("events.jsonl");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(EventsChunk {
                    next_offset: offset,
                    ..EventsChunk::default()
                })
            }
            Err(e) => {
                return Err(InspectError::Unreadable {
                    path,
                    message: e.to_string(),
                })
            }
        };
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let rest = &bytes[start..];
        // Only complete lines: the last one may be half written.
        let complete = rest.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut chunk = EventsChunk {
            next_offset: (start + complete) as u64,
            ..EventsChunk::default()
        };
        for line in rest[..complete].split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Event>(line) {
                Ok(event) => chunk.events.push(event),
                Err(e) => chunk.problems.push(RootProblem {
                    path: path.clone(),
                    task_id: Some(task_id.to_string()),
                    message: format!("an unreadable event line: {e}"),
                }),
            }
        }
        Ok(chunk)
    }

    /// The pending (unacknowledged) notifications, oldest first, of `owner`
    /// or of everyone.
    pub fn notifications(&self, owner: Option<&str>) -> (Vec<Notification>, Vec<RootProblem>) {
        let mut found = Vec::new();
        let mut problems = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.root.join("notifications")) else {
            return (found, problems);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") || name.starts_with('.') {
                continue; // not a notification (a temp file being written)
            }
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<Notification>(&b).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(n) if owner.is_none_or(|o| o == n.owner) => found.push(n),
                Ok(_) => {}
                // Acknowledged (removed) while being read.
                Err(_) if !path.exists() => {}
                Err(message) => problems.push(RootProblem {
                    path,
                    task_id: None,
                    message,
                }),
            }
        }
        found.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        (found, problems)
    }
}

/// The holder of an `flock` on the inode `major:minor:ino`, from the text
/// of `/proc/locks` (`1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`;
/// the device's numbers in hex; a `->` line is a waiter, not a holder).
fn flock_holder(locks: &str, major: u64, minor: u64, ino: u64) -> RootHolder {
    let wanted = format!("{major:02x}:{minor:02x}:{ino}");
    for line in locks.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") || fields.get(5) != Some(&wanted.as_str()) {
            continue;
        }
        let pid = fields
            .get(4)
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| *p > 0);
        return RootHolder::Host { pid };
    }
    RootHolder::Free
}

/// The name of the file a [`KillRequest`] is saved as, in the task's folder.
pub const KILL_REQUEST_FILE: &str = "kill-request.json";

/// What a stop from outside the host (`agent-tasks kill`) leaves in the
/// task's folder before it signals the task: the host, seeing its task die,
/// reads it and records the end as `cancelled` with [`KillRequest::reason`]
/// (a task that completed meanwhile keeps its own status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillRequest {
    /// What stopped it (`agent-tasks kill`).
    pub by: String,
    /// The pid of the process that asked.
    pub pid: u32,
    /// The user it ran as (a name where the environment gives one, else
    /// the uid).
    pub user: String,
    /// The task's process it was meant for: a request left for an earlier
    /// process of the same id is not taken for this one.
    pub task_pid: u32,
    /// When it was asked, in ms since the epoch.
    pub at_ms: u64,
}

impl KillRequest {
    /// A request from this process (its pid and user), by `by`, for the
    /// task's process `task_pid`.
    pub fn from_this_process(by: impl Into<String>, task_pid: u32) -> Self {
        let uid = rustix::process::getuid().as_raw();
        let user = ["USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| format!("uid {uid}"));
        KillRequest {
            by: by.into(),
            pid: std::process::id(),
            user,
            task_pid,
            at_ms: crate::util::now_ms(),
        }
    }

    /// The reason the host records: kind `external`, message
    /// "agent-tasks kill (pid N, user U)".
    pub fn reason(&self) -> CancelReason {
        CancelReason {
            kind: crate::info::CancelKind::External,
            message: Some(format!(
                "{} (pid {}, user {})",
                self.by, self.pid, self.user
            )),
        }
    }

    /// Saves the request in the task's folder (`record.dir`), atomically
    /// (a temporary file renamed over it). The folder is made for a task
    /// that has none (a foreground process known only by its record); its
    /// host removes the request, and such a folder, once it has read it.
    pub fn save(&self, record: &TaskRecord) -> Result<(), InspectError> {
        let path = record.dir.join(KILL_REQUEST_FILE);
        let failed = |e: std::io::Error| InspectError::Unreadable {
            path: path.clone(),
            message: format!("saving the kill request: {e}"),
        };
        crate::util::create_private_dir(&record.dir).map_err(failed)?;
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other);
        crate::root_dir::RootDir::open(&record.dir)
            .and_then(|dir| dir.folder("").write_atomic(KILL_REQUEST_FILE, &json?))
            .map_err(failed)
    }
}

/// For the host, when its task's process `task_pid` ended without success:
/// the reason of a [`KillRequest`] left for that process in `task_dir`, if
/// any. The request is removed once read (with the folder, if the request
/// was all it held).
/// Read through the host's locked root (`task_dir` is reached from its
/// descriptor), as all its I/O.
pub(crate) fn take_kill_request(
    task_dir: &crate::root_dir::Folder,
    task_pid: u32,
) -> Option<CancelReason> {
    let bytes = task_dir.read(KILL_REQUEST_FILE).ok()?;
    let _ = task_dir.remove_file(KILL_REQUEST_FILE);
    // The folder goes too when the request was all it held (a foreground
    // task's, made by the command); with the task's own files it stays.
    if task_dir.entries().is_ok_and(|entries| entries.is_empty()) {
        let _ = task_dir.remove_all();
    }
    let request: KillRequest = serde_json::from_slice(&bytes).ok()?;
    (request.task_pid == task_pid).then(|| request.reason())
}

fn read_manifest(path: &Path, id: &TaskId) -> Result<Manifest, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if &manifest.info.id != id {
        return Err("the id does not match its folder".to_string());
    }
    Ok(manifest)
}

/// How often the end of the grace is checked.
const KILL_POLL: Duration = Duration::from_millis(20);

/// Stops a task's processes from outside its host: checks that its pid
/// (`info.orphan_pid`, else `info.pid`) still has `start_time` (field 22 of
/// `/proc/<pid>/stat`, as saved with the task) and refuses otherwise; then
/// sends SIGTERM to its process group and to every process carrying its
/// marker variable (`AGENT_TASKS_TASK=<id>`), waits up to `grace` for them
/// to end, and sends SIGKILL to what is left (the group, the marked
/// processes, and the task's cgroup when it has one). Blocks for at most
/// `grace` plus a bounded kill.
///
/// Only signals: the host that runs the task sees it end and records it.
/// There is a small window between the start-time check and the signal in
/// which the process could end and its pid be reused; the check makes it
/// harmless in practice (pids are not reused that fast).
pub fn kill_task_processes(
    info: &TaskInfo,
    start_time: Option<u64>,
    grace: Duration,
) -> Result<KillOutcome, InspectError> {
    let id = info.id.to_string();
    let Some(pid) = info.orphan_pid.or(info.pid) else {
        return Err(InspectError::NoProcess { id });
    };
    let found = process_start_time(pid);
    if found.is_none() {
        // It ended already: its host's containment cleans up after it. A
        // process group without its leader is not signalled, since its id
        // may be reused once empty.
        return Ok(KillOutcome::NotRunning);
    }
    if start_time.is_none() || found != start_time {
        return Err(InspectError::StartTimeMismatch {
            id,
            pid,
            expected: start_time,
            found,
        });
    }
    signal_task(&id, pid, Some(Signal::SIGTERM));
    let deadline = Instant::now().checked_add(grace);
    loop {
        let root_alive = process_start_time(pid) == start_time;
        if !root_alive && !signal_task(&id, pid, None) {
            return Ok(KillOutcome::Terminated);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        std::thread::sleep(KILL_POLL);
    }
    if process_start_time(pid) == start_time {
        kill_group(pid);
    }
    signal_task(&id, pid, Some(Signal::SIGKILL));
    Ok(KillOutcome::Killed)
}

#[cfg(test)]
mod tests {
    use super::{flock_holder, RootHolder};

    const LOCKS: &str = "\
1: POSIX  ADVISORY  WRITE 812 00:19:4242 0 EOF
2: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF
2: -> FLOCK  ADVISORY  WRITE 999 08:01:777 0 EOF
3: OFDLCK ADVISORY  READ  -1 fd:00:5678 0 EOF
4: FLOCK  ADVISORY  WRITE 4321 fd:0a:5678 0 EOF
";

    #[test]
    fn the_holder_of_a_root_is_found_by_device_and_inode() {
        assert_eq!(
            flock_holder(LOCKS, 8, 1, 5678),
            RootHolder::Host { pid: Some(1234) }
        );
        // Hex device numbers; the same inode on another device is another file.
        assert_eq!(
            flock_holder(LOCKS, 0xfd, 0x0a, 5678),
            RootHolder::Host { pid: Some(4321) }
        );
        assert_eq!(flock_holder(LOCKS, 0xfd, 0, 5678), RootHolder::Free);
        // A POSIX lock is not a manager's, and a waiter (`->`) holds nothing.
        assert_eq!(flock_holder(LOCKS, 0, 0x19, 4242), RootHolder::Free);
        assert_eq!(flock_holder(LOCKS, 8, 1, 777), RootHolder::Free);
        assert_eq!(flock_holder("", 8, 1, 5678), RootHolder::Free);
    }
}
