//! A cgroup v2 per task, where the host may create one: the strongest
//! containment. Every descendant stays in the task's cgroup whatever it does
//! with its session or group, and `cgroup.kill` (Linux 5.14+; else SIGKILL to
//! each member until none is left) ends them all at once.
//!
//! A task's cgroup is `<cgroup2 mount><the host's own cgroup>/agent-tasks-h<host
//! pid>-cg-<random>`, one task's at a time. The child is started straight
//! inside it where it can be (`super::clone_into`); else the host moves the
//! child in right after the spawn, then any process the child started
//! before the move (see `contain::Prepared::started`). Any failure (no
//! cgroup2 mount, no write permission, a read-only mount, the "no internal
//! processes" rule) only means this containment is not used: the caller
//! falls back.
//!
//! An emptied cgroup is kept in a small pool for the next task instead of
//! being removed, unless `cgroup.kill` was written to it: the kernel kills
//! at birth every child later started straight into such a cgroup. A
//! process's first entry into a fresh cgroup and the removal
//! of a cgroup that held one cost the kernel about 0.2 ms per task here
//! (`mkdir`, move, exit, `rmdir` in a loop); a move into a cgroup that held
//! processes before costs next to nothing. The pool is kept while a
//! manager that may spawn lives ([`PoolUser`]); the cgroups a host that died left
//! behind (its pid is in their names) are removed by the next host that
//! makes one ([`TaskCgroup::create`] sweeps once per process).
//!
//! The pool also keeps `cgroup.procs` (written to move a process in) and
//! `cgroup.events` (read to see the cgroup empty) open for the first
//! cgroup retired to it ([`KEEP_OPEN`]), in use or idle: every task writes
//! the one and reads the other, and an open file costs a fraction of a path
//! lookup, an open and a close. A host running one command after another
//! reuses that cgroup. That is two descriptors per host process, however
//! many tasks run, given up when descriptors run out (`super::kept`); a
//! task's own `cgroup.procs`, opened for a cgroup whose files are not kept,
//! is closed once its child is in.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The prefix of a task cgroup's folder name.
const DIR_PREFIX: &str = "agent-tasks-";

/// Idle cgroups kept for reuse, at most.
const POOL_MAX: usize = 8;

/// Cgroups whose files the pool keeps open, at most.
const KEEP_OPEN: usize = 1;

/// The host's task cgroups: the idle ones kept for reuse and which task
/// holds which (for [`kill_task_cgroup`], by task id).
#[derive(Default)]
struct Pool {
    idle: Vec<PathBuf>,
    by_task: HashMap<String, PathBuf>,
    /// The open files of up to [`KEEP_OPEN`] of the pool's cgroups.
    open: Vec<(PathBuf, Files)>,
    /// Managers that may still spawn ([`PoolUser`]).
    users: usize,
    /// Whether leftovers of dead hosts were looked for.
    swept: bool,
    /// The process this is of: a forked child starts with a copy of its
    /// parent's pool, whose cgroups are the parent's.
    pid: u32,
    /// Cgroups `cgroup.kill` was written to, and those limits were written
    /// to ([`TaskCgroup::never_reuse`]). They are removed, never used
    /// again: the kernel kills at birth every child started straight into a
    /// cgroup killed that way (a `kill_seq` mismatch in `clone3` with
    /// `CLONE_INTO_CGROUP`, Linux 6.18 and earlier; see `clone_into`).
    killed: HashSet<PathBuf>,
}

fn pool() -> MutexGuard<'static, Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    let mut pool = crate::util::lock(POOL.get_or_init(Mutex::default));
    let pid = std::process::id();
    if pool.pid != pid {
        // First use, or the first in a child forked from a host that had
        // used it: nothing of the parent's is ours to take or kill.
        *pool = Pool {
            pid,
            ..Pool::default()
        };
    }
    pool
}

/// The files of a cgroup every task in it uses, open.
#[derive(Debug)]
struct Files {
    /// `cgroup.procs`, for writing: a pid written moves that process in.
    procs: File,
    /// `cgroup.events`, for reading (`populated 0` once empty).
    events: File,
}

