//! Subagents the model can delegate to: an [`Agent`] is a name, a
//! description for the model, a JSON Schema of its arguments (at least
//! `goal`) and a runner (an async function of the arguments and the
//! [`TaskContext`]). A [`ToolBox`](super::ToolBox) with agents registered
//! offers one more tool, `task_delegate`, which starts one subagent per
//! argument object (several in one call), in the foreground with a bounded
//! wait that auto-detaches, or in the background.
//!
//! One delegation tool for every agent (its `agent` argument names which)
//! rather than one tool per agent: the tool list stays short and stable
//! however many agents a host registers, and the model learns one way to
//! delegate; each agent's description and arguments are listed in the
//! `agent` argument's description.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::acp::AcpTask;
use crate::context::TaskContext;
use crate::error::Error;
use crate::fn_task::BoxError;
use crate::task::{BackgroundTask, TaskOutcome};

use super::definitions::ToolDefinition;

/// The name of the delegation tool.
pub(crate) const TASK_DELEGATE: &str = "task_delegate";
/// Most subagents one delegation may start.
pub(crate) const MAX_DELEGATIONS: usize = 8;
/// The kind of a delegated subagent's task (its id prefix; the one to cap
/// with [`ManagerConfig::max_running_of_kind`](crate::ManagerConfig::max_running_of_kind)).
pub const AGENT_KIND: &str = "agent";

/// What an agent's runner returns.
pub type AgentFuture = Pin<Box<dyn Future<Output = Result<Value, BoxError>> + Send>>;

type FnRunner = Arc<dyn Fn(Value, TaskContext) -> AgentFuture + Send + Sync>;
type AcpFactory = Arc<dyn Fn(&Value) -> AcpTask + Send + Sync>;

/// What runs a delegated subagent.
#[derive(Clone)]
enum Runner {
    /// An async function in this process.
    Fn(FnRunner),
    /// An ACP agent process, built from the arguments.
    Acp(AcpFactory),
}

/// A subagent the model can delegate to through a toolbox.
///
/// ```
/// use agent_tasks::tools::Agent;
/// use serde_json::json;
///
/// let researcher = Agent::new(
///     "researcher",
///     "Reads code and answers a question about it.",
///     |args, ctx| async move {
///         ctx.stdout(format!("looking into: {}\n", args["goal"]));
///         if let Some(hint) = ctx.try_recv() {
///             ctx.stdout(format!("steered: {}\n", hint.text()));
///         }
///         Ok(json!({"answer": "the lexer drops the last token"}))
///     },
/// )
/// .parameters(json!({
///     "type": "object",
///     "properties": {
///         "goal": {"type": "string", "description": "the question"},
///         "paths": {"type": "array", "items": {"type": "string"}}
///     },
///     "required": ["goal"]
/// }));
/// ```
#[derive(Clone)]
pub struct Agent {
    name: String,
    description: String,
    parameters: Value,
    runner: Runner,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name)
            .field("description", &self.description)
            .field("parameters", &self.parameters)
            .finish()
    }
}

