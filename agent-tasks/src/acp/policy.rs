//! What the host allows an ACP agent: the answer to its permission requests
//! ([`PermissionPolicy`]) and its file reads and writes ([`FileAccess`]).
//! The decisions are made here, from plain data; the connection code only
//! turns them into protocol responses.

use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

/// One option an agent offers in a permission request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PermissionChoice {
    /// The option's id (what a [`PermissionDecision::Select`] names).
    pub id: String,
    /// Its label for people.
    pub name: String,
    /// `allow_once`, `allow_always`, `reject_once` or `reject_always`.
    pub kind: String,
}

/// A permission request from an agent, as a host's callback sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PermissionRequest {
    /// The ACP task's id.
    pub task_id: String,
    /// The tool call's title, if the agent gave one (e.g. `Run rm -rf build`).
    pub title: Option<String>,
    /// The tool call's kind (`read`, `edit`, `execute`, ...), if given.
    pub tool_kind: Option<String>,
    /// The options the agent offers.
    pub options: Vec<PermissionChoice>,
    /// The tool call as the agent sent it (JSON), for hosts that want all of it.
    pub tool_call: serde_json::Value,
}

/// A host's answer to a permission request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PermissionDecision {
    /// Allow: the agent's `allow_once` option (else `allow_always`).
    Allow,
    /// Deny: the agent's `reject_once` option (else `reject_always`).
    Deny,
    /// The option with this id.
    Select(String),
    /// No choice: the request is answered `cancelled`.
    Cancel,
}

/// The future a permission callback returns.
pub type PermissionFuture = Pin<Box<dyn Future<Output = PermissionDecision> + Send>>;

/// A host's permission callback.
pub type PermissionCallback = Arc<dyn Fn(PermissionRequest) -> PermissionFuture + Send + Sync>;

/// How an ACP task answers its agent's permission requests
/// (`session/request_permission`).
///
/// The default is [`PermissionPolicy::DenyAll`]: an agent running unattended
/// in the background does nothing that it asks permission for unless the
/// host said so. An agent that gets no allow option to pick, or a host
/// decision naming an option the agent did not offer, gets `cancelled`.
#[derive(Clone, Default)]
pub enum PermissionPolicy {
    /// Every request is allowed (the agent's allow-once option).
    AllowAll,
    /// Every request is refused (the agent's reject-once option). The default.
    #[default]
    DenyAll,
    /// A host callback decides each request.
    Ask(PermissionCallback),
}

impl std::fmt::Debug for PermissionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PermissionPolicy::AllowAll => "AllowAll",
            PermissionPolicy::DenyAll => "DenyAll",
            PermissionPolicy::Ask(_) => "Ask(callback)",
        })
    }
}

impl PermissionPolicy {
    /// A policy that asks `callback` about each request.
    ///
    /// ```
    /// use agent_tasks::acp::{PermissionDecision, PermissionPolicy};
    ///
    /// let policy = PermissionPolicy::ask(|request| async move {
    ///     if request.tool_kind.as_deref() == Some("read") {
    ///         PermissionDecision::Allow
    ///     } else {
    ///         PermissionDecision::Deny
    ///     }
    /// });
    /// ```
    pub fn ask<F, Fut>(callback: F) -> Self
    where
        F: Fn(PermissionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = PermissionDecision> + Send + 'static,
    {
        PermissionPolicy::Ask(Arc::new(move |request| Box::pin(callback(request))))
    }

    /// The decision for `request`.
    pub(crate) async fn decide(&self, request: PermissionRequest) -> PermissionDecision {
        match self {
            PermissionPolicy::AllowAll => PermissionDecision::Allow,
            PermissionPolicy::DenyAll => PermissionDecision::Deny,
            PermissionPolicy::Ask(callback) => callback(request).await,
        }
    }
}

/// The option id a decision picks among `options`, or `None` for
/// `cancelled`.
pub(crate) fn pick_option(
    decision: &PermissionDecision,
    options: &[PermissionChoice],
) -> Option<String> {
    let by_kind = |kinds: [&str; 2]| {
        kinds
            .iter()
            .find_map(|kind| options.iter().find(|o| o.kind == *kind))
            .map(|o| o.id.clone())
    };
    match decision {
        PermissionDecision::Allow => by_kind(["allow_once", "allow_always"]),
        PermissionDecision::Deny => by_kind(["reject_once", "reject_always"]),
        PermissionDecision::Select(id) => {
            options.iter().find(|o| &o.id == id).map(|o| o.id.clone())
        }
        PermissionDecision::Cancel => None,
    }
}

/// Which files an ACP agent may read and write through the client
/// (`fs/read_text_file`, `fs/write_text_file`). Paths are resolved (symbolic
/// links followed) before the check, so a link inside the directory that
/// points outside it does not let the agent out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileAccess {
    /// Reads and writes inside the session's working directory. The default.
    #[default]
    WithinCwd,
    /// Reads inside the session's working directory; no writes.
    ReadWithinCwd,
    /// Any path the host process may read or write.
    Anywhere,
    /// No file access through the client (the capability is not offered).
    Deny,
}

impl FileAccess {
    /// Every policy, in declaration order.
    pub const ALL: [FileAccess; 4] = [
        FileAccess::WithinCwd,
        FileAccess::ReadWithinCwd,
        FileAccess::Anywhere,
        FileAccess::Deny,
    ];

