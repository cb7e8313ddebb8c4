//! The bridge between the tokio runtime and Python's two ways of waiting.
//! A Rust future that waits (collect, cancel, a steering message...) is
//! spawned on the module's runtime and handed to Python as a [`Pending`]:
//! `await pending` suspends the caller's coroutine (the result is delivered
//! with `loop.call_soon_threadsafe`), `pending.wait()` blocks a thread with
//! the GIL released, in short slices so Ctrl+C interrupts it. Dropping or
//! cancelling a `Pending` aborts the Rust future.
//!
//! A wait's value is anything that converts into a Python object
//! ([`Deliver`]); each module hands its own types over, so this one knows
//! none of them.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::IntoPyObjectExt;
use tokio::task::AbortHandle;

use crate::convert::limit;
use crate::errors::core_err;
use crate::runtime::{call_python, detached_wait, lock, runtime};

/// How long a blocking wait sleeps between checks for Ctrl+C.
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// A wait's value, converted into a Python object when Python takes it
/// (with the GIL, on the taker's thread).
pub(crate) trait Deliver: Send + 'static {
    /// The Python object.
    fn deliver(self: Box<Self>, py: Python<'_>) -> PyResult<Py<PyAny>>;
}

impl<T> Deliver for T
where
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    fn deliver(self: Box<Self>, py: Python<'_>) -> PyResult<Py<PyAny>> {
        (*self).into_py_any(py)
    }
}

/// Why a wait gave no value.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A core error: raised as the matching `agent_tasks` exception.
    Core(agent_tasks::Error),
    /// The wait's time limit passed first: raised as `TimeoutError` (the
    /// binding's one timeout rule, as `asyncio.wait_for` has it).
    TimedOut(String),
}

impl From<agent_tasks::Error> for Failure {
    fn from(err: agent_tasks::Error) -> Self {
        Failure::Core(err)
    }
}

impl Failure {
    fn into_pyerr(self) -> PyErr {
        match self {
            Failure::Core(e) => core_err(e),
            Failure::TimedOut(message) => PyTimeoutError::new_err(message),
        }
    }
}

/// A wait's end: its value or why there is none.
type Completion = Result<Box<dyn Deliver>, Failure>;

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
pub(crate) fn spawn<F, T>(fut: F) -> PyResult<Pending>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: Deliver,
{
    let shared = Arc::new(Shared::default());
    let done = shared.clone();
    let handle = runtime()?.spawn(async move {
        let completion = fut.await.map(|value| Box::new(value) as Box<dyn Deliver>);
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
        // A limit too large for the clock is no limit (never an overflow).
        let deadline = limit.and_then(|l| Instant::now().checked_add(l));
        loop {
            let slice = match deadline {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(SIGNAL_SLICE),
                None => SIGNAL_SLICE,
            };
            let shared = &self.shared;
            let finished = detached_wait(py, || {
                let slot = lock(&shared.slot);
                let (slot, _) = shared
                    .cond
                    .wait_timeout_while(slot, slice, |s| !s.finished)
                    .unwrap_or_else(|p| p.into_inner());
                slot.finished
            });
            let Some(finished) = finished else {
                self.abort.abort();
                return Err(PyRuntimeError::new_err(
                    "the Python interpreter is exiting: agent_tasks waits no more",
                ));
            };
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
        match done {
            Some(Ok(value)) => value.deliver(py),
            Some(Err(failure)) => Err(failure.into_pyerr()),
            None => Err(PyRuntimeError::new_err("the result was already taken")),
        }
    }

    /// Blocks up to `limit` and gives the value; `TimeoutError` when the
    /// limit passed first (the wait is stopped).
    pub(crate) fn block_value(
        &self,
        py: Python<'_>,
        limit: Option<Duration>,
    ) -> PyResult<Py<PyAny>> {
        if self.block(py, limit)? {
            self.take(py)
        } else {
            self.abort.abort();
            Err(PyTimeoutError::new_err(format!(
                "the wait timed out after {} s",
                limit.unwrap_or_default().as_secs_f64()
            )))
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
    fn wait(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let limit = limit("timeout", timeout)?;
        self.block(py, limit)
    }

    /// The value of a finished wait (raises its error). It can be taken once.
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.take(py)
    }

    /// Blocks like `wait()` and returns the value; `TimeoutError` if
    /// `timeout` passed first.
    #[pyo3(signature = (timeout=None))]
    fn block_on(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let limit = limit("timeout", timeout)?;
        self.block_value(py, limit)
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
