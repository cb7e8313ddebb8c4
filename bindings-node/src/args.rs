//! Argument parsing: the option objects the native calls take (napi-rs
//! declares them; the JS wrapper's `args.js` has already refused unknown
//! options and wrong JS types) and their conversion into the core's
//! settings, and the number arguments (byte counts, milliseconds). What a
//! value means (a negative timeout, an unknown `onTimeout`) is checked by
//! the core's rules (`agent_tasks::rules`), which name the argument.

use std::collections::HashMap;
use std::time::Duration;

use agent_tasks::tools::ToolBoxConfig;
use agent_tasks::{
    ListFilter as CoreListFilter, ManagerConfig, ProcessTask, SpawnOptions as CoreSpawnOptions,
};
use napi::bindgen_prelude::{Buffer, Either};
use napi_derive::napi;

use crate::errors::{invalid, CoreResultExt};

/// Settings of a manager (all optional; the core's defaults otherwise).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct ManagerOptions {
    /// Folder for task folders (default: a private temporary folder, removed
    /// when the manager is closed or collected).
    pub root: Option<String>,
    /// Bytes of output a foreground task keeps in memory before it spills
    /// (default 1 MiB).
    pub memory_limit: Option<f64>,
    /// Bytes of output one task may write to its log (default 256 MiB).
    pub disk_limit: Option<f64>,
    /// Bytes of the latest output kept in memory after a spill (64 KiB).
    pub tail_window: Option<f64>,
    /// Default foreground timeout (60 s); null: none.
    #[napi(ts_type = "number | null")]
    pub foreground_timeout_ms: Option<f64>,
    /// Default background timeout (10 min); null: none.
    #[napi(ts_type = "number | null")]
    pub background_timeout_ms: Option<f64>,
    /// Default action of a foreground timeout (default `detach`).
    #[napi(ts_type = "OnTimeout")]
    pub on_timeout: Option<String>,
    /// Cap on background tasks running at once, over all owners.
    pub max_background: Option<u32>,
    /// Cap on background tasks running at once for any one owner.
    pub max_background_per_owner: Option<u32>,
    /// How long a function task may take to return after a stop request
    /// before the manager drops it (default 5 s).
    pub stop_grace_ms: Option<f64>,
    /// Owner of tasks spawned without one (default `default`).
    pub default_owner: Option<String>,
    /// Whether host cancels of background tasks still queue notifications.
    pub notify_host_cancels: Option<bool>,
    /// Over a background cap, wait in a FIFO queue (status `queued`) instead
    /// of failing with `CAPACITY_EXCEEDED` (default false).
    pub queue_over_capacity: Option<bool>,
    /// Caps on running tasks per kind, e.g. `{ agent: 3 }` (at most three
    /// subagents at once beside any number of commands).
    pub max_running_of_kind: Option<HashMap<String, u32>>,
}

impl ManagerOptions {
    pub(crate) fn into_config(self) -> napi::Result<ManagerConfig> {
        let mut c = ManagerConfig::default();
        if let Some(root) = self.root {
            c = c.root(root);
        }
        if let Some(v) = self.memory_limit {
            c = c.memory_limit(size("memoryLimit", v)?);
        }
        if let Some(v) = self.disk_limit {
            c = c.disk_limit(bytes("diskLimit", v)?);
        }
        if let Some(v) = self.tail_window {
            c = c.tail_window(size("tailWindow", v)?);
        }
        if let Some(v) = self.foreground_timeout_ms {
            c = c.foreground_timeout(millis("foregroundTimeoutMs", v)?);
        }
        if let Some(v) = self.background_timeout_ms {
            c = c.background_timeout(millis("backgroundTimeoutMs", v)?);
        }
        if let Some(v) = self.on_timeout {
            c = c.on_timeout(on_timeout("onTimeout", &v)?);
        }
        if let Some(v) = self.max_background {
            c = c.max_background(v as usize);
        }
        if let Some(v) = self.max_background_per_owner {
            c = c.max_background_per_owner(v as usize);
        }
        if let Some(v) = self.stop_grace_ms {
            c = c.stop_grace(finite_millis("stopGraceMs", v)?);
        }
        if let Some(v) = self.default_owner {
            c = c.default_owner(v);
        }
        if let Some(v) = self.queue_over_capacity {
            c = c.queue_over_capacity(v);
        }
        if let Some(v) = self.notify_host_cancels {
            c = c.notify_host_cancels(v);
        }
        for (kind, max) in self.max_running_of_kind.unwrap_or_default() {
            c = c.max_running_of_kind(kind, max as usize);
        }
        Ok(c)
    }
}

