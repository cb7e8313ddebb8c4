//! Typed lifecycle events and their bus. Every event has a sequence number,
//! the task's id, a timestamp and a `type` tag. Live subscribers get them from
//! a bounded broadcast; one that falls behind receives [`EventItem::Lagged`]
//! with the number it missed, never a silent gap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::id::TaskId;
use crate::info::{CancelReason, ExitInfo, TaskStatus};
use crate::util::{lock, now_ms};

/// Events a live subscriber may fall behind by before it is told it lagged.
const BUS_CAPACITY: usize = 4096;

/// One lifecycle event of one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// Increases by one with every event of this manager (from 1).
    pub seq: u64,
    /// The task it is about.
    pub task_id: TaskId,
    /// When it happened (milliseconds since the Unix epoch).
    pub timestamp_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, tagged by `type` (`task.started`, `task.finished`, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum EventKind {
    /// The task was spawned and is running.
    #[serde(rename = "task.started")]
    Started {
        /// The task's kind.
        kind: String,
        /// Its description.
        description: String,
        /// Its owner.
        owner: String,
        /// True if it started in the background.
        background: bool,
    },
    /// The task was spawned over a cap and waits in the queue (status
    /// `queued`); `task.started` follows when it starts running.
    #[serde(rename = "task.queued")]
    Queued {
        /// The task's kind.
        kind: String,
        /// Its description.
        description: String,
        /// Its owner.
        owner: String,
    },
    /// The task moved from the foreground to the background.
    #[serde(rename = "task.detached")]
    Detached {},
    /// The task's processes were stopped (SIGSTOP); its timeouts wait.
    #[serde(rename = "task.paused")]
    Paused {},
    /// The task's processes were continued (SIGCONT).
    #[serde(rename = "task.resumed")]
    Resumed {},
    /// The task's output started going to `output.log`.
    #[serde(rename = "task.spilled")]
    Spilled {
        /// Bytes that were buffered in memory and written first.
        buffered_bytes: u64,
        /// Path of the log.
        log_path: String,
    },
    /// The task ended.
    #[serde(rename = "task.finished")]
    Finished {
        /// Its terminal status.
        status: TaskStatus,
        /// How its process ended, for process tasks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit: Option<ExitInfo>,
        /// Why it was stopped, if it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<CancelReason>,
        /// The error of a failed task.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Run time in milliseconds.
        duration_ms: u64,
    },
    /// The task reached one of its resource limits (its own, or its
    /// manager's ceiling): told as it ends, before `task.finished`, once per
    /// limit reached (see [`LimitReached`](crate::LimitReached)).
    #[serde(rename = "task.limit_reached")]
    LimitReached {
        /// Which limit: `memory`, `pids` or `cpu`.
        limit: crate::limits::LimitKind,
        /// Whose: `task` (its own) or `ceiling` (the manager's).
        scope: crate::limits::LimitScope,
        /// The limit's value: bytes, processes, or cores.
        value: f64,
        /// How often: OOM kills, refused forks, or throttled periods.
        count: u64,
    },
    /// A host attached to a task that outlived its previous host (run by
    /// its supervisor, [`OnHostExit::KeepRunning`](crate::OnHostExit::KeepRunning)):
    /// found running on `open`, it is `running` here again.
    #[serde(rename = "task.reattached")]
    Reattached {
        /// The task's process.
        pid: Option<u32>,
    },
    /// The task was running when its host died; found on `open`.
    #[serde(rename = "task.lost")]
    Lost {},
    /// A lost task's process is still alive (same pid and start time).
    #[serde(rename = "task.orphaned")]
    Orphaned {
        /// The orphan's process (group) id.
        pid: u32,
    },
    /// The log reached its disk cap; later output keeps only its tail.
    #[serde(rename = "task.output_dropped")]
    OutputDropped {
        /// The cap that was reached, in bytes.
        disk_limit: u64,
    },
    /// An output line matched one of the task's watch patterns.
    #[serde(rename = "task.watch_matched")]
    WatchMatched {
        /// The matching line.
        line: String,
    },
    /// A heartbeat found new output since the last one.
    #[serde(rename = "task.heartbeat")]
    Heartbeat {
        /// Bytes written since the last heartbeat.
        new_bytes: u64,
    },
    /// The task printed nothing for its idle timeout.
    #[serde(rename = "task.stalled")]
    Stalled {
        /// How long it has been silent, in milliseconds.
        idle_ms: u64,
    },
    /// Writing output to a sink (the log, or a host sink) failed; the task
    /// goes on.
    #[serde(rename = "task.sink_error")]
    SinkError {
        /// `output.log` or `host`.
        sink: String,
        /// The error text.
        error: String,
    },
}

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum EventItem {
    /// The next event.
    Event(Event),
    /// The subscriber fell behind: this many events were skipped.
    Lagged {
        /// How many events were missed.
        missed: u64,
    },
}

/// The manager's event bus.
pub(crate) struct EventBus {
    seq: AtomicU64,
    // Held while numbering and sending, so subscribers see seq in order.
    order: Mutex<()>,
    sender: broadcast::Sender<Event>,
}

impl EventBus {
    pub(crate) fn new() -> Self {
        EventBus {
            seq: AtomicU64::new(0),
            order: Mutex::new(()),
            sender: broadcast::channel(BUS_CAPACITY).0,
        }
    }

    /// Numbers and publishes an event; returns it (for the task's
    /// `events.jsonl`).
    pub(crate) fn publish(&self, task_id: &TaskId, kind: EventKind) -> Event {
        let _order = lock(&self.order);
        let event = Event {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            task_id: task_id.clone(),
            timestamp_ms: now_ms(),
            kind,
        };
        // No subscriber is not an error.
        let _ = self.sender.send(event.clone());
        event
    }

    pub(crate) fn subscribe(&self) -> EventSubscription {
        EventSubscription {
            receiver: self.sender.subscribe(),
        }
    }
}

/// A live stream of the manager's events, from the moment of subscribing.
///
/// ```no_run
/// # async fn demo(manager: agent_tasks::TaskManager) {
/// use agent_tasks::EventItem;
/// let mut events = manager.subscribe();
/// while let Some(item) = events.recv().await {
///     match item {
///         EventItem::Event(e) => println!("{} {:?}", e.task_id, e.kind),
///         EventItem::Lagged { missed } => println!("missed {missed} events"),
///     }
/// }
/// # }
/// ```
pub struct EventSubscription {
    receiver: broadcast::Receiver<Event>,
}

impl std::fmt::Debug for EventSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSubscription").finish()
    }
}

