//! Model-facing tools: the core's tool definitions in the three shapes, and
//! its [`ToolBox`] dispatcher as `NativeToolBox`, with JSON in (a dict or a
//! JSON string) and a `ToolResponse` (generated, `types`) out. The tools' behaviour (the
//! argument checks, the texts) is the core's.

use std::path::PathBuf;

use agent_tasks::tools::{definitions_in, ToolBox, ToolBoxConfig, ToolShape};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use serde_json::Value;

use crate::convert::{duration, size, to_json};
use crate::errors::{core_err, invalid_argument};
use crate::manager::NativeManager;
use crate::options::on_timeout;
use crate::pending::{spawn, Failure, Pending};
use crate::types::{to_dict, Wire};

/// The tool definitions, as dicts in `shape`: `openai`, `anthropic` or `mcp`.
#[pyfunction]
#[pyo3(signature = (shape="openai"))]
pub fn tool_definitions<'py>(py: Python<'py>, shape: &str) -> PyResult<Bound<'py, PyList>> {
    let shape: ToolShape = agent_tasks::parse_name("shape", shape).map_err(core_err)?;
    to_dict(py, &definitions_in(shape))?
        .cast_into::<PyList>()
        .map_err(Into::into)
}

/// The core's tool dispatcher for one owner. Agents are registered through
/// a lock; each call works on a copy taken under it.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct NativeToolBox {
    toolbox: std::sync::Mutex<ToolBox>,
}

