//! The native module of the `agent-tasks` Python package
//! (`agent_tasks._native`): thin pyo3 classes over the core crate. Modules:
//! `manager` (the manager and task handle), `options` (their arguments as
//! the core's options), `exit` (nothing left running at interpreter exit),
//! `context` (Python functions as
//! tasks), `pending` (awaitable and blocking waits over the tokio runtime),
//! `runtime` (the tokio runtime, calls into Python, the exit's quiet point),
//! `types` (the core's values as the classes generated from its schemas),
//! `walk` (one field of a value's `serde` form), `convert` and `errors`.
//!
//! The public Python API is the `agent_tasks` package (`python/agent_tasks`),
//! which wraps these classes; see `bindings-python/README.md`.
//!
//! Events (`events`: a subscription whose waits are `Pending`s, wrapped into
//! async and blocking iterators by `agent_tasks._events`) and the
//! model-facing tools (`tools`: definitions and the `ToolBox` dispatcher,
//! JSON in and out, wrapped by `agent_tasks._tools`) and ACP agents (`acp`:
//! `spawn_acp`, wrapped by `agent_tasks.run_acp`) each have a module.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

use pyo3::prelude::*;

mod acp;
mod context;
mod convert;
mod errors;
mod events;
mod exit;
mod lines;
mod manager;
mod options;
mod pending;
mod runtime;
mod tools;
mod types;
mod walk;

/// Runs this interpreter as the supervisor of a task that outlives its host
/// (`python -m agent_tasks._supervisor --agent-tasks-supervisor DIR`, run
/// by the library): the process's own arguments say which task. Returns
/// the exit code.
#[pyfunction]
fn supervisor_main(py: Python<'_>) -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    py.detach(|| agent_tasks::supervisor_main(args))
}

/// The module: its classes and the at-exit hook.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<manager::NativeManager>()?;
    m.add_class::<manager::NativeTask>()?;
    m.add_class::<context::Context>()?;
    m.add_class::<pending::Pending>()?;
    m.add_class::<types::WireValue>()?;
    m.add_class::<lines::LineSplitter>()?;
    m.add_class::<events::NativeEvents>()?;
    m.add_class::<tools::NativeToolBox>()?;
    m.add_function(wrap_pyfunction!(tools::tool_definitions, m)?)?;
    m.add_function(wrap_pyfunction!(exit::_at_exit, m)?)?;
    m.add_function(wrap_pyfunction!(acp::spawn_acp, m)?)?;
    m.add_function(wrap_pyfunction!(types::cancel_reason_text, m)?)?;
    m.add_function(wrap_pyfunction!(lines::closest_name, m)?)?;
    m.add_function(wrap_pyfunction!(supervisor_main, m)?)?;
    m.add("MAX_POLL_BYTES", agent_tasks::MAX_POLL_BYTES)?;
    m.add("DEFAULT_POLL_BYTES", agent_tasks::DEFAULT_POLL_BYTES)?;
    m.add("DEFAULT_PREVIEW_BYTES", agent_tasks::DEFAULT_PREVIEW_BYTES)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
