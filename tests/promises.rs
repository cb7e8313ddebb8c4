//! The core's promises under the pressure a production host applies: a
//! reader racing a spill or a detach never sees a false gap; any `Duration`
//! is accepted; detaches respect the background caps; a dropped manager
//! keeps its root locked until its last writer is done; the lock cannot be
//! defeated by removing files; a temporary root is not re-created; a task
//! that ended by itself is not recorded as cancelled.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent_tasks::{
    async_trait, BackgroundTask, CancelKind, CancelReason, CollectOutcome, FnTask,
    ForegroundOutcome, ListFilter, ManagerConfig, OnTimeout, ProcessTask, SpawnOptions,
    TaskContext, TaskManager, TaskOutcome, TaskStatus,
};
use common::{manager_in_temp, process_is_dead, wait_for};
use serde_json::json;

/// Byte `i` of the streams the racing tests write.
fn byte(i: u64) -> u8 {
    b'a' + (i % 26) as u8
}

/// Polls `id` from cursor 0 until eof, on another thread, checking every
/// byte and that nothing is ever reported omitted.
fn racing_reader(manager: TaskManager, id: String) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut cursor = 0u64;
        let mut n = 0u64;
        loop {
            let page = manager
                .poll(&id, cursor, 1 + (n as usize * 7919) % 300_000)
                .expect("poll");
            assert_eq!(
                page.omitted_bytes, 0,
                "a false gap at cursor {cursor} (no disk cap was reached)"
            );
            for (i, b) in page.data.iter().enumerate() {
                assert_eq!(*b, byte(cursor + i as u64), "byte {}", cursor + i as u64);
            }
            // Previews and tails race the same moves.
            let preview = manager.preview(&id, 100, 1000).expect("preview");
            assert!(preview.omitted_bytes <= preview.total_bytes);
            cursor = page.next_cursor;
            n += 1;
            if page.eof {
                return cursor;
            }
        }
    })
}

