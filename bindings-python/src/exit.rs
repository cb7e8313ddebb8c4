//! Nothing left running when the interpreter exits: the managers made from
//! Python and the process tasks they started are tracked here, and the
//! at-exit hook (`_at_exit`, registered by the `agent_tasks` package) shuts
//! the live managers down, waits until their processes are gone and removes
//! their temporary roots.
//!
//! SIGTERM and SIGHUP end Python without running at-exit hooks, so they
//! have a hook of their own, as the Node binding has: once a manager is
//! made, where the signal's disposition is still the default (Python sets
//! none for them; a host that set its own handler or ignores the signal
//! decides, and its `sys.exit` runs the at-exit hook), a handler is
//! installed. The handler only writes the signal's number to a pipe (all it
//! may do in a signal handler); a thread of ours reads it, kills every
//! process task of the live managers at once, removes their temporary
//! roots, restores the default disposition and raises the signal again, so
//! Python dies of it as it would have (exit status and all). It needs
//! nothing from Python, so it acts even while the main thread holds the GIL.
//! A process forked from the host (no such thread there) dies of the
//! signal at once, as before.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{SigHandler, Signal};

use agent_tasks::{ListFilter, TaskHandle, TaskManager};
use pyo3::prelude::*;

use crate::errors::core_err;
use crate::runtime::{lock, quiesce, runtime};

/// Every manager made from Python, so `_at_exit` can shut the live ones down.
static MANAGERS: Mutex<Vec<Weak<TaskManager>>> = Mutex::new(Vec::new());
/// Process tasks that may still run, so `_at_exit` can wait until they are
/// stopped (no process outlives the interpreter unless it is keep-alive).
static PROCESSES: Mutex<Tracked> = Mutex::new(Tracked {
    handles: Vec::new(),
    prune_at: 64,
});

struct Tracked {
    handles: Vec<TaskHandle>,
    prune_at: usize,
}

/// Tracks a process task until the at-exit hook (or a prune) finds it ended.
pub(crate) fn track_process(handle: &TaskHandle) {
    let mut tracked = lock(&PROCESSES);
    tracked.handles.push(handle.clone());
    if tracked.handles.len() >= tracked.prune_at {
        tracked.handles.retain(|h| !h.info().status.is_terminal());
        tracked.prune_at = (tracked.handles.len() * 2).max(64);
    }
}

/// Called when the interpreter exits: stops calls into Python from runtime
/// threads and blocking waits (see `runtime::quiesce`), shuts down every live
/// manager (tasks are cancelled, keep-alive ones left) and waits, GIL
/// released, up to `timeout` seconds until no process task is left running,
/// so none outlives the interpreter. The waits are the core's (woken by each
/// task's end); function tasks are not waited for, as their Python code can
/// no longer run.
#[pyfunction]
#[pyo3(signature = (timeout=10.0))]
pub fn _at_exit(py: Python<'_>, timeout: f64) -> PyResult<()> {
    if FATAL.load(Ordering::SeqCst) != 0 {
        // The signal thread is ending the process (the main thread got here
        // because its wait ended with the killed tasks): the process dies
        // of the signal, not of this exit.
        py.detach(|| {
            let deadline = Instant::now() + FATAL_WAIT;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                std::thread::park_timeout(left);
            }
        });
    }
    let limit = agent_tasks::duration_from_secs("timeout", timeout).map_err(core_err)?;
    // A limit too large for the clock is no limit, never a panic (capped at
    // about 136 years, which `Instant` always holds).
    let deadline = Instant::now() + limit.min(Duration::from_secs(u64::from(u32::MAX)));
    quiesce(py, deadline);
    let managers: Vec<Arc<TaskManager>> =
        lock(&MANAGERS).iter().filter_map(Weak::upgrade).collect();
    let rt = runtime()?;
    let mut ends = Vec::new();
    for manager in managers {
        let manager = TaskManager::clone(&manager);
        // Process tasks started by a `ToolBox` are not in PROCESSES.
        for info in manager.list(&ListFilter::default().active()) {
            if info.kind == "process" && !info.keep_alive {
                let manager = manager.clone();
                ends.push(rt.spawn(async move {
                    let _ = manager.collect(info.id.as_str(), None).await;
                }));
            }
        }
        rt.spawn(async move { manager.shutdown("the Python interpreter is exiting").await });
    }
    for handle in std::mem::take(&mut lock(&PROCESSES).handles) {
        if !handle.info().keep_alive {
            ends.push(rt.spawn(async move {
                handle.wait_end().await;
            }));
        }
    }
    // Told on a channel once every end is in: this thread waits on it (GIL
    // released) up to the deadline, whatever thread it is.
    let (all_ended, ended) = std::sync::mpsc::channel::<()>();
    rt.spawn(async move {
        for end in ends {
            let _ = end.await;
        }
        let _ = all_ended.send(());
    });
    let left = deadline.saturating_duration_since(Instant::now());
    py.detach(move || {
        let _ = ended.recv_timeout(left);
    });
    // The managers' objects may never be freed at interpreter exit: their
    // temporary roots go now.
    let managers: Vec<Arc<TaskManager>> =
        lock(&MANAGERS).iter().filter_map(Weak::upgrade).collect();
    let left = deadline.saturating_duration_since(Instant::now());
    py.detach(move || {
        for manager in managers {
            manager.remove_temporary_root_now(left);
        }
    });
    Ok(())
}

