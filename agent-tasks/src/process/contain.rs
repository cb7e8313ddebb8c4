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

use super::cgroup::{self, TaskCgroup};
use super::descendants::{self, MARKER_VAR};
use super::group::signal_group;
use super::limits::{JoinFds, LimitGroups, RootUsage};
use super::reaper;
use crate::info::Containment;
use crate::limits::{HostLimits, Limits, LimitsInfo, UnenforcedLimits, Usage};

/// Kill rounds before giving up on a process that will not die (one stuck
/// in uninterruptible sleep); each round re-reads who is left.
const KILL_ROUNDS: u32 = 250;
const KILL_ROUND_PAUSE: Duration = Duration::from_millis(4);

/// What was set up on the command before the spawn.
pub(crate) struct Prepared {
    task_id: String,
    cgroup: Option<TaskCgroup>,
    /// The task's limits as applied, if it has any.
    limits: Option<LimitGroups>,
    allow_subreaper: bool,
    /// The boot clock's tick just before the spawn (see
    /// [`descendants::boot_ticks`]).
    ticks_before: Option<u64>,
}

/// The variable every process of task `task_id` carries, whatever the
/// containment: its name and value, for the child's environment.
pub(crate) fn marker(task_id: &str) -> (&'static str, &str) {
    (MARKER_VAR, task_id)
}

/// Sets up the strongest containment allowed by `wanted` that this host
/// offers, for a child about to be spawned with the [`marker`] in its
/// environment: a fresh cgroup where one can be made. The child is started
/// straight inside it ([`Prepared::cgroup_dir`], [`super::clone_into`]), or
/// else moved in by the parent right after the spawn (see
/// [`Prepared::started`]); a pipe task's spawn never uses a pre-exec hook,
/// which would make it a full `fork` of the host instead of a vfork,
/// milliseconds in a large host. A PTY task's spawn is a fork anyway: its
/// child moves itself in before it execs
/// ([`Prepared::cgroup_procs_for_child`]).
///
/// With `limits` (the task's own over the manager's default), they are
/// applied too (`super::limits`): where some cannot be, the host's policy
/// says whether the task is refused (`Err` with the reason, nothing left
/// made) or runs with them reported as not enforced.
pub(crate) fn prepare(
    task_id: &str,
    wanted: Containment,
    limits: &Limits,
    host: HostLimits,
) -> Result<Prepared, String> {
    let mut cgroup = None;
    if wanted == Containment::Cgroup {
        cgroup = TaskCgroup::create(task_id);
    }
    let limits = if limits.is_empty() && host.ceiling.is_none() {
        None
    } else {
        let v2 = cgroup.as_ref().map(TaskCgroup::path);
        let applied = LimitGroups::create(limits, wanted, v2, host.ceiling.as_ref());
        let refuse = host.policy == UnenforcedLimits::Refuse;
        match applied {
            Ok(groups) => match groups.not_enforced() {
                Some(missing) if refuse => {
                    let message = missing.refusal().to_string();
                    if let Some(cg) = &cgroup {
                        cg.retire();
                    }
                    return Err(message);
                }
                _ => {
                    if groups.uses_v2() {
                        if let Some(cg) = &cgroup {
                            // Its limits must not carry over to a later task.
                            cg.never_reuse();
                        }
                    }
                    Some(groups)
                }
            },
            Err(reason) => {
                if let Some(cg) = &cgroup {
                    cg.retire();
                }
                return Err(format!("applying the task's limits: {reason}"));
            }
        }
    };
    Ok(Prepared {
        task_id: task_id.to_string(),
        cgroup,
        limits,
        allow_subreaper: wanted != Containment::ProcessGroup,
        // Last: the child is forked after this.
        ticks_before: descendants::boot_ticks(),
    })
}

impl Prepared {
    /// The spawn failed: gives back what was made for it.
    pub fn abandon(self) {
        if let Some(cg) = &self.cgroup {
            cg.retire();
        }
    }

    /// The task's v1 limit cgroups, for the child to join before its exec.
    pub fn join_fds(&self) -> JoinFds {
        self.limits
            .as_ref()
            .map(LimitGroups::join_fds)
            .unwrap_or_default()
    }

    /// The folder of the task's cgroup, opened for the child to be started
    /// straight inside it; `None` without a cgroup.
    pub fn cgroup_dir(&self) -> Option<std::os::fd::OwnedFd> {
        self.cgroup.as_ref().and_then(TaskCgroup::open_dir)
    }

