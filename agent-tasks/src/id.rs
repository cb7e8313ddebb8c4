//! Task ids: generation and validation. An id is `<kind>-<random>`, where kind
//! is a short lowercase word and random is base-36. Every id that comes in from
//! outside passes [`TaskId::parse`] before it is used, so no id can ever name a
//! path outside its task folder.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

const MAX_KIND_LEN: usize = 24;
const RANDOM_LEN: usize = 10;
const MAX_RANDOM_LEN: usize = 32;
const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A validated task id, e.g. `process-k3f9x0a2mq`.
///
/// ```
/// use agent_tasks::TaskId;
/// assert!(TaskId::parse("process-k3f9x0a2mq").is_ok());
/// assert!(TaskId::parse("../etc").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId(String);

impl TaskId {
    /// Makes a fresh id for a task of `kind`. The kind is normalised to the
    /// id grammar (lowercase letters, digits, `_`), so any kind string works.
    pub fn generate(kind: &str) -> TaskId {
        let mut normal: String = kind
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .take(MAX_KIND_LEN)
            .collect();
        if !normal.starts_with(|c: char| c.is_ascii_lowercase()) {
            normal.insert(0, 't');
            normal.truncate(MAX_KIND_LEN);
        }
        let mut bytes = [0u8; RANDOM_LEN];
        if getrandom::fill(&mut bytes).is_err() {
            // No OS randomness is very unusual; fall back to time and a counter
            // so ids stay unique within this process.
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let mix = nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(40);
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (mix >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(31);
            }
        }
        let random: String = bytes
            .iter()
            .map(|b| BASE36[(*b % 36) as usize] as char)
            .collect();
        TaskId(format!("{normal}-{random}"))
    }

    /// Checks that `raw` follows the id grammar:
    /// `[a-z][a-z0-9_]{0,23}-[a-z0-9]{4,32}`.
    pub fn parse(raw: &str) -> Result<TaskId, Error> {
        let refuse = |reason: &str| Error::InvalidTaskId {
            id: shorten(raw),
            reason: reason.to_string(),
        };
        if raw.is_empty() {
            return Err(refuse("the id is empty"));
        }
        if raw.len() > MAX_KIND_LEN + 1 + MAX_RANDOM_LEN {
            return Err(refuse("the id is too long"));
        }
        let Some((kind, random)) = raw.rsplit_once('-') else {
            return Err(refuse("expected `<kind>-<random>`"));
        };
        let kind_ok = kind.len() <= MAX_KIND_LEN
            && kind.starts_with(|c: char| c.is_ascii_lowercase())
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !kind_ok {
            return Err(refuse(
                "the kind must be lowercase letters, digits or `_`, starting with a letter",
            ));
        }
        let random_ok = (4..=MAX_RANDOM_LEN).contains(&random.len())
            && random
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !random_ok {
            return Err(refuse(
                "the part after `-` must be 4 to 32 lowercase letters or digits",
            ));
        }
        Ok(TaskId(raw.to_string()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn shorten(raw: &str) -> String {
    const SHOWN: usize = 64;
    if raw.len() <= SHOWN {
        return raw.escape_debug().to_string();
    }
    let mut cut = SHOWN;
    while !raw.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", raw[..cut].escape_debug(), raw.len())
}

impl schemars::JsonSchema for TaskId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TaskId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A task id: `<kind>-<random>`.",
            "type": "string",
            "pattern": "^[a-z][a-z0-9_]{0,23}-[a-z0-9]{4,32}$"
        })
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.0)
    }
}

impl AsRef<str> for TaskId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TaskId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TaskId::parse(&value)
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse() {
        for kind in [
            "process",
            "fn",
            "Sub Agent!",
            "",
            "9lives",
            "a".repeat(100).as_str(),
        ] {
            let id = TaskId::generate(kind);
            assert!(TaskId::parse(id.as_str()).is_ok(), "{id}");
        }
    }

    #[test]
    fn hostile_ids_are_refused() {
        let long = "a".repeat(10_000);
        for raw in [
            "",
            "../x",
            "a/b",
            "%2e%2e",
            "process-..",
            "process-ab\0cd",
            "-abcd",
            "process-",
            long.as_str(),
        ] {
            assert!(
                matches!(TaskId::parse(raw), Err(Error::InvalidTaskId { .. })),
                "{raw:?}"
            );
        }
    }
}
