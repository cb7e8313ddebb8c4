//! Choosing and applying a task's containment ([`Containment`]): set up
//! before the spawn ([`prepare`]), confirmed after it ([`Prepared::started`]),
//! then [`Contained`] signals, kills and cleans up every process of the task,
//! including descendants that left its process group. Dropping a
//! [`Contained`] that was not finished kills everything (the task's future
//! was dropped: manager gave up waiting, runtime shut down).
//!
//! Order of preference: a cgroup v2 of the task's own ([`super::cgroup`]);
//! else the host as child subreaper plus the `/proc` walk
//! ([`super::reaper`], [`super::descendants`]); else the process group plus
//! the walk. Every task's processes carry the marker variable
//! [`MARKER_VAR`] whatever the containment, so a later host can find them
//! too ([`kill_group`]).

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Command;

use super::cgroup::{self, TaskCgroup};
use super::descendants::{self, MARKER_VAR};
use super::group::signal_group;
use super::reaper;
use crate::info::Containment;

/// Kill rounds before giving up on a process that will not die (one stuck
/// in uninterruptible sleep); each round re-reads who is left.
const KILL_ROUNDS: u32 = 250;
const KILL_ROUND_PAUSE: Duration = Duration::from_millis(4);

/// What was set up on the command before the spawn.
pub(crate) struct Prepared {
    task_id: String,
    cgroup: Option<TaskCgroup>,
    allow_subreaper: bool,
}

/// Sets the command up for the strongest containment allowed by `wanted`
/// that this host offers: the marker variable always, the move into a fresh
/// cgroup before `exec` where one can be made.
pub(crate) fn prepare(cmd: &mut Command, task_id: &str, wanted: Containment) -> Prepared {
    cmd.env(MARKER_VAR, task_id);
    let mut cgroup = None;
    if wanted == Containment::Cgroup {
        if let Some(cg) = TaskCgroup::create(task_id) {
            match cg.procs_file() {
                Some(procs) => {
                    // SAFETY: the hook runs in the forked child before exec,
                    // where only async-signal-safe calls are allowed. It makes
                    // one `write(2)` on a descriptor opened before the fork
                    // (no allocation, no lock, no other state); the file is
                    // close-on-exec, so the program never sees it. A failed
                    // write is ignored here: the parent checks membership
                    // after the spawn and falls back.
                    unsafe {
                        cmd.pre_exec(move || {
                            let _ = nix::unistd::write(&procs, b"0");
                            Ok(())
                        });
                    }
                    cgroup = Some(cg);
                }
                None => {
                    cg.remove();
                }
            }
        }
    }
    Prepared {
        task_id: task_id.to_string(),
        cgroup,
        allow_subreaper: wanted != Containment::ProcessGroup,
    }
}

impl Prepared {
    /// The spawn failed: removes what was made for it.
    pub fn abandon(self) {
        if let Some(cg) = &self.cgroup {
            cg.remove();
        }
    }

    /// The child `root` runs (it leads its own process group): confirms the
    /// containment it got.
    pub fn started(self, root: u32) -> Contained {
        let Prepared {
            task_id,
            cgroup,
            allow_subreaper,
        } = self;
        let cgroup = cgroup.and_then(|mut cg| {
            if cg.contains(root) || (cg.adopt(root) && cg.contains(root)) {
                cg.started();
                Some(cg)
            } else {
                cg.remove();
                None
            }
        });
        let mode = if cgroup.is_some() {
            Containment::Cgroup
        } else if allow_subreaper && reaper::ensure_subreaper() {
            reaper::track(&task_id, root);
            Containment::Subreaper
        } else {
            Containment::ProcessGroup
        };
        Contained {
            task_id,
            root,
            mode,
            cgroup,
            killed: std::sync::atomic::AtomicBool::new(false),
            finished: false,
        }
    }
}

/// A running task's processes, held by their containment.
pub(crate) struct Contained {
    task_id: String,
    root: u32,
    mode: Containment,
    cgroup: Option<TaskCgroup>,
    /// Set by a kill: whatever is left in the cgroup then is dying, not
    /// left running on purpose.
    killed: std::sync::atomic::AtomicBool,
    finished: bool,
}

impl Contained {
    /// The containment in use.
    pub fn mode(&self) -> Containment {
        self.mode
    }

