//! Defaults a caller gets when it gives no value, named once here so every
//! front end (Rust, Python, Node, the tools) uses the same number.

/// The reason `shutdown` records when the host gives none (every front end's
/// `shutdown()` / `close()` without a reason).
pub const DEFAULT_SHUTDOWN_REASON: &str = "the task manager was shut down";

/// Bytes `poll` returns when the caller gives no limit (64 KiB).
pub const DEFAULT_POLL_BYTES: usize = 64 * 1024;

/// Bytes of the head, and of the tail, `preview` shows when the caller gives
/// no size (4 KiB each).
pub const DEFAULT_PREVIEW_BYTES: usize = 4096;
