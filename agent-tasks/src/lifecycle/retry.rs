//! Saving again what a full disk refused. A task whose result or manifest
//! could not be written, and a notification whose file could not be, stay
//! true in memory (the task is listed, its end can be collected, the
//! notification is pending) and are marked unsaved; while anything is, a
//! retry runs every [`RETRY_EVERY`] on the manager's runtime and saves them
//! once the disk takes them again (and `shutdown` tries once more before it
//! lets the root go). Retries write only while the root is held: a retry
//! holds the root's lock for its writes, so the root is not given up in the
//! middle of one.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::util::lock;

use super::{Services, TaskEntry};

/// How often unsaved records are tried again.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// What waits to be saved again.
#[derive(Default)]
pub(crate) struct Unsaved {
    state: Mutex<UnsavedState>,
}

#[derive(Default)]
struct UnsavedState {
    tasks: Vec<Weak<TaskEntry>>,
    notifications: bool,
    /// A retry loop is running.
    retrying: bool,
}

impl Services {
    /// Marks a task as having records to save again, and starts retrying.
    pub(crate) fn keep_unsaved(self: &Arc<Self>, entry: &Arc<TaskEntry>) {
        let mut st = lock(&self.unsaved.state);
        let weak = Arc::downgrade(entry);
        if !st.tasks.iter().any(|t| Weak::ptr_eq(t, &weak)) {
            st.tasks.push(weak);
        }
        self.start_retries(&mut st);
    }

    /// Marks the notification queue as holding unsaved notifications, and
    /// starts retrying.
    pub(crate) fn keep_unsaved_notifications(self: &Arc<Self>) {
        let mut st = lock(&self.unsaved.state);
        st.notifications = true;
        self.start_retries(&mut st);
    }

    fn start_retries(self: &Arc<Self>, st: &mut UnsavedState) {
        if st.retrying {
            return;
        }
        st.retrying = true;
        // Weak: the retries end with the manager's services.
        let services = Arc::downgrade(self);
        self.runtime.spawn(async move {
            loop {
                tokio::time::sleep(RETRY_EVERY).await;
                let Some(services) = services.upgrade() else {
                    return;
                };
                let done = tokio::task::spawn_blocking(move || services.save_unsaved())
                    .await
                    // Only a runtime shutting down fails it: stop retrying.
                    .unwrap_or(true);
                if done {
                    return;
                }
            }
        });
    }

    /// Tries once to save everything unsaved. Returns true when nothing is
    /// left to save (or the root is no longer held: nothing may be written
    /// then), and the retries stop.
    pub(crate) fn save_unsaved(&self) -> bool {
        let (tasks, notifications) = {
            let mut st = lock(&self.unsaved.state);
            (
                std::mem::take(&mut st.tasks),
                std::mem::take(&mut st.notifications),
            )
        };
        let root = self.root.upgrade();
        let held = root.as_ref().map(|root| lock(&root.lock));
        if held.as_ref().is_some_and(|held| held.is_some()) {
            if notifications && !self.notifications.save_unsaved() {
                lock(&self.unsaved.state).notifications = true;
            }
            // A task that still cannot be saved marks itself again.
            for entry in tasks.iter().filter_map(Weak::upgrade) {
                entry.save_unsaved();
            }
        }
        drop(held);
        let mut st = lock(&self.unsaved.state);
        let done = root.is_none_or(|root| lock(&root.lock).is_none())
            || (st.tasks.is_empty() && !st.notifications);
        if done {
            st.tasks.clear();
            st.notifications = false;
            st.retrying = false;
        }
        done
    }
}
