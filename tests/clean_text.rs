//! Texts for the model are clean (no escape sequences, progress bars in
//! their last state) while `poll` and the log keep the raw bytes; a flag
//! keeps raw text in the tool answers.

mod common;

use agent_tasks::tools::{ToolBox, ToolBoxConfig};
use agent_tasks::{ManagerConfig, ProcessTask, SpawnOptions};
use common::{manager_in_temp, read_all};
use serde_json::json;

/// Colour codes, a cursor move, a window title and a `\r` progress bar.
const NOISY: &str = r"printf '\033[1;32mPASS\033[0m test_one\n\033]0;title\007\033[2Kdownloading  10%%\rdownloading  55%%\rdownloading 100%%\ndone\n'";
const RAW: &[u8] = b"\x1b[1;32mPASS\x1b[0m test_one\n\x1b]0;title\x07\x1b[2Kdownloading  10%\rdownloading  55%\rdownloading 100%\ndone\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_texts_are_clean_and_poll_is_raw() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().notify_host_cancels(true));
    let tools = ToolBox::new(manager.clone(), "session-1");
    let answer = tools.call("task_run", json!({ "command": NOISY })).await;
    assert!(!answer.is_error, "{}", answer.text);
    let id = answer.json["task_id"].as_str().expect("id").to_string();
    assert!(
        answer
            .text
            .contains("PASS test_one\ndownloading 100%\ndone"),
        "{}",
        answer.text
    );
    let shown = answer.text.split("--- output ---").nth(1).expect("output");
    assert!(!shown.contains('\x1b'), "{shown:?}");
    assert!(!shown.contains('\r'), "{shown:?}");
    assert!(!shown.contains("55%"), "{shown:?}");
    let output = tools
        .call("task_output", json!({ "task_id": id, "cursor": 0 }))
        .await;
    assert!(
        output
            .text
            .contains("PASS test_one\ndownloading 100%\ndone"),
        "{}",
        output.text
    );
    // The host's poll keeps every byte as written.
    assert_eq!(read_all(&manager, &id), RAW);

    // With raw_text the answers keep the bytes too.
    let raw_tools = ToolBox::with_config(
        manager.clone(),
        "session-1",
        ToolBoxConfig {
            raw_text: true,
            ..ToolBoxConfig::default()
        },
    )
    .expect("toolbox");
    let output = raw_tools
        .call("task_output", json!({ "task_id": id, "cursor": 0 }))
        .await;
    assert!(output.text.contains("\x1b[1;32mPASS"), "{:?}", output.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_tails_are_clean() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(ProcessTask::shell(NOISY), SpawnOptions::background())
        .expect("spawn");
    let id = task.id().to_string();
    manager.collect(&id, None).await.expect("collect");
    let notes = manager.notifications(None);
    let note = notes
        .iter()
        .find(|n| n.task_id.as_str() == id)
        .expect("a notification");
    assert!(
        note.text.contains("PASS test_one\ndownloading 100%\ndone"),
        "{:?}",
        note.text
    );
    assert!(!note.text.contains('\x1b') && !note.text.contains('\r'));
    assert_eq!(read_all(&manager, &id), RAW);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roster_shows_a_clean_last_line() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell(r"printf '\033[33mbuilding\033[0m  10%%\rbuilding  90%%'; sleep 30"),
            SpawnOptions::background().owner("session-1"),
        )
        .expect("spawn");
    let id = task.id().to_string();
    common::wait_for("the output", || {
        manager.info(&id).expect("info").output.total_bytes > 0
            && manager
                .poll(&id, 0, 1024)
                .expect("poll")
                .text()
                .contains("90%")
    })
    .await;
    let roster = manager.roster("session-1", agent_tasks::DEFAULT_ROSTER_BUDGET);
    let item = roster.items.iter().find(|i| i.id == id).expect("listed");
    assert_eq!(item.last_line.as_deref(), Some("building  90%"));
    assert!(!roster.text.contains('\x1b'), "{:?}", roster.text);
    manager
        .cancel(&id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
}
