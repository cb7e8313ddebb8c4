//! JS async functions as tasks. The function is wrapped in the core's
//! [`FnTask`]: when the task starts, the function is called on the JS thread
//! through a [`ThreadsafeFunction`] with a [`NativeTaskContext`], and the
//! task awaits the Promise it returns. The JS wrapper (`index.js`) turns the
//! function's value or thrown error into a [`TaskFnOutcome`], so a throw
//! becomes a `failed` task with the error's message and stack.
//!
//! Keeping the process alive: the thread-safe function holds the event loop
//! only until the one call is made, and is released right after it. While the
//! function runs, the wrapper awaits `waitCancelled()` (to abort `ctx.signal`),
//! which settles when the task is cancelled or ends; so a running JS task
//! keeps Node alive like any pending async function, and an ended one holds
//! nothing.

use std::sync::Arc;

use agent_tasks::{BackgroundTask, BoxError, FnTask, Stream, TaskContext};
use napi::bindgen_prelude::{BufferSlice, Promise, PromiseRaw};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, Status};
use napi_derive::napi;
use tokio_util::sync::CancellationToken;

use crate::conversion::CancelReason;

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
pub(crate) type TaskFn =
    ThreadsafeFunction<NativeTaskContext, Promise<TaskFnOutcome>, NativeTaskContext, Status, false>;

struct Shared {
    ctx: TaskContext,
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

fn stream_of(stream: Option<String>) -> Stream {
    match stream {
        None => Stream::STDOUT,
        Some(name) => Stream::named(name),
    }
}

#[napi]
impl NativeTaskContext {
    /// The task's id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.shared.ctx.id().to_string()
    }

    /// Appends text to the task's output (`stream` defaults to `stdout`).
    /// Returns false, writing nothing, once the task has ended.
    #[napi]
    pub fn write_text(&self, text: String, stream: Option<String>) -> bool {
        if self.shared.done.is_cancelled() {
            return false;
        }
        self.shared.ctx.write(stream_of(stream), text.as_bytes());
        true
    }

    /// Appends bytes to the task's output (`stream` defaults to `stdout`).
    /// Returns false, writing nothing, once the task has ended.
    #[napi]
    pub fn write_bytes(&self, data: BufferSlice, stream: Option<String>) -> bool {
        if self.shared.done.is_cancelled() {
            return false;
        }
        self.shared.ctx.write(stream_of(stream), &*data);
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

    /// True once a stop was asked for.
    #[napi(getter)]
    pub fn cancelled(&self) -> bool {
        self.shared.ctx.is_cancelled()
    }

    /// Settles with the cancel reason when a stop is asked for, or with null
    /// when the task ends first.
    #[napi(ts_return_type = "Promise<CancelReason | null>")]
    pub fn wait_cancelled<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Option<CancelReason>>> {
        let shared = self.shared.clone();
        env.spawn_future(async move {
            tokio::select! {
                biased;
                reason = shared.ctx.cancelled() => Ok(Some(reason.into())),
                _ = shared.done.cancelled() => Ok(None),
            }
        })
    }
}

#[napi]
impl NativeTaskContext {
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

/// Wraps a JS function as a core [`FnTask`] of `kind` (default `fn`).
pub(crate) fn js_task(
    description: String,
    kind: Option<String>,
    func: TaskFn,
) -> Box<dyn BackgroundTask> {
    let task = FnTask::new(description, move |ctx: TaskContext| async move {
        let done = CancellationToken::new();
        let _done = DoneOnDrop(done.clone());
        let shared = Arc::new(Shared { ctx, done });
        let called = func
            .call_async_catch(NativeTaskContext {
                shared: shared.clone(),
            })
            .await;
        // One call per task: release the function so it holds the event
        // loop no longer.
        drop(func);
        let promise = called.map_err(|e| -> BoxError {
            format!("the task function could not be called: {}", e.reason).into()
        })?;
        let outcome = promise.await.map_err(|e| -> BoxError { e.reason.into() })?;
        if outcome.ok {
            let json = outcome.json.as_deref().unwrap_or("null");
            serde_json::from_str(json).map_err(|e| -> BoxError {
                format!("the task's return value is not JSON: {e}").into()
            })
        } else {
            Err(outcome
                .error
                .unwrap_or_else(|| "the task function failed".to_string())
                .into())
        }
    });
    match kind {
        Some(kind) => Box::new(task.kind(kind)),
        None => Box::new(task),
    }
}
