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
/// waiter's memory. The cut is marked: the regex sees a newline after the
/// kept bytes (cut on a character boundary), so `$` (and `\z`) cannot match
/// in a cut line (its end is not seen); the reported line is the kept
/// bytes.
pub const MAX_WAIT_LINE: usize = 64 * 1024;

/// What [`TaskManager::wait_for`](crate::TaskManager::wait_for) waits for
/// (besides the task's end, which always ends the wait).
#[derive(Clone, Debug)]
pub enum WaitUntil {
    /// A line of output from `from_cursor` on (a byte offset, as in `poll`)
    /// matches `regex`. Lines are split on `\n`; a trailing `\r` is removed.
    ///
    /// The last line counts before its newline comes, as it stands each time
    /// the wait reads up to the end of the output (woken by each write): a
    /// prompt such as `>>> ` matches `^>>> ` while the program waits for
    /// input. Such a match's `cursor` is the end of what was there; a wait
    /// from that cursor sees the rest of the line (what is typed after the
    /// prompt) as a line, and nothing at all if the rest is only the line
    /// end. A line written in pieces may so be matched on its first piece:
    /// anchor the pattern on what marks the line complete if that matters.
    ///
    /// A backlog (output written before the wait) is read in slices of
    /// 64 KiB: the runtime's other tasks run between them and the timeout
    /// holds. Lines longer than [`MAX_WAIT_LINE`] are matched on their first
    /// 64 KiB (see there).
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
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
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
/// stopped, so each wake-up reads only what is new; a backlog is read in
/// bounded slices ([`LineScan::scan`] answers [`Scanned::More`]) so the
/// caller can yield and keep its deadline between them.
pub(crate) struct LineScan {
    /// The next byte to read.
    cursor: u64,
    /// The start of the unfinished line, and its first bytes.
    partial: Vec<u8>,
    /// Bytes of the unfinished line beyond [`MAX_WAIT_LINE`], not kept.
    partial_dropped: bool,
    /// Until the first newline: whether the bytes from the start cursor
    /// continue a line begun before it (`None`: not looked at yet).
    continues_line: Option<bool>,
    /// The unfinished line was checked as it stood, at this many bytes (and
    /// cut or not), and did not match: the same text is not checked again.
    checked: Option<(usize, bool)>,
}

/// What one [`LineScan::scan`] found.
#[derive(Debug)]
pub(crate) enum Scanned {
    /// A line matched: the line, and the cursor just past it.
    Matched(String, u64),
    /// A slice was read and more is readable: call again (after yielding).
    More,
    /// Everything readable was read, the unfinished last line too.
    CaughtUp,
}

/// How much one read takes from the stream: also what one
/// [`LineScan::scan`] reads at most, so a waiter's runtime thread is never
/// held long by a backlog (a few milliseconds a slice).
const SCAN_CHUNK: usize = 64 * 1024;

impl LineScan {
    pub(crate) fn new(from: u64) -> Self {
        LineScan {
            cursor: from,
            partial: Vec::new(),
            partial_dropped: false,
            continues_line: None,
            checked: None,
        }
    }

    /// Whether the line held now matches `regex`: the line as it stands,
    /// without a trailing `\r`. A line cut at [`MAX_WAIT_LINE`] is seen with a
    /// newline after its kept bytes (cut on a character boundary), so `$`
    /// cannot match at the cut.
    fn check(&self, regex: &Regex, end: u64) -> Option<(String, u64)> {
        let mut line = &self.partial[..];
        if self.partial_dropped {
            line = &line[..crate::output::complete_utf8_len(line)];
        } else if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let text = String::from_utf8_lossy(line);
        let matched = if self.partial_dropped {
            regex.is_match(&format!("{text}\n"))
        } else {
            regex.is_match(&text)
        };
        matched.then(|| (text.into_owned(), end))
    }

    /// Reads at most one slice of what is new; returns the first matching
    /// line and the cursor past it. Once everything readable is read, the
    /// unfinished last line (no newline yet: a prompt) is checked as it
    /// stands, once per length it reaches.
    pub(crate) fn scan(&mut self, output: &OutputBuffer, regex: &Regex) -> Result<Scanned> {
        if self.continues_line.is_none() {
            // A wait from inside a line (as from the cursor of a prompt
            // matched without its newline) does not see the empty rest of
            // that line as a line of its own.
            let before = match self.cursor.checked_sub(1) {
                // (A cursor past the end is refused by the slice's read.)
                Some(at) if self.cursor <= output.len() => output.read(at, 1)?,
                _ => return self.scan_slice(output, regex, false),
            };
            let continues = before.omitted == 0 && before.data.first().is_some_and(|b| *b != b'\n');
            return self.scan_slice(output, regex, continues);
        }
        self.scan_slice(output, regex, self.continues_line == Some(true))
    }