/// Tracks a manager made from Python, for the at-exit hook and the signal
/// hook (armed here, once).
pub(crate) fn track_manager(manager: &Arc<TaskManager>) {
    {
        let mut managers = lock(&MANAGERS);
        managers.retain(|m| m.strong_count() > 0);
        managers.push(Arc::downgrade(manager));
    }
    arm_signals();
}

// ---- SIGTERM and SIGHUP ---------------------------------------------------

/// The signals that end Python without its at-exit hooks.
const FATAL_SIGNALS: [Signal; 2] = [Signal::SIGTERM, Signal::SIGHUP];
/// How long the spawns under way get to record their pid before the kill.
const SPAWN_WAIT: Duration = Duration::from_millis(500);
/// How long the killed tasks get to record their ends before their
/// temporary root is removed.
const END_WAIT: Duration = Duration::from_secs(2);

/// How long an exit that races the signal thread waits for it to end the
/// process.
const FATAL_WAIT: Duration = Duration::from_secs(30);

/// The fatal signal being acted on (0 before one came).
static FATAL: AtomicI32 = AtomicI32::new(0);
/// The pipe's write end, for the handler (-1 until armed).
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);
/// The process that armed the hook: a forked child has no reading thread.
static ARMED_PID: AtomicI32 = AtomicI32::new(0);
static ARM: Once = Once::new();

/// Installs the handler for each fatal signal whose disposition is the
/// default, and starts the thread that acts on them. Once per process; a
/// failure leaves the signals as they were (the at-exit hook still runs
/// on the other exit paths).
fn arm_signals() {
    ARM.call_once(|| {
        let Ok((read, write)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
            return;
        };
        let reader = std::thread::Builder::new()
            .name("agent-tasks-signals".into())
            .spawn(move || watch_signals(read));
        if reader.is_err() {
            return;
        }
        // The write end lives as long as the process: the handler uses it.
        let write_fd = write.as_raw_fd();
        std::mem::forget(write);
        ARMED_PID.store(std::process::id() as i32, Ordering::SeqCst);
        SIGNAL_PIPE.store(write_fd, Ordering::SeqCst);
        for signal in FATAL_SIGNALS {
            install_if_default(signal);
        }
    });
}

/// Installs `on_fatal_signal` for `signal` if its disposition is the
/// default (a handler or an ignore the host set stays).
fn install_if_default(signal: Signal) {
    // SAFETY: a query (null new action) into a zeroed `sigaction` we own.
    let current = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal as libc::c_int, std::ptr::null(), &mut old) != 0 {
            return;
        }
        old.sa_sigaction
    };
    if current != libc::SIG_DFL {
        return;
    }
    let action = nix::sys::signal::SigAction::new(
        SigHandler::Handler(on_fatal_signal),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only does async-signal-safe things (getpid,
    // write, sigaction, raise) and keeps errno.
    let _ = unsafe { nix::sys::signal::sigaction(signal, &action) };
}

/// The signal handler: hands the signal to the reading thread, or, in a
/// forked child where that thread does not exist, dies of it at once.
extern "C" fn on_fatal_signal(signal: libc::c_int) {
    // SAFETY: only async-signal-safe calls; errno is put back as found.
    unsafe {
        let errno = *libc::__errno_location();
        let fd = SIGNAL_PIPE.load(Ordering::SeqCst);
        if fd >= 0 && libc::getpid() == ARMED_PID.load(Ordering::SeqCst) {
            let byte = signal as u8;
            let _ = libc::write(fd, (&byte as *const u8).cast(), 1);
        } else {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
        *libc::__errno_location() = errno;
    }
}

/// The thread that acts on a fatal signal: kills the tasks, removes the
/// temporary roots, then dies of the signal.
fn watch_signals(read: OwnedFd) {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&read, &mut byte) {
            Ok(1) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
        let Ok(signal) = Signal::try_from(libc::c_int::from(byte[0])) else {
            continue;
        };
        FATAL.store(signal as i32, Ordering::SeqCst);
        let managers: Vec<Arc<TaskManager>> =
            lock(&MANAGERS).iter().filter_map(Weak::upgrade).collect();
        for manager in &managers {
            manager.kill_processes_now(SPAWN_WAIT);
        }
        for manager in &managers {
            manager.remove_temporary_root_now(END_WAIT);
        }
        die_of(signal);
    }
}

/// Ends the process with `signal`, as its default action does.
fn die_of(signal: Signal) {
    // SAFETY: plain calls on this process's own signal state.
    let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
    let mut unblock = nix::sys::signal::SigSet::empty();
    unblock.add(signal);
    let _ = unblock.thread_unblock();
    let _ = nix::sys::signal::raise(signal);
    // Delivered to this thread, now unblocked, so not reached; if it were,
    // the process still must not outlive the signal.
    std::process::exit(128 + signal as i32);
}
