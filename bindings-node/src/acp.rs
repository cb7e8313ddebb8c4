//! ACP agents as tasks (`runAcp` in `index.js`): converts the JS options to
//! the core's [`AcpTask`] and its policies. A permission callback is a JS
//! function called on the JS thread through a [`ThreadsafeFunction`]; the
//! wrapper turns its answer (sync or async) into JSON text, and what the
//! answers mean is the core's ([`PermissionDecision::from_answer`]).

use std::sync::Arc;

use agent_tasks::acp::{AcpTask, PermissionDecision, PermissionPolicy, PermissionRequest};
use agent_tasks::AcpOptions;
use napi::bindgen_prelude::{Object, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;
use serde_json::Value;

use crate::errors::CoreResultExt;
use crate::manager::{open, NativeTaskManager};
use crate::options::CoreOptions;
use crate::values::Js;

/// The wrapper's permission function: called with the request as JSON text,
/// it resolves with the answer (`true`, `false`, `null` or an option id).
pub(crate) type PermissionFn = ThreadsafeFunction<String, Promise<Value>, String, Status, false>;

fn asking(callback: PermissionFn) -> PermissionPolicy {
    let callback = Arc::new(callback);
    PermissionPolicy::ask(move |request: PermissionRequest| {
        let callback = callback.clone();
        async move {
            // A callback that cannot be called, throws or answers nonsense denies.
            let Ok(json) = serde_json::to_string(&request) else {
                return PermissionDecision::Deny;
            };
            let answer = match callback.call_async(json).await {
                Ok(promise) => promise.await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(Value::Bool(allow)) => PermissionDecision::from_answer(Some(allow), None),
                Ok(Value::Null) => PermissionDecision::from_answer(None, None),
                Ok(Value::String(option)) => PermissionDecision::from_answer(None, Some(option)),
                _ => PermissionDecision::Deny,
            }
        }
    })
}

/// Starts an ACP agent (`argv`) in the background with `goal` as its first
/// prompt; its terminals are process tasks of `manager`. Internal: use
/// `runAcp`.
#[napi(
    ts_args_type = "manager: NativeTaskManager, argv: Array<string>, goal: string, options?: object, permissions?: string, permissionFn?: (request: string) => Promise<unknown>",
    ts_return_type = "TaskInfo"
)]
// Registered with Node by napi-rs, which test builds leave out.
#[cfg_attr(test, allow(dead_code))]
pub fn native_spawn_acp(
    manager: &NativeTaskManager,
    argv: Vec<String>,
    goal: String,
    options: Option<Object>,
    permissions: Option<String>,
    permission_fn: Option<PermissionFn>,
) -> napi::Result<Js<agent_tasks::TaskInfo>> {
    let core = open(&manager.shared())?;
    let o = AcpOptions::read("acp", options)?;
    let task = acp_template(argv, &o, permissions, permission_fn)?
        .goal(goal)
        .terminals(&core);
    Ok(Js(core.spawn(task, o.spawn_options().js()?).js()?.info()))
}

/// The ACP task `runAcp` and `ToolBox.registerAcpAgent` describe, with an
/// empty goal: a template each start gives its goal ([`AcpTask::goal`]).
/// The permissions are a function's answers, or the policy named.
pub(crate) fn acp_template(
    argv: Vec<String>,
    o: &AcpOptions,
    permissions: Option<String>,
    permission_fn: Option<PermissionFn>,
) -> napi::Result<AcpTask> {
    let permissions = match (permission_fn, permissions) {
        (Some(callback), _) => asking(callback),
        (None, Some(name)) => PermissionPolicy::named(&name).js()?,
        (None, None) => PermissionPolicy::default(),
    };
    o.template(argv, permissions).js()
}
