//! The [`BackgroundTask`] trait — what a task is — and [`TaskOutcome`], what
//! its run returns. [`ProcessTask`](crate::ProcessTask) and
//! [`FnTask`](crate::FnTask) are the built-in implementations.

use std::time::Duration;

use crate::context::TaskContext;
use crate::info::ExitInfo;

/// One unit of work a [`TaskManager`](crate::TaskManager) can run.
///
/// `run` gets the [`TaskContext`]: write output through it, watch its cancel
/// signal (the manager stops waiting after the grace period and drops the
/// future), read steering messages from it, and return a [`TaskOutcome`].
///
/// ```
/// use agent_tasks::{async_trait, BackgroundTask, TaskContext, TaskOutcome};
///
/// struct Countdown(u32);
///
/// #[async_trait]
/// impl BackgroundTask for Countdown {
///     fn kind(&self) -> &str { "countdown" }
///     fn description(&self) -> String { format!("count down from {}", self.0) }
///     async fn run(self: Box<Self>, ctx: TaskContext) -> TaskOutcome {
///         for i in (0..self.0).rev() {
///             ctx.stdout(format!("{i}\n"));
///         }
///         TaskOutcome::completed(serde_json::json!({"done": true}))
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait BackgroundTask: Send + 'static {
    /// A short lowercase word naming the kind of task; it prefixes the id.
    fn kind(&self) -> &str;

    /// A one-line description for humans and models.
    fn description(&self) -> String;

    /// Whether [`TaskManager::send`](crate::TaskManager::send) may deliver
    /// messages to this task.
    fn accepts_messages(&self) -> bool {
        true
    }

    /// Whether [`TaskManager::pause`](crate::TaskManager::pause) may stop
    /// this task's processes. Only tasks that run processes can be paused
    /// ([`ProcessTask`](crate::ProcessTask)); the default is false.
    fn pausable(&self) -> bool {
        false
    }

    /// The command, for a task that is a [`ProcessTask`](crate::ProcessTask)
    /// (so the manager can hand it to a supervisor). Not for other tasks to
    /// implement.
    #[doc(hidden)]
    fn as_process_task(&self) -> Option<&crate::ProcessTask> {
        None
    }

    /// How long the manager waits, after asking the task to stop, before it
    /// drops the task's future. `None` takes the manager's default.
    fn stop_grace(&self) -> Option<Duration> {
        None
    }

    /// Checks the task's own arguments before anything is registered:
    /// [`TaskManager::spawn`](crate::TaskManager::spawn) calls it first and
    /// returns its error (usually [`Error::InvalidArgument`](crate::Error)
    /// naming the argument). The default accepts everything.
    fn validate(&self) -> crate::Result<()> {
        Ok(())
    }

    /// Called once as the task starts, on the caller's thread: before
    /// [`TaskManager::spawn`](crate::TaskManager::spawn) returns (for a task
    /// that waited in the queue, as it leaves the queue), then
    /// [`BackgroundTask::run`]. A task that runs a process can start it
    /// here, so its pid is in the info the moment `spawn` returns; what it
    /// starts is `run`'s to use and stop (and is stopped when the task is
    /// dropped unrun). Keep it quick: no waiting. The default does nothing.
    fn on_start(&mut self, _ctx: &TaskContext) {}

    /// Refuses, at the spawn, a task whose resource limits (its own over
    /// the manager's `defaults`, and the manager's `ceiling` it must count
    /// against) this host cannot enforce when the manager's `policy` is to
    /// refuse such tasks. Process tasks only; not for other tasks to
    /// implement.
    #[doc(hidden)]
    fn check_limits(
        &self,
        defaults: &crate::limits::Limits,
        ceiling: &crate::limits::Limits,
        policy: crate::limits::UnenforcedLimits,
    ) -> crate::Result<()> {
        let _ = (defaults, ceiling, policy);
        Ok(())
    }

    /// Runs the task to its end.
    async fn run(self: Box<Self>, ctx: TaskContext) -> TaskOutcome;
}

/// What a task's run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskOutcome {
    /// True for success (`completed`), false for `failed`.
    pub success: bool,
    /// A JSON value for the result (function tasks).
    pub value: Option<serde_json::Value>,
    /// The error text of a failure.
    pub error: Option<String>,
    /// How a process ended.
    pub exit: Option<ExitInfo>,
    /// What a process task used (peak memory, CPU time).
    pub usage: Option<crate::limits::Usage>,
    /// The task finished by itself before any stop request reached it (a
    /// process exited on its own before it was signalled). The manager then
    /// records its natural status (`completed`, or `failed` with its exit
    /// code) even if a cancel was requested meanwhile.
    pub ended_on_its_own: bool,
}

impl TaskOutcome {
    /// A success with a result value.
    pub fn completed(value: serde_json::Value) -> Self {
        TaskOutcome {
            success: true,
            value: Some(value),
            error: None,
            exit: None,
            usage: None,
            ended_on_its_own: false,
        }
    }

    /// A failure with an error message.
    pub fn failed(error: impl Into<String>) -> Self {
        TaskOutcome {
            success: false,
            value: None,
            error: Some(error.into()),
            exit: None,
            usage: None,
            ended_on_its_own: false,
        }
    }

    /// Adds how a process ended.
    pub fn with_exit(mut self, exit: ExitInfo) -> Self {
        self.exit = Some(exit);
        self
    }

    /// Adds what a process task used.
    pub fn with_usage(mut self, usage: Option<crate::limits::Usage>) -> Self {
        self.usage = usage;
        self
    }

    /// Marks the outcome as reached before any stop request took effect (see
    /// [`TaskOutcome::ended_on_its_own`]).
    pub fn ended_on_its_own(mut self) -> Self {
        self.ended_on_its_own = true;
        self
    }
}