impl Files {
    fn open(dir: &Path) -> std::io::Result<Files> {
        Ok(Files {
            procs: open_procs(dir)?,
            events: File::open(dir.join("cgroup.events"))?,
        })
    }
}

fn open_procs(dir: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))
}

impl Pool {
    /// The kept files of cgroup `dir`, if the pool keeps them.
    fn files(&self, dir: &Path) -> Option<&Files> {
        self.open
            .iter()
            .find(|(kept, _)| kept == dir)
            .map(|(_, files)| files)
    }

    /// Forgets cgroup `dir` (it is being removed): closes its kept files.
    fn forget(&mut self, dir: &Path) {
        self.open.retain(|(kept, _)| kept != dir);
    }
}

/// A task's cgroup: its folder and, unless the pool keeps its files, its
/// `cgroup.procs` opened for writing before the child is forked.
#[derive(Debug)]
pub(crate) struct TaskCgroup {
    dir: PathBuf,
    task_id: String,
    /// Open until the child is in (one descriptor less per running task).
    procs: Option<File>,
}

impl TaskCgroup {
    /// A cgroup for task `task_id` under the host's own cgroup (an idle one
    /// of the pool, else a new one), or `None` where that is not possible.
    pub fn create(task_id: &str) -> Option<TaskCgroup> {
        let parent = own_cgroup_dir()?;
        let mut pool = pool();
        if !pool.swept {
            pool.swept = true;
            sweep_leftovers(&parent);
        }
        let mut tries = 0;
        let (dir, procs) = loop {
            if let Some(dir) = pool.idle.pop() {
                if pool.files(&dir).is_some() {
                    break (dir, None);
                }
                match open_procs(&dir) {
                    Ok(procs) => break (dir, Some(procs)),
                    // Removed by hand, or broken: the next one.
                    Err(_) => {
                        let _ = std::fs::remove_dir(&dir);
                        continue;
                    }
                }
            }
            // A random part: a host with the same pid in another pid
            // namespace may share the parent cgroup, and a cgroup that
            // exists is never taken (it may be another's).
            let tag = crate::id::TaskId::generate("cg");
            let name = format!("{DIR_PREFIX}h{}-{}", std::process::id(), tag.as_str());
            let dir = parent.join(name);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 4 => {
                    tries += 1;
                    continue;
                }
                Err(_) => return None,
            }
            match open_procs(&dir) {
                Ok(procs) => break (dir, Some(procs)),
                Err(_) => {
                    let _ = std::fs::remove_dir(&dir);
                    return None;
                }
            }
        };
        pool.by_task.insert(task_id.to_string(), dir.clone());
        Some(TaskCgroup {
            dir,
            task_id: task_id.to_string(),
            procs,
        })
    }

    /// The cgroup's folder.
    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cgroup's folder (limits are written there).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// This cgroup is removed at the task's end, never kept for another
    /// task (limits were written to it, which would carry over).
    pub fn never_reuse(&self) {
        pool().killed.insert(self.dir.clone());
    }

    /// The cgroup's folder, opened for a child to be started in it
    /// ([`super::clone_into`]); `None` if it cannot be opened.
    pub fn open_dir(&self) -> Option<std::os::fd::OwnedFd> {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY)
            .open(&self.dir)
            .ok()
            .map(Into::into)
    }

    /// `cgroup.procs` opened anew for writing, for a forked child to move
    /// itself in before it execs (a PTY task's: see `super::pty`); closed in
    /// the child by its exec (the descriptor is close-on-exec) and in the
    /// host once the spawn returned. `None` if it cannot be opened.
    pub fn open_procs_for_child(&self) -> Option<std::os::fd::OwnedFd> {
        open_procs(&self.dir).ok().map(Into::into)
    }

    /// Closes the task's own `cgroup.procs` once the child is in.
    pub fn started(&mut self) {
        self.procs = None;
    }

    /// Moves process `pid` in from the host side, through the task's own
    /// `cgroup.procs` or the one the pool keeps open.
    pub fn adopt(&self, pid: u32) -> bool {
        let pid = pid.to_string();
        match self.procs.as_ref() {
            Some(mut procs) => procs.write_all(pid.as_bytes()).is_ok(),
            None => pool()
                .files(&self.dir)
                .is_some_and(|files| (&files.procs).write_all(pid.as_bytes()).is_ok()),
        }
    }

    /// The processes in the cgroup now.
    pub fn pids(&self) -> Vec<u32> {
        read_pids(&self.dir)
    }

    /// True while any process is in the cgroup (`populated 1` in
    /// `cgroup.events`).
    pub fn populated(&self) -> bool {
        use std::os::unix::fs::FileExt;
        let has_populated_1 = |text: &[u8]| {
            text.split(|b| *b == b'\n')
                .any(|l| l.trim_ascii() == b"populated 1")
        };
        let mut buf = [0u8; 256];
        // Read from its start through the file the pool keeps open, if it does.
        let kept = pool()
            .files(&self.dir)
            .map(|files| files.events.read_at(&mut buf, 0));
        if let Some(Ok(n)) = kept {
            return has_populated_1(&buf[..n]);
        }
        match super::descendants::read_short(self.dir.join("cgroup.events"), &mut buf) {
            Some(events) => has_populated_1(&events),
            None => !self.pids().is_empty(),
        }
    }

    /// Sends `signal` to every process in the cgroup whose process group is
    /// not `skip_group` (that one is signalled as a group by the caller).
    pub fn signal_all(&self, signal: Signal, skip_group: u32) {
        for pid in self.pids() {
            let in_group = super::descendants::stat(pid).is_some_and(|s| s.pgrp == skip_group);
            if !in_group {
                let _ = kill(Pid::from_raw(pid as i32), signal);
            }
        }
    }

    /// SIGKILL to every process in the cgroup: `cgroup.kill` where the
    /// kernel has it, else a signal to each member.
    pub fn kill(&self) {
        kill_dir(&self.dir);
    }

    /// Whether `cgroup.kill` was ever written to this cgroup.
    fn was_killed(pool: &Pool, dir: &Path) -> bool {
        pool.killed.contains(dir)
    }

    /// The task is done with its (empty) cgroup: it goes back to the pool,
    /// or is removed when the pool is full. False while processes are still
    /// in it (the caller retries).
    pub fn retire(&self) -> bool {
        !self.populated() && self.retire_empty()
    }

    /// [`TaskCgroup::retire`] of a cgroup the caller saw empty.
    pub fn retire_empty(&self) -> bool {
        let mut pool = pool();
        pool.by_task.remove(&self.task_id);
        if TaskCgroup::was_killed(&pool, &self.dir) {
            drop(pool);
            return self.discard();
        }
        if pool.users > 0 && pool.idle.len() < POOL_MAX && !pool.idle.contains(&self.dir) {
            pool.idle.push(self.dir.clone());
            if pool.open.len() < KEEP_OPEN
                && pool.files(&self.dir).is_none()
                && super::kept::keeping()
            {
                // Opened once; without descriptors left, it is not kept.
                if let Ok(files) = Files::open(&self.dir) {
                    pool.open.push((self.dir.clone(), files));
                }
            }
            return true;
        }
        drop(pool);
        self.discard()
    }

    /// Removes the cgroup (not to be used again: the move into it failed);
    /// false while processes are still in it.
    pub fn discard(&self) -> bool {
        {
            let mut pool = pool();
            pool.by_task.remove(&self.task_id);
            pool.forget(&self.dir);
        }
        let removed = match std::fs::remove_dir(&self.dir) {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if removed {
            pool().killed.remove(&self.dir);
        }
        removed
    }

    /// Moves the processes still in the cgroup back to the host's cgroup
    /// (they were left running on purpose), then retires the cgroup.
    pub fn release(&self) -> bool {
        if let Some(parent) = self.dir.parent() {
            if let Ok(mut procs) = OpenOptions::new()
                .write(true)
                .open(parent.join("cgroup.procs"))
            {
                for pid in self.pids() {
                    let _ = procs.write_all(pid.to_string().as_bytes());
                }
            }
        }
        self.retire()
    }
}

