//! Process-group signals: every task's root process leads its own process
//! group (`process_group(0)` at spawn), so one `killpg` reaches the root and
//! every descendant that stayed in the group, whatever the containment.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Sends `signal` to process group `pgid`; true if the group existed.
/// ESRCH (the group is gone) is the usual end state, not an error.
pub(crate) fn signal_group(pgid: u32, signal: Signal) -> bool {
    if pgid <= 1 {
        return false; // never the caller's own group (0) or init's
    }
    killpg(Pid::from_raw(pgid as i32), signal).is_ok()
}
