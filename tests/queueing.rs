//! Queueing over capacity through the public API: racing spawns keep the
//! cap exact, queued tasks start oldest first as others end, a queued task
//! can be cancelled (it never runs), and the default still refuses.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use agent_tasks::{
    BackgroundTask, CancelReason, Error, FnTask, ListFilter, ManagerConfig, SpawnOptions,
    TaskManager, TaskStatus,
};
use common::{manager_in_temp, wait_for};

/// Counts what runs at once and the order tasks start in.
#[derive(Default)]
struct Probe {
    running: AtomicUsize,
    most: AtomicUsize,
    started: Mutex<Vec<String>>,
}

impl Probe {
    fn started(&self) -> Vec<String> {
        self.started.lock().expect("lock").clone()
    }
}

/// A task that records its start, then runs until it is sent a message.
fn gated(probe: &Arc<Probe>) -> impl BackgroundTask {
    let probe = probe.clone();
    FnTask::new("gated", move |ctx| async move {
        let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
        probe.most.fetch_max(now, Ordering::SeqCst);
        probe
            .started
            .lock()
            .expect("lock")
            .push(ctx.id().to_string());
        ctx.recv().await;
        probe.running.fetch_sub(1, Ordering::SeqCst);
        Ok(serde_json::Value::Null)
    })
}

