//! [`FnTask`]: an async closure as a task — the shape of an in-process
//! subagent. It writes output through its context, watches for
//! cancellation, receives steering messages, and returns a JSON value.

use std::future::Future;

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

    async fn run(self: Box<Self>, ctx: TaskContext) -> TaskOutcome {
        match (self.body)(ctx).await {
            Ok(value) => TaskOutcome::completed(value),
            Err(e) => TaskOutcome::failed(e.to_string()),
        }
    }
}
