//! The native module of the `agent-tasks` Python package
//! (`agent_tasks._native`): thin pyo3 classes over the core crate. Modules:
//! `manager` (the manager and task handle), `context` (Python functions as
//! tasks), `pending` (awaitable and blocking waits over the tokio runtime),
//! `types` (the wire types as Python objects), `convert` and `errors`.
//!
//! The public Python API is the `agent_tasks` package (`python/agent_tasks`),
//! which wraps these classes; see `bindings-python/README.md`.
//!
//! Events, notifications and tool dispatch are not bound yet (the core does
//! not have them): each will be a module of its own here (an event stream as
//! a `Pending`-per-item async iterator, notifications and ack as manager
//! methods, tools as JSON in and out), registered below, and a section of
//! `TaskManager` in `_manager.py`.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

use pyo3::prelude::*;

mod context;
mod convert;
mod errors;
mod manager;
mod pending;
mod types;

/// The module: its classes and the at-exit hook.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<manager::NativeManager>()?;
    m.add_class::<manager::NativeTask>()?;
    m.add_class::<context::Context>()?;
    m.add_class::<pending::Pending>()?;
    m.add_class::<types::TaskInfo>()?;
    m.add_class::<types::TaskResult>()?;
    m.add_class::<types::Outcome>()?;
    m.add_class::<types::PollResult>()?;
    m.add_class::<types::Preview>()?;
    m.add_class::<types::StreamSpan>()?;
    m.add_class::<types::ExitInfo>()?;
    m.add_class::<types::CancelReason>()?;
    m.add_class::<types::OutputStats>()?;
    m.add_function(wrap_pyfunction!(manager::_at_exit, m)?)?;
    m.add("MAX_POLL_BYTES", agent_tasks::MAX_POLL_BYTES)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
