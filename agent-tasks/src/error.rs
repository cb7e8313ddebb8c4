//! The library's one error type: every fallible public call returns [`Error`],
//! whose variants name the problem precisely enough for a host (or a model)
//! to act on it.

use std::path::PathBuf;

/// Errors returned by [`TaskManager`](crate::TaskManager) and friends.
///
/// Each variant carries what it refers to (the id, the argument, the path),
/// so its `Display` text is a complete sentence a host can show as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No task with this id is known to the manager.
    #[error("no task with id `{id}`")]
    TaskNotFound {
        /// The id that was asked for.
        id: String,
    },

    /// The id does not follow the `<kind>-<random>` grammar, so it is refused
    /// before it can ever be used as a path.
    #[error("invalid task id `{id}`: {reason}")]
    InvalidTaskId {
        /// The offending id (shortened if very long).
        id: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Spawning would exceed a cap on running background tasks.
    #[error(
        "capacity exceeded: {running} background tasks already running {scope} (limit {limit})"
    )]
    CapacityExceeded {
        /// `"in total"` or `"for owner <name>"`.
        scope: String,
        /// The configured limit.
        limit: usize,
        /// How many were running when the spawn was refused.
        running: usize,
    },

    /// An argument is missing, out of range or malformed.
    #[error("invalid argument `{name}`: {message}")]
    InvalidArgument {
        /// The argument's name.
        name: String,
        /// What is wrong with it.
        message: String,
    },

    /// The task exists but cannot take a steering message.
    #[error("task `{id}` cannot receive messages: {reason}")]
    NotReceiving {
        /// The task's id.
        id: String,
        /// Why (finished, no stdin, inbox closed).
        reason: String,
    },

    /// Another manager (in this or another process) has the root folder
    /// open; two managers on one root would each take the other's running
    /// tasks for lost.
    #[error("the root folder `{}` is in use by another task manager", path.display())]
    RootInUse {
        /// The root folder.
        path: PathBuf,
    },

    /// The manager has been shut down and accepts no new tasks.
    #[error("the task manager has been shut down")]
    ShutDown,

    /// The task asks for resource limits this host cannot enforce (no
    /// cgroup can be made, a controller is not available, or the task's
    /// containment is `ProcessGroup`), and the manager's policy is
    /// [`UnenforcedLimits::Refuse`](crate::UnenforcedLimits::Refuse).
    #[error("limits not enforceable here ({}): {reason}", kinds.join(", "))]
    LimitsUnavailable {
        /// The kinds of limit that cannot be applied (`memory`, `pids`, `cpu`).
        kinds: Vec<String>,
        /// Why.
        reason: String,
    },

    /// A file-system operation on the task folder failed.
    #[error("{action} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short stable code for bindings and tools, e.g. `TASK_NOT_FOUND`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::TaskNotFound { .. } => "TASK_NOT_FOUND",
            Error::InvalidTaskId { .. } => "INVALID_TASK_ID",
            Error::CapacityExceeded { .. } => "CAPACITY_EXCEEDED",
            Error::InvalidArgument { .. } => "INVALID_ARGUMENT",
            Error::NotReceiving { .. } => "NOT_RECEIVING",
            Error::RootInUse { .. } => "ROOT_IN_USE",
            Error::ShutDown => "SHUT_DOWN",
            Error::LimitsUnavailable { .. } => "LIMITS_UNAVAILABLE",
            Error::Io { .. } => "IO_ERROR",
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid_argument(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            name: name.into(),
            message: message.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
