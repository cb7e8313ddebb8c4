//! Records stay true through crashes and full disks, through the public API:
//! a real host (this test binary re-run as a child process) is SIGKILLed at
//! the instant that matters, and the root is reopened here, in another
//! process. Disk-full cases run on a small tmpfs mounted by the test (and
//! unmounted however it ends).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use agent_tasks::{
    CancelKind, ManagerConfig, NotificationKind, ProcessTask, SpawnOptions, TaskManager, TaskStatus,
};
use common::{process_is_dead, wait_for};
use serde_json::json;

/// The folder a crash host works in (its root is `<dir>/root`).
const CRASH_DIR: &str = "AGENT_TASKS_CRASH_DIR";
/// Which host to run (see `crash_host`).
const SCENARIO: &str = "AGENT_TASKS_CRASH_SCENARIO";

/// The host that gets killed, run in a child process by the tests below;
/// it writes `<dir>/ready.json` when it is where the test wants it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a host run in a child process by the crash tests"]
async fn crash_host() {
    let (Some(dir), Ok(scenario)) = (std::env::var_os(CRASH_DIR), std::env::var(SCENARIO)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let root = dir.join("root");
    // The manager is held until the host is killed.
    let (ready, _manager) = match scenario.as_str() {
        "end" => end_host(&dir, &root).await,
        "queued" => queued_host(&root).await,
        "cap" => cap_host(&root).await,
        "journal" => journal_host(&dir, &root).await,
        other => panic!("unknown scenario {other}"),
    };
    write_ready(&dir, &ready);
    std::future::pending::<()>().await;
}

fn write_ready(dir: &Path, ready: &serde_json::Value) {
    let path = dir.join("ready.json");
    std::fs::write(path.with_extension("tmp"), ready.to_string()).expect("write");
    std::fs::rename(path.with_extension("tmp"), path).expect("rename");
}

/// A crash host: SIGKILLed and reaped however the test ends.
struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `crash_host` with `scenario` in a child process.
fn start_host(dir: &Path, scenario: &str, env: &[(&str, &str)]) -> Host {
    let mut command = Command::new(std::env::current_exe().expect("exe"));
    command
        .args(["crash_host", "--exact", "--ignored", "--nocapture"])
        .env(CRASH_DIR, dir)
        .env(SCENARIO, scenario)
        .stdout(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    Host(command.spawn().expect("start the host"))
}

/// Waits for `file` in `dir`, then SIGKILLs the host.
async fn kill_when(host: &mut Host, dir: &Path, file: &str) {
    let child = &mut host.0;
    let path = dir.join(file);
    wait_for(file, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the host exited early: {status}");
        }
        path.exists()
    })
    .await;
    child.kill().expect("SIGKILL the host");
    child.wait().expect("reap the host");
}

fn read_ready(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("ready.json")).expect("ready")).expect("json")
}

fn str_of(value: &serde_json::Value, key: &str) -> String {
    value[key].as_str().expect(key).to_string()
}

fn reopen(root: &Path) -> TaskManager {
    let manager = TaskManager::open(root).expect("reopen");
    assert!(
        manager.load_problems().is_empty(),
        "{:?}",
        manager.load_problems()
    );
    manager
}

// ---------------------------------------------------------------------------
// An end is told once, at any crash point of its saving.

/// Tasks ended at once per crash, so a late save racing an end (a pid's
/// manifest save still queued when the end is decided) is met too.
const ENDS: usize = 16;

