//! What `manifest.json` holds: a task's saved info plus what recovery needs
//! (the process start time, the disk cap's head). A type of its own, used by
//! the store that writes task folders, the journal of foreground processes
//! and the restore, none of which it depends on.

use serde::{Deserialize, Serialize};

use crate::info::{TaskInfo, TaskSource};

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
    /// The boot `process_start_time` was taken in: after a reboot the saved
    /// start time names no process (pids and tick counts start again), so
    /// nothing is probed. Absent in manifests of older versions: taken as
    /// this boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// Set once the disk cap was reached: the length of the head the log
    /// keeps. Stream bytes past it that the counts in `info.output` include
    /// were dropped (or wait in memory for the end's trailer), so a restore
    /// after a crash reports them omitted instead of taking the log's
    /// length for the stream's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_head: Option<u64>,
    /// The delegation a subagent answers (agent and arguments), so its
    /// texts say so after a restart too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<TaskSource>,
    /// Run by a supervisor process (see `supervisor`): at open, a host
    /// re-attaches to it or reads its exit record instead of calling it
    /// lost.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supervised: bool,
}

impl Manifest {
    pub(crate) fn new(info: TaskInfo, process_start_time: Option<u64>) -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            info,
            boot_id: process_start_time
                .and(crate::process::boot_id())
                .map(str::to_string),
            process_start_time,
            log_head: None,
            source: None,
            supervised: false,
        }
    }

    /// True when the machine was restarted since the process start time was
    /// saved (the boot ids differ).
    pub(crate) fn rebooted_since(&self) -> bool {
        match (self.boot_id.as_deref(), crate::process::boot_id()) {
            (Some(then), Some(now)) => then != now,
            _ => false,
        }
    }

    /// The saved process start time, if it still means something: taken in
    /// this boot. Every check of "is the task's process still the one that
    /// runs under its pid" starts from here.
    pub(crate) fn start_time_this_boot(&self) -> Option<u64> {
        self.process_start_time.filter(|_| !self.rebooted_since())
    }
}
