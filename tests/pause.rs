//! Pause and resume through the public API: output stops while paused and
//! goes on after; a timeout does not fire while paused (and fires later);
//! a paused task can be cancelled; function tasks are refused.

mod common;

use std::time::Duration;

use agent_tasks::{
    CancelReason, CollectOutcome, Error, EventItem, FnTask, ManagerConfig, ProcessTask,
    SpawnOptions, TaskStatus, WaitOutcome, WaitUntil,
};
use common::{manager_in_temp, process_is_dead, wait_for};

const LONG: Option<Duration> = Some(Duration::from_secs(30));
const COUNTER: &str = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.01; done";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_stops_while_paused_and_goes_on_after() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let mut events = manager.subscribe();
    let task = manager
        .spawn(ProcessTask::shell(COUNTER), SpawnOptions::background())
        .expect("spawn");
    let id = task.id().to_string();
    manager
        .wait_for(&id, WaitUntil::output("line 3", 0).expect("regex"), LONG)
        .await
        .expect("wait");
    let info = manager.pause(&id).await.expect("pause");
    assert!(info.paused);
    assert_eq!(info.status, TaskStatus::Running);
    // Let what was already in the pipe arrive, then the log must not grow.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = manager
        .poll(&id, 0, 0)
        .expect("poll")
        .info
        .output
        .total_bytes;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = manager
        .poll(&id, 0, 0)
        .expect("poll")
        .info
        .output
        .total_bytes;
    assert_eq!(before, after, "output grew while paused");
    // Pausing again changes nothing.
    assert!(manager.pause(&id).await.expect("pause again").paused);

    let info = manager.resume(&id).await.expect("resume");
    assert!(!info.paused);
    let outcome = manager
        .wait_for(&id, WaitUntil::output("line", after).expect("regex"), LONG)
        .await
        .expect("wait");
    assert!(
        matches!(outcome, WaitOutcome::Matched { .. }),
        "{outcome:?}"
    );
    manager
        .cancel(&id, CancelReason::user("done"))
        .await
        .expect("cancel");

    let mut seen = Vec::new();
    while let Some(item) = events.try_recv() {
        if let EventItem::Event(event) = item {
            if event.task_id.as_str() == id {
                seen.push(event.kind.type_name());
            }
        }
    }
    let paused = seen.iter().position(|t| *t == "task.paused");
    let resumed = seen.iter().position(|t| *t == "task.resumed");
    assert!(paused.is_some() && resumed > paused, "{seen:?}");
    assert_eq!(seen.iter().filter(|t| **t == "task.paused").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_waits_while_paused_and_fires_after_resume() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("sleep 60"),
            SpawnOptions::background().timeout(Duration::from_millis(800)),
        )
        .expect("spawn");
    let id = task.id().to_string();
    manager.pause(&id).await.expect("pause");
    // Well past the timeout, it still runs: paused time does not count.
    let outcome = manager
        .collect(&id, Some(Duration::from_millis(1500)))
        .await
        .expect("collect");
    let CollectOutcome::StillRunning(info) = outcome else {
        panic!("the timeout fired while paused: {outcome:?}");
    };
    assert!(info.paused);
    manager.resume(&id).await.expect("resume");
    let outcome = manager.collect(&id, LONG).await.expect("collect");
    let result = outcome.result().expect("ended");
    assert_eq!(result.status, TaskStatus::TimedOut);
    assert!(!manager.info(&id).expect("info").paused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_task_can_be_cancelled() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            // The trap makes the shell outlive SIGTERM only if it is never
            // continued: a stopped process cannot run its handler.
            ProcessTask::shell("trap 'echo bye; exit 0' TERM; echo up; sleep 60 & wait"),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    manager
        .wait_for(&id, WaitUntil::output("up", 0).expect("regex"), LONG)
        .await
        .expect("wait");
    wait_for("the pid", || manager.info(&id).expect("info").pid.is_some()).await;
    let pid = manager.info(&id).expect("info").pid.expect("pid");
    manager.pause(&id).await.expect("pause");
    let info = tokio::time::timeout(
        Duration::from_secs(30),
        manager.cancel(&id, CancelReason::user("stop it")),
    )
    .await
    .expect("cancel in time")
    .expect("cancel");
    assert_eq!(info.status, TaskStatus::Cancelled);
    assert!(!info.paused);
    wait_for("the process to die", || process_is_dead(pid)).await;
    // Ended: pause and resume are refused.
    assert!(matches!(
        manager.pause(&id).await,
        Err(Error::InvalidArgument { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_task_cannot_be_paused() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            FnTask::new("waits", |ctx| async move {
                ctx.cancelled().await;
                Ok(serde_json::Value::Null)
            }),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let err = manager.pause(&id).await.expect_err("refused");
    assert!(
        matches!(&err, Error::InvalidArgument { name, .. } if name == "id"),
        "{err:?}"
    );
    assert!(err.to_string().contains("only process tasks"), "{err}");
    manager
        .cancel(&id, CancelReason::user("done"))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_task_is_not_stalled_until_it_is_resumed() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("echo hi; sleep 60"),
            SpawnOptions::background()
                .idle_timeout(Duration::from_secs(1))
                .cancel_on_stall(true),
        )
        .expect("spawn");
    let id = task.id().to_string();
    manager
        .wait_for(&id, WaitUntil::output("hi", 0).expect("regex"), LONG)
        .await
        .expect("wait");
    manager.pause(&id).await.expect("pause");
    // Silent for longer than the idle timeout while paused: not stalled.
    let outcome = manager
        .collect(&id, Some(Duration::from_millis(1500)))
        .await
        .expect("collect");
    assert!(
        matches!(outcome, CollectOutcome::StillRunning(_)),
        "{outcome:?}"
    );
    manager.resume(&id).await.expect("resume");
    // Silent after the resume: the stall stops it.
    let outcome = manager.collect(&id, LONG).await.expect("collect");
    assert_eq!(
        outcome.result().expect("ended").status,
        TaskStatus::TimedOut
    );
}
