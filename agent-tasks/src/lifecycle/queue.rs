//! Queueing over capacity: with `ManagerConfig::queue_over_capacity`, a
//! background spawn over a cap (background or kind) waits in the registry's FIFO queue (status
//! `queued`, counted in no cap) instead of failing. When a slot frees, the
//! queued tasks that fit start, oldest first (one that does not fit its
//! owner's cap does not hold back the others). Cancelling a queued task
//! ends it `cancelled` without it ever running. Once the registry is closed
//! (`shutdown` began) nothing leaves the queue to start: closing takes every
//! queued task out at once, under the same lock a freed slot is handed out
//! under, and they end unstarted.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::context::TaskContext;
use crate::info::CancelReason;
use crate::task::BackgroundTask;
use crate::util::lock;

use super::{drive, Registry, RootHold, Services, TaskEntry};

/// A task waiting in the queue, with what its driver needs to start.
pub(crate) struct Pending {
    pub entry: Arc<TaskEntry>,
    pub task: Box<dyn BackgroundTask>,
    pub ctx: TaskContext,
    pub grace: Duration,
    pub root: Arc<RootHold>,
    pub announce: Announce,
}

/// What a task's start tells subscribers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Announce {
    /// A new task: `task.started`.
    Start,
    /// A task found running under its supervisor at open (its start was
    /// told by an earlier host): `task.reattached`.
    Reattach { pid: Option<u32> },
}

impl Pending {
    /// Announces the start, lets the task start what it starts at once
    /// ([`BackgroundTask::on_start`]: an agent's process, so its pid is
    /// known when `spawn` returns) and runs the task's driver.
    pub(crate) fn start(self) {
        let Pending {
            entry,
            mut task,
            ctx,
            grace,
            root,
            announce,
        } = self;
        match announce {
            Announce::Start => entry.announce_start(),
            Announce::Reattach { pid } => {
                // Its folder exists (an earlier host made it): the event
                // goes to its journal now, not with a first save.
                crate::util::lock(&entry.state).persisted = true;
                entry.emit(crate::events::EventKind::Reattached { pid });
            }
        }
        let runtime = entry.services.runtime.clone();
        {
            // Inside the manager's runtime: what the task starts may need
            // it (a child process registers with its reactor), and the
            // caller's thread need not be in any (a Python or Node host).
            let _in_runtime = runtime.enter();
            task.on_start(&ctx);
        }
        // Boxed: the driver's future keeps its arguments for its whole life.
        runtime.spawn(drive(entry, Box::new((task, ctx)), grace, root));
    }

    /// Ends a task that never started (cancelled in the queue).
    pub(crate) fn cancel_unstarted(self) {
        let Pending {
            entry,
            task,
            ctx,
            root,
            ..
        } = self;
        drop((task, ctx));
        let runtime = entry.services.runtime.clone();
        runtime.spawn(async move { entry.finish_unstarted(root).await });
    }
}

impl Registry {
    /// Puts a task at the end of the queue (under the registry lock, so no
    /// slot can free unseen in between); its manifest says `queued`. The
    /// `task.queued` event goes out here, so it always comes before the
    /// task's `task.started`; it costs no I/O (the task has no folder yet:
    /// the event is kept in memory until the manifest is saved).
    pub(crate) fn enqueue(&mut self, pending: Pending) {
        let entry = &pending.entry;
        entry.mark_queued();
        entry.emit(crate::events::EventKind::Queued {
            kind: entry.spec.kind.clone(),
            description: entry.spec.description.clone(),
            owner: entry.spec.owner.clone(),
        });
        entry.persist_off_thread();
        self.queue.push_back(pending);
    }

    /// Closes the registry to spawns and takes every queued task out of the
    /// queue, its stop recorded with `reason`: after this no queued task can
    /// start (a slot freed later finds the queue empty, and a closed
    /// registry hands out none). The caller ends them with
    /// [`Pending::cancel_unstarted`] once the lock is released.
    pub(crate) fn close(&mut self, reason: &CancelReason) -> Vec<Pending> {
        self.closed = true;
        let taken: Vec<Pending> = self.queue.drain(..).collect();
        for pending in &taken {
            let entry = &pending.entry;
            // Under the state lock, as every stop request (see `request_cancel`).
            let _st = lock(&entry.state);
            entry.cancel.cancel(reason.clone());
        }
        taken
    }

    /// Takes the queued tasks that fit the caps now, oldest first, counts
    /// them in the caps and marks them running. The caller starts them once
    /// the locks are released. None once the registry is closed: nothing
    /// starts after shutdown began.
    pub(crate) fn take_startable(&mut self, services: &Services) -> Vec<Pending> {
        let mut started = Vec::new();
        if self.closed {
            return started;
        }
        let mut i = 0;
        while i < self.queue.len() {
            let spec = &self.queue[i].entry.spec;
            let fits = self
                .capacity
                .check(
                    &spec.owner,
                    services.max_background,
                    services.max_background_per_owner,
                )
                .and_then(|()| {
                    self.capacity.check_kind(
                        &spec.kind,
                        services.max_running_of_kind.get(&spec.kind).copied(),
                    )
                })
                .is_ok();
            if !fits {
                i += 1;
                continue;
            }
            if let Some(pending) = self.queue.remove(i) {
                self.capacity.add(&pending.entry.spec.owner);
                self.capacity.add_kind(&pending.entry.spec.kind);
                lock(&pending.entry.state).start_queued(Instant::now());
                started.push(pending);
            }
        }
        started
    }
}

impl TaskEntry {
    pub(super) fn mark_queued(&self) {
        lock(&self.state).phase = super::state::Phase::Queued;
    }

    /// If the task waits in the queue: records the stop, takes it out of the
    /// queue and returns it (to be ended unstarted).
    pub(super) fn take_if_queued(self: &Arc<Self>, reason: &CancelReason) -> Option<Pending> {
        if !lock(&self.state).is_queued() {
            return None;
        }
        let registry = self.registry.upgrade()?;
        let mut reg = lock(&registry);
        {
            let st = lock(&self.state);
            if !st.is_queued() {
                return None;
            }
            self.cancel.cancel(reason.clone());
        }
        let at = reg.queue.iter().position(|p| Arc::ptr_eq(&p.entry, self))?;
        reg.queue.remove(at)
    }
}