/// Background tasks that end; the host stops at the pause point the test
/// chose (`AGENT_TASKS_TEST_PAUSE_AT`). At `end.published` it runs one and
/// first acknowledges its end notification, as a host that drained it would.
async fn end_host(dir: &Path, root: &Path) -> (serde_json::Value, TaskManager) {
    let manager = TaskManager::open(root).expect("open");
    let at = std::env::var("AGENT_TASKS_TEST_PAUSE_AT").expect("a pause point");
    let count = if at == "end.published" { 1 } else { ENDS };
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            manager
                .spawn(
                    ProcessTask::shell("echo the-end"),
                    SpawnOptions::background().owner("s1"),
                )
                .expect("spawn")
        })
        .collect();
    if at == "end.published" {
        wait_for("the end notification", || {
            !manager.notifications(Some("s1")).is_empty()
        })
        .await;
        let ids: Vec<_> = manager
            .notifications(Some("s1"))
            .into_iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(manager.ack(&ids).expect("ack"), 1);
        std::fs::write(dir.join("acked"), "").expect("write");
    }
    let ids: Vec<_> = tasks.iter().map(|t| t.id().to_string()).collect();
    (json!({ "ids": ids }), manager)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_is_told_once_whatever_instant_the_host_dies() {
    for point in [
        "end.result_saved",
        "end.notice_saved",
        "end.manifest_saved",
        "end.published",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let paused = dir.path().join("paused");
        let mut host = start_host(
            dir.path(),
            "end",
            &[
                ("AGENT_TASKS_TEST_PAUSE_AT", point),
                (
                    "AGENT_TASKS_TEST_PAUSE_FILE",
                    paused.to_str().expect("utf-8"),
                ),
            ],
        );
        let acked = point == "end.published";
        let count = if acked { 1 } else { ENDS };
        let root = dir.path().join("root");
        let tasks_dir = root.join("tasks");
        let ended = || {
            std::fs::read_dir(&tasks_dir)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.path().join("result.json").exists())
                        .count()
                })
                .unwrap_or(0)
        };
        // Every task is somewhere between its saved result and the pause
        // point (or acknowledged, at `end.published`): each is a crash point.
        wait_for("the ends to reach the pause point", || {
            paused.exists() && ended() == count && (!acked || dir.path().join("acked").exists())
        })
        .await;
        kill_when(&mut host, dir.path(), "paused").await;
        let ids: Vec<String> = std::fs::read_dir(&tasks_dir)
            .expect("tasks")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(ids.len(), count, "{point}: {ids:?}");

        let manager = reopen(&root);
        let notes = manager.notifications(None);
        for id in &ids {
            let info = manager.info(id).expect("info");
            assert_eq!(
                info.status,
                TaskStatus::Completed,
                "{point}: the saved result is the truth"
            );
            let mine: Vec<_> = notes.iter().filter(|n| n.task_id.as_str() == id).collect();
            if acked {
                assert!(
                    mine.is_empty(),
                    "{point}: an acknowledged end came back: {mine:?}"
                );
            } else {
                assert_eq!(mine.len(), 1, "{point}: {id} is told once: {notes:?}");
                assert_eq!(mine[0].kind, NotificationKind::Finished, "{point}");
                assert_eq!(mine[0].status, TaskStatus::Completed, "{point}");
            }
        }
        assert_eq!(notes.len(), if acked { 0 } else { count }, "{point}");
        let note_ids: Vec<_> = notes.iter().map(|n| n.id.clone()).collect();
        assert_eq!(manager.ack(&note_ids).expect("ack"), note_ids.len());
        drop(manager);
        // Once acknowledged, never again.
        let again = reopen(&root);
        assert!(again.notifications(None).is_empty(), "{point}");
        for id in &ids {
            assert_eq!(
                again.info(id).expect("info").status,
                TaskStatus::Completed,
                "{point}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// A queued task that never started is not reported as having run.

async fn queued_host(root: &Path) -> (serde_json::Value, TaskManager) {
    let manager = TaskManager::new(
        ManagerConfig::default()
            .root(root)
            .max_background(1)
            .queue_over_capacity(true),
    )
    .expect("open");
    let bg = SpawnOptions::background().owner("s1").no_timeout();
    let running = manager
        .spawn(ProcessTask::argv(["sleep", "1000"]), bg.clone())
        .expect("spawn");
    let queued: Vec<_> = (0..2)
        .map(|_| {
            manager
                .spawn(ProcessTask::shell("echo never-ran"), bg.clone())
                .expect("spawn")
        })
        .collect();
    for task in &queued {
        assert_eq!(
            manager.info(task.id().as_str()).expect("info").status,
            TaskStatus::Queued
        );
        let manifest = root
            .join("tasks")
            .join(task.id().as_str())
            .join("manifest.json");
        wait_for("the queued manifest", || {
            std::fs::read_to_string(&manifest).is_ok_and(|m| m.contains("\"queued\""))
        })
        .await;
    }
    let manifest = root
        .join("tasks")
        .join(running.id().as_str())
        .join("manifest.json");
    wait_for("the pid to be saved", || {
        std::fs::read_to_string(&manifest).is_ok_and(|m| m.contains("process_start_time"))
    })
    .await;
    let ready = json!({
        "running": running.id(),
        "pid": manager.info(running.id().as_str()).expect("info").pid,
        "queued": queued.iter().map(|t| t.id().to_string()).collect::<Vec<_>>(),
    });
    (ready, manager)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_tasks_that_never_started_are_not_reported_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut host = start_host(dir.path(), "queued", &[]);
    kill_when(&mut host, dir.path(), "ready.json").await;
    let ready = read_ready(dir.path());
    let manager = reopen(&dir.path().join("root"));
    let running = str_of(&ready, "running");
    assert_eq!(
        manager.info(&running).expect("info").status,
        TaskStatus::Lost
    );
    for id in ready["queued"].as_array().expect("ids") {
        let id = id.as_str().expect("id");
        let info = manager.info(id).expect("info");
        assert_eq!(info.status, TaskStatus::Cancelled, "{info:?}");
        let reason = info.cancel_reason.expect("a reason");
        assert_eq!(reason.kind, CancelKind::Shutdown);
        assert_eq!(
            reason.message.as_deref(),
            Some("the host stopped before it started")
        );
        assert_eq!(info.duration_ms, 0);
        assert!(info.error.is_none(), "{:?}", info.error);
        let result = manager.collect(id, None).await.expect("collect");
        let agent_tasks::CollectOutcome::Finished(result) = result else {
            panic!("not finished");
        };
        assert_eq!(result.status, TaskStatus::Cancelled);
        // Quiet, like any host cancel (unless the host asks for those).
        assert!(manager
            .notifications(None)
            .iter()
            .all(|n| n.task_id.as_str() != id));
    }
    // Only the task that ran is told about, as orphaned.
    let notes = manager.notifications(None);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].kind, NotificationKind::Orphaned);
    let pid = ready["pid"].as_u64().expect("pid") as u32;
    manager.kill_orphan(&running).expect("kill the orphan");
    wait_for("the orphan to die", || process_is_dead(pid)).await;
}

