//! The event stream: the core's [`EventSubscription`] as `NativeEvents`,
//! and its items, [`Event`] and [`Lagged`], as typed Python objects.
//!
//! A received item is never lost to a cancelled wait: `wait()` (a
//! [`Pending`]) receives the next item into a one-item stash, and Python
//! takes it from there with `take()`, a plain call. A wait that is
//! cancelled or times out leaves the stash as it is, and the next `wait()`
//! returns at once when it holds an item. `agent_tasks._events` builds the
//! async and blocking iterators on these two calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use agent_tasks::{EventItem, EventKind, EventSubscription};
use pyo3::prelude::*;

use crate::convert::{to_dict, wait_limit};
use crate::pending::{spawn, Failure, Pending};
use crate::types::{opt, q, CancelReason, ExitInfo};

/// One lifecycle event of one task. `type` says what happened; the fields
/// of other types are `None`.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct Event(pub(crate) agent_tasks::Event);

#[pymethods]
impl Event {
    /// Increases by one with every event of the manager (from 1).
    #[getter]
    fn seq(&self) -> u64 {
        self.0.seq
    }
    /// The task it is about.
    #[getter]
    fn task_id(&self) -> &str {
        self.0.task_id.as_str()
    }
    /// When it happened (milliseconds since the Unix epoch).
    #[getter]
    fn timestamp_ms(&self) -> u64 {
        self.0.timestamp_ms
    }
    /// What happened: `task.started`, `task.detached`, `task.spilled`,
    /// `task.finished`, `task.lost`, `task.orphaned`, `task.output_dropped`,
    /// `task.watch_matched`, `task.heartbeat`, `task.stalled` or
    /// `task.sink_error`.
    #[getter(r#type)]
    fn type_(&self) -> &'static str {
        self.0.kind.type_name()
    }
    /// `task.started`, `task.queued`: the task's kind.
    #[getter]
    fn kind(&self) -> Option<&str> {
        match &self.0.kind {
            EventKind::Started { kind, .. } | EventKind::Queued { kind, .. } => Some(kind),
            _ => None,
        }
    }
    /// `task.started`, `task.queued`: its description.
    #[getter]
    fn description(&self) -> Option<&str> {
        match &self.0.kind {
            EventKind::Started { description, .. } | EventKind::Queued { description, .. } => {
                Some(description)
            }
            _ => None,
        }
    }
    /// `task.started`, `task.queued`: its owner.
    #[getter]
    fn owner(&self) -> Option<&str> {
        match &self.0.kind {
            EventKind::Started { owner, .. } | EventKind::Queued { owner, .. } => Some(owner),
            _ => None,
        }
    }
    /// `task.started`: true if it started in the background.
    #[getter]
    fn background(&self) -> Option<bool> {
        match &self.0.kind {
            EventKind::Started { background, .. } => Some(*background),
            _ => None,
        }
    }
    /// `task.spilled`: bytes that were buffered in memory and written first.
    #[getter]
    fn buffered_bytes(&self) -> Option<u64> {
        match &self.0.kind {
            EventKind::Spilled { buffered_bytes, .. } => Some(*buffered_bytes),
            _ => None,
        }
    }
    /// `task.spilled`: path of the log.
    #[getter]
    fn log_path(&self) -> Option<&str> {
        match &self.0.kind {
            EventKind::Spilled { log_path, .. } => Some(log_path),
            _ => None,
        }
    }
    /// `task.finished`: its terminal status.
    #[getter]
    fn status(&self) -> Option<&'static str> {
        match &self.0.kind {
            EventKind::Finished { status, .. } => Some(status.as_str()),
            _ => None,
        }
    }
    /// `task.finished`: how its process ended.
    #[getter]
    fn exit(&self) -> Option<ExitInfo> {
        match &self.0.kind {
            EventKind::Finished { exit, .. } => exit.map(ExitInfo),
            _ => None,
        }
    }
    /// `task.finished`: why it was stopped, if it was.
    #[getter]
    fn reason(&self) -> Option<CancelReason> {
        match &self.0.kind {
            EventKind::Finished { reason, .. } => reason.clone().map(CancelReason),
            _ => None,
        }
    }
    /// `task.finished`: the error of a failed task; `task.sink_error`: the
    /// sink's error.
    #[getter]
    fn error(&self) -> Option<&str> {
        match &self.0.kind {
            EventKind::Finished { error, .. } => error.as_deref(),
            EventKind::SinkError { error, .. } => Some(error),
            _ => None,
        }
    }
    /// `task.finished`: run time in milliseconds.
    #[getter]
    fn duration_ms(&self) -> Option<u64> {
        match &self.0.kind {
            EventKind::Finished { duration_ms, .. } => Some(*duration_ms),
            _ => None,
        }
    }
    /// `task.orphaned`: the orphan's process (group) id.
    #[getter]
    fn pid(&self) -> Option<u32> {
        match &self.0.kind {
            EventKind::Orphaned { pid } => Some(*pid),
            _ => None,
        }
    }
    /// `task.output_dropped`: the disk cap that was reached, in bytes.
    #[getter]
    fn disk_limit(&self) -> Option<u64> {
        match &self.0.kind {
            EventKind::OutputDropped { disk_limit } => Some(*disk_limit),
            _ => None,
        }
    }
    /// `task.watch_matched`: the matching line.
    #[getter]
    fn line(&self) -> Option<&str> {
        match &self.0.kind {
            EventKind::WatchMatched { line } => Some(line),
            _ => None,
        }
    }
    /// `task.heartbeat`: bytes written since the last heartbeat.
    #[getter]
    fn new_bytes(&self) -> Option<u64> {
        match &self.0.kind {
            EventKind::Heartbeat { new_bytes } => Some(*new_bytes),
            _ => None,
        }
    }
    /// `task.stalled`: how long it has been silent, in milliseconds.
    #[getter]
    fn idle_ms(&self) -> Option<u64> {
        match &self.0.kind {
            EventKind::Stalled { idle_ms } => Some(*idle_ms),
            _ => None,
        }
    }
    /// `task.sink_error`: `output.log` or `host`.
    #[getter]
    fn sink(&self) -> Option<&str> {
        match &self.0.kind {
            EventKind::SinkError { sink, .. } => Some(sink),
            _ => None,
        }
    }

    /// The wire form as a dict (`{"seq", "task_id", "timestamp_ms", "type", ...}`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "Event(seq={}, type={}, task_id={}, status={})",
            self.0.seq,
            q(self.type_()),
            q(self.0.task_id.as_str()),
            opt(self.status().map(q))
        )
    }
}

