//! The module's tokio runtime, and the rules for calling Python from it and
//! for leaving it at interpreter exit.
//!
//! At interpreter exit, CPython ends a thread that takes the GIL back during
//! finalization with `pthread_exit`, which cannot unwind through Rust frames:
//! the process aborts. So the at-exit hook ([`quiesce`]) stops runtime
//! threads from calling Python and blocking waits from releasing the GIL
//! again, and waits (on a condition, woken as each one ends) until none is
//! doing either.

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// What runs across the boundary now, and whether the interpreter exits.
#[derive(Default)]
struct Activity {
    /// Set by the at-exit hook.
    exiting: bool,
    /// Runtime threads calling Python code now.
    calling: usize,
    /// Python threads inside a blocking wait, GIL released.
    waiting: usize,
}

static ACTIVITY: Mutex<Activity> = Mutex::new(Activity {
    exiting: false,
    calling: 0,
    waiting: 0,
});
/// Signalled whenever `calling` or `waiting` goes down.
static QUIET: Condvar = Condvar::new();

fn activity() -> MutexGuard<'static, Activity> {
    lock(&ACTIVITY)
}

/// `m` locked; a lock poisoned by a panic elsewhere is taken as it is (the
/// binding's state stays usable, and nothing panics across the boundary).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts one of `calling`/`waiting` while it lives.
struct Busy(fn(&mut Activity) -> &mut usize);

impl Busy {
    /// `None` once the interpreter is exiting.
    fn enter(field: fn(&mut Activity) -> &mut usize) -> Option<Busy> {
        let mut a = activity();
        if a.exiting {
            return None;
        }
        *field(&mut a) += 1;
        Some(Busy(field))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut a = activity();
        *(self.0)(&mut a) -= 1;
        drop(a);
        QUIET.notify_all();
    }
}

/// Calls into Python from a runtime thread: `None` once the interpreter is
/// exiting (or finalizing).
pub(crate) fn call_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    let _busy = Busy::enter(|a| &mut a.calling)?;
    Python::try_attach(f)
}

/// Runs `f` with the GIL released, counted as a blocking wait so the at-exit
/// hook waits for it; `None` (without calling `f`) once the interpreter is
/// exiting.
pub(crate) fn detached_wait<R: Send>(py: Python<'_>, f: impl FnOnce() -> R + Send) -> Option<R> {
    let busy = Busy::enter(|a| &mut a.waiting)?;
    let result = py.detach(f);
    drop(busy);
    Some(result)
}

/// The at-exit hook's first step: no new call into Python from a runtime
/// thread, no new GIL-released wait; then waits (GIL released) up to
/// `deadline` until the ones under way are over.
pub(crate) fn quiesce(py: Python<'_>, deadline: Instant) {
    activity().exiting = true;
    py.detach(|| {
        let mut a = activity();
        while a.calling > 0 || a.waiting > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            a = QUIET
                .wait_timeout(a, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    });
}

/// The module's tokio runtime (multi-thread, started on first use, shared by
/// every manager of the process). Its threads never run Python code except
/// to hand results back.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("agent-tasks")
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the tokio runtime: {e}")))?;
    // If another thread won the race, its runtime is kept and ours dropped.
    let _ = RUNTIME.set(rt);
    RUNTIME
        .get()
        .ok_or_else(|| PyRuntimeError::new_err("the tokio runtime is missing"))
}
