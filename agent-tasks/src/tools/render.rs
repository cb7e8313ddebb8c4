//! Tool answer text: metadata lines first, output last, within a size
//! budget. Every answer is finished in one place, [`finish`]: free-text
//! fields (description, reason, error, echoed filter) are capped on
//! character boundaries with a visible `…`; output that does not fit is cut
//! in the middle with `[... N bytes omitted ...]`; and the whole text never
//! exceeds the budget, so the task id, status and cursor can never be cut
//! off by noisy output or a long description.

use crate::info::omitted_marker;
use crate::info::{TaskInfo, TaskStatus};
use crate::output::{complete_utf8_len, leading_continuation_bytes};

/// Output cut to fit `room` bytes: the text, and how many bytes were left out.
pub(crate) struct Fitted {
    pub text: String,
    pub omitted: u64,
}

/// Keeps the head and the tail of `text` within `room` bytes.
pub(crate) fn fit_head_tail(text: &str, room: usize) -> Fitted {
    let data = text.as_bytes();
    if data.len() <= room {
        return Fitted {
            text: text.to_string(),
            omitted: 0,
        };
    }
    // The marker and its line breaks take at most 64 bytes.
    let share = room.saturating_sub(64) / 2;
    let mut head_end = complete_utf8_len(&data[..share]);
    // Prefer whole lines, unless that would waste more than half the room.
    if let Some(nl) = data[..head_end].iter().rposition(|b| *b == b'\n') {
        if nl + 1 >= head_end / 2 {
            head_end = nl + 1;
        }
    }
    let mut tail_start = data.len() - share;
    tail_start += leading_continuation_bytes(&data[tail_start..]);
    if let Some(nl) = data[tail_start..].iter().position(|b| *b == b'\n') {
        if nl < share / 2 {
            tail_start += nl + 1;
        }
    }
    let omitted = (tail_start - head_end) as u64;
    let mut out = text[..head_end].to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&omitted_marker(omitted));
    out.push('\n');
    out.push_str(&text[tail_start..]);
    Fitted { text: out, omitted }
}

pub(crate) use crate::info::human_duration as duration;

/// The visible mark of a cut.
const ELLIPSIS: &str = "…";

/// `text` within `max` bytes: cut on a character boundary, with `…` at the
/// end when something was left out.
pub(crate) fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    if max < ELLIPSIS.len() {
        // No room for the mark.
        return text[..floor_char_boundary(text, max)].to_string();
    }
    let mut out = text[..floor_char_boundary(text, max - ELLIPSIS.len())].to_string();
    out.push_str(ELLIPSIS);
    out
}

/// `text` within `max` bytes, keeping its start and its end (where error
/// messages say what was expected): ` … ` marks the cut.
pub(crate) fn cap_middle(text: &str, max: usize) -> String {
    const MARK: &str = " … ";
    if text.len() <= max {
        return text.to_string();
    }
    if max < 2 * MARK.len() {
        return cap(text, max);
    }
    let keep = max - MARK.len();
    let head = floor_char_boundary(text, keep - keep / 2);
    let mut tail = text.len() - keep / 2;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}{MARK}{}", &text[..head], &text[tail..])
}

/// A free-text field for a metadata line: on one line (a line break shows
/// as `⏎`, so a heredoc cannot pose as metadata), within `max` bytes.
pub(crate) fn field(text: &str, max: usize) -> String {
    // Cut first (cheap on a huge text), then flatten, then cut again: `⏎`
    // is wider than the break it stands for.
    let rough = cap(text, max.saturating_mul(2).max(8));
    let flat = if rough.contains(['\n', '\r']) {
        rough.replace("\r\n", "⏎").replace(['\n', '\r'], "⏎")
    } else {
        rough
    };
    cap(&flat, max)
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// How long the free-text fields of an answer may be, scaled to its
/// budget: a long description, cancel reason, error or echoed filter can
/// never push the task id, the status or the cursor out of the text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caps {
    /// A free-text field of a metadata line (description, reason, error,
    /// filter).
    pub field: usize,
    /// The list of known ids in an error.
    pub ids: usize,
}

impl Caps {
    pub(crate) fn for_budget(budget: usize) -> Caps {
        Caps {
            field: (budget / 12).clamp(40, 500),
            ids: (budget / 5).clamp(60, 1000),
        }
    }
}

