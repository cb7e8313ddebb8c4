//! Nothing left running when the interpreter exits: the managers made from
//! Python and the process tasks they started are tracked here, and the
//! at-exit hook (`_at_exit`, registered by the `agent_tasks` package) shuts
//! the live managers down and waits until their processes are gone.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use agent_tasks::{ListFilter, TaskHandle, TaskManager};
use pyo3::prelude::*;

use crate::convert::duration;
use crate::runtime::{quiesce, runtime};

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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
    let limit = duration("timeout", timeout)?;
    let deadline = Instant::now() + limit;
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
    Ok(())
}

/// Tracks a manager made from Python, for the at-exit hook.
pub(crate) fn track_manager(manager: &Arc<TaskManager>) {
    let mut managers = lock(&MANAGERS);
    managers.retain(|m| m.strong_count() > 0);
    managers.push(Arc::downgrade(manager));
}
