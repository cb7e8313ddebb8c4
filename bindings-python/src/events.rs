//! The event stream: the core's [`EventSubscription`] as `NativeEvents`;
//! its items are the generated `Event` and `Lagged` (`types`).
//!
//! A received item is never lost to a cancelled wait: `wait()` (a
//! [`Pending`]) receives the next item into a one-item stash, and Python
//! takes it from there with `take()`, a plain call. A wait that is
//! cancelled or times out leaves the stash as it is, and the next `wait()`
//! returns at once when it holds an item. `agent_tasks._events` builds the
//! async and blocking iterators on these two calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use agent_tasks::{EventItem, EventSubscription};
use pyo3::prelude::*;

use crate::convert::limit;
use crate::pending::{spawn, Failure, Pending};
use crate::runtime::lock;
use crate::types::Wire;

/// An item as its generated class: `Event`, or `Lagged` (whose wire form
/// is the item's, `{"item": "lagged", "missed": n}`).
fn item_object(py: Python<'_>, item: EventItem) -> PyResult<Py<PyAny>> {
    let object = match item {
        EventItem::Event(e) => Wire("Event", e).into_pyobject(py)?,
        lagged => Wire("Lagged", lagged).into_pyobject(py)?,
    };
    Ok(object.unbind())
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
        lock(&self.stash)
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
    fn wait(&self, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Pending> {
        let limit = limit("timeout", timeout)?;
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