/// How a command runs (`run`'s options besides the [`TaskOptions`]).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct ProcessOptions {
    /// Working directory (default: the host's).
    pub cwd: Option<String>,
    /// Environment variables to set.
    pub env: Option<HashMap<String, String>>,
    /// Start from an empty environment instead of the host's.
    pub env_clear: Option<bool>,
    /// Bytes (or text) written to stdin at start.
    pub stdin: Option<Either<String, Buffer>>,
    /// Keep stdin open so `send` can write to it.
    pub interactive: Option<bool>,
    /// Time between SIGTERM and SIGKILL on cancel (default 5 s).
    pub kill_grace_ms: Option<f64>,
    /// Run on a pseudo-terminal of this size: stdout and stderr are then
    /// one stream (tagged stdout), and the task always takes input (`send`
    /// types, `sendKeys` types control keys; `resize` changes the size).
    pub pty: Option<TerminalSize>,
}

impl ProcessOptions {
    /// `task` with these options applied.
    pub(crate) fn apply(self, mut task: ProcessTask) -> napi::Result<ProcessTask> {
        if let Some(cwd) = self.cwd {
            task = task.cwd(cwd);
        }
        if self.env_clear.unwrap_or(false) {
            task = task.env_clear();
        }
        for (key, value) in self.env.unwrap_or_default() {
            task = task.env(key, value);
        }
        match self.stdin {
            Some(Either::A(text)) => task = task.stdin_bytes(text.into_bytes()),
            Some(Either::B(data)) => task = task.stdin_bytes(data.to_vec()),
            None => {}
        }
        if let Some(v) = self.interactive {
            task = task.interactive(v);
        }
        if let Some(v) = self.kill_grace_ms {
            task = task.kill_grace(finite_millis("killGraceMs", v)?);
        }
        if let Some(size) = &self.pty {
            let (cols, rows) = size.cells()?;
            task = task.pty(cols, rows);
        }
        Ok(task)
    }
}

/// How a task runs, for `run` and `spawn` alike: mode, timeouts, owner,
/// monitoring (the wrapper splits a call's options into these and the
/// [`ProcessOptions`]).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct TaskOptions {
    /// Start in the background (default: the foreground).
    pub background: Option<bool>,
    /// Timeout of the mode it starts in; null: none (default: the manager's).
    #[napi(ts_type = "number | null")]
    pub timeout_ms: Option<f64>,
    /// Timeout once in the background (after a detach, from the detach);
    /// null: none.
    #[napi(ts_type = "number | null")]
    pub background_timeout_ms: Option<f64>,
    /// What a foreground timeout does (default: the manager's).
    #[napi(ts_type = "OnTimeout")]
    pub on_timeout: Option<String>,
    /// Description shown in lists (default: the command line, or the
    /// function's name).
    pub description: Option<String>,
    /// Owner (session key); default: the manager's default owner.
    pub owner: Option<String>,
    /// Leave it running on `close` and `closeOwner`.
    pub keep_alive: Option<bool>,
    /// Record the files it creates, modifies and deletes under this folder.
    pub track_changes: Option<String>,
    /// Regexes matched against each output line; a match queues a
    /// `watch_match` notification with the line (while the task is in the
    /// background). A pattern that does not compile fails with
    /// `INVALID_ARGUMENT`.
    pub watch: Option<Vec<String>>,
    /// At most one watch notification per this many milliseconds (default
    /// 15 s); matches in between are counted in the next one.
    pub watch_interval_ms: Option<f64>,
    /// After this many watch notifications (default 8) watching stops, with
    /// one `watch_stopped` notice.
    pub watch_max: Option<u32>,
    /// A `progress` notification every this many milliseconds (at least
    /// 60,000) with the output since the last one, skipped when there is none.
    pub heartbeat_ms: Option<f64>,
    /// No output for this long gives a `task.stalled` event and (in the
    /// background) a `stalled` notification.
    pub idle_timeout_ms: Option<f64>,
    /// Also cancel the task when it stalls (it ends `timed_out`, reason
    /// `stalled`).
    pub cancel_on_stall: Option<bool>,
}