impl Drop for TaskCgroup {
    /// A cgroup given up on while processes were still in it (see
    /// `contain::Contained::finish`) is no longer the task's to kill by id.
    fn drop(&mut self) {
        let mut pool = pool();
        if pool.by_task.get(&self.task_id) == Some(&self.dir) {
            pool.by_task.remove(&self.task_id);
        }
    }
}

/// Closes the cgroup files the pool keeps open (descriptors ran out; see
/// `super::kept`).
pub(crate) fn close_kept_files() {
    pool().open.clear();
}

/// A manager that may spawn tasks, for the pool: idle cgroups are kept
/// only while one is alive and not shut down (released by
/// [`PoolUser::release`] or a drop). The last one gone removes them, and a
/// cgroup retired after that (a task of a dropped manager ending) is
/// removed, not kept.
#[derive(Debug)]
pub(crate) struct PoolUser {
    released: std::sync::atomic::AtomicBool,
}

impl PoolUser {
    pub fn new() -> PoolUser {
        pool().users += 1;
        PoolUser {
            released: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// This manager spawns no more; the first call counts.
    pub fn release(&self) {
        if self
            .released
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let idle = {
            let mut pool = pool();
            pool.users = pool.users.saturating_sub(1);
            if pool.users > 0 {
                return;
            }
            pool.open.clear();
            std::mem::take(&mut pool.idle)
        };
        for dir in idle {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl Drop for PoolUser {
    fn drop(&mut self) {
        self.release();
    }
}

/// Removes the empty task cgroups that hosts which are gone left in
/// `parent`: `agent-tasks-h<pid>-…` of a pid that no longer runs, and
/// those of the older naming (`agent-tasks-<task id>`) not touched for a
/// minute. A cgroup with processes in it cannot be removed and stays (an
/// orphaned task still runs in it, for a reopened manager to report).
pub(super) fn sweep_leftovers(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let own = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let host = rest
            .strip_prefix('h')
            .and_then(|r| r.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        let gone = match host {
            Some(pid) => pid != own && !Path::new(&format!("/proc/{pid}")).exists(),
            None => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(60)),
        };
        if gone {
            // A dead manager's ceiling holds its tasks' cgroups: those
            // first. Fails (EBUSY) while processes are in one: left as it is.
            if let Ok(inner) = std::fs::read_dir(entry.path()) {
                for child in inner.flatten() {
                    if child.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
                        let _ = std::fs::remove_dir(child.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

fn read_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn kill_dir(dir: &Path) {
    let killed = OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.kill"))
        .and_then(|mut f| f.write_all(b"1"))
        .is_ok();
    if killed {
        pool().killed.insert(dir.to_path_buf());
    } else {
        for pid in read_pids(dir) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// SIGKILL to every process in task `task_id`'s cgroup, if this host gave
/// it one (for a host stopping its tasks at once). True if the cgroup
/// exists.
pub(crate) fn kill_task_cgroup(task_id: &str) -> bool {
    let Some(dir) = pool().by_task.get(task_id).cloned() else {
        return false;
    };
    if !dir.is_dir() {
        return false;
    }
    kill_dir(&dir);
    true
}

/// Ends the task cgroup process `pid` is in, if it is in one (after a host
/// restart: the cgroup outlived the host that made it). True if there was
/// one.
pub(crate) fn kill_cgroup_of(pid: u32) -> bool {
    let Some(dir) = cgroup_dir_of(&format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let is_task_cgroup = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(DIR_PREFIX));
    if !is_task_cgroup {
        return false;
    }
    kill_dir(&dir);
    // Removing it may take the kernel a moment after the kill; a last
    // leftover empty folder is harmless and reused by nobody.
    for _ in 0..50 {
        match std::fs::remove_dir(&dir) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
        }
    }
    pool().killed.remove(&dir);
    true
}

/// The folder of the host's own cgroup in the cgroup2 mount.
pub(super) fn own_cgroup_dir() -> Option<PathBuf> {
    // The host's own cgroup, read once: a process that moves itself to
    // another cgroup while tasks run is not supported.
    static OWN: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    OWN.get_or_init(read_own_cgroup_dir).clone()
}

fn read_own_cgroup_dir() -> Option<PathBuf> {
    cgroup_dir_of("/proc/self/cgroup")
}

/// The folder of the cgroup named by a `/proc/<pid>/cgroup` file (its
/// `0::<path>` line) in the cgroup2 mount.
fn cgroup_dir_of(cgroup_file: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(cgroup_file).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let (mount, root) = cgroup2_mount()?;
    folder_in_mount(mount, root, path)
}

/// The folder of the cgroup `path` (as `/proc/<pid>/cgroup` names it) in a
/// hierarchy mounted at `mount` whose root is `root`: inside a cgroup
/// namespace the mount's root may be below the top. `None` for a path
/// outside the mount's root or one that climbs (`..`). For v1 and v2 alike.
pub(super) fn folder_in_mount(mount: &Path, root: &str, path: &str) -> Option<PathBuf> {
    let relative = if root == "/" {
        path
    } else {
        path.strip_prefix(root)?
    };
    let relative = relative.trim_start_matches('/');
    if relative.split('/').any(|c| c == "..") {
        return None;
    }
    Some(if relative.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(relative)
    })
}

/// Where cgroup2 is mounted (from `/proc/self/mountinfo`) and the root of
/// the hierarchy that mount shows; read once.
fn cgroup2_mount() -> Option<&'static (PathBuf, String)> {
    static MOUNT: OnceLock<Option<(PathBuf, String)>> = OnceLock::new();
    MOUNT
        .get_or_init(|| {
            let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
            text.lines().find_map(parse_mountinfo_line)
        })
        .as_ref()
}

/// `(mount point, root)` of a mountinfo line if it is a cgroup2 mount.
/// Format: `id parent major:minor root mount-point options [optional...] -
/// fstype source super-options`.
fn parse_mountinfo_line(line: &str) -> Option<(PathBuf, String)> {
    let (left, right) = line.split_once(" - ")?;
    if right.split_whitespace().next()? != "cgroup2" {
        return None;
    }
    let fields: Vec<&str> = left.split_whitespace().collect();
    let root = unescape(fields.get(3)?);
    let mount = unescape(fields.get(4)?);
    Some((PathBuf::from(mount), root))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let value = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 8).ok());
            if let Some(value) = value {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Tests that use the pool, one at a time (one of them resets it).
#[cfg(test)]
pub(crate) static POOL_TESTS: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forked_child_does_not_take_its_parents_cgroups() {
        let _one_at_a_time = crate::util::lock(&POOL_TESTS);
        {
            let mut pool = pool();
            pool.idle
                .push(PathBuf::from("/nonexistent/agent-tasks-h1-cg-parent"));
            pool.by_task
                .insert("process-parent".to_string(), PathBuf::from("/nonexistent"));
            let dev_null = || File::open("/dev/null").expect("/dev/null opens");
            pool.open.push((
                PathBuf::from("/nonexistent/agent-tasks-h1-cg-parent"),
                Files {
                    procs: dev_null(),
                    events: dev_null(),
                },
            ));
            pool.users = 3;
            // What a forked child sees: the parent's pool, another pid.
            pool.pid = pool.pid.wrapping_add(1);
        }
        let pool = pool();
        assert!(pool.idle.is_empty());
        assert!(pool.by_task.is_empty());
        assert!(pool.open.is_empty());
        assert_eq!(pool.users, 0);
        assert_eq!(pool.pid, std::process::id());
    }

    #[test]
    fn mountinfo_lines_are_parsed() {
        let line = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw";
        assert_eq!(
            parse_mountinfo_line(line),
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".to_string()))
        );
        let other = "22 1 0:21 / /proc rw - proc proc rw";
        assert_eq!(parse_mountinfo_line(other), None);
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/a\04"), r"/a\04");
    }
}
