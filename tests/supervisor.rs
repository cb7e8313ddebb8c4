//! Tasks that outlive their host (`OnHostExit::KeepRunning`): each runs
//! under a supervisor process of its own. Through the public API, with real
//! processes: a host (this test binary re-run as a child process) is
//! SIGKILLed mid-flood, while the task ends, while its timeout is due; the
//! root is reopened here, in another process, which re-attaches or reads
//! the exit record. The supervisor itself is SIGKILLed too.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_tasks::{
    CancelReason, Error, FnTask, ManagerConfig, NotificationKind, OnHostExit, ProcessTask,
    SpawnOptions, TaskManager, TaskStatus,
};
use common::{process_is_dead, read_all, seq_output, wait_for};
use serde_json::json;

/// The supervisor binary this crate builds.
const SUPERVISOR: &str = env!("CARGO_BIN_EXE_agent-tasks-supervisor");
/// The folder a crash host works in (its root is `<dir>/root`).
const HOST_DIR: &str = "AGENT_TASKS_SUPERVISED_DIR";
/// Which host to run (see `supervised_host`).
const SCENARIO: &str = "AGENT_TASKS_SUPERVISED_SCENARIO";
/// Lines the flood prints (`seq 1 FLOOD_LINES`: about 200 MB).
const FLOOD_LINES: u64 = 25_000_000;

fn config(root: &Path) -> ManagerConfig {
    ManagerConfig::default()
        .root(root)
        .supervisor_program(SUPERVISOR)
}