    /// Sends `signal` (SIGTERM on a cancel) to every process of the task:
    /// the group at once, then each member outside it.
    pub fn signal(&self, signal: Signal) {
        signal_group(self.root, signal);
        match &self.cgroup {
            Some(cg) => cg.signal_all(signal, self.root),
            None => {
                let procs = descendants::task_processes(&self.task_id, self.root);
                if self.mode == Containment::Subreaper {
                    reaper::note(&procs);
                }
                for p in procs.iter().filter(|p| p.pgrp != self.root) {
                    let _ = kill(Pid::from_raw(p.pid as i32), signal);
                }
            }
        }
    }

    /// One round of SIGKILL to everything of the task; true while
    /// something still lives.
    fn kill_round(&self) -> bool {
        self.killed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        signal_group(self.root, Signal::SIGKILL);
        match &self.cgroup {
            Some(cg) => {
                cg.kill();
                cg.populated()
            }
            None => {
                let procs = descendants::task_processes(&self.task_id, self.root);
                if self.mode == Containment::Subreaper {
                    reaper::note(&procs);
                }
                for p in &procs {
                    let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
                }
                if self.mode == Containment::Subreaper {
                    reaper::reap_adopted();
                }
                !procs.is_empty()
            }
        }
    }

    /// Kills every process of the task and waits (bounded) until none is
    /// left, re-reading who is left each round (a process may fork while
    /// it is being killed).
    pub async fn kill_all(&self) {
        for _ in 0..KILL_ROUNDS {
            if !self.kill_round() {
                return;
            }
            tokio::time::sleep(KILL_ROUND_PAUSE).await;
        }
    }

    /// [`Contained::kill_all`] for a synchronous caller (a drop).
    fn kill_all_blocking(&self) {
        for _ in 0..KILL_ROUNDS {
            if !self.kill_round() {
                return;
            }
            std::thread::sleep(KILL_ROUND_PAUSE);
        }
    }

    /// The task has ended: removes its cgroup (after a kill; without one,
    /// what was left running on purpose is moved back to the host's cgroup
    /// first), reaps what the host adopted from it, forgets it.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let killed = self.killed.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(cg) = &self.cgroup {
            // The kernel may take a moment to let go of a killed cgroup.
            for _ in 0..50 {
                let removed = if killed { cg.remove() } else { cg.release() };
                if removed {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if self.mode == Containment::Subreaper {
            reaper::reap_adopted();
            reaper::untrack(&self.task_id);
        }
    }
}

impl Drop for Contained {
    fn drop(&mut self) {
        if !self.finished {
            self.kill_all_blocking();
            self.finish();
        }
    }
}

/// Sends SIGKILL to process group `pgid` and to every process of the task
/// it led, found by the task's cgroup (if the process is in one) or by the
/// marker variable: for a task found orphaned after a host restart. True if
/// anything was there to kill.
pub(crate) fn kill_group(pgid: u32) -> bool {
    // Read the marker first: a killed root's environment is gone.
    let marker = descendants::marker_of(pgid);
    let mut found = cgroup::kill_cgroup_of(pgid);
    found |= signal_group(pgid, Signal::SIGKILL);
    if let Some(task_id) = marker {
        for _ in 0..KILL_ROUNDS {
            let procs = descendants::task_processes(&task_id, pgid);
            if procs.is_empty() {
                break;
            }
            found = true;
            for p in &procs {
                let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
            }
            std::thread::sleep(KILL_ROUND_PAUSE);
        }
    }
    found
}

/// Sends `signal` to process group `pgid` and to every live process of task
/// `task_id` led by it (the group, the processes carrying the task's marker
/// variable, their descendants); with `None`, only looks. True if any live
/// process of the task was found. For a caller outside the task's host
/// (`inspect::kill_task_processes`), which has no [`Contained`].
pub(crate) fn signal_task(task_id: &str, pgid: u32, signal: Option<Signal>) -> bool {
    if let Some(signal) = signal {
        signal_group(pgid, signal);
    }
    let procs = descendants::task_processes(task_id, pgid);
    if let Some(signal) = signal {
        for p in &procs {
            let _ = kill(Pid::from_raw(p.pid as i32), signal);
        }
    }
    !procs.is_empty()
}
