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

/// The name of `known` closest to `given`, for a "did you mean" hint: the
/// one fewest single-character edits away (letter case ignored), if that is
/// at most 2 edits and `given` is not already one of them. Every front end
/// (the bindings' option checks, the CLI) asks here, so one misspelling
/// gets one suggestion everywhere.
///
/// ```
/// use agent_tasks::closest_name;
/// let known = ["timeout", "owner", "cwd"];
/// assert_eq!(closest_name("tiemout", &known), Some("timeout"));
/// assert_eq!(closest_name("colour", &known), None);
/// ```
pub fn closest_name<'a>(given: &str, known: &[&'a str]) -> Option<&'a str> {
    if known.contains(&given) {
        return None;
    }
    known
        .iter()
        .map(|name| (edit_distance(given, name), *name))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// The error of an option that `call` does not take: names it, suggests the
/// closest option, and lists them all.
///
/// ```
/// use agent_tasks::unknown_option;
/// let err = unknown_option("run", "tiemout", &["timeout", "owner"]);
/// assert_eq!(
///     err.to_string(),
///     "invalid argument `tiemout`: not an option of run; did you mean `timeout`? (its options: timeout, owner)"
/// );
/// ```
pub fn unknown_option(call: &str, given: &str, known: &[&str]) -> Error {
    let hint = closest_name(given, known)
        .map(|name| format!("; did you mean `{name}`?"))
        .unwrap_or_default();
    Error::invalid_argument(
        given,
        format!(
            "not an option of {call}{hint} (its options: {})",
            known.join(", ")
        ),
    )
}

/// Levenshtein distance over chars, case-insensitive; names are short, so
/// one row suffices.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
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
    fn the_closest_name_is_within_two_edits() {
        use super::{closest_name, edit_distance};
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("Timeout", "timeout"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let known = ["timeout", "owner", "keep_alive", "keepAlive"];
        assert_eq!(closest_name("timout", &known), Some("timeout"));
        assert_eq!(
            closest_name("timeout", &known),
            None,
            "an exact name needs no hint"
        );
        assert_eq!(closest_name("keepalive", &known), Some("keepAlive"));
        assert_eq!(closest_name("zzzzzz", &known), None);
        assert_eq!(closest_name("x", &[]), None);
    }

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
            serde_json::json!({"type": "task.paused"}),
            serde_json::json!({"type": "task.resumed"}),
            serde_json::json!({"type": "task.queued", "kind": "k", "description": "", "owner": ""}),
            serde_json::json!({"type": "task.limit_reached", "limit": "pids", "scope": "task", "value": 16.0, "count": 2}),
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