fn keep_running() -> SpawnOptions {
    SpawnOptions::background().on_host_exit(OnHostExit::KeepRunning)
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------
// Attached: every verb crosses the supervisor.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_task_ends_as_a_local_one_would_and_is_not_the_hosts_child() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = TaskManager::new(config(dir.path())).expect("manager");
    let task = manager
        .spawn(
            ProcessTask::shell("printf 'out\\n'; printf 'err\\n' >&2; sleep 0.2; exit 3"),
            keep_running(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("the pid", || manager.info(&id).expect("info").pid.is_some()).await;
    let pid = manager.info(&id).expect("info").pid.expect("pid");
    let supervisor = parent_of(pid).expect("the task's parent");
    assert_ne!(
        supervisor,
        std::process::id(),
        "the task is the host's child"
    );
    assert_ne!(parent_of(supervisor), Some(std::process::id()));

    let result = manager
        .collect(&id, None)
        .await
        .expect("collect")
        .result()
        .cloned()
        .expect("ended");
    assert_eq!(result.status, TaskStatus::Failed);
    assert_eq!(result.exit.and_then(|e| e.code), Some(3));
    assert_eq!(result.error.as_deref(), Some("exited with code 3"));
    assert_eq!(read_all(&manager, &id), b"out\nerr\n");
    assert_eq!(result.output.stdout_bytes, 4);
    assert_eq!(result.output.stderr_bytes, 4);
    let page = manager.poll(&id, 0, 100).expect("poll");
    let streams: Vec<_> = page.spans.iter().map(|s| s.stream.to_string()).collect();
    assert_eq!(streams, ["stdout", "stderr"]);
    // The log on disk is the one the supervisor wrote.
    let log = dir.path().join("tasks").join(&id).join("output.log");
    assert_eq!(std::fs::read(log).expect("log"), b"out\nerr\n");
    manager.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_pause_and_cancel_cross_the_supervisor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = TaskManager::new(config(dir.path())).expect("manager");
    let id = manager
        .spawn(ProcessTask::argv(["cat"]).interactive(true), keep_running())
        .expect("spawn")
        .id()
        .to_string();
    manager.send(&id, "steer me\n").expect("send");
    wait_for("the echo", || {
        common::output_so_far(&manager, &id) == "steer me\n"
    })
    .await;
    let paused = manager.pause(&id).await.expect("pause");
    assert!(paused.paused);
    let pid = paused.pid.expect("pid");
    wait_for("the stop", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('T'))
        })
    })
    .await;
    manager.resume(&id).await.expect("resume");
    let ended = manager
        .cancel(&id, CancelReason::user("enough"))
        .await
        .expect("cancel");
    assert_eq!(ended.status, TaskStatus::Cancelled);
    assert_eq!(
        ended.cancel_reason.and_then(|r| r.message).as_deref(),
        Some("enough")
    );
    assert!(process_is_dead(pid));
    manager.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_running_is_refused_where_it_cannot_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = TaskManager::new(config(dir.path())).expect("manager");
    let refused = |result: agent_tasks::Result<agent_tasks::TaskHandle>, words: &str| match result {
        Err(Error::InvalidArgument { name, message }) => {
            assert_eq!(name, "on_host_exit");
            assert!(message.contains(words), "{message}");
        }
        other => panic!("not refused: {other:?}"),
    };
    refused(
        manager.spawn(
            ProcessTask::shell("true"),
            SpawnOptions::foreground().on_host_exit(OnHostExit::KeepRunning),
        ),
        "background",
    );
    refused(
        manager.spawn(
            FnTask::new("job", |_ctx| async { Ok(json!(1)) }),
            keep_running(),
        ),
        "function task",
    );
    let temporary =
        TaskManager::new(ManagerConfig::default().supervisor_program(SUPERVISOR)).expect("manager");
    refused(
        temporary.spawn(ProcessTask::shell("true"), keep_running()),
        "temporary root",
    );
    // A manager default of keep_running leaves such tasks to the host.
    let defaulted = TaskManager::new(
        ManagerConfig::default()
            .supervisor_program(SUPERVISOR)
            .on_host_exit(OnHostExit::KeepRunning),
    )
    .expect("manager");
    let task = defaulted
        .spawn(ProcessTask::shell("echo here"), SpawnOptions::background())
        .expect("spawn");
    let pid_parent = {
        let id = task.id().to_string();
        wait_for("the pid", || {
            defaulted.info(&id).expect("info").pid.is_some()
        })
        .await;
        parent_of(defaulted.info(&id).expect("info").pid.expect("pid"))
    };
    assert!(matches!(pid_parent, Some(p) if p == std::process::id()) || pid_parent.is_none());
    for m in [manager, temporary, defaulted] {
        m.shutdown("done").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_supervisor_fails_its_task_and_leaves_no_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = TaskManager::new(config(dir.path())).expect("manager");
    let id = manager
        .spawn(
            ProcessTask::shell("setsid sleep 1000 & echo $!; sleep 1000"),
            keep_running(),
        )
        .expect("spawn")
        .id()
        .to_string();
    wait_for("the grandchild's pid", || {
        common::output_so_far(&manager, &id).ends_with('\n')
    })
    .await;
    let grandchild: u32 = common::output_so_far(&manager, &id)
        .trim()
        .parse()
        .expect("a pid");
    let pid = manager.info(&id).expect("info").pid.expect("pid");
    let supervisor = parent_of(pid).expect("the supervisor");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let result = manager
        .collect(&id, Some(Duration::from_secs(30)))
        .await
        .expect("collect")
        .result()
        .cloned()
        .expect("ended");
    assert_eq!(result.status, TaskStatus::Failed);
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.contains("supervisor died")),
        "{:?}",
        result.error
    );
    wait_for("no survivor", || {
        process_is_dead(pid) && process_is_dead(grandchild)
    })
    .await;
    manager.shutdown("done").await;
}

// ---------------------------------------------------------------------------
// A host dies; the next one re-attaches or reads the exit record.

