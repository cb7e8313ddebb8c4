//! Readiness waits: what [`TaskManager::wait_for`](crate::TaskManager::wait_for)
//! waits for ([`WaitUntil`]) and what it found ([`WaitOutcome`]), plus the
//! plain helpers the wait uses (a line scanner over the output stream, a port
//! probe). The wait itself lives with the task (`lifecycle`).

use std::time::Duration;

use regex::Regex;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::info::TaskResult;
use crate::output::OutputBuffer;

/// How often a [`WaitUntil::Port`] wait tries to connect: every 100 ms
/// (a port cannot signal that it opened, so this one condition polls).
pub const PORT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The longest line a [`WaitUntil::Output`] regex sees: past 64 KiB a line is
/// matched on its first 64 KiB, so a line without a newline cannot grow the
/// waiter's memory.
pub const MAX_WAIT_LINE: usize = 64 * 1024;

/// What [`TaskManager::wait_for`](crate::TaskManager::wait_for) waits for
/// (besides the task's end, which always ends the wait).
#[derive(Clone, Debug)]
pub enum WaitUntil {
    /// A line of output from `from_cursor` on (a byte offset, as in `poll`)
    /// matches `regex`. Lines are split on `\n`; a trailing `\r` is removed;
    /// the last line counts once the task has ended, even without a newline.
    Output {
        /// The pattern a line must match.
        regex: Regex,
        /// Where to start reading the output.
        from_cursor: u64,
    },
    /// A TCP port on 127.0.0.1 accepts a connection. Checked at once and then
    /// every [`PORT_POLL_INTERVAL`] (100 ms).
    Port(u16),
    /// Only the task's end.
    End,
}

impl WaitUntil {
    /// A wait for an output line matching `pattern`, from `from_cursor`. An
    /// invalid pattern is an `InvalidArgument` naming `until`.
    pub fn output(pattern: &str, from_cursor: u64) -> Result<Self> {
        let regex = Regex::new(pattern)
            .map_err(|e| Error::invalid_argument("until", format!("not a valid regex: {e}")))?;
        Ok(WaitUntil::Output { regex, from_cursor })
    }

    /// Parses the text form the tools take: `port:N` waits for a port, `end`
    /// for the task's end, anything else is a regex over the output from
    /// `from_cursor`.
    pub fn parse(text: &str, from_cursor: u64) -> Result<Self> {
        let trimmed = text.trim();
        if let Some(port) = trimmed.strip_prefix("port:") {
            return match port.trim().parse::<u16>() {
                Ok(port) if port > 0 => Ok(WaitUntil::Port(port)),
                _ => Err(Error::invalid_argument(
                    "until",
                    format!("`{trimmed}`: a port is a number from 1 to 65535"),
                )),
            };
        }
        if trimmed == "end" {
            return Ok(WaitUntil::End);
        }
        WaitUntil::output(text, from_cursor)
    }
}

/// What ended a readiness wait.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WaitOutcome {
    /// A line matched: the line (without its newline), and the cursor just
    /// past it (poll or wait again from there).
    Matched {
        /// The matching line, decoded lossily.
        line: String,
        /// The offset just past the line.
        cursor: u64,
    },
    /// The port accepted a connection.
    PortOpen {
        /// The port.
        port: u16,
    },
    /// The task ended first (or had ended): its result.
    Ended(Box<TaskResult>),
    /// The timeout passed first.
    TimedOut,
}

/// Reads the output stream line by line from a cursor, remembering where it
/// stopped, so each wake-up reads only what is new.
pub(crate) struct LineScan {
    /// The next byte to read.
    cursor: u64,
    /// The start of the unfinished line, and its first bytes.
    partial: Vec<u8>,
    /// Bytes of the unfinished line beyond [`MAX_WAIT_LINE`], not kept.
    partial_dropped: bool,
}

/// How much one read takes from the stream.
const SCAN_CHUNK: usize = 256 * 1024;

impl LineScan {
    pub(crate) fn new(from: u64) -> Self {
        LineScan {
            cursor: from,
            partial: Vec::new(),
            partial_dropped: false,
        }
    }

    fn check(&self, regex: &Regex, end: u64) -> Option<(String, u64)> {
        let mut line = &self.partial[..];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let text = String::from_utf8_lossy(line);
        regex.is_match(&text).then(|| (text.into_owned(), end))
    }

    /// Reads what is new; returns the first matching line and the cursor
    /// past it. With `ended`, the last line counts without a newline.
    pub(crate) fn scan(
        &mut self,
        output: &OutputBuffer,
        regex: &Regex,
        ended: bool,
    ) -> Result<Option<(String, u64)>> {
        loop {
            let chunk = output.read(self.cursor, SCAN_CHUNK)?;
            if chunk.omitted > 0 {
                // A gap (the disk cap): the line before it is not whole.
                self.partial.clear();
                self.partial_dropped = false;
            }
            if chunk.data.is_empty() {
                break;
            }
            let mut pos = chunk.cursor;
            for piece in chunk.data.split_inclusive(|b| *b == b'\n') {
                pos += piece.len() as u64;
                let (body, whole) = match piece.split_last() {
                    Some((b'\n', body)) => (body, true),
                    _ => (piece, false),
                };
                let room = MAX_WAIT_LINE.saturating_sub(self.partial.len());
                if body.len() > room {
                    self.partial_dropped = true;
                }
                self.partial
                    .extend_from_slice(&body[..body.len().min(room)]);
                if whole {
                    let found = self.check(regex, pos);
                    self.partial.clear();
                    self.partial_dropped = false;
                    if let Some(found) = found {
                        self.cursor = pos;
                        return Ok(Some(found));
                    }
                }
            }
            self.cursor = pos;
        }
        if ended && (!self.partial.is_empty() || self.partial_dropped) {
            let found = self.check(regex, self.cursor);
            self.partial.clear();
            return Ok(found);
        }
        Ok(None)
    }
}

/// Whether a TCP port on 127.0.0.1 accepts a connection now (within 1 s).
pub(crate) async fn port_open(port: u16) -> bool {
    let connect = tokio::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port));
    matches!(
        tokio::time::timeout(Duration::from_secs(1), connect).await,
        Ok(Ok(_))
    )
}