    fn scan_slice(
        &mut self,
        output: &OutputBuffer,
        regex: &Regex,
        continues: bool,
    ) -> Result<Scanned> {
        self.continues_line = Some(continues);
        let chunk = output.read(self.cursor, SCAN_CHUNK)?;
        if chunk.omitted > 0 {
            // A gap (the disk cap): the line before it is not whole.
            self.partial.clear();
            self.partial_dropped = false;
            self.checked = None;
            self.continues_line = Some(false);
            self.cursor = chunk.cursor;
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
                let rest_of_line = self.continues_line == Some(true);
                self.continues_line = Some(false);
                let empty = matches!(&self.partial[..], [] | [b'\r']) && !self.partial_dropped;
                let seen = self.checked == Some((self.partial.len(), self.partial_dropped));
                let found = if (rest_of_line && empty) || seen {
                    None
                } else {
                    self.check(regex, pos)
                };
                self.partial.clear();
                self.partial_dropped = false;
                self.checked = None;
                if let Some((line, end)) = found {
                    self.cursor = pos;
                    return Ok(Scanned::Matched(line, end));
                }
            }
        }
        self.cursor = pos;
        if pos < chunk.end && !chunk.data.is_empty() {
            return Ok(Scanned::More);
        }
        // All read: the unfinished line counts as it stands.
        let held = (self.partial.len(), self.partial_dropped);
        // (The bare `\r` of a line end begun before the start cursor is not
        // a line: its `\n` is on the way.)
        let bare_rest = self.continues_line == Some(true) && self.partial == b"\r";
        if (held.0 > 0 || held.1) && !bare_rest && self.checked != Some(held) {
            self.checked = Some(held);
            if let Some(found) = self.check(regex, self.cursor) {
                return Ok(Scanned::Matched(found.0, found.1));
            }
        }
        Ok(Scanned::CaughtUp)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::OutputLimits;
    use crate::sink::Stream;

    fn buffer(dir: &std::path::Path) -> OutputBuffer {
        let limits = OutputLimits {
            memory_limit: 4 << 20,
            disk_limit: 1 << 30,
            tail_window: 64 * 1024,
            gather: false,
            track_activity: false,
        };
        OutputBuffer::new(dir.join("t"), limits, false)
    }

    #[test]
    fn a_backlog_is_scanned_a_slice_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = buffer(dir.path());
        let mut text = String::new();
        for i in 0..200_000 {
            text.push_str(&format!("{i}\n"));
        }
        text.push_str("end\n");
        let _ = output.write(&Stream::STDOUT, text.as_bytes(), false);
        let regex = Regex::new("^end$").expect("regex");
        let mut scan = LineScan::new(0);
        let mut slices = 0;
        let found = loop {
            let before = scan.cursor;
            match scan.scan(&output, &regex).expect("scan") {
                Scanned::More => {
                    assert!(scan.cursor - before <= SCAN_CHUNK as u64);
                    slices += 1;
                }
                Scanned::Matched(line, cursor) => break (line, cursor),
                Scanned::CaughtUp => panic!("caught up without the match"),
            }
        };
        assert_eq!(found, ("end".to_string(), text.len() as u64));
        assert!(slices as u64 >= text.len() as u64 / SCAN_CHUNK as u64);
    }

    #[test]
    fn an_unfinished_line_is_checked_once_per_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = buffer(dir.path());
        let regex = Regex::new("^> $").expect("regex");
        let mut scan = LineScan::new(0);
        let _ = output.write(&Stream::STDOUT, b"one\n>", false);
        assert!(matches!(scan.scan(&output, &regex), Ok(Scanned::CaughtUp)));
        assert_eq!(scan.checked, Some((1, false)));
        let _ = output.write(&Stream::STDOUT, b" ", false);
        match scan.scan(&output, &regex).expect("scan") {
            Scanned::Matched(line, cursor) => assert_eq!((line.as_str(), cursor), ("> ", 6)),
            other => panic!("the prompt was not matched: {other:?}"),
        }
    }

    #[test]
    fn the_bare_end_of_a_line_begun_before_the_cursor_is_no_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = buffer(dir.path());
        let any = Regex::new("^.*$").expect("regex");
        let _ = output.write(&Stream::STDOUT, b"p> ", false);
        let mut scan = LineScan::new(3);
        assert!(matches!(scan.scan(&output, &any), Ok(Scanned::CaughtUp)));
        let _ = output.write(&Stream::STDOUT, b"\r", false);
        assert!(matches!(scan.scan(&output, &any), Ok(Scanned::CaughtUp)));
        let _ = output.write(&Stream::STDOUT, b"\nnext\n", false);
        match scan.scan(&output, &any).expect("scan") {
            Scanned::Matched(line, cursor) => assert_eq!((line.as_str(), cursor), ("next", 10)),
            other => panic!("expected the next line: {other:?}"),
        }
        // From inside a line, what follows on it is a line.
        let mut scan = LineScan::new(1);
        match scan.scan(&output, &any).expect("scan") {
            Scanned::Matched(line, cursor) => assert_eq!((line.as_str(), cursor), ("> ", 5)),
            other => panic!("expected the rest of the line: {other:?}"),
        }
    }
}
