//! The tools' names, descriptions (written for a model) and argument types,
//! with their JSON Schemas, exportable in the OpenAI function-calling shape,
//! the Anthropic tool shape and the MCP tools/list shape.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Arguments of `task_run`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// The shell command to run (with `/bin/sh -c`).
    pub command: String,
    /// Working directory (default: the host's).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Seconds to wait in the foreground before the command moves to the
    /// background (it keeps running); for a background command, seconds
    /// before it is stopped.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Start in the background and return its task id at once.
    #[serde(default)]
    pub background: Option<bool>,
    /// A few words saying what the command is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Keep the command's standard input open, so `task_send` can type into
    /// it (an interactive program, a REPL); without it, stdin is empty.
    #[serde(default)]
    pub stdin: Option<bool>,
    /// Run the command in a pseudo-terminal, for programs that need one
    /// (password prompts, REPLs, `npm init`, pagers, full-screen programs).
    /// Its stdout and stderr then come as one stream, and it always takes
    /// input: `task_send` types into it, with `keys` for control keys
    /// (`ctrl+c`, `enter`, `up`…).
    #[serde(default)]
    pub tty: Option<bool>,
    /// With background=true: answer once the command is ready (at most 30
    /// s): a regular expression an output line must match (e.g. `listening
    /// on`), or `port:N` for a TCP port on 127.0.0.1 accepting connections.
    #[serde(default)]
    pub wait_until: Option<String>,
    /// Resource limits for the command and every process it starts, to
    /// keep a risky command from harming the machine. The host's own limits
    /// always apply: asking for more than they allow gets the host's.
    #[serde(default)]
    pub limits: Option<RunLimits>,
}

/// `task_run`'s `limits`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunLimits {
    /// Memory of the whole tree, e.g. "512M" or "2G" (at the limit the
    /// command is killed and the task fails, saying so).
    #[serde(default)]
    pub memory: Option<String>,
    /// Processes at once (past it, starting another fails).
    #[serde(default)]
    pub pids: Option<u64>,
    /// CPU cores, e.g. 0.5 (it is slowed down, never killed).
    #[serde(default)]
    pub cpu: Option<f64>,
}

/// Arguments of `task_list`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Only tasks that are still running.
    #[serde(default)]
    pub running_only: Option<bool>,
}

/// Arguments of `task_output`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputArgs {
    /// The task's id.
    pub task_id: String,
    /// Byte offset to read from: pass the `next cursor` of the previous call
    /// to get only new output. Without it, the end of the output is shown.
    #[serde(default)]
    pub cursor: Option<u64>,
    /// A regular expression: only output lines matching it are shown.
    #[serde(default)]
    pub filter: Option<String>,
    /// Most bytes of output to read (default 8000).
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

/// Arguments of `task_wait`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitArgs {
    /// The task's id.
    pub task_id: String,
    /// Most seconds to wait (default 30, at most 300); returns as soon as the
    /// task ends.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Return as soon as this holds instead of waiting for the end: a
    /// regular expression an output line must match, or `port:N` for a TCP
    /// port on 127.0.0.1 accepting connections.
    #[serde(default)]
    pub until: Option<String>,
    /// With `until` as a regular expression: the byte offset to look from
    /// (a `next cursor`); default 0, all the output.
    #[serde(default)]
    pub cursor: Option<u64>,
}

/// Arguments of `task_cancel`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelArgs {
    /// The task's id.
    pub task_id: String,
    /// Why it is stopped (recorded, and told to the task).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Arguments of `task_send`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendArgs {
    /// The task's id.
    pub task_id: String,
    /// The message: steering text for an agent task, or bytes for a
    /// command's stdin (add a trailing newline for line-based programs).
    #[serde(default)]
    pub message: Option<String>,
    /// Keys to type after the message, by name, for a command (mostly one
    /// run with tty=true): `enter`, `tab`, `escape`, `backspace`, `up`,
    /// `down`, `left`, `right`, `home`, `end`, `pageup`, `pagedown`,
    /// `delete`, `f1`…`f12`, `ctrl+<letter>` (`ctrl+c` interrupts, `ctrl+d`
    /// ends input), `alt+<char>`.
    #[serde(default)]
    pub keys: Option<Vec<String>>,
    /// Close the task's input after the message and keys: a command
    /// reading its stdin sees the end of input (`wc -l` then prints its
    /// count and ends); an agent task ends its session when its current
    /// work is done. Nothing can be sent after it.
    #[serde(default)]
    pub eof: bool,
}

/// One tool: its name, what it does, and its argument schema.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolDefinition {
    /// The tool's name, e.g. `task_output`.
    pub name: &'static str,
    /// What it does, written for a model.
    pub description: &'static str,
    /// JSON Schema of its arguments (an object schema, subschemas inlined).
    pub parameters: Value,
}

impl ToolDefinition {
    /// The OpenAI function-calling shape:
    /// `{"type": "function", "function": {"name", "description", "parameters"}}`.
    pub fn openai(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }

    /// The Anthropic tool shape: `{"name", "description", "input_schema"}`.
    pub fn anthropic(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "input_schema": self.parameters,
        })
    }

    /// The MCP tool shape (an entry of a `tools/list` result):
    /// `{"name", "description", "inputSchema"}`.
    pub fn mcp(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "inputSchema": self.parameters,
        })
    }
}

