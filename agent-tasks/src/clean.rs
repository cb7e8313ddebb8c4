//! Clean text for a model: terminal escape sequences (colours, cursor moves,
//! window titles) removed, carriage-return progress bars collapsed to their
//! last state, backspaces applied. Parsed with `vte` (the terminal parser of
//! Alacritty, maintained, and the one `strip-ansi-escapes` is built on);
//! `strip-ansi-escapes` itself is not used because it drops `\r` and `\t`,
//! so a progress bar would come out as every state glued together. Only
//! texts for a model go through here; `poll` and the log keep raw bytes.
//!
//! Also where clean text may be cut: a page of output cleaned alone must not
//! start inside an escape sequence (`;32mline 0334 ok` would show), so
//! [`clean_cut`] finds the last point of a page outside any sequence and
//! character, by following the same states as the parser.

use vte::{Parser, Perform};

/// Builds the clean text as the parser walks the bytes.
#[derive(Default)]
struct Clean {
    out: String,
    /// Where the current line starts in `out`.
    line_start: usize,
    /// A `\r` came: the next printed character starts the line over.
    carriage_return: bool,
}

impl Clean {
    fn push(&mut self, c: char) {
        if self.carriage_return {
            self.out.truncate(self.line_start);
            self.carriage_return = false;
        }
        self.out.push(c);
    }
}

impl Perform for Clean {
    fn print(&mut self, c: char) {
        self.push(c);
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' => {
                self.carriage_return = false;
                self.out.push('\n');
                self.line_start = self.out.len();
            }
            b'\r' => self.carriage_return = true,
            b'\t' => self.push('\t'),
            0x08 if self.out.len() > self.line_start => {
                self.out.pop();
            }
            _ => {}
        }
    }
}

/// Where the parser stands between two bytes, as far as where a sequence
/// ends goes: `vte`'s states (its `Parser` does not show its own), those
/// that end alike merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seq {
    /// Text: a cut here starts the next piece afresh.
    Ground,
    /// After ESC.
    Escape,
    /// After ESC and intermediate bytes.
    EscapeIntermediate,
    /// A control sequence (`ESC [`), until its final byte.
    Csi,
    /// A device control string's header (`ESC P`), until its final byte.
    DcsEntry,
    DcsParam,
    DcsIntermediate,
    /// A device control string's data, until ST (or CAN, SUB).
    DcsPassthrough,
    /// An operating system command (`ESC ]`), until BEL or ST.
    Osc,
    /// SOS, PM, APC strings and ignored DCS: until ST (or CAN, SUB).
    Opaque,
}

impl Seq {
    /// The state after `byte`, as `vte` 0.14 moves.
    fn next(self, byte: u8) -> Seq {
        use Seq::*;
        // Anywhere but in text: CAN and SUB abort, ESC starts over.
        if self != Ground {
            match byte {
                0x18 | 0x1A => return Ground,
                0x1B => return Escape,
                _ => {}
            }
        }
        match (self, byte) {
            (Ground, 0x1B) => Escape,
            (Ground, _) => Ground,
            (Escape, 0x20..=0x2F) => EscapeIntermediate,
            (Escape, b'[') => Csi,
            (Escape, b']') => Osc,
            (Escape, b'P') => DcsEntry,
            (Escape, b'X' | b'^' | b'_') => Opaque,
            (Escape, 0x30..=0x7E) => Ground,
            (EscapeIntermediate, 0x30..=0x7E) => Ground,
            (Csi, 0x40..=0x7E) => Ground,
            (DcsEntry | DcsParam, 0x20..=0x2F) => DcsIntermediate,
            (DcsEntry, 0x30..=0x3F) => DcsParam,
            (DcsParam, 0x3C..=0x3F) | (DcsIntermediate, 0x30..=0x3F) => Opaque,
            (DcsEntry | DcsParam | DcsIntermediate, 0x40..=0x7E) => DcsPassthrough,
            (DcsPassthrough, 0x9C) => Ground,
            (Osc, 0x07) => Ground,
            (state, _) => state,
        }
    }
}

