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

/// The output part of a tool answer ("" when it shows none).
fn shown(text: &str) -> &str {
    text.split_once("--- output ---\n")
        .map_or("", |(_, out)| out)
}

/// Pages through a finished task's output with `task_output` from cursor 0,
/// `max_bytes` at a time; returns the pages' texts.
async fn page_through(tools: &ToolBox, id: &str, max_bytes: Option<u64>) -> Vec<String> {
    let mut pages = Vec::new();
    let mut cursor = 0u64;
    loop {
        let mut args = json!({ "task_id": id, "cursor": cursor });
        if let Some(max) = max_bytes {
            args["max_bytes"] = json!(max);
        }
        let answer = tools.call("task_output", args).await;
        assert!(!answer.is_error, "{}", answer.text);
        assert_eq!(answer.json["cursor"], json!(cursor), "{}", answer.text);
        let next = answer.json["next_cursor"].as_u64().expect("next cursor");
        let total = answer.json["info"]["output"]["total_bytes"]
            .as_u64()
            .expect("total");
        assert!(
            next > cursor || next == total,
            "no progress at {cursor} with max_bytes {max_bytes:?}"
        );
        pages.push(shown(&answer.text).to_string());
        if answer.json["eof"] == json!(true) || next == total {
            return pages;
        }
        cursor = next;
    }
}

