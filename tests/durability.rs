//! Durability through the public API: a host killed with SIGKILL leaves
//! tasks that a fresh `open` shows lost (or orphaned, with `kill_orphan`),
//! their output readable; notifications are exactly-once across restarts;
//! torn manifests are skipped; files are private; `gc` spares running tasks;
//! events arrive in order, to subscribers and to `events.jsonl`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use agent_tasks::{
    CancelReason, EventItem, EventKind, FnTask, ManagerConfig, NotificationKind, ProcessTask,
    SpawnOptions, TaskManager, TaskStatus,
};
use common::{manager_in_temp, process_is_dead, wait_for};
use serde_json::json;

const CRASH_ROOT: &str = "AGENT_TASKS_CRASH_ROOT";

/// The host that gets killed: run by `a_host_killed_with_sigkill_...` in a
/// child process of this test binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a helper run in a child process by the crash test"]
async fn crash_host_child() {
    let Some(root) = std::env::var_os(CRASH_ROOT) else {
        return;
    };
    let manager = TaskManager::open(&root).expect("open");
    let bg = SpawnOptions::background().owner("session-1").no_timeout();
    let process = manager
        .spawn(
            ProcessTask::shell("echo before-crash; sleep 1000"),
            bg.clone(),
        )
        .expect("spawn");
    let function = manager
        .spawn(
            FnTask::new("a subagent", |ctx| async move {
                ctx.stdout("fn output before the crash\n");
                std::future::pending::<()>().await;
                Ok(json!(null))
            }),
            bg.clone(),
        )
        .expect("spawn");
    let done = manager
        .spawn(ProcessTask::shell("echo finished-before-crash"), bg)
        .expect("spawn");
    // A foreground process that stays small: no task folder, only a record.
    let foreground = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::foreground().owner("session-1").no_timeout(),
        )
        .expect("spawn");
    wait_for("the foreground record", || {
        std::fs::read_to_string(Path::new(&root).join("foreground").join("records.jsonl"))
            .is_ok_and(|journal| journal.contains(foreground.id().as_str()))
    })
    .await;
    manager
        .collect(done.id().as_str(), None)
        .await
        .expect("collect");
    for id in [process.id(), function.id()] {
        wait_for("output", || {
            manager.info(id.as_str()).expect("info").output.disk_bytes > 0
        })
        .await;
    }
    wait_for("the pid to be saved", || {
        let manifest = Path::new(&root)
            .join("tasks")
            .join(process.id().as_str())
            .join("manifest.json");
        std::fs::read_to_string(manifest).is_ok_and(|m| m.contains("process_start_time"))
    })
    .await;
    let ids = json!({
        "process": process.id(), "function": function.id(), "done": done.id(),
        "pid": manager.info(process.id().as_str()).expect("info").pid,
        "foreground": foreground.id(),
        "foreground_pid": manager.info(foreground.id().as_str()).expect("info").pid,
    });
    let ready = Path::new(&root).join("ready.json");
    std::fs::write(ready.with_extension("tmp"), ids.to_string()).expect("write");
    std::fs::rename(ready.with_extension("tmp"), ready).expect("rename");
    std::future::pending::<()>().await;
}

/// Runs `crash_host_child` in a child process, SIGKILLs it once it is
/// ready, and gives the task ids and pids it saved.
async fn crash_a_host(root: &Path) -> serde_json::Value {
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["crash_host_child", "--exact", "--ignored", "--nocapture"])
        .env(CRASH_ROOT, root)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the host");
    let ready = root.join("ready.json");
    wait_for("the host to be ready", || ready.exists()).await;
    child.kill().expect("SIGKILL the host");
    child.wait().expect("reap the host");
    serde_json::from_slice(&std::fs::read(&ready).expect("read")).expect("json")
}

