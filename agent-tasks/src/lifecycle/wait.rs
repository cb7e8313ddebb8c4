//! Waits on one task's progress: readiness (until an output line matches, a
//! port accepts, or the task ends) and the next output past a cursor (what
//! the bindings' output streams read). Woken by new output (the buffer's
//! growth signal) and by the task's state changes; only a port is polled.
//! A readiness wait reads a backlog a slice at a time, yielding to the
//! runtime and checking its deadline between slices.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::Result;
use crate::output::Page;
use crate::readiness::{port_open, LineScan, Scanned, WaitOutcome, WaitUntil, PORT_POLL_INTERVAL};
use crate::util::{deadline, sleep_until};

use super::TaskEntry;

impl TaskEntry {
    /// Waits until `until` holds, the task ends, or `timeout` passes
    /// (`None`: no limit).
    pub(crate) async fn wait_for(
        &self,
        until: &WaitUntil,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome> {
        let give_up = timeout.and_then(|t| deadline(Instant::now(), t));
        let _armed = self.output.watch_growth();
        let mut scan = match until {
            WaitUntil::Output { from_cursor, .. } => Some(LineScan::new(*from_cursor)),
            _ => None,
        };
        let mut next_probe = Instant::now();
        loop {
            let grown = self.output.growth().notified();
            tokio::pin!(grown);
            grown.as_mut().enable();
            let changed = self.changes.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let ended = self.result();
            if let (Some(scan), WaitUntil::Output { regex, .. }) = (scan.as_mut(), until) {
                match scan.scan(&self.output, regex)? {
                    Scanned::Matched(line, cursor) => {
                        return Ok(WaitOutcome::Matched { line, cursor });
                    }
                    Scanned::More => {
                        // A backlog is read a slice at a time: the runtime's
                        // other tasks run between slices, and the deadline
                        // holds however much is left to read.
                        tokio::task::yield_now().await;
                        if give_up.is_some_and(|at| at <= Instant::now()) {
                            return Ok(WaitOutcome::TimedOut);
                        }
                        continue;
                    }
                    Scanned::CaughtUp => {}
                }
            }
            let mut probe_at = None;
            if let WaitUntil::Port(port) = until {
                if Instant::now() >= next_probe {
                    if port_open(*port).await {
                        return Ok(WaitOutcome::PortOpen { port: *port });
                    }
                    next_probe = Instant::now() + PORT_POLL_INTERVAL;
                }
                probe_at = Some(next_probe);
            }
            if let Some(result) = ended {
                return Ok(WaitOutcome::Ended(Box::new(result)));
            }
            if give_up.is_some_and(|at| at <= Instant::now()) {
                return Ok(WaitOutcome::TimedOut);
            }
            tokio::select! {
                _ = &mut grown, if scan.is_some() => {}
                _ = &mut changed => {}
                _ = sleep_until(probe_at), if probe_at.is_some() => {}
                _ = sleep_until(give_up), if give_up.is_some() => {
                    return Ok(WaitOutcome::TimedOut);
                }
            }
        }
    }

    /// Waits until a page read from `cursor` has something to say (bytes,
    /// bytes skipped as omitted, or the end of the finished stream), the
    /// task has ended, or `timeout` passes (`None`: no limit), then reads
    /// it: the page, and whether the time ran out first (the page is then
    /// empty; once the task has ended an empty page has `eof` when
    /// `next_cursor` is the end). A cursor past the end
    /// is refused at once. Woken by the buffer's growth signal and by the
    /// task's state changes, never by a sleep loop.
    pub(crate) async fn wait_page(
        &self,
        cursor: u64,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<(Page, bool)> {
        let give_up = timeout.and_then(|t| deadline(Instant::now(), t));
        let _armed = self.output.watch_growth();
        loop {
            // Armed before the read, so no write (or state change) between
            // the two is missed.
            let grown = self.output.growth().notified();
            tokio::pin!(grown);
            grown.as_mut().enable();
            let changed = self.changes.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            // Read the end before the page: output written before the end
            // is in the page read after it.
            let ended = self.result().is_some();
            let page = self.output.page(cursor, max)?;
            if !page.data.is_empty() || page.omitted > 0 || page.eof || ended {
                return Ok((page, false));
            }
            if give_up.is_some_and(|at| at <= Instant::now()) {
                return Ok((page, true));
            }
            tokio::select! {
                _ = &mut grown => {}
                _ = &mut changed => {}
                _ = sleep_until(give_up), if give_up.is_some() => {}
            }
        }
    }
}
