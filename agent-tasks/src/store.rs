//! The task folder on disk: `<root>/tasks/<id>/` with `manifest.json` (the
//! saved TaskInfo, rewritten atomically: temp file, fsync, rename),
//! `events.jsonl` (append-only), `result.json` and `files.json`; the small
//! journal of running foreground processes ([`crate::journal`]); and the
//! lock on the root. Folders are 0700, files 0600. This module only
//! reads and writes; what is saved when is the lifecycle's business.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::id::TaskId;
use crate::info::{TaskInfo, TaskResult};
use crate::journal::ForegroundJournal;
use crate::util::create_private_dir;

/// Format version of `manifest.json`.
const MANIFEST_VERSION: u32 = 1;

/// What `manifest.json` holds: the task's info plus what recovery needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub version: u32,
    pub info: TaskInfo,
    /// Start time of the task's process (clock ticks since boot, from
    /// `/proc/<pid>/stat`), so a reused pid is not taken for the task's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start_time: Option<u64>,
    /// Set once the disk cap was reached: the length of the head the log
    /// keeps. Stream bytes past it that the counts in `info.output` include
    /// were dropped (or wait in memory for the end's trailer), so a restore
    /// after a crash reports them omitted instead of taking the log's
    /// length for the stream's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_head: Option<u64>,
}

impl Manifest {
    pub(crate) fn new(info: TaskInfo, process_start_time: Option<u64>) -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            info,
            process_start_time,
            log_head: None,
        }
    }
}

/// A task folder found by [`TaskStore::load_all`].
pub(crate) struct LoadedTask {
    pub manifest: Manifest,
    pub result: Option<TaskResult>,
}

/// Reads and writes task folders under `<root>/tasks`.
#[derive(Debug)]
pub(crate) struct TaskStore {
    tasks_dir: PathBuf,
    foreground: ForegroundJournal,
}

/// Writes `bytes` to `path` atomically: a temp file in the same folder,
/// fsync, rename, then fsync of the folder so the rename itself is durable.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("the path has no parent folder"))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Appends `bytes` to `file` (open for appending, `len` bytes long) all or
/// nothing: if the write fails part way (a full disk), the part written is
/// cut off again, so the next append does not glue onto a torn line.
/// Returns the error; `Err` with the file still torn only if even the cut
/// failed (then [`AppendError::torn`] is set).
pub(crate) fn append_whole(
    file: &std::fs::File,
    len: u64,
    bytes: &[u8],
) -> Result<(), AppendError> {
    match (&*file).write_all(bytes) {
        Ok(()) => Ok(()),
        Err(error) => {
            let torn = file.set_len(len).is_err();
            Err(AppendError { error, torn })
        }
    }
}

/// A failed [`append_whole`].
#[derive(Debug)]
pub(crate) struct AppendError {
    pub error: std::io::Error,
    /// The part written could not be cut off: the file ends in a torn line.
    pub torn: bool,
}

impl From<AppendError> for std::io::Error {
    fn from(e: AppendError) -> Self {
        e.error
    }
}

/// An exclusive lock on a root folder, held while a manager has it open.
/// The lock is on the root folder itself (an `flock` on its descriptor), not
/// on a file inside it, so it cannot be defeated by unlinking or replacing a
/// lock file. The OS drops it when the process dies, even by SIGKILL, so a
/// crashed host never blocks the next one.
pub(crate) struct RootLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl RootLock {
    pub(crate) fn acquire(root: &Path) -> Result<RootLock, crate::Error> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
            .open(root)
            .map_err(|e| crate::Error::io("opening the root folder", root, e))?;
        match nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(RootLock { _lock: lock }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(crate::Error::RootInUse {
                path: root.to_path_buf(),
            }),
            Err((_, errno)) => Err(crate::Error::io(
                "locking the root folder",
                root,
                std::io::Error::from(errno),
            )),
        }
    }
}

impl TaskStore {
    pub(crate) fn new(root: &Path) -> Self {
        TaskStore {
            tasks_dir: root.join("tasks"),
            foreground: ForegroundJournal::new(root.join("foreground")),
        }
    }

    pub(crate) fn task_dir(&self, id: &TaskId) -> PathBuf {
        // `id` passed TaskId's grammar, so it is one plain path component.
        self.tasks_dir.join(id.as_str())
    }

    pub(crate) fn ensure_dir(&self, id: &TaskId) -> std::io::Result<PathBuf> {
        let dir = self.task_dir(id);
        create_private_dir(&dir)?;
        Ok(dir)
    }

    pub(crate) fn write_manifest(&self, manifest: &Manifest) -> std::io::Result<()> {
        let dir = self.ensure_dir(&manifest.info.id)?;
        let json = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
        write_atomic(&dir.join("manifest.json"), &json)
    }

    pub(crate) fn write_result(&self, result: &TaskResult) -> std::io::Result<()> {
        let dir = self.ensure_dir(&result.id)?;
        let json = serde_json::to_vec_pretty(result).map_err(std::io::Error::other)?;
        write_atomic(&dir.join("result.json"), &json)
    }

    pub(crate) fn write_json(
        &self,
        id: &TaskId,
        name: &str,
        value: &impl Serialize,
    ) -> std::io::Result<()> {
        let dir = self.ensure_dir(id)?;
        let json = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        write_atomic(&dir.join(name), &json)
    }

    pub(crate) fn append_events(&self, id: &TaskId, events: &[Event]) -> std::io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let dir = self.ensure_dir(id)?;
        let mut lines = Vec::new();
        for event in events {
            serde_json::to_writer(&mut lines, event).map_err(std::io::Error::other)?;
            lines.push(b'\n');
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join("events.jsonl"))?;
        let len = file.metadata()?.len();
        append_whole(&file, len, &lines).map_err(Into::into)
    }

    /// Every readable task folder, and a description of each one that could
    /// not be read (torn or corrupt manifest), which is skipped.
    pub(crate) fn load_all(&self) -> (Vec<LoadedTask>, Vec<String>) {
        let mut loaded = Vec::new();
        let mut problems = Vec::new();
        let entries = match std::fs::read_dir(&self.tasks_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (loaded, problems),
            Err(e) => {
                problems.push(format!("reading {}: {e}", self.tasks_dir.display()));
                return (loaded, problems);
            }
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if TaskId::parse(&name).is_err() {
                continue; // not a task folder of ours
            }
            let manifest_path = dir.join("manifest.json");
            let manifest = match std::fs::read(&manifest_path) {
                Ok(bytes) => match serde_json::from_slice::<Manifest>(&bytes) {
                    Ok(m) if m.info.id.as_str() == name => m,
                    Ok(_) => {
                        problems.push(format!(
                            "{}: the id does not match its folder",
                            manifest_path.display()
                        ));
                        continue;
                    }
                    Err(e) => {
                        problems.push(format!("{}: {e}", manifest_path.display()));
                        continue;
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    problems.push(format!("{}: {e}", manifest_path.display()));
                    continue;
                }
            };
            let result = std::fs::read(dir.join("result.json"))
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
            if self
                .task_dir(&manifest.info.id)
                .join("manifest.json")
                .exists()
            {
                let _ = self.foreground.record_end(&manifest.info.id);
            } else {
                found.push(manifest);
            }
        }
        (found, problems)
    }

    pub(crate) fn remove(&self, id: &TaskId) -> std::io::Result<()> {
        match std::fs::remove_dir_all(self.task_dir(id)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}