impl TaskOptions {
    pub(crate) fn into_options(self) -> napi::Result<CoreSpawnOptions> {
        let background = self.background.unwrap_or(false);
        let mut o = if background {
            CoreSpawnOptions::background()
        } else {
            CoreSpawnOptions::foreground()
        };
        if let Some(v) = self.timeout_ms {
            o = match millis("timeoutMs", v)? {
                Some(d) => o.timeout(d),
                None => o.no_timeout(),
            };
        }
        if let Some(v) = self.background_timeout_ms {
            o = o.background_timeout(millis("backgroundTimeoutMs", v)?);
        }
        if let Some(v) = self.on_timeout {
            o = o.on_timeout(on_timeout("onTimeout", &v)?);
        }
        if let Some(v) = self.description {
            o = o.description(v);
        }
        if let Some(v) = self.owner {
            o = o.owner(v);
        }
        if let Some(v) = self.keep_alive {
            o = o.keep_alive(v);
        }
        if let Some(v) = self.track_changes {
            o = o.track_changes(v);
        }
        // The core checks the values (a regex that does not compile, a
        // heartbeat under 60 s, a zero idle timeout).
        if let Some(patterns) = self.watch {
            o = o.watch(patterns);
        }
        if let Some(v) = self.watch_interval_ms {
            o = o.watch_interval(finite_millis("watchIntervalMs", v)?);
        }
        if let Some(v) = self.watch_max {
            o = o.watch_max(v as usize);
        }
        if let Some(v) = self.heartbeat_ms {
            o = o.heartbeat(finite_millis("heartbeatMs", v)?);
        }
        if let Some(v) = self.idle_timeout_ms {
            o = o.idle_timeout(finite_millis("idleTimeoutMs", v)?);
        }
        if let Some(v) = self.cancel_on_stall {
            o = o.cancel_on_stall(v);
        }
        Ok(o)
    }
}

/// Which tasks `list` returns.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct ListFilter {
    /// Only tasks of this owner.
    pub owner: Option<String>,
    /// Only tasks in one of these statuses.
    #[napi(ts_type = "Array<TaskStatus>")]
    pub statuses: Option<Vec<String>>,
    /// Only tasks that are still running.
    pub active_only: Option<bool>,
}

impl ListFilter {
    /// The core's filter; status names are the core's.
    pub(crate) fn into_filter(self) -> napi::Result<CoreListFilter> {
        Ok(CoreListFilter {
            owner: self.owner,
            statuses: self
                .statuses
                .map(|names| {
                    names
                        .iter()
                        .map(|n| agent_tasks::parse_name::<agent_tasks::TaskStatus>("statuses", n))
                        .collect::<agent_tasks::Result<Vec<_>>>()
                })
                .transpose()
                .js()?,
            active_only: self.active_only.unwrap_or(false),
        })
    }
}

/// Settings of a toolbox (all optional; the core's defaults otherwise).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct ToolBoxOptions {
    /// Most bytes of text in one answer (default 12,000).
    pub text_budget: Option<f64>,
    /// How long `task_run` waits in the foreground when the model gives no
    /// `timeout` (default 60 s).
    pub run_timeout_ms: Option<f64>,
    /// The longest `timeout` a model may ask of `task_run` (default 10 min).
    pub max_run_timeout_ms: Option<f64>,
    /// What a `task_run` foreground timeout does (default `detach`: the
    /// command keeps running in the background).
    #[napi(ts_type = "OnTimeout")]
    pub on_timeout: Option<String>,
    /// `task_wait`'s timeout when the model gives none (default 30 s).
    pub wait_timeout_ms: Option<f64>,
    /// The longest `timeout` a model may ask of `task_wait` (default 300 s).
    pub max_wait_timeout_ms: Option<f64>,
    /// Bytes `task_output` reads when the model gives no `max_bytes`
    /// (default 8000).
    pub output_bytes: Option<f64>,
    /// Working directory of `task_run` commands without a `cwd`.
    pub cwd: Option<String>,
    /// Extra environment variables of `task_run` commands.
    pub env: Option<HashMap<String, String>>,
    /// Show output in the answers as the task wrote it (default false:
    /// cleaned of terminal escapes, `\r` progress bars at their last
    /// state), for hosts that render terminal text. `poll` and the log
    /// always keep the raw bytes.
    pub raw_text: Option<bool>,
    /// The terminal size of a `task_run` with `tty: true` (default 120 × 40).
    pub tty_size: Option<TerminalSize>,
}

