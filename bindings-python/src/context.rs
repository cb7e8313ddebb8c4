//! Python functions as tasks. The core runs a [`FnTask`] whose body hands a
//! [`Context`] to a Python *starter* (made by `agent_tasks._manager`): for a
//! coroutine function it schedules the coroutine on an event loop, for a
//! plain function it starts a worker thread. The Python side reports the
//! end through the context (`_complete` / `_fail`); the body waits for that,
//! and when the core asks the task to stop it calls the canceller the
//! starter returned (which cancels the coroutine's asyncio task). Lifecycle
//! decisions (status, timeouts, stop grace) stay in the core.

use std::sync::{Arc, Mutex};

use agent_tasks::{BackgroundTask, BoxError, Stream, TaskOutcome};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::convert::{limit, opt_text, to_json, with_bytes};
use crate::errors::invalid_argument;
use crate::pending::{spawn, Failure, Pending};
use crate::runtime::{call_python, lock};
use crate::types::Wire;

/// What the Python side reports when the function ends.
type Report = TaskOutcome;

/// What a running Python task sees: its output, its stop signal with the
/// reason, and its steering messages. Exposed to Python as `TaskContext`.
#[pyclass(frozen, module = "agent_tasks._native", name = "TaskContext")]
pub struct Context {
    ctx: Arc<agent_tasks::TaskContext>,
    done: Mutex<Option<oneshot::Sender<Report>>>,
}

impl Context {
    fn report(&self, report: Report) {
        let sender = lock(&self.done).take();
        if let Some(sender) = sender {
            // The task may already have been given up on (stop grace passed).
            let _ = sender.send(report);
        }
    }
}

/// A stream by name (the core's rule: `stdout`, `stderr`, or a name of the
/// task's own); `stdout` when none is given.
fn stream_of(name: Option<&str>) -> Stream {
    name.map(Stream::named).unwrap_or_default()
}

#[pymethods]
impl Context {
    /// The task's id.
    #[getter]
    fn id(&self) -> &str {
        self.ctx.id().as_str()
    }

    /// Appends `data` (`str`, `bytes` or `bytearray`) to the task's output,
    /// on `stream` (`"stdout"` by default, `"stderr"`, or a name of its own).
    #[pyo3(signature = (data, stream=None))]
    fn write(&self, data: &Bound<'_, PyAny>, stream: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let stream = stream_of(opt_text("stream", stream)?.as_deref());
        with_bytes("data", data, |bytes| self.ctx.write(stream, bytes))
    }

    /// True once the task was asked to stop.
    #[getter]
    fn cancelled(&self) -> bool {
        self.ctx.is_cancelled()
    }

    /// Why the task was asked to stop, once it was.
    #[getter]
    fn cancel_reason(&self) -> Option<Wire<agent_tasks::CancelReason>> {
        self.ctx
            .cancel_signal()
            .reason()
            .map(|r| Wire("CancelReason", r))
    }

    /// Awaitable: waits until the task is asked to stop; gives the
    /// `CancelReason`.
    fn wait_cancelled(&self) -> PyResult<Pending> {
        let signal = self.ctx.cancel_signal().clone();
        spawn(async move { Ok::<_, Failure>(Wire("CancelReason", signal.cancelled().await)) })
    }

    /// Blocks until the task is asked to stop and returns the
    /// `CancelReason`; `TimeoutError` when `timeout` seconds pass first.
    #[pyo3(signature = (timeout=None))]
    fn wait_cancelled_blocking(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let limit = limit("timeout", timeout)?;
        self.wait_cancelled()?.block_value(py, limit)
    }

    /// Awaitable: the next steering message as text, or `None` once the task
    /// is asked to stop.
    fn recv(&self) -> PyResult<Pending> {
        let ctx = self.ctx.clone();
        spawn(async move {
            let text = tokio::select! {
                biased;
                message = ctx.recv() => message.map(|m| m.text()),
                _ = ctx.cancelled() => None,
            };
            Ok::<_, Failure>(text)
        })
    }

