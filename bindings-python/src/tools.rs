//! Model-facing tools: the core's tool definitions in the three shapes, and
//! its [`ToolBox`] dispatcher as `NativeToolBox`, with JSON in (a dict or a
//! JSON string) and a `ToolResponse` (generated, `types`) out. The tools' behaviour (the
//! argument checks, the texts) is the core's.

use std::ffi::OsString;

use agent_tasks::tools::{definitions_in, ToolBox, ToolShape};
use agent_tasks::{AcpOptions, ToolBoxOptions};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use serde_json::Value;

use crate::convert::{text, to_json};
use crate::errors::{core_err, invalid_argument};
use crate::manager::NativeManager;
use crate::options::parse;
use crate::pending::{spawn, Failure, Pending};
use crate::runtime::lock;
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
        lock(&self.toolbox).clone()
    }
}

#[pymethods]
impl NativeToolBox {
    /// A toolbox acting for `owner`, with `options` (a dict of the core's
    /// [`agent_tasks::ToolBoxOptions`]).
    #[new]
    fn new(
        manager: PyRef<'_, NativeManager>,
        owner: &Bound<'_, PyAny>,
        options: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let owner = text("owner", owner)?;
        let config = parse::<ToolBoxOptions>("ToolBox", options)?
            .config()
            .map_err(core_err)?;
        let toolbox = ToolBox::with_config(manager.core().clone(), owner, config);
        Ok(NativeToolBox {
            toolbox: std::sync::Mutex::new(toolbox.map_err(core_err)?),
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
        name: &Bound<'_, PyAny>,
        description: &Bound<'_, PyAny>,
        factory: Py<PyAny>,
        parameters: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let (name, description) = (text("name", name)?, text("description", description)?);
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
        let mut toolbox = lock(&self.toolbox);
        toolbox.register_agent(agent).map_err(core_err)?;
        Ok(())
    }

    /// Registers an ACP coding agent the model can delegate to with
    /// `task_delegate` (its one argument, `goal`, is the first prompt): each
    /// delegation starts `argv` as an ACP task in the background, with
    /// `options` (as `spawn_acp` takes them); its terminals are process
    /// tasks of this toolbox's manager.
    fn register_acp_agent(
        &self,
        name: &Bound<'_, PyAny>,
        description: &Bound<'_, PyAny>,
        argv: Vec<OsString>,
        permissions: Option<&Bound<'_, PyAny>>,
        options: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let template = parse::<AcpOptions>("register_acp_agent", options)?
            .template(argv, crate::acp::policy(permissions)?)
            .map_err(core_err)?;
        let (name, description) = (text("name", name)?, text("description", description)?);
        let agent = agent_tasks::tools::Agent::acp_from(name, description, template);
        let mut toolbox = lock(&self.toolbox);
        toolbox.register_agent(agent).map_err(core_err)?;
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
    fn call(&self, name: &Bound<'_, PyAny>, args: Option<&Bound<'_, PyAny>>) -> PyResult<Pending> {
        let name = text("name", name)?;
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
