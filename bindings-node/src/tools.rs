//! Model-facing tools: the core's tool definitions in the three shapes, and
//! its [`ToolBox`] dispatcher as [`NativeToolBox`]. Arguments come in as JSON
//! text (the wrapper stringifies an object; the core parses and checks it)
//! and the answer goes out as a plain object. The tools' behaviour (argument
//! checks, texts, budgets) is the core's.

use std::collections::HashMap;

use agent_tasks::tools::{definitions_in, ToolBox, ToolBoxConfig, ToolShape};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use serde_json::{json, Value};

use crate::conversion::{finite_millis, on_timeout, size};
use crate::errors::CoreResultExt;
use crate::manager::{open, NativeTaskManager, SharedManager};

/// The tool definitions in `shape` (`openai`, the default, `anthropic` or
/// `mcp`), as plain objects. Internal: use `toolDefinitions()`.
#[napi(ts_return_type = "Array<Record<string, any>>")]
// Registered with Node by napi-rs, which test builds leave out.
#[cfg_attr(test, allow(dead_code))]
pub fn native_tool_definitions(shape: Option<String>) -> napi::Result<Vec<Value>> {
    let shape: ToolShape = match shape {
        Some(name) => agent_tasks::parse_name("shape", &name).js()?,
        None => ToolShape::default(),
    };
    Ok(definitions_in(shape))
}

/// Settings of a toolbox (all optional; the core's defaults otherwise).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct ToolBoxOptions {
    /// Most bytes of text in one answer (default 12,000).
    pub text_budget: Option<f64>,
    /// How long `task_run` waits in the foreground when the model gives no
    /// `timeout` (default 60 s).
    pub run_timeout_ms: Option<f64>,
    /// The longest `timeout` a model may ask of `task_run` (default 10 min).
    pub max_run_timeout_ms: Option<f64>,
    /// What a `task_run` foreground timeout does (default `detach`: the
    /// command keeps running in the background).
    #[napi(ts_type = "OnTimeout")]
    pub on_timeout: Option<String>,
    /// `task_wait`'s timeout when the model gives none (default 30 s).
    pub wait_timeout_ms: Option<f64>,
    /// The longest `timeout` a model may ask of `task_wait` (default 300 s).
    pub max_wait_timeout_ms: Option<f64>,
    /// Bytes `task_output` reads when the model gives no `max_bytes`
    /// (default 8000).
    pub output_bytes: Option<f64>,
    /// Working directory of `task_run` commands without a `cwd`.
    pub cwd: Option<String>,
    /// Extra environment variables of `task_run` commands.
    pub env: Option<HashMap<String, String>>,
    /// Show output in the answers as the task wrote it (default false:
    /// cleaned of terminal escapes, `\r` progress bars at their last
    /// state), for hosts that render terminal text. `poll` and the log
    /// always keep the raw bytes.
    pub raw_text: Option<bool>,
    /// The terminal size of a `task_run` with `tty: true` (default 120 × 40).
    pub tty_size: Option<crate::pty::TerminalSize>,
}

impl ToolBoxOptions {
    fn into_config(self) -> napi::Result<ToolBoxConfig> {
        let mut c = ToolBoxConfig::default();
        if let Some(v) = self.text_budget {
            c.text_budget = size("textBudget", v)?;
        }
        if let Some(v) = self.run_timeout_ms {
            c.run_timeout = finite_millis("runTimeoutMs", v)?;
        }
        if let Some(v) = self.max_run_timeout_ms {
            c.max_run_timeout = finite_millis("maxRunTimeoutMs", v)?;
        }
        if let Some(v) = self.on_timeout {
            c.on_timeout = on_timeout("onTimeout", &v)?;
        }
        if let Some(v) = self.wait_timeout_ms {
            c.wait_timeout = finite_millis("waitTimeoutMs", v)?;
        }
        if let Some(v) = self.max_wait_timeout_ms {
            c.max_wait_timeout = finite_millis("maxWaitTimeoutMs", v)?;
        }
        if let Some(v) = self.output_bytes {
            c.output_bytes = size("outputBytes", v)?;
        }
        c.cwd = self.cwd.map(Into::into);
        let mut env: Vec<(String, String)> = self.env.unwrap_or_default().into_iter().collect();
        env.sort();
        c.env = env;
        if let Some(v) = self.raw_text {
            c.raw_text = v;
        }
        if let Some(size) = &self.tty_size {
            c.tty_size = size.cells()?;
        }
        Ok(c)
    }
}

/// What a tool call answers.
#[napi(object, object_from_js = false)]
pub struct ToolResponse {
    /// Text for the model: metadata first (task id, status, exit code,
    /// cursor, bytes omitted), then output, within the text budget.
    pub text: String,
    /// Structured data for the host, the core's JSON as is (snake_case keys,
    /// as in `schema/`): the task's info, cursors, …; or
    /// `{ error: { code, message } }`.
    #[napi(ts_type = "Record<string, any>")]
    pub json: Value,
    /// True when the call failed (unknown tool or id, bad argument).
    pub is_error: bool,
}

impl From<agent_tasks::tools::ToolResponse> for ToolResponse {
    fn from(r: agent_tasks::tools::ToolResponse) -> Self {
        ToolResponse {
            text: r.text,
            json: r.json,
            is_error: r.is_error,
        }
    }
}

/// The core's tool dispatcher for one owner. Internal: use `ToolBox`.
#[napi]
pub struct NativeToolBox {
    manager: SharedManager,
    owner: String,
    config: ToolBoxConfig,
}

#[napi]
impl NativeToolBox {
    /// A toolbox acting for `owner`'s tasks on `manager`.
    #[napi(constructor)]
    pub fn new(
        manager: &NativeTaskManager,
        owner: String,
        options: Option<ToolBoxOptions>,
    ) -> napi::Result<Self> {
        let config = options.unwrap_or_default().into_config()?;
        let shared = manager.shared();
        open(&shared)?;
        Ok(NativeToolBox {
            manager: shared,
            owner,
            config,
        })
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
    ) -> napi::Result<PromiseRaw<'env, ToolResponse>> {
        let toolbox = open(&self.manager)
            .ok()
            .map(|m| ToolBox::with_config(m, self.owner.clone(), self.config.clone()));
        env.spawn_future(async move {
            let Some(toolbox) = toolbox else {
                let message = agent_tasks::Error::ShutDown.to_string();
                return Ok(ToolResponse {
                    text: format!("error: {message}"),
                    json: json!({ "error": { "code": "SHUT_DOWN", "message": message } }),
                    is_error: true,
                });
            };
            let args = args.map_or(Value::Null, Value::String);
            Ok(toolbox.call(&name, args).await.into())
        })
    }
}
