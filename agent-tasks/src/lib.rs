//! # agent-tasks
//!
//! Run an AI agent's long work — shell commands, subagents, any async job —
//! without blocking its conversation. Start a task in the foreground,
//! **detach** it to the background when it runs long, **poll** it for new
//! output, **collect** its result, **cancel** it, and steer it with
//! messages, with bounded memory and disk.
//!
//! ```no_run
//! use std::time::Duration;
//! use agent_tasks::*;
//!
//! # #[tokio::main] async fn main() -> agent_tasks::Result<()> {
//! let manager = TaskManager::new(ManagerConfig::default())?;
//!
//! // A build in the foreground that moves to the background after 30 s.
//! let build = manager.spawn(
//!     ProcessTask::shell("cargo build --release"),
//!     SpawnOptions::foreground().timeout(Duration::from_secs(30)).on_timeout(OnTimeout::Detach),
//! )?;
//! if let ForegroundOutcome::Detached(info) = build.wait_foreground().await {
//!     let page = manager.poll(info.id.as_str(), 0, 4096)?;
//!     println!("still building: {}", page.text());
//! }
//! let outcome = manager.collect(build.id().as_str(), None).await?;
//! println!("{:?}", outcome.result().map(|r| r.status));
//! # Ok(()) }
//! ```
//!
//! Modules each own one thing: `lifecycle` (statuses, detach, timers),
//! `output` (the bounded buffer and its spill to disk), `process` (process
//! groups, signals, and the containment of descendants: a cgroup per task,
//! else the host as child subreaper), `manager` (the public verbs),
//! `inspect` (read-only access to a root from outside its host, and stopping
//! a task's processes by signals).

#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

pub mod acp;
mod call_options;
mod capacity;
mod changes;
mod clean;
mod commands;
mod config;
mod context;
mod defaults;
mod durations;
mod error;
mod events;
mod fn_task;
mod id;
mod info;
pub mod inspect;
mod journal;
mod lifecycle;
mod limits;
mod lines;
mod manager;
mod manifest;
mod names;
mod notifications;
mod output;
mod process;
mod readiness;
mod root_dir;
mod roster;
mod sink;
mod spawn_gate;
mod store;
mod supervisor;
mod task;
pub mod tools;
mod util;
mod watch;

pub use acp::AcpTask;
pub use async_trait::async_trait;
pub use call_options::{
    parse_options, parse_options_with, AcpOptions, LimitsOptions, ManagerOptions, TaskOptions,
    TimeUnit, ToolBoxOptions,
};
pub use changes::ChangedFiles;
pub use commands::{argv_command, shell_command};
pub use config::{ManagerConfig, OnTimeout, SpawnOptions, MIN_HEARTBEAT};
pub use context::{CancelSignal, Message, OutputWriter, TaskContext};
pub use defaults::{DEFAULT_POLL_BYTES, DEFAULT_PREVIEW_BYTES, DEFAULT_SHUTDOWN_REASON};
pub use durations::{
    duration_from_millis, duration_from_secs, timeout_from_millis, timeout_from_secs,
};
pub use error::{Error, Result};
pub use events::{Event, EventItem, EventKind, EventSubscription};
pub use fn_task::{BoxError, FnTask};
pub use id::TaskId;
pub use info::{
    CancelKind, CancelReason, Containment, ExitInfo, OutputStats, PollResponse, Preview,
    StreamSpan, TaskInfo, TaskResult, TaskSource, TaskStatus,
};
pub use limits::{
    parse_size, size_text, LimitKind, LimitReached, LimitScope, Limits, LimitsInfo, NotEnforced,
    UnenforcedLimits, Usage, UsageSource, MIN_CPU_LIMIT, MIN_MEMORY_LIMIT,
};
pub use lines::LineSplitter;
pub use manager::{
    CollectOutcome, ForegroundOutcome, GcReport, ListFilter, TaskHandle, TaskManager,
    MAX_POLL_BYTES,
};
pub use names::{closest_name, parse_name, unknown_option};
pub use notifications::{
    Notification, NotificationKind, NOTIFICATION_TAIL_CHARS, NOTIFICATION_TAIL_LINES,
    NOTIFICATION_VALUE_CHARS,
};
pub use output::ENDED_OUTPUT_MEMORY;
pub use process::{terminal_size, Key, ProcessTask};
pub use readiness::{WaitOutcome, WaitUntil, MAX_WAIT_LINE, PORT_POLL_INTERVAL};
pub use roster::{Roster, RosterItem, DEFAULT_ROSTER_BUDGET};
pub use sink::{SharedSink, Sink, Stream};
pub use supervisor::{
    run_if_supervisor, supervisor_main, OnHostExit, SUPERVISOR_ARG, SUPERVISOR_BINARY,
    SUPERVISOR_ENV,
};
pub use task::{BackgroundTask, TaskOutcome};

/// The README's examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The concept guides' Rust examples, compiled as doc tests too.
#[cfg(doctest)]
#[doc = include_str!("../../docs/lifecycle.md")]
struct LifecycleDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../docs/tools.md")]
struct ToolsDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../docs/agents.md")]
struct AgentsDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../docs/supervisor.md")]
struct SupervisorDoctests;
