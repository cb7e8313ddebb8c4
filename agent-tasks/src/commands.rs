//! Commands checked where they come in: a shell line or an argv made into a
//! [`ProcessTask`] and checked now, with the spawn's own rule, the error
//! naming the argument as the caller (a binding, a tool) knows it.

use std::ffi::OsString;

use crate::error::{Error, Result};
use crate::process::ProcessTask;

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
