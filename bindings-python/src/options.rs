//! The arguments of `run` and `spawn` (and of the manager, the toolbox and
//! ACP agents) as the core's options: a dict of keyword arguments read into
//! the core's option structs ([`agent_tasks::parse_options`]: its names,
//! checks and errors), and commands as `sh -c` strings or argvs.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use agent_tasks::{ProcessTask, TaskStatus};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::errors::{core_err, invalid_argument};

/// The options `T` of `call` from a dict of keyword arguments.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    call: &str,
    options: &Bound<'_, PyAny>,
) -> PyResult<T> {
    let mut options = pythonize::Depythonizer::from_object(options);
    agent_tasks::parse_options(call, &mut options).map_err(core_err)
}

/// A `status` argument: the core's status names.
pub(crate) fn status(name: &str) -> PyResult<TaskStatus> {
    agent_tasks::parse_name("status", name).map_err(core_err)
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
