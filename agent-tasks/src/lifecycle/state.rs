//! What a task is at one moment, as plain data: a [`Phase`] whose variants
//! carry what only that phase has (where a running task runs; an ended
//! task's result), so "ended without a result" or "background but not
//! counted" cannot be written down. Transitions are methods that change the
//! data and say what changed; saving and announcing is the caller's.

use tokio::time::Instant;

use crate::events::Event;
use crate::info::{Containment, TaskResult, TaskStatus};

/// Where a running task runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Someone awaits it; it counts in no background cap.
    Foreground,
    /// In the background since `since` (its background timeout counts from
    /// there); it holds one slot of the background caps.
    Background { since: Instant },
}

/// Which caps an ended task held.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held {
    /// A slot of its kind's cap (every running task).
    pub kind: bool,
    /// A background slot (global and per owner).
    pub background: bool,
}

/// Where a task is in its life.
#[derive(Clone, Debug)]
pub(crate) enum Phase {
    /// Waiting in the manager's queue for a background slot; it counts in
    /// no cap and has not started.
    Queued,
    Running(Placement),
    /// Its end is decided. `announced` turns true once the end is saved and
    /// announced; waiters are released then, so a host that reacts finds
    /// the result and notification saved.
    Ended {
        result: Box<TaskResult>,
        finished_at_ms: u64,
        announced: bool,
    },
}

/// The changing part of a task.
#[derive(Debug)]
pub(crate) struct TaskState {
    pub phase: Phase,
    /// One-way: set when the task was moved from the foreground.
    pub detached: bool,
    pub pid: Option<u32>,
    /// How the task's processes are contained (process tasks).
    pub containment: Option<Containment>,
    /// A process task's limits as applied (process tasks with limits).
    pub limits: Option<crate::limits::LimitsInfo>,
    pub process_start_time: Option<u64>,
    pub orphan_pid: Option<u32>,
    /// True once the task has a folder (background, detached or spilled).
    pub persisted: bool,
    /// True while a foreground process has a small record on disk (so a
    /// crash of the host leaves a trace of it; see `record`).
    pub foreground_record: bool,
    /// Events of a task without a folder, written if it gets one.
    pub unsaved_events: Vec<Event>,
    pub heartbeats: u32,
    pub stalls: u32,
    /// Since when the task's processes are stopped by `pause`.
    pub paused_since: Option<Instant>,
    /// Time spent paused in the current placement: the current timeout is
    /// pushed back by it.
    pub paused_total: std::time::Duration,
    /// When the task was last resumed: a silence (stall) counts from then.
    pub resumed_at: Option<Instant>,
    /// When a task that waited in the queue started running (`None`: it ran
    /// from its spawn). Its duration and a first silence count from then:
    /// the wait in the queue is not run time.
    pub ran_from: Option<Instant>,
    /// A record of the task (result, manifest) could not be saved (a full
    /// disk): the manager saves it again later (see `retry`).
    pub unsaved: bool,
}

impl TaskState {
    pub(crate) fn new(phase: Phase) -> Self {
        TaskState {
            phase,
            detached: false,
            pid: None,
            containment: None,
            limits: None,
            process_start_time: None,
            orphan_pid: None,
            persisted: false,
            foreground_record: false,
            unsaved_events: Vec::new(),
            heartbeats: 0,
            stalls: 0,
            paused_since: None,
            paused_total: std::time::Duration::ZERO,
            resumed_at: None,
            ran_from: None,
            unsaved: false,
        }
    }

    pub(crate) fn status(&self) -> TaskStatus {
        match &self.phase {
            Phase::Queued => TaskStatus::Queued,
            Phase::Running(_) => TaskStatus::Running,
            Phase::Ended { result, .. } => result.status,
        }
    }

