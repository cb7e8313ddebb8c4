//! Errors crossing into JavaScript. Every error the binding raises carries a
//! stable code: the core's [`agent_tasks::Error::code`] (`TASK_NOT_FOUND`,
//! `INVALID_TASK_ID`, `CAPACITY_EXCEEDED`, …) or one of the binding's own
//! (`INVALID_ARGUMENT`, `SHUT_DOWN`, `ABORTED`).
//!
//! napi-rs sets a thrown error's `code` from its `Status`, which cannot hold
//! our codes, so the code travels as a `[agent-tasks:CODE] ` prefix of the
//! message; the JS wrapper (`index.js`) moves it into `error.code` and strips
//! it from the message. Nothing here panics.

use std::fmt::Display;

use napi::{Error, Status};

/// The prefix that carries a code: `[agent-tasks:CODE] message`.
const PREFIX: &str = "[agent-tasks:";

/// A JS error with `code` and `message`.
pub(crate) fn coded(code: &str, message: impl Display) -> Error {
    Error::new(Status::GenericFailure, format!("{PREFIX}{code}] {message}"))
}

/// A core error, with its stable code.
pub(crate) fn core(error: agent_tasks::Error) -> Error {
    coded(error.code(), error)
}

/// An `INVALID_ARGUMENT` error naming the argument, worded like the core's.
pub(crate) fn invalid(name: &str, message: impl Display) -> Error {
    coded(
        "INVALID_ARGUMENT",
        format!("invalid argument `{name}`: {message}"),
    )
}

/// The error of any call on a closed manager.
pub(crate) fn shut_down() -> Error {
    core(agent_tasks::Error::ShutDown)
}

/// The error a wait rejects with when its `AbortSignal` fired; the wrapper
/// replaces it with the signal's reason.
pub(crate) fn aborted() -> Error {
    coded("ABORTED", "the wait was aborted")
}

/// Converts a core `Result`.
pub(crate) trait CoreResultExt<T> {
    /// Maps the core error to a coded JS error.
    fn js(self) -> napi::Result<T>;
}

impl<T> CoreResultExt<T> for agent_tasks::Result<T> {
    fn js(self) -> napi::Result<T> {
        self.map_err(core)
    }
}

/// The text of a cancel reason, as the core writes it (`timed out: …`), for
/// the error a JS task's `ctx.signal` aborts with: one wording, the core's
/// `Display` of [`agent_tasks::CancelReason`].
#[napi_derive::napi]
#[cfg_attr(test, allow(dead_code))]
pub fn cancel_reason_text(kind: String, message: Option<String>) -> napi::Result<String> {
    let kind: agent_tasks::CancelKind = agent_tasks::parse_name("kind", &kind).js()?;
    Ok(agent_tasks::CancelReason { kind, message }.to_string())
}
