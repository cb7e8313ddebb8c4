//! Readiness waits through the public API: a line that appears after a
//! delay, a port opened by a server started after a delay, a task that dies
//! first, a timeout; and the tools' `until` / `wait_until`.

mod common;

use std::time::Duration;

use agent_tasks::{
    FnTask, ManagerConfig, ProcessTask, SpawnOptions, TaskStatus, WaitOutcome, WaitUntil,
};
use common::manager_in_temp;

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