/// The host that gets killed, run in a child process by the tests below;
/// it writes `<dir>/ready.json` when it is where the test wants it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a host run in a child process by the supervisor tests"]
async fn supervised_host() {
    let (Some(dir), Ok(scenario)) = (std::env::var_os(HOST_DIR), std::env::var(SCENARIO)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let manager = TaskManager::new(config(&dir.join("root"))).expect("manager");
    let ready = match scenario.as_str() {
        "flood" => {
            // It ends only once the test opens its gate, so the next host
            // finds it running.
            let command = format!(
                "seq 1 {FLOOD_LINES}; while [ ! -e '{}' ]; do sleep 0.02; done",
                dir.join("go").display()
            );
            let id = manager
                .spawn(ProcessTask::shell(command), keep_running())
                .expect("spawn")
                .id()
                .to_string();
            // A reader mid-way: it holds a cursor when the host dies.
            let mut cursor = 0;
            while cursor < 20 << 20 {
                let page = manager.poll(&id, cursor, 1 << 20).expect("poll");
                cursor = page.next_cursor;
                if page.data.is_empty() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            json!({ "id": id, "cursor": cursor })
        }
        "ends_away" => {
            let gate = dir.join("go");
            let command = format!(
                "while [ ! -e '{}' ]; do sleep 0.02; done; echo done; exit 4",
                gate.display()
            );
            let id = manager
                .spawn(ProcessTask::shell(command), keep_running().owner("s1"))
                .expect("spawn")
                .id()
                .to_string();
            wait_for("the pid", || manager.info(&id).expect("info").pid.is_some()).await;
            json!({ "id": id })
        }
        "timeout" => {
            let id = manager
                .spawn(
                    ProcessTask::shell("setsid sleep 1000 & echo $!; sleep 1000"),
                    keep_running()
                        .owner("s1")
                        .timeout(Duration::from_millis(1500)),
                )
                .expect("spawn")
                .id()
                .to_string();
            wait_for("the grandchild's pid", || {
                common::output_so_far(&manager, &id).ends_with('\n')
            })
            .await;
            let grandchild = common::output_so_far(&manager, &id).trim().to_string();
            json!({ "id": id, "grandchild": grandchild })
        }
        "pty" => {
            let id = manager
                .spawn(
                    ProcessTask::shell(
                        "stty size; read line; echo got:$line; read again; stty size; sleep 1000",
                    )
                    .pty(80, 24),
                    keep_running(),
                )
                .expect("spawn")
                .id()
                .to_string();
            wait_for("the first size", || {
                common::output_so_far(&manager, &id).contains("24 80")
            })
            .await;
            json!({ "id": id })
        }
        "reopen" => {
            // A host that re-attaches, reads a little, and is killed.
            let id = std::env::var("AGENT_TASKS_SUPERVISED_ID").expect("an id");
            assert_eq!(manager.info(&id).expect("info").status, TaskStatus::Running);
            let cursor: u64 = std::env::var("AGENT_TASKS_SUPERVISED_CURSOR")
                .expect("a cursor")
                .parse()
                .expect("a number");
            let page = manager.poll(&id, cursor, 64 * 1024).expect("poll");
            json!({ "id": id, "cursor": page.next_cursor, "data": String::from_utf8_lossy(&page.data) })
        }
        other => panic!("unknown scenario {other}"),
    };
    let path = dir.join("ready.json");
    std::fs::write(path.with_extension("tmp"), ready.to_string()).expect("write");
    std::fs::rename(path.with_extension("tmp"), path).expect("rename");
    std::future::pending::<()>().await;
}

/// A host run by `supervised_host`: SIGKILLed and reaped however the test
/// ends.
struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `supervised_host` with `scenario`, waits for its ready file, then
/// SIGKILLs it; returns what it wrote.
async fn run_host_until_ready_then_kill(dir: &Path, scenario: &str) -> serde_json::Value {
    run_host_with(dir, scenario, &[]).await
}

async fn run_host_with(dir: &Path, scenario: &str, env: &[(&str, String)]) -> serde_json::Value {
    let ready = dir.join("ready.json");
    let _ = std::fs::remove_file(&ready);
    let mut command = Command::new(std::env::current_exe().expect("exe"));
    command
        .args(["supervised_host", "--exact", "--ignored", "--nocapture"])
        .env(HOST_DIR, dir)
        .env(SCENARIO, scenario)
        .stdout(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut host = Host(command.spawn().expect("start the host"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !ready.exists() {
        if let Ok(Some(status)) = host.0.try_wait() {
            panic!("the host exited early: {status}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the host never got ready"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    host.0.kill().expect("SIGKILL the host");
    host.0.wait().expect("reap the host");
    serde_json::from_slice(&std::fs::read(ready).expect("ready")).expect("json")
}

fn reopen(root: &Path) -> TaskManager {
    let manager = TaskManager::new(config(root)).expect("reopen");
    assert!(
        manager.load_problems().is_empty(),
        "{:?}",
        manager.load_problems()
    );
    manager
}

fn end_notices(manager: &TaskManager, id: &str) -> usize {
    manager
        .notifications(None)
        .iter()
        .filter(|n| n.task_id.as_str() == id && n.kind == NotificationKind::Finished)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_flood_loses_no_byte_and_the_next_host_reads_the_real_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = run_host_until_ready_then_kill(dir.path(), "flood").await;
    let id = ready["id"].as_str().expect("id").to_string();
    let held = ready["cursor"].as_u64().expect("cursor");

    let root = dir.path().join("root");
    let manager = reopen(&root);
    let expected = seq_output(FLOOD_LINES);
    assert_eq!(
        manager.info(&id).expect("info").status,
        TaskStatus::Running,
        "the flood ended before the host died: make it longer"
    );
    // Re-attached, and told so.
    let journal =
        std::fs::read_to_string(root.join("tasks").join(&id).join("events.jsonl")).expect("events");
    assert!(journal.contains("\"task.reattached\""), "{journal}");
    std::fs::write(dir.path().join("go"), "").expect("go");
    // The reader that held a cursor goes on from it, every byte once.
    let mut tail = Vec::new();
    let mut cursor = held;
    loop {
        let page = manager.poll(&id, cursor, 1 << 20).expect("poll");
        assert_eq!(page.omitted_bytes, 0);
        assert_eq!(page.cursor, cursor);
        tail.extend_from_slice(&page.data);
        cursor = page.next_cursor;
        if page.eof {
            break;
        }
        if page.data.is_empty() {
            manager
                .poll_wait(&id, cursor, 1 << 20, Some(Duration::from_secs(30)))
                .await
                .expect("poll_wait");
        }
    }
    assert!(
        tail == expected[held as usize..],
        "the bytes after the held cursor differ"
    );
    let result = manager.result(&id).expect("result").expect("ended");
    assert_eq!(result.status, TaskStatus::Completed);
    assert_eq!(result.exit.and_then(|e| e.code), Some(0));
    assert_eq!(result.output.total_bytes, expected.len() as u64);
    assert!(
        read_all(&manager, &id) == expected,
        "the whole stream differs"
    );
    assert_eq!(end_notices(&manager, &id), 1);
    manager.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_ends_while_no_host_is_attached_is_told_once_with_its_real_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = run_host_until_ready_then_kill(dir.path(), "ends_away").await;
    let id = ready["id"].as_str().expect("id").to_string();
    std::fs::write(dir.path().join("go"), "").expect("go");
    let exit_record = dir.path().join("root/tasks").join(&id).join("exit.json");
    wait_for("the exit record", || exit_record.exists()).await;

    let root = dir.path().join("root");
    let manager = reopen(&root);
    let result = manager.result(&id).expect("result").expect("ended");
    assert_eq!(result.status, TaskStatus::Failed);
    assert_eq!(result.exit.and_then(|e| e.code), Some(4));
    assert_eq!(read_all(&manager, &id), b"done\n");
    assert_eq!(end_notices(&manager, &id), 1);
    manager.shutdown("done").await;
    drop(manager);
    // Told once: a second open tells it no second time.
    let again = reopen(&root);
    assert_eq!(end_notices(&again, &id), 1);
    assert_eq!(
        again.result(&id).expect("result").expect("ended").status,
        TaskStatus::Failed
    );
    again.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_fires_with_no_host_attached_and_the_tree_goes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = run_host_until_ready_then_kill(dir.path(), "timeout").await;
    let id = ready["id"].as_str().expect("id").to_string();
    let grandchild: u32 = ready["grandchild"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .expect("grandchild");
    let exit_record = dir.path().join("root/tasks").join(&id).join("exit.json");
    wait_for("the exit record", || exit_record.exists()).await;
    wait_for("no survivor", || process_is_dead(grandchild)).await;

    let manager = reopen(&dir.path().join("root"));
    let result = manager.result(&id).expect("result").expect("ended");
    assert_eq!(result.status, TaskStatus::TimedOut);
    assert_eq!(end_notices(&manager, &id), 1);
    manager.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_host_types_into_and_resizes_a_terminal_its_predecessor_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = run_host_until_ready_then_kill(dir.path(), "pty").await;
    let id = ready["id"].as_str().expect("id").to_string();
    let manager = reopen(&dir.path().join("root"));
    manager.send(&id, "hello\n").expect("type");
    wait_for("the echo", || {
        common::output_so_far(&manager, &id).contains("got:hello")
    })
    .await;
    manager.resize(&id, 100, 30).await.expect("resize");
    manager.send(&id, "again\n").expect("type");
    wait_for("the new size", || {
        common::output_so_far(&manager, &id).contains("30 100")
    })
    .await;
    let ended = manager
        .cancel(&id, CancelReason::user("done"))
        .await
        .expect("cancel");
    assert_eq!(ended.status, TaskStatus::Cancelled);
    manager.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_hosts_in_a_row_killed_while_one_task_runs_lose_no_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The first host starts the flood (held open by its gate) and dies.
    let ready = run_host_until_ready_then_kill(dir.path(), "flood").await;
    let id = ready["id"].as_str().expect("id").to_string();
    let mut cursor = ready["cursor"].as_u64().expect("cursor");
    let expected = seq_output(FLOOD_LINES);
    for _ in 0..20 {
        let ready = run_host_with(
            dir.path(),
            "reopen",
            &[
                ("AGENT_TASKS_SUPERVISED_ID", id.clone()),
                ("AGENT_TASKS_SUPERVISED_CURSOR", cursor.to_string()),
            ],
        )
        .await;
        let data = ready["data"].as_str().expect("data");
        let next = ready["cursor"].as_u64().expect("cursor");
        assert_eq!(
            data.as_bytes(),
            &expected[cursor as usize..next as usize],
            "a host read other bytes at {cursor}"
        );
        cursor = next;
    }
    std::fs::write(dir.path().join("go"), "").expect("go");
    let manager = reopen(&dir.path().join("root"));
    let result = manager
        .collect(&id, Some(Duration::from_secs(120)))
        .await
        .expect("collect")
        .result()
        .cloned()
        .expect("ended");
    assert_eq!(result.status, TaskStatus::Completed);
    assert!(
        read_all(&manager, &id) == expected,
        "the whole stream differs"
    );
    assert_eq!(end_notices(&manager, &id), 1);
    manager.shutdown("done").await;
}

#[test]
fn two_hosts_racing_to_reopen_a_root_do_not_both_attach() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(run_host_until_ready_then_kill(dir.path(), "ends_away"));
    let id = ready["id"].as_str().expect("id").to_string();
    let root = dir.path().join("root");
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let root = root.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Runtime::new().expect("runtime");
                let opened = TaskManager::with_runtime(config(&root), runtime.handle().clone());
                opened.map(|m| (m, runtime)).map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut opened: Vec<_> = racers
        .into_iter()
        .map(|r| r.join().expect("racer"))
        .collect();
    let won: Vec<_> = opened.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        opened.iter().map(|r| r.as_ref().err()).collect::<Vec<_>>()
    );
    let lost = opened
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("a loser");
    assert!(lost.contains("in use"), "{lost}");
    let (manager, runtime) = opened
        .remove(opened.iter().position(|r| r.is_ok()).expect("won"))
        .expect("won");
    assert_eq!(manager.info(&id).expect("info").status, TaskStatus::Running);
    std::fs::write(dir.path().join("go"), "").expect("go");
    let result = runtime
        .block_on(manager.collect(&id, Some(Duration::from_secs(30))))
        .expect("collect");
    assert_eq!(result.result().expect("ended").status, TaskStatus::Failed);
    runtime.block_on(manager.shutdown("done"));
}

/// Every page read by cursor (data and omitted counts), to its end.
fn pages(manager: &TaskManager, id: &str) -> Vec<(u64, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cursor = 0;
    loop {
        let page = manager.poll(id, cursor, 256 * 1024).expect("poll");
        out.push((page.cursor, page.omitted_bytes, page.data.clone()));
        cursor = page.next_cursor;
        if page.eof {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_disk_cap_a_supervised_task_reads_as_one_under_its_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = TaskManager::new(
        config(dir.path())
            .disk_limit(1024 * 1024)
            .tail_window(64 * 1024),
    )
    .expect("manager");
    let command = "seq 1 1000000; seq 1 1000 >&2";
    let mut ids = Vec::new();
    for policy in [OnHostExit::Kill, OnHostExit::KeepRunning] {
        let id = manager
            .spawn(
                ProcessTask::shell(command),
                SpawnOptions::background().on_host_exit(policy),
            )
            .expect("spawn")
            .id()
            .to_string();
        manager.collect(&id, None).await.expect("collect");
        ids.push(id);
    }
    let [host, supervised] = [&ids[0], &ids[1]];
    let (a, b) = (
        manager.result(host).expect("result").expect("ended"),
        manager.result(supervised).expect("result").expect("ended"),
    );
    assert_eq!(a.output.total_bytes, b.output.total_bytes);
    assert_eq!(a.output.omitted_bytes, b.output.omitted_bytes);
    assert!(b.output.omitted_bytes > 0, "the cap was not reached");
    assert_eq!(a.output.disk_bytes, b.output.disk_bytes);
    assert_eq!(a.output.stderr_bytes, b.output.stderr_bytes);
    assert!(
        pages(&manager, host) == pages(&manager, supervised),
        "the pages differ"
    );
    let log = |id: &str| {
        std::fs::read(dir.path().join("tasks").join(id).join("output.log")).expect("log")
    };
    assert!(log(host) == log(supervised), "the logs differ");
    let (pa, pb) = (
        manager.preview(host, 100, 100).expect("preview"),
        manager.preview(supervised, 100, 100).expect("preview"),
    );
    assert_eq!(
        (pa.head, pa.tail, pa.omitted_bytes),
        (pb.head, pb.tail, pb.omitted_bytes)
    );
    manager.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_too_long_for_a_socket_path_is_reached_through_its_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    // `sun_path` holds 107 bytes: this root's task folders are longer.
    let root = dir.path().join("a".repeat(60)).join("b".repeat(60));
    let manager = TaskManager::new(config(&root)).expect("manager");
    let id = manager
        .spawn(ProcessTask::shell("echo far"), keep_running())
        .expect("spawn")
        .id()
        .to_string();
    let socket = root.join("tasks").join(&id).join("control.sock");
    assert!(socket.as_os_str().len() > 107, "{}", socket.display());
    let result = manager
        .collect(&id, Some(Duration::from_secs(30)))
        .await
        .expect("collect")
        .result()
        .cloned()
        .expect("ended");
    assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
    assert_eq!(read_all(&manager, &id), b"far\n");
    manager.shutdown("done").await;
}
