//! Model-facing tools: the core's tool definitions in the three shapes, and
//! its [`ToolBox`] dispatcher as [`NativeToolBox`]. Arguments come in as JSON
//! text (the wrapper stringifies an object; the core parses and checks it)
//! and the answer goes out as a plain object. The tools' behaviour (argument
//! checks, texts, budgets) is the core's. Subagents registered from JS
//! (`registerAgent`) are core [`Agent`]s whose runner is a JS function
//! (`context::js_agent`); the core checks their names and schemas.

use std::sync::{Mutex, MutexGuard};

use agent_tasks::tools::{definitions_in, Agent, ToolBox, ToolBoxConfig, ToolResponse, ToolShape};
use agent_tasks::{AcpOptions, ToolBoxOptions};
use napi::bindgen_prelude::{Object, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use serde_json::{json, Value};

use crate::context::{js_agent, AgentFn};
use crate::errors::CoreResultExt;
use crate::manager::{open, NativeTaskManager, SharedManager};
use crate::options::CoreOptions;
use crate::values::Js;

/// The tool definitions in `shape` (`openai`, the default, `anthropic` or
/// `mcp`), as plain objects. Internal: use `toolDefinitions()`.
#[napi(ts_return_type = "Array<Record<string, any>>")]
// Registered with Node by napi-rs, which test builds leave out.
#[cfg_attr(test, allow(dead_code))]
pub fn native_tool_definitions(shape: Option<String>) -> napi::Result<Vec<Value>> {
    Ok(definitions_in(tool_shape(shape)?))
}

/// A `shape` argument: the core's names; `openai` when absent.
fn tool_shape(shape: Option<String>) -> napi::Result<ToolShape> {
    match shape {
        Some(name) => agent_tasks::parse_name("shape", &name).js(),
        None => Ok(ToolShape::default()),
    }
}

/// The core's tool dispatcher for one owner. Internal: use `ToolBox`.
#[napi]
pub struct NativeToolBox {
    manager: SharedManager,
    owner: String,
    config: ToolBoxConfig,
    /// The registered subagents, in registration order.
    agents: Mutex<Vec<Agent>>,
}

#[napi]
impl NativeToolBox {
    /// A toolbox acting for `owner`'s tasks on `manager`.
    #[napi(
        constructor,
        ts_args_type = "manager: NativeTaskManager, owner: string, options?: object"
    )]
    pub fn new(
        manager: &NativeTaskManager,
        owner: String,
        options: Option<Object>,
    ) -> napi::Result<Self> {
        let config = ToolBoxOptions::read("toolBox", options)?.config().js()?;
        config.check().js()?;
        let shared = manager.shared();
        open(&shared)?;
        Ok(NativeToolBox {
            manager: shared,
            owner,
            config,
            agents: Mutex::new(Vec::new()),
        })
    }

    /// `ToolBox.registerAgent`: `runner(ctx)` is called once per delegated
    /// task (the model's arguments are `ctx.arguments`) and returns a
    /// Promise of the outcome (the wrapper makes it so).
    #[napi(
        ts_args_type = "name: string, description: string, parameters: Record<string, any> | undefined | null, runner: (ctx: NativeTaskContext) => Promise<TaskFnOutcome>"
    )]
    pub fn register_agent(
        &self,
        name: String,
        description: String,
        parameters: Option<Value>,
        runner: AgentFn,
    ) -> napi::Result<()> {
        self.add_agent(js_agent(name, description, parameters, runner))
    }

    /// `ToolBox.registerAcpAgent`, with the options `runAcp` takes (a task
    /// timeout, owner, description and keep-alive do not apply).
    #[napi(
        ts_args_type = "name: string, description: string, argv: Array<string>, options?: object, permissions?: string, permissionFn?: (request: string) => Promise<unknown>"
    )]
    pub fn register_acp_agent(
        &self,
        name: String,
        description: String,
        argv: Vec<String>,
        options: Option<Object>,
        permissions: Option<String>,
        permission_fn: Option<crate::acp::PermissionFn>,
    ) -> napi::Result<()> {
        let o = AcpOptions::read("acpAgent", options)?;
        let template = crate::acp::acp_template(argv, &o, permissions, permission_fn)?;
        self.add_agent(Agent::acp_from(name, description, template))
    }

    /// The tools this toolbox answers in `shape` (`openai`, the default,
    /// `anthropic` or `mcp`): the task tools, and `task_delegate` once an
    /// agent is registered.
    #[napi(ts_return_type = "Array<Record<string, any>>")]
    pub fn definitions(&self, shape: Option<String>) -> napi::Result<Vec<Value>> {
        let shape = tool_shape(shape)?;
        let toolbox = self.toolbox(&self.agents())?;
        Ok(toolbox
            .definitions()
            .iter()
            .map(|d| d.shaped(shape))
            .collect())
    }

    /// The owner this toolbox acts for.
    #[napi(getter)]
    pub fn owner(&self) -> String {
        self.owner.clone()
    }

    /// Executes one tool call; `args` is JSON text (or nothing: `{}`).
    /// Failures, a closed manager included, come back as an answer with
    /// `isError`, never as a rejection.
    #[napi(ts_return_type = "Promise<ToolResponse>")]
    pub fn call<'env>(
        &self,
        env: &'env Env,
        name: String,
        args: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, Js<ToolResponse>>> {
        let toolbox = self.toolbox(&self.agents()).ok();
        env.spawn_future(async move {
            let Some(toolbox) = toolbox else {
                let message = agent_tasks::Error::ShutDown.to_string();
                return Ok(Js(ToolResponse {
                    text: format!("error: {message}"),
                    json: json!({ "error": { "code": "SHUT_DOWN", "message": message } }),
                    is_error: true,
                }));
            };
            let args = args.map_or(Value::Null, Value::String);
            Ok(Js(toolbox.call(&name, args).await))
        })
    }
}

impl NativeToolBox {
    fn agents(&self) -> MutexGuard<'_, Vec<Agent>> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The core toolbox over the manager with `agents` registered, each
    /// checked by the core (a new name, a good schema).
    fn toolbox(&self, agents: &[Agent]) -> napi::Result<ToolBox> {
        let manager = open(&self.manager)?;
        let mut toolbox =
            ToolBox::with_config(manager, self.owner.clone(), self.config.clone()).js()?;
        for agent in agents {
            toolbox.register_agent(agent.clone()).js()?;
        }
        Ok(toolbox)
    }

    /// Adds `agent` once the core accepts it.
    fn add_agent(&self, agent: Agent) -> napi::Result<()> {
        let mut agents = self.agents();
        agents.push(agent);
        self.toolbox(&agents).inspect_err(|_| {
            agents.pop();
        })?;
        Ok(())
    }
}