impl EventSubscription {
    /// The next item; `None` once the manager is gone.
    pub async fn recv(&mut self) -> Option<EventItem> {
        match self.receiver.recv().await {
            Ok(event) => Some(EventItem::Event(event)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(EventItem::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next item if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<EventItem> {
        match self.receiver.try_recv() {
            Ok(event) => Some(EventItem::Event(event)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                Some(EventItem::Lagged { missed })
            }
            Err(_) => None,
        }
    }
}

impl EventKind {
    /// Every event's `type` name, in declaration order.
    pub const TYPE_NAMES: [&'static str; 16] = [
        "task.started",
        "task.detached",
        "task.spilled",
        "task.finished",
        "task.lost",
        "task.orphaned",
        "task.output_dropped",
        "task.watch_matched",
        "task.heartbeat",
        "task.stalled",
        "task.sink_error",
        "task.paused",
        "task.resumed",
        "task.queued",
        "task.limit_reached",
        "task.reattached",
    ];

    /// The event's `type` name on the wire, e.g. `task.finished`.
    ///
    /// ```
    /// use agent_tasks::EventKind;
    /// assert_eq!(EventKind::Lost {}.type_name(), "task.lost");
    /// ```
    pub fn type_name(&self) -> &'static str {
        let index = match self {
            EventKind::Started { .. } => 0,
            EventKind::Detached { .. } => 1,
            EventKind::Spilled { .. } => 2,
            EventKind::Finished { .. } => 3,
            EventKind::Lost { .. } => 4,
            EventKind::Orphaned { .. } => 5,
            EventKind::OutputDropped { .. } => 6,
            EventKind::WatchMatched { .. } => 7,
            EventKind::Heartbeat { .. } => 8,
            EventKind::Stalled { .. } => 9,
            EventKind::SinkError { .. } => 10,
            EventKind::Paused { .. } => 11,
            EventKind::Resumed { .. } => 12,
            EventKind::Queued { .. } => 13,
            EventKind::LimitReached { .. } => 14,
            EventKind::Reattached { .. } => 15,
        };
        Self::TYPE_NAMES[index]
    }
}
