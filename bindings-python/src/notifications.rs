//! The core's [`agent_tasks::Notification`] as a typed Python object. The
//! manager's `notifications(owner)` and `ack(ids)` are in `manager`.

use pyo3::prelude::*;

use crate::convert::to_dict;
use crate::types::{q, CancelReason, ExitInfo};

/// A message for the host to show its model, pending until acknowledged.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct Notification(pub(crate) agent_tasks::Notification);

#[pymethods]
impl Notification {
    /// `<task-id>.<occasion>`; pass it (or this object) to `ack`.
    #[getter]
    fn id(&self) -> &str {
        &self.0.id
    }
    /// Why it was made: `finished`, `lost`, `orphaned`, `watch_match`,
    /// `watch_stopped`, `progress` or `stalled`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.0.kind.as_str()
    }
    /// The task it is about.
    #[getter]
    fn task_id(&self) -> &str {
        self.0.task_id.as_str()
    }
    /// The task's owner.
    #[getter]
    fn owner(&self) -> &str {
        &self.0.owner
    }
    /// The task's kind.
    #[getter]
    fn task_kind(&self) -> &str {
        &self.0.task_kind
    }
    /// The task's description.
    #[getter]
    fn description(&self) -> &str {
        &self.0.description
    }
    /// The task's status when the notification was made.
    #[getter]
    fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// How its process ended.
    #[getter]
    fn exit(&self) -> Option<ExitInfo> {
        self.0.exit.map(ExitInfo)
    }
    /// Why it was stopped.
    #[getter]
    fn reason(&self) -> Option<CancelReason> {
        self.0.reason.clone().map(CancelReason)
    }
    /// The error of a failed task.
    #[getter]
    fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// Run time in milliseconds.
    #[getter]
    fn duration_ms(&self) -> u64 {
        self.0.duration_ms
    }
    /// The last lines of output (for a heartbeat: of the output since the
    /// last one).
    #[getter]
    fn output_tail(&self) -> &str {
        &self.0.output_tail
    }
    /// The value the task returned, rendered for a model (a subagent's
    /// answer).
    #[getter]
    fn value(&self) -> Option<&str> {
        self.0.value.as_deref()
    }
    /// The delegation a subagent answers: `{"agent": ..., "arguments": ...}`.
    #[getter]
    fn source<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match &self.0.source {
            Some(source) => {
                let value = serde_json::json!({
                    "agent": source.agent,
                    "arguments": source.arguments,
                });
                crate::convert::from_json(py, &value).map(Some)
            }
            None => Ok(None),
        }
    }
    /// What the occasion adds (the matching line of a watch match, ...).
    #[getter]
    fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    /// When it was made (milliseconds since the Unix epoch).
    #[getter]
    fn created_at_ms(&self) -> u64 {
        self.0.created_at_ms
    }
    /// The text for the model: metadata first, then the output tail.
    #[getter]
    fn text(&self) -> &str {
        &self.0.text
    }

    /// The wire form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "Notification(id={}, kind={}, status={})",
            q(&self.0.id),
            q(self.0.kind.as_str()),
            q(self.0.status.as_str())
        )
    }
}
