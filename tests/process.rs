//! Process control through the public API: the whole group dies on cancel,
//! SIGTERM is escalated after the grace, a grandchild holding a pipe cannot
//! hang a task, spawn failures are reported, stdin takes steering messages.
//! No descendant survives (cancel, timeout, the task's end, a dropped
//! manager or runtime), also one that left the group, in every containment;
//! the host's own children keep working with the subreaper set; stdin is
//! closed by the child or by `Message::eof`; bad arguments are refused.

mod common;

use std::time::Duration;

use agent_tasks::{
    CancelKind, CancelReason, Containment, Error, FnTask, ForegroundOutcome, ManagerConfig,
    Message, ProcessTask, SpawnOptions, TaskManager, TaskStatus,
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_that_can_never_run_are_refused_at_spawn() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let refused = |task: ProcessTask, name: &str, needle: &str| {
        let err = manager
            .spawn(task, SpawnOptions::background())
            .expect_err("refused");
        match &err {
            Error::InvalidArgument { name: n, message } => {
                assert_eq!(n, name, "{err}");
                assert!(message.contains(needle), "{message} should name {needle}");
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    };
    refused(
        ProcessTask::argv(["ls"]).cwd("/no/such/dir"),
        "cwd",
        "/no/such/dir",
    );
    refused(
        ProcessTask::argv(["ls"]).cwd("/etc/hostname"),
        "cwd",
        "/etc/hostname",
    );
    refused(ProcessTask::argv(Vec::<String>::new()), "command", "empty");
    refused(ProcessTask::argv([""]), "command", "empty");
    refused(ProcessTask::argv(["echo", "a\0b"]), "command", "argv[1]");
    refused(ProcessTask::shell(""), "command", "empty");
    refused(ProcessTask::shell("  \n\t"), "command", "empty");
    refused(ProcessTask::shell("echo a\0b"), "command", "NUL");
    refused(ProcessTask::shell("true").env("A=B", "x"), "env", "`A=B`");
    refused(ProcessTask::shell("true").env("", "x"), "env", "empty");
    refused(ProcessTask::shell("true").env("NU\0L", "x"), "env", "NU");
    refused(
        ProcessTask::shell("true").env("GOOD", "a\0b"),
        "env",
        "`GOOD`",
    );
    // Nothing was registered.
    assert!(manager.list(&Default::default()).is_empty());
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

// ---- No descendant survives: escapes from the process group ----

/// The containments a test runs under: the default (a cgroup where this
/// host allows one), the forced fallback (the host as subreaper), and the
/// process group with the `/proc` walk (the host left untouched).
const MODES: [Containment; 3] = [
    Containment::Cgroup,
    Containment::Subreaper,
    Containment::ProcessGroup,
];

/// True if this test process may make a cgroup below its own (the same
/// rule the library follows): the cgroup2 mount from mountinfo, our cgroup
/// from `/proc/self/cgroup`.
fn host_allows_cgroups() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED.get_or_init(|| {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let Some(own) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
            return false;
        };
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let Some(mount) = mounts.lines().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| left.split(' ').nth(4).map(str::to_string))?
        }) else {
            return false;
        };
        let probe = std::path::Path::new(&mount)
            .join(own.trim().trim_start_matches('/'))
            .join(format!("agent-tasks-probe-{}", std::process::id()));
        std::fs::create_dir(&probe).is_ok() && std::fs::remove_dir(&probe).is_ok()
    })
}

/// Checks the containment the task got: exactly the forced fallback, or for
/// the default a cgroup where the host allows one, else the fallback.
fn assert_containment(asked: Containment, got: Option<Containment>) {
    let got = got.expect("a process task reports its containment");
    match asked {
        Containment::Cgroup if host_allows_cgroups() => assert_eq!(got, Containment::Cgroup),
        Containment::Cgroup => assert_eq!(got, Containment::Subreaper),
        other => assert_eq!(got, other),
    }
}

/// Waits until the task printed a pid on its first line, and returns it.
async fn printed_pid(manager: &TaskManager, id: &str) -> u32 {
    wait_for("the printed pid", || {
        first_line_number(&manager.poll(id, 0, 100).expect("poll").text()).is_some()
    })
    .await;
    let pid = first_line_number(&manager.poll(id, 0, 100).expect("poll").text()).expect("pid");
    assert!(!process_is_dead(pid), "process {pid} runs before the stop");
    pid
}

