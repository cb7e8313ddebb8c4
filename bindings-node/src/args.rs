//! Argument parsing: the option objects the native calls take (napi-rs
//! declares them; the JS wrapper's `args.js` has already refused unknown
//! options and wrong JS types) and their conversion into the core's
//! settings, and the number arguments (byte counts, milliseconds). What a
//! value means (a negative timeout, an unknown `onTimeout`) is checked by
//! the core's rules (`agent_tasks::rules`), which name the argument.

use std::time::Duration;

use agent_tasks::tools::ToolBoxConfig;
use agent_tasks::{
    ListFilter as CoreListFilter, ManagerConfig, ProcessTask, SpawnOptions as CoreSpawnOptions,
};
use napi::bindgen_prelude::Either;
use napi_derive::napi;

use crate::errors::{invalid, CoreResultExt};
use crate::options::{
    ListFilter, ManagerOptions, ProcessOptions, ResourceLimits, TaskOptions, TerminalSize,
    ToolBoxOptions,
};

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
            c = c.max_background(size("maxBackground", v)?);
        }
        if let Some(v) = self.max_background_per_owner {
            c = c.max_background_per_owner(size("maxBackgroundPerOwner", v)?);
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
        if let Some(v) = &self.limits {
            c = c.default_limits(v.limits()?);
        }
        if let Some(v) = self.unenforced_limits {
            c = c.unenforced_limits(agent_tasks::parse_name("unenforcedLimits", &v).js()?);
        }
        Ok(c)
    }
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
        if let Some(v) = &self.limits {
            task = task.limits(v.limits()?);
        }
        Ok(task)
    }
}

impl ResourceLimits {
    /// The core's limits; byte and process counts must be non-negative
    /// integers, and the ranges are the core's (`Limits::check`, at the
    /// spawn or the manager's making), which name `limits.<kind>`.
    pub(crate) fn limits(&self) -> napi::Result<agent_tasks::Limits> {
        Ok(agent_tasks::Limits {
            memory: self.memory.map(|v| bytes("limits.memory", v)).transpose()?,
            pids: self.pids.map(|v| bytes("limits.pids", v)).transpose()?,
            cpu: self.cpu,
        })
    }
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
            o = o.watch_max(size("watchMax", v)?);
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