    /// The task cgroup's `cgroup.procs`, opened for a forked child to write
    /// `0` to before it execs, so it and all it starts are born inside (see
    /// `super::pty`); `None` without a cgroup.
    pub fn cgroup_procs_for_child(&self) -> Option<std::os::fd::OwnedFd> {
        self.cgroup
            .as_ref()
            .and_then(TaskCgroup::open_procs_for_child)
    }

    /// Gives up the cgroup before a spawn is tried again without it (the
    /// child could not join it): the task falls back to the next
    /// containment.
    pub fn without_cgroup(&mut self) {
        if let Some(cg) = self.cgroup.take() {
            cg.discard();
        }
    }

    /// The child `root` runs (it leads its own process group): confirms the
    /// containment it got. `born_inside`: it was started inside the task's
    /// cgroup, so nothing needs moving in.
    ///
    /// `joined`: it joined its v1 limit cgroups itself ([`Prepared::join_fds`]);
    /// else it and what it started are moved in here.
    pub fn started(self, root: u32, born_inside: bool, joined: bool) -> Contained {
        let Prepared {
            task_id,
            cgroup,
            limits,
            allow_subreaper,
            ticks_before,
        } = self;
        // The root's start, in ticks since boot: the tick both boot clock
        // reads around the spawn fell in, else read (a zombie keeps it);
        // 0, no filter, if unknown.
        let since = match (ticks_before, descendants::boot_ticks()) {
            (Some(before), Some(after)) if before == after => before,
            _ => descendants::stat(root).map_or(0, |s| s.start),
        };
        let cgroup = cgroup.and_then(|mut cg| {
            if born_inside {
                // It and all it starts are in from the first instruction.
                cg.started();
                return Some(cg);
            }
            // A root that already ended (a quick command) cannot be moved;
            // what it started can, and still must be.
            let root_gone = || descendants::stat(root).is_none_or(|s| s.is_dead());
            // A write to `cgroup.procs` that succeeds has moved the process.
            if cg.adopt(root) || root_gone() {
                // The child runs its program by now (posix_spawn returns after
                // the exec) and may have started others before the move:
                // they carry the task's marker and are younger than the root,
                // so a short walk finds them; it is repeated until none is
                // left outside (one that forked meanwhile).
                for _ in 0..4 {
                    // The root is in (or gone): only others can be strays.
                    let others: Vec<u32> =
                        descendants::task_processes_besides_root(&task_id, root, since)
                            .into_iter()
                            .map(|p| p.pid)
                            .collect();
                    if others.is_empty() {
                        break;
                    }
                    let inside: std::collections::HashSet<u32> = cg.pids().into_iter().collect();
                    let strays: Vec<u32> = others
                        .into_iter()
                        .filter(|pid| !inside.contains(pid))
                        .collect();
                    if strays.is_empty() {
                        break;
                    }
                    for pid in strays {
                        cg.adopt(pid);
                    }
                }
                cg.started();
                Some(cg)
            } else {
                cg.discard();
                None
            }
        });
        if let Some(limits) = limits.as_ref().filter(|_| !joined) {
            // Moved in late: the root, then what it started (in the task's
            // v2 cgroup by now, else found by its marker).
            limits.adopt(root);
            let others: Vec<u32> = match &cgroup {
                Some(cg) => cg.pids(),
                None => descendants::task_processes_besides_root(&task_id, root, since)
                    .into_iter()
                    .map(|p| p.pid)
                    .collect(),
            };
            for pid in others.into_iter().filter(|pid| *pid != root) {
                limits.adopt(pid);
            }
        }
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
            since,
            mode,
            cgroup,
            limits,
            killed: std::sync::atomic::AtomicBool::new(false),
            seen_empty: std::sync::atomic::AtomicBool::new(false),
            finished: false,
        }
    }
}

/// A running task's processes, held by their containment.
pub(crate) struct Contained {
    task_id: String,
    root: u32,
    /// When the root started: the task's processes are all younger.
    since: u64,
    mode: Containment,
    cgroup: Option<TaskCgroup>,
    limits: Option<LimitGroups>,
    /// Set by a kill: whatever is left in the cgroup then is dying, not
    /// left running on purpose.
    killed: std::sync::atomic::AtomicBool,
    /// Set when a kill found the cgroup empty: nothing can enter an empty
    /// cgroup but by a write to its `cgroup.procs`, so it need not be read
    /// again before it is retired.
    seen_empty: std::sync::atomic::AtomicBool,
    finished: bool,
}

impl Contained {
    /// The containment in use.
    pub fn mode(&self) -> Containment {
        self.mode
    }

    /// The task's limits as applied, for its info; `None` without limits.
    pub fn limits_info(&self) -> Option<LimitsInfo> {
        self.limits.as_ref().map(LimitGroups::info)
    }

