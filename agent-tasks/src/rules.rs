//! The rules every binding (and every host) needs, written once: how a
//! command is checked, how a timeout given as a number of seconds or
//! milliseconds becomes a [`Duration`], how an enum is read from its wire
//! name (with an error that lists the names allowed), and the default page
//! sizes of `poll` and `preview`. The Python and Node bindings call these
//! instead of keeping their own copies, so the three front ends cannot drift.
//!
//! The enums' names themselves live next to each enum (`as_str`, `FromStr`,
//! `Display`); [`OnTimeout`]'s are here.
//!
//! Timeouts: `None` means "no timeout"; so does `+∞` (Python's `math.inf`,
//! JS `Infinity`: the float spelling of none); NaN and negative numbers are
//! an [`Error::InvalidArgument`] naming the argument. A finite value too
//! large for a `Duration` becomes [`Duration::MAX`], never a panic: the
//! core reads any huge duration as "no deadline".
//!
//! ```
//! use std::time::Duration;
//! use agent_tasks::{timeout_from_secs, OnTimeout, TaskStatus};
//!
//! assert_eq!(timeout_from_secs("timeout", Some(1.5))?, Some(Duration::from_millis(1500)));
//! assert_eq!(timeout_from_secs("timeout", None)?, None);
//! assert!(timeout_from_secs("timeout", Some(-1.0)).is_err());
//! assert_eq!("timed_out".parse::<TaskStatus>()?, TaskStatus::TimedOut);
//! assert_eq!(OnTimeout::Detach.as_str(), "detach");
//! # Ok::<(), agent_tasks::Error>(())
//! ```

use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::config::OnTimeout;
use crate::error::{Error, Result};
use crate::process::ProcessTask;

/// Bytes `poll` returns when the caller gives no limit (64 KiB).
pub const DEFAULT_POLL_BYTES: usize = 64 * 1024;

/// Bytes of the head, and of the tail, `preview` shows when the caller gives
/// no size (4 KiB each).
pub const DEFAULT_PREVIEW_BYTES: usize = 4096;

/// A timeout given in seconds: `None` or `+∞` is no timeout (`Ok(None)`);
/// NaN and negative numbers are refused, naming `name`; a finite value too
/// large for a [`Duration`] is [`Duration::MAX`] ("no deadline").
///
/// ```
/// # use std::time::Duration;
/// # use agent_tasks::timeout_from_secs;
/// assert_eq!(timeout_from_secs("timeout", Some(f64::INFINITY))?, None);
/// assert_eq!(timeout_from_secs("timeout", Some(1e300))?, Some(Duration::MAX));
/// let err = timeout_from_secs("timeout", Some(f64::NAN)).unwrap_err();
/// assert_eq!(err.code(), "INVALID_ARGUMENT");
/// assert!(err.to_string().contains("`timeout`"));
/// # Ok::<(), agent_tasks::Error>(())
/// ```
pub fn timeout_from_secs(name: &str, secs: Option<f64>) -> Result<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if s == f64::INFINITY => Ok(None),
        Some(s) => duration_from(name, s, Unit::Seconds).map(Some),
    }
}

/// A duration given in seconds that must be finite (an interval, a grace
/// period): NaN, negative numbers and infinity are refused, naming `name`;
/// a finite value too large for a [`Duration`] is [`Duration::MAX`].
///
/// ```
/// # use std::time::Duration;
/// # use agent_tasks::duration_from_secs;
/// assert_eq!(duration_from_secs("heartbeat", 90.0)?, Duration::from_secs(90));
/// assert!(duration_from_secs("heartbeat", f64::INFINITY).is_err());
/// # Ok::<(), agent_tasks::Error>(())
/// ```
pub fn duration_from_secs(name: &str, secs: f64) -> Result<Duration> {
    if secs == f64::INFINITY {
        return Err(Error::invalid_argument(name, "must be finite"));
    }
    duration_from(name, secs, Unit::Seconds)
}

/// [`timeout_from_secs`] for a timeout given in milliseconds (a float, as
/// JS numbers are; an integer converts with `as f64`).
///
/// ```
/// # use std::time::Duration;
/// # use agent_tasks::timeout_from_millis;
/// assert_eq!(timeout_from_millis("timeoutMs", Some(250.0))?, Some(Duration::from_millis(250)));
/// assert_eq!(timeout_from_millis("timeoutMs", Some(f64::INFINITY))?, None);
/// assert!(timeout_from_millis("timeoutMs", Some(-5.0)).is_err());
/// # Ok::<(), agent_tasks::Error>(())
/// ```
pub fn timeout_from_millis(name: &str, millis: Option<f64>) -> Result<Option<Duration>> {
    match millis {
        None => Ok(None),
        Some(ms) if ms == f64::INFINITY => Ok(None),
        Some(ms) => duration_from(name, ms, Unit::Millis).map(Some),
    }
}

