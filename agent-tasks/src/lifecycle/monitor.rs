//! Monitoring of a running task: watch-pattern matches, heartbeats with the
//! output since the last one, and stalls (no output for the idle timeout).
//! Each gives an event; while the task is in the background (nobody is
//! watching it) also a notification for the owner.

use std::sync::Arc;
use std::time::Duration;

use crate::events::EventKind;
use crate::info::{CancelKind, CancelReason};
use crate::notifications::{
    last_lines, NotificationKind, NOTIFICATION_TAIL_CHARS, NOTIFICATION_TAIL_LINES,
    NOTIFICATION_VALUE_CHARS,
};
use crate::util::{lock, millis};
use crate::watch::WatchEvent;

use super::TaskEntry;

impl TaskEntry {
    fn in_background(&self) -> bool {
        !lock(&self.state).in_foreground()
    }

    /// A watch pattern matched (or watching stopped): an event always, a
    /// notification while the task is in the background.
    pub(crate) fn on_watch(self: &Arc<Self>, event: WatchEvent) {
        match event {
            WatchEvent::Matched { line, skipped, nth } => {
                // The matched line is in the log before anyone hears of it.
                self.flush_output();
                self.emit(EventKind::WatchMatched { line: line.clone() });
                if self.in_background() {
                    // Clean for the model (the event keeps the line as written).
                    let shown = crate::clean::clean_text(line.as_bytes());
                    let mut detail = format!("matched line: {shown}");
                    if skipped > 0 {
                        detail.push_str(&format!(
                            "\n({skipped} more matching lines were held back by the rate limit)"
                        ));
                    }
                    self.queue_notification_off_thread(
                        &format!("w{nth}"),
                        NotificationKind::WatchMatch,
                        String::new(),
                        Some(detail),
                    );
                }
            }
            WatchEvent::Stopped { total_matches } => {
                if self.in_background() {
                    self.queue_notification_off_thread(
                        "wstop",
                        NotificationKind::WatchStopped,
                        String::new(),
                        Some(format!(
                            "{total_matches} lines matched; no more watch notices will come"
                        )),
                    );
                }
            }
        }
    }

    /// A heartbeat: a progress notification with the output written since
    /// `cursor`, skipped when there is none (or the task is in the
    /// foreground). Advances `cursor` when it reports.
    pub(super) fn heartbeat(self: &Arc<Self>, cursor: &mut u64) {
        let total = self.output.len();
        if total <= *cursor || !self.in_background() {
            return;
        }
        let new_bytes = total - *cursor;
        // Clean for the model, as the end notification's tail.
        let text = self
            .output
            .text_since(*cursor, 16 * 1024)
            .map(|text| crate::clean::clean_text(text.as_bytes()))
            .unwrap_or_default();
        *cursor = total;
        self.emit(EventKind::Heartbeat { new_bytes });
        let nth = {
            let mut st = lock(&self.state);
            st.heartbeats += 1;
            st.heartbeats
        };
        let tail = last_lines(&text, NOTIFICATION_TAIL_LINES, NOTIFICATION_TAIL_CHARS);
        self.queue_notification_off_thread(
            &format!("h{nth}"),
            NotificationKind::Progress,
            tail,
            None,
        );
    }

    /// The task has printed nothing for `idle`.
    pub(super) fn on_stall(self: &Arc<Self>, idle: Duration) {
        self.emit(EventKind::Stalled {
            idle_ms: millis(idle),
        });
        let message = format!("no output for {:.1} s", idle.as_secs_f64());
        if self.in_background() {
            let nth = {
                let mut st = lock(&self.state);
                st.stalls += 1;
                st.stalls
            };
            let tail = self.output_tail();
            self.queue_notification_off_thread(
                &format!("s{nth}"),
                NotificationKind::Stalled,
                tail,
                Some(message.clone()),
            );
        }
        if self.spec.monitoring.cancel_on_stall {
            self.request_cancel(CancelReason {
                kind: CancelKind::Stalled,
                message: Some(message),
            });
        }
    }

    /// A multi-turn task finished turn `turn`: a one-shot notice for the
    /// owner carrying `summary` (cut to the value budget), whether or not
    /// the task is in the foreground (it keeps running either way). What
    /// the task wrote before is in the log when the notice is seen (a turn's
    /// end says "read now").
    pub(crate) fn on_turn_ended(self: &Arc<Self>, turn: u64, summary: String) {
        self.flush_output();
        let detail = crate::info::compact_value(
            &serde_json::Value::String(summary),
            NOTIFICATION_VALUE_CHARS,
        );
        self.queue_notification_off_thread(
            &format!("t{turn}"),
            NotificationKind::TurnEnded,
            String::new(),
            Some(detail),
        );
    }
}