    /// Awaitable: the next steering message as the bytes sent (a process
    /// task's stdin input, keys typed by `send_keys`), or `None` once the
    /// task is asked to stop or its input ended.
    fn recv_bytes(&self) -> PyResult<Pending> {
        let ctx = self.ctx.clone();
        spawn(async move {
            let bytes = tokio::select! {
                biased;
                message = ctx.recv() => message.map(|m| std::borrow::Cow::<'static, [u8]>::Owned(m.into_bytes())),
                _ = ctx.cancelled() => None,
            };
            Ok::<_, Failure>(bytes)
        })
    }

    /// Blocks for the next steering message; `None` once the task is asked
    /// to stop; `TimeoutError` when `timeout` seconds pass first.
    #[pyo3(signature = (timeout=None))]
    fn recv_blocking(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let limit = limit("timeout", timeout)?;
        self.recv()?.block_value(py, limit)
    }

    /// A steering message if one is waiting, without waiting.
    fn try_recv(&self) -> Option<String> {
        self.ctx.try_recv().map(|m| m.text())
    }

    /// Reports success with the function's return value (converted to JSON;
    /// a value JSON cannot hold makes the task fail, naming the type).
    fn _complete(&self, value: &Bound<'_, PyAny>) {
        let report = match to_json(value) {
            Ok(value) => TaskOutcome::completed(value),
            Err(what) => TaskOutcome::failed(format!(
                "the task's return value cannot be stored as JSON: {what}"
            )),
        };
        self.report(report);
    }

    /// Reports failure with an error text (the traceback).
    fn _fail(&self, error: String) {
        self.report(TaskOutcome::failed(error));
    }

    /// Reports how a process the task ran elsewhere ended (a placed task:
    /// `agent_tasks.ray`), so its result reads as a local process's:
    /// `exit` (`{"code": ..., "signal": ...}`) and `usage` in the core's
    /// wire form; `error` None for success (then `value` is the result's
    /// value). A malformed `exit` or `usage` is an `InvalidArgument`.
    #[pyo3(signature = (exit, error=None, usage=None, value=None))]
    fn _finish_process(
        &self,
        exit: &Bound<'_, PyAny>,
        error: Option<String>,
        usage: Option<&Bound<'_, PyAny>>,
        value: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        fn wire<T: serde::de::DeserializeOwned>(name: &str, v: &Bound<'_, PyAny>) -> PyResult<T> {
            let json = to_json(v).map_err(|what| invalid_argument(name, what))?;
            serde_json::from_value(json).map_err(|e| invalid_argument(name, e.to_string()))
        }
        let exit: agent_tasks::ExitInfo = wire("exit", exit)?;
        let usage: Option<agent_tasks::Usage> = match usage {
            Some(u) if !u.is_none() => Some(wire("usage", u)?),
            _ => None,
        };
        let outcome = match error {
            None => TaskOutcome::completed(match value {
                Some(v) => to_json(v).map_err(|what| invalid_argument("value", what))?,
                None => Value::Null,
            }),
            Some(error) => TaskOutcome::failed(error),
        };
        self.report(outcome.with_exit(exit).with_usage(usage));
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("TaskContext(id={:?})", self.ctx.id().as_str())
    }
}

static FORMAT_EXCEPTION: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A Python error as its traceback text.
fn traceback_text(py: Python<'_>, err: &PyErr) -> String {
    let formatted = FORMAT_EXCEPTION
        .import(py, "traceback", "format_exception")
        .and_then(|f| f.call1((err.value(py),)))
        .and_then(|lines| lines.extract::<Vec<String>>());
    match formatted {
        Ok(lines) => lines.concat(),
        Err(_) => err.to_string(),
    }
}

/// Calls `f` into Python for the start of a `what` (`task`, `agent`): on
/// the runtime's blocking pool, as taking the GIL may take a while (never on
/// a worker); a Python error as its traceback.
async fn call_on_pool<F>(what: &'static str, f: F) -> Result<Py<PyAny>, BoxError>
where
    F: for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let done = tokio::task::spawn_blocking(move || {
        call_python(|py| f(py).map_err(|e| traceback_text(py, &e)))
    })
    .await;
    match done {
        Err(join_error) => Err(format!("the {what} could not be started: {join_error}").into()),
        Ok(None) => Err("the Python interpreter is shutting down".into()),
        Ok(Some(Err(traceback))) => {
            Err(format!("the {what} could not be started:\n{traceback}").into())
        }
        Ok(Some(Ok(value))) => Ok(value),
    }
}

/// The body of a Python task: start it through `starter`, wait for its
/// report, and pass a stop request on to it.
async fn run(starter: Py<PyAny>, ctx: agent_tasks::TaskContext) -> TaskOutcome {
    match started(starter, ctx).await {
        Ok(outcome) => outcome,
        Err(error) => TaskOutcome::failed(error.to_string()),
    }
}

async fn started(
    starter: Py<PyAny>,
    ctx: agent_tasks::TaskContext,
) -> Result<TaskOutcome, BoxError> {
    let ctx = Arc::new(ctx);
    let (tx, mut rx) = oneshot::channel::<Report>();
    let handle_ctx = ctx.clone();
    let canceller = call_on_pool("task", move |py| {
        let done = Mutex::new(Some(tx));
        starter.call1(
            py,
            (Py::new(
                py,
                Context {
                    ctx: handle_ctx,
                    done,
                },
            )?,),
        )
    })
    .await?;
    let report = tokio::select! {
        report = &mut rx => report,
        reason = ctx.cancelled() => {
            let reason = reason.to_string();
            let _ = tokio::task::spawn_blocking(move || {
                call_python(|py| {
                    if !canceller.is_none(py) {
                        if let Err(e) = canceller.call1(py, (reason,)) {
                            e.write_unraisable(py, None);
                        }
                    }
                })
            })
            .await;
            // Wait for the function to wind down; the core gives up on it
            // after the stop grace.
            rx.await
        }
    };
    report.map_err(|_| "the Python task ended without reporting a result".into())
}

/// A core agent whose runner is a Python function: `factory(args)` (called
/// on the runtime's blocking pool, with the GIL) returns the starter of the
/// function bound to the model's arguments (see `agent_tasks._tools`); the
/// rest is a Python task's [`run`].
pub(crate) fn python_agent(
    name: String,
    description: String,
    factory: Py<PyAny>,
) -> agent_tasks::tools::Agent {
    let factory = Arc::new(factory);
    agent_tasks::tools::Agent::new(name, description, move |args: Value, ctx| {
        let factory = factory.clone();
        async move {
            let starter = call_on_pool("agent", move |py| {
                factory.call1(py, (crate::types::to_dict(py, &args)?,))
            })
            .await?;
            let outcome = run(starter, ctx).await;
            match outcome.error {
                Some(error) if !outcome.success => Err(error.into()),
                _ => Ok(outcome.value.unwrap_or(Value::Null)),
            }
        }
    })
}

/// A core task that runs a Python function through `starter`.
pub(crate) fn python_task(
    starter: Py<PyAny>,
    description: String,
    kind: String,
) -> Box<dyn BackgroundTask> {
    Box::new(PyTask {
        starter,
        description,
        kind,
    })
}

/// A Python function as a core task: its report is the whole outcome (a
/// value or an error, and for a process it ran elsewhere, its exit and
/// usage).
struct PyTask {
    starter: Py<PyAny>,
    description: String,
    kind: String,
}

#[agent_tasks::async_trait]
impl BackgroundTask for PyTask {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn description(&self) -> String {
        self.description.clone()
    }

    async fn run(self: Box<Self>, ctx: agent_tasks::TaskContext) -> TaskOutcome {
        run(self.starter, ctx).await
    }
}
