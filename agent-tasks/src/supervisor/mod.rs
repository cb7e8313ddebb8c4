//! Tasks that outlive their host: a small supervisor process per task
//! (podman's conmon, containerd's shim) holds the task's pipes, writes its
//! output with this library's own output code, fires its timeout, and saves
//! an exit record, so the host becomes a reader that can die and come back.
//! A task gets one when its host asks for [`OnHostExit::KeepRunning`].
//!
//! * `protocol`: the framed control protocol (any byte stream);
//! * `records`: the supervisor's files in the task's folder;
//! * `serve`: the supervisor process itself;
//! * `client`: the host's side, the task its lifecycle runs.
//!
//! The supervisor is a program started with [`SUPERVISOR_ARG`]: the
//! `agent-tasks-supervisor` binary this crate builds, or any program that
//! calls [`run_if_supervisor`] first thing in its `main` (a Rust host can
//! be its own supervisor, so it ships nothing more). See
//! [`ManagerConfig::supervisor_program`](crate::ManagerConfig::supervisor_program)
//! for how a manager finds it.

mod client;
mod protocol;
mod records;
mod serve;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

pub(crate) use client::{attach, Attached, SupervisedTask, SUPERVISOR_DIED};
pub(crate) use records::{read_spec, supervisor_lives, ExitRecord, Spec};

/// A supervisor program and the arguments before its own.
pub(crate) type Program = (PathBuf, Vec<std::ffi::OsString>);

/// The first argument that makes a program run as a task's supervisor.
pub const SUPERVISOR_ARG: &str = "--agent-tasks-supervisor";

/// The environment variable that names the supervisor program, for hosts
/// that ship it somewhere of their own.
pub const SUPERVISOR_ENV: &str = "AGENT_TASKS_SUPERVISOR";

/// The supervisor binary's name, looked for beside the host's program.
pub const SUPERVISOR_BINARY: &str = "agent-tasks-supervisor";

/// Set once this program said it can be its own supervisor.
static SELF_SUPERVISES: AtomicBool = AtomicBool::new(false);

/// What becomes of a process task when its host exits (or crashes).
///
/// ```
/// use agent_tasks::{OnHostExit, SpawnOptions};
/// let dev_server = SpawnOptions::background().on_host_exit(OnHostExit::KeepRunning);
/// # let _ = dev_server;
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnHostExit {
    /// The task dies with its host (it runs under the host, as every task
    /// did before supervisors).
    #[default]
    Kill,
    /// The task runs on under a supervisor process of its own; the next
    /// host that opens the root re-attaches to it (`task.reattached`), or
    /// reads how it ended while no host was there. Background process
    /// tasks in a root the host names (not a temporary one) only.
    KeepRunning,
}

impl OnHostExit {
    /// Every policy, in declaration order.
    pub const ALL: [OnHostExit; 2] = [OnHostExit::Kill, OnHostExit::KeepRunning];

    /// The policy's wire name: `kill` or `keep_running`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnHostExit::Kill => "kill",
            OnHostExit::KeepRunning => "keep_running",
        }
    }
}

impl std::fmt::Display for OnHostExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OnHostExit {
    type Err = crate::Error;

    /// `kill` or `keep_running` (`keepRunning`, as JavaScript spells it);
    /// anything else is an `InvalidArgument` naming `on_host_exit` and
    /// listing both.
    fn from_str(s: &str) -> crate::Result<Self> {
        let s = if s == "keepRunning" {
            "keep_running"
        } else {
            s
        };
        crate::names::by_name("on_host_exit", s, &OnHostExit::ALL, OnHostExit::as_str)
    }
}

/// Runs this program as a task's supervisor if it was started as one (its
/// first argument is [`SUPERVISOR_ARG`]), and exits then; else returns at
/// once and marks the program as able to supervise, so a manager uses it
/// when it finds no `agent-tasks-supervisor`. Call it first thing in
/// `main`, before any runtime starts:
///
/// ```no_run
/// # #[allow(clippy::needless_doctest_main)]
/// fn main() {
///     agent_tasks::run_if_supervisor();
///     // ... the host's own work: build a runtime, a TaskManager ...
/// }
/// ```
pub fn run_if_supervisor() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = serve::main_if_asked(&args) {
        std::process::exit(code);
    }
    SELF_SUPERVISES.store(true, Ordering::SeqCst);
}

/// The supervisor program's `main`: runs the supervisor for `args` (the
/// program's arguments, its name first) and returns its exit code; 2 if
/// they do not ask for one. For programs that are only a supervisor (the
/// `agent-tasks-supervisor` binary, a binding's packaged copy).
pub fn supervisor_main(args: Vec<std::ffi::OsString>) -> i32 {
    serve::main_if_asked(&args).unwrap_or_else(|| {
        eprintln!("usage: {SUPERVISOR_BINARY} {SUPERVISOR_ARG} <task folder> (started by agent-tasks, not by hand)");
        2
    })
}

/// The supervisor program a manager uses when its config names none: the
/// one [`SUPERVISOR_ENV`] names, else `agent-tasks-supervisor` beside the
/// host's program (or one folder up, as `cargo test` lays binaries out),
/// else the host's program itself if it called [`run_if_supervisor`].
pub(crate) fn find_program() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(SUPERVISOR_ENV) {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let beside = exe.parent().map(|dir| dir.join(SUPERVISOR_BINARY));
    let above = exe
        .parent()
        .and_then(|dir| dir.parent())
        .map(|dir| dir.join(SUPERVISOR_BINARY));
    beside
        .into_iter()
        .chain(above)
        .find(|path| path.is_file())
        .or_else(|| SELF_SUPERVISES.load(Ordering::SeqCst).then_some(exe))
}
