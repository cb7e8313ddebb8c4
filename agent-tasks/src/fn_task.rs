//! [`FnTask`]: an async closure as a task — the shape of an in-process
//! subagent. It writes output through its context, watches for
//! cancellation, receives steering messages, and returns a JSON value.

use std::future::Future;
use std::pin::Pin;

use futures::FutureExt;

use crate::context::TaskContext;
use crate::task::{BackgroundTask, TaskOutcome};

/// The error type a function task may return; anything that converts into
/// a boxed error (including `anyhow::Error` and `String`) works with `?`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An async closure run as a task.
///
/// ```
/// use agent_tasks::FnTask;
/// use serde_json::json;
///
/// let task = FnTask::new("summarise the logs", |ctx| async move {
///     ctx.stdout("reading logs\n");
///     while let Some(msg) = ctx.try_recv() {
///         ctx.stdout(format!("steered: {}\n", msg.text()));
///     }
///     Ok(json!({"summary": "all good"}))
/// });
/// ```
pub struct FnTask<F> {
    kind: String,
    description: String,
    body: F,
}

impl<F, Fut> FnTask<F>
where
    F: FnOnce(TaskContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<serde_json::Value, BoxError>> + Send + 'static,
{
    /// A task of kind `fn` running `body`.
    pub fn new(description: impl Into<String>, body: F) -> Self {
        FnTask {
            kind: "fn".to_string(),
            description: description.into(),
            body,
        }
    }

    /// Sets the kind (the id prefix), e.g. `"subagent"`.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }
}

#[async_trait::async_trait]
impl<F, Fut> BackgroundTask for FnTask<F>
where
    F: FnOnce(TaskContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<serde_json::Value, BoxError>> + Send + 'static,
{
    fn kind(&self) -> &str {
        &self.kind
    }

    fn description(&self) -> String {
        self.description.clone()
    }

    // Written out, not an `async fn`: an async fn keeps its arguments for
    // its whole life, so the context (232 bytes) would be held twice, once
    // beside the body's future that owns it. The body is still called on
    // the first poll, as an async fn would.
    fn run<'async_trait>(
        self: Box<Self>,
        ctx: TaskContext,
    ) -> Pin<Box<dyn Future<Output = TaskOutcome> + Send + 'async_trait>>
    where
        Self: 'async_trait,
    {
        let FnTask { body, .. } = *self;
        Box::pin(
            futures::future::lazy(move |_| body(ctx))
                .flatten()
                .map(|result| match result {
                    Ok(value) => TaskOutcome::completed(value),
                    Err(e) => TaskOutcome::failed(e.to_string()),
                }),
        )
    }
}
