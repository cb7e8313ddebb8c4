//! Watch patterns, heartbeats and stall detection, timed with tokio's paused
//! clock (time jumps ahead whenever every task is waiting), so nothing here
//! sleeps for real.

mod common;

use std::time::Duration;

use agent_tasks::{
    CancelKind, Error, EventItem, EventKind, FnTask, ManagerConfig, Notification, NotificationKind,
    ProcessTask, SpawnOptions, TaskManager, TaskStatus,
};
use common::manager_in_temp;
use serde_json::json;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn of_kind(notes: &[Notification], kind: NotificationKind) -> Vec<Notification> {
    notes.iter().filter(|n| n.kind == kind).cloned().collect()
}

async fn run_to_end(manager: &TaskManager, task: &agent_tasks::TaskHandle) {
    manager
        .collect(task.id().as_str(), None)
        .await
        .expect("collect");
}

#[tokio::test(start_paused = true)]
async fn heartbeats_report_new_output_and_skip_quiet_intervals() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            FnTask::new("slow job", |ctx| async move {
                ctx.stdout("line1\n"); // t=0
                tokio::time::sleep(secs(90)).await;
                ctx.stdout("line2\n"); // t=90
                tokio::time::sleep(secs(120)).await;
                ctx.stdout("line3\n"); // t=210
                tokio::time::sleep(secs(60)).await;
                Ok(json!(null)) // t=270
            }),
            SpawnOptions::background().no_timeout().heartbeat(secs(60)),
        )
        .expect("spawn");
    run_to_end(&manager, &task).await;
    let notes = manager.notifications(None);
    let progress = of_kind(&notes, NotificationKind::Progress);
    // Heartbeats at t=60, 120, 180 (nothing new: skipped) and 240.
    let tails: Vec<_> = progress.iter().map(|n| n.output_tail.as_str()).collect();
    assert_eq!(tails, ["line1", "line2", "line3"]);
    let ids: Vec<_> = progress
        .iter()
        .map(|n| n.id.rsplit('.').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids, ["h1", "h2", "h3"]);
    assert!(
        progress[0].text.contains("is still running")
            && progress[0].text.contains("new output:\nline1")
    );
    assert_eq!(of_kind(&notes, NotificationKind::Finished).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_below_a_minute_is_refused() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let err = manager
        .spawn(
            ProcessTask::argv(["true"]),
            SpawnOptions::background().heartbeat(secs(10)),
        )
        .expect_err("too short");
    assert!(
        matches!(err, Error::InvalidArgument { ref name, .. } if name == "heartbeat"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn watch_matches_are_rate_limited_and_counted() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let mut events = manager.subscribe();
    let task = manager
        .spawn(
            FnTask::new("build", |ctx| async move {
                ctx.stdout("ERROR a\n"); // t=0: notified
                tokio::time::sleep(secs(1)).await;
                ctx.stdout("ERR"); // a line split across chunks
                ctx.stdout("OR b\nfine\n"); // t=1: held back
                tokio::time::sleep(secs(4)).await;
                ctx.stdout("ERROR c\n"); // t=5: held back
                tokio::time::sleep(secs(15)).await;
                ctx.stdout("ERROR d\n"); // t=20: notified, with 2 held back
                Ok(json!(null))
            }),
            SpawnOptions::background()
                .watch(["^ERROR"])
                .watch_interval(secs(15)),
        )
        .expect("spawn");
    run_to_end(&manager, &task).await;
    let watch = of_kind(&manager.notifications(None), NotificationKind::WatchMatch);
    assert_eq!(watch.len(), 2);
    assert_eq!(watch[0].detail.as_deref(), Some("matched line: ERROR a"));
    assert_eq!(
        watch[1].detail.as_deref(),
        Some("matched line: ERROR d\n(2 more matching lines were held back by the rate limit)")
    );
    assert!(watch[1].text.contains("printed a watched line"));
    let mut matched = Vec::new();
    while let Some(item) = events.try_recv() {
        if let EventItem::Event(e) = item {
            if let EventKind::WatchMatched { line } = e.kind {
                matched.push(line);
            }
        }
    }
    assert_eq!(matched, ["ERROR a", "ERROR d"]);
}

#[tokio::test(start_paused = true)]
async fn watching_stops_after_the_maximum_with_one_notice() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            FnTask::new("noisy", |ctx| async move {
                for i in 0..10 {
                    ctx.stdout(format!("warning {i}\n"));
                    tokio::time::sleep(secs(1)).await;
                }
                Ok(json!(null))
            }),
            SpawnOptions::background()
                .watch(["warning"])
                .watch_interval(Duration::ZERO)
                .watch_max(3),
        )
        .expect("spawn");
    run_to_end(&manager, &task).await;
    let notes = manager.notifications(None);
    let lines: Vec<_> = of_kind(&notes, NotificationKind::WatchMatch)
        .into_iter()
        .filter_map(|n| n.detail)
        .collect();
    assert_eq!(
        lines,
        [
            "matched line: warning 0",
            "matched line: warning 1",
            "matched line: warning 2"
        ]
    );
    let stopped = of_kind(&notes, NotificationKind::WatchStopped);
    assert_eq!(stopped.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_bad_watch_regex_is_refused_by_name() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let err = manager
        .spawn(
            ProcessTask::argv(["true"]),
            SpawnOptions::background().watch(["(unclosed"]),
        )
        .expect_err("bad regex");
    match err {
        Error::InvalidArgument { name, message } => {
            assert_eq!(name, "watch");
            assert!(message.contains("(unclosed"), "{message}");
        }
        other => panic!("expected InvalidArgument, got {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_task_is_reported_stalled_once_per_silence() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            FnTask::new("quiet", |ctx| async move {
                ctx.stdout("a\n"); // t=0
                tokio::time::sleep(secs(45)).await; // stalled at t=30
                ctx.stdout("b\n"); // t=45
                tokio::time::sleep(secs(100)).await; // stalled at t=75, once
                Ok(json!(null))
            }),
            SpawnOptions::background().idle_timeout(secs(30)),
        )
        .expect("spawn");
    run_to_end(&manager, &task).await;
    let stalled = of_kind(&manager.notifications(None), NotificationKind::Stalled);
    assert_eq!(stalled.len(), 2, "{stalled:?}");
    assert_eq!(stalled[0].detail.as_deref(), Some("no output for 30.0 s"));
    assert_eq!(stalled[0].output_tail, "a");
    assert_eq!(stalled[1].output_tail, "a\nb");
    assert_eq!(
        manager.info(task.id().as_str()).expect("info").status,
        TaskStatus::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_on_stall_times_the_task_out() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            FnTask::new("hung", |ctx| async move {
                ctx.stdout("started\n");
                let reason = ctx.cancelled().await;
                Ok(json!(reason.to_string()))
            }),
            SpawnOptions::background()
                .idle_timeout(secs(30))
                .cancel_on_stall(true),
        )
        .expect("spawn");
    let done = manager
        .collect(task.id().as_str(), None)
        .await
        .expect("collect");
    let result = done.result().expect("finished");
    assert_eq!(result.status, TaskStatus::TimedOut);
    assert_eq!(
        result.cancel_reason.as_ref().map(|r| r.kind),
        Some(CancelKind::Stalled)
    );
    assert_eq!(result.value, Some(json!("stalled: no output for 30.0 s")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_process_line_triggers_its_watch() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("echo building; echo 'error[E0308]: mismatched types'; echo done"),
            SpawnOptions::background().watch([r"^error(\[E\d+\])?:"]),
        )
        .expect("spawn");
    manager
        .collect(task.id().as_str(), None)
        .await
        .expect("collect");
    let watch = of_kind(&manager.notifications(None), NotificationKind::WatchMatch);
    assert_eq!(watch.len(), 1);
    assert_eq!(
        watch[0].detail.as_deref(),
        Some("matched line: error[E0308]: mismatched types")
    );
}

/// A watched line printed just before the end is queued before the end is
/// announced: a host that collects a task and then reads its notifications
/// finds the notice (notices are saved on the blocking pool, and the end
/// waits for them). Many tasks at once, so the pool is busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_printed_just_before_the_end_is_queued_before_the_end() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().max_background(64));
    for round in 0..4 {
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                manager
                    .spawn(
                        ProcessTask::shell("echo starting; echo 'ERROR: disk full'; echo done"),
                        SpawnOptions::background()
                            .owner(format!("r{round}t{i}"))
                            .watch(["^ERROR"]),
                    )
                    .expect("spawn")
            })
            .collect();
        for (i, task) in tasks.iter().enumerate() {
            run_to_end(&manager, task).await;
            let notes = manager.notifications(Some(&format!("r{round}t{i}")));
            let watch = of_kind(&notes, NotificationKind::WatchMatch);
            assert_eq!(watch.len(), 1, "round {round} task {i}: {notes:?}");
        }
    }
}