/// Where a page of `data` may end so that what follows, cleaned alone,
/// shows no piece of an escape sequence or a character: the end of the
/// longest prefix that ends outside both; with `whole_lines`, after its last
/// line break instead when that keeps at least half of it (a `\r` progress
/// bar or a backspace then never spans two pages). `data` starts outside
/// any (at the start of the stream, or at a cut made here). `0` when the
/// whole of `data` lies in one unfinished sequence.
pub(crate) fn clean_cut(data: &[u8], whole_lines: bool) -> usize {
    let mut state = Seq::Ground;
    let mut last_outside = 0;
    let mut last_line_end = 0;
    for (i, byte) in data.iter().enumerate() {
        state = state.next(*byte);
        if state == Seq::Ground {
            last_outside = i + 1;
            if *byte == b'\n' {
                last_line_end = i + 1;
            }
        }
    }
    let cut = crate::output::complete_utf8_len(&data[..last_outside]);
    if whole_lines && last_line_end > 0 && last_line_end * 2 >= cut {
        last_line_end
    } else {
        cut
    }
}

/// The first point at or after `from` in `data` outside any escape sequence
/// and character: where a page may start so that it shows no piece of
/// either. `data` starts outside any sequence and reaches back before
/// `from` far enough to see a sequence open there from its beginning. With
/// `line_start`, the first line start instead, when one comes in the first
/// half of what follows `from` (a tail view then opens on a whole line).
pub(crate) fn clean_start(data: &[u8], from: usize, line_start: bool) -> usize {
    let mut state = Seq::Ground;
    let mut first_outside = None;
    let half = from + data.len().saturating_sub(from) / 2;
    for (i, byte) in data.iter().enumerate() {
        let outside = state == Seq::Ground && (*byte & 0b1100_0000 != 0b1000_0000);
        if i >= from && outside {
            let at_line_start = i > 0 && data[i - 1] == b'\n';
            if !line_start || at_line_start {
                return i;
            }
            first_outside.get_or_insert(i);
            if i > half {
                break;
            }
        }
        state = state.next(*byte);
    }
    first_outside.unwrap_or(data.len())
}

/// `bytes` as text for a model: escape sequences removed, each line shown in
/// its last state after carriage returns (`10%\r50%\r100%` is `100%`; a
/// `\r\n` ending is a plain newline), invalid UTF-8 replaced.
pub(crate) fn clean_text(bytes: &[u8]) -> String {
    let mut clean = Clean::default();
    let mut parser = Parser::new();
    parser.advance(&mut clean, bytes);
    // The parser holds an unfinished character at the end back, waiting for
    // its next bytes; an ESC makes it show it (as U+FFFD, like any invalid
    // bytes) and prints nothing itself, so text cut after invalid bytes
    // still shows them.
    parser.advance(&mut clean, b"\x1b");
    clean.out
}

#[cfg(test)]
mod tests {
    use super::{clean_cut, clean_start, clean_text};

    #[test]
    fn cuts_fall_outside_sequences_and_characters() {
        let colored = b"\x1b[32mok\x1b[0m\n";
        for at in 0..=colored.len() {
            let cut = clean_cut(&colored[..at], false);
            assert!(cut <= at);
            // Cleaned apart, the two pieces say what the whole says.
            let whole = clean_text(colored);
            let pieces = clean_text(&colored[..cut]) + &clean_text(&colored[cut..]);
            assert_eq!(pieces, whole, "cut {cut} of {at}");
        }
        assert_eq!(clean_cut(b"\x1b]0;title", false), 0);
        assert_eq!(clean_cut(b"a\x1b]0;title\x07b", false), 12);
        assert_eq!(clean_cut(b"ab\x1bP1$r", false), 2);
        assert_eq!(clean_cut("é".as_bytes(), false), 2);
        assert_eq!(clean_cut(&"é".as_bytes()[..1], false), 0);
        assert_eq!(clean_cut(b"x\x1b[31", false), 1);
        assert_eq!(clean_cut(b"x\x1b[3\x18y", false), 6);
        assert_eq!(clean_cut(b"one\ntwo\nthr", true), 8);
        assert_eq!(clean_cut(b"one\nlong line", true), 13);
        assert_eq!(clean_cut(b"a\x1b[3\nb", true), 6);
    }