// ---------------------------------------------------------------------------
// A capped task's counts and cursors survive a crash.

const FLOOD: u64 = 40_000_000;

async fn cap_host(root: &Path) -> (serde_json::Value, TaskManager) {
    let manager =
        TaskManager::new(ManagerConfig::default().root(root).disk_limit(1 << 20)).expect("open");
    let task = manager
        .spawn(
            ProcessTask::shell(format!(
                "head -c {FLOOD} /dev/zero | tr '\\0' x; sleep 1000"
            )),
            SpawnOptions::background().owner("s1").no_timeout(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("the flood", || {
        manager.info(&id).expect("info").output.total_bytes == FLOOD
    })
    .await;
    // A reader that followed the output holds a cursor at its end.
    let page = manager.poll(&id, FLOOD, 16).expect("poll");
    assert_eq!(page.next_cursor, FLOOD);
    let info = manager.info(&id).expect("info");
    assert!(info.output.omitted_bytes > 0);
    // The counts past the cap are saved as they grow (the last save may
    // still be under way when the host dies: what is on disk is a bound).
    let manifest = root.join("tasks").join(&id).join("manifest.json");
    let saved_total = || {
        std::fs::read(&manifest)
            .ok()
            .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok())
            .and_then(|m| m["info"]["output"]["total_bytes"].as_u64())
            .unwrap_or(0)
    };
    wait_for("the counts past the cap to be saved", || {
        saved_total() > FLOOD / 2
    })
    .await;
    let ready = json!({
        "id": id, "cursor": page.next_cursor, "pid": info.pid, "saved": saved_total(),
    });
    (ready, manager)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_task_keeps_its_counts_and_cursors_across_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut host = start_host(dir.path(), "cap", &[]);
    kill_when(&mut host, dir.path(), "ready.json").await;
    let ready = read_ready(dir.path());
    let id = str_of(&ready, "id");
    let cursor = ready["cursor"].as_u64().expect("cursor");
    let manager = reopen(&dir.path().join("root"));
    let info = manager.info(&id).expect("info");
    assert_eq!(info.status, TaskStatus::Lost);
    let out = &info.output;
    // The saved counts are a lower bound of what was seen, never the kept
    // head's length; what the cap dropped is reported omitted.
    let saved = ready["saved"].as_u64().expect("saved");
    assert!(
        out.total_bytes >= saved && out.total_bytes > FLOOD / 2 && out.total_bytes <= FLOOD,
        "{out:?}"
    );
    assert!(out.disk_bytes < 1 << 20, "{out:?}");
    assert_eq!(
        out.omitted_bytes,
        out.total_bytes - out.disk_bytes,
        "{out:?}"
    );
    assert_eq!(out.stdout_bytes, out.total_bytes, "{out:?}");

    // The cursor the reader held is answered: the end, nothing refused.
    let page = manager.poll(&id, cursor, 1024).expect("a held cursor");
    assert!(page.eof && page.data.is_empty(), "{page:?}");
    assert_eq!(page.next_cursor, cursor);

    // Reading from the start: the kept head, then the gap, reported.
    let mut at = 0;
    let mut data = 0u64;
    let mut omitted = 0u64;
    loop {
        let page = manager.poll(&id, at, 1 << 20).expect("poll");
        data += page.data.len() as u64;
        omitted += page.omitted_bytes;
        at = page.next_cursor;
        if page.eof {
            break;
        }
    }
    assert_eq!(data, out.disk_bytes);
    assert_eq!(omitted, out.omitted_bytes);
    assert_eq!(at, out.total_bytes);

    let pid = ready["pid"].as_u64().expect("pid") as u32;
    manager.kill_orphan(&id).expect("kill the orphan");
    wait_for("the orphan to die", || process_is_dead(pid)).await;
}

// ---------------------------------------------------------------------------
// A journal append is all or nothing, on a disk that fills and frees.

/// A small tmpfs mounted for one test, unmounted (and its folder removed)
/// however the test ends.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `path`; `None` (with the reason printed)
    /// where this process may not mount.
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs {
                path: path.to_path_buf(),
            }),
            other => {
                eprintln!("skipped: cannot mount a tmpfs here ({other:?}); run as root");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Fills the file system of `dir` with `<dir>/filler` until it is full.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join("filler")).expect("filler");
    let block = vec![0u8; 64 * 1024];
    loop {
        match file.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // Whatever part of a page is left.
    while file.write(&[0u8]).is_ok_and(|n| n == 1) {}
}

