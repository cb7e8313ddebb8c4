//! Core [`agent_tasks::Error`]s as Python exceptions. The exception classes
//! live in `agent_tasks/_errors.py` (so they can also subclass `ValueError`,
//! `LookupError` or `OSError`), one per core error code; each carries the
//! core error's stable `code` and the fields the error names (`task_id`,
//! `argument`, ...).

use std::path::Path;

use agent_tasks::Error;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// A path as a `str` (`os.fspath` of it: non-UTF-8 bytes as surrogates).
fn path_str<'py>(py: Python<'py>, path: &Path) -> PyResult<Bound<'py, PyAny>> {
    path.into_pyobject(py)?.call_method0("__fspath__")
}

fn build(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let module = ERRORS
        .get_or_try_init(py, || py.import("agent_tasks._errors").map(Bound::unbind))?
        .bind(py);
    // The class whose `code` is the error's (`_errors.BY_CODE`).
    let base = module.getattr("AgentTasksError")?;
    let class = module
        .getattr("BY_CODE")?
        .call_method1("get", (err.code(), base))?;
    let details = PyDict::new(py);
    details.set_item("code", err.code())?;
    match err {
        Error::TaskNotFound { id } => details.set_item("task_id", id)?,
        Error::InvalidTaskId { id, reason } => {
            details.set_item("task_id", id)?;
            details.set_item("reason", reason)?;
        }
        Error::CapacityExceeded {
            scope,
            limit,
            running,
        } => {
            details.set_item("scope", scope)?;
            details.set_item("limit", limit)?;
            details.set_item("running", running)?;
        }
        Error::InvalidArgument { name, .. } => details.set_item("argument", name)?,
        Error::NotReceiving { id, reason } => {
            details.set_item("task_id", id)?;
            details.set_item("reason", reason)?;
        }
        Error::RootInUse { path } => details.set_item("path", path_str(py, path)?)?,
        Error::LimitsUnavailable { kinds, reason } => {
            details.set_item("kinds", kinds)?;
            details.set_item("reason", reason)?;
        }
        Error::Io { path, source, .. } => {
            details.set_item("path", path_str(py, path)?)?;
            if let Some(errno) = source.raw_os_error() {
                details.set_item("errno", errno)?;
            }
        }
        _ => {}
    }
    let value = class.call((err.to_string(),), Some(&details))?;
    Ok(PyErr::from_value(value))
}

/// Converts a core error into the matching `agent_tasks` exception.
pub(crate) fn core_err(err: Error) -> PyErr {
    Python::attach(|py| build(py, &err).unwrap_or_else(|failure| failure))
}

/// An `InvalidArgument` exception naming `name`.
pub(crate) fn invalid_argument(name: &str, message: impl Into<String>) -> PyErr {
    core_err(Error::InvalidArgument {
        name: name.to_string(),
        message: message.into(),
    })
}
