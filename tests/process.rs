//! Process control through the public API: the whole group dies on cancel,
//! SIGTERM is escalated after the grace, a grandchild holding a pipe cannot
//! hang a task, spawn failures are reported, stdin takes steering messages.

mod common;

use std::time::Duration;

use agent_tasks::{
    CancelKind, CancelReason, Error, ForegroundOutcome, ManagerConfig, ProcessTask, SpawnOptions,
    TaskStatus,
};
use common::{manager_in_temp, process_is_dead, wait_for};

fn first_line_number(text: &str) -> Option<u32> {
    text.lines().next()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_grandchild() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("sleep 1000 & echo $!; wait"),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("the sleep's pid", || {
        first_line_number(&manager.poll(&id, 0, 100).expect("poll").text()).is_some()
    })
    .await;
    let sleep_pid =
        first_line_number(&manager.poll(&id, 0, 100).expect("poll").text()).expect("pid");
    assert!(
        !process_is_dead(sleep_pid),
        "the sleep runs before the cancel"
    );
    let info = manager
        .cancel(&id, CancelReason::user("no longer needed"))
        .await
        .expect("cancel");
    assert_eq!(info.status, TaskStatus::Cancelled);
    let reason = info.cancel_reason.expect("reason recorded");
    assert_eq!(reason.kind, CancelKind::User);
    assert_eq!(reason.message.as_deref(), Some("no longer needed"));
    wait_for("the grandchild to die", || process_is_dead(sleep_pid)).await;
    // Idempotent: a second cancel returns the same final info.
    let again = manager
        .cancel(&id, CancelReason::user("again"))
        .await
        .expect("cancel");
    assert_eq!(again.status, TaskStatus::Cancelled);
    assert_eq!(
        again.cancel_reason.and_then(|r| r.message).as_deref(),
        Some("no longer needed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_traps_sigterm_dies_after_the_grace() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let grace = Duration::from_millis(300);
    let task = manager
        .spawn(
            ProcessTask::shell("trap '' TERM; echo ready; while true; do sleep 0.05; done")
                .kill_grace(grace),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("the trap to be set", || {
        manager.poll(&id, 0, 100).expect("poll").text() == "ready\n"
    })
    .await;
    let info = manager
        .cancel(&id, CancelReason::user(""))
        .await
        .expect("cancel");
    assert_eq!(info.status, TaskStatus::Cancelled);
    let exit = info.exit.expect("exit recorded");
    assert_eq!(exit.signal, Some(9), "it took SIGKILL to stop it: {exit:?}");
    let pid = info.pid.expect("pid");
    wait_for("the shell to be gone", || process_is_dead(pid)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grandchild_holding_stdout_open_does_not_hang_the_task() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("sleep 1000 & echo $!; echo parent done")
                .drain_grace(Duration::from_millis(200)),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let outcome = tokio::time::timeout(Duration::from_secs(30), task.wait_foreground())
        .await
        .expect("the task ended although the grandchild holds its stdout");
    let ForegroundOutcome::Finished(result) = outcome else {
        panic!("expected Finished");
    };
    assert_eq!(result.status, TaskStatus::Completed);
    let text = manager
        .poll(task.id().as_str(), 0, 1000)
        .expect("poll")
        .text();
    assert!(text.ends_with("parent done\n"), "{text}");
    let sleep_pid = first_line_number(&text).expect("pid");
    wait_for("the leftover grandchild to be killed", || {
        process_is_dead(sleep_pid)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_signals_are_in_the_result() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let ok = manager
        .spawn(ProcessTask::argv(["true"]), SpawnOptions::foreground())
        .expect("spawn");
    let ForegroundOutcome::Finished(r) = ok.wait_foreground().await else {
        panic!()
    };
    assert_eq!(r.status, TaskStatus::Completed);
    assert_eq!(r.exit.and_then(|e| e.code), Some(0));

    let bad = manager
        .spawn(
            ProcessTask::shell("echo oops >&2; exit 3"),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(r) = bad.wait_foreground().await else {
        panic!()
    };
    assert_eq!(r.status, TaskStatus::Failed);
    assert_eq!(r.exit.and_then(|e| e.code), Some(3));
    assert_eq!(r.error.as_deref(), Some("exited with code 3"));

    let killed = manager
        .spawn(ProcessTask::shell("kill -9 $$"), SpawnOptions::foreground())
        .expect("spawn");
    let ForegroundOutcome::Finished(r) = killed.wait_foreground().await else {
        panic!()
    };
    assert_eq!(r.status, TaskStatus::Failed);
    assert_eq!(r.exit.and_then(|e| e.signal), Some(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_failures_are_failed_tasks_with_the_os_error() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let missing = manager
        .spawn(
            ProcessTask::argv(["/no/such/program-xyz"]),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(r) = missing.wait_foreground().await else {
        panic!()
    };
    assert_eq!(r.status, TaskStatus::Failed);
    let error = r.error.expect("error");
    assert!(
        error.contains("/no/such/program-xyz") && error.contains("No such file"),
        "{error}"
    );

    let bad_cwd = manager
        .spawn(
            ProcessTask::argv(["ls"]).cwd("/no/such/dir"),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(r) = bad_cwd.wait_foreground().await else {
        panic!()
    };
    assert_eq!(r.status, TaskStatus::Failed);
    assert!(r
        .error
        .expect("error")
        .contains("working directory `/no/such/dir`"));

    let empty = manager
        .spawn(
            ProcessTask::argv(Vec::<String>::new()),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(r) = empty.wait_foreground().await else {
        panic!()
    };
    assert_eq!(r.status, TaskStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_writes_to_an_interactive_process_stdin() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("read a; echo \"got $a\"; read b; echo \"got $b\"")
                .stdin_bytes("first\n")
                .interactive(true),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("the first line", || {
        manager.poll(&id, 0, 100).expect("poll").text() == "got first\n"
    })
    .await;
    manager.send(&id, "second\n").expect("send");
    let done = manager
        .collect(&id, Some(Duration::from_secs(30)))
        .await
        .expect("collect");
    assert_eq!(
        done.result().expect("finished").status,
        TaskStatus::Completed
    );
    assert_eq!(
        manager.poll(&id, 0, 100).expect("poll").text(),
        "got first\ngot second\n"
    );
    // It has ended: no more messages.
    assert!(matches!(
        manager.send(&id, "third\n"),
        Err(Error::NotReceiving { .. })
    ));

    let deaf = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let err = manager
        .send(deaf.id().as_str(), "hello")
        .expect_err("no stdin");
    assert!(matches!(err, Error::NotReceiving { .. }), "{err}");
    manager
        .cancel(deaf.id().as_str(), CancelReason::user(""))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_and_cwd_reach_the_process() {
    let (manager, dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("echo \"$GREETING\"; pwd")
                .env("GREETING", "hi there")
                .cwd(dir.path()),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let ForegroundOutcome::Finished(_) = task.wait_foreground().await else {
        panic!()
    };
    let text = manager
        .poll(task.id().as_str(), 0, 1000)
        .expect("poll")
        .text();
    let canonical = dir.path().canonicalize().expect("canonical");
    assert_eq!(text, format!("hi there\n{}\n", canonical.display()));
}
