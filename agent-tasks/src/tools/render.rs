//! Tool answer text: metadata lines first, output last, within a size
//! budget. Output that does not fit is cut in the middle with
//! `[... N bytes omitted ...]`, so the task id and status can never be cut
//! off by noisy output.

use crate::info::omitted_marker;
use crate::info::{TaskInfo, TaskStatus};
use crate::output::{complete_utf8_len, leading_continuation_bytes};

/// Room kept for the metadata lines when the output's share is worked out.
pub(crate) const METADATA_RESERVE: usize = 1024;

/// Output cut to fit `room` bytes: the text, and how many bytes were left out.
pub(crate) struct Fitted {
    pub text: String,
    pub omitted: u64,
}

/// Keeps the head and the tail of `data` within `room` bytes of text.
pub(crate) fn fit_head_tail(data: &[u8], room: usize) -> Fitted {
    if data.len() <= room {
        return Fitted {
            text: String::from_utf8_lossy(data).into_owned(),
            omitted: 0,
        };
    }
    // Lossy decoding can grow text (a bad byte becomes 3 bytes), so leave
    // slack; the marker takes a line too.
    let share = room.saturating_sub(64) / 2 / 3 * 2;
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
    let mut text = String::from_utf8_lossy(&data[..head_end]).into_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&omitted_marker(omitted));
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&data[tail_start..]));
    Fitted { text, omitted }
}

pub(crate) use crate::info::human_duration as duration;

/// The metadata lines every answer about one task starts with.
pub(crate) fn task_header(info: &TaskInfo) -> Vec<String> {
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
        lines.push(format!("reason: {reason}"));
    }
    if let Some(error) = &info.error {
        if info.status == TaskStatus::Failed || info.status == TaskStatus::Lost {
            lines.push(format!("error: {error}"));
        }
    }
    lines.push(format!("duration: {}", duration(info.duration_ms)));
    lines.push(format!("description: {}", info.description));
    lines
}

/// Joins metadata and output: metadata first, output after a rule.
pub(crate) fn assemble(meta: &[String], output_label: &str, output: &str) -> String {
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
        let data: Vec<u8> = (0..10_000).map(|i| b'a' + (i % 26) as u8).collect();
        let fitted = fit_head_tail(&data, 1000);
        assert!(fitted.text.len() <= 1000);
        assert!(fitted.text.starts_with("abc"));
        assert!(fitted.text.contains("bytes omitted"));
        let kept = fitted.text.len() as u64 - omitted_marker(fitted.omitted).len() as u64 - 2;
        assert_eq!(kept + fitted.omitted, 10_000);
        let small = fit_head_tail(b"short", 1000);
        assert_eq!((small.text.as_str(), small.omitted), ("short", 0));
    }
}
