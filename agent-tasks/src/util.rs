//! Small helpers every room of the crate shares: a lock that survives a
//! poisoned mutex, the wall clock in milliseconds, private folders, and
//! deadline arithmetic that never overflows. Nothing here knows about tasks.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::os::unix::fs::DirBuilderExt;

/// Locks `m`, going on past a poisoned lock: the data behind every mutex of
/// this crate is plain state that a panic elsewhere cannot leave half-made.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Creates `dir` (and parents) with mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// `from + after`, or `None` ("no deadline") when the sum does not fit in an
/// `Instant`: any `Duration`, `Duration::MAX` included, is a valid timeout.
pub(crate) fn deadline(
    from: tokio::time::Instant,
    after: Duration,
) -> Option<tokio::time::Instant> {
    from.checked_add(after)
}

/// Sleeps until `at`, or forever when there is no deadline. For `select!`
/// arms whose timer may be absent.
pub(crate) async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_deadlines_mean_none() {
        let now = tokio::time::Instant::now();
        assert_eq!(deadline(now, Duration::MAX), None);
        assert!(deadline(now, Duration::from_secs(1)).is_some());
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
