//! The roster: a short text of one owner's open background work, for the
//! host to put in front of the model each turn (and the same as items for a
//! UI). Open work is every task of the owner that is queued or running
//! outside the foreground. The text stays within a byte budget however
//! many tasks there are: the newest come first, and a last line counts the
//! ones left out.

use serde::Serialize;

use crate::info::{human_duration, TaskInfo, TaskStatus};
use crate::output::complete_utf8_len;

/// Bytes of roster text when the host gives no budget.
pub const DEFAULT_ROSTER_BUDGET: usize = 2000;
/// Characters of a task's last output line shown in the roster.
const LAST_LINE_CHARS: usize = 100;
/// Characters of a task's description shown in the roster.
const DESCRIPTION_CHARS: usize = 80;

/// One open task in a [`Roster`].
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RosterItem {
    /// The task's id.
    pub id: String,
    /// Its kind (`process`, `fn`, `agent`, …).
    pub kind: String,
    /// The registered agent it runs, for a delegated subagent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Its description.
    pub description: String,
    /// `running` or `queued`.
    pub status: TaskStatus,
    /// How long it has run.
    pub running_ms: u64,
    /// Its last line of output, if it printed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_line: Option<String>,
    /// Notifications about it not acknowledged yet.
    pub pending_notifications: usize,
}

/// An owner's open background work: `text` for the model, `items` for a UI.
/// Both are empty when nothing is open.
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Roster {
    /// A few lines for the model, within the budget it was made with.
    pub text: String,
    /// Every open task, newest first (the text may show fewer).
    pub items: Vec<RosterItem>,
}

impl RosterItem {
    pub(crate) fn new(
        info: &TaskInfo,
        agent: Option<String>,
        last_line: Option<String>,
        pending: usize,
    ) -> Self {
        RosterItem {
            id: info.id.to_string(),
            kind: info.kind.clone(),
            agent,
            description: info.description.clone(),
            status: info.status,
            running_ms: info.duration_ms,
            last_line,
            pending_notifications: pending,
        }
    }

    fn line(&self) -> String {
        let what = self.agent.as_deref().unwrap_or(&self.kind);
        let mut line = format!(
            "- {} [{what}] {} {}: {}",
            self.id,
            self.status,
            human_duration(self.running_ms),
            one_line(&self.description, DESCRIPTION_CHARS)
        );
        if let Some(last) = &self.last_line {
            line.push_str(&format!(" | last: {}", one_line(last, LAST_LINE_CHARS)));
        }
        if self.pending_notifications > 0 {
            line.push_str(&format!(
                " | {} notice(s) pending",
                self.pending_notifications
            ));
        }
        line
    }
}

impl Roster {
    /// Builds the roster from its items (newest first), its text within
    /// `budget` bytes.
    pub(crate) fn from_items(items: Vec<RosterItem>, budget: usize) -> Roster {
        if items.is_empty() {
            return Roster::default();
        }
        let mut text = format!("Open background work ({}):", items.len());
        let mut shown = 0;
        for item in &items {
            let line = item.line();
            // Room for this line and for the line that counts the rest.
            let rest = format!("\n(and {} more not shown)", items.len() - shown);
            if text.len() + 1 + line.len() + rest.len() > budget {
                break;
            }
            text.push('\n');
            text.push_str(&line);
            shown += 1;
        }
        if shown < items.len() {
            text.push_str(&format!("\n(and {} more not shown)", items.len() - shown));
        }
        if text.len() > budget {
            let keep = complete_utf8_len(&text.as_bytes()[..budget]);
            text.truncate(keep);
        }
        Roster { text, items }
    }
}

/// `text` on one line (line breaks shown as spaces), at most `max` chars,
/// with `…` when cut.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.chars().count() <= max {
        return flat.to_string();
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