/// Plain schemas read best to models and suit strict function calling:
/// no `format`, no `default: null`, optional fields not nullable, one-line
/// descriptions.
fn simplify(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            obj.remove("format");
            if obj.get("default") == Some(&Value::Null) {
                obj.remove("default");
            }
            if let Some(Value::Array(types)) = obj.get("type") {
                let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if non_null.len() == 1 {
                    obj.insert("type".to_string(), non_null[0].clone());
                }
            }
            if let Some(Value::String(d)) = obj.get_mut("description") {
                *d = d.split_whitespace().collect::<Vec<_>>().join(" ");
            }
            obj.values_mut().for_each(simplify);
        }
        Value::Array(items) => items.iter_mut().for_each(simplify),
        _ => {}
    }
}

fn schema_of<T: JsonSchema>() -> Value {
    let settings = schemars::generate::SchemaSettings::draft07().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = serde_json::to_value(schema).unwrap_or_else(|_| json!({"type": "object"}));
    if let Some(obj) = value.as_object_mut() {
        // The title and description are the Rust type's, not useful to a model.
        obj.remove("title");
        obj.remove("description");
        obj.entry("properties").or_insert_with(|| json!({}));
    }
    simplify(&mut value);
    value
}

pub(crate) const TASK_RUN: &str = "task_run";
pub(crate) const TASK_LIST: &str = "task_list";
pub(crate) const TASK_OUTPUT: &str = "task_output";
pub(crate) const TASK_WAIT: &str = "task_wait";
pub(crate) const TASK_CANCEL: &str = "task_cancel";
pub(crate) const TASK_SEND: &str = "task_send";

/// Every tool the [`ToolBox`](super::ToolBox) answers, in a stable order.
pub fn definitions() -> Vec<ToolDefinition> {
    vec![
        ToolDefinition {
            name: TASK_RUN,
            description: "Run a shell command. By default it runs in the foreground: the call waits until the command ends or `timeout` seconds pass; if it is still running then, it moves to the background and keeps running, and you get its task_id and the output so far. With background=true it starts in the background and the task_id comes back at once (or, with `wait_until`, once it is ready). You are notified when a background task ends; use task_output to read its output and task_wait to wait for it.",
            parameters: schema_of::<RunArgs>(),
        },
        ToolDefinition {
            name: TASK_LIST,
            description: "List your running and recent background tasks: id, status, run time and description.",
            parameters: schema_of::<ListArgs>(),
        },
        ToolDefinition {
            name: TASK_OUTPUT,
            description: "Show a task's status and output without waiting. Pass the `next cursor` from the previous call as `cursor` to get only what is new; without a cursor you get the end of the output. `filter` keeps only the lines matching a regular expression. Long output is cut in the middle, and the answer says how many bytes were left out.",
            parameters: schema_of::<OutputArgs>(),
        },
        ToolDefinition {
            name: TASK_WAIT,
            description: "Wait until a task ends, at most `timeout` seconds (default 30, at most 300), then show its status and the end of its output. Returns early when the task ends. With `until` (a regular expression over output lines, or `port:N`) it returns as soon as a line matches or the port accepts connections: use it to wait for a server to be ready.",
            parameters: schema_of::<WaitArgs>(),
        },
        ToolDefinition {
            name: TASK_CANCEL,
            description: "Stop a running task (its whole process tree), with an optional reason. Stopping a task that already ended changes nothing.",
            parameters: schema_of::<CancelArgs>(),
        },
        ToolDefinition {
            name: TASK_SEND,
            description: "Send a message to a running task: steering text for an agent task, or input for a command that reads its stdin or runs in a terminal (tty=true). `keys` types control keys such as ctrl+c or enter; eof=true then closes its input (the end of input).",
            parameters: schema_of::<SendArgs>(),
        },
    ]
}

/// The shape tool definitions are exported in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ToolShape {
    /// [`ToolDefinition::openai`] (the default).
    #[default]
    OpenAi,
    /// [`ToolDefinition::anthropic`].
    Anthropic,
    /// [`ToolDefinition::mcp`].
    Mcp,
}

impl ToolShape {
    /// Every shape, in declaration order.
    pub const ALL: [ToolShape; 3] = [ToolShape::OpenAi, ToolShape::Anthropic, ToolShape::Mcp];

    /// The shape's name: `openai`, `anthropic` or `mcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolShape::OpenAi => "openai",
            ToolShape::Anthropic => "anthropic",
            ToolShape::Mcp => "mcp",
        }
    }
}

impl std::fmt::Display for ToolShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ToolShape {
    type Err = crate::Error;

    /// `openai`, `anthropic` or `mcp`; anything else is an
    /// `InvalidArgument` naming `shape` and listing the three.
    fn from_str(s: &str) -> crate::Result<Self> {
        crate::names::by_name("shape", s, &ToolShape::ALL, ToolShape::as_str)
    }
}

impl ToolDefinition {
    /// The definition in `shape`.
    pub fn shaped(&self, shape: ToolShape) -> Value {
        match shape {
            ToolShape::OpenAi => self.openai(),
            ToolShape::Anthropic => self.anthropic(),
            ToolShape::Mcp => self.mcp(),
        }
    }
}

/// Every tool's definition in `shape`, in [`definitions`]' order.
///
/// ```
/// use agent_tasks::tools::{definitions_in, ToolShape};
/// let shape: ToolShape = "anthropic".parse()?;
/// assert_eq!(definitions_in(shape)[0]["name"], "task_run");
/// # Ok::<(), agent_tasks::Error>(())
/// ```
pub fn definitions_in(shape: ToolShape) -> Vec<Value> {
    definitions().iter().map(|d| d.shaped(shape)).collect()
}