/// The metadata lines every answer about one task starts with.
pub(crate) fn task_header(info: &TaskInfo, caps: Caps) -> Vec<String> {
    let mut lines = vec![format!("task_id: {}", info.id)];
    let mut status = info.status.to_string();
    if info.status == TaskStatus::Running {
        status.push_str(if info.foreground {
            " (foreground)"
        } else {
            " (background)"
        });
    }
    lines.push(format!("status: {status}"));
    if let Some(exit) = info.exit {
        if let Some(code) = exit.code {
            lines.push(format!("exit_code: {code}"));
        }
        if let Some(signal) = exit.signal {
            lines.push(format!("signal: {signal}"));
        }
    }
    if let Some(reason) = &info.cancel_reason {
        lines.push(format!(
            "reason: {}",
            field(&reason.to_string(), caps.field)
        ));
    }
    if let Some(error) = &info.error {
        if info.status == TaskStatus::Failed || info.status == TaskStatus::Lost {
            lines.push(format!("error: {}", field(error, caps.field)));
        }
    }
    lines.push(format!("{DURATION_PREFIX}{}", duration(info.duration_ms)));
    lines.push(format!(
        "description: {}",
        field(&info.description, caps.field)
    ));
    lines
}

/// The text of an answer before it is finished: metadata lines, then
/// optionally a body of output.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    /// Metadata lines, most important first.
    pub meta: Vec<String>,
    /// The output, if the answer shows some.
    pub body: Option<Body>,
}

/// Output shown after the metadata, under `--- {label} ---`.
#[derive(Debug)]
pub(crate) struct Body {
    /// The rule's label (`output`, `output so far`).
    pub label: &'static str,
    /// The output (raw bytes, decoded lossily).
    pub data: Vec<u8>,
    /// Bytes already left out before finishing (disk cap, preview).
    pub omitted: u64,
    /// Where a `bytes_omitted: N` line goes among the metadata lines (its
    /// index once inserted), if anything was left out.
    pub omitted_line_at: usize,
}

impl Draft {
    /// An answer of metadata lines only.
    pub(crate) fn lines(meta: Vec<String>) -> Self {
        Draft { meta, body: None }
    }

    /// Bytes left for output once the metadata (and `reserve` more bytes of
    /// metadata still to come) are in: what a caller should read.
    pub(crate) fn room(&self, budget: usize, reserve: usize) -> usize {
        let meta: usize = self.meta.iter().map(|l| line_room(l)).sum();
        budget.saturating_sub(meta + reserve + BODY_OVERHEAD)
    }
}

/// The room a metadata line takes. A task's run time is counted at a fixed
/// width: how much output an answer shows must not depend on how long the
/// task happened to take (`duration: 7 ms` against `duration: 1.2 s`), so
/// the same output is cut at the same place in every run.
fn line_room(line: &str) -> usize {
    if line.starts_with(DURATION_PREFIX) {
        line.len().max(DURATION_LINE_ROOM) + 1
    } else {
        line.len() + 1
    }
}

/// How a task header's run-time line starts (see [`task_header`]).
const DURATION_PREFIX: &str = "duration: ";
/// The width a run-time line is counted at: longer than any duration shown
/// below a day.
const DURATION_LINE_ROOM: usize = "duration: 23 h 59 min 59 s".len();

/// The rule line and the `bytes_omitted` line an output body may add.
const BODY_OVERHEAD: usize = 64 + OMITTED_LINE_MAX;
const OMITTED_LINE_MAX: usize = "bytes_omitted: 18446744073709551615\n".len();

/// A finished text and the bytes of output it leaves out.
pub(crate) struct Finished {
    pub text: String,
    pub omitted: u64,
}

