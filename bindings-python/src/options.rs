//! The arguments of `run` and `spawn` (and the manager's and toolbox's
//! shared ones) converted into the core's options: names parsed by the
//! core, commands as `sh -c` strings or argvs, the spawn options every kind
//! of task shares. The rules (ranges, names, defaults) are the core's.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use agent_tasks::{Limits, OnTimeout, ProcessTask, SpawnOptions, TaskStatus, UnenforcedLimits};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyMapping, PyString};

use crate::convert::{count, duration, shown, timeout_setting};
use crate::errors::{core_err, invalid_argument};

/// An `on_timeout` argument: the core's names (`detach`, `kill`).
pub(crate) fn on_timeout(value: Option<&str>) -> PyResult<Option<OnTimeout>> {
    value
        .map(|v| agent_tasks::parse_name("on_timeout", v))
        .transpose()
        .map_err(core_err)
}

/// An `unenforced_limits` argument: the core's names (`refuse`, `report`).
pub(crate) fn unenforced_limits(value: Option<&str>) -> PyResult<Option<UnenforcedLimits>> {
    value
        .map(|v| agent_tasks::parse_name("unenforced_limits", v))
        .transpose()
        .map_err(core_err)
}

/// The kinds of limit a `limits` dict takes.
const LIMIT_KINDS: [&str; 3] = ["memory", "pids", "cpu"];

/// A `limits` argument: a mapping with `memory` (bytes, int), `pids` (int)
/// and `cpu` (cores, int or float), each optional (`None`: no limit of that
/// kind). An unknown key or a value of the wrong type is an
/// `InvalidArgument` naming `limits.<key>` (with the core's "did you mean"
/// hint); the ranges are the core's ([`Limits::check`]).
pub(crate) fn limits(value: &Bound<'_, PyAny>) -> PyResult<Limits> {
    let mapping = value.cast::<PyMapping>().map_err(|_| {
        invalid_argument(
            "limits",
            format!(
                "expected a dict with `memory`, `pids` and/or `cpu`, got {}",
                shown(value)
            ),
        )
    })?;
    let mut limits = Limits::default();
    for item in mapping.items()?.iter() {
        let (key, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let key = key.cast::<PyString>().map_err(|_| {
            invalid_argument(
                "limits",
                format!("a key must be a str, got {}", shown(&key)),
            )
        })?;
        let key = key.to_str()?;
        let name = format!("limits.{key}");
        if !LIMIT_KINDS.contains(&key) {
            return Err(core_err(
                match agent_tasks::unknown_option("limits", key, &LIMIT_KINDS) {
                    agent_tasks::Error::InvalidArgument { message, .. } => {
                        agent_tasks::Error::InvalidArgument { name, message }
                    }
                    other => other,
                },
            ));
        }
        if v.is_none() {
            continue;
        }
        match key {
            "memory" => limits.memory = Some(count(&name, &v)?),
            "pids" => limits.pids = Some(count(&name, &v)?),
            _ => limits.cpu = Some(cores(&name, &v)?),
        }
    }
    Ok(limits)
}

/// A number of cores (`int` or `float`, not `bool`).
fn cores(name: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let number = value.is_instance_of::<PyFloat>()
        || (value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>());
    number
        .then(|| value.extract::<f64>().ok())
        .flatten()
        .ok_or_else(|| {
            invalid_argument(
                name,
                format!("expected a number of cores (float), got {}", shown(value)),
            )
        })
}

/// A `status` argument: the core's status names.
pub(crate) fn status(name: &str) -> PyResult<TaskStatus> {
    agent_tasks::parse_name("status", name).map_err(core_err)
}

/// The monitoring and change-tracking options of `run` and `spawn`; the
/// core checks them (a regex that does not compile, a heartbeat under 60 s).
pub(crate) struct Monitoring {
    pub(crate) watch: Option<Vec<String>>,
    pub(crate) watch_interval: Option<f64>,
    pub(crate) watch_max: Option<usize>,
    pub(crate) heartbeat: Option<f64>,
    pub(crate) idle_timeout: Option<f64>,
    pub(crate) cancel_on_stall: bool,
    pub(crate) track_changes: Option<PathBuf>,
}

impl Monitoring {
    fn apply(self, mut options: SpawnOptions) -> PyResult<SpawnOptions> {
        if let Some(patterns) = self.watch {
            options = options.watch(patterns);
        }
        if let Some(s) = self.watch_interval {
            options = options.watch_interval(duration("watch_interval", s)?);
        }
        if let Some(max) = self.watch_max {
            options = options.watch_max(max);
        }
        if let Some(s) = self.heartbeat {
            options = options.heartbeat(duration("heartbeat", s)?);
        }
        if let Some(s) = self.idle_timeout {
            options = options.idle_timeout(duration("idle_timeout", s)?);
        }
        if let Some(dir) = self.track_changes {
            options = options.track_changes(dir);
        }
        Ok(options.cancel_on_stall(self.cancel_on_stall))
    }
}

/// The spawn options every kind of task shares.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn_options(
    background: bool,
    timeout: Option<f64>,
    background_timeout: Option<f64>,
    on_timeout_policy: Option<&str>,
    description: Option<String>,
    owner: Option<String>,
    keep_alive: bool,
    monitoring: Monitoring,
) -> PyResult<SpawnOptions> {
    let mut options = if background {
        SpawnOptions::background()
    } else {
        SpawnOptions::foreground()
    };
    if background && timeout.is_some() && background_timeout.is_some() {
        return Err(invalid_argument(
            "background_timeout",
            "give `timeout` or `background_timeout` for a task started in the background, not both",
        ));
    }
    if let Some(setting) = timeout_setting("background_timeout", background_timeout)? {
        options = options.background_timeout(setting);
    }
    match timeout_setting("timeout", timeout)? {
        None => {}
        Some(None) => options = options.no_timeout(),
        Some(Some(limit)) => options = options.timeout(limit),
    }
    if let Some(policy) = on_timeout(on_timeout_policy)? {
        options = options.on_timeout(policy);
    }
    if let Some(text) = description {
        options = options.description(text);
    }
    if let Some(owner) = owner {
        options = options.owner(owner);
    }
    monitoring.apply(options.keep_alive(keep_alive))
}

fn os_string(item: &Bound<'_, PyAny>) -> PyResult<OsString> {
    if let Ok(s) = item.cast::<PyString>() {
        return Ok(OsString::from(s.to_str()?));
    }
    if let Ok(b) = item.cast::<PyBytes>() {
        return Ok(OsString::from_vec(b.as_bytes().to_vec()));
    }
    let path: PathBuf = item
        .extract()
        .map_err(|_| invalid_argument("command", "an argv item must be str, bytes or a path"))?;
    Ok(path.into_os_string())
}

/// A `str` command runs with `sh -c`; a sequence is an argv. The core
/// checks both (not empty).
pub(crate) fn process_task(command: &Bound<'_, PyAny>) -> PyResult<ProcessTask> {
    if let Ok(line) = command.cast::<PyString>() {
        return agent_tasks::shell_command("command", line.to_str()?).map_err(core_err);
    }
    let items = command.try_iter().map_err(|_| {
        invalid_argument(
            "command",
            "must be a shell string or a sequence of arguments",
        )
    })?;
    let argv = items
        .map(|item| item.and_then(|i| os_string(&i)))
        .collect::<PyResult<Vec<_>>>()?;
    agent_tasks::argv_command("command", argv).map_err(core_err)
}