async fn journal_host(dir: &Path, root: &Path) -> (serde_json::Value, TaskManager) {
    let manager = TaskManager::open(root).expect("open");
    let fg = || SpawnOptions::foreground().owner("s1").no_timeout();
    let journal = root.join("foreground").join("records.jsonl");
    let mut events = manager.subscribe();
    let mut pids = Vec::new();
    let spawn = |manager: &TaskManager| {
        manager
            .spawn(ProcessTask::argv(["sleep", "1000"]), fg())
            .expect("spawn")
    };
    let first = spawn(&manager);
    wait_for("the first record", || {
        std::fs::read_to_string(&journal).is_ok_and(|j| j.contains(first.id().as_str()))
    })
    .await;
    pids.push(manager.info(first.id().as_str()).expect("info").pid);
    // Full disk: records go on being appended until one does not fit.
    fill(root);
    let mut failed = false;
    for _ in 0..64 {
        let task = spawn(&manager);
        wait_for("a pid", || {
            manager
                .info(task.id().as_str())
                .is_ok_and(|i| i.pid.is_some())
        })
        .await;
        pids.push(manager.info(task.id().as_str()).expect("info").pid);
        while let Some(item) = events.try_recv() {
            if let agent_tasks::EventItem::Event(event) = item {
                if let agent_tasks::EventKind::SinkError { sink, .. } = &event.kind {
                    failed |= sink == "foreground record";
                }
            }
        }
        if failed {
            break;
        }
    }
    assert!(failed, "the journal never ran out of room");
    // Space comes back; a task started now must be tracked.
    std::fs::remove_file(root.join("filler")).expect("free the disk");
    let after = spawn(&manager);
    wait_for("the record after the disk freed", || {
        std::fs::read_to_string(&journal).is_ok_and(|j| j.contains(after.id().as_str()))
    })
    .await;
    let after_pid = manager.info(after.id().as_str()).expect("info").pid;
    pids.push(after_pid);
    let _ = dir;
    let ready = json!({ "after": after.id(), "after_pid": after_pid, "pids": pids });
    (ready, manager)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_appended_after_a_full_disk_is_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(_tmpfs) = Tmpfs::mount(&dir.path().join("root"), "256k") else {
        return;
    };
    let mut host = start_host(dir.path(), "journal", &[]);
    kill_when(&mut host, dir.path(), "ready.json").await;
    let ready = read_ready(dir.path());
    let pids: Vec<u32> = ready["pids"]
        .as_array()
        .expect("pids")
        .iter()
        .filter_map(|p| p.as_u64().map(|p| p as u32))
        .collect();
    let after = str_of(&ready, "after");
    let manager = TaskManager::open(dir.path().join("root")).expect("reopen");
    let info = manager.info(&after);
    // The processes outlived their host: end them however the test ends.
    for pid in &pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let info = info.expect("the task started after the disk freed is known");
    assert_eq!(info.status, TaskStatus::Lost);
    assert_eq!(
        info.orphan_pid,
        ready["after_pid"].as_u64().map(|p| p as u32)
    );
    assert!(
        manager.load_problems().is_empty(),
        "{:?}",
        manager.load_problems()
    );
    drop(manager);
}