/// The one place every answer's text is finished: metadata first, then the
/// output, cut head and tail to the room the metadata leaves; the whole
/// text never exceeds `budget` bytes (past the metadata, what is cut is the
/// output, and a cut shows as `…` or `[... N bytes omitted ...]`).
///
/// Output is shown clean (escape sequences removed, `\r` progress bars in
/// their last state; see `crate::clean`) unless `raw`.
pub(crate) fn finish(draft: Draft, budget: usize, raw: bool) -> Finished {
    let Draft { mut meta, body } = draft;
    let Some(body) = body else {
        return Finished {
            text: cap(&meta.join("\n"), budget),
            omitted: 0,
        };
    };
    let room = Draft {
        meta: meta.clone(),
        body: None,
    }
    .room(budget, 0);
    let decoded = if raw {
        String::from_utf8_lossy(&body.data)
    } else {
        std::borrow::Cow::Owned(crate::clean::clean_text(&body.data))
    };
    let (output, cut) = if decoded.len() <= room {
        (decoded.into_owned(), 0)
    } else {
        let fitted = fit_head_tail(&decoded, room);
        if fitted.text.len() <= room {
            (fitted.text, fitted.omitted)
        } else {
            (String::new(), decoded.len() as u64)
        }
    };
    let omitted = body.omitted + cut;
    if omitted > 0 {
        let at = body.omitted_line_at.min(meta.len());
        meta.insert(at, format!("bytes_omitted: {omitted}"));
    }
    let text = assemble(&meta, body.label, &output);
    Finished {
        text: cap(&text, budget),
        omitted,
    }
}

/// Joins metadata and output: metadata first, output after a rule.
fn assemble(meta: &[String], output_label: &str, output: &str) -> String {
    let mut text = meta.join("\n");
    text.push('\n');
    if output.is_empty() {
        text.push_str(&format!("--- {output_label}: none ---"));
    } else {
        text.push_str(&format!("--- {output_label} ---\n"));
        text.push_str(output);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_keeps_both_ends_and_counts_what_is_left_out() {
        let data: String = (0..10_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let fitted = fit_head_tail(&data, 1000);
        assert!(fitted.text.len() <= 1000);
        assert!(fitted.text.starts_with("abc"));
        assert!(fitted.text.contains("bytes omitted"));
        let kept = fitted.text.len() as u64 - omitted_marker(fitted.omitted).len() as u64 - 2;
        assert_eq!(kept + fitted.omitted, 10_000);
        let small = fit_head_tail("short", 1000);
        assert_eq!((small.text.as_str(), small.omitted), ("short", 0));
    }

    #[test]
    fn caps_cut_on_character_boundaries_with_a_visible_mark() {
        assert_eq!(cap("héllo wörld", 6), "hé…");
        assert_eq!(cap("short", 5), "short");
        assert_eq!(cap("abc", 2), "ab");
        let middle = cap_middle(&format!("{}tail", "é".repeat(100)), 20);
        assert!(middle.len() <= 20 && middle.contains(" … ") && middle.ends_with("tail"));
        assert_eq!(field("cat <<EOF\nhi\nEOF", 100), "cat <<EOF⏎hi⏎EOF");
        assert!(field(&"x\n".repeat(10_000), 50).len() <= 50);
    }

    #[test]
    fn the_room_for_output_does_not_depend_on_the_run_time() {
        let room = |ms: u64| {
            Draft {
                meta: vec![
                    "task_id: process-abcd".into(),
                    format!("{DURATION_PREFIX}{}", duration(ms)),
                ],
                body: None,
            }
            .room(2000, 0)
        };
        let rooms: Vec<usize> = [0, 7, 999, 1_200, 119_999, 3_599_000, 86_399_000]
            .into_iter()
            .map(room)
            .collect();
        assert!(rooms.windows(2).all(|w| w[0] == w[1]), "{rooms:?}");
    }

    #[test]
    fn finishing_keeps_the_metadata_and_cuts_the_output() {
        for budget in [0, 10, 100, 500, 2000] {
            let draft = Draft {
                meta: vec!["task_id: process-abcd".into(), "status: completed".into()],
                body: Some(Body {
                    label: "output",
                    data: vec![b'x'; 100_000],
                    omitted: 7,
                    omitted_line_at: 2,
                }),
            };
            let done = finish(draft, budget, false);
            assert!(done.text.len() <= budget, "{budget}: {}", done.text.len());
            if budget >= 100 {
                assert!(done
                    .text
                    .starts_with("task_id: process-abcd\nstatus: completed\nbytes_omitted: "));
                assert!(done.omitted > 7);
            }
        }
    }
}