/// [`duration_from_secs`] for a duration given in milliseconds.
pub fn duration_from_millis(name: &str, millis: f64) -> Result<Duration> {
    if millis == f64::INFINITY {
        return Err(Error::invalid_argument(name, "must be finite"));
    }
    duration_from(name, millis, Unit::Millis)
}

#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Millis,
}

fn duration_from(name: &str, value: f64, unit: Unit) -> Result<Duration> {
    let (secs, what) = match unit {
        Unit::Seconds => (value, "seconds"),
        Unit::Millis => (value / 1000.0, "milliseconds"),
    };
    if value.is_nan() || value < 0.0 {
        return Err(Error::invalid_argument(
            name,
            format!("must be a number of {what} >= 0, got {value}"),
        ));
    }
    if secs == 0.0 {
        return Ok(Duration::ZERO); // also -0.0
    }
    // Never `from_secs_f64`, which panics on overflow: what is too large
    // for a `Duration` is the longest one.
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// A command to run with `/bin/sh -c`, checked now (the check a spawn makes:
/// empty or white space only, a NUL byte), the error naming `name`.
///
/// ```
/// # use agent_tasks::shell_command;
/// assert!(shell_command("command", "cargo test").is_ok());
/// assert!(shell_command("command", "  ").is_err());
/// ```
pub fn shell_command(name: &str, line: impl Into<String>) -> Result<ProcessTask> {
    checked(name, ProcessTask::shell(line))
}

/// A command given as an argv (no shell), checked now (the check a spawn
/// makes: no program, a NUL byte), the error naming `name`.
///
/// ```
/// # use agent_tasks::argv_command;
/// assert!(argv_command("command", ["ls", "-l"]).is_ok());
/// assert!(argv_command("command", Vec::<String>::new()).is_err());
/// ```
pub fn argv_command<I, S>(name: &str, argv: I) -> Result<ProcessTask>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    checked(name, ProcessTask::argv(argv))
}

/// Runs the task's own spawn-time check (one rule, in `process`), naming
/// the argument as the caller knows it.
fn checked(name: &str, task: ProcessTask) -> Result<ProcessTask> {
    match crate::task::BackgroundTask::validate(&task) {
        Ok(()) => Ok(task),
        Err(Error::InvalidArgument { message, .. }) => Err(Error::invalid_argument(name, message)),
        Err(other) => Err(other),
    }
}

/// Reads an enum from its wire name for the argument `name`: the
/// [`FromStr`] of the enums of this crate, with the error naming `name`
/// (and listing the names allowed).
///
/// ```
/// # use agent_tasks::{parse_name, OnTimeout};
/// assert_eq!(parse_name::<OnTimeout>("on_timeout", "kill")?, OnTimeout::Kill);
/// let err = parse_name::<OnTimeout>("onTimeout", "explode").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid argument `onTimeout`: unknown value \"explode\"; expected one of: kill, detach"
/// );
/// # Ok::<(), agent_tasks::Error>(())
/// ```
pub fn parse_name<T>(name: &str, value: &str) -> Result<T>
where
    T: FromStr<Err = Error>,
{
    value.parse::<T>().map_err(|e| match e {
        Error::InvalidArgument { message, .. } => Error::invalid_argument(name, message),
        other => other,
    })
}

/// The error of an unknown wire name: names the argument and lists the
/// names allowed.
pub(crate) fn unknown_name(name: &str, value: &str, allowed: &[&str]) -> Error {
    let shown: String = value.chars().take(80).collect();
    let shown = if shown.len() < value.len() {
        format!("{shown}…")
    } else {
        shown
    };
    Error::invalid_argument(
        name,
        format!(
            "unknown value {shown:?}; expected one of: {}",
            allowed.join(", ")
        ),
    )
}

/// Reads a value of a fieldless enum by its wire name.
pub(crate) fn by_name<T: Copy>(
    name: &str,
    value: &str,
    all: &[T],
    as_str: impl Fn(T) -> &'static str,
) -> Result<T> {
    all.iter()
        .copied()
        .find(|v| as_str(*v) == value)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|v| as_str(*v)).collect();
            unknown_name(name, value, &names)
        })
}

