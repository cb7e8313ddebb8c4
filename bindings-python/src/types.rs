//! The core's wire types handed to Python as the classes of
//! `agent_tasks._types`, which `scripts/gen_python_types.py` generates from
//! the core's JSON Schemas (`schema/`). A value goes over as it is, in a
//! [`WireValue`]: its `serde` form (a JSON tree) is made when the class
//! first reads a field, and each field becomes a Python value (through
//! `pythonize`) when read, so a `poll` whose answer is not read costs no
//! conversion. Bytes the wire gives as text (a poll's data, a preview's
//! head and tail) are handed beside it.

use std::sync::{Arc, OnceLock};

use agent_tasks::{ForegroundOutcome, PollResponse, Preview};
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;
use serde_json::Value;

static TYPES: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The generated class `name` of `agent_tasks._types`.
fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    TYPES
        .get_or_try_init(py, || py.import("agent_tasks._types").map(Bound::unbind))?
        .bind(py)
        .getattr(name)
}

/// A serialisable core value as its wire form (a dict, for a struct).
pub(crate) fn to_dict<'py>(
    py: Python<'py>,
    value: &impl serde::Serialize,
) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value)
        .map_err(|e| PyTypeError::new_err(format!("cannot convert: {e}")))
}

/// A core value and, once asked for, its JSON tree.
struct Tree {
    json: OnceLock<Value>,
    make: Box<dyn Fn() -> Value + Send + Sync>,
}

/// A wire object not converted yet: a core value's JSON tree, at `pointer`
/// (a JSON pointer to a nested object; empty for the root).
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct WireValue {
    tree: Arc<Tree>,
    pointer: String,
}

impl WireValue {
    fn of<T: serde::Serialize + Send + Sync + 'static>(value: T) -> Self {
        // The core's wire types always serialise (no map with non-string keys).
        let make = move || serde_json::to_value(&value).unwrap_or(Value::Null);
        WireValue {
            tree: Arc::new(Tree {
                json: OnceLock::new(),
                make: Box::new(make),
            }),
            pointer: String::new(),
        }
    }

    fn value(&self) -> &Value {
        let root = self.tree.json.get_or_init(|| (self.tree.make)());
        root.pointer(&self.pointer).unwrap_or(&Value::Null)
    }
}

#[pymethods]
impl WireValue {
    /// The field `key`, as a plain Python value.
    fn __getitem__<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.value().get(key) {
            Some(v) => to_dict(py, v),
            None => Err(PyKeyError::new_err(key.to_string())),
        }
    }

    /// The field `key` as a plain Python value, or `default` when absent.
    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.value().get(key) {
            Some(v) => to_dict(py, v),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    /// The object at `key`, not converted yet; `None` when null or absent.
    fn at(&self, key: &str) -> Option<WireValue> {
        self.value()
            .get(key)
            .filter(|v| v.is_object())
            .map(|_| WireValue {
                tree: self.tree.clone(),
                pointer: format!("{}/{key}", self.pointer),
            })
    }

    /// The whole value, as plain Python values (a dict).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, self.value())
    }
}

/// A core value as the generated class `.0` over its [`WireValue`]; with no
/// class name, the plain wire dict.
pub(crate) struct Wire<T>(pub(crate) &'static str, pub(crate) T);

impl<'py, T: serde::Serialize + Send + Sync + 'static> IntoPyObject<'py> for Wire<T> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            "" => to_dict(py, &self.1),
            name => class(py, name)?.call1((WireValue::of(self.1),)),
        }
    }
}

/// A task's info as `TaskInfo`.
pub(crate) fn info(info: agent_tasks::TaskInfo) -> Wire<agent_tasks::TaskInfo> {
    Wire("TaskInfo", info)
}

/// A foreground wait's answer as `Finished` or `Detached` (`collect`'s
/// `Finished` too).
pub(crate) fn outcome(outcome: ForegroundOutcome) -> Wire<ForegroundOutcome> {
    let name = match outcome {
        ForegroundOutcome::Finished(_) => "Finished",
        ForegroundOutcome::Detached(_) => "Detached",
    };
    Wire(name, outcome)
}

/// A poll's page as `PollResult`, with its bytes.
pub(crate) struct Page(pub(crate) PollResponse);

impl<'py> IntoPyObject<'py> for Page {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let data = PyBytes::new(py, &self.0.data);
        class(py, "PollResult")?.call1((WireValue::of(self.0), data))
    }
}

/// A preview as `Preview`, with its bytes and the core's text.
pub(crate) fn preview(py: Python<'_>, preview: Preview) -> PyResult<Bound<'_, PyAny>> {
    let (head, tail, text) = (
        PyBytes::new(py, &preview.head),
        PyBytes::new(py, &preview.tail),
        preview.text(),
    );
    class(py, "Preview")?.call1((WireValue::of(preview), head, tail, text))
}

/// The text of a cancel reason, as the core writes it (`cancelled: …`):
/// `str()` of a `CancelReason`.
#[pyfunction]
#[pyo3(signature = (kind, message=None))]
pub fn cancel_reason_text(kind: &str, message: Option<String>) -> PyResult<String> {
    let kind: agent_tasks::CancelKind =
        agent_tasks::parse_name("kind", kind).map_err(crate::errors::core_err)?;
    Ok(agent_tasks::CancelReason { kind, message }.to_string())
}