/// A piece of an escape sequence shown as text.
fn has_fragment(text: &str) -> bool {
    static FRAGMENT: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\x1b|\[|\dm|;\d").expect("regex"));
    FRAGMENT.is_match(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_output_is_clean_at_every_boundary() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = ToolBox::new(manager.clone(), "session-1");
    // Coloured lines with two- and three-byte characters.
    let run = tools
        .call(
            "task_run",
            json!({ "command": r"for i in $(seq -w 0 599); do printf '\033[1;32mline %s ok é✓\033[0m\n' $i; done" }),
        )
        .await;
    assert!(!run.is_error, "{}", run.text);
    let id = run.json["task_id"].as_str().expect("id").to_string();
    let expected: String = (0..600).map(|i| format!("line {i:03} ok é✓\n")).collect();
    assert!(read_all(&manager, &id).len() > 8000);

    // The default view (the tail, 8000 bytes) and default pages.
    let tail = tools.call("task_output", json!({ "task_id": id })).await;
    let tail_text = shown(&tail.text);
    assert!(!has_fragment(tail_text), "{tail_text:?}");
    assert!(tail_text.starts_with("line "), "{tail_text:?}");
    assert!(expected.ends_with(tail_text), "{tail_text:?}");
    let pages = page_through(&tools, &id, None).await;
    assert!(pages.len() > 1);
    assert_eq!(pages.concat(), expected);

    // Every page size in a range, on the first lines: no piece of a
    // sequence on any page, and the pages together say what the whole says.
    let short = tools
        .call(
            "task_run",
            json!({ "command": r"for i in $(seq -w 0 39); do printf '\033[1;32mline %s ok é✓\033[0m\n' $i; done" }),
        )
        .await;
    let short_id = short.json["task_id"].as_str().expect("id").to_string();
    let short_expected: String = (0..40).map(|i| format!("line {i:02} ok é✓\n")).collect();
    for max in 1..=70u64 {
        let pages = page_through(&tools, &short_id, Some(max)).await;
        for page in &pages {
            assert!(!has_fragment(page), "max_bytes {max}: {page:?}");
            assert!(!page.contains('\u{fffd}'), "max_bytes {max}: {page:?}");
        }
        assert_eq!(pages.concat(), short_expected, "max_bytes {max}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_bars_are_whole_on_pages_of_whole_lines() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = ToolBox::new(manager.clone(), "session-1");
    let run = tools
        .call(
            "task_run",
            json!({ "command": r"for i in $(seq -w 0 99); do printf '\033[33mstep %s\033[0m  10%%\rstep %s 100%%\n' $i $i; done" }),
        )
        .await;
    let id = run.json["task_id"].as_str().expect("id").to_string();
    let expected: String = (0..100).map(|i| format!("step {i:02} 100%\n")).collect();
    // A page that holds a whole line ends on one: no bar is split.
    for max in [80u64, 97, 150, 1000] {
        let pages = page_through(&tools, &id, Some(max)).await;
        assert_eq!(pages.concat(), expected, "max_bytes {max}");
    }
}

/// `é✓😀` forty times: two-, three- and four-byte characters.
const WIDE: &str = "é✓😀";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_smaller_than_a_character_still_shows_every_character() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = ToolBox::new(manager.clone(), "session-1");
    let command = format!("for i in $(seq 40); do printf '{WIDE}'; done");
    let expected = WIDE.repeat(40);
    // In memory (foreground) and spilled to the log (background).
    for background in [false, true] {
        let run = tools
            .call(
                "task_run",
                json!({ "command": command, "background": background }),
            )
            .await;
        let id = run.json["task_id"].as_str().expect("id").to_string();
        manager.collect(&id, None).await.expect("collect");
        for max in 1..=10u64 {
            // The tool's pages.
            let pages = page_through(&tools, &id, Some(max)).await;
            assert_eq!(pages.concat(), expected, "task_output, max_bytes {max}");
            // The host's poll: whole characters on every page.
            let mut text = String::new();
            let mut cursor = 0;
            loop {
                let page = manager.poll(&id, cursor, max as usize).expect("poll");
                let page_text = page.text();
                assert!(!page_text.contains('\u{fffd}'), "poll, max_bytes {max}");
                assert!(page.data.len() <= (max as usize).max(4));
                assert!(page.next_cursor > cursor || page.eof);
                text.push_str(&page_text);
                cursor = page.next_cursor;
                if page.eof {
                    break;
                }
            }
            assert_eq!(text, expected, "poll, max_bytes {max}");
        }
        // The tail view with a tiny limit shows the last whole character.
        let tail = tools
            .call("task_output", json!({ "task_id": id, "max_bytes": 2 }))
            .await;
        assert_eq!(shown(&tail.text), "😀", "{}", tail.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_tail_views_are_clean_where_they_are_cut() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    // Long coloured lines: a head or a tail cut anywhere would likely fall
    // inside a sequence.
    let command = r"for i in $(seq -w 0 1999); do printf '\033[1;32mline %s ok\033[0m \033[2;33mwarn %s\033[0m\n' $i $i; done";
    let marker = regex::Regex::new(r"\[\.\.\. \d+ bytes omitted \.\.\.\]").expect("regex");
    for budget in [600, 1000, 2000, 4000, 12_000] {
        let tools = ToolBox::with_config(
            manager.clone(),
            "session-1",
            ToolBoxConfig {
                text_budget: budget,
                ..ToolBoxConfig::default()
            },
        )
        .expect("toolbox");
        let run = tools.call("task_run", json!({ "command": command })).await;
        assert!(!run.is_error, "{}", run.text);
        let id = run.json["task_id"].as_str().expect("id").to_string();
        let waited = tools
            .call("task_wait", json!({ "task_id": id, "timeout": 60 }))
            .await;
        for answer in [&run, &waited] {
            let text = shown(&answer.text);
            assert!(text.contains(" bytes omitted ...]\n"), "{text:?}");
            let without_marker = marker.replace(text, "");
            assert!(!has_fragment(&without_marker), "budget {budget}: {text:?}");
            assert!(text.ends_with("warn 1999\n"), "{text:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn heartbeat_and_watch_notices_are_clean() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            agent_tasks::FnTask::new("coloured steps", |ctx| async move {
                ctx.stdout("\x1b[32mstep 1\x1b[0m  10%\rstep 1 done\n");
                tokio::time::sleep(std::time::Duration::from_secs(90)).await;
                Ok(json!(null))
            }),
            SpawnOptions::background()
                .no_timeout()
                .heartbeat(std::time::Duration::from_secs(60))
                .watch(["step"]),
        )
        .expect("spawn");
    manager
        .collect(task.id().as_str(), None)
        .await
        .expect("collect");
    let notes = manager.notifications(None);
    let progress = notes
        .iter()
        .find(|n| n.kind == agent_tasks::NotificationKind::Progress)
        .expect("a heartbeat");
    assert_eq!(progress.output_tail, "step 1 done");
    let watched = notes
        .iter()
        .find(|n| n.kind == agent_tasks::NotificationKind::WatchMatch)
        .expect("a watch notice");
    assert_eq!(watched.detail.as_deref(), Some("matched line: step 1 done"));
    for note in [progress, watched] {
        assert!(
            !note.text.contains('\x1b') && !note.text.contains('\r'),
            "{:?}",
            note.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matched_ready_line_is_shown_clean() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = ToolBox::new(manager.clone(), "session-1");
    let run = tools
        .call(
            "task_run",
            json!({
                "command": r"printf '\033[1;32mready\033[0m on :8080\n'; sleep 30",
                "background": true,
                "wait_until": "ready",
            }),
        )
        .await;
    assert!(!run.is_error, "{}", run.text);
    let line = run
        .text
        .lines()
        .find(|l| l.starts_with("ready: "))
        .unwrap_or_else(|| panic!("{}", run.text));
    assert!(line.ends_with("): ready on :8080"), "{line:?}");
    let id = run.json["task_id"].as_str().expect("id");
    manager
        .cancel(id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
}
