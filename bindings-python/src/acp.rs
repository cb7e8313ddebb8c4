//! ACP agents as tasks (`agent_tasks.run_acp`): converts the Python
//! arguments to the core's [`AcpTask`] and its policies. A permission
//! callback is a plain Python function, called on a worker thread with the
//! GIL; what the answers mean is the core's ([`PermissionDecision::from_answer`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use agent_tasks::acp::{
    AcpTask, FileAccess, PermissionDecision, PermissionPolicy, PermissionRequest,
};
use agent_tasks::SpawnOptions;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};

use crate::convert::{duration, size};
use crate::errors::{core_err, invalid_argument};
use crate::manager::{NativeManager, NativeTask};

/// The `permissions` argument: `"allow"`, `"deny"`, or a function of the
/// request (a dict) answering `True` (allow), `False` (deny), `None`
/// (cancel) or an option id.
fn policy(value: Option<&Bound<'_, PyAny>>) -> PyResult<PermissionPolicy> {
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

/// Starts an ACP agent (`argv`) with `goal` as its first prompt, in the
/// background with no task timeout unless `timeout` (seconds) is given. Its
/// terminals are process tasks of `manager`.
#[pyfunction]
#[pyo3(signature = (
    manager, argv, goal, *, cwd=None, env=None, permissions=None, files="cwd",
    show_thoughts=false, idle_timeout=None, cancel_grace=None, kill_grace=None,
    handshake_timeout=None, max_message_bytes=None,
    timeout=None, owner=None, description=None, keep_alive=false,
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn_acp(
    manager: &NativeManager,
    argv: Vec<OsString>,
    goal: String,
    cwd: Option<PathBuf>,
    env: Option<HashMap<OsString, OsString>>,
    permissions: Option<&Bound<'_, PyAny>>,
    files: &str,
    show_thoughts: bool,
    idle_timeout: Option<f64>,
    cancel_grace: Option<f64>,
    kill_grace: Option<f64>,
    handshake_timeout: Option<f64>,
    max_message_bytes: Option<&Bound<'_, PyAny>>,
    timeout: Option<f64>,
    owner: Option<String>,
    description: Option<String>,
    keep_alive: bool,
) -> PyResult<NativeTask> {
    let core = manager.core();
    let task = acp_template(
        argv,
        cwd,
        env,
        permissions,
        files,
        show_thoughts,
        [idle_timeout, cancel_grace, kill_grace, handshake_timeout],
        max_message_bytes,
    )?
    .goal(goal)
    .terminals(core);
    let mut options = match timeout {
        Some(s) => SpawnOptions::background().timeout(duration("timeout", s)?),
        None => SpawnOptions::background().no_timeout(),
    }
    .keep_alive(keep_alive);
    if let Some(owner) = owner {
        options = options.owner(owner);
    }
    if let Some(text) = description {
        options = options.description(text);
    }
    let handle = core.spawn(task, options).map_err(core_err)?;
    Ok(NativeTask::of_process(handle))
}

/// The ACP task `run_acp` and `ToolBox.register_acp_agent` describe, with
/// an empty goal: a template each start gives its goal
/// ([`AcpTask::goal`]). `timing`: the idle timeout, cancel grace, kill
/// grace and handshake timeout in seconds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn acp_template(
    argv: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Option<HashMap<OsString, OsString>>,
    permissions: Option<&Bound<'_, PyAny>>,
    files: &str,
    show_thoughts: bool,
    timing: [Option<f64>; 4],
    max_message_bytes: Option<&Bound<'_, PyAny>>,
) -> PyResult<AcpTask> {
    let files: FileAccess = agent_tasks::parse_name("files", files).map_err(core_err)?;
    let mut task = AcpTask::new(argv, "")
        .permissions(policy(permissions)?)
        .files(files)
        .show_thoughts(show_thoughts);
    if let Some(dir) = cwd {
        task = task.cwd(dir);
    }
    for (key, value) in env.into_iter().flatten() {
        task = task.env(key, value);
    }
    let [idle, cancel, kill, handshake] = timing;
    if let Some(s) = idle {
        task = task.idle_timeout(duration("idle_timeout", s)?);
    }
    if let Some(s) = cancel {
        task = task.cancel_grace(duration("cancel_grace", s)?);
    }
    if let Some(s) = kill {
        task = task.kill_grace(duration("kill_grace", s)?);
    }
    if let Some(s) = handshake {
        task = task.handshake_timeout(duration("handshake_timeout", s)?);
    }
    if let Some(v) = max_message_bytes {
        task = task.max_message_bytes(size("max_message_bytes", v)?);
    }
    Ok(task)
}
