//! The life of a task, one file per job:
//!
//! - `state`: what a task is at one moment ([`state::Phase`]: running in the
//!   foreground or background, or ended with its result) and the pure
//!   transitions between those phases;
//! - `entry`: [`TaskEntry`], the task as the manager holds it (its fixed
//!   facts, its state behind a lock, its live handles), and the verbs that
//!   act on one task (detach, cancel request, send, waits);
//! - `record`: persisting and announcing (manifest, events, result,
//!   notifications, the small record of a foreground process);
//! - `monitor`: watch matches, heartbeats and stalls;
//! - `driver`: the future that runs a task beside its timers and records
//!   its end; the timers live inside it, so they end with the task;
//! - `restore`: entries read back from a root at open;
//! - `retry`: saving again what a full disk refused.
//!
//! Lower modules (`output`, `store`, `events`, `notifications`, `watch`,
//! `process`) never import from here: they return what happened, or call a
//! closure this module gave them, never while holding a lock of their own.

mod driver;
mod entry;
mod monitor;
mod queue;
mod record;
mod restore;
mod retry;
mod state;
mod wait;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::capacity::Capacity;
use crate::events::EventBus;
use crate::id::TaskId;
use crate::notifications::NotificationQueue;
use crate::store::{RootLock, TaskStore};
use crate::util::lock;

pub(crate) use driver::drive;
pub(crate) use entry::{DetachError, NewEntry, Settled, TaskEntry, TaskSpec};
pub(crate) use queue::{Announce, Pending};
pub(crate) use restore::{FoundRunning, SupervisedAtOpen};

/// All tasks of a manager plus the capacity counters, under one lock so a
/// spawn's cap check and insert (and a detach's) are atomic. Lock order:
/// registry, then a task's state; never the other way.
#[derive(Default)]
pub(crate) struct Registry {
    pub tasks: HashMap<TaskId, Arc<TaskEntry>>,
    pub capacity: Capacity,
    pub closed: bool,
    /// Background spawns waiting for a slot, oldest first (see `queue`).
    pub queue: std::collections::VecDeque<Pending>,
}

/// The hold on a root folder: its lock, and the private temporary root if
/// the manager made one. The manager and every running task's driver keep an
/// `Arc` of it, so the root stays locked (and a temporary root stays on disk)
/// until the last writer is done, even when the manager was dropped without
/// `shutdown` while a task was still in its stop grace or kept alive.
pub(crate) struct RootHold {
    lock: Mutex<Option<RootLock>>,
    /// Declared last: removed after the lock is dropped (or at once by
    /// `remove_temp_root_now`).
    temp_root: Mutex<Option<tempfile::TempDir>>,
}

impl RootHold {
    pub(crate) fn new(lock: RootLock, temp_root: Option<tempfile::TempDir>) -> Arc<Self> {
        Arc::new(RootHold {
            lock: Mutex::new(Some(lock)),
            temp_root: Mutex::new(temp_root),
        })
    }

    /// Gives the root up, so another manager may open it.
    pub(crate) fn release(&self) {
        lock(&self.lock).take();
    }

    /// True while the manager's private temporary root is on disk.
    pub(crate) fn has_temp_root(&self) -> bool {
        lock(&self.temp_root).is_some()
    }

    /// For a host that is exiting: gives the root up and removes a private
    /// temporary root now, rather than when the last task's driver lets go
    /// of its hold, which never comes once the process is gone. Returns
    /// true if a temporary root was removed.
    pub(crate) fn remove_temp_root_now(&self) -> bool {
        let temp = lock(&self.temp_root).take();
        let Some(temp) = temp else {
            return false;
        };
        self.release();
        // A removal that fails (a file held open elsewhere) leaves what it
        // could not remove: the process is exiting, nothing is left to tell.
        let _ = temp.close();
        true
    }
}

/// What every task of a manager shares: the event bus, the task folders,
/// the notification queue, the background caps.
pub(crate) struct Services {
    pub bus: EventBus,
    pub store: TaskStore,
    pub notifications: NotificationQueue,
    pub notify_host_cancels: bool,
    pub max_background: Option<usize>,
    pub max_background_per_owner: Option<usize>,
    /// Caps on running tasks per kind.
    pub max_running_of_kind: HashMap<String, usize>,
    /// The manager's runtime: file work that syncs to disk runs on its
    /// blocking pool, never on a worker thread.
    pub runtime: tokio::runtime::Handle,
    /// The gate process spawns pass (closed by
    /// `TaskManager::kill_processes_now`).
    pub spawn_gate: Arc<crate::spawn_gate::SpawnGate>,
    /// The manager's hold on its root: retries write only while it holds.
    pub root: std::sync::Weak<RootHold>,
    /// Records a full disk refused, to save again (see `retry`).
    pub unsaved: retry::Unsaved,
}
