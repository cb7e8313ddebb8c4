//! Pages for readers: a chunk of the stream cut where text decodes cleanly.
//! While the stream is still being written a page ends on a UTF-8 character
//! boundary, so the next page (from `next_cursor`) starts on one; the last
//! page of a finished stream is returned whole, whatever its last bytes are.
//! A page always holds at least one whole character, so a limit smaller than
//! a character (`max_bytes` 1 on `é`) still makes progress without cutting
//! the character in two: the page is then longer than the limit.

use crate::error::Result;
use crate::info::StreamSpan;

use super::ReadChunk;

/// The longest UTF-8 character, in bytes.
const MAX_CHAR_LEN: usize = 4;

/// One page of output for a reader polling by cursor.
#[derive(Debug)]
pub(crate) struct Page {
    /// Offset of the first byte (past any omitted bytes).
    pub cursor: u64,
    /// Where to read from next.
    pub next_cursor: u64,
    /// Bytes skipped before `cursor` that no longer exist (disk cap).
    pub omitted: u64,
    /// True when the stream is finished and `next_cursor` is its end.
    pub eof: bool,
    pub data: Vec<u8>,
    pub spans: Vec<StreamSpan>,
}

impl Page {
    /// The page of up to `max` bytes from `cursor`, read with `read` (the
    /// buffer's reader: up to so many bytes from an offset, past any gap).
    /// When the bytes read hold no whole character (a limit under a
    /// character's width, or a chunk that stops where the log ends and
    /// memory begins), the few bytes that finish it are read too, so the
    /// page is that one character, whole.
    pub(crate) fn read(
        cursor: u64,
        max: usize,
        read: impl Fn(u64, usize) -> Result<ReadChunk>,
    ) -> Result<Page> {
        let mut chunk = read(cursor, max)?;
        let len = chunk.data.len();
        let no_whole_char = len > 0 && complete_utf8_len(&chunk.data) == 0;
        if no_whole_char && chunk.cursor + (len as u64) < chunk.end {
            let at = chunk.cursor + len as u64;
            let more = read(at, MAX_CHAR_LEN - 1)?;
            // Only bytes that follow on directly (no gap between).
            if more.omitted == 0 && more.cursor == at {
                for span in more.spans {
                    match chunk.spans.last_mut() {
                        Some(last)
                            if last.stream == span.stream
                                && last.offset + last.len == span.offset =>
                        {
                            last.len += span.len;
                        }
                        _ => chunk.spans.push(span),
                    }
                }
                chunk.data.extend_from_slice(&more.data);
                chunk.end = more.end;
                chunk.finished = more.finished;
            }
        }
        Ok(Page::from_chunk(chunk, max))
    }

    /// `chunk` cut to at most `max` bytes on a character boundary (or to its
    /// first character, when that alone is longer).
    fn from_chunk(mut chunk: ReadChunk, max: usize) -> Page {
        let reached_end = chunk.cursor + chunk.data.len() as u64 == chunk.end;
        if !(chunk.finished && reached_end && chunk.data.len() <= max) {
            let limit = chunk.data.len().min(max);
            let mut keep = complete_utf8_len(&chunk.data[..limit]);
            if keep == 0 && limit > 0 {
                keep = match first_char_len(&chunk.data) {
                    // One whole character, longer than the limit.
                    Some(n) => n,
                    // The rest of it is not written yet: wait for it.
                    None if reached_end && !chunk.finished => 0,
                    // Cut off by a gap (the disk cap) or the stream's end:
                    // shown as it is, so the reader moves on.
                    None => chunk.data.len(),
                };
            }
            chunk.data.truncate(keep);
            let end = chunk.cursor + keep as u64;
            chunk.spans.retain(|s| s.offset < end);
            if let Some(last) = chunk.spans.last_mut() {
                last.len = last.len.min(end - last.offset);
            }
        }
        let next_cursor = chunk.cursor + chunk.data.len() as u64;
        Page {
            cursor: chunk.cursor,
            next_cursor,
            omitted: chunk.omitted,
            eof: chunk.finished && next_cursor == chunk.end,
            data: chunk.data,
            spans: chunk.spans,
        }
    }
}

/// Length of the longest prefix of `data` that does not end inside a UTF-8
/// sequence (invalid bytes count as whole characters).
pub(crate) fn complete_utf8_len(data: &[u8]) -> usize {
    let len = data.len();
    for back in 1..=3.min(len) {
        let b = data[len - back];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: keep looking for the lead
        }
        let width = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if width > back { len - back } else { len };
    }
    len
}

/// Length of the first character of `data` as a lossy decoder reads it: a
/// valid character's bytes, or one invalid sequence's (shown as one U+FFFD);
/// `None` when `data` ends inside its first character.
pub(crate) fn first_char_len(data: &[u8]) -> Option<usize> {
    let head = &data[..data.len().min(MAX_CHAR_LEN)];
    match std::str::from_utf8(head) {
        Ok(text) => text.chars().next().map(char::len_utf8),
        Err(e) if e.valid_up_to() > 0 => std::str::from_utf8(&head[..e.valid_up_to()])
            .ok()
            .and_then(|text| text.chars().next())
            .map(char::len_utf8),
        Err(e) => e.error_len(),
    }
}

/// How many continuation bytes open `data` (at most 3): where a tail cut
/// landed inside a character.
pub(crate) fn leading_continuation_bytes(data: &[u8]) -> usize {
    data.iter()
        .take(3)
        .take_while(|b| *b & 0b1100_0000 == 0b1000_0000)
        .count()
}
