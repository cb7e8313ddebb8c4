//! The lifecycle through the public API: foreground and background,
//! timeouts with each policy, capacity caps under racing spawns, function
//! tasks (steering, cancel reasons, panics), listing, shutdown, bad ids, and
//! that finished tasks leave nothing running on the runtime.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use agent_tasks::{
    CancelKind, CancelReason, CollectOutcome, Error, FnTask, ForegroundOutcome, ListFilter,
    ManagerConfig, OnTimeout, ProcessTask, SpawnOptions, TaskManager, TaskStatus,
};
use common::{manager_in_temp, wait_for};
use serde_json::json;

/// A function task that waits for its cancel and returns the reason.
fn waits_for_cancel() -> impl agent_tasks::BackgroundTask {
    FnTask::new("wait for cancel", |ctx| async move {
        let reason = ctx.cancelled().await;
        Ok(json!({ "stopped_because": reason.to_string() }))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_timeout_kill_policy_times_the_task_out() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::foreground()
                .timeout(Duration::from_millis(100))
                .on_timeout(OnTimeout::Kill),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(result) = task.wait_foreground().await else {
        panic!("expected Finished");
    };
    assert_eq!(result.status, TaskStatus::TimedOut);
    assert_eq!(
        result.cancel_reason.map(|r| r.kind),
        Some(CancelKind::Timeout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_timeout_detach_policy_moves_it_to_the_background() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("echo started; sleep 1000"),
            SpawnOptions::foreground()
                .timeout(Duration::from_millis(100))
                .on_timeout(OnTimeout::Detach),
        )
        .expect("spawn");
    let ForegroundOutcome::Detached(info) = task.wait_foreground().await else {
        panic!("expected Detached");
    };
    assert_eq!(info.status, TaskStatus::Running);
    // By id too: a detached task answers at once.
    let by_id = manager
        .wait_foreground(task.id().as_str())
        .await
        .expect("wait by id");
    assert!(matches!(by_id, ForegroundOutcome::Detached(_)));
    assert!(info.detached && info.output.spilled);
    let still = manager
        .collect(task.id().as_str(), Some(Duration::ZERO))
        .await
        .expect("collect");
    assert!(matches!(still, CollectOutcome::StillRunning(_)));
    let listed = manager.list(&ListFilter::default().active());
    assert_eq!(listed.len(), 1);
    let info = manager
        .cancel(task.id().as_str(), CancelReason::user("done"))
        .await
        .expect("cancel");
    assert_eq!(info.status, TaskStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_timeout_times_out() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::background().timeout(Duration::from_millis(100)),
        )
        .expect("spawn");
    let done = manager
        .collect(task.id().as_str(), None)
        .await
        .expect("collect");
    assert_eq!(
        done.result().expect("finished").status,
        TaskStatus::TimedOut
    );
}

#[test]
fn racing_background_spawns_against_a_cap_give_exactly_k_successes() {
    const RACERS: usize = 16;
    const CAP: usize = 5;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let manager = TaskManager::with_runtime(
        ManagerConfig::default().max_background(CAP),
        runtime.handle().clone(),
    )
    .expect("manager");
    let barrier = Arc::new(Barrier::new(RACERS));
    let threads: Vec<_> = (0..RACERS)
        .map(|_| {
            let manager = manager.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                manager.spawn(waits_for_cancel(), SpawnOptions::background())
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, CAP);
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, Error::CapacityExceeded { limit: CAP, .. }),
                "{e}"
            );
            assert_eq!(e.code(), "CAPACITY_EXCEEDED");
        }
    }
    runtime.block_on(async {
        // Foreground tasks are not capped; a slot frees when a task ends.
        manager
            .spawn(waits_for_cancel(), SpawnOptions::foreground())
            .expect("foreground");
        let first = results.iter().find_map(|r| r.as_ref().ok()).expect("one");
        manager
            .cancel(first.id().as_str(), CancelReason::user(""))
            .await
            .expect("cancel");
        manager
            .spawn(waits_for_cancel(), SpawnOptions::background())
            .expect("a freed slot");
        manager.shutdown("test over").await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_owner_cap_counts_each_owner_apart() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().max_background_per_owner(1));
    manager
        .spawn(
            waits_for_cancel(),
            SpawnOptions::background().owner("alice"),
        )
        .expect("alice 1");
    manager
        .spawn(waits_for_cancel(), SpawnOptions::background().owner("bob"))
        .expect("bob 1");
    let err = manager
        .spawn(
            waits_for_cancel(),
            SpawnOptions::background().owner("alice"),
        )
        .expect_err("alice 2");
    assert!(err.to_string().contains("alice"), "{err}");
    assert_eq!(manager.list(&ListFilter::owner("alice")).len(), 1);
    manager.shutdown("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_fn_task_fails_and_the_manager_keeps_working() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            FnTask::new("panics", |_ctx| async move {
                if std::env::var_os("NEVER_SET_XYZ").is_none() {
                    panic!("the subagent tripped");
                }
                Ok(json!(null))
            }),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(result) = task.wait_foreground().await else {
        panic!()
    };
    assert_eq!(result.status, TaskStatus::Failed);
    assert!(result
        .error
        .expect("error")
        .contains("the subagent tripped"));
    let next = manager
        .spawn(
            FnTask::new("fine", |_ctx| async move { Ok(json!(42)) }),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(result) = next.wait_foreground().await else {
        panic!()
    };
    assert_eq!(result.status, TaskStatus::Completed);
    assert_eq!(result.value, Some(json!(42)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fn_task_is_steered_and_sees_its_cancel_reason() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            FnTask::new("steerable", |ctx| async move {
                let mut heard = Vec::new();
                loop {
                    tokio::select! {
                        msg = ctx.recv() => match msg {
                            Some(m) => {
                                ctx.stdout(format!("heard {}\n", m.text()));
                                heard.push(m.text());
                            }
                            None => break,
                        },
                        reason = ctx.cancelled() => {
                            return Ok(json!({ "heard": heard, "reason": reason.message }));
                        }
                    }
                }
                Ok(json!({ "heard": heard }))
            })
            .kind("subagent"),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    assert!(id.starts_with("subagent-"));
    manager.send(&id, "look at the tests").expect("send");
    manager.send(&id, "then the docs").expect("send");
    wait_for("both messages", || {
        manager.poll(&id, 0, 1000).expect("poll").text()
            == "heard look at the tests\nheard then the docs\n"
    })
    .await;
    let info = manager
        .cancel(&id, CancelReason::user("enough"))
        .await
        .expect("cancel");
    assert_eq!(info.status, TaskStatus::Cancelled);
    let CollectOutcome::Finished(result) = manager.collect(&id, None).await.expect("collect")
    else {
        panic!()
    };
    assert_eq!(
        result.value,
        Some(json!({ "heard": ["look at the tests", "then the docs"], "reason": "enough" }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fn_task_that_ignores_cancel_is_dropped_after_the_grace() {
    let (manager, _dir) =
        manager_in_temp(ManagerConfig::default().stop_grace(Duration::from_millis(100)));
    let task = manager
        .spawn(
            FnTask::new("stubborn", |_ctx| async move {
                std::future::pending::<()>().await;
                Ok(json!(null))
            }),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let info = manager
        .cancel(task.id().as_str(), CancelReason::user(""))
        .await
        .expect("cancel");
    assert_eq!(info.status, TaskStatus::Cancelled);
    assert!(info.error.expect("error").contains("grace"));
}

#[test]
fn a_runtime_with_only_finished_tasks_has_nothing_left_running() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let manager = TaskManager::with_runtime(
        ManagerConfig::default()
            .foreground_timeout(Some(Duration::from_secs(3600)))
            .background_timeout(Some(Duration::from_secs(3600))),
        runtime.handle().clone(),
    )
    .expect("manager");
    runtime.block_on(async {
        let fg = manager
            .spawn(ProcessTask::argv(["true"]), SpawnOptions::foreground())
            .expect("spawn");
        let bg = manager
            .spawn(
                FnTask::new("quick", |_| async { Ok(json!(1)) }),
                SpawnOptions::background(),
            )
            .expect("spawn");
        fg.wait_foreground().await;
        manager
            .collect(bg.id().as_str(), None)
            .await
            .expect("collect");
        // The timers of both tasks (an hour each) lived in their drivers; once
        // the drivers end, nothing is left on the runtime.
        let metrics = tokio::runtime::Handle::current().metrics();
        wait_for("the drivers to end", || metrics.num_alive_tasks() == 0).await;
    });
    drop(runtime);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_background_work_and_hides_finished_foreground_tasks() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let fg = manager
        .spawn(
            ProcessTask::argv(["true"]),
            SpawnOptions::foreground().owner("a"),
        )
        .expect("spawn");
    fg.wait_foreground().await;
    let bg = manager
        .spawn(
            ProcessTask::argv(["true"]),
            SpawnOptions::background().owner("a"),
        )
        .expect("spawn");
    manager
        .collect(bg.id().as_str(), None)
        .await
        .expect("collect");
    let running = manager
        .spawn(waits_for_cancel(), SpawnOptions::background().owner("b"))
        .expect("spawn");
    let all = manager.list(&ListFilter::default());
    let ids: Vec<_> = all.iter().map(|i| i.id.clone()).collect();
    assert_eq!(ids, vec![bg.id().clone(), running.id().clone()]);
    assert_eq!(manager.list(&ListFilter::owner("b")).len(), 1);
    assert_eq!(manager.list(&ListFilter::default().active()).len(), 1);
    let filter = ListFilter {
        statuses: Some(vec![TaskStatus::Completed]),
        ..Default::default()
    };
    assert_eq!(manager.list(&filter).len(), 1);
    // The finished foreground task still answers by id.
    assert_eq!(
        manager.info(fg.id().as_str()).expect("info").status,
        TaskStatus::Completed
    );
    manager.shutdown("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_all_but_keep_alive_and_refuses_new_work() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let plain = manager
        .spawn(waits_for_cancel(), SpawnOptions::background())
        .expect("spawn");
    let kept = manager
        .spawn(
            waits_for_cancel(),
            SpawnOptions::background().keep_alive(true),
        )
        .expect("spawn");
    manager.shutdown("host exiting").await;
    let info = manager.info(plain.id().as_str()).expect("info");
    assert_eq!(info.status, TaskStatus::Cancelled);
    assert_eq!(
        info.cancel_reason.map(|r| r.kind),
        Some(CancelKind::Shutdown)
    );
    assert_eq!(
        manager.info(kept.id().as_str()).expect("info").status,
        TaskStatus::Running
    );
    let err = manager
        .spawn(waits_for_cancel(), SpawnOptions::background())
        .expect_err("closed");
    assert!(matches!(err, Error::ShutDown));
    manager
        .cancel(kept.id().as_str(), CancelReason::user(""))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_ids_are_typed_errors() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let err = manager.info("process-zzzzzzzz").expect_err("unknown");
    assert!(matches!(err, Error::TaskNotFound { .. }));
    assert_eq!(err.code(), "TASK_NOT_FOUND");
    let long = "a".repeat(10_000);
    for bad in ["", "../x", "a/b", "%2e%2e", "process-..", long.as_str()] {
        assert!(
            matches!(manager.poll(bad, 0, 10), Err(Error::InvalidTaskId { .. })),
            "{bad:?}"
        );
        assert!(matches!(
            manager.detach(bad),
            Err(Error::InvalidTaskId { .. })
        ));
        assert!(matches!(
            manager.cancel(bad, CancelReason::user("")).await,
            Err(Error::InvalidTaskId { .. })
        ));
        assert!(matches!(
            manager.send(bad, "x"),
            Err(Error::InvalidTaskId { .. })
        ));
        assert!(matches!(
            manager.collect(bad, None).await,
            Err(Error::InvalidTaskId { .. })
        ));
    }
    let task = manager
        .spawn(
            ProcessTask::argv(["echo", "hi"]),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    task.wait_foreground().await;
    let err = manager
        .poll(task.id().as_str(), 999, 10)
        .expect_err("cursor past the end");
    assert!(
        matches!(err, Error::InvalidArgument { ref name, .. } if name == "cursor"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_sink_sees_every_chunk_and_its_errors_are_reported() {
    use std::sync::Mutex;
    #[derive(Default)]
    struct Tee(Mutex<Vec<u8>>);
    impl agent_tasks::Sink for Tee {
        fn write(&self, _stream: &agent_tasks::Stream, bytes: &[u8]) -> std::io::Result<()> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(())
        }
    }
    struct Broken;
    impl agent_tasks::Sink for Broken {
        fn write(&self, _: &agent_tasks::Stream, _: &[u8]) -> std::io::Result<()> {
            Err(std::io::Error::other("the UI went away"))
        }
    }
    let tee = Arc::new(Tee::default());
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().sink(tee.clone()));
    let task = manager
        .spawn(
            ProcessTask::argv(["seq", "1", "5"]),
            SpawnOptions::foreground().sink(Arc::new(Broken)),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(result) = task.wait_foreground().await else {
        panic!()
    };
    assert_eq!(
        result.status,
        TaskStatus::Completed,
        "a failing sink does not fail the task"
    );
    assert_eq!(tee.0.lock().expect("lock").as_slice(), b"1\n2\n3\n4\n5\n");
    let info = manager.info(task.id().as_str()).expect("info");
    assert_eq!(info.sink_error.as_deref(), Some("the UI went away"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_with_zero_timeout_answers_at_once() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(waits_for_cancel(), SpawnOptions::background())
        .expect("spawn");
    match manager
        .collect(task.id().as_str(), Some(Duration::ZERO))
        .await
        .expect("collect")
    {
        CollectOutcome::StillRunning(info) => assert_eq!(info.status, TaskStatus::Running),
        other => panic!("expected StillRunning, got {other:?}"),
    }
    manager
        .cancel(task.id().as_str(), CancelReason::user(""))
        .await
        .expect("cancel");
    match manager
        .collect(task.id().as_str(), Some(Duration::ZERO))
        .await
        .expect("collect")
    {
        CollectOutcome::Finished(r) => {
            assert_eq!(r.status, TaskStatus::Cancelled);
            assert_eq!(r.value, Some(json!({ "stopped_because": "cancelled" })));
        }
        other => panic!("expected Finished, got {other:?}"),
    }
}

/// `TaskHandle::wait_end` waits through a detach (where `wait_foreground`
/// returns) for the result, and still answers once the manager is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_end_waits_through_a_detach_and_outlives_the_manager() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("read line; echo \"got $line\"").interactive(true),
            SpawnOptions::foreground().no_timeout(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let end = tokio::spawn({
        let task = task.clone();
        async move { task.wait_end().await }
    });
    manager.detach(&id).expect("detach");
    let ForegroundOutcome::Detached(_) = task.wait_foreground().await else {
        panic!("expected Detached");
    };
    assert!(!end.is_finished(), "a detach does not end wait_end");
    manager.send(&id, "go\n").expect("send");
    let result = end.await.expect("join");
    assert_eq!(result.status, TaskStatus::Completed);
    // With the manager gone, the handle still answers with the result.
    drop(manager);
    assert_eq!(task.wait_end().await.status, TaskStatus::Completed);
}
