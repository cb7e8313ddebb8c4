//! JS async functions as tasks. The function is wrapped in the core's
//! [`FnTask`]: when the task starts, the function is called on the JS thread
//! through a [`ThreadsafeFunction`] with a [`NativeTaskContext`], and the
//! task awaits the Promise it returns. The JS wrapper (`index.js`) turns the
//! function's value or thrown error into a [`TaskFnOutcome`], so a throw
//! becomes a `failed` task with the error's message and stack.
//!
//! A registered subagent (`ToolBox.registerAgent`) runs the same way: its
//! runner is called once per delegated task, with the model's arguments on
//! the context ([`NativeTaskContext::arguments`]).
//!
//! Keeping the process alive: the thread-safe function holds the event loop
//! only until the one call is made, and is released right after it. While the
//! function runs, the wrapper awaits `waitCancelled()` (to abort `ctx.signal`),
//! which settles when the task is cancelled or ends; so a running JS task
//! keeps Node alive like any pending async function, and an ended one holds
//! nothing. An agent's runner is called many times over the toolbox's life,
//! so its thread-safe function is weak: a registered agent never keeps Node
//! alive; a running subagent does, as a running JS task does.

use std::future::Future;
use std::sync::Arc;

use agent_tasks::tools::Agent;
use agent_tasks::{BackgroundTask, BoxError, FnTask, Stream, TaskContext};
use napi::bindgen_prelude::{BufferSlice, Either, Promise, PromiseRaw};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, Status};
use napi_derive::napi;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::values::Js;

/// What the wrapper's task function resolves with: the JSON text of the
/// returned value, or the error text of a throw.
#[napi(object)]
pub struct TaskFnOutcome {
    /// True if the function returned, false if it threw.
    pub ok: bool,
    /// `JSON.stringify` of the returned value (`null` for `undefined`).
    pub json: Option<String>,
    /// The thrown error's stack (or message), for a throw.
    pub error: Option<String>,
}

/// The JS function a task runs: called once with the context, it returns a
/// Promise of the outcome.
pub(crate) type TaskFn = JsRunner<false>;

/// A registered agent's runner: called once per delegated task; weak, so a
/// registered agent never keeps Node alive.
pub(crate) type AgentFn = JsRunner<true>;

/// A JS function called with a task's context that returns a Promise of the
/// outcome; `WEAK` says whether it holds Node's event loop.
pub(crate) type JsRunner<const WEAK: bool> = ThreadsafeFunction<
    NativeTaskContext,
    Promise<TaskFnOutcome>,
    NativeTaskContext,
    Status,
    false,
    WEAK,
>;

struct Shared {
    ctx: TaskContext,
    /// A subagent's arguments (the model's); null for a JS task.
    arguments: Value,
    /// Cancelled when the task's run has ended (returned, failed, or was
    /// dropped after its stop grace): writes are refused from then on and
    /// pending `recv`/`waitCancelled` calls settle.
    done: CancellationToken,
}

/// Cancels its token when dropped: marks a JS task's run as ended however
/// the run's future ends (completes, or is dropped by the manager).
struct DoneOnDrop(CancellationToken);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// What a JS task's function is given (wrapped by `index.js` into the
/// `TaskContext` with `write`, `signal` and `recv`). Internal: use the
/// wrapper's context.
#[napi]
pub struct NativeTaskContext {
    shared: Arc<Shared>,
}