impl OnTimeout {
    /// Every policy, in declaration order.
    pub const ALL: [OnTimeout; 2] = [OnTimeout::Kill, OnTimeout::Detach];

    /// The policy's wire name: `kill` or `detach`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnTimeout::Kill => "kill",
            OnTimeout::Detach => "detach",
        }
    }
}

impl fmt::Display for OnTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OnTimeout {
    type Err = Error;

    /// `kill` or `detach`; anything else is an `InvalidArgument` naming
    /// `on_timeout` and listing both.
    fn from_str(s: &str) -> Result<Self> {
        by_name("on_timeout", s, &OnTimeout::ALL, OnTimeout::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_refuse_what_is_not_a_duration_and_never_panic() {
        for bad in [f64::NAN, -1.0, f64::NEG_INFINITY, -0.001] {
            assert!(timeout_from_secs("t", Some(bad)).is_err(), "{bad}");
            assert!(timeout_from_millis("t", Some(bad)).is_err(), "{bad}");
            assert!(duration_from_secs("t", bad).is_err(), "{bad}");
        }
        for huge in [1e20, 1e300, f64::MAX] {
            assert_eq!(
                timeout_from_secs("t", Some(huge)).ok(),
                Some(Some(Duration::MAX))
            );
        }
        for huge in [1e23, 1e300, f64::MAX] {
            assert_eq!(duration_from_millis("t", huge).ok(), Some(Duration::MAX));
        }
        assert_eq!(
            timeout_from_secs("t", Some(0.0)).ok(),
            Some(Some(Duration::ZERO))
        );
        assert_eq!(
            timeout_from_secs("t", Some(-0.0)).ok(),
            Some(Some(Duration::ZERO))
        );
        assert!(duration_from_millis("t", f64::INFINITY).is_err());
        let err = timeout_from_secs("wait", Some(-2.0)).expect_err("negative");
        assert_eq!(
            err.to_string(),
            "invalid argument `wait`: must be a number of seconds >= 0, got -2"
        );
    }

    /// Each enum's names are its serde names, and read back.
    #[test]
    fn names_are_the_wire_names() {
        use crate::tools::ToolShape;
        use crate::{CancelKind, EventKind, NotificationKind, TaskStatus};
        fn wire<T: serde::Serialize>(v: T) -> String {
            serde_json::to_value(v)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        }
        for s in TaskStatus::ALL {
            assert_eq!(wire(s), s.as_str());
            assert_eq!(s.as_str().parse::<TaskStatus>().ok(), Some(s));
        }
        for k in CancelKind::ALL {
            assert_eq!(wire(k), k.as_str());
            assert_eq!(k.to_string().parse::<CancelKind>().ok(), Some(k));
        }
        for k in NotificationKind::ALL {
            assert_eq!(wire(k), k.as_str());
            assert_eq!(k.as_str().parse::<NotificationKind>().ok(), Some(k));
        }
        for p in OnTimeout::ALL {
            assert_eq!(wire(p), p.as_str());
            assert_eq!(p.as_str().parse::<OnTimeout>().ok(), Some(p));
        }
        for shape in ToolShape::ALL {
            assert_eq!(shape.as_str().parse::<ToolShape>().ok(), Some(shape));
        }
        let samples = [
            serde_json::json!({"type": "task.started", "kind": "k", "description": "", "owner": "", "background": true}),
            serde_json::json!({"type": "task.detached"}),
            serde_json::json!({"type": "task.spilled", "buffered_bytes": 1, "log_path": ""}),
            serde_json::json!({"type": "task.finished", "status": "lost", "duration_ms": 1}),
            serde_json::json!({"type": "task.lost"}),
            serde_json::json!({"type": "task.orphaned", "pid": 1}),
            serde_json::json!({"type": "task.output_dropped", "disk_limit": 1}),
            serde_json::json!({"type": "task.watch_matched", "line": ""}),
            serde_json::json!({"type": "task.heartbeat", "new_bytes": 1}),
            serde_json::json!({"type": "task.stalled", "idle_ms": 1}),
            serde_json::json!({"type": "task.sink_error", "sink": "", "error": ""}),
        ];
        for (sample, name) in samples.into_iter().zip(EventKind::TYPE_NAMES) {
            let kind: EventKind = serde_json::from_value(sample).expect("event");
            assert_eq!(kind.type_name(), name);
            assert_eq!(serde_json::to_value(&kind).expect("json")["type"], name);
        }
        let err = "done".parse::<TaskStatus>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "invalid argument `status`: unknown value \"done\"; expected one of: queued, running, completed, failed, cancelled, timed_out, lost"
        );
    }
}