fn count(manager: &TaskManager, status: TaskStatus) -> usize {
    manager
        .list(&ListFilter::default())
        .iter()
        .filter(|i| i.status == status)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_spawns_keep_the_cap_and_all_run_in_turn() {
    let (manager, _dir) = manager_in_temp(
        ManagerConfig::default()
            .max_background(2)
            .queue_over_capacity(true),
    );
    let probe = Arc::new(Probe::default());
    const N: usize = 16;
    let barrier = Arc::new(Barrier::new(N));
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let manager = manager.clone();
            let probe = probe.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                manager
                    .spawn(gated(&probe), SpawnOptions::background())
                    .expect("spawn is queued, not refused")
                    .id()
                    .to_string()
            })
        })
        .collect();
    let ids: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(ids.len(), N);
    wait_for("two running, the rest queued", || {
        probe.started().len() == 2 && count(&manager, TaskStatus::Queued) == N - 2
    })
    .await;
    assert_eq!(count(&manager, TaskStatus::Running), 2);
    // Queued tasks are visible to poll too.
    let queued = manager
        .list(&ListFilter::default())
        .into_iter()
        .find(|i| i.status == TaskStatus::Queued)
        .expect("a queued task");
    assert_eq!(
        manager
            .poll(queued.id.as_str(), 0, 10)
            .expect("poll")
            .info
            .status,
        TaskStatus::Queued
    );
    // End them one at a time: each end starts the next queued task.
    for done in 0..N {
        wait_for("a started task", || probe.started().len() > done).await;
        let id = probe.started()[done].clone();
        manager.send(&id, "go").expect("send");
        manager.collect(&id, None).await.expect("collect");
    }
    assert_eq!(probe.most.load(Ordering::SeqCst), 2, "the cap was exceeded");
    assert_eq!(count(&manager, TaskStatus::Completed), N);
    let mut started = probe.started();
    started.sort();
    let mut all = ids.clone();
    all.sort();
    assert_eq!(started, all, "every task ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_tasks_start_in_fifo_order() {
    let (manager, _dir) = manager_in_temp(
        ManagerConfig::default()
            .max_background(1)
            .queue_over_capacity(true),
    );
    let probe = Arc::new(Probe::default());
    let mut ids = Vec::new();
    for _ in 0..5 {
        let handle = manager
            .spawn(gated(&probe), SpawnOptions::background())
            .expect("spawn");
        ids.push(handle.id().to_string());
    }
    for (i, id) in ids.iter().enumerate() {
        wait_for("its start", || probe.started().len() > i).await;
        assert_eq!(&probe.started()[i], id, "started out of order");
        assert_eq!(probe.started().len(), i + 1);
        manager.send(id, "go").expect("send");
        manager.collect(id, None).await.expect("collect");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_task_can_be_cancelled_and_never_runs() {
    let (manager, _dir) = manager_in_temp(
        ManagerConfig::default()
            .max_background(1)
            .queue_over_capacity(true),
    );
    let probe = Arc::new(Probe::default());
    let first = manager
        .spawn(gated(&probe), SpawnOptions::background())
        .expect("spawn")
        .id()
        .to_string();
    let second = manager
        .spawn(gated(&probe), SpawnOptions::background())
        .expect("spawn")
        .id()
        .to_string();
    assert_eq!(
        manager.info(&second).expect("info").status,
        TaskStatus::Queued
    );
    let info = tokio::time::timeout(
        Duration::from_secs(30),
        manager.cancel(&second, CancelReason::user("not needed")),
    )
    .await
    .expect("cancel in time")
    .expect("cancel");
    assert_eq!(info.status, TaskStatus::Cancelled);
    // The slot is still the first task's; ending it frees it for the next.
    manager.send(&first, "go").expect("send");
    manager.collect(&first, None).await.expect("collect");
    let third = manager
        .spawn(gated(&probe), SpawnOptions::background())
        .expect("spawn")
        .id()
        .to_string();
    wait_for("the third to start", || probe.started().len() == 2).await;
    assert_eq!(probe.started(), vec![first, third.clone()]);
    manager.send(&third, "go").expect("send");
    manager.collect(&third, None).await.expect("collect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_option_a_full_cap_still_refuses() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().max_background(1));
    let probe = Arc::new(Probe::default());
    let first = manager
        .spawn(gated(&probe), SpawnOptions::background())
        .expect("spawn")
        .id()
        .to_string();
    let err = manager
        .spawn(gated(&probe), SpawnOptions::background())
        .expect_err("refused");
    assert!(matches!(err, Error::CapacityExceeded { .. }), "{err:?}");
    manager.send(&first, "go").expect("send");
    manager.collect(&first, None).await.expect("collect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_show_a_queued_task_and_its_timeout_counts_from_its_start() {
    let (manager, _dir) = manager_in_temp(
        ManagerConfig::default()
            .max_background(1)
            .queue_over_capacity(true),
    );
    let tools = agent_tasks::tools::ToolBox::new(manager.clone(), "session-1");
    let probe = Arc::new(Probe::default());
    let first = manager
        .spawn(gated(&probe), SpawnOptions::background().owner("session-1"))
        .expect("spawn")
        .id()
        .to_string();
    let answer = tools
        .call(
            "task_run",
            serde_json::json!({"command": "echo started", "background": true, "timeout": 0.2}),
        )
        .await;
    assert!(answer.text.contains("status: queued"), "{}", answer.text);
    let queued = answer.json["task_id"].as_str().expect("id").to_string();
    let list = tools.call("task_list", serde_json::json!({})).await;
    assert!(
        list.text.contains(&queued) && list.text.contains("queued"),
        "{}",
        list.text
    );
    // Longer in the queue than its 0.2 s timeout: the timeout has not run.
    let outcome = manager
        .collect(&queued, Some(Duration::from_millis(500)))
        .await
        .expect("collect");
    assert!(outcome.result().is_none(), "{outcome:?}");
    assert_eq!(
        manager.info(&queued).expect("info").status,
        TaskStatus::Queued
    );
    manager.send(&first, "go").expect("send");
    let result = manager
        .collect(&queued, Some(Duration::from_secs(30)))
        .await
        .expect("collect");
    let result = result.result().expect("ended");
    assert_eq!(result.status, TaskStatus::Completed);
    assert_eq!(common::read_all(&manager, &queued), b"started\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_cap_queues_background_tasks_and_refuses_foreground_ones() {
    let (manager, _dir) = manager_in_temp(
        ManagerConfig::default()
            .max_running_of_kind("fn", 1)
            .queue_over_capacity(true),
    );
    let probe = Arc::new(Probe::default());
    let first = manager
        .spawn(gated(&probe), SpawnOptions::background())
        .expect("spawn")
        .id()
        .to_string();
    let second = manager
        .spawn(gated(&probe), SpawnOptions::background())
        .expect("queued")
        .id()
        .to_string();
    assert_eq!(
        manager.info(&second).expect("info").status,
        TaskStatus::Queued
    );
    let err = manager
        .spawn(gated(&probe), SpawnOptions::foreground())
        .expect_err("a foreground task is never queued");
    assert!(matches!(err, Error::CapacityExceeded { .. }), "{err:?}");
    manager.send(&first, "go").expect("send");
    manager.collect(&first, None).await.expect("collect");
    wait_for("the second to start", || probe.started().len() == 2).await;
    assert_eq!(probe.started(), vec![first, second.clone()]);
    manager.send(&second, "go").expect("send");
    manager.collect(&second, None).await.expect("collect");
    assert_eq!(probe.most.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_task_is_announced_and_its_duration_counts_from_its_start() {
    use agent_tasks::{EventItem, EventKind};

    let (manager, _dir) = manager_in_temp(
        ManagerConfig::default()
            .max_background(1)
            .queue_over_capacity(true),
    );
    let probe = Arc::new(Probe::default());
    let mut events = manager.subscribe();
    let first = manager
        .spawn(gated(&probe), SpawnOptions::background())
        .expect("spawn")
        .id()
        .to_string();
    let queued = manager
        .spawn(gated(&probe), SpawnOptions::background())
        .expect("spawn is queued")
        .id()
        .to_string();
    let info = manager.info(&queued).expect("info");
    assert_eq!(info.status, TaskStatus::Queued);
    assert_eq!(info.duration_ms, 0, "a queued task has no run time");

    // Let the queue wait be long against the run: at least a second.
    let created = info.created_at_ms;
    wait_for("a second in the queue", || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        now >= created + 1000
    })
    .await;
    manager.send(&first, "go").expect("release the first");
    wait_for("the queued task to run", || {
        probe.started().contains(&queued)
    })
    .await;
    manager.send(&queued, "go").expect("release the second");
    let result = manager
        .collect(&queued, Some(Duration::from_secs(30)))
        .await
        .expect("collect")
        .result()
        .cloned()
        .expect("finished");
    let info = manager.info(&queued).expect("info");
    let lifetime = info.finished_at_ms.expect("finished") - created;
    assert!(
        result.duration_ms + 900 <= lifetime,
        "the wait in the queue counted as run time: {} ms of {lifetime} ms",
        result.duration_ms
    );
    assert_eq!(info.duration_ms, result.duration_ms);

    // The queued event came first, then the start.
    let mut seen = Vec::new();
    while let Some(item) = events.try_recv() {
        if let EventItem::Event(event) = item {
            if event.task_id.as_str() == queued {
                if let EventKind::Queued { kind, owner, .. } = &event.kind {
                    assert_eq!(
                        (kind.as_str(), owner.as_str()),
                        (info.kind.as_str(), "default")
                    );
                }
                seen.push(event.kind.type_name());
            }
        }
    }
    assert_eq!(&seen[..2], ["task.queued", "task.started"], "{seen:?}");
}

/// Issue 20 item 6: a slot freed after `shutdown` began must not start a
/// queued task. Racing: running tasks end (freeing slots) while shutdown
/// goes through the tasks. Certain: keep-alive tasks hold the slots through
/// the shutdown and end after it, when keep-alive tasks are queued too.
/// Every queued task would leave a mark if it ever ran; none may, and each
/// ends cancelled by the shutdown, saying it never started (no
/// `task.started` in its events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_starts_no_queued_task() {
    let (manager, dir) = manager_in_temp(
        ManagerConfig::default()
            .max_background(2)
            .queue_over_capacity(true),
    );
    let ran = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    // Ends on a message or on a cancel; marks a run past the first two.
    let task = |running: &Arc<AtomicUsize>, ran: &Arc<AtomicUsize>| {
        let (running, ran) = (running.clone(), ran.clone());
        FnTask::new("marked", move |ctx| async move {
            if running.fetch_add(1, Ordering::SeqCst) >= 2 {
                ran.fetch_add(1, Ordering::SeqCst);
            }
            tokio::select! {
                _ = ctx.recv() => {}
                _ = ctx.cancelled() => {}
            }
            Ok(serde_json::Value::Null)
        })
    };
    const QUEUED: usize = 600;
    let mut ids = Vec::new();
    for n in 0..QUEUED + 2 {
        // The two that run, and every other queued one, are kept alive.
        let keep_alive = n < 2 || n % 2 == 0;
        let handle = manager
            .spawn(
                task(&running, &ran),
                SpawnOptions::background().keep_alive(keep_alive),
            )
            .expect("spawn is queued, not refused");
        ids.push(handle.id().to_string());
    }
    wait_for("two running", || running.load(Ordering::SeqCst) == 2).await;
    assert_eq!(count(&manager, TaskStatus::Queued), QUEUED);
    tokio::time::timeout(Duration::from_secs(120), manager.shutdown("host exits"))
        .await
        .expect("shutdown in time");
    // The kept-alive running tasks end now: their slots start nothing.
    for id in &ids[..2] {
        manager.send(id, "go").expect("send");
        manager.collect(id, None).await.expect("collect");
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a queued task ran");
    assert_eq!(running.load(Ordering::SeqCst), 2, "a queued task started");
    for id in &ids[2..] {
        let info = manager.info(id).expect("info");
        assert_eq!(info.status, TaskStatus::Cancelled, "{id}");
        let reason = info.cancel_reason.as_ref().expect("a reason");
        assert_eq!(reason.kind, agent_tasks::CancelKind::Shutdown, "{id}");
        assert_eq!(info.duration_ms, 0, "{id} has run time");
        let error = info.error.as_deref().unwrap_or_default();
        assert!(error.contains("never started"), "{id}: {error:?}");
        let events =
            std::fs::read_to_string(dir.path().join("tasks").join(id).join("events.jsonl"))
                .expect("the task's events");
        assert!(
            !events.contains("\"task.started\""),
            "{id} started: {events}"
        );
    }
    assert_eq!(count(&manager, TaskStatus::Queued), 0);
}