/// A function task that writes `total` bytes in chunks of varied sizes,
/// yielding now and then so readers and detaches interleave.
fn flood(total: u64) -> impl BackgroundTask {
    FnTask::new("flood", move |ctx| async move {
        let mut at = 0u64;
        let mut n = 0u64;
        while at < total {
            let len = (1 + (n * 104_729) % 20_000).min(total - at);
            let chunk: Vec<u8> = (at..at + len).map(byte).collect();
            ctx.stdout(chunk);
            at += len;
            n += 1;
            if n.is_multiple_of(8) {
                tokio::task::yield_now().await;
            }
        }
        Ok(json!({ "bytes": total }))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_racing_an_overflow_spill_sees_no_false_gap() {
    for _ in 0..5 {
        let (manager, _dir) = manager_in_temp(ManagerConfig::default().memory_limit(256 * 1024));
        const TOTAL: u64 = 6 * 1024 * 1024;
        let task = manager
            .spawn(flood(TOTAL), SpawnOptions::foreground().no_timeout())
            .expect("spawn");
        let reader = racing_reader(manager.clone(), task.id().to_string());
        task.wait_foreground().await;
        assert_eq!(reader.join().expect("reader"), TOTAL);
        let info = manager.info(task.id().as_str()).expect("info");
        assert!(info.output.spilled);
        assert_eq!(info.output.omitted_bytes, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_racing_a_detach_sees_no_false_gap() {
    for round in 0..5u64 {
        let (manager, _dir) = manager_in_temp(ManagerConfig::default());
        const TOTAL: u64 = 4 * 1024 * 1024;
        let task = manager
            .spawn(flood(TOTAL), SpawnOptions::foreground().no_timeout())
            .expect("spawn");
        let id = task.id().to_string();
        let reader = racing_reader(manager.clone(), id.clone());
        let detach_at = 100_000 * (round + 1);
        wait_for("some output", || {
            manager.info(&id).expect("info").output.total_bytes >= detach_at
        })
        .await;
        manager.detach(&id).expect("detach");
        let outcome = manager.collect(&id, None).await.expect("collect");
        assert_eq!(
            outcome.result().map(|r| r.status),
            Some(TaskStatus::Completed)
        );
        assert_eq!(reader.join().expect("reader"), TOTAL);
    }
}

/// A process task that ends when asked to (SIGTERM kills `sleep`).
fn sleeper() -> ProcessTask {
    ProcessTask::argv(["sleep", "1000"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_duration_is_accepted_and_huge_means_no_deadline() {
    let config = ManagerConfig::default()
        .foreground_timeout(Some(Duration::MAX))
        .background_timeout(Some(Duration::MAX))
        .stop_grace(Duration::MAX)
        .max_background(4);
    let (manager, _dir) = manager_in_temp(config);
    let huge = SpawnOptions::background()
        .timeout(Duration::MAX)
        .background_timeout(Some(Duration::MAX))
        .watch(["^ready$"])
        .watch_interval(Duration::MAX)
        .heartbeat(Duration::MAX)
        .idle_timeout(Duration::MAX);
    let process = manager
        .spawn(
            sleeper()
                .kill_grace(Duration::MAX)
                .drain_grace(Duration::MAX),
            huge.clone(),
        )
        .expect("spawn with huge durations");
    let function = manager
        .spawn(
            FnTask::new("waits", |ctx| async move {
                // Two matches: the second falls inside the (huge) watch
                // interval that the first one set.
                ctx.stdout("ready\nready\n");
                let reason = ctx.cancelled().await;
                Ok(json!(reason.to_string()))
            }),
            huge,
        )
        .expect("spawn");
    wait_for("the function's output", || {
        manager
            .info(function.id().as_str())
            .is_ok_and(|i| i.output.total_bytes == 12)
    })
    .await;
    assert_eq!(
        manager.info(function.id().as_str()).expect("info").status,
        TaskStatus::Running,
        "a watch match under a huge interval ended the task"
    );
    // Pausing and resuming moves the (absent) deadlines by the pause.
    manager.pause(process.id().as_str()).await.expect("pause");
    manager.resume(process.id().as_str()).await.expect("resume");
    let foreground = manager
        .spawn(
            sleeper(),
            SpawnOptions::foreground()
                .timeout(Duration::MAX)
                .on_timeout(OnTimeout::Kill),
        )
        .expect("spawn");
    // Waits with huge timeouts answer (the task is running, so zero answers
    // at once; huge waits are bounded by the cancels below).
    for id in [process.id(), function.id(), foreground.id()] {
        let outcome = manager
            .collect(id.as_str(), Some(Duration::ZERO))
            .await
            .expect("collect");
        assert!(matches!(outcome, CollectOutcome::StillRunning(_)));
    }
    let collector = {
        let manager = manager.clone();
        let id = function.id().to_string();
        tokio::spawn(async move { manager.collect(&id, Some(Duration::MAX)).await })
    };
    // Waits for output with huge timeouts end with the task.
    let waiter = {
        let manager = manager.clone();
        let id = function.id().to_string();
        tokio::spawn(async move {
            let until = agent_tasks::WaitUntil::Output {
                regex: regex::Regex::new("never printed").expect("regex"),
                from_cursor: 0,
            };
            manager.wait_for(&id, until, Some(Duration::MAX)).await
        })
    };
    let page_waiter = {
        let manager = manager.clone();
        let id = function.id().to_string();
        tokio::spawn(async move { manager.poll_wait(&id, 12, 1024, Some(Duration::MAX)).await })
    };
    for id in [process.id(), function.id(), foreground.id()] {
        let info = manager
            .cancel(id.as_str(), CancelReason::user("done"))
            .await
            .expect("cancel");
        assert_eq!(info.status, TaskStatus::Cancelled, "{id}");
    }
    let collected = collector.await.expect("join").expect("collect");
    let ended = collected.result().expect("a result");
    // The function returned by itself, after its cancel: no panic ended it.
    assert_eq!(ended.error, None, "{ended:?}");
    assert_eq!(ended.value, Some(json!("cancelled: done")), "{ended:?}");
    let waited = waiter.await.expect("join").expect("wait_for");
    assert!(
        matches!(waited, agent_tasks::WaitOutcome::Ended(_)),
        "{waited:?}"
    );
    let page = page_waiter.await.expect("join").expect("poll_wait");
    assert!(page.eof, "{page:?}");
    // No slot stays taken: four more background tasks fit the cap of 4.
    for _ in 0..4 {
        let t = manager
            .spawn(ProcessTask::shell("true"), SpawnOptions::background())
            .expect("a free slot");
        manager
            .collect(t.id().as_str(), None)
            .await
            .expect("collect");
    }
    // The shutdown waits, and the exit hook's wait, take any duration.
    assert!(manager.shutdown_within("done", Duration::MAX).await);
    assert_eq!(
        tokio::task::block_in_place(|| manager.kill_processes_now(Duration::MAX)),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detach_over_the_background_cap_is_refused_and_the_task_stays_foreground() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().max_background(2));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            manager
                .spawn(sleeper(), SpawnOptions::foreground().no_timeout())
                .expect("spawn")
        })
        .collect();
    let mut refused = 0;
    for task in &tasks {
        match manager.detach(task.id().as_str()) {
            Ok(info) => assert!(!info.foreground && info.detached),
            Err(e) => {
                assert_eq!(e.code(), "CAPACITY_EXCEEDED", "{e}");
                let info = task.info();
                assert!(info.foreground && !info.detached);
                assert_eq!(info.status, TaskStatus::Running);
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 2);
    let background = manager.list(&ListFilter::default().active());
    assert_eq!(background.iter().filter(|t| !t.foreground).count(), 2);
    // A refused task is untouched: it can still be detached once a slot frees.
    manager
        .cancel(tasks[0].id().as_str(), CancelReason::user(""))
        .await
        .expect("cancel");
    manager
        .detach(tasks[2].id().as_str())
        .expect("a slot is free now");
    for task in &tasks {
        manager
            .cancel(task.id().as_str(), CancelReason::user(""))
            .await
            .expect("cancel");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_detach_over_the_cap_times_the_task_out_and_says_why() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().max_background(1));
    let holder = manager
        .spawn(sleeper(), SpawnOptions::background().no_timeout())
        .expect("spawn");
    let task = manager
        .spawn(
            sleeper(),
            SpawnOptions::foreground()
                .timeout(Duration::from_millis(100))
                .on_timeout(OnTimeout::Detach),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(result) = task.wait_foreground().await else {
        panic!("the task must not move to a full background");
    };
    assert_eq!(result.status, TaskStatus::TimedOut);
    let reason = result.cancel_reason.expect("a reason");
    assert_eq!(reason.kind, CancelKind::Timeout);
    assert!(
        reason.message.as_deref().unwrap_or("").contains("capacity"),
        "{reason:?}"
    );
    assert_eq!(manager.list(&ListFilter::default().active()).len(), 1);
    manager
        .cancel(holder.id().as_str(), CancelReason::user(""))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_manager_keeps_its_root_until_its_last_writer_is_done() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = TaskManager::open(dir.path()).expect("open");
    // Ignores SIGTERM: it lives through its kill grace after the drop.
    let task = manager
        .spawn(
            ProcessTask::shell("trap '' TERM; echo ready; while :; do sleep 0.05; done")
                .kill_grace(Duration::from_millis(1500)),
            SpawnOptions::background().no_timeout(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("the trap to be set", || {
        manager.info(&id).expect("info").output.total_bytes > 0
    })
    .await;
    drop(task);
    drop(manager);
    let err = TaskManager::open(dir.path()).expect_err("the old driver still writes");
    assert_eq!(err.code(), "ROOT_IN_USE");
    let mut reopened = None;
    wait_for("the root to be free", || {
        reopened = TaskManager::open(dir.path()).ok();
        reopened.is_some()
    })
    .await;
    let reopened = reopened.expect("reopened");
    // One consistent story: the task was cancelled by the drop, not lost.
    let info = reopened.info(&id).expect("info");
    assert_eq!(info.status, TaskStatus::Cancelled);
    assert_eq!(info.orphan_pid, None);
    assert!(reopened.notifications(None).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_files_in_the_root_does_not_defeat_its_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = TaskManager::open(dir.path()).expect("open");
    for entry in std::fs::read_dir(dir.path()).expect("read") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("remove");
        } else {
            std::fs::remove_file(&path).expect("remove");
        }
    }
    let err = TaskManager::open(dir.path()).expect_err("still locked");
    assert_eq!(err.code(), "ROOT_IN_USE");
    drop(first);
    TaskManager::open(dir.path()).expect("free once the manager is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_root_is_removed_once_its_last_task_ends() {
    let manager = TaskManager::new(ManagerConfig::default()).expect("manager");
    let root = manager.root().to_path_buf();
    let release = Arc::new(tokio::sync::Notify::new());
    let task = manager
        .spawn(
            FnTask::new("slow to stop", {
                let release = release.clone();
                move |ctx| async move {
                    ctx.stdout("working\n");
                    ctx.cancelled().await;
                    release.notified().await;
                    ctx.stdout("stopping\n");
                    Ok(json!(null))
                }
            }),
            SpawnOptions::background().no_timeout(),
        )
        .expect("spawn");
    drop(task);
    drop(manager);
    assert!(root.exists(), "the task still runs and may write");
    release.notify_one();
    wait_for("the temporary root to be removed", || !root.exists()).await;
    // Give a late writer a chance to re-create it: it must not.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !root.exists(),
        "the task's end re-created the temporary root"
    );
}

/// Ends only when stopped, but reports that it had finished on its own.
struct FinishedBeforeTheStop(Arc<AtomicBool>);

#[async_trait]
impl BackgroundTask for FinishedBeforeTheStop {
    fn kind(&self) -> &str {
        "racer"
    }
    fn description(&self) -> String {
        "ends on its own as the stop arrives".to_string()
    }
    async fn run(self: Box<Self>, ctx: TaskContext) -> TaskOutcome {
        self.0.store(true, Ordering::SeqCst);
        ctx.cancelled().await;
        TaskOutcome::completed(json!("done")).ended_on_its_own()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_ended_on_its_own_before_the_stop_is_not_cancelled() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let started = Arc::new(AtomicBool::new(false));
    let task = manager
        .spawn(
            FinishedBeforeTheStop(started.clone()),
            SpawnOptions::background(),
        )
        .expect("spawn");
    wait_for("the task to start", || started.load(Ordering::SeqCst)).await;
    let info = manager
        .cancel(task.id().as_str(), CancelReason::user("too late"))
        .await
        .expect("cancel");
    assert_eq!(info.status, TaskStatus::Completed);
    assert_eq!(info.cancel_reason, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_exited_zero_before_the_cancel_is_completed() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    // The shell exits 0 at once; a grandchild holds stdout, so the task is
    // still draining (running) when the cancel comes.
    let task = manager
        .spawn(
            ProcessTask::shell("sleep 30 & echo $$; exit 0").drain_grace(Duration::from_secs(30)),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let mut shell_pid = 0u32;
    wait_for("the shell's pid", || {
        let text = manager.poll(&id, 0, 100).expect("poll").text();
        shell_pid = text.trim().parse().unwrap_or(0);
        shell_pid > 0
    })
    .await;
    wait_for("the shell to exit", || process_is_dead(shell_pid)).await;
    assert_eq!(task.info().status, TaskStatus::Running);
    let info = manager
        .cancel(&id, CancelReason::user("too late"))
        .await
        .expect("cancel");
    assert_eq!(info.status, TaskStatus::Completed, "{info:?}");
    assert_eq!(info.exit.and_then(|e| e.code), Some(0));
}

/// A foreground task whose output spilled to disk and that ended at once has
/// its end saved in its folder by the time its wait returns (the spill's
/// manifest save ran on the blocking pool and could land after the end's
/// decision, which then skipped `result.json`); and once `shutdown` returns
/// nothing more is written, so the root can be removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spilled_foreground_end_is_saved_and_nothing_is_written_after_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let manager = TaskManager::new(ManagerConfig::default().root(&root).memory_limit(16 * 1024))
        .expect("open");
    for _ in 0..20 {
        let task = manager
            .spawn(
                ProcessTask::shell("head -c 100000 /dev/zero"),
                SpawnOptions::foreground(),
            )
            .expect("spawn");
        let result = match task.wait_foreground().await {
            ForegroundOutcome::Finished(result) => result,
            other => panic!("not finished: {other:?}"),
        };
        assert_eq!(result.status, TaskStatus::Completed);
        let folder = root.join("tasks").join(task.id().as_str());
        assert!(
            folder.join("result.json").exists(),
            "the spilled task's end is not saved"
        );
        let manifest = std::fs::read_to_string(folder.join("manifest.json")).expect("manifest");
        assert!(manifest.contains("\"completed\""), "{manifest}");
    }
    manager.shutdown("test").await;
    std::fs::remove_dir_all(&root).expect("nothing writes into the root after shutdown");
}
