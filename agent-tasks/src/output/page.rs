//! Pages for readers: a chunk of the stream cut where text decodes cleanly.
//! While the stream is still being written a page ends on a UTF-8 character
//! boundary, so the next page (from `next_cursor`) starts on one; the last
//! page of a finished stream is returned whole, whatever its last bytes are.

use crate::info::StreamSpan;

use super::ReadChunk;

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
    pub(crate) fn from_chunk(mut chunk: ReadChunk) -> Page {
        let reached_end = chunk.cursor + chunk.data.len() as u64 == chunk.end;
        if !(chunk.finished && reached_end) {
            let keep = complete_utf8_len(&chunk.data);
            if keep > 0 {
                chunk.data.truncate(keep);
                let end = chunk.cursor + keep as u64;
                chunk.spans.retain(|s| s.offset < end);
                if let Some(last) = chunk.spans.last_mut() {
                    last.len = last.len.min(end - last.offset);
                }
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

/// How many continuation bytes open `data` (at most 3): where a tail cut
/// landed inside a character.
pub(crate) fn leading_continuation_bytes(data: &[u8]) -> usize {
    data.iter()
        .take(3)
        .take_while(|b| *b & 0b1100_0000 == 0b1000_0000)
        .count()
}
