//! The bridge between the tokio runtime and Python's two ways of waiting.
//! A Rust future that waits (collect, cancel, a steering message...) is
//! spawned on the module's runtime and handed to Python as a [`Pending`]:
//! `await pending` suspends the caller's coroutine (the result is delivered
//! with `loop.call_soon_threadsafe`), `pending.wait()` blocks a thread with
//! the GIL released, in short slices so Ctrl+C interrupts it. Dropping or
//! cancelling a `Pending` aborts the Rust future.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyList;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::convert::wait_limit;
use crate::errors::core_err;
use crate::tools::ToolResponse;
use crate::types::{CancelReason, Outcome, OutcomeInner, TaskInfo};

/// How long a blocking wait sleeps between checks for Ctrl+C.
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

// At interpreter exit, CPython ends a thread that takes the GIL back during
// finalization with `pthread_exit`, which cannot unwind through Rust frames:
// the process aborts. So the at-exit hook (`quiesce`) stops runtime threads
// from calling Python and blocking waits from releasing the GIL again, and
// waits until none is doing either.

/// Set by the at-exit hook.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Runtime threads calling Python code now.
static CALLING: AtomicUsize = AtomicUsize::new(0);
/// Python threads inside a blocking wait, GIL released.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Calls into Python from a runtime thread: `None` once the interpreter is
/// exiting (or finalizing).
pub(crate) fn call_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    CALLING.fetch_add(1, SeqCst);
    let result = if EXITING.load(SeqCst) {
        None
    } else {
        Python::try_attach(f)
    };
    CALLING.fetch_sub(1, SeqCst);
    result
}