impl Agent {
    /// An agent named `name` (lowercase letters, digits, `_`, `-`), described
    /// for the model by `description`, running `runner` with the arguments
    /// the model gave and the task's context. Its arguments default to
    /// `{"goal": string}`; see [`Agent::parameters`].
    pub fn new<F, Fut>(name: impl Into<String>, description: impl Into<String>, runner: F) -> Self
    where
        F: Fn(Value, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, BoxError>> + Send + 'static,
    {
        Agent {
            name: name.into(),
            description: description.into(),
            parameters: json!({
                "type": "object",
                "properties": {"goal": {"type": "string", "description": "What the subagent is to do."}},
                "required": ["goal"],
            }),
            runner: Runner::Fn(Arc::new(move |args, ctx| Box::pin(runner(args, ctx)))),
        }
    }

    /// An agent that is an ACP coding agent (see [`AcpTask`]): `make` builds
    /// its task from the model's arguments, whose `goal` is the first
    /// prompt. It is persistent: a delegation always starts it in the
    /// background (it never ends by itself, so a foreground wait could only
    /// time out), `task_send` is a follow-up prompt, the end of each of its
    /// turns is a notification with its final message, and `task_cancel`
    /// stops it. Its task's kind is [`AGENT_KIND`], so the per-kind cap
    /// counts it with the other subagents.
    ///
    /// ```
    /// use agent_tasks::acp::{AcpTask, PermissionPolicy};
    /// use agent_tasks::tools::Agent;
    ///
    /// let coder = Agent::acp("coder", "A coding agent working in the repository.", |args| {
    ///     AcpTask::new(["gemini", "--acp"], args["goal"].as_str().unwrap_or_default())
    ///         .cwd("/work/repo")
    ///         .permissions(PermissionPolicy::AllowAll)
    /// });
    /// ```
    pub fn acp<F>(name: impl Into<String>, description: impl Into<String>, make: F) -> Self
    where
        F: Fn(&Value) -> AcpTask + Send + Sync + 'static,
    {
        Agent {
            name: name.into(),
            description: description.into(),
            parameters: json!({
                "type": "object",
                "properties": {"goal": {"type": "string", "description": "The first prompt: what the agent is to do."}},
                "required": ["goal"],
            }),
            runner: Runner::Acp(Arc::new(make)),
        }
    }

    /// [`Agent::acp`] for an agent whose task is always `template`, started
    /// with the `goal` the model gives as its first prompt.
    pub fn acp_from(
        name: impl Into<String>,
        description: impl Into<String>,
        template: AcpTask,
    ) -> Self {
        Agent::acp(name, description, move |args| {
            let goal = args.get("goal").and_then(Value::as_str).unwrap_or_default();
            template.clone().goal(goal)
        })
    }

    /// True for an ACP agent: it runs across turns until stopped.
    pub fn is_persistent(&self) -> bool {
        matches!(self.runner, Runner::Acp(_))
    }

    /// The same agent whose ACP tasks get `manager`'s process tasks as
    /// terminals, unless their factory gave them some.
    pub(crate) fn with_terminals(mut self, manager: &crate::TaskManager) -> Self {
        if let Runner::Acp(make) = &self.runner {
            let make = make.clone();
            let weak = manager.downgrade();
            self.runner = Runner::Acp(Arc::new(move |args| make(args).terminals_if_unset(&weak)));
        }
        self
    }

    /// The JSON Schema of the agent's arguments: an object schema whose
    /// `properties` include a string `goal` that is `required` (checked when
    /// the agent is registered).
    pub fn parameters(mut self, schema: Value) -> Self {
        self.parameters = schema;
        self
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the name and the schema; the error names what is wrong.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 40
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(Error::invalid_argument(
                "agent",
                format!(
                    "the name `{}` must be 1 to 40 lowercase letters, digits, `_` or `-`",
                    self.name.chars().take(60).collect::<String>()
                ),
            ));
        }
        let goal_type = &self.parameters["properties"]["goal"]["type"];
        let goal_required = self.parameters["required"]
            .as_array()
            .is_some_and(|r| r.iter().any(|v| v == "goal"));
        if self.parameters["type"] != "object" || goal_type != "string" || !goal_required {
            return Err(Error::invalid_argument(
                "parameters",
                format!(
                    "agent `{}`: the arguments must be an object schema with a required string `goal`",
                    self.name
                ),
            ));
        }
        Ok(())
    }

