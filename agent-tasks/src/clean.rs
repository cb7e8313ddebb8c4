//! Clean text for a model: terminal escape sequences (colours, cursor moves,
//! window titles) removed, carriage-return progress bars collapsed to their
//! last state, backspaces applied. Parsed with `vte` (the terminal parser of
//! Alacritty, maintained, and the one `strip-ansi-escapes` is built on);
//! `strip-ansi-escapes` itself is not used because it drops `\r` and `\t`,
//! so a progress bar would come out as every state glued together. Only
//! texts for a model go through here; `poll` and the log keep raw bytes.

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

/// `bytes` as text for a model: escape sequences removed, each line shown in
/// its last state after carriage returns (`10%\r50%\r100%` is `100%`; a
/// `\r\n` ending is a plain newline), invalid UTF-8 replaced.
pub(crate) fn clean_text(bytes: &[u8]) -> String {
    let mut clean = Clean::default();
    let mut parser = Parser::new();
    parser.advance(&mut clean, bytes);
    clean.out
}

#[cfg(test)]
mod tests {
    use super::clean_text;

    #[test]
    fn colours_and_progress_bars_come_out_clean() {
        assert_eq!(clean_text(b"\x1b[31mred\x1b[0m plain\n"), "red plain\n");
        assert_eq!(clean_text(b" 10%\r 50%\r100%\ndone\n"), "100%\ndone\n");
        assert_eq!(clean_text(b"windows\r\nline\r\n"), "windows\nline\n");
        assert_eq!(clean_text(b"a\tb\x08c\n"), "a\tc\n");
        assert_eq!(clean_text(b"\x1b]0;title\x07text"), "text");
        assert_eq!(clean_text(b"\x1b[2K\rcompiling 3/3"), "compiling 3/3");
        assert_eq!(clean_text(b"bad \xff byte"), "bad \u{fffd} byte");
    }
}
