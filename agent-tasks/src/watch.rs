//! Watch patterns: a sink that splits a task's output into lines, matches
//! them against the task's regexes, and hands matches to whoever attached (the task's owner, through a
//! callback: this module knows nothing of lifecycles),
//! rate limited (one notice per interval, matches in between counted) and
//! capped (after the maximum, one last notice and watching stops).

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use regex::RegexSet;
use tokio::time::Instant;

use crate::sink::{Sink, Stream};
use crate::util::{deadline, lock};

/// Longest line kept while waiting for its newline; a longer one is
/// matched as it is.
const MAX_LINE: usize = 4096;

/// What the watcher tells the entry.
pub(crate) enum WatchEvent {
    /// A line matched; `skipped` matches were held back by the rate limit
    /// since the last notice.
    Matched {
        line: String,
        skipped: u64,
        nth: usize,
    },
    /// The cap was reached; watching stops.
    Stopped { total_matches: u64 },
}

struct WatchState {
    partial: Vec<u8>,
    next_allowed: NextNotice,
    skipped: u64,
    notified: usize,
    matches: u64,
    stopped: bool,
}

/// When the next match may be told.
#[derive(Clone, Copy)]
enum NextNotice {
    /// The next match is told at once.
    Now,
    /// Matches before this instant are only counted.
    At(Instant),
    /// The interval reaches past any instant (a huge `watch_interval`):
    /// later matches are only counted.
    Never,
}

/// Who hears of matches.
pub(crate) type Listener = Box<dyn Fn(WatchEvent) + Send + Sync>;

/// A sink that watches a task's output lines.
pub(crate) struct WatchSink {
    patterns: RegexSet,
    interval: Duration,
    max: usize,
    listener: OnceLock<Listener>,
    state: Mutex<WatchState>,
}

impl WatchSink {
    /// Compiles the patterns; the error names the one that failed.
    pub(crate) fn new(patterns: &[String], interval: Duration, max: usize) -> Result<Self, String> {
        for p in patterns {
            regex::Regex::new(p).map_err(|e| format!("`{p}` is not a valid regex: {e}"))?;
        }
        let patterns = RegexSet::new(patterns).map_err(|e| e.to_string())?;
        Ok(WatchSink {
            patterns,
            interval,
            max,
            listener: OnceLock::new(),
            state: Mutex::new(WatchState {
                partial: Vec::new(),
                next_allowed: NextNotice::Now,
                skipped: 0,
                notified: 0,
                matches: 0,
                stopped: false,
            }),
        })
    }

    /// Sets who hears of matches (once). Called outside any lock of this
    /// sink.
    pub(crate) fn attach(&self, listener: Listener) {
        let _ = self.listener.set(listener);
    }

    fn tell(&self, events: Vec<WatchEvent>) {
        if let Some(listener) = self.listener.get() {
            for event in events {
                listener(event);
            }
        }
    }

    fn check_line(&self, st: &mut WatchState, line: &[u8], out: &mut Vec<WatchEvent>) {
        if st.stopped {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\n', '\r']);
        if !self.patterns.is_match(text) {
            return;
        }
        st.matches += 1;
        let now = Instant::now();
        let quiet = match st.next_allowed {
            NextNotice::Now => false,
            NextNotice::At(at) => now < at,
            NextNotice::Never => true,
        };
        if quiet {
            st.skipped += 1;
            return;
        }
        // Any interval is accepted: one too large for the clock means no
        // second notice, never an overflow.
        st.next_allowed = deadline(now, self.interval).map_or(NextNotice::Never, NextNotice::At);
        st.notified += 1;
        out.push(WatchEvent::Matched {
            line: text.to_string(),
            skipped: std::mem::take(&mut st.skipped),
            nth: st.notified,
        });
        if st.notified >= self.max {
            st.stopped = true;
            out.push(WatchEvent::Stopped {
                total_matches: st.matches,
            });
        }
    }
}

impl Sink for WatchSink {
    fn write(&self, _stream: &Stream, bytes: &[u8]) -> std::io::Result<()> {
        let mut events = Vec::new();
        {
            let mut st = lock(&self.state);
            if st.stopped {
                return Ok(());
            }
            let mut rest = bytes;
            while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
                let (line, after) = rest.split_at(pos + 1);
                if st.partial.is_empty() {
                    self.check_line(&mut st, line, &mut events);
                } else {
                    let mut whole = std::mem::take(&mut st.partial);
                    whole.extend_from_slice(line);
                    self.check_line(&mut st, &whole, &mut events);
                }
                rest = after;
            }
            st.partial.extend_from_slice(rest);
            if st.partial.len() > MAX_LINE {
                let long = std::mem::take(&mut st.partial);
                self.check_line(&mut st, &long, &mut events);
            }
        }
        self.tell(events);
        Ok(())
    }

    fn close(&self) -> std::io::Result<()> {
        // A last line without a newline still counts.
        let mut events = Vec::new();
        {
            let mut st = lock(&self.state);
            let last = std::mem::take(&mut st.partial);
            if !last.is_empty() {
                self.check_line(&mut st, &last, &mut events);
            }
        }
        self.tell(events);
        Ok(())
    }
}