    /// The arguments' required property names.
    fn required(&self) -> Vec<&str> {
        self.parameters["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// One line for the model: name, description, arguments.
    fn summary(&self) -> String {
        let required = self.required();
        let args: Vec<String> = self.parameters["properties"]
            .as_object()
            .map(|props| {
                props
                    .keys()
                    .map(|k| {
                        if required.contains(&k.as_str()) {
                            format!("{k} (required)")
                        } else {
                            k.clone()
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let persistent = if self.is_persistent() {
            " A persistent ACP agent: it starts in the background and keeps its session; task_send gives it a follow-up prompt, you are notified when each of its turns ends (with its final message), and it runs until task_cancel."
        } else {
            ""
        };
        format!(
            "`{}`: {}{persistent} Arguments: {}.",
            self.name,
            self.description.trim(),
            args.join(", ")
        )
    }

    /// Checks one argument object for this agent; the error names the
    /// argument (`tasks[i].goal`, …).
    pub(crate) fn check_arguments(&self, index: usize, args: &Value) -> Result<(), Error> {
        let Some(object) = args.as_object() else {
            return Err(Error::invalid_argument(
                format!("tasks[{index}]"),
                "must be an object of the agent's arguments",
            ));
        };
        for name in self.required() {
            if !object.contains_key(name) {
                return Err(Error::invalid_argument(
                    format!("tasks[{index}].{name}"),
                    format!("is required by agent `{}`", self.name),
                ));
            }
        }
        match object.get("goal").and_then(Value::as_str) {
            Some(goal) if !goal.trim().is_empty() => Ok(()),
            _ => Err(Error::invalid_argument(
                format!("tasks[{index}].goal"),
                "must be a non-empty string",
            )),
        }
    }

    /// The task that runs this agent with `arguments`.
    pub(crate) fn task(&self, arguments: Value) -> Box<dyn BackgroundTask> {
        let goal = arguments["goal"].as_str().unwrap_or_default();
        let mut description: String = goal.split_whitespace().collect::<Vec<_>>().join(" ");
        if description.chars().count() > 120 {
            description = description.chars().take(119).collect::<String>() + "…";
        }
        let description = format!("{}: {description}", self.name);
        match &self.runner {
            Runner::Fn(runner) => Box::new(AgentTask {
                runner: runner.clone(),
                arguments,
                description,
            }),
            Runner::Acp(make) => {
                Box::new(make(&arguments).kind(AGENT_KIND).description(description))
            }
        }
    }
}

/// A delegated subagent as a task: its runner with the model's arguments.
pub(crate) struct AgentTask {
    runner: FnRunner,
    arguments: Value,
    description: String,
}

#[async_trait::async_trait]
impl BackgroundTask for AgentTask {
    fn kind(&self) -> &str {
        AGENT_KIND
    }

    fn description(&self) -> String {
        self.description.clone()
    }

    async fn run(self: Box<Self>, ctx: TaskContext) -> TaskOutcome {
        match (self.runner)(self.arguments, ctx).await {
            Ok(value) => TaskOutcome::completed(value),
            Err(e) => TaskOutcome::failed(e.to_string()),
        }
    }
}

/// Arguments of `task_delegate`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelegateArgs {
    pub agent: String,
    pub tasks: Vec<Value>,
    #[serde(default)]
    pub background: Option<bool>,
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// The `task_delegate` tool for these agents.
pub(crate) fn delegate_definition(agents: &[Agent]) -> ToolDefinition {
    let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    let listed: Vec<String> = agents.iter().map(Agent::summary).collect();
    ToolDefinition {
        name: TASK_DELEGATE,
        description: "Delegate work to subagents: one subagent starts for each object in `tasks` (the chosen agent's arguments, at least `goal`). By default the call waits up to `timeout` seconds; subagents still working then move to the background and you are notified when they end. With background=true their task_ids come back at once. A subagent's result is in task_wait, in task_output once it has ended, and in its end notification; steer one with task_send (it reads your message), stop one with task_cancel (it hears your reason).",
        parameters: json!({
            "type": "object",
            "properties": {
                "agent": {
                    "type": "string",
                    "enum": names,
                    "description": format!("Which agent to start. {}", listed.join(" ")),
                },
                "tasks": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_DELEGATIONS,
                    "description": "One object of the agent's arguments per subagent to start.",
                    "items": {
                        "type": "object",
                        "properties": {"goal": {"type": "string", "description": "What the subagent is to do."}},
                        "required": ["goal"],
                    },
                },
                "background": {
                    "type": "boolean",
                    "description": "Start them in the background and return their task_ids at once.",
                },
                "timeout": {
                    "type": "number",
                    "description": "Seconds to wait in the foreground before the subagents still working move to the background.",
                },
            },
            "required": ["agent", "tasks"],
            "additionalProperties": false,
        }),
    }
}