    /// Waits until the task runs out of memory at its limit where that can
    /// be told while it runs (v1; v2 kills the whole tree by itself); never
    /// returns otherwise.
    pub async fn oom(&self) {
        match &self.limits {
            Some(limits) => limits.oom().await,
            None => std::future::pending().await,
        }
    }

    /// At the task's end, before [`Contained::finish`]: the error of a task
    /// killed at its memory limit (from the cgroup's OOM count, or its OOM
    /// event: `oom_notified`, [`Contained::oom`] returned), and what the
    /// task used (its cgroups', else the root's `rusage`).
    pub fn end_report(
        &self,
        root: Option<RootUsage>,
        oom_notified: bool,
    ) -> (Option<String>, Option<Usage>) {
        match &self.limits {
            Some(limits) => limits.end_report(root.as_ref(), oom_notified),
            None => (None, root.map(|r| r.alone())),
        }
    }

    /// The root process's start time (clock ticks since boot), if it was
    /// read.
    pub fn start_time(&self) -> Option<u64> {
        (self.since != 0).then_some(self.since)
    }

    /// Sends `signal` (SIGTERM on a cancel) to every process of the task:
    /// the group at once, then each member outside it.
    pub fn signal(&self, signal: Signal) {
        signal_group(self.root, signal);
        match &self.cgroup {
            Some(cg) => cg.signal_all(signal, self.root),
            None => {
                let procs = descendants::task_processes(&self.task_id, self.root, self.since);
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
                // Usually everything ended with the root: no kill to send.
                if !cg.populated() {
                    self.seen_empty
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    return false;
                }
                cg.kill();
                cg.populated()
            }
            None => {
                let procs = descendants::task_processes(&self.task_id, self.root, self.since);
                if self.mode == Containment::Subreaper {
                    reaper::note(&procs);
                }
                for p in &procs {
                    let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
                }
                // Those killed may be the host's to reap now (adopted); with
                // none found, `finish` reaps what is left once.
                if self.mode == Containment::Subreaper && !procs.is_empty() {
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

    /// The task has ended: retires its cgroup to the pool once it is empty
    /// (after a kill; without one, what was left running on purpose is moved
    /// back to the host's cgroup first), reaps what the host adopted from
    /// it, forgets it.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let killed = self.killed.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(cg) = self.cgroup.take() {
            let removed = if self.seen_empty.load(std::sync::atomic::Ordering::Relaxed) {
                cg.retire_empty()
            } else if killed {
                cg.retire()
            } else {
                cg.release()
            };
            if !removed {
                // The kernel may take a moment to let go of a killed cgroup:
                // retry away from the task's end (and from any worker).
                let retry = move || {
                    for _ in 0..50 {
                        std::thread::sleep(Duration::from_millis(2));
                        if if killed { cg.retire() } else { cg.release() } {
                            break;
                        }
                    }
                };
                // Without a thread (the OS refused one) the cgroup stays
                // behind, empty: harmless, and reused by nothing.
                let _ = std::thread::Builder::new()
                    .name("agent-tasks-cgroup".to_string())
                    .spawn(retry);
            }
        }
        if let Some(limits) = self.limits.take() {
            // (What is not removed now is retried by its drop.)
            if killed {
                limits.remove();
            } else {
                limits.release();
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
    let since = descendants::process_start_time(pgid).unwrap_or(0);
    let mut found = cgroup::kill_cgroup_of(pgid);
    found |= signal_group(pgid, Signal::SIGKILL);
    if let Some(task_id) = marker {
        for _ in 0..KILL_ROUNDS {
            let procs = descendants::task_processes(&task_id, pgid, since);
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
    let since = descendants::process_start_time(pgid).unwrap_or(0);
    let procs = descendants::task_processes(task_id, pgid, since);
    if let Some(signal) = signal {
        for p in &procs {
            let _ = kill(Pid::from_raw(p.pid as i32), signal);
        }
    }
    !procs.is_empty()
}

/// SIGKILL, now, to every process of task `task_id` whose first process
/// was `pid`: its cgroup (by name), its process group and every process
/// carrying its marker. For a host that is exiting and cannot wait for the
/// task's own driver (see `TaskManager::kill_processes_now`). The group is
/// signalled even if its leader has exited: a group id is not reused while
/// a member lives. True if anything was there to kill.
pub(crate) fn kill_task_now(task_id: &str, pid: u32) -> bool {
    let mut found = cgroup::kill_task_cgroup(task_id);
    found |= signal_task(task_id, pid, Some(Signal::SIGKILL));
    found
}