/// Starts `script` (which prints the pid of a process that left the group),
/// cancels it, and checks that process is gone.
async fn cancel_ends_the_escapee(script: &str, mode: Containment) {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell(script)
                .containment(mode)
                .kill_grace(Duration::from_millis(300)),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let pid = printed_pid(&manager, &id).await;
    assert_containment(mode, manager.info(&id).expect("info").containment);
    let info = manager
        .cancel(&id, CancelReason::user(""))
        .await
        .expect("cancel");
    assert_eq!(info.status, TaskStatus::Cancelled, "{script}");
    assert_containment(mode, info.containment);
    wait_for(&format!("{pid} of `{script}` ({mode:?}) to die"), || {
        process_is_dead(pid)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_a_descendant_in_its_own_session() {
    for mode in MODES {
        cancel_ends_the_escapee("setsid sleep 1000 & echo $!; wait", mode).await;
        cancel_ends_the_escapee(
            "setsid -f sh -c 'echo $$; exec sleep 1000'; sleep 1000",
            mode,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_a_double_forked_descendant() {
    for mode in MODES {
        cancel_ends_the_escapee("(sleep 1000 & echo $!); sleep 1000", mode).await;
        // Double fork and new session: no link to the task but its marker
        // (or its cgroup).
        cancel_ends_the_escapee("(setsid sleep 1000 & echo $!); sleep 1000", mode).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_a_descendant_in_its_own_group() {
    for mode in MODES {
        cancel_ends_the_escapee(
            "perl -e 'setpgrp(0, 0); print \"$$\\n\"; exec \"sleep\", \"1000\"' & wait",
            mode,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descendant_ignoring_sigterm_in_its_own_session_is_killed() {
    for mode in MODES {
        cancel_ends_the_escapee(
            "setsid sh -c 'trap \"\" TERM; echo $$; while :; do sleep 0.05; done' & wait",
            mode,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_left_by_a_finished_task_is_ended() {
    for mode in MODES {
        let (manager, _dir) = manager_in_temp(ManagerConfig::default());
        let task = manager
            .spawn(
                ProcessTask::shell("setsid sleep 1000 >/dev/null 2>&1 & echo $!").containment(mode),
                SpawnOptions::foreground(),
            )
            .expect("spawn");
        let ForegroundOutcome::Finished(result) = task.wait_foreground().await else {
            panic!("expected Finished");
        };
        assert_eq!(result.status, TaskStatus::Completed);
        let id = task.id().to_string();
        assert_containment(mode, manager.info(&id).expect("info").containment);
        let pid = first_line_number(&manager.poll(&id, 0, 100).expect("poll").text())
            .expect("the daemon's pid");
        wait_for("the daemon to be ended with its task", || {
            process_is_dead(pid)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_ends_escaped_descendants() {
    for mode in MODES {
        let (manager, _dir) = manager_in_temp(ManagerConfig::default());
        let task = manager
            .spawn(
                ProcessTask::shell("setsid sleep 1000 & echo $!; wait")
                    .containment(mode)
                    .kill_grace(Duration::from_millis(200)),
                SpawnOptions::background().timeout(Duration::from_millis(500)),
            )
            .expect("spawn");
        let id = task.id().to_string();
        let pid = printed_pid(&manager, &id).await;
        let done = manager
            .collect(&id, Some(Duration::from_secs(30)))
            .await
            .expect("collect");
        assert_eq!(done.result().expect("ended").status, TaskStatus::TimedOut);
        wait_for("the escapee to die on timeout", || process_is_dead(pid)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_manager_ends_escaped_descendants() {
    for mode in MODES {
        let (manager, _dir) = manager_in_temp(ManagerConfig::default());
        let task = manager
            .spawn(
                ProcessTask::shell("(setsid sleep 1000 & echo $!); sleep 1000")
                    .containment(mode)
                    .kill_grace(Duration::from_millis(200)),
                SpawnOptions::background(),
            )
            .expect("spawn");
        let id = task.id().to_string();
        let pid = printed_pid(&manager, &id).await;
        drop(task);
        drop(manager);
        wait_for("the escapee to die with its manager", || {
            process_is_dead(pid)
        })
        .await;
    }
}

#[test]
fn a_runtime_shut_down_under_a_task_ends_escaped_descendants() {
    for mode in MODES {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let pid = runtime.block_on(async {
            let manager =
                TaskManager::new(ManagerConfig::default().root(dir.path())).expect("manager");
            let task = manager
                .spawn(
                    ProcessTask::shell("(setsid sleep 1000 & echo $!); sleep 1000")
                        .containment(mode),
                    SpawnOptions::background().keep_alive(true),
                )
                .expect("spawn");
            let pid = printed_pid(&manager, task.id().as_str()).await;
            std::mem::forget(manager);
            pid
        });
        // Dropping the runtime drops the task's future: its guard kills all.
        drop(runtime);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !process_is_dead(pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "{pid} survived ({mode:?})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_own_children_are_still_waited_for_with_the_subreaper_set() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    // Tasks in the subreaper containment that leave orphans behind, and end.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let task = manager
            .spawn(
                ProcessTask::shell("(sleep 0.2 &); (setsid sleep 0.3 &); sleep 0.1; echo done")
                    .containment(Containment::Subreaper),
                SpawnOptions::background(),
            )
            .expect("spawn");
        ids.push(task.id().to_string());
    }
    // The host's own children, started and waited for meanwhile, also one
    // that leaves an orphan of its own (adopted by the host).
    for code in 0..4 {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("(sleep 0.1 &); exit {code}"))
            .status()
            .expect("std child runs");
        assert_eq!(status.code(), Some(code));
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("sleep 0.05; exit {}", code + 10))
            .status()
            .await
            .expect("tokio child runs");
        assert_eq!(status.code(), Some(code + 10));
    }
    let mut child = std::process::Command::new("sleep")
        .arg("0.3")
        .spawn()
        .expect("spawn");
    for id in &ids {
        let done = manager
            .collect(id, Some(Duration::from_secs(30)))
            .await
            .expect("collect");
        let result = done.result().expect("ended");
        assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
        assert_eq!(
            manager.info(id).expect("info").containment,
            Some(Containment::Subreaper)
        );
    }
    assert!(child
        .wait()
        .expect("the host waits its own child")
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_process_tasks_report_a_containment() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let process = manager
        .spawn(ProcessTask::argv(["true"]), SpawnOptions::foreground())
        .expect("spawn");
    process.wait_foreground().await;
    let info = manager.info(process.id().as_str()).expect("info");
    assert_containment(Containment::Cgroup, info.containment);
    let json = serde_json::to_value(&info).expect("json");
    assert!(json["containment"].is_string(), "{json}");

    let plain = manager
        .spawn(
            ProcessTask::argv(["true"]).containment(Containment::ProcessGroup),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    plain.wait_foreground().await;
    assert_eq!(
        manager.info(plain.id().as_str()).expect("info").containment,
        Some(Containment::ProcessGroup)
    );

    let func = manager
        .spawn(
            FnTask::new("nothing", |_ctx| async move { Ok(serde_json::json!(1)) }),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    func.wait_foreground().await;
    assert_eq!(
        manager.info(func.id().as_str()).expect("info").containment,
        None
    );
}

// ---- stdin: closed by the child, closed by the host ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_is_refused_once_the_process_closed_its_stdin() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("exec 0<&-; echo closed; sleep 5").interactive(true),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("stdin to be closed", || {
        manager.poll(&id, 0, 100).expect("poll").text() == "closed\n"
    })
    .await;
    // The closed pipe is noticed without a write, or at the latest when a
    // write fails: from then on every send is refused.
    wait_for("send to be refused", || {
        matches!(
            manager.send(&id, "hello\n"),
            Err(Error::NotReceiving { .. })
        )
    })
    .await;
    let err = manager.send(&id, "again\n").expect_err("still refused");
    assert!(err.to_string().contains("no longer reads"), "{err}");
    manager
        .cancel(&id, CancelReason::user(""))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_is_refused_once_the_process_exited() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    // A grandchild keeps the output open, so the task runs on (draining)
    // after the child exited.
    let task = manager
        .spawn(
            ProcessTask::shell("sleep 1000 & echo started")
                .interactive(true)
                .drain_grace(Duration::from_secs(5)),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("send to be refused after the exit", || {
        matches!(
            manager.send(&id, "hello\n"),
            Err(Error::NotReceiving { .. })
        )
    })
    .await;
    manager
        .cancel(&id, CancelReason::user(""))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eof_closes_an_interactive_process_stdin() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::argv(["cat"]).interactive(true),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    manager.send(&id, "one\n").expect("send");
    manager.send(&id, "two\n").expect("send");
    manager.send(&id, Message::eof()).expect("send eof");
    let done = manager
        .collect(&id, Some(Duration::from_secs(30)))
        .await
        .expect("collect");
    assert_eq!(
        done.result().expect("cat ended at EOF").status,
        TaskStatus::Completed
    );
    assert_eq!(
        manager.poll(&id, 0, 100).expect("poll").text(),
        "one\ntwo\n"
    );
    assert!(manager.send(&id, "three\n").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eof_ends_a_function_tasks_inbox() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            FnTask::new("echo messages", |ctx| async move {
                let mut got = Vec::new();
                while let Some(message) = ctx.recv().await {
                    got.push(message.text());
                }
                // Closed for good: no message, not even a later one.
                assert!(ctx.recv().await.is_none());
                assert!(ctx.try_recv().is_none());
                Ok(serde_json::json!(got))
            }),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    manager.send(&id, "a").expect("send");
    manager.send(&id, "b").expect("send");
    manager.send(&id, Message::eof()).expect("send eof");
    let done = manager
        .collect(&id, Some(Duration::from_secs(30)))
        .await
        .expect("collect");
    let result = done.result().expect("ended");
    assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
    assert_eq!(result.value, Some(serde_json::json!(["a", "b"])));
    assert!(Message::eof().is_eof() && Message::eof().as_bytes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_adopted_by_the_host_are_reaped_while_the_task_runs() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            // The orphan leaves the group and the session, and its parent is
            // not the host's child: nothing links it to the task but its
            // marker.
            ProcessTask::shell(
                "sh -c '(setsid sh -c \"echo \\$\\$; exec sleep 0.3\" &)'; sleep 1000",
            )
            .containment(Containment::Subreaper),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let pid = printed_pid(&manager, &id).await;
    // Reaped: not even a zombie is left.
    wait_for("the adopted orphan to be reaped", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    })
    .await;
    manager
        .cancel(&id, CancelReason::user(""))
        .await
        .expect("cancel");
}

/// A host that is exiting kills every process of its tasks at once, from a
/// synchronous exit hook: a background tree with a `setsid` escapee, a
/// keep-alive task and a foreground one all die, and a task that tries to
/// start a process afterwards ends `failed` instead of leaving one behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_processes_now_kills_every_process_and_no_new_one_starts() {
    let (manager, dir) = manager_in_temp(ManagerConfig::default());
    let pidfile = dir.path().join("escapee.pid");
    let tree = manager
        .spawn(
            ProcessTask::shell(format!(
                "setsid sh -c 'echo $$ > {}; exec sleep 1000' & sleep 1000",
                pidfile.display()
            )),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let kept = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::background().keep_alive(true),
        )
        .expect("spawn");
    let fg = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::foreground().no_timeout(),
        )
        .expect("spawn");
    wait_for("the escapee's pid", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| s.trim().parse::<u32>().is_ok())
    })
    .await;
    let escapee: u32 = std::fs::read_to_string(&pidfile)
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    // Each task reports its pid once its process runs (the spawns go on
    // in their drivers).
    for t in [&tree, &kept, &fg] {
        wait_for("the task's pid", || {
            manager.info(t.id().as_str()).is_ok_and(|i| i.pid.is_some())
        })
        .await;
    }
    let pids: Vec<u32> = [&tree, &kept, &fg]
        .iter()
        .map(|t| {
            manager
                .info(t.id().as_str())
                .expect("info")
                .pid
                .expect("a pid")
        })
        .collect();

    let killed =
        tokio::task::block_in_place(|| manager.kill_processes_now(Duration::from_millis(500)));
    assert_eq!(killed, 3);
    for pid in pids.iter().chain([&escapee]) {
        wait_for("the process to die", || process_is_dead(*pid)).await;
    }
    let late = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let result = manager
        .collect(late.id().as_str(), None)
        .await
        .expect("collect");
    let result = match result {
        agent_tasks::CollectOutcome::Finished(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(result.status, TaskStatus::Failed);
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.contains("exiting")),
        "{:?}",
        result.error
    );
    for t in [&tree, &kept] {
        manager
            .collect(t.id().as_str(), None)
            .await
            .expect("collect");
    }
}
