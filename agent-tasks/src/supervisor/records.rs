//! The files a supervised task has in its folder beside the host's:
//! `supervisor.json` (what the host asked for: the command and its rules;
//! the supervisor holds a lock on it while it lives, so liveness is a lock
//! test, never a pid guess), `exit.json` (the exit record, written
//! atomically once the task ended and its log is complete) and
//! `control.sock` (the control socket, mode 0600 in the 0700 folder).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::info::{CancelReason, ExitInfo, OutputStats};
use crate::root_dir::{Access, Folder};
use crate::task::TaskOutcome;

use super::OnHostExit;

/// The spec's name in the task's folder.
pub(crate) const SPEC_FILE: &str = "supervisor.json";
/// The exit record's name.
pub(crate) const EXIT_FILE: &str = "exit.json";
/// The control socket's name.
pub(crate) const SOCKET_FILE: &str = "control.sock";

/// What the host hands its task's supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub task_id: String,
    pub task: crate::process::ProcessTask,
    /// The host's working folder: a task without a `cwd` runs there.
    pub cwd: PathBuf,
    pub memory_limit: usize,
    pub disk_limit: u64,
    pub tail_window: usize,
    /// The manager's default limits and its policy for unenforceable ones.
    pub default_limits: crate::limits::Limits,
    pub unenforced_limits: crate::limits::UnenforcedLimits,
    /// When the task's timeout fires (milliseconds since the epoch).
    pub deadline_ms: Option<u64>,
    pub on_host_exit: OnHostExit,
}

/// How a supervised task ended, saved by its supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ExitRecord {
    pub success: bool,
    pub error: Option<String>,
    pub exit: Option<ExitInfo>,
    pub usage: Option<crate::limits::Usage>,
    pub ended_on_its_own: bool,
    /// The stop the supervisor was asked for (a host's cancel, its own
    /// timeout, its host's exit under [`OnHostExit::Kill`]).
    pub stop: Option<CancelReason>,
    /// The stream's final counts (the log is complete when this is saved).
    pub output: OutputStats,
    pub log_head: Option<u64>,
    pub ended_at_ms: u64,
    /// Who stopped the task from outside (`agent-tasks kill`), if it ended
    /// of that: it ends `cancelled`, saying so, as under a host.
    #[serde(default)]
    pub killed_from_outside: Option<CancelReason>,
}

impl ExitRecord {
    /// The outcome the host records.
    pub(crate) fn outcome(&self) -> TaskOutcome {
        TaskOutcome {
            success: self.success,
            value: None,
            error: self.error.clone(),
            exit: self.exit,
            usage: self.usage.clone(),
            ended_on_its_own: self.ended_on_its_own,
        }
    }

    /// The task's result, as its host records it: the status by the rule
    /// every end follows (a stop that reached the task decides it, else
    /// success or failure).
    pub(crate) fn result(&self, info: &crate::info::TaskInfo) -> crate::info::TaskResult {
        let natural = self.stop.is_none() || self.ended_on_its_own;
        let cancel_reason = if natural {
            self.killed_from_outside.clone().filter(|_| !self.success)
        } else {
            self.stop.clone()
        };
        crate::info::TaskResult {
            id: info.id.clone(),
            status: crate::info::TaskStatus::of_end(cancel_reason.as_ref(), self.success),
            exit: self.exit,
            value: None,
            error: self.error.clone(),
            cancel_reason,
            duration_ms: self.ended_at_ms.saturating_sub(info.created_at_ms),
            output: self.output.clone(),
            changed_files: None,
            usage: self.usage.clone(),
        }
    }

    /// Reads the record from the task's folder, if the task ended.
    pub(crate) fn read(dir: &Folder) -> Option<std::io::Result<ExitRecord>> {
        if !dir.exists(EXIT_FILE) {
            return None;
        }
        Some(dir.read(EXIT_FILE).and_then(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| std::io::Error::other(e.to_string()))
        }))
    }
}

/// Reads the spec from the task's folder.
pub(crate) fn read_spec(dir: &Folder) -> std::io::Result<Spec> {
    let bytes = dir.read(SPEC_FILE)?;
    serde_json::from_slice(&bytes).map_err(|e| std::io::Error::other(e.to_string()))
}

/// Whether the task's supervisor lives: it holds a lock on the spec for its
/// whole life (a lock dies with its holder, and with a reboot).
pub(crate) fn supervisor_lives(dir: &Folder) -> bool {
    let Ok(file) = dir.open_file(SPEC_FILE, Access::Read) else {
        return false;
    };
    match rustix::fs::flock(
        file.as_fd(),
        rustix::fs::FlockOperation::NonBlockingLockShared,
    ) {
        // Nobody holds it: no supervisor (the lock goes with this file).
        Ok(()) => false,
        Err(_) => true,
    }
}

/// The socket's path as a host connects to it: `sun_path` holds 107 bytes,
/// so a long root is reached through this process's descriptor of the
/// folder (`/proc/self/fd/N/control.sock`), kept open by the caller.
pub(crate) fn socket_path(dir_path: &Path, dir_fd: Option<i32>) -> PathBuf {
    let direct = dir_path.join(SOCKET_FILE);
    match dir_fd {
        Some(fd) if direct.as_os_str().len() > 100 => {
            PathBuf::from(format!("/proc/self/fd/{fd}/{SOCKET_FILE}"))
        }
        _ => direct,
    }
}
