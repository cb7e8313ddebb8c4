//! Output through the public API: detach and overflow spill in order, a
//! concurrent reader sees every byte once, memory stays bounded, the disk cap
//! keeps head and tail, bytes (not strings) survive, disk errors are reported.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent_tasks::{
    CollectOutcome, FnTask, ForegroundOutcome, ManagerConfig, ProcessTask, SpawnOptions,
    TaskManager, TaskStatus,
};
use common::{manager_in_temp, read_all, seq_output, wait_for};
use serde_json::json;

const FLOOD_LINES: u64 = 3_000_000; // about 22 MB of `seq` output

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_during_a_flood_loses_and_repeats_no_byte() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().memory_limit(8 << 20));
    let task = manager
        .spawn(
            ProcessTask::argv(["seq", "1", &FLOOD_LINES.to_string()]),
            SpawnOptions::foreground().no_timeout(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    // Detach while the flood is under way and still held in memory.
    wait_for("some output", || {
        manager.info(&id).expect("info").output.total_bytes > 64 * 1024
    })
    .await;
    let before = manager.info(&id).expect("info");
    assert!(!before.output.spilled, "still in memory before the detach");
    let waiter = tokio::spawn({
        let task = task.clone();
        async move { task.wait_foreground().await }
    });
    let info = manager.detach(&id).expect("detach");
    assert!(info.detached && !info.foreground);
    assert!(info.output.spilled);
    match waiter.await.expect("join") {
        ForegroundOutcome::Detached(info) => assert_eq!(info.id.as_str(), id),
        other => panic!("expected Detached, got {other:?}"),
    }
    let done = manager
        .collect(&id, Some(Duration::from_secs(60)))
        .await
        .expect("collect");
    let result = done.result().expect("finished").clone();
    assert_eq!(result.status, TaskStatus::Completed);
    let expected = seq_output(FLOOD_LINES);
    assert_eq!(result.output.total_bytes, expected.len() as u64);
    let polled = read_all(&manager, &id);
    assert!(
        polled == expected,
        "polled output differs from what seq wrote"
    );
    let log = std::fs::read(result.output.log_path.expect("log path")).expect("read log");
    assert!(log == expected, "output.log differs from what seq wrote");
    // Detaching again returns the info unchanged.
    assert_eq!(
        manager.detach(&id).expect("detach").status,
        TaskStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_spills_in_order_and_foreground_writes_nothing_before() {
    let (manager, dir) = manager_in_temp(ManagerConfig::default().memory_limit(64 * 1024));
    // Under the limit: nothing on disk.
    let small = manager
        .spawn(
            ProcessTask::argv(["seq", "1", "1000"]),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(result) = small.wait_foreground().await else {
        panic!("expected Finished");
    };
    assert!(!result.output.spilled);
    assert!(!dir.path().join("tasks").join(small.id().as_str()).exists());
    assert_eq!(read_all(&manager, small.id().as_str()), seq_output(1000));

    // Over the limit: spilled, in order.
    let big = manager
        .spawn(
            ProcessTask::argv(["seq", "1", "200000"]),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(result) = big.wait_foreground().await else {
        panic!("expected Finished");
    };
    assert!(result.output.spilled);
    let expected = seq_output(200_000);
    let log = std::fs::read(
        dir.path()
            .join("tasks")
            .join(big.id().as_str())
            .join("output.log"),
    )
    .expect("log");
    assert!(log == expected);
    assert!(read_all(&manager, big.id().as_str()) == expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_polling_while_the_task_writes_sees_every_byte_once() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().tail_window(4096));
    let task = manager
        .spawn(
            ProcessTask::argv(["seq", "1", &FLOOD_LINES.to_string()]),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut polls = 0;
    loop {
        let page = manager.poll(&id, cursor, 100_000).expect("poll");
        assert_eq!(page.omitted_bytes, 0);
        assert_eq!(
            page.cursor, cursor,
            "the reader resumes exactly where it stopped"
        );
        seen.extend_from_slice(&page.data);
        cursor = page.next_cursor;
        polls += 1;
        if page.eof {
            break;
        }
        if page.data.is_empty() {
            tokio::task::yield_now().await;
        }
    }
    assert!(polls > 10, "the reader polled while the task ran");
    assert!(seen == seq_output(FLOOD_LINES));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_and_the_disk_cap_keeps_head_and_tail() {
    const TOTAL: u64 = 256 << 20;
    const MEMORY_LIMIT: usize = 1 << 20;
    const TAIL: usize = 64 * 1024;
    let (manager, _dir) = manager_in_temp(
        ManagerConfig::default()
            .memory_limit(MEMORY_LIMIT)
            .tail_window(TAIL)
            .disk_limit(8 << 20),
    );
    let peak = Arc::new(AtomicU64::new(0));
    let probe = manager.clone();
    let seen_peak = peak.clone();
    let task = manager
        .spawn(
            FnTask::new("print 256 MiB", move |ctx| async move {
                let chunk: Vec<u8> = (0..65_536u32).map(|i| b'a' + (i % 26) as u8).collect();
                let mut written = 0u64;
                while written < TOTAL {
                    ctx.stdout(&chunk);
                    written += chunk.len() as u64;
                    if written.is_multiple_of(1 << 20) {
                        let mem = probe.info(ctx.id().as_str())?.output.memory_bytes;
                        seen_peak.fetch_max(mem, Ordering::Relaxed);
                    }
                }
                ctx.stdout(b"THE END\n");
                Ok(json!(written))
            }),
            SpawnOptions::foreground().no_timeout(),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(result) = task.wait_foreground().await else {
        panic!("expected Finished");
    };
    assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
    let peak = peak.load(Ordering::Relaxed);
    assert!(peak > 0);
    assert!(
        peak <= (MEMORY_LIMIT + TAIL) as u64,
        "the buffer held {peak} bytes, more than its limits"
    );
    let out = &result.output;
    assert_eq!(out.total_bytes, TOTAL + 8);
    assert!(out.disk_bytes <= 8 << 20);
    assert_eq!(
        out.omitted_bytes,
        out.total_bytes - out.disk_bytes - TAIL as u64
    );
    // The log holds the head, a marker, and the tail.
    let log = std::fs::read(out.log_path.as_ref().expect("log")).expect("read log");
    let marker = format!("[... {} bytes omitted ...]", out.omitted_bytes);
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains(&marker), "the log has the omitted marker");
    assert!(log.ends_with(b"THE END\n"));
    assert!(log.starts_with(b"abcdefghijklmnopqrstuvwxyz"));
    // A reader from 0 gets the head, then is told how much was skipped.
    let id = task.id().as_str();
    let mut cursor = 0;
    let mut omitted = 0;
    let mut bytes = 0;
    loop {
        let page = manager.poll(id, cursor, 1 << 20).expect("poll");
        omitted += page.omitted_bytes;
        bytes += page.data.len() as u64;
        cursor = page.next_cursor;
        if page.eof {
            assert!(page.data.ends_with(b"THE END\n"));
            break;
        }
    }
    assert_eq!(omitted, out.omitted_bytes);
    assert_eq!(bytes + omitted, out.total_bytes);
    let preview = manager.preview(id, 26, 8).expect("preview");
    assert_eq!(preview.head, b"abcdefghijklmnopqrstuvwxyz");
    assert_eq!(preview.tail, b"THE END\n");
    assert!(preview.text().contains("bytes omitted ..."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_output_and_megabyte_lines_are_kept_as_bytes() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().memory_limit(1 << 20));
    let payload: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let expected = payload.clone();
    let task = manager
        .spawn(
            FnTask::new("binary", move |ctx| async move {
                for chunk in payload.chunks(77_777) {
                    ctx.write("stdout", chunk);
                }
                Ok(json!(null))
            }),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let done = manager
        .collect(task.id().as_str(), None)
        .await
        .expect("collect");
    assert!(matches!(done, CollectOutcome::Finished(_)));
    let out = read_all(&manager, task.id().as_str());
    assert!(out == expected, "binary bytes came back changed");
    // The text view decodes lossily, never panics.
    let page = manager.poll(task.id().as_str(), 1, 1000).expect("poll");
    assert!(!page.text().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_text_is_cut_on_character_boundaries_while_running() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let task = manager
        .spawn(
            FnTask::new("euro", move |ctx| async move {
                ctx.stdout("€€€".as_bytes());
                let _ = release_rx.await;
                Ok(json!(null))
            }),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("output", || {
        manager.info(&id).expect("info").output.total_bytes == 9
    })
    .await;
    // 4 bytes asked: only the first whole `€` (3 bytes) is returned.
    let page = manager.poll(&id, 0, 4).expect("poll");
    assert_eq!(page.text(), "€");
    assert_eq!(page.next_cursor, 3);
    let _ = release_tx.send(());
    manager.collect(&id, None).await.expect("collect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_error_is_reported_and_the_task_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    // `tasks` is a file, so no task folder can be made under it.
    std::fs::write(dir.path().join("tasks"), b"not a folder").expect("write");
    let manager = TaskManager::new(ManagerConfig::default().root(dir.path())).expect("manager");
    let task = manager
        .spawn(
            ProcessTask::shell("seq 1 1000; echo last line"),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let done = manager
        .collect(task.id().as_str(), None)
        .await
        .expect("collect");
    let result = done.result().expect("finished");
    assert_eq!(result.status, TaskStatus::Completed);
    let error = result
        .output
        .write_error
        .as_deref()
        .expect("a write error is reported");
    assert!(error.contains("tasks"), "{error}");
    let info = manager.info(task.id().as_str()).expect("info");
    assert!(info.output.write_error.is_some());
    // The in-memory tail is still there.
    let preview = manager
        .preview(task.id().as_str(), 0, 100)
        .expect("preview");
    assert!(preview.text().ends_with("1000\nlast line\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_are_separate_streams_in_one_order() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("echo out; sleep 0.05; echo err >&2; sleep 0.05; echo out2"),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(result) = task.wait_foreground().await else {
        panic!("expected Finished");
    };
    assert_eq!(result.output.stdout_bytes, 9);
    assert_eq!(result.output.stderr_bytes, 4);
    let page = manager.poll(task.id().as_str(), 0, 1000).expect("poll");
    assert_eq!(page.text(), "out\nerr\nout2\n");
    let streams: Vec<_> = page
        .spans
        .iter()
        .map(|s| (s.stream.as_str().to_string(), s.len))
        .collect();
    assert_eq!(
        streams,
        vec![
            ("stdout".to_string(), 4),
            ("stderr".to_string(), 4),
            ("stdout".to_string(), 5)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_writes_are_gathered_but_reach_the_log_soon_and_in_order() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let task = manager
        .spawn(
            FnTask::new("many small writes", move |ctx| async move {
                for i in 0..100_000u32 {
                    ctx.stdout(format!("{i}\n"));
                }
                ctx.stdout("last");
                let _ = release_rx.await;
                Ok(json!(null))
            }),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let mut expected: Vec<u8> = (0..100_000u32)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    expected.extend_from_slice(b"last");
    let total = expected.len() as u64;
    // While the task waits, its last gathered bytes are flushed by the timer.
    wait_for("the log to hold everything", || {
        manager.info(&id).expect("info").output.disk_bytes == total
    })
    .await;
    let log = std::fs::read(
        manager
            .info(&id)
            .expect("info")
            .output
            .log_path
            .expect("log"),
    )
    .expect("read log");
    assert!(log == expected, "the log differs from what was written");
    let _ = release_tx.send(());
    manager.collect(&id, None).await.expect("collect");
    assert!(read_all(&manager, &id) == expected);
}

/// `poll_wait` follows a task's output as it is written: every answer has
/// bytes (or is the end), the reader gets every byte once and in order,
/// past the memory buffer's spill, and the last answer says `eof`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_wait_follows_the_output_to_its_end_without_loss() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().memory_limit(64 * 1024));
    let lines = 200_000; // about 1.3 MB: spills past the 64 KiB buffer
    let task = manager
        .spawn(
            ProcessTask::shell(format!("sleep 0.2; seq 1 {lines}")),
            SpawnOptions::background().no_timeout(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let mut cursor = 0;
    let mut read = Vec::new();
    let mut answers = 0;
    loop {
        let page = manager
            .poll_wait(&id, cursor, 100_000, None)
            .await
            .expect("poll_wait");
        answers += 1;
        assert_eq!(page.cursor, cursor, "no byte skipped");
        assert!(
            !page.data.is_empty() || page.eof,
            "an answer without a time limit has bytes or is the end"
        );
        read.extend_from_slice(&page.data);
        cursor = page.next_cursor;
        if page.eof {
            break;
        }
    }
    assert!(answers > 1, "read in several answers");
    assert!(
        read == seq_output(lines),
        "the bytes read differ from seq's"
    );
    let info = manager.info(&id).expect("info");
    assert!(
        info.output.spilled,
        "the output went past the memory buffer"
    );
    assert!(info.status.is_terminal(), "eof comes once the task ended");
    // At the end, it answers at once, again with eof.
    let again = manager
        .poll_wait(&id, cursor, 10, None)
        .await
        .expect("poll_wait");
    assert!(again.eof && again.data.is_empty());
}

/// `poll_wait` on a quiet task answers empty once the time runs out, then
/// wakes for the next write; a cursor past the end is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_wait_times_out_empty_and_wakes_on_a_write() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("read line; echo \"got $line\"").interactive(true),
            SpawnOptions::background().no_timeout(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let quiet = manager
        .poll_wait(&id, 0, 1024, Some(Duration::from_millis(50)))
        .await
        .expect("poll_wait");
    assert!(quiet.data.is_empty() && !quiet.eof && quiet.next_cursor == 0);
    // Said, not left to be inferred from the empty page.
    assert!(quiet.timed_out);
    let waiting = tokio::spawn({
        let manager = manager.clone();
        let id = id.clone();
        async move { manager.poll_wait(&id, 0, 1024, None).await }
    });
    manager.send(&id, "hi\n").expect("send");
    let page = waiting.await.expect("join").expect("poll_wait");
    assert!(
        String::from_utf8_lossy(&page.data).starts_with("got hi"),
        "{:?}",
        page.data
    );
    assert!(!page.timed_out);
    // At the end of an ended task: the end (`eof`), not a timeout, even
    // with a timeout that passes at once.
    manager.collect(&id, None).await.expect("collect");
    let end = manager
        .poll_wait(&id, page.next_cursor, 1024, Some(Duration::ZERO))
        .await
        .expect("poll_wait");
    assert!(end.eof && !end.timed_out && end.data.is_empty());
    assert!(!manager.poll(&id, 0, 1024).expect("poll").timed_out);
    let err = manager
        .poll_wait(&id, 1 << 40, 1024, None)
        .await
        .expect_err("a cursor past the end");
    assert_eq!(err.code(), "INVALID_ARGUMENT");
}

/// Issue 20, extra: an ended foreground task keeps at most
/// [`agent_tasks::ENDED_OUTPUT_MEMORY`] bytes of output in memory, however
/// much it printed under the memory limit (more goes to its log at the end),
/// and reads give the same bytes as before the end. A small output stays in
/// memory, with nothing on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_foreground_task_keeps_little_output_in_memory() {
    let (manager, dir) = manager_in_temp(ManagerConfig::default());
    let expected = seq_output(40_000); // about 230 KiB, under the 1 MiB limit
    let task = manager
        .spawn(
            ProcessTask::argv(["seq", "1", "40000"]),
            SpawnOptions::foreground().no_timeout(),
        )
        .expect("spawn");
    let outcome = task.wait_foreground().await;
    assert!(
        matches!(outcome, agent_tasks::ForegroundOutcome::Finished(_)),
        "{outcome:?}"
    );
    let info = manager.info(task.id().as_str()).expect("info");
    assert_eq!(info.output.total_bytes, expected.len() as u64);
    assert!(
        info.output.memory_bytes <= agent_tasks::ENDED_OUTPUT_MEMORY as u64,
        "{} bytes in memory",
        info.output.memory_bytes
    );
    assert_eq!(read_all(&manager, task.id().as_str()), expected);
    // Small pages read the same too.
    let mut cursor = 0;
    let mut paged = Vec::new();
    loop {
        let page = manager
            .poll(task.id().as_str(), cursor, 7_777)
            .expect("poll");
        paged.extend_from_slice(&page.data);
        cursor = page.next_cursor;
        if page.eof {
            break;
        }
    }
    assert_eq!(paged, expected);

    // A small output stays in memory and leaves nothing on disk.
    let small = manager
        .spawn(
            ProcessTask::shell("echo small"),
            SpawnOptions::foreground().no_timeout(),
        )
        .expect("spawn");
    small.wait_foreground().await;
    let info = manager.info(small.id().as_str()).expect("info");
    assert!(!info.output.spilled);
    assert_eq!(read_all(&manager, small.id().as_str()), b"small\n");
    assert!(!dir.path().join("tasks").join(small.id().as_str()).exists());
}

/// A turn's end is a "read now": what the task wrote before it (gathered
/// for the log up to 20 ms) is in the log by the time the turn is announced,
/// so a reader of the task's folder (another process, the CLI) right after
/// the `turn_ended` notification sees every byte; so does a watch match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turns_end_and_a_watch_match_put_what_came_before_in_the_log() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tasks = manager.root().join("tasks");
    let task = manager
        .spawn(
            FnTask::new("one turn", move |ctx| async move {
                let log = tasks.join(ctx.id().as_str()).join("output.log");
                ctx.stdout("the final message\n");
                ctx.turn_ended(1, "turn 1 ended");
                // Read at once: no timer has had its 20 ms.
                let after_turn = std::fs::read_to_string(&log).unwrap_or_default();
                ctx.stdout("a watched line\n");
                let after_match = std::fs::read_to_string(&log).unwrap_or_default();
                Ok(json!({"after_turn": after_turn, "after_match": after_match}))
            }),
            SpawnOptions::background().watch(["^a watched"]),
        )
        .expect("spawn");
    let result = task.wait_end().await;
    let value = result.value.expect("value");
    assert_eq!(value["after_turn"], "the final message\n", "{value}");
    assert_eq!(
        value["after_match"], "the final message\na watched line\n",
        "{value}"
    );
}