/// The at-exit hook's first step: no new call into Python from a runtime
/// thread, no new GIL-released wait; then waits (GIL released) up to
/// `deadline` until the ones under way are over.
pub(crate) fn quiesce(py: Python<'_>, deadline: Instant) {
    EXITING.store(true, SeqCst);
    py.detach(|| {
        while (CALLING.load(SeqCst) > 0 || WAITING.load(SeqCst) > 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
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

/// What a finished wait holds until Python takes it.
pub(crate) enum Ready {
    /// `collect` or `wait_foreground`.
    Outcome(OutcomeInner),
    /// `cancel`.
    Info(agent_tasks::TaskInfo),
    /// `wait_cancelled`.
    Reason(agent_tasks::CancelReason),
    /// `recv`: a message's text, or `None`.
    Text(Option<String>),
    /// `close_owner`.
    Infos(Vec<agent_tasks::TaskInfo>),
    /// A tool call.
    Tool(agent_tasks::tools::ToolResponse),
    /// `wait_for`: what ended the wait, as its wire form (a dict).
    Wait(agent_tasks::WaitOutcome),
    /// `shutdown`, an event wait.
    Unit,
}

/// A wait's end: its value or a core error.
pub(crate) type Completion = Result<Ready, agent_tasks::Error>;

#[derive(Default)]
struct Slot {
    done: Option<Completion>,
    finished: bool,
    callback: Option<Py<PyAny>>,
}

#[derive(Default)]
struct Shared {
    slot: Mutex<Slot>,
    cond: Condvar,
}

fn lock(m: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn complete(&self, completion: Completion) {
        let callback = {
            let mut slot = lock(&self.slot);
            slot.done = Some(completion);
            slot.finished = true;
            slot.callback.take()
        };
        self.cond.notify_all();
        if let Some(callback) = callback {
            // Taking the GIL may take a while: never on a runtime worker.
            tokio::task::spawn_blocking(move || {
                // Not called while the interpreter exits: nobody waits then.
                let _ = call_python(|py| {
                    if let Err(e) = callback.call0(py) {
                        e.write_unraisable(py, None);
                    }
                });
            });
        }
    }
}

/// A wait running on the runtime: `await` it, or block on it with
/// `wait()`/`result()`. Dropping it stops the wait.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct Pending {
    shared: Arc<Shared>,
    abort: AbortHandle,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// Spawns `fut` on the runtime and returns its [`Pending`].
pub(crate) fn spawn<F>(fut: F) -> PyResult<Pending>
where
    F: Future<Output = Completion> + Send + 'static,
{
    let shared = Arc::new(Shared::default());
    let done = shared.clone();
    let handle = runtime()?.spawn(async move {
        let completion = fut.await;
        done.complete(completion);
    });
    Ok(Pending {
        shared,
        abort: handle.abort_handle(),
    })
}

static AWAIT_PENDING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

impl Pending {
    /// Blocks (GIL released) until done or `limit` passes; true when done.
    fn block(&self, py: Python<'_>, limit: Option<Duration>) -> PyResult<bool> {
        let deadline = limit.map(|l| Instant::now() + l);
        loop {
            let slice = match deadline {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(SIGNAL_SLICE),
                None => SIGNAL_SLICE,
            };
            if EXITING.load(SeqCst) {
                self.abort.abort();
                return Err(PyRuntimeError::new_err(
                    "the Python interpreter is exiting: agent_tasks waits no more",
                ));
            }
            let shared = &self.shared;
            WAITING.fetch_add(1, SeqCst);
            let finished = py.detach(|| {
                let slot = lock(&shared.slot);
                let (slot, _) = shared
                    .cond
                    .wait_timeout_while(slot, slice, |s| !s.finished)
                    .unwrap_or_else(|p| p.into_inner());
                slot.finished
            });
            WAITING.fetch_sub(1, SeqCst);
            if finished {
                return Ok(true);
            }
            if let Err(interrupt) = py.check_signals() {
                self.abort.abort();
                return Err(interrupt);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    fn take(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let done = {
            let mut slot = lock(&self.shared.slot);
            if !slot.finished {
                return Err(PyRuntimeError::new_err("the wait has not finished"));
            }
            slot.done.take()
        };
        let ready = match done {
            Some(Ok(ready)) => ready,
            Some(Err(e)) => return Err(core_err(e)),
            None => return Err(PyRuntimeError::new_err("the result was already taken")),
        };
        Ok(match ready {
            Ready::Outcome(o) => Outcome(o).into_pyobject(py)?.into_any().unbind(),
            Ready::Info(i) => TaskInfo(i).into_pyobject(py)?.into_any().unbind(),
            Ready::Reason(r) => CancelReason(r).into_pyobject(py)?.into_any().unbind(),
            Ready::Text(t) => t.into_pyobject(py)?.into_any().unbind(),
            Ready::Infos(infos) => PyList::new(py, infos.into_iter().map(TaskInfo))?
                .into_any()
                .unbind(),
            Ready::Tool(response) => ToolResponse(response)
                .into_pyobject(py)?
                .into_any()
                .unbind(),
            Ready::Wait(outcome) => crate::convert::to_dict(py, &outcome)?.unbind(),
            Ready::Unit => py.None(),
        })
    }

    /// Blocks up to `limit`; `Ok(None)` when it passed (the wait is stopped).
    pub(crate) fn block_result_within(
        &self,
        py: Python<'_>,
        limit: Option<Duration>,
    ) -> PyResult<Option<Py<PyAny>>> {
        if self.block(py, limit)? {
            self.take(py).map(Some)
        } else {
            self.abort.abort();
            Ok(None)
        }
    }
}

#[pymethods]
impl Pending {
    /// True once the wait has finished.
    fn done(&self) -> bool {
        lock(&self.shared.slot).finished
    }

    /// Calls `callback()` once the wait has finished, from a runtime thread
    /// (or at once, from this thread, when it already has). One callback.
    fn add_done_callback(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        {
            let mut slot = lock(&self.shared.slot);
            if !slot.finished {
                slot.callback = Some(callback);
                return Ok(());
            }
        }
        callback.call0(py).map(drop)
    }

    /// Blocks this thread (GIL released) until the wait finishes or
    /// `timeout` seconds pass; returns whether it finished. Ctrl+C raises
    /// `KeyboardInterrupt` and stops the wait.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let limit = wait_limit("timeout", timeout)?;
        self.block(py, limit)
    }

    /// The value of a finished wait (raises its error). It can be taken once.
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.take(py)
    }

    /// Blocks like `wait()` and returns the value; `TimeoutError` if
    /// `timeout` passed first.
    #[pyo3(signature = (timeout=None))]
    fn block_on(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let limit = wait_limit("timeout", timeout)?;
        match self.block_result_within(py, limit)? {
            Some(v) => Ok(v),
            None => Err(PyTimeoutError::new_err("the wait timed out")),
        }
    }

    /// Stops the wait (the task itself is not affected).
    fn cancel(&self) {
        self.abort.abort();
    }

    fn __await__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let helper = AWAIT_PENDING.import(py, "agent_tasks._bridge", "await_pending")?;
        helper.call1((slf,))?.call_method0("__await__")
    }

    fn __repr__(&self) -> String {
        format!("Pending(done={})", self.done())
    }
}