/// The subscriber fell behind the bus: `missed` events were skipped.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct Lagged {
    missed: u64,
}

#[pymethods]
impl Lagged {
    /// How many events were missed.
    #[getter]
    fn missed(&self) -> u64 {
        self.missed
    }

    /// The wire form as a dict (`{"item": "lagged", "missed": n}`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(
            py,
            &EventItem::Lagged {
                missed: self.missed,
            },
        )
    }

    fn __repr__(&self) -> String {
        format!("Lagged(missed={})", self.missed)
    }
}

/// An item as its Python object: an [`Event`] or a [`Lagged`].
fn item_object(py: Python<'_>, item: EventItem) -> PyResult<Py<PyAny>> {
    Ok(match item {
        EventItem::Event(e) => Event(e).into_pyobject(py)?.into_any().unbind(),
        EventItem::Lagged { missed } => Lagged { missed }.into_pyobject(py)?.into_any().unbind(),
    })
}

struct Shared {
    /// Held by the one wait that receives.
    subscription: tokio::sync::Mutex<EventSubscription>,
    /// An item received and not yet taken.
    stash: Mutex<Option<EventItem>>,
    /// Set once the bus is gone (the manager and its tasks): no item will come.
    closed: AtomicBool,
}

impl Shared {
    fn stash(&self) -> std::sync::MutexGuard<'_, Option<EventItem>> {
        self.stash.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A live subscription to a manager's events (see the module docs).
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct NativeEvents {
    shared: Arc<Shared>,
}

impl NativeEvents {
    pub(crate) fn new(subscription: EventSubscription) -> Self {
        NativeEvents {
            shared: Arc::new(Shared {
                subscription: tokio::sync::Mutex::new(subscription),
                stash: Mutex::new(None),
                closed: AtomicBool::new(false),
            }),
        }
    }
}

#[pymethods]
impl NativeEvents {
    /// Waits until an item is ready to `take()` or the bus is gone
    /// (`closed`); `TimeoutError` when `timeout` seconds (`None`: no limit)
    /// pass first.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, timeout: Option<f64>) -> PyResult<Pending> {
        let limit = wait_limit("timeout", timeout)?;
        let shared = self.shared.clone();
        spawn(async move {
            let mut subscription = shared.subscription.lock().await;
            if shared.stash().is_some() {
                return Ok(());
            }
            let received = match limit {
                None => subscription.recv().await,
                Some(limit) => match tokio::time::timeout(limit, subscription.recv()).await {
                    Ok(received) => received,
                    Err(_) => {
                        return Err(Failure::TimedOut(format!(
                            "no event came within {} s",
                            limit.as_secs_f64()
                        )))
                    }
                },
            };
            match received {
                Some(item) => *shared.stash() = Some(item),
                None => shared.closed.store(true, Ordering::Release),
            }
            Ok(())
        })
    }

    /// The item a `wait()` received, if any (it is taken once).
    fn take(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let item = self.shared.stash().take();
        item.map(|i| item_object(py, i)).transpose()
    }

    /// The next item if one is ready, without waiting.
    fn try_recv(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(item) = self.shared.stash().take() {
            return item_object(py, item).map(Some);
        }
        // While a wait is receiving, it will stash what comes next.
        let Ok(mut subscription) = self.shared.subscription.try_lock() else {
            return Ok(None);
        };
        subscription
            .try_recv()
            .map(|i| item_object(py, i))
            .transpose()
    }

    /// True once the bus is gone and every item was taken.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire) && self.shared.stash().is_none()
    }

    fn __repr__(&self) -> String {
        format!("NativeEvents(closed={})", self.closed())
    }
}
