//! The task folder on disk: `<root>/tasks/<id>/` with `manifest.json` (the
//! saved TaskInfo, rewritten atomically: temp file, fsync, rename),
//! `events.jsonl` (append-only), `result.json` and `files.json`; the small
//! journal of running foreground processes ([`crate::journal`]); and the
//! lock on the root. Folders are 0700, files 0600. Every file is reached
//! through the locked root's descriptor ([`crate::root_dir`]), never by
//! path. This module only reads and writes; what is saved when is the
//! lifecycle's business.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::events::Event;
use crate::id::TaskId;
use crate::info::TaskResult;
use crate::journal::ForegroundJournal;
use crate::manifest::Manifest;
use crate::root_dir::{Folder, RootDir};

/// A task folder found by [`TaskStore::load_all`].
pub(crate) struct LoadedTask {
    pub manifest: Manifest,
    pub result: Option<TaskResult>,
}

/// Reads and writes task folders under `<root>/tasks`.
#[derive(Debug)]
pub(crate) struct TaskStore {
    root: RootDir,
    foreground: ForegroundJournal,
}

/// An exclusive lock on a root folder, held while a manager has it open.
/// The lock is on the root folder itself (an `flock` on its descriptor), not
/// on a file inside it, so it cannot be defeated by unlinking or replacing a
/// lock file. The OS drops it when the process dies, even by SIGKILL, so a
/// crashed host never blocks the next one.
pub(crate) struct RootLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// How often, and how far apart, a refused root lock is tried again: an
/// outside reader's probe holds the lock for two system calls, a host for
/// its life (10 tries over 20 ms).
const PROBE_TRIES: u32 = 10;
const PROBE_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

impl RootLock {
    /// Locks the folder at `root`, and returns the lock with the folder
    /// opened anew from the locked descriptor (its own open file
    /// description, so dropping the lock releases the root even while the
    /// folder stays open): all root I/O goes through that one.
    pub(crate) fn acquire(root: &Path) -> Result<(RootLock, RootDir), crate::Error> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
            .open(root)
            .map_err(|e| crate::Error::io("opening the root folder", root, e))?;
        // A reader of the root from outside (`agent-tasks status`) may hold
        // a shared lock for an instant to see whether a host holds it; a
        // host holds it for its life. So a refusal is tried again for a
        // moment before it is taken for another host's.
        let mut dir = dir;
        let mut tries = 0;
        let lock = loop {
            match nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(lock) => break lock,
                Err((back, nix::errno::Errno::EWOULDBLOCK)) if tries < PROBE_TRIES => {
                    dir = back;
                    tries += 1;
                    std::thread::sleep(PROBE_PAUSE);
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(crate::Error::RootInUse {
                        path: root.to_path_buf(),
                    })
                }
                Err((_, errno)) => {
                    return Err(crate::Error::io(
                        "locking the root folder",
                        root,
                        std::io::Error::from(errno),
                    ))
                }
            }
        };
        let opened = RootDir::reopen(&*lock, root)
            .map_err(|e| crate::Error::io("opening the root folder", root, e))?;
        Ok((RootLock { _lock: lock }, opened))
    }
}

impl TaskStore {
    pub(crate) fn new(root: &RootDir) -> Self {
        TaskStore {
            root: root.clone(),
            foreground: ForegroundJournal::new(root.folder("foreground")),
        }
    }

    /// The folder of task `id` (made when something is written to it).
    pub(crate) fn folder(&self, id: &TaskId) -> Folder {
        // `id` passed TaskId's grammar, so it is one plain path component.
        self.root.folder(Path::new("tasks").join(id.as_str()))
    }

    /// The path of task `id`'s folder, for messages.
    pub(crate) fn task_dir(&self, id: &TaskId) -> PathBuf {
        self.folder(id).path()
    }

    pub(crate) fn write_manifest(&self, manifest: &Manifest) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
        self.folder(&manifest.info.id)
            .write_atomic("manifest.json", &json)
    }

    pub(crate) fn write_result(&self, result: &TaskResult) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(result).map_err(std::io::Error::other)?;
        self.folder(&result.id).write_atomic("result.json", &json)
    }

    pub(crate) fn write_json(
        &self,
        id: &TaskId,
        name: &str,
        value: &impl Serialize,
    ) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        self.folder(id).write_atomic(name, &json)
    }

    pub(crate) fn append_events(&self, id: &TaskId, events: &[Event]) -> std::io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for event in events {
            serde_json::to_writer(&mut lines, event).map_err(std::io::Error::other)?;
            lines.push(b'\n');
        }
        // All or nothing (`Folder::append`): a full disk leaves no torn line.
        self.folder(id).append("events.jsonl", &lines)
    }

    /// Every readable task folder, and a description of each one that could
    /// not be read (torn or corrupt manifest), which is skipped.
    pub(crate) fn load_all(&self) -> (Vec<LoadedTask>, Vec<String>) {
        let mut loaded = Vec::new();
        let mut problems = Vec::new();
        let tasks = self.root.folder("tasks");
        let entries = match tasks.entries() {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (loaded, problems),
            Err(e) => {
                problems.push(format!("reading {}: {e}", tasks.path().display()));
                return (loaded, problems);
            }
        };
        for (name, _) in entries {
            let Ok(id) = TaskId::parse(&name) else {
                continue; // not a task folder of ours
            };
            let folder = self.folder(&id);
            let manifest_path = || folder.path().join("manifest.json");
            let manifest = match folder.read("manifest.json") {
                Ok(bytes) => match serde_json::from_slice::<Manifest>(&bytes) {
                    Ok(m) if m.info.id.as_str() == name => m,
                    Ok(_) => {
                        problems.push(format!(
                            "{}: the id does not match its folder",
                            manifest_path().display()
                        ));
                        continue;
                    }
                    Err(e) => {
                        problems.push(format!("{}: {e}", manifest_path().display()));
                        continue;
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    problems.push(format!("{}: {e}", manifest_path().display()));
                    continue;
                }
            };
            let result = folder
                .read("result.json")
                .ok()
                .and_then(|bytes| serde_json::from_slice::<TaskResult>(&bytes).ok());
            loaded.push(LoadedTask { manifest, result });
        }
        (loaded, problems)
    }

    /// Records a running foreground process (see [`crate::journal`]).
    pub(crate) fn write_foreground_record(&self, manifest: &Manifest) -> std::io::Result<()> {
        self.foreground.record_start(manifest)
    }

    /// Ends a foreground process's record (none is fine).
    pub(crate) fn remove_foreground_record(&self, id: &TaskId) -> std::io::Result<()> {
        self.foreground.record_end(id)
    }

    /// The records of foreground processes that were running when an
    /// earlier host stopped, for tasks that have no folder. Records of
    /// tasks that do have one are stale and ended.
    pub(crate) fn load_foreground_records(&self) -> (Vec<Manifest>, Vec<String>) {
        let read = self.foreground.load();
        let problems = read
            .problems
            .iter()
            .map(|(path, e)| format!("{}: {e}", path.display()))
            .collect();
        let mut found = Vec::new();
        for manifest in read.live {
            if self.folder(&manifest.info.id).exists("manifest.json") {
                let _ = self.foreground.record_end(&manifest.info.id);
            } else {
                found.push(manifest);
            }
        }
        (found, problems)
    }

    pub(crate) fn remove(&self, id: &TaskId) -> std::io::Result<()> {
        self.folder(id).remove_all()
    }
}
