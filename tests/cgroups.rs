//! Task cgroups through the public API, in a test binary of their own (the
//! pool of idle cgroups is the process's): a task's cgroup is reused by the
//! next task once it is empty, never while a process of the earlier task is
//! in it; the pool stays bounded; a manager's shutdown (or drop) removes
//! it; the
//! cgroups a dead host left behind are swept, a live host's are not.
//!
//! On a host where no cgroup can be made (no cgroup2 mount, no write
//! permission) there is nothing to test: the containment tests of
//! `process.rs` check the fallback there.

mod common;

use std::path::{Path, PathBuf};

use agent_tasks::{
    Containment, ForegroundOutcome, ManagerConfig, ProcessTask, SpawnOptions, TaskStatus,
};
use common::{manager_in_temp, own_cgroup_dir, process_is_dead, wait_for};

/// This host's task cgroups (`agent-tasks-h<pid>-…`).
fn our_cgroups(parent: &Path) -> Vec<PathBuf> {
    let prefix = format!("agent-tasks-h{}-", std::process::id());
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(parent)
        .expect("listing the cgroup")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// The cgroup folder process `pid` is in, by its name.
fn cgroup_name_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(path.trim().rsplit('/').next()?.to_string())
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("fds").count()
}

/// A pid no process has (one that just ended and was reaped).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait true");
    assert!(process_is_dead(pid));
    pid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroups_are_reused_when_empty_bounded_swept_and_removed_at_shutdown() {
    let Some(parent) = own_cgroup_dir() else {
        eprintln!("no cgroup can be made here: nothing to test");
        return;
    };
    // Leftovers: one of a host that is gone, one of a live host (pid 1).
    let dead = parent.join(format!("agent-tasks-h{}-7", dead_pid()));
    let live = parent.join("agent-tasks-h1-7");
    std::fs::create_dir(&dead).expect("making a dead host's leftover");
    let _ = std::fs::create_dir(&live);
    let _remove_live = RemoveOnDrop(live.clone());

    let (manager, _dir) = manager_in_temp(ManagerConfig::default());

    // A task whose root leaves an escapee (a new session) behind, then
    // ends: the escapee is in the task's cgroup and is killed with it.
    let escapes = manager
        .spawn(
            ProcessTask::shell("setsid sleep 1000 & echo $!"),
            SpawnOptions::foreground(),
        )
        .expect("spawn");
    let escapes_id = escapes.id().to_string();
    let ForegroundOutcome::Finished(first) = escapes.wait_foreground().await else {
        panic!("the task was detached");
    };
    assert_eq!(first.status, TaskStatus::Completed, "{:?}", first.error);
    let info = manager.info(&escapes_id).expect("info");
    assert_eq!(info.containment, Some(Containment::Cgroup));
    let text = String::from_utf8(common::read_all(&manager, &escapes_id)).expect("utf-8");
    let escapee: u32 = text.trim().parse().expect("the escapee's pid");
    wait_for("the escapee to be killed", || process_is_dead(escapee)).await;

    // The leftover of the dead host was swept when the first cgroup was
    // made; the live host's stays.
    assert!(!dead.exists(), "a dead host's empty cgroup was left");
    assert!(live.exists(), "a live host's cgroup was removed");

    // Sequential tasks reuse one cgroup: the count does not grow, and each
    // task runs in a cgroup of this host with nothing else in it.
    for i in 0..20 {
        let task = manager
            .spawn(
                ProcessTask::shell("echo $$; cat /proc/self/cgroup >/dev/null"),
                SpawnOptions::foreground(),
            )
            .expect("spawn");
        let id = task.id().to_string();
        let ForegroundOutcome::Finished(r) = task.wait_foreground().await else {
            panic!("the task was detached");
        };
        assert_eq!(r.status, TaskStatus::Completed, "task {i}: {:?}", r.error);
        assert_eq!(
            manager.info(&id).expect("info").containment,
            Some(Containment::Cgroup)
        );
        let held = our_cgroups(&parent);
        assert_eq!(held.len(), 1, "task {i}: cgroups of this host: {held:?}");
    }

    // Tasks at once get a cgroup each; a running task's processes are
    // alone in theirs.
    let descriptors_before = open_descriptors();
    let running: Vec<_> = (0..12)
        .map(|_| {
            manager
                .spawn(
                    ProcessTask::shell("echo $$; sleep 1000"),
                    SpawnOptions::background(),
                )
                .expect("spawn")
        })
        .collect();
    let mut names = std::collections::HashSet::new();
    for task in &running {
        let id = task.id().to_string();
        let pid = || -> Option<u32> {
            let page = manager.poll(&id, 0, 100).expect("poll");
            page.text().lines().next()?.trim().parse().ok()
        };
        wait_for("the task's pid", || pid().is_some()).await;
        let pid = pid().expect("pid");
        let name = cgroup_name_of(pid).expect("the task's cgroup");
        assert!(
            name.starts_with(&format!("agent-tasks-h{}-", std::process::id())),
            "{name}"
        );
        assert!(names.insert(name.clone()), "two running tasks share {name}");
    }
    assert_eq!(our_cgroups(&parent).len(), 12);
    for task in &running {
        manager
            .cancel(task.id().as_str(), agent_tasks::CancelReason::user("test"))
            .await
            .expect("cancel");
    }
    // Once they ended, at most the pool's bound stays (8 idle cgroups).
    let left = our_cgroups(&parent);
    assert!(
        left.len() <= 8,
        "more idle cgroups than the pool keeps: {left:?}"
    );
    // The ended tasks hold no descriptor, and the pool keeps only the files
    // of the cgroup it kept before these tasks.
    assert!(
        open_descriptors() <= descriptors_before,
        "{} descriptors open after 12 tasks ended (before them: {descriptors_before})",
        open_descriptors()
    );

    // Shutdown removes this host's cgroups.
    manager.shutdown("done").await;
    assert_eq!(our_cgroups(&parent), Vec::<PathBuf>::new());

    // A manager dropped without a shutdown, its task still running: the
    // task is stopped, and its cgroup is removed, not kept for nobody.
    let (dropped, _dir2) = manager_in_temp(ManagerConfig::default());
    let task = dropped
        .spawn(
            ProcessTask::shell("echo $$; sleep 1000"),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let pid = || -> Option<u32> {
        let page = dropped.poll(&id, 0, 100).expect("poll");
        page.text().lines().next()?.trim().parse().ok()
    };
    wait_for("the task's pid", || pid().is_some()).await;
    let sleeping = pid().expect("pid");
    assert_eq!(our_cgroups(&parent).len(), 1);
    drop(task);
    drop(dropped);
    wait_for("the task's process to be killed", || {
        process_is_dead(sleeping)
    })
    .await;
    wait_for("its cgroup to be removed", || {
        our_cgroups(&parent).is_empty()
    })
    .await;
}

/// Removes a folder made by the test, whatever the test's outcome.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}