// ---------------------------------------------------------------------------
// Tasks that end while the disk is full are kept, and saved once it frees.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_end_on_a_full_disk_are_kept_and_saved_once_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let Some(_tmpfs) = Tmpfs::mount(&root, "256k") else {
        return;
    };
    let manager = TaskManager::open(&root).expect("open");
    fill(&root);
    let task = manager
        .spawn(
            ProcessTask::shell("echo on-a-full-disk; exit 3"),
            SpawnOptions::background().owner("s1"),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let agent_tasks::CollectOutcome::Finished(result) =
        manager.collect(&id, None).await.expect("collect")
    else {
        panic!("not finished");
    };
    assert_eq!(result.status, TaskStatus::Failed);
    // Nothing could be written: all of it is kept in memory meanwhile.
    assert_eq!(manager.info(&id).expect("info").status, TaskStatus::Failed);
    let notes = manager.notifications(Some("s1"));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(!root
        .join("notifications")
        .join(format!("{}.json", notes[0].id))
        .exists());

    // Space comes back: the manager saves what it kept.
    std::fs::remove_file(root.join("filler")).expect("free the disk");
    let manifest = root.join("tasks").join(&id).join("manifest.json");
    let note_file = root
        .join("notifications")
        .join(format!("{}.json", notes[0].id));
    wait_for("the kept records to be saved", || {
        std::fs::read_to_string(&manifest).is_ok_and(|m| m.contains("\"failed\""))
            && note_file.exists()
    })
    .await;
    manager.shutdown("done").await;
    drop(manager);

    let again = reopen(&root);
    let info = again.info(&id).expect("the task survives the restart");
    assert_eq!(info.status, TaskStatus::Failed);
    assert_eq!(info.exit.and_then(|e| e.code), Some(3));
    let notes = again.notifications(Some("s1"));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].task_id.as_str(), id);
    assert_eq!(again.ack(&[notes[0].id.clone()]).expect("ack"), 1);
    again.shutdown("done").await;
    drop(again);
    assert!(reopen(&root).notifications(None).is_empty());
}

// ---------------------------------------------------------------------------
// `ack` of many ids acks exactly those.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_of_ten_thousand_ids_acks_exactly_those() {
    const PENDING: usize = 10_050;
    const ACKED: usize = 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let notes = dir.path().join("notifications");
    std::fs::create_dir_all(&notes).expect("mkdir");
    let ids: Vec<String> = (0..PENDING)
        .map(|i| format!("process-n{i:06}.end"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let task_id = id.trim_end_matches(".end");
        let note = json!({
            "id": id, "kind": "finished", "task_id": task_id, "owner": "s1",
            "task_kind": "process", "description": "true", "status": "completed",
            "duration_ms": 1, "output_tail": "", "created_at_ms": 1_000 + (i % 7) as u64,
            "text": format!("Background task {task_id} completed"),
        });
        std::fs::write(notes.join(format!("{id}.json")), note.to_string()).expect("write");
    }
    let manager = reopen(dir.path());
    assert_eq!(manager.notifications(None).len(), PENDING);
    // The ids to ack, with repeats and ids that are not pending.
    let mut to_ack: Vec<String> = ids[..ACKED].to_vec();
    to_ack.extend(ids[..10].iter().cloned());
    to_ack.push("process-gone0000.end".to_string());
    assert_eq!(manager.ack(&to_ack).expect("ack"), ACKED);
    let left: std::collections::BTreeSet<String> = manager
        .notifications(None)
        .into_iter()
        .map(|n| n.id)
        .collect();
    let expected: std::collections::BTreeSet<String> = ids[ACKED..].iter().cloned().collect();
    assert_eq!(left, expected);
    drop(manager);
    let again = reopen(dir.path());
    let left: std::collections::BTreeSet<String> = again
        .notifications(None)
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(left, expected);
}
