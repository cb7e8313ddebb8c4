//! Files kept open for the life of the host process to make every spawn
//! cheaper (`/dev/null` for a child's stdin, `ns_last_pid` for the walks),
//! and the switch that gives them up for good once descriptors run out: a
//! spawn that fails for want of a descriptor closes them (and the cgroup
//! files the pool keeps) and is tried once more, so a host under a low
//! `RLIMIT_NOFILE` runs as many tasks as it would without them.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::util::lock;

/// Whether files are kept open; false once descriptors ran out.
static KEEPING: AtomicBool = AtomicBool::new(true);

/// A file opened on first use and kept open while [`keeping`] holds.
pub(crate) struct KeptFile {
    path: &'static str,
    file: Mutex<Option<File>>,
}

impl KeptFile {
    const fn new(path: &'static str) -> KeptFile {
        KeptFile {
            path,
            file: Mutex::new(None),
        }
    }

    /// Runs `use_it` on the file: the kept one, else one opened for this
    /// use only; `None` if it cannot be opened.
    pub fn with<R>(&self, use_it: impl FnOnce(&File) -> R) -> Option<R> {
        let use_it = match self.try_kept(use_it) {
            Ok(done) => return Some(done),
            Err(use_it) => use_it,
        };
        File::open(self.path).ok().map(|file| use_it(&file))
    }

    /// Runs `use_it` on the kept file; `None` if none is kept (the caller
    /// has a way of its own, cheaper than opening one for this use).
    pub fn with_kept<R>(&self, use_it: impl FnOnce(&File) -> R) -> Option<R> {
        self.try_kept(use_it).ok()
    }

    /// `use_it` on the kept file (opened if need be), or `use_it` back.
    fn try_kept<R, F: FnOnce(&File) -> R>(&self, use_it: F) -> Result<R, F> {
        if !keeping() {
            return Err(use_it);
        }
        let mut kept = lock(&self.file);
        if kept.is_none() {
            *kept = File::open(self.path).ok();
        }
        match kept.as_ref() {
            Some(file) => Ok(use_it(file)),
            None => Err(use_it),
        }
    }

    fn close(&self) {
        *lock(&self.file) = None;
    }
}

/// `/dev/null`, of which each child without input gets a copy as stdin.
pub(crate) static DEV_NULL: KeptFile = KeptFile::new("/dev/null");

/// The last pid handed out in this pid namespace, read with `pread`.
pub(crate) static NS_LAST_PID: KeptFile = KeptFile::new("/proc/sys/kernel/ns_last_pid");

/// Whether files are still kept open for spawning.
pub(crate) fn keeping() -> bool {
    KEEPING.load(Ordering::Relaxed)
}

/// Descriptors ran out: closes every file kept for spawning and keeps none
/// from now on.
pub(crate) fn give_up() {
    KEEPING.store(false, Ordering::Relaxed);
    DEV_NULL.close();
    NS_LAST_PID.close();
    super::cgroup::close_kept_files();
}

/// True if `error` says the process (or the system) has no descriptor left.
pub(crate) fn out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(nix::libc::EMFILE) | Some(nix::libc::ENFILE)
    )
}