/// After a reboot the saved pid and start time name no process of the
/// task's (pids and tick counts start again), so the reopening host probes
/// nothing: the task is lost for that reason and never reported orphaned,
/// even where a process now runs under that pid with that start time. The
/// reboot is played by the boot id its manifest saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reboot_no_saved_pid_is_probed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let ids = crash_a_host(&root).await;
    let id = |name: &str| ids[name].as_str().expect("id").to_string();
    let pid = ids["pid"].as_u64().expect("pid") as u32;
    let fg_pid = ids["foreground_pid"].as_u64().expect("pid") as u32;

    let path = root.join("tasks").join(id("process")).join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    let this_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    assert_eq!(
        manifest["boot_id"].as_str(),
        Some(this_boot.trim()),
        "the boot is saved with the start time"
    );
    manifest["boot_id"] = json!("00000000-0000-4000-8000-000000000000");
    std::fs::write(&path, manifest.to_string()).expect("write");

    let manager = TaskManager::open(&root).expect("reopen");
    let process = manager.info(&id("process")).expect("info");
    assert_eq!(process.status, TaskStatus::Lost);
    assert_eq!(
        process.orphan_pid, None,
        "its process of this boot is not taken for the task's"
    );
    assert_eq!(
        process.error.as_deref(),
        Some(agent_tasks::inspect::REBOOTED_ERROR)
    );
    assert!(manager.kill_orphan(&id("process")).is_err());
    assert!(!process_is_dead(pid), "nothing was signalled");
    // Its output is kept.
    assert!(manager
        .poll(&id("process"), 0, 1000)
        .expect("poll")
        .text()
        .contains("before-crash"));
    // The record was saved without the start time: no later open (nor the
    // `agent-tasks` command) probes it either.
    drop(manager);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    assert!(saved.get("process_start_time").is_none(), "{saved}");
    let manager = TaskManager::open(&root).expect("reopen again");
    assert_eq!(manager.info(&id("process")).expect("info").orphan_pid, None);

    // The foreground task's record is of this boot: orphaned as before.
    assert_eq!(
        manager.info(&id("foreground")).expect("info").orphan_pid,
        Some(fg_pid)
    );
    manager
        .kill_orphan(&id("foreground"))
        .expect("kill the orphan");
    // The process of the "earlier boot" is this test's to end: its group.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the task's group");
    wait_for("the processes to die", || {
        process_is_dead(pid) && process_is_dead(fg_pid)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_with_sigkill_leaves_lost_and_orphaned_tasks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let ids = crash_a_host(&root).await;
    let id = |name: &str| ids[name].as_str().expect("id").to_string();
    let pid = ids["pid"].as_u64().expect("pid") as u32;

    let manager = TaskManager::open(&root).expect("reopen");
    assert!(
        manager.load_problems().is_empty(),
        "{:?}",
        manager.load_problems()
    );

    // The process still runs: lost, and reported orphaned.
    let process = manager.info(&id("process")).expect("info");
    assert_eq!(process.status, TaskStatus::Lost);
    assert_eq!(process.orphan_pid, Some(pid));
    assert!(manager
        .poll(&id("process"), 0, 1000)
        .expect("poll")
        .text()
        .contains("before-crash"));

    // The foreground process outlived its host: it is known, not untracked.
    let fg_pid = ids["foreground_pid"].as_u64().expect("pid") as u32;
    let fg = manager
        .info(&id("foreground"))
        .expect("the foreground task is known");
    assert_eq!(fg.status, TaskStatus::Lost);
    assert_eq!(fg.orphan_pid, Some(fg_pid));
    assert!(manager
        .list(&agent_tasks::ListFilter::default())
        .iter()
        .any(|t| t.id.as_str() == id("foreground")));
    // The task's record is done: it has a folder now.
    let journal = std::fs::read_to_string(root.join("foreground").join("records.jsonl"))
        .expect("the journal");
    assert!(
        journal.contains(&format!("{{\"end\":\"{}\"}}", id("foreground"))),
        "the record is still live: {journal}"
    );
    manager
        .kill_orphan(&id("foreground"))
        .expect("kill the orphan");
    wait_for("the foreground orphan to die", || process_is_dead(fg_pid)).await;

    // The function task died with its host: lost, no orphan.
    let function = manager.info(&id("function")).expect("info");
    assert_eq!(function.status, TaskStatus::Lost);
    assert_eq!(function.orphan_pid, None);
    let page = manager.poll(&id("function"), 0, 1000).expect("poll");
    assert_eq!(page.text(), "fn output before the crash\n");
    assert!(page.eof);

    // The finished one keeps its status; its notification was never acked.
    assert_eq!(
        manager.info(&id("done")).expect("info").status,
        TaskStatus::Completed
    );
    let pending = manager.notifications(Some("session-1"));
    let kinds: Vec<_> = pending
        .iter()
        .map(|n| (n.task_id.to_string(), n.kind))
        .collect();
    assert!(
        kinds.contains(&(id("done"), NotificationKind::Finished)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(id("process"), NotificationKind::Orphaned)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(id("function"), NotificationKind::Lost)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(id("foreground"), NotificationKind::Orphaned)),
        "{kinds:?}"
    );
    assert_eq!(pending.len(), 4);
    let done_note = pending
        .iter()
        .find(|n| n.task_id.as_str() == id("done"))
        .expect("note");
    assert!(done_note.text.contains(&id("done")) && done_note.text.contains("completed"));
    assert!(done_note.text.contains("finished-before-crash"));

    // The events were saved in each task's folder.
    let events =
        std::fs::read_to_string(root.join("tasks").join(id("process")).join("events.jsonl"))
            .expect("events");
    assert!(events.contains("\"type\":\"task.started\""));
    assert!(events.contains("\"type\":\"task.lost\""));
    assert!(events.contains("\"type\":\"task.orphaned\""));

    // kill_orphan ends the process; the orphan mark goes away.
    assert!(!process_is_dead(pid));
    let info = manager.kill_orphan(&id("process")).expect("kill orphan");
    assert_eq!(info.orphan_pid, None);
    wait_for("the orphan to die", || process_is_dead(pid)).await;
    assert!(
        manager.kill_orphan(&id("process")).is_err(),
        "no orphan any more"
    );

    // Ack: nothing comes back, not now and not after another restart.
    let ids_to_ack: Vec<_> = pending.iter().map(|n| n.id.clone()).collect();
    assert_eq!(manager.ack(&ids_to_ack).expect("ack"), 4);
    assert!(manager.notifications(None).is_empty());
    assert_eq!(manager.ack(&ids_to_ack).expect("ack again"), 0);
    drop(manager);
    let again = TaskManager::open(&root).expect("reopen");
    assert!(
        again.notifications(None).is_empty(),
        "acknowledged notifications came back"
    );
    assert_eq!(
        again.info(&id("process")).expect("info").status,
        TaskStatus::Lost
    );
    assert_eq!(again.info(&id("process")).expect("info").orphan_pid, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_notifications_survive_a_restart_and_come_once_per_task() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = TaskManager::open(dir.path()).expect("open");
    let bg = manager
        .spawn(
            ProcessTask::shell("seq 1 30; exit 2"),
            SpawnOptions::background().owner("s1"),
        )
        .expect("spawn");
    let fg = manager
        .spawn(
            ProcessTask::argv(["true"]),
            SpawnOptions::foreground().owner("s1"),
        )
        .expect("spawn");
    fg.wait_foreground().await;
    manager
        .collect(bg.id().as_str(), None)
        .await
        .expect("collect");
    let first = manager.notifications(Some("s1"));
    assert_eq!(
        first.len(),
        1,
        "one notification for the background task only"
    );
    let note = &first[0];
    assert_eq!(note.status, TaskStatus::Failed);
    assert_eq!(note.exit.and_then(|e| e.code), Some(2));
    assert!(note
        .text
        .starts_with(&format!("Background task {} failed (exit code 2)", bg.id())));
    assert!(note.output_tail.starts_with("11\n") && note.output_tail.ends_with("30"));
    assert_eq!(note.output_tail.lines().count(), 20);
    assert!(manager.notifications(Some("someone-else")).is_empty());
    // Draining again without ack gives the same one, not a second.
    assert_eq!(manager.notifications(Some("s1")), first);
    drop(manager);

    let reopened = TaskManager::open(dir.path()).expect("reopen");
    assert_eq!(
        reopened.notifications(Some("s1")),
        first,
        "pending ones survive the restart"
    );
    reopened.ack(&[first[0].id.as_str()]).expect("ack");
    assert!(reopened.notifications(Some("s1")).is_empty());
    let err = reopened.ack(&["../../etc/passwd"]).expect_err("bad id");
    assert_eq!(err.code(), "INVALID_ARGUMENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_cancels_are_quiet_unless_asked_and_timeouts_notify() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let cancelled = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::background(),
        )
        .expect("spawn");
    manager
        .cancel(cancelled.id().as_str(), CancelReason::user(""))
        .await
        .expect("cancel");
    let timed = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::background().timeout(Duration::from_millis(50)),
        )
        .expect("spawn");
    manager
        .collect(timed.id().as_str(), None)
        .await
        .expect("collect");
    let notes = manager.notifications(None);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].task_id, *timed.id());
    assert_eq!(notes[0].status, TaskStatus::TimedOut);
    assert!(notes[0].text.contains("reason: timed out"));

    let (loud, _dir2) = manager_in_temp(ManagerConfig::default().notify_host_cancels(true));
    let task = loud
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::background(),
        )
        .expect("spawn");
    loud.cancel(task.id().as_str(), CancelReason::user("stop"))
        .await
        .expect("cancel");
    assert_eq!(loud.notifications(None).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_manifest_is_reported_and_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = TaskManager::open(dir.path()).expect("open");
    let good = manager
        .spawn(
            ProcessTask::argv(["echo", "hi"]),
            SpawnOptions::background(),
        )
        .expect("spawn");
    manager
        .collect(good.id().as_str(), None)
        .await
        .expect("collect");
    drop(manager);
    let torn = dir.path().join("tasks").join("process-abcd1234");
    std::fs::create_dir_all(&torn).expect("mkdir");
    std::fs::write(
        torn.join("manifest.json"),
        br#"{"version":1,"info":{"id":"process-abc"#,
    )
    .expect("write");
    std::fs::write(
        dir.path()
            .join("notifications")
            .join("process-zzzz9999.end.json"),
        b"{",
    )
    .expect("write");
    let reopened = TaskManager::open(dir.path()).expect("open despite the torn manifest");
    assert_eq!(
        reopened.load_problems().len(),
        2,
        "{:?}",
        reopened.load_problems()
    );
    assert!(reopened
        .load_problems()
        .iter()
        .any(|p| p.contains("process-abcd1234")));
    assert_eq!(
        reopened.info(good.id().as_str()).expect("info").status,
        TaskStatus::Completed
    );
    assert_eq!(
        reopened
            .poll(good.id().as_str(), 0, 100)
            .expect("poll")
            .text(),
        "hi\n"
    );
    assert!(reopened.info("process-abcd1234").is_err());
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_folders_are_private() {
    let (manager, dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("echo private"),
            SpawnOptions::background(),
        )
        .expect("spawn");
    manager
        .collect(task.id().as_str(), None)
        .await
        .expect("collect");
    let folder = dir.path().join("tasks").join(task.id().as_str());
    assert_eq!(mode(&dir.path().join("tasks")), 0o700);
    assert_eq!(mode(&folder), 0o700);
    for file in ["manifest.json", "output.log", "events.jsonl", "result.json"] {
        assert_eq!(mode(&folder.join(file)), 0o600, "{file}");
    }
    let notes = dir.path().join("notifications");
    assert_eq!(mode(&notes), 0o700);
    assert_eq!(mode(&notes.join(format!("{}.end.json", task.id()))), 0o600);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).expect("read"))
            .expect("json");
    assert_eq!(manifest["info"]["status"], "completed");
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("result.json")).expect("read"))
            .expect("json");
    assert_eq!(result["exit"]["code"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_old_ended_tasks_and_keeps_running_ones() {
    let (manager, dir) = manager_in_temp(ManagerConfig::default());
    let mut ended = Vec::new();
    for _ in 0..3 {
        let t = manager
            .spawn(ProcessTask::argv(["true"]), SpawnOptions::background())
            .expect("spawn");
        manager
            .collect(t.id().as_str(), None)
            .await
            .expect("collect");
        ended.push(t.id().clone());
    }
    let running = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let kept = manager.gc(None, Some(1)).expect("gc");
    assert_eq!(kept.removed.len(), 2, "the newest ended task is kept");
    let report = manager.gc(Some(Duration::ZERO), None).expect("gc");
    assert_eq!(report.removed.len(), 1);
    for id in &ended {
        assert!(!dir.path().join("tasks").join(id.as_str()).exists());
        assert!(manager.info(id.as_str()).is_err());
    }
    assert_eq!(
        manager.info(running.id().as_str()).expect("info").status,
        TaskStatus::Running
    );
    // (Its folder is made by its driver, off the worker threads, as it
    // starts: it may come a moment after `spawn` returned.)
    let folder = dir.path().join("tasks").join(running.id().as_str());
    common::wait_for("the running task's folder", || folder.exists()).await;
    manager
        .cancel(running.id().as_str(), CancelReason::user(""))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_and_are_saved_with_the_task() {
    let (manager, dir) = manager_in_temp(ManagerConfig::default());
    let mut events = manager.subscribe();
    let task = manager
        .spawn(
            ProcessTask::shell("echo hello; sleep 1000"),
            SpawnOptions::foreground().no_timeout(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("output", || {
        manager.info(&id).expect("info").output.total_bytes > 0
    })
    .await;
    manager.detach(&id).expect("detach");
    manager
        .cancel(&id, CancelReason::user("bye"))
        .await
        .expect("cancel");
    let mut seen = Vec::new();
    while let Some(EventItem::Event(event)) = events.try_recv() {
        seen.push(event);
    }
    let types: Vec<_> = seen
        .iter()
        .map(|e| {
            serde_json::to_value(e).expect("json")["type"]
                .as_str()
                .expect("type")
                .to_string()
        })
        .collect();
    assert_eq!(
        types,
        [
            "task.started",
            "task.spilled",
            "task.detached",
            "task.finished"
        ]
    );
    assert!(seen.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    match &seen[3].kind {
        EventKind::Finished { status, reason, .. } => {
            assert_eq!(*status, TaskStatus::Cancelled);
            assert_eq!(
                reason.as_ref().and_then(|r| r.message.as_deref()),
                Some("bye")
            );
        }
        other => panic!("expected task.finished, got {other:?}"),
    }
    // The same events, in the task's own events.jsonl.
    let saved = std::fs::read_to_string(dir.path().join("tasks").join(&id).join("events.jsonl"))
        .expect("events");
    let saved: Vec<agent_tasks::Event> = saved
        .lines()
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect();
    assert_eq!(saved, seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let mut events = manager.subscribe();
    for _ in 0..2500 {
        let t = manager
            .spawn(
                FnTask::new("quick", |_| async { Ok(json!(null)) }),
                SpawnOptions::foreground(),
            )
            .expect("spawn");
        t.wait_foreground().await;
    }
    let mut missed = 0;
    let mut received = 0;
    while let Some(item) = events.try_recv() {
        match item {
            EventItem::Lagged { missed: n } => missed += n,
            EventItem::Event(_) => received += 1,
        }
    }
    assert!(missed > 0, "the subscriber lagged");
    assert_eq!(
        missed + received,
        5000,
        "every event is either received or counted as missed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_files_are_recorded_when_asked() {
    let (manager, dir) = manager_in_temp(ManagerConfig::default());
    let work = tempfile::tempdir().expect("work dir");
    std::fs::write(work.path().join(".gitignore"), "*.tmp\n").expect("write");
    std::fs::write(work.path().join("old.txt"), "old").expect("write");
    std::fs::write(work.path().join("doomed.txt"), "x").expect("write");
    let task = manager
        .spawn(
            ProcessTask::shell(
                "echo more >> old.txt; rm doomed.txt; echo new > new.txt; echo t > scratch.tmp",
            )
            .cwd(work.path()),
            SpawnOptions::background().track_changes(work.path()),
        )
        .expect("spawn");
    let done = manager
        .collect(task.id().as_str(), None)
        .await
        .expect("collect");
    let changes = done
        .result()
        .expect("finished")
        .changed_files
        .clone()
        .expect("tracked");
    assert_eq!(changes.created, ["new.txt"]);
    assert_eq!(changes.modified, ["old.txt"]);
    assert_eq!(changes.deleted, ["doomed.txt"]);
    let saved = dir
        .path()
        .join("tasks")
        .join(task.id().as_str())
        .join("files.json");
    let saved: agent_tasks::ChangedFiles =
        serde_json::from_slice(&std::fs::read(saved).expect("read")).expect("json");
    assert_eq!(saved, changes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_owner_cancels_that_owners_tasks_except_keep_alive() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let sleep = || ProcessTask::argv(["sleep", "1000"]);
    let a1 = manager
        .spawn(sleep(), SpawnOptions::background().owner("a"))
        .expect("spawn");
    let a2 = manager
        .spawn(
            sleep(),
            SpawnOptions::background().owner("a").keep_alive(true),
        )
        .expect("spawn");
    let b1 = manager
        .spawn(sleep(), SpawnOptions::background().owner("b"))
        .expect("spawn");
    let closed = manager.close_owner("a", "session ended").await;
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].id, *a1.id());
    assert_eq!(closed[0].status, TaskStatus::Cancelled);
    for kept in [&a2, &b1] {
        assert_eq!(
            manager.info(kept.id().as_str()).expect("info").status,
            TaskStatus::Running
        );
    }
    manager.shutdown("").await;
    assert_eq!(
        manager.info(a2.id().as_str()).expect("info").status,
        TaskStatus::Running,
        "keep-alive"
    );
    manager
        .cancel(a2.id().as_str(), CancelReason::user(""))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreground_task_that_stays_small_leaves_nothing_on_disk() {
    let (manager, dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(ProcessTask::shell("echo small"), SpawnOptions::foreground())
        .expect("spawn");
    task.wait_foreground().await;
    assert!(!dir.path().join("tasks").exists());
    assert!(manager.notifications(None).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_root_has_one_manager_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = TaskManager::open(dir.path()).expect("open");
    let err = TaskManager::open(dir.path()).expect_err("second manager on the same root");
    assert_eq!(err.code(), "ROOT_IN_USE");
    let clone = first.clone();
    drop(first);
    assert!(
        TaskManager::open(dir.path()).is_err(),
        "a clone still holds the root"
    );
    drop(clone);
    TaskManager::open(dir.path()).expect("free again once the manager is gone");
}

/// A reader from outside sees a live host's root as held whatever other
/// locks come and go meanwhile (`/proc/locks`, read in pieces, can skip the
/// host's entry then), and its look never makes a host's `open` fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_root_reads_as_held_while_other_locks_churn() {
    use agent_tasks::inspect::RootReader;
    let dir = tempfile::tempdir().expect("tempdir");
    let held = dir.path().join("held");
    let manager = TaskManager::open(&held).expect("open");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Two threads take and drop 64 locks each, over and over: enough
    // entries that /proc/locks spans several pages.
    let churners: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            let files: Vec<std::fs::File> = (0..64)
                .map(|i| {
                    std::fs::File::create(dir.path().join(format!("lock-{t}-{i}"))).expect("file")
                })
                .collect();
            std::thread::spawn(move || {
                let mut files = files;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let locks: Vec<_> = files
                        .drain(..)
                        .map(|f| {
                            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
                                .expect("lock")
                        })
                        .collect();
                    files = locks
                        .into_iter()
                        .map(|l| l.unlock().expect("unlock"))
                        .collect();
                }
            })
        })
        .collect();
    let reader = RootReader::open(&held).expect("reader");
    let free = dir.path().join("free");
    let mut misses = 0;
    for round in 0..400 {
        if !reader.holder().expect("holder").is_held() {
            misses += 1;
        }
        // A host opening a free root while another reader looks at it.
        if round % 40 == 0 {
            let looker = {
                let free = free.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _ = RootReader::open(&free).and_then(|r| r.holder());
                    }
                })
            };
            let opened = TaskManager::open(&free).expect("a looker never makes open fail");
            drop(opened);
            looker.join().expect("looker");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for churner in churners {
        churner.join().expect("churner");
    }
    assert_eq!(misses, 0, "a held root read as free {misses} times in 400");
    drop(manager);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_that_leaves_nothing_running_frees_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = TaskManager::open(dir.path()).expect("open");
    let kept = first
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::background().keep_alive(true),
        )
        .expect("spawn");
    first.shutdown("").await;
    assert!(
        TaskManager::open(dir.path()).is_err(),
        "a keep-alive task still runs"
    );
    first
        .cancel(kept.id().as_str(), CancelReason::user(""))
        .await
        .expect("cancel");
    first.shutdown("").await;
    let second = TaskManager::open(dir.path()).expect("the root is free after the shutdown");
    assert_eq!(
        second.info(kept.id().as_str()).expect("info").status,
        TaskStatus::Cancelled
    );
}

/// Every file under `dir`, recursively, with its content.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            let content = std::fs::read(&path).unwrap_or_default();
            out.push((path, content));
        }
    }
    out
}

/// Issue 20 item 7: a root removed while its manager holds it, and made
/// again by a second manager at the same path, is never written by the
/// first one: none of its later records (task folders, events, output
/// logs, notifications, the foreground journal) land in the second's root,
/// and the second loads none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_root_reopened_by_a_second_manager_gets_nothing_of_the_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let first = TaskManager::open(&root).expect("open the first");
    let early = first
        .spawn(ProcessTask::shell("echo early"), SpawnOptions::background())
        .expect("spawn");
    first
        .collect(early.id().as_str(), None)
        .await
        .expect("collect");
    std::fs::remove_dir_all(&root).expect("remove the root");
    // A new folder at the path: a second manager may have it.
    let second = TaskManager::open(&root).expect("open the second");
    let mine = second
        .spawn(
            ProcessTask::shell("echo second"),
            SpawnOptions::background(),
        )
        .expect("spawn");
    second
        .collect(mine.id().as_str(), None)
        .await
        .expect("collect");

    // The first goes on: background tasks with output and notifications, a
    // foreground process (its journal record) that spills past its memory.
    let mut theirs = vec![early.id().to_string()];
    for _ in 0..3 {
        let t = first
            .spawn(ProcessTask::shell("echo late"), SpawnOptions::background())
            .expect("the first still spawns");
        theirs.push(t.id().to_string());
        first.collect(t.id().as_str(), None).await.expect("collect");
    }
    let fg = first
        .spawn(
            ProcessTask::shell("head -c 3000000 /dev/zero; sleep 0.2"),
            SpawnOptions::foreground().no_timeout(),
        )
        .expect("spawn");
    theirs.push(fg.id().to_string());
    first
        .collect(fg.id().as_str(), None)
        .await
        .expect("collect");
    first.shutdown("done").await;

    for (path, content) in files_under(&root) {
        let text = String::from_utf8_lossy(&content);
        for id in &theirs {
            assert!(
                !path.to_string_lossy().contains(id.as_str()) && !text.contains(id.as_str()),
                "{} holds a record of the first manager's {id}",
                path.display()
            );
        }
    }
    let listed: Vec<String> = second
        .list(&agent_tasks::ListFilter::default())
        .iter()
        .map(|i| i.id.to_string())
        .collect();
    assert_eq!(listed, [mine.id().to_string()]);
    second.shutdown("done").await;
    drop(second);
    // A later manager of the path loads the second's task only.
    let third = TaskManager::open(&root).expect("open the third");
    let listed: Vec<String> = third
        .list(&agent_tasks::ListFilter::default())
        .iter()
        .map(|i| i.id.to_string())
        .collect();
    assert_eq!(listed, [mine.id().to_string()]);
    assert!(third
        .notifications(None)
        .iter()
        .all(|n| !theirs.contains(&n.task_id.to_string())));
}