#[napi]
impl NativeTaskContext {
    /// The task's id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.shared.ctx.id().to_string()
    }

    /// A subagent's arguments, as the model gave them (null for a task
    /// started by `spawn`).
    #[napi(getter, ts_return_type = "any")]
    pub fn arguments(&self) -> Value {
        self.shared.arguments.clone()
    }

    /// Appends text or bytes to the task's output (`stream` defaults to
    /// `stdout`). Returns false, writing nothing, once the task has ended.
    #[napi]
    pub fn write(&self, data: Either<String, BufferSlice>, stream: Option<String>) -> bool {
        if self.shared.done.is_cancelled() {
            return false;
        }
        let stream = stream.map_or(Stream::STDOUT, Stream::named);
        match &data {
            Either::A(text) => self.shared.ctx.write(stream, text.as_bytes()),
            Either::B(bytes) => self.shared.ctx.write(stream, bytes),
        }
        true
    }

    /// The next steering message as text, or null once no more can come
    /// (the task ended).
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn recv<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Option<String>>> {
        let shared = self.shared.clone();
        env.spawn_future(async move {
            tokio::select! {
                message = shared.ctx.recv() => Ok(message.map(|m| m.text())),
                _ = shared.done.cancelled() => Ok(None),
            }
        })
    }

    /// A steering message if one is waiting, without waiting.
    #[napi]
    pub fn try_recv(&self) -> Option<String> {
        self.shared.ctx.try_recv().map(|m| m.text())
    }

    /// Settles with the cancel reason when a stop is asked for, or with null
    /// when the task ends first.
    #[napi(ts_return_type = "Promise<CancelReason | null>")]
    pub fn wait_cancelled<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Option<Js<agent_tasks::CancelReason>>>> {
        let shared = self.shared.clone();
        env.spawn_future(async move {
            tokio::select! {
                biased;
                reason = shared.ctx.cancelled() => Ok(Some(Js(reason))),
                _ = shared.done.cancelled() => Ok(None),
            }
        })
    }

    /// Settles (with nothing) once the task's run has ended; writes are
    /// refused from then on.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn wait_ended<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let shared = self.shared.clone();
        env.spawn_future(async move {
            shared.done.cancelled().await;
            Ok(())
        })
    }
}

/// Runs a task's JS function: calls it on the JS thread with the context
/// (and `arguments`), awaits its Promise, and turns the outcome into the
/// task's value or error.
async fn run_js<C, F>(call: C, ctx: TaskContext, arguments: Value) -> Result<Value, BoxError>
where
    C: FnOnce(NativeTaskContext) -> F,
    F: Future<Output = napi::Result<Promise<TaskFnOutcome>>>,
{
    let done = CancellationToken::new();
    let _done = DoneOnDrop(done.clone());
    let shared = Arc::new(Shared {
        ctx,
        arguments,
        done,
    });
    let called = call(NativeTaskContext {
        shared: shared.clone(),
    })
    .await;
    let promise = called.map_err(|e| -> BoxError {
        format!("the task function could not be called: {}", e.reason).into()
    })?;
    let outcome = promise.await.map_err(|e| -> BoxError { e.reason.into() })?;
    if outcome.ok {
        let json = outcome.json.as_deref().unwrap_or("null");
        serde_json::from_str(json)
            .map_err(|e| -> BoxError { format!("the task's return value is not JSON: {e}").into() })
    } else {
        Err(outcome
            .error
            .unwrap_or_else(|| "the task function failed".to_string())
            .into())
    }
}

/// Wraps a JS function as a core [`FnTask`] of `kind` (default `fn`).
pub(crate) fn js_task(
    description: String,
    kind: Option<String>,
    func: TaskFn,
) -> Box<dyn BackgroundTask> {
    let task = FnTask::new(description, move |ctx: TaskContext| async move {
        let call = |native| async move {
            let called = func.call_async_catch(native).await;
            // One call per task: release the function so it holds the
            // event loop no longer.
            drop(func);
            called
        };
        run_js(call, ctx, Value::Null).await
    });
    match kind {
        Some(kind) => Box::new(task.kind(kind)),
        None => Box::new(task),
    }
}

/// A core agent whose runner is the JS function `func`, called once per
/// delegated task with the model's arguments on its context.
pub(crate) fn js_agent(
    name: String,
    description: String,
    parameters: Option<Value>,
    func: AgentFn,
) -> Agent {
    let func = Arc::new(func);
    let agent = Agent::new(name, description, move |arguments: Value, ctx| {
        let func = func.clone();
        let call = |native| async move { func.call_async_catch(native).await };
        run_js(call, ctx, arguments)
    });
    match parameters {
        Some(schema) => agent.parameters(schema),
        None => agent,
    }
}