    /// Pieces of terminal output: text, characters, sequences of every
    /// kind, controls, stray bytes.
    fn piece() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop::sample::select(vec![
            &b"plain "[..],
            b"\n",
            b"\t",
            "é✓😀".as_bytes(),
            b"\x1b[1;32m",
            b"\x1b[0m",
            b"\x1b[?25l",
            b"\x1b[3\n1m",
            b"\x1b]0;a title\x07",
            b"\x1b]8;;http://x\x1b\\",
            b"\x1bP1$r0m\x1b\\",
            b"\x1b_apc\x1b\\",
            b"\x1b(B",
            b"\x1b7",
            b"\x1b[1\x18",
            b"\x1b",
            b"[31m",
            b"\xff",
            b"\xe2\x9c",
            b"\x9b",
        ])
        .prop_map(<[u8]>::to_vec)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// Paging at any sizes with cuts made here: every piece cleaned
        /// alone, joined, is the whole cleaned (without `\r` and backspace,
        /// which may reach back over a cut).
        #[test]
        fn pieces_cleaned_apart_join_to_the_whole(
            pieces in proptest::collection::vec(piece(), 0..40),
            sizes in proptest::collection::vec(1usize..24, 1..8),
        ) {
            let data = pieces.concat();
            let mut joined = String::new();
            let mut cursor = 0;
            let mut turn = 0;
            while cursor < data.len() {
                let size = sizes[turn % sizes.len()];
                turn += 1;
                let end = (cursor + size).min(data.len());
                let mut cut = if end == data.len() {
                    end - cursor
                } else {
                    clean_cut(&data[cursor..end], turn % 2 == 0)
                };
                if cut == 0 {
                    // One sequence longer than the page: read on past it.
                    cut = clean_start(&data[cursor..], 1, false);
                }
                proptest::prop_assert!(cut > 0);
                joined.push_str(&clean_text(&data[cursor..cursor + cut]));
                cursor += cut;
            }
            proptest::prop_assert_eq!(joined, clean_text(&data));
        }
    }

    #[test]
    fn starts_fall_outside_sequences_and_characters() {
        let data = b"ab\x1b[32mline\x1b[0m\nnext line, a long one";
        // Inside the colour sequence: after it.
        assert_eq!(clean_start(data, 4, false), 7);
        assert_eq!(clean_start(data, 7, false), 7);
        assert_eq!(clean_start(data, 4, true), 16);
        assert_eq!(clean_start("aé".as_bytes(), 2, false), 3);
        assert_eq!(clean_start(b"abc", 3, false), 3);
    }

    #[test]
    fn colours_and_progress_bars_come_out_clean() {
        assert_eq!(clean_text(b"\x1b[31mred\x1b[0m plain\n"), "red plain\n");
        assert_eq!(clean_text(b" 10%\r 50%\r100%\ndone\n"), "100%\ndone\n");
        assert_eq!(clean_text(b"windows\r\nline\r\n"), "windows\nline\n");
        assert_eq!(clean_text(b"a\tb\x08c\n"), "a\tc\n");
        assert_eq!(clean_text(b"\x1b]0;title\x07text"), "text");
        assert_eq!(clean_text(b"\x1b[2K\rcompiling 3/3"), "compiling 3/3");
        assert_eq!(clean_text(b"bad \xff byte"), "bad \u{fffd} byte");
        assert_eq!(clean_text(b"cut \xe2\x9c"), "cut \u{fffd}");
    }
}
