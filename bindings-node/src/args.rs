//! Argument parsing: the option objects the native calls take (generated in
//! `options`, with an `apply` for the options that map one to one onto a
//! core setting; the wrapper's `index.js` has already refused unknown options
//! and wrong JS types) and the options `apply` leaves, set here. What a value
//! means (a negative timeout, an unknown `onTimeout`) is checked by the
//! core's rules (`agent_tasks::rules`), which name the argument.

use agent_tasks::tools::ToolBoxConfig;
use agent_tasks::{
    ListFilter as CoreListFilter, ManagerConfig, ProcessTask, SpawnOptions as CoreSpawnOptions,
};
use napi::bindgen_prelude::Either;
use napi_derive::napi;

use crate::convert::{int, millis, name};
use crate::errors::CoreResultExt;
use crate::options::{
    ListFilter, ManagerOptions, ProcessOptions, ResourceLimits, TaskOptions, TerminalSize,
    ToolBoxOptions,
};

impl ManagerOptions {
    pub(crate) fn into_config(self) -> napi::Result<ManagerConfig> {
        let mut c = self.apply(ManagerConfig::default())?;
        for (kind, max) in self.max_running_of_kind.unwrap_or_default() {
            c = c.max_running_of_kind(kind, max as usize);
        }
        if let Some(v) = &self.limits {
            c = c.default_limits(v.limits()?);
        }
        if let Some(v) = &self.limits_ceiling {
            c = c.limits_ceiling(v.limits()?);
        }
        Ok(c)
    }
}

impl ProcessOptions {
    /// `task` with these options applied.
    pub(crate) fn into_task(self, task: ProcessTask) -> napi::Result<ProcessTask> {
        let mut task = self.apply(task)?;
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
            memory: self.memory.map(|v| int("limits.memory", v)).transpose()?,
            pids: self.pids.map(|v| int("limits.pids", v)).transpose()?,
            cpu: self.cpu,
        })
    }
}

impl TaskOptions {
    pub(crate) fn into_options(self) -> napi::Result<CoreSpawnOptions> {
        let o = if self.background.unwrap_or(false) {
            CoreSpawnOptions::background()
        } else {
            CoreSpawnOptions::foreground()
        };
        // Before `apply`, so `backgroundTimeoutMs` wins over `timeoutMs` for
        // a background task. The core checks the values (a regex that does
        // not compile, a heartbeat under 60 s, a zero idle timeout).
        let o = match self
            .timeout_ms
            .map(|v| millis("timeoutMs", v))
            .transpose()?
        {
            Some(Some(d)) => o.timeout(d),
            Some(None) => o.no_timeout(),
            None => o,
        };
        self.apply(o)
    }
}

impl ListFilter {
    /// The core's filter; status names are the core's.
    pub(crate) fn into_filter(self) -> napi::Result<CoreListFilter> {
        let statuses = self.statuses.map(|names| {
            names
                .iter()
                .map(|n| name("statuses", n))
                .collect::<napi::Result<Vec<_>>>()
        });
        Ok(CoreListFilter {
            owner: self.owner,
            statuses: statuses.transpose()?,
            active_only: self.active_only.unwrap_or(false),
        })
    }
}

impl ToolBoxOptions {
    pub(crate) fn into_config(self) -> napi::Result<ToolBoxConfig> {
        let mut c = self.apply(ToolBoxConfig::default())?;
        c.cwd = self.cwd.map(Into::into);
        c.env = sorted(self.env);
        if let Some(size) = &self.tty_size {
            c.tty_size = size.cells()?;
        }
        Ok(c)
    }
}

/// Environment variables in a stable order.
pub(crate) fn sorted(
    env: Option<std::collections::HashMap<String, String>>,
) -> Vec<(String, String)> {
    let mut env: Vec<_> = env.unwrap_or_default().into_iter().collect();
    env.sort();
    env
}

impl TerminalSize {
    /// Checked by the core's rule; a bad number names `cols` or `rows`.
    pub(crate) fn cells(&self) -> napi::Result<(u16, u16)> {
        cells(self.cols, self.rows)
    }
}

pub(crate) fn cells(cols: f64, rows: f64) -> napi::Result<(u16, u16)> {
    agent_tasks::terminal_size(int("cols", cols)?, int("rows", rows)?).js()
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