impl NativeToolBox {
    fn toolbox(&self) -> ToolBox {
        self.toolbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[pymethods]
impl NativeToolBox {
    /// A toolbox acting for `owner`. `None` keeps the core's default;
    /// timeouts are seconds, sizes bytes.
    #[new]
    #[pyo3(signature = (
        manager, owner, *, text_budget=None, run_timeout=None, max_run_timeout=None,
        on_timeout=None, wait_timeout=None, max_wait_timeout=None, output_bytes=None,
        cwd=None, env=None, raw_text=false, tty_size=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        manager: PyRef<'_, NativeManager>,
        owner: String,
        text_budget: Option<&Bound<'_, PyAny>>,
        run_timeout: Option<f64>,
        max_run_timeout: Option<f64>,
        on_timeout: Option<&str>,
        wait_timeout: Option<f64>,
        max_wait_timeout: Option<f64>,
        output_bytes: Option<&Bound<'_, PyAny>>,
        cwd: Option<PathBuf>,
        env: Option<Vec<(String, String)>>,
        raw_text: bool,
        tty_size: Option<(u64, u64)>,
    ) -> PyResult<Self> {
        let mut config = ToolBoxConfig::default();
        if let Some(v) = text_budget {
            config.text_budget = size("text_budget", v)?;
        }
        if let Some(s) = run_timeout {
            config.run_timeout = duration("run_timeout", s)?;
        }
        if let Some(s) = max_run_timeout {
            config.max_run_timeout = duration("max_run_timeout", s)?;
        }
        if let Some(policy) = self::on_timeout(on_timeout)? {
            config.on_timeout = policy;
        }
        if let Some(s) = wait_timeout {
            config.wait_timeout = duration("wait_timeout", s)?;
        }
        if let Some(s) = max_wait_timeout {
            config.max_wait_timeout = duration("max_wait_timeout", s)?;
        }
        if let Some(v) = output_bytes {
            config.output_bytes = size("output_bytes", v)?;
        }
        config.cwd = cwd;
        config.env = env.unwrap_or_default();
        config.raw_text = raw_text;
        if let Some((cols, rows)) = tty_size {
            config.tty_size = agent_tasks::terminal_size(cols, rows).map_err(core_err)?;
        }
        Ok(NativeToolBox {
            toolbox: std::sync::Mutex::new(
                ToolBox::with_config(manager.core().clone(), owner, config).map_err(core_err)?,
            ),
        })
    }

    /// The owner this toolbox acts for.
    #[getter]
    fn owner(&self) -> String {
        self.toolbox().owner().to_string()
    }

    /// Registers a subagent: `factory(args)` returns the starter of the
    /// agent's function bound to the model's arguments; `parameters` is the
    /// JSON Schema of the arguments (default `{"goal": string}`).
    #[pyo3(signature = (name, description, factory, parameters=None))]
    fn register_agent(
        &self,
        name: String,
        description: String,
        factory: Py<PyAny>,
        parameters: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let mut agent = crate::context::python_agent(name, description, factory);
        if let Some(schema) = parameters {
            let schema = to_json(schema).map_err(|what| {
                invalid_argument(
                    "parameters",
                    format!("must be a JSON Schema dict; it holds {what}"),
                )
            })?;
            agent = agent.parameters(schema);
        }
        let mut toolbox = self
            .toolbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        toolbox.register_agent(agent).map_err(core_err)?;
        Ok(())
    }

    /// Registers an ACP coding agent the model can delegate to with
    /// `task_delegate` (its one argument, `goal`, is the first prompt): each
    /// delegation starts `argv` as an ACP task in the background, with
    /// these settings (as `run_acp` takes them); its terminals are process
    /// tasks of this toolbox's manager.
    #[pyo3(signature = (
        name, description, argv, *, cwd=None, env=None, permissions=None, files="cwd",
        show_thoughts=false, idle_timeout=None, cancel_grace=None, kill_grace=None,
        handshake_timeout=None, max_message_bytes=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn register_acp_agent(
        &self,
        name: String,
        description: String,
        argv: Vec<std::ffi::OsString>,
        cwd: Option<std::path::PathBuf>,
        env: Option<std::collections::HashMap<std::ffi::OsString, std::ffi::OsString>>,
        permissions: Option<&Bound<'_, PyAny>>,
        files: &str,
        show_thoughts: bool,
        idle_timeout: Option<f64>,
        cancel_grace: Option<f64>,
        kill_grace: Option<f64>,
        handshake_timeout: Option<f64>,
        max_message_bytes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let template = crate::acp::acp_template(
            argv,
            cwd,
            env,
            permissions,
            files,
            show_thoughts,
            [idle_timeout, cancel_grace, kill_grace, handshake_timeout],
            max_message_bytes,
        )?;
        let mut toolbox = self
            .toolbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        toolbox
            .register_agent(agent_tasks::tools::Agent::acp_from(
                name,
                description,
                template,
            ))
            .map_err(core_err)?;
        Ok(())
    }

    /// This toolbox's tool definitions (with `task_delegate` once an agent
    /// is registered), as dicts in `shape`.
    #[pyo3(signature = (shape="openai"))]
    fn definitions<'py>(&self, py: Python<'py>, shape: &str) -> PyResult<Bound<'py, PyList>> {
        let shape: ToolShape = agent_tasks::parse_name("shape", shape).map_err(core_err)?;
        let shaped: Vec<Value> = self
            .toolbox()
            .definitions()
            .iter()
            .map(|d| d.shaped(shape))
            .collect();
        to_dict(py, &shaped)?
            .cast_into::<PyList>()
            .map_err(Into::into)
    }

    /// Executes one tool call; `args` is a dict, a JSON string or `None`.
    /// Failures (unknown tool or id, bad argument) come back as a response
    /// with `is_error`, never as an exception.
    #[pyo3(signature = (name, args=None))]
    fn call(&self, name: String, args: Option<&Bound<'_, PyAny>>) -> PyResult<Pending> {
        let args = match args {
            None => Value::Null,
            Some(a) if a.is_none() => Value::Null,
            Some(a) => match a.cast::<PyString>() {
                // The core parses a JSON string (and names what is wrong in it).
                Ok(s) => Value::String(s.to_str()?.to_string()),
                Err(_) => to_json(a).map_err(|what| {
                    invalid_argument(
                        "args",
                        format!("must be a dict or a JSON string; it holds {what}"),
                    )
                })?,
            },
        };
        let toolbox = self.toolbox();
        spawn(
            async move { Ok::<_, Failure>(Wire("ToolResponse", toolbox.call(&name, args).await)) },
        )
    }

    fn __repr__(&self) -> String {
        format!("NativeToolBox(owner={:?})", self.toolbox().owner())
    }
}
