//! Terminals an ACP agent asks its client for (`terminal/create`, `output`,
//! `wait_for_exit`, `kill`, `release`), served by this library's own
//! [`ProcessTask`]s in the same manager: each terminal is a foreground
//! process task (so it is contained, killed with its group, and its output
//! held within the manager's memory and disk limits) whose owner is the ACP
//! task's id, and whose task id is the terminal id the agent gets. Being
//! foreground, a terminal is neither announced nor listed as background
//! work of anyone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::config::SpawnOptions;
use crate::info::{CancelReason, ExitInfo};
use crate::manager::{TaskManager, WeakManager};
use crate::process::ProcessTask;
use crate::util::lock;

/// Output bytes a terminal keeps for the agent when it names no limit.
pub const DEFAULT_TERMINAL_OUTPUT: u64 = 1024 * 1024;

/// What the agent asked to run.
pub(crate) struct TerminalSpec {
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub output_limit: Option<u64>,
}

/// How a terminal's command ended (for `wait_for_exit` and `output`).
pub(crate) struct TerminalExit {
    pub code: Option<u32>,
    pub signal: Option<String>,
}

/// A terminal's output as the agent reads it.
pub(crate) struct TerminalOutput {
    pub text: String,
    pub truncated: bool,
    pub exit: Option<TerminalExit>,
}

/// The terminals of one ACP task.
pub(crate) struct Terminals {
    manager: Option<WeakManager>,
    owner: String,
    session_cwd: PathBuf,
    limits: Mutex<HashMap<String, u64>>,
}

impl Terminals {
    pub(crate) fn new(manager: Option<WeakManager>, owner: String, session_cwd: PathBuf) -> Self {
        Terminals {
            manager,
            owner,
            session_cwd,
            limits: Mutex::new(HashMap::new()),
        }
    }

    /// Whether terminals can be offered at all (the host gave a manager).
    pub(crate) fn available(&self) -> bool {
        self.manager.is_some()
    }

    fn manager(&self) -> Result<TaskManager, String> {
        self.manager
            .as_ref()
            .and_then(WeakManager::upgrade)
            .ok_or_else(|| "terminals are not available (no task manager)".to_string())
    }

    fn limit(&self, id: &str) -> Result<u64, String> {
        lock(&self.limits)
            .get(id)
            .copied()
            .ok_or_else(|| format!("unknown terminal `{id}` (never created, or released)"))
    }

    /// Starts a terminal; returns its id. A command without arguments is
    /// run by `/bin/sh -c` (agents send whole command lines that way); with
    /// arguments it is run as argv, without a shell.
    pub(crate) fn create(&self, spec: TerminalSpec) -> Result<String, String> {
        let manager = self.manager()?;
        let mut task = if spec.args.is_empty() {
            ProcessTask::shell(spec.command)
        } else {
            ProcessTask::argv(std::iter::once(spec.command).chain(spec.args))
        };
        task = task.cwd(spec.cwd.unwrap_or_else(|| self.session_cwd.clone()));
        for (key, value) in spec.env {
            task = task.env(key, value);
        }
        let handle = manager
            .spawn(
                task,
                SpawnOptions::foreground()
                    .no_timeout()
                    .owner(self.owner.clone()),
            )
            .map_err(|e| e.to_string())?;
        let id = handle.id().to_string();
        let limit = spec
            .output_limit
            .unwrap_or(DEFAULT_TERMINAL_OUTPUT)
            .min(crate::MAX_POLL_BYTES as u64);
        lock(&self.limits).insert(id.clone(), limit);
        Ok(id)
    }

    /// The terminal's output so far (its last `output_limit` bytes), and its
    /// exit if it ended.
    pub(crate) fn output(&self, id: &str) -> Result<TerminalOutput, String> {
        let limit = self.limit(id)?;
        let manager = self.manager()?;
        let info = manager.info(id).map_err(|e| e.to_string())?;
        let total = info.output.total_bytes;
        let from = total.saturating_sub(limit);
        // A page ends where the bytes' place changes (log, memory): read on
        // until the end seen above.
        let mut data = Vec::new();
        let mut cursor = from;
        let mut status = info.status;
        let mut exit = info.exit;
        while cursor < total {
            let page = manager
                .poll(id, cursor, (total - cursor) as usize)
                .map_err(|e| e.to_string())?;
            status = page.info.status;
            exit = page.info.exit;
            if page.next_cursor <= cursor {
                break;
            }
            data.extend_from_slice(&page.data);
            cursor = page.next_cursor;
        }
        // Cut where a character starts, not inside one.
        let skip = data.iter().take_while(|b| (**b & 0xC0) == 0x80).count();
        Ok(TerminalOutput {
            text: String::from_utf8_lossy(&data[skip..]).into_owned(),
            truncated: from > 0,
            exit: status.is_terminal().then(|| exit_of(exit)),
        })
    }

    /// Waits until the terminal's command ends.
    pub(crate) async fn wait_for_exit(&self, id: &str) -> Result<TerminalExit, String> {
        self.limit(id)?;
        let manager = self.manager()?;
        let outcome = manager.collect(id, None).await.map_err(|e| e.to_string())?;
        Ok(exit_of(outcome.result().and_then(|r| r.exit)))
    }

    /// Kills the terminal's command; its output stays readable.
    pub(crate) async fn kill(&self, id: &str) -> Result<(), String> {
        self.limit(id)?;
        let manager = self.manager()?;
        manager
            .cancel(
                id,
                CancelReason::user("killed by the agent (terminal/kill)"),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Kills the terminal's command if it still runs and forgets it.
    pub(crate) async fn release(&self, id: &str) -> Result<(), String> {
        self.kill(id).await?;
        lock(&self.limits).remove(id);
        Ok(())
    }

    /// Kills every terminal still running (the ACP task is ending).
    pub(crate) async fn release_all(&self) {
        let ids: Vec<String> = lock(&self.limits).keys().cloned().collect();
        for id in ids {
            let _ = self.release(&id).await;
        }
    }
}

fn exit_of(exit: Option<ExitInfo>) -> TerminalExit {
    let exit = exit.unwrap_or(ExitInfo {
        code: None,
        signal: None,
    });
    TerminalExit {
        code: exit.code.and_then(|c| u32::try_from(c).ok()),
        signal: exit.signal.map(|s| {
            nix::sys::signal::Signal::try_from(s)
                .map(|sig| sig.as_str().to_string())
                .unwrap_or_else(|_| s.to_string())
        }),
    }
}
