//! The one rule for cutting output into lines, for every front end (the
//! bindings' line iterators, the CLI): a line ends at `\n`; the ending
//! (`\n`, or `\r\n`) is not part of the line; the bytes after the last `\n`
//! are a last line when the output ends, without a trailing `\r` (a `\r\n`
//! whose `\n` never came). Each line is decoded as UTF-8 only once whole, so
//! a character split across two reads is never mangled; bytes that do not
//! decode become U+FFFD. A pure buffer: no I/O, no locks.
//!
//! ```
//! use agent_tasks::LineSplitter;
//! let mut lines = LineSplitter::default();
//! assert_eq!(lines.push(b"one\r\ntw"), vec!["one"]);
//! assert_eq!(lines.push(b"o\nthree\r"), vec!["two"]);
//! assert_eq!(lines.finish(), Some("three".to_string()));
//! ```

/// Cuts a byte stream, given in pieces, into lines (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct LineSplitter {
    /// The bytes of the line not yet ended.
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Takes the next bytes of the stream and returns the lines they end,
    /// in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(at);
            let line = if self.pending.is_empty() {
                decode(head)
            } else {
                self.pending.extend_from_slice(head);
                let whole = decode(&self.pending);
                self.pending.clear();
                whole
            };
            lines.push(line);
            rest = &tail[1..];
        }
        self.pending.extend_from_slice(rest);
        lines
    }

    /// The stream has ended: the last line, if bytes followed the last
    /// `\n`. The splitter is empty after.
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let line = decode(&self.pending);
        self.pending.clear();
        Some(line)
    }

    /// Bytes held for the line not yet ended.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }
}

/// One line without its ending, decoded lossily.
fn decode(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::LineSplitter;

    fn split_in_pieces(bytes: &[u8], piece: usize) -> Vec<String> {
        let mut splitter = LineSplitter::default();
        let mut lines: Vec<String> = bytes
            .chunks(piece.max(1))
            .flat_map(|chunk| splitter.push(chunk))
            .collect();
        lines.extend(splitter.finish());
        lines
    }

    #[test]
    fn endings_are_dropped_and_the_last_line_is_kept() {
        let out = split_in_pieces(b"a\nb\r\n\nc\r", 64);
        assert_eq!(out, ["a", "b", "", "c"]);
        assert_eq!(split_in_pieces(b"", 1), Vec::<String>::new());
        assert_eq!(split_in_pieces(b"x\n", 1), ["x"]);
        // Only one `\r` belongs to an ending; a lone one inside stays.
        assert_eq!(split_in_pieces(b"a\r\r\nb\rc\n", 3), ["a\r", "b\rc"]);
    }

    #[test]
    fn any_cut_of_the_input_gives_the_same_lines() {
        let text = "héllo wörld\r\nλ\n\n→ last\r".as_bytes();
        let whole = split_in_pieces(text, text.len());
        assert_eq!(whole, ["héllo wörld", "λ", "", "→ last"]);
        for piece in 1..text.len() {
            assert_eq!(split_in_pieces(text, piece), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn bytes_that_do_not_decode_become_replacement_characters() {
        assert_eq!(split_in_pieces(b"a\xffb\n", 1), ["a\u{fffd}b"]);
        let mut splitter = LineSplitter::default();
        assert!(splitter.push(b"abc").is_empty());
        assert_eq!(splitter.pending_bytes(), 3);
        assert_eq!(splitter.finish().as_deref(), Some("abc"));
        assert_eq!(splitter.pending_bytes(), 0);
        assert_eq!(splitter.finish(), None);
    }
}
