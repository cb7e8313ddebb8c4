//! The core's wire types handed to Python as the classes of
//! `agent_tasks._types`, which `scripts/gen_python_types.py` generates from
//! the core's JSON Schemas (`schema/`). A value goes over as it is, in a
//! [`WireValue`]; a field read becomes a Python value (through `pythonize`)
//! then, found in the value's `serde` form by [`walk`] without making the
//! others, so a `poll` whose answer is not read costs no conversion, and
//! one whose `.text` is read converts that string only. Bytes the wire gives as text (a poll's data, a preview's
//! head and tail) are handed beside it.

use std::sync::Arc;

use agent_tasks::{ForegroundOutcome, PollResponse, Preview};
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;

use crate::walk;

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
    value: &(impl serde::Serialize + ?Sized),
) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value)
        .map_err(|e| PyTypeError::new_err(format!("cannot convert: {e}")))
}

/// A core value, to read from by a path of field names ([`walk`]).
trait Root: Send + Sync {
    /// The value at `path`, as plain Python values; `None` when absent.
    fn get<'py>(&self, py: Python<'py>, path: &[&str]) -> Option<PyResult<Bound<'py, PyAny>>>;
    /// Whether the value at `path` is an object (not absent nor null).
    fn is_object(&self, path: &[&str]) -> bool;
}

impl<T: serde::Serialize + Send + Sync> Root for T {
    fn get<'py>(&self, py: Python<'py>, path: &[&str]) -> Option<PyResult<Bound<'py, PyAny>>> {
        walk::find(self, path, Pythonize(py))
    }

    fn is_object(&self, path: &[&str]) -> bool {
        walk::find(self, path, IsObject) == Some(true)
    }
}

/// The value found, as plain Python values.
struct Pythonize<'py>(Python<'py>);

impl<'py> walk::Visit for Pythonize<'py> {
    type Out = PyResult<Bound<'py, PyAny>>;
    fn visit<T: serde::Serialize + ?Sized>(self, value: &T) -> Self::Out {
        to_dict(self.0, value)
    }
}

/// Whether the value found is an object.
struct IsObject;

impl walk::Visit for IsObject {
    type Out = bool;
    fn visit<T: serde::Serialize + ?Sized>(self, value: &T) -> bool {
        walk::is_object(value)
    }
}

/// A wire object not converted: a core value, and the path of field names
/// to a nested object in it (empty for the value itself). A field becomes
/// a Python value when read; the others are skipped, not made.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct WireValue {
    root: Arc<dyn Root>,
    path: Vec<String>,
}

impl WireValue {
    fn of<T: serde::Serialize + Send + Sync + 'static>(value: T) -> Self {
        WireValue {
            root: Arc::new(value),
            path: Vec::new(),
        }
    }

    /// The path to field `key` (the value itself for `None`).
    fn path<'a>(&'a self, key: Option<&'a str>) -> Vec<&'a str> {
        self.path.iter().map(String::as_str).chain(key).collect()
    }
}

#[pymethods]
impl WireValue {
    /// The field `key`, as a plain Python value.
    fn __getitem__<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        self.root
            .get(py, &self.path(Some(key)))
            .unwrap_or_else(|| Err(PyKeyError::new_err(key.to_string())))
    }

    /// The field `key` as a plain Python value, or `default` when absent.
    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.root
            .get(py, &self.path(Some(key)))
            .unwrap_or_else(|| Ok(default.unwrap_or_else(|| py.None().into_bound(py))))
    }

    /// The object at `key`, not converted; `None` when null or absent.
    fn at(&self, key: &str) -> Option<WireValue> {
        let path = self.path(Some(key));
        self.root.is_object(&path).then(|| WireValue {
            root: self.root.clone(),
            path: path.into_iter().map(str::to_string).collect(),
        })
    }

    /// The whole value, as plain Python values (a dict).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.root
            .get(py, &self.path(None))
            .unwrap_or_else(|| Ok(py.None().into_bound(py)))
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