impl ToolBoxOptions {
    pub(crate) fn into_config(self) -> napi::Result<ToolBoxConfig> {
        let mut c = ToolBoxConfig::default();
        if let Some(v) = self.text_budget {
            c.text_budget = size("textBudget", v)?;
        }
        if let Some(v) = self.run_timeout_ms {
            c.run_timeout = finite_millis("runTimeoutMs", v)?;
        }
        if let Some(v) = self.max_run_timeout_ms {
            c.max_run_timeout = finite_millis("maxRunTimeoutMs", v)?;
        }
        if let Some(v) = self.on_timeout {
            c.on_timeout = on_timeout("onTimeout", &v)?;
        }
        if let Some(v) = self.wait_timeout_ms {
            c.wait_timeout = finite_millis("waitTimeoutMs", v)?;
        }
        if let Some(v) = self.max_wait_timeout_ms {
            c.max_wait_timeout = finite_millis("maxWaitTimeoutMs", v)?;
        }
        if let Some(v) = self.output_bytes {
            c.output_bytes = size("outputBytes", v)?;
        }
        c.cwd = self.cwd.map(Into::into);
        let mut env: Vec<(String, String)> = self.env.unwrap_or_default().into_iter().collect();
        env.sort();
        c.env = env;
        if let Some(v) = self.raw_text {
            c.raw_text = v;
        }
        if let Some(size) = &self.tty_size {
            c.tty_size = size.cells()?;
        }
        Ok(c)
    }
}

// ---- numbers ------------------------------------------------------------

/// A byte count given as a JS number: a non-negative integer.
pub(crate) fn bytes(name: &str, value: f64) -> napi::Result<u64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= 9_007_199_254_740_992.0
    {
        Ok(value as u64)
    } else {
        Err(invalid(
            name,
            format!("expected a non-negative integer, got {value}"),
        ))
    }
}

/// A byte count that must fit in memory (`usize`).
pub(crate) fn size(name: &str, value: f64) -> napi::Result<usize> {
    let n = bytes(name, value)?;
    usize::try_from(n).map_err(|_| invalid(name, format!("{value} is too large")))
}

/// A duration in milliseconds; `Infinity` means none (`Ok(None)`). The rule
/// is the core's [`agent_tasks::timeout_from_millis`].
pub(crate) fn millis(name: &str, value: f64) -> napi::Result<Option<Duration>> {
    agent_tasks::timeout_from_millis(name, Some(value)).js()
}

/// A duration that must be finite (the core's
/// [`agent_tasks::duration_from_millis`]).
pub(crate) fn finite_millis(name: &str, value: f64) -> napi::Result<Duration> {
    agent_tasks::duration_from_millis(name, value).js()
}

/// An `onTimeout` option: the core's names (`detach`, `kill`).
pub(crate) fn on_timeout(name: &str, value: &str) -> napi::Result<agent_tasks::OnTimeout> {
    agent_tasks::parse_name(name, value).js()
}

/// The size of a task's terminal, in character cells.
#[napi(object, object_to_js = false)]
pub struct TerminalSize {
    /// Columns (1 to 65535).
    pub cols: f64,
    /// Rows (1 to 65535).
    pub rows: f64,
}

impl TerminalSize {
    /// Checked by the core's rule; a bad number names `pty.cols` or `pty.rows`.
    pub(crate) fn cells(&self) -> napi::Result<(u16, u16)> {
        cells(&self.cols, &self.rows)
    }
}

pub(crate) fn cells(cols: &f64, rows: &f64) -> napi::Result<(u16, u16)> {
    let cols = size("cols", *cols)? as u64;
    let rows = size("rows", *rows)? as u64;
    agent_tasks::terminal_size(cols, rows).js()
}

/// The core's "did you mean" rule ([`agent_tasks::closest_name`]), for the
/// wrapper's check of option names: the known name closest to `given`.
#[napi]
// Registered with Node by napi-rs, which test builds leave out.
#[cfg_attr(test, allow(dead_code))]
pub fn closest_name(given: String, known: Vec<String>) -> Option<String> {
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    agent_tasks::closest_name(&given, &known).map(str::to_owned)
}

/// The core's rule for cutting output into lines ([`agent_tasks::LineSplitter`]),
/// for the wrapper's `lines()`. Internal.
#[napi]
#[derive(Default)]
pub struct NativeLineSplitter(agent_tasks::LineSplitter);

#[napi]
impl NativeLineSplitter {
    /// An empty splitter.
    #[napi(constructor)]
    pub fn new() -> Self {
        NativeLineSplitter::default()
    }

    /// The lines the next bytes end.
    #[napi]
    pub fn push(&mut self, bytes: napi::bindgen_prelude::BufferSlice) -> Vec<String> {
        self.0.push(&bytes)
    }

    /// The last line, once the stream has ended.
    #[napi]
    pub fn finish(&mut self) -> Option<String> {
        self.0.finish()
    }
}
