//! The host as a child subreaper: the fallback containment where no cgroup
//! can be made. With `PR_SET_CHILD_SUBREAPER` set (once, on the first task
//! that needs it) a task's descendant whose parent dies is re-parented to the
//! host instead of init, so it stays within reach; the descendant walk
//! ([`super::descendants`]) finds it, and this module reaps it when it ends.
//!
//! # Caveats (the attribute changes the whole host process)
//!
//! * Every orphan below the host is adopted, not only the tasks' ones: a
//!   grandchild of a child the host (or its Python or Node runtime) started
//!   itself becomes the host's child too. This module never calls
//!   `waitpid(-1)`, which would steal the exit statuses that tokio, Python's
//!   `subprocess` or Node's `child_process` wait for; it only reaps, by pid
//!   with `WNOHANG`, zombies it can tell are a task's: a pid it saw alive
//!   carrying a task's marker (with the same start time), or a zombie in a
//!   running task's process group, or in the group or session of a process
//!   it saw. Adopted orphans that are not a task's are left to the host; if
//!   the host never waits for them they stay zombies until it exits.
//! * A task's root process is the host's own child, waited for by tokio;
//!   it is never reaped here.
//! * The host learns an adopted orphan while it lives (on every `SIGCHLD`
//!   and every 200 ms while a task in this containment runs). One that left
//!   the task's group and session and ended within that window, before the
//!   host saw it, cannot be told apart from the host's own children once it
//!   is a zombie (its environment is gone): it stays a zombie (a pid, no
//!   memory) until the host exits. So does an orphan left running on
//!   purpose (`kill_group_on_exit(false)`) that ends after its task.
//! * Reaping runs on `SIGCHLD` (through tokio's signal handling, which
//!   chains to any handler installed before it) and on the periodic look,
//!   while a task in this containment runs, and after every kill. The
//!   listener ends with the last such task; the attribute stays set for the
//!   life of the host process.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use super::descendants::{self, ProcStat};

/// Makes the host a child subreaper (once); false if the kernel refused.
pub(crate) fn ensure_subreaper() -> bool {
    static SET: OnceLock<bool> = OnceLock::new();
    *SET.get_or_init(|| {
        #[cfg(target_os = "linux")]
        {
            nix::sys::prctl::set_child_subreaper(true).is_ok()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    })
}

/// How often the listener looks at the host's children while a task in
/// this containment runs, besides every `SIGCHLD`.
const LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

#[derive(Default)]
struct Registry {
    /// Running tasks in this containment: id → root pid (= process group).
    tasks: HashMap<String, u32>,
    /// Processes seen alive as some task's, by pid: their start time.
    seen: HashMap<u32, u64>,
    /// Whether a `SIGCHLD` listener runs.
    listening: bool,
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Registers a running task whose root process is `root`, and makes sure
/// something reaps its adopted descendants on `SIGCHLD`.
pub(crate) fn track(task_id: &str, root: u32) {
    let start_listener = {
        let mut reg = registry();
        reg.tasks.insert(task_id.to_string(), root);
        !std::mem::replace(&mut reg.listening, true)
    };
    if start_listener && !spawn_listener() {
        registry().listening = false;
    }
}

/// Forgets a task that ended (after its last reap).
pub(crate) fn untrack(task_id: &str) {
    registry().tasks.remove(task_id);
}

/// Remembers processes found as a task's, so they can be reaped once they
/// are zombies (a zombie's environment can no longer be read).
pub(crate) fn note(procs: &[ProcStat]) {
    let mut reg = registry();
    let roots: HashSet<u32> = reg.tasks.values().copied().collect();
    for p in procs {
        if !roots.contains(&p.pid) {
            reg.seen.insert(p.pid, p.start);
        }
    }
}

/// Reaps the host's zombie children that are known to be tasks'
/// descendants; learns the live adopted children that carry a running
/// task's marker. Returns how many were reaped.
pub(crate) fn reap_adopted() -> usize {
    let me = std::process::id();
    let children = host_children(me);
    if children.is_empty() {
        forget_gone();
        return 0;
    }
    let mut reap = Vec::new();
    {
        let mut reg = registry();
        let roots: HashSet<u32> = reg.tasks.values().copied().collect();
        for child in &children {
            if roots.contains(&child.pid) {
                continue; // tokio waits for it
            }
            if child.is_dead() {
                let known = reg.seen.get(&child.pid) == Some(&child.start)
                    || roots.contains(&child.pgrp)
                    || reg.seen.contains_key(&child.pgrp)
                    || reg.seen.contains_key(&child.session);
                if known {
                    reap.push(child.pid);
                }
            } else if !reg.seen.contains_key(&child.pid) {
                let marker = descendants::marker_of(child.pid);
                if marker.is_some_and(|id| reg.tasks.contains_key(&id)) {
                    reg.seen.insert(child.pid, child.start);
                }
            }
        }
    }
    let mut reaped = 0;
    for pid in reap {
        // WNOHANG on one known pid: never blocks, never touches another
        // child's status.
        if waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)).is_ok() {
            reaped += 1;
        }
        registry().seen.remove(&pid);
    }
    forget_gone();
    reaped
}

/// Drops remembered pids that no longer name the process seen (reaped by
/// their own parent, or reused).
fn forget_gone() {
    let mut reg = registry();
    if reg.seen.is_empty() {
        return;
    }
    reg.seen
        .retain(|pid, start| descendants::stat(*pid).is_some_and(|s| s.start == *start));
}

/// The host's children now: from `/proc/self/task/*/children` where the
/// kernel has it, else from a scan of `/proc`.
fn host_children(me: u32) -> Vec<ProcStat> {
    let mut pids: Vec<u32> = Vec::new();
    let mut listed = false;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                listed = true;
                pids.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
    }
    if !listed {
        return descendants::all_processes()
            .into_iter()
            .filter(|p| p.ppid == me)
            .collect();
    }
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .filter_map(descendants::stat)
        .filter(|p| p.ppid == me)
        .collect()
}

/// Starts the `SIGCHLD` listener on the current tokio runtime; it ends
/// when no task in this containment runs (or with its runtime). False if
/// there is no runtime or the signal cannot be watched.
fn spawn_listener() -> bool {
    use tokio::signal::unix::{signal, SignalKind};

    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    // Registering the signal needs the runtime's context, which we are in.
    let Ok(mut sigchld) = signal(SignalKind::child()) else {
        return false;
    };
    /// Clears the `listening` flag however the listener ends (also when
    /// its runtime shuts down and drops it).
    struct Listening;
    impl Drop for Listening {
        fn drop(&mut self) {
            registry().listening = false;
        }
    }
    runtime.spawn(async move {
        let _listening = Listening;
        loop {
            // A `SIGCHLD` reports a child's end; the periodic look learns
            // orphans adopted silently (their parent was not the host's
            // child), while they still carry their marker. (Nothing is
            // left to reap when a listener starts: the last one ended with
            // nothing tracked.)
            tokio::select! {
                received = sigchld.recv() => if received.is_none() {
                    return;
                },
                _ = tokio::time::sleep(LOOK_EVERY) => {}
            }
            reap_adopted();
            {
                let mut reg = registry();
                if reg.tasks.is_empty() && reg.seen.is_empty() {
                    reg.listening = false;
                    std::mem::forget(_listening);
                    return;
                }
            }
        }
    });
    true
}
