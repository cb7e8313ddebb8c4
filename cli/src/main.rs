//! The `agent-tasks` command: two front ends over the agent-tasks core.
//!
//! * Inspection of a task root while its host holds it (`status`, `log`,
//!   `files`, `events`, `kill`, `notifications`, `gc`): see [`inspect`].
//!   Reading never takes the root lock and never writes.
//! * `mcp`: the model-facing tools served over MCP stdio: see [`mcp`].
//!
//! This file owns the argument grammar (clap) and the exit codes: 0 on
//! success, 1 when the command failed (the message names the problem),
//! 2 for a usage error (clap's).

#![deny(clippy::unwrap_used)]

mod human;
mod inspect;
mod mcp;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// See what an agent's background tasks are doing, stop them, or serve the
/// task tools to any MCP client.
#[derive(Debug, Parser)]
#[command(name = "agent-tasks", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every inspection command takes.
#[derive(Debug, Args, Clone)]
pub struct RootArg {
    /// The task root (the folder a host opened with `TaskManager::open`).
    #[arg(long, global = true, env = "AGENT_TASKS_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A table of the root's tasks, or one task in full.
    Status {
        /// A task id: show that task in full.
        id: Option<String>,
        /// Only tasks of this owner.
        #[arg(long, value_name = "O")]
        owner: Option<String>,
        /// Every task, not only the running ones and the 20 that ended last.
        #[arg(long)]
        all: bool,
        /// Machine-readable output (the schema's types).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        root: RootArg,
    },
    /// A task's output (its `output.log`).
    Log {
        /// The task's id.
        id: String,
        /// Keep printing new output as it is written, until the task ends.
        #[arg(long, short)]
        follow: bool,
        /// Only the first N lines.
        #[arg(long, value_name = "N", conflicts_with_all = ["tail", "follow"])]
        head: Option<usize>,
        /// Only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// The log's bytes exactly as stored (no decoding).
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        root: RootArg,
    },
    /// What a task changed in its tracked folder.
    Files {
        /// The task's id.
        id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        root: RootArg,
    },
    /// A task's lifecycle events.
    Events {
        /// The task's id.
        id: String,
        /// Keep printing new events until the task ends.
        #[arg(long, short)]
        follow: bool,
        /// One JSON event per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        root: RootArg,
    },
    /// Stop a task's processes: SIGTERM, a grace, then SIGKILL (after
    /// checking its pid and process start time).
    Kill {
        /// The task's id.
        id: String,
        /// Seconds between SIGTERM and SIGKILL.
        #[arg(long, value_name = "S", default_value_t = 5.0)]
        grace: f64,
        #[command(flatten)]
        root: RootArg,
    },
    /// Pending (unacknowledged) notifications.
    Notifications {
        /// Only this owner's.
        #[arg(long, value_name = "O")]
        owner: Option<String>,
        /// Machine-readable output (the schema's Notification).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        root: RootArg,
    },
    /// Remove ended tasks (refused while a host holds the root).
    Gc {
        /// Remove tasks that ended longer ago than this (`90s`, `30m`, `12h`, `7d`).
        #[arg(long, value_name = "D")]
        max_age: Option<String>,
        /// Keep at most this many ended tasks (the newest).
        #[arg(long, value_name = "N")]
        max_count: Option<usize>,
        #[command(flatten)]
        root: RootArg,
    },
    /// Serve the task tools over MCP on stdin/stdout.
    Mcp(mcp::McpArgs),
}

/// A failed command: the message for the person.
#[derive(Debug)]
pub struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

fn main() -> ExitCode {
    // The command is also the supervisor of tasks that outlive their host.
    agent_tasks::run_if_supervisor();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Status {
            id,
            owner,
            all,
            json,
            root,
        } => inspect::status(&root, id.as_deref(), owner.as_deref(), all, json),
        Command::Log {
            id,
            follow,
            head,
            tail,
            raw,
            root,
        } => inspect::log(&root, &id, follow, head, tail, raw),
        Command::Files { id, json, root } => inspect::files(&root, &id, json),
        Command::Events {
            id,
            follow,
            json,
            root,
        } => inspect::events(&root, &id, follow, json),
        Command::Kill { id, grace, root } => inspect::kill(&root, &id, grace),
        Command::Notifications { owner, json, root } => {
            inspect::notifications(&root, owner.as_deref(), json)
        }
        Command::Gc {
            max_age,
            max_count,
            root,
        } => inspect::gc(&root, max_age.as_deref(), max_count),
        Command::Mcp(args) => mcp::serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("agent-tasks: {message}");
            ExitCode::FAILURE
        }
    }
}
