//! ACP agents as tasks (`agent_tasks.run_acp`): the options are the core's
//! ([`AcpOptions`]); the permission policy is converted here. A permission
//! callback is a plain Python function, called on a worker thread with the
//! GIL; what the answers mean is the core's ([`PermissionDecision::from_answer`]).

use std::ffi::OsString;

use agent_tasks::acp::{PermissionDecision, PermissionPolicy, PermissionRequest};
use agent_tasks::AcpOptions;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};

use crate::errors::{core_err, invalid_argument};
use crate::manager::{NativeManager, NativeTask};
use crate::options::parse;

/// The `permissions` argument: `"allow"`, `"deny"`, or a function of the
/// request (a dict) answering `True` (allow), `False` (deny), `None`
/// (cancel) or an option id.
pub(crate) fn policy(value: Option<&Bound<'_, PyAny>>) -> PyResult<PermissionPolicy> {
    let Some(value) = value else {
        return Ok(PermissionPolicy::default());
    };
    if let Ok(name) = value.cast::<PyString>() {
        return PermissionPolicy::named(name.to_str()?).map_err(core_err);
    }
    if !value.is_callable() {
        return Err(invalid_argument(
            "permissions",
            "must be \"allow\", \"deny\" or a function of the request",
        ));
    }
    let callback: Py<PyAny> = value.clone().unbind();
    let callback = std::sync::Arc::new(callback);
    Ok(PermissionPolicy::ask(move |request: PermissionRequest| {
        let callback = callback.clone();
        async move {
            let asked = tokio::task::spawn_blocking(move || {
                Python::attach(|py| ask(py, &callback, &request))
            });
            // A callback that fails (raises, answers nonsense) denies.
            asked.await.unwrap_or(PermissionDecision::Deny)
        }
    }))
}

fn ask(py: Python<'_>, callback: &Py<PyAny>, request: &PermissionRequest) -> PermissionDecision {
    let answer = serde_json::to_value(request)
        .map_err(|e| e.to_string())
        .and_then(|json| crate::types::to_dict(py, &json).map_err(|e| e.to_string()))
        .and_then(|dict| callback.call1(py, (dict,)).map_err(|e| e.to_string()));
    let answer = match answer {
        Ok(answer) => answer.into_bound(py),
        Err(error) => {
            eprintln!(
                "agent_tasks: the permission callback failed, so the request is denied: {error}"
            );
            return PermissionDecision::Deny;
        }
    };
    if answer.is_none() {
        return PermissionDecision::from_answer(None, None);
    }
    if let Ok(flag) = answer.cast::<PyBool>() {
        return PermissionDecision::from_answer(Some(flag.is_true()), None);
    }
    match answer.extract::<String>() {
        Ok(option) => PermissionDecision::from_answer(None, Some(option)),
        Err(_) => PermissionDecision::Deny,
    }
}

/// Starts an ACP agent (`argv`) with `goal` as its first prompt and
/// `options` (a dict of the core's [`agent_tasks::AcpOptions`]): in the
/// background with no task timeout unless `timeout` (seconds) is given. Its
/// terminals are process tasks of `manager`.
#[pyfunction]
pub(crate) fn spawn_acp(
    manager: &NativeManager,
    argv: Vec<OsString>,
    goal: String,
    permissions: Option<&Bound<'_, PyAny>>,
    options: &Bound<'_, PyAny>,
) -> PyResult<NativeTask> {
    let core = manager.core();
    let options = parse::<AcpOptions>("run_acp", options)?;
    let task = options
        .template(argv, policy(permissions)?)
        .map_err(core_err)?
        .goal(goal)
        .terminals(core);
    let spawn_options = options.spawn_options().map_err(core_err)?;
    let handle = core.spawn(task, spawn_options).map_err(core_err)?;
    Ok(NativeTask::of_process(handle))
}
