//! Wire names of the core's fieldless enums, read once for every front end:
//! an unknown name is an [`Error::InvalidArgument`] that names the argument
//! and lists the names allowed. The names themselves live next to each enum
//! (`as_str`, `FromStr`, `Display`); this module only has the reading rule,
//! and uses nothing but the error type, so any module may call it.
//!
//! ```
//! use agent_tasks::{parse_name, TaskStatus};
//! assert_eq!(parse_name::<TaskStatus>("status", "timed_out")?, TaskStatus::TimedOut);
//! # Ok::<(), agent_tasks::Error>(())
//! ```

use std::str::FromStr;

use crate::error::{Error, Result};

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

#[cfg(test)]
mod tests {
    use crate::OnTimeout;

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