    /// True until the task has ended (queued or running).
    pub(crate) fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running(_) | Phase::Queued)
    }

    pub(crate) fn is_queued(&self) -> bool {
        matches!(self.phase, Phase::Queued)
    }

    /// A queued task starts in the background; false if it was not queued.
    pub(crate) fn start_queued(&mut self, now: Instant) -> bool {
        if !self.is_queued() {
            return false;
        }
        self.phase = Phase::Running(Placement::Background { since: now });
        self.ran_from = Some(now);
        true
    }

    pub(crate) fn in_foreground(&self) -> bool {
        matches!(self.phase, Phase::Running(Placement::Foreground))
    }

    /// The result once the end is saved and announced.
    pub(crate) fn announced_result(&self) -> Option<&TaskResult> {
        match &self.phase {
            Phase::Ended {
                result,
                announced: true,
                ..
            } => Some(result),
            _ => None,
        }
    }

    /// Marks the task paused (its processes were stopped) from `now`.
    pub(crate) fn pause(&mut self, now: Instant) {
        if self.is_running() && self.paused_since.is_none() {
            self.paused_since = Some(now);
        }
    }

    /// Marks the task running again; the paused time pushes the current
    /// timeout back.
    pub(crate) fn resume(&mut self, now: Instant) {
        if let Some(since) = self.paused_since.take() {
            self.paused_total = self
                .paused_total
                .saturating_add(now.saturating_duration_since(since));
            self.resumed_at = Some(now);
        }
    }

    /// Moves a foreground task to the background; false if it was not in
    /// the foreground.
    pub(crate) fn move_to_background(&mut self, now: Instant) -> bool {
        if !self.in_foreground() {
            return false;
        }
        // The background timeout starts now: earlier pauses do not count.
        self.paused_total = std::time::Duration::ZERO;
        if self.paused_since.is_some() {
            self.paused_since = Some(now);
        }
        self.phase = Phase::Running(Placement::Background { since: now });
        self.detached = true;
        true
    }

    /// Records the end. Returns which caps the task held (the caller gives
    /// them back). A terminal phase never changes: a second call does
    /// nothing and returns `None`.
    pub(crate) fn end(&mut self, result: TaskResult, finished_at_ms: u64) -> Option<Held> {
        let held = match self.phase {
            Phase::Running(placement) => Held {
                kind: true,
                background: matches!(placement, Placement::Background { .. }),
            },
            // A task cancelled in the queue held no slot.
            Phase::Queued => Held {
                kind: false,
                background: false,
            },
            Phase::Ended { .. } => return None,
        };
        self.paused_since = None;
        self.phase = Phase::Ended {
            result: Box::new(result),
            finished_at_ms,
            announced: false,
        };
        Some(held)
    }

    /// Releases the waiters: the end is saved and announced.
    pub(crate) fn announce(&mut self) {
        if let Phase::Ended { announced, .. } = &mut self.phase {
            *announced = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use tokio::time::Instant;

    use super::{Phase, Placement, TaskState};
    use crate::id::TaskId;
    use crate::info::{TaskResult, TaskStatus};

    /// Every transition a task can be asked for, in any order.
    #[derive(Clone, Debug)]
    enum Step {
        StartQueued,
        Pause,
        Resume,
        Detach,
        End(TaskStatus),
        Announce,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::StartQueued),
            Just(Step::Pause),
            Just(Step::Resume),
            Just(Step::Detach),
            prop_oneof![
                Just(TaskStatus::Completed),
                Just(TaskStatus::Failed),
                Just(TaskStatus::Cancelled),
            ]
            .prop_map(Step::End),
            Just(Step::Announce),
        ]
    }

    fn result(status: TaskStatus) -> TaskResult {
        TaskResult {
            id: TaskId::generate("t"),
            status,
            exit: None,
            value: None,
            error: None,
            cancel_reason: None,
            duration_ms: 0,
            output: Default::default(),
            changed_files: None,
            usage: None,
        }
    }

    proptest! {
        /// Whatever the order of requests: an end is final (its status and
        /// the caps it gives back are decided once), a detach is one-way
        /// and only from the foreground, a queued task starts in the
        /// background, waiters are released only after an end, and an
        /// ended task is never paused.
        #[test]
        fn transitions_keep_the_rules(
            queued in any::<bool>(),
            background in any::<bool>(),
            steps in proptest::collection::vec(step(), 0..24),
        ) {
            let start = if queued {
                Phase::Queued
            } else if background {
                Phase::Running(Placement::Background { since: Instant::now() })
            } else {
                Phase::Running(Placement::Foreground)
            };
            let mut st = TaskState::new(start);
            let mut ended: Option<TaskStatus> = None;
            let mut caps_returned = 0;
            let mut t = Instant::now();
            for step in steps {
                t += Duration::from_millis(1);
                let was_foreground = st.in_foreground();
                let was_detached = st.detached;
                match step {
                    Step::StartQueued => {
                        let was_queued = st.is_queued();
                        prop_assert_eq!(st.start_queued(t), was_queued);
                        if was_queued {
                            let started_in_background =
                                matches!(st.phase, Phase::Running(Placement::Background { .. }));
                            prop_assert!(started_in_background);
                        }
                    }
                    Step::Pause => st.pause(t),
                    Step::Resume => st.resume(t),
                    Step::Detach => {
                        prop_assert_eq!(st.move_to_background(t), was_foreground);
                        if was_foreground {
                            prop_assert!(st.detached && !st.in_foreground());
                        }
                    }
                    Step::End(status) => {
                        let held = st.end(result(status), 1);
                        match ended {
                            Some(_) => prop_assert!(held.is_none(), "an end is final"),
                            None => {
                                prop_assert!(held.is_some());
                                caps_returned += 1;
                                ended = Some(status);
                            }
                        }
                    }
                    Step::Announce => st.announce(),
                }
                prop_assert!(st.detached || !was_detached, "a detach is one-way");
                prop_assert!(caps_returned <= 1);
                match ended {
                    Some(status) => {
                        prop_assert_eq!(st.status(), status);
                        prop_assert!(!st.is_running());
                        prop_assert!(st.paused_since.is_none(), "an ended task is not paused");
                    }
                    None => {
                        prop_assert!(st.is_running());
                        prop_assert!(st.announced_result().is_none(), "no waiter is released before an end");
                    }
                }
            }
        }
    }
}
