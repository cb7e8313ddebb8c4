//! Readiness waits through the public API: a line that appears after a
//! delay, a port opened by a server started after a delay, a task that dies
//! first, a timeout; and the tools' `until` / `wait_until`.

mod common;

use std::time::Duration;

use agent_tasks::tools::ToolBox;
use agent_tasks::{
    FnTask, ManagerConfig, ProcessTask, SpawnOptions, TaskStatus, WaitOutcome, WaitUntil,
};
use common::manager_in_temp;
use serde_json::json;

const LONG: Option<Duration> = Some(Duration::from_secs(30));

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_appears_later_is_matched() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("echo starting; sleep 0.3; echo 'server ready on 8080'; sleep 30"),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let until = WaitUntil::output(r"ready on (\d+)", 0).expect("regex");
    let outcome = manager.wait_for(&id, until, LONG).await.expect("wait");
    let WaitOutcome::Matched { line, cursor } = outcome else {
        panic!("expected a match, got {outcome:?}");
    };
    assert_eq!(line, "server ready on 8080");
    assert_eq!(cursor, "starting\nserver ready on 8080\n".len() as u64);
    // From past the match, the same pattern does not match again.
    let again = WaitUntil::output("ready", cursor).expect("regex");
    let outcome = manager
        .wait_for(&id, again, Some(Duration::from_millis(50)))
        .await
        .expect("wait");
    assert!(matches!(outcome, WaitOutcome::TimedOut), "{outcome:?}");
    manager
        .cancel(&id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_written_by_a_function_task_wakes_the_wait() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            FnTask::new("writes slowly", |ctx| async move {
                for i in 0..5 {
                    ctx.stdout(format!("step {i}\n"));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                ctx.stdout("the answer is 42");
                ctx.cancelled().await;
                Ok(serde_json::Value::Null)
            }),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let outcome = manager
        .wait_for(&id, WaitUntil::output("step 3", 0).expect("regex"), LONG)
        .await
        .expect("wait");
    assert!(
        matches!(&outcome, WaitOutcome::Matched { line, .. } if line == "step 3"),
        "{outcome:?}"
    );
    manager
        .cancel(&id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_opened_after_a_delay_is_seen() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let port = free_port();
    let task = manager
        .spawn(
            ProcessTask::shell(format!(
                "sleep 0.3; exec python3 -m http.server {port} --bind 127.0.0.1"
            )),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let outcome = manager
        .wait_for(&id, WaitUntil::Port(port), LONG)
        .await
        .expect("wait");
    assert!(
        matches!(outcome, WaitOutcome::PortOpen { port: p } if p == port),
        "{outcome:?}"
    );
    manager
        .cancel(&id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_dies_first_ends_the_wait() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let port = free_port();
    let task = manager
        .spawn(
            ProcessTask::shell("echo crashing; exit 3"),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let outcome = manager
        .wait_for(&id, WaitUntil::Port(port), LONG)
        .await
        .expect("wait");
    let WaitOutcome::Ended(result) = outcome else {
        panic!("expected the end, got {outcome:?}");
    };
    assert_eq!(result.status, TaskStatus::Failed);
    // A regex wait on an ended task still scans its output first.
    let outcome = manager
        .wait_for(&id, WaitUntil::output("crash", 0).expect("regex"), LONG)
        .await
        .expect("wait");
    assert!(
        matches!(outcome, WaitOutcome::Matched { .. }),
        "{outcome:?}"
    );
    let outcome = manager
        .wait_for(&id, WaitUntil::output("never", 0).expect("regex"), LONG)
        .await
        .expect("wait");
    assert!(matches!(outcome, WaitOutcome::Ended(_)), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_times_out() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(ProcessTask::shell("sleep 30"), SpawnOptions::background())
        .expect("spawn");
    let id = task.id().to_string();
    let outcome = manager
        .wait_for(
            &id,
            WaitUntil::output("ready", 0).expect("regex"),
            Some(Duration::from_millis(100)),
        )
        .await
        .expect("wait");
    assert!(matches!(outcome, WaitOutcome::TimedOut), "{outcome:?}");
    assert!(WaitUntil::output("(", 0).is_err());
    assert!(WaitUntil::parse("port:0", 0).is_err());
    assert!(matches!(
        WaitUntil::parse("port:8080", 0),
        Ok(WaitUntil::Port(8080))
    ));
    manager
        .cancel(&id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_wait_until_ready() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = ToolBox::new(manager.clone(), "session-1");
    let answer = tools
        .call(
            "task_run",
            json!({"command": "sleep 0.2; echo 'listening on 3000'; sleep 30", "background": true, "wait_until": "listening on"}),
        )
        .await;
    assert!(!answer.is_error, "{}", answer.text);
    assert!(
        answer.text.contains("ready: an output line matched"),
        "{}",
        answer.text
    );
    assert_eq!(answer.json["ready"]["state"], "matched");
    let id = answer.json["task_id"].as_str().expect("id").to_string();

    let port = free_port();
    let server = tools
        .call(
            "task_run",
            json!({"command": format!("sleep 0.2; exec python3 -m http.server {port} --bind 127.0.0.1"), "background": true}),
        )
        .await;
    let server_id = server.json["task_id"].as_str().expect("id").to_string();
    let answer = tools
        .call(
            "task_wait",
            json!({"task_id": server_id, "until": format!("port:{port}"), "timeout": 30}),
        )
        .await;
    assert!(
        answer.text.contains(&format!("ready: port {port} accepts")),
        "{}",
        answer.text
    );
    let answer = tools
        .call(
            "task_wait",
            json!({"task_id": id, "until": "never printed", "timeout": 0.1}),
        )
        .await;
    assert!(
        answer.text.contains("not ready: the wait timed out"),
        "{}",
        answer.text
    );
    let answer = tools
        .call("task_wait", json!({"task_id": id, "until": "port:x"}))
        .await;
    assert!(
        answer.is_error && answer.text.contains("until"),
        "{}",
        answer.text
    );
    let answer = tools
        .call("task_run", json!({"command": "true", "wait_until": "x"}))
        .await;
    assert!(
        answer.is_error && answer.text.contains("wait_until"),
        "{}",
        answer.text
    );
    tools.call("task_cancel", json!({"task_id": id})).await;
    tools
        .call("task_cancel", json!({"task_id": server_id}))
        .await;
}

/// `poll_wait` reads a stream from a cursor, woken by the task's output:
/// every byte once, across a spill to disk, ending at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_wait_streams_every_byte_once_across_a_spill() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().memory_limit(16 * 1024));
    let task = manager
        .spawn(
            ProcessTask::shell("for i in $(seq 1 4); do seq 1 20000; sleep 0.1; done"),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let mut cursor = 0;
    let mut all = Vec::new();
    loop {
        let page = manager
            .poll_wait(&id, cursor, 7000, None)
            .await
            .expect("wait");
        assert_eq!(page.cursor, cursor, "nothing is skipped");
        assert_eq!(page.omitted_bytes, 0);
        if page.data.is_empty() {
            assert!(page.eof, "an empty answer comes only at the end");
            break;
        }
        all.extend_from_slice(&page.data);
        cursor = page.next_cursor;
    }
    let one: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    assert_eq!(String::from_utf8(all).expect("utf-8"), one.repeat(4));
    assert!(manager.info(&id).expect("info").output.spilled);
}

/// A pending `poll_wait` is woken by the task's write, not by its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_wait_wakes_on_new_output() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            FnTask::new("echo on request", |ctx| async move {
                loop {
                    tokio::select! {
                        message = ctx.recv() => match message {
                            Some(message) => ctx.stdout(message.text()),
                            None => break,
                        },
                        _ = ctx.cancelled() => break,
                    }
                }
                Ok(serde_json::Value::Null)
            }),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let waiting = {
        let manager = manager.clone();
        let id = id.clone();
        tokio::spawn(async move { manager.poll_wait(&id, 0, 1024, None).await })
    };
    manager.send(&id, "hello").expect("send");
    let page = waiting.await.expect("join").expect("wait");
    assert_eq!(page.data, b"hello");
    assert!(!page.eof);
    assert!(
        !page.info.status.is_terminal(),
        "woken by the output, before the end"
    );
    manager
        .cancel(&id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
    let end = manager
        .poll_wait(&id, page.next_cursor, 1024, None)
        .await
        .expect("end");
    assert!(end.data.is_empty() && end.eof);
}

/// What a wait reports is readable at once: a function task's line that a
/// wait matched is in a poll made right after, even while it is gathered
/// for the log and not written there yet (the page goes on from the log
/// into the in-memory tail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_right_after_a_match_has_the_matched_line() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            FnTask::new("echo on request", |ctx| async move {
                loop {
                    tokio::select! {
                        message = ctx.recv() => match message {
                            Some(message) => ctx.stdout(message.text()),
                            None => break,
                        },
                        _ = ctx.cancelled() => break,
                    }
                }
                Ok(serde_json::Value::Null)
            }),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    // Something in the log first, so later lines sit gathered behind it.
    manager.send(&id, "first\n").expect("send");
    common::wait_for("the first line in the log", || {
        manager.info(&id).expect("info").output.disk_bytes > 0
    })
    .await;
    let mut cursor = 0;
    for i in 0..300 {
        let line = format!("line {i}");
        manager.send(&id, format!("{line}\n")).expect("send");
        let until = WaitUntil::output(&format!("^{line}$"), cursor).expect("regex");
        let outcome = manager.wait_for(&id, until, LONG).await.expect("wait");
        let WaitOutcome::Matched { cursor: past, .. } = outcome else {
            panic!("expected a match, got {outcome:?}");
        };
        cursor = past;
        let page = manager.poll(&id, 0, 1 << 20).expect("poll");
        assert!(
            page.next_cursor >= past,
            "iteration {i}: the page from 0 ends at {} before the match's end {past}",
            page.next_cursor
        );
        assert!(page.text().contains(&line), "iteration {i}");
    }
    manager
        .cancel(&id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
}

/// A function task that writes each message it gets, as it is.
fn echo_task() -> impl agent_tasks::BackgroundTask {
    FnTask::new("echo on request", |ctx| async move {
        loop {
            tokio::select! {
                message = ctx.recv() => match message {
                    Some(message) => ctx.stdout(message.text()),
                    None => break,
                },
                _ = ctx.cancelled() => break,
            }
        }
        Ok(serde_json::Value::Null)
    })
}

/// A prompt (a last line without a newline) is matched as it stands; a
/// wait from the cursor of that match does not see the prompt's bare line
/// end as a line, but sees what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_without_a_newline_is_matched() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(echo_task(), SpawnOptions::background())
        .expect("spawn");
    let id = task.id().to_string();
    manager.send(&id, "starting\nprompt> ").expect("send");
    let until = WaitUntil::output("^prompt> $", 0).expect("regex");
    let outcome = manager.wait_for(&id, until, LONG).await.expect("wait");
    let WaitOutcome::Matched { line, cursor } = outcome else {
        panic!("the prompt was not matched: {outcome:?}");
    };
    assert_eq!(line, "prompt> ");
    assert_eq!(cursor, "starting\nprompt> ".len() as u64);
    // The prompt's line ends (as a terminal ends it); then a line.
    manager.send(&id, "\r\n").expect("send");
    manager.send(&id, "answer\n").expect("send");
    let any = WaitUntil::output("^.*$", cursor).expect("regex");
    let outcome = manager.wait_for(&id, any, LONG).await.expect("wait");
    let WaitOutcome::Matched { line, cursor: past } = outcome else {
        panic!("expected a match, got {outcome:?}");
    };
    assert_eq!(line, "answer", "the prompt's line end is not a line");
    assert_eq!(past, "starting\nprompt> \r\nanswer\n".len() as u64);
    // The rest of a line after a prompt (what was typed) is a line.
    manager.send(&id, "prompt> typed\n").expect("send");
    let outcome = manager
        .wait_for(
            &id,
            WaitUntil::output("^prompt> ", past).expect("regex"),
            LONG,
        )
        .await
        .expect("wait");
    let WaitOutcome::Matched { line, cursor } = outcome else {
        panic!("expected the second prompt, got {outcome:?}");
    };
    assert_eq!(line, "prompt> typed", "{cursor}");
    manager
        .cancel(&id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
}

/// A line longer than the 64 KiB a wait looks at is matched on its first
/// 64 KiB, and `$` cannot match where it was cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_long_line_has_no_end_at_the_cut() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(echo_task(), SpawnOptions::background())
        .expect("spawn");
    let id = task.id().to_string();
    let long = format!("{}tail\n", "a".repeat(100 * 1024));
    manager.send(&id, long.as_str()).expect("send");
    // Unterminated too: a long progress line.
    manager.send(&id, "b".repeat(100 * 1024)).expect("send");
    common::wait_for("the output", || {
        manager.info(&id).expect("info").output.total_bytes == (long.len() + 100 * 1024) as u64
    })
    .await;
    for pattern in ["a$", "^a+$", "b$", r"a\z"] {
        let outcome = manager
            .wait_for(
                &id,
                WaitUntil::output(pattern, 0).expect("regex"),
                Some(Duration::from_millis(300)),
            )
            .await
            .expect("wait");
        assert!(
            matches!(outcome, WaitOutcome::TimedOut),
            "{pattern} matched at the cut: {:?}",
            match outcome {
                WaitOutcome::Matched { line, cursor } =>
                    format!("{} bytes, to {cursor}", line.len()),
                other => format!("{other:?}"),
            }
        );
    }
    // What the first 64 KiB hold still matches, and is what is reported.
    let outcome = manager
        .wait_for(&id, WaitUntil::output("^a{100}", 0).expect("regex"), LONG)
        .await
        .expect("wait");
    let WaitOutcome::Matched { line, cursor } = outcome else {
        panic!("expected a match, got {outcome:?}");
    };
    assert_eq!(line.len(), agent_tasks::MAX_WAIT_LINE);
    assert_eq!(cursor, long.len() as u64);
    manager
        .cancel(&id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
}

/// A wait that scans a large backlog keeps its timeout and does not hold
/// its runtime thread: on a one-thread runtime a ticker still ticks during
/// the wait, and the wait times out before it could have read the backlog
/// to its matching last line.
#[tokio::test]
async fn a_backlog_scan_keeps_the_timeout_and_lets_the_runtime_run() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    const LINES: u64 = 2_000_000;
    let task = manager
        .spawn(
            ProcessTask::shell(format!("seq 1 {LINES}; echo the end; exec sleep 1000")),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let expected: u64 = (1..=LINES)
        .map(|i| i.to_string().len() as u64 + 1)
        .sum::<u64>()
        + "the end\n".len() as u64;
    common::wait_for("the backlog", || {
        manager.info(&id).expect("info").output.total_bytes == expected
    })
    .await;

    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(1));
            loop {
                interval.tick().await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    common::wait_for("the ticker to run", || ticks.load(Ordering::Relaxed) > 0).await;
    let before = ticks.load(Ordering::Relaxed);
    // Only the backlog's last line matches: reading all of it (millions of
    // lines) takes far longer than the timeout.
    let outcome = manager
        .wait_for(
            &id,
            WaitUntil::output("^the end$", 0).expect("regex"),
            Some(Duration::from_millis(20)),
        )
        .await
        .expect("wait");
    let during = ticks.load(Ordering::Relaxed) - before;
    ticker.abort();
    assert!(
        matches!(outcome, WaitOutcome::TimedOut),
        "the wait read the whole backlog past its timeout: {outcome:?}"
    );
    assert!(during > 0, "the ticker never ran during the wait");
    // Without a timeout the same wait reads it all and matches.
    let outcome = manager
        .wait_for(&id, WaitUntil::output("^the end$", 0).expect("regex"), None)
        .await
        .expect("wait");
    assert!(
        matches!(&outcome, WaitOutcome::Matched { line, .. } if line == "the end"),
        "{outcome:?}"
    );
    manager
        .cancel(&id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
}