    /// The policy's wire name: `cwd`, `read_cwd`, `anywhere` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileAccess::WithinCwd => "cwd",
            FileAccess::ReadWithinCwd => "read_cwd",
            FileAccess::Anywhere => "anywhere",
            FileAccess::Deny => "none",
        }
    }

    /// Whether the agent is told it may read files through the client.
    pub(crate) fn can_read(self) -> bool {
        self != FileAccess::Deny
    }

    /// Whether the agent is told it may write files through the client.
    pub(crate) fn can_write(self) -> bool {
        matches!(self, FileAccess::WithinCwd | FileAccess::Anywhere)
    }

    /// The resolved path the agent may use, or why not.
    pub(crate) fn check(self, path: &Path, write: bool, cwd: &Path) -> Result<PathBuf, String> {
        let verb = if write { "write" } else { "read" };
        if (write && !self.can_write()) || (!write && !self.can_read()) {
            return Err(format!(
                "the host does not let this agent {verb} files (policy {self:?})"
            ));
        }
        if !path.is_absolute() {
            return Err(format!("the path `{}` is not absolute", path.display()));
        }
        let resolved =
            resolve(path).map_err(|e| format!("cannot resolve `{}`: {e}", path.display()))?;
        if self == FileAccess::Anywhere {
            return Ok(resolved);
        }
        let root = cwd
            .canonicalize()
            .map_err(|e| format!("cannot resolve the session directory: {e}"))?;
        if resolved.starts_with(&root) {
            Ok(resolved)
        } else {
            Err(format!(
                "refused to {verb} `{}`: it is outside the session directory `{}`",
                path.display(),
                root.display()
            ))
        }
    }
}

impl std::str::FromStr for FileAccess {
    type Err = crate::Error;

    /// Parses a wire name; the error names the argument `files`.
    fn from_str(s: &str) -> crate::Result<Self> {
        crate::names::by_name("files", s, &FileAccess::ALL, FileAccess::as_str)
    }
}

impl PermissionPolicy {
    /// The fixed policies' wire names, for bindings: `allow` or `deny`
    /// (a callback is given as a function instead).
    pub const NAMES: [&'static str; 2] = ["allow", "deny"];

    /// The fixed policy named `name` (`allow` or `deny`); the error names
    /// the argument `permissions`.
    pub fn named(name: &str) -> crate::Result<Self> {
        match name {
            "allow" => Ok(PermissionPolicy::AllowAll),
            "deny" => Ok(PermissionPolicy::DenyAll),
            other => Err(crate::names::unknown_name(
                "permissions",
                other,
                &PermissionPolicy::NAMES,
            )),
        }
    }
}

impl PermissionDecision {
    /// A decision from a binding's callback answer: `Some(true)` allows,
    /// `Some(false)` denies, `None` cancels; a string selects that option.
    pub fn from_answer(allow: Option<bool>, option: Option<String>) -> Self {
        match (option, allow) {
            (Some(id), _) => PermissionDecision::Select(id),
            (None, Some(true)) => PermissionDecision::Allow,
            (None, Some(false)) => PermissionDecision::Deny,
            (None, None) => PermissionDecision::Cancel,
        }
    }
}

/// `path` with symbolic links resolved as far as it exists, and the rest
/// (a file to be created) appended. A `..` is refused outright: in the
/// missing part it would climb out after the check.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path contains `..`",
        ));
    }
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(mut out) => {
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(name) = existing.file_name().map(|n| n.to_os_string()) else {
                    return Err(e);
                };
                rest.push(name);
                if !existing.pop() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choices() -> Vec<PermissionChoice> {
        [
            ("a", "allow_always"),
            ("b", "allow_once"),
            ("c", "reject_once"),
        ]
        .iter()
        .map(|(id, kind)| PermissionChoice {
            id: id.to_string(),
            name: id.to_string(),
            kind: kind.to_string(),
        })
        .collect()
    }

    #[test]
    fn decisions_pick_the_narrowest_option() {
        let options = choices();
        assert_eq!(
            pick_option(&PermissionDecision::Allow, &options).as_deref(),
            Some("b")
        );
        assert_eq!(
            pick_option(&PermissionDecision::Deny, &options).as_deref(),
            Some("c")
        );
        assert_eq!(
            pick_option(&PermissionDecision::Select("a".into()), &options).as_deref(),
            Some("a")
        );
        assert_eq!(
            pick_option(&PermissionDecision::Select("zz".into()), &options),
            None
        );
        assert_eq!(pick_option(&PermissionDecision::Cancel, &options), None);
    }

    #[test]
    fn files_outside_the_directory_are_refused() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let inside = dir.path().join("sub/new.txt");
        FileAccess::WithinCwd.check(&inside, true, dir.path())?;
        let outside = dir.path().join("../elsewhere.txt");
        assert!(FileAccess::WithinCwd
            .check(&outside, true, dir.path())
            .is_err());
        assert!(FileAccess::WithinCwd
            .check(Path::new("/etc/hostname"), false, dir.path())
            .is_err());
        assert!(FileAccess::ReadWithinCwd
            .check(&inside, true, dir.path())
            .is_err());
        assert!(FileAccess::WithinCwd
            .check(Path::new("rel.txt"), false, dir.path())
            .is_err());
        Ok(())
    }
}
