//! File descriptors stay bounded however many tasks a host runs: a finished
//! task holds none, and a root with 10,000 ended tasks opens and polls under
//! a low `RLIMIT_NOFILE`. Its own test binary (one test), because the limit
//! applies to the whole process.

#[allow(unused)]
mod common;

use std::time::Duration;

use agent_tasks::{
    BackgroundTask, FnTask, ListFilter, ProcessTask, SpawnOptions, TaskManager, TaskStatus,
};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use serde_json::json;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("fds").count()
}

/// The open descriptors of files the library keeps for spawning that can be
/// told by their path: `ns_last_pid` (kept once a walk needed it) and a
/// pooled cgroup's `cgroup.procs` and `cgroup.events`. (The kept
/// `/dev/null` cannot be told from any other.)
fn kept_named() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("fds")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|t| {
            t.ends_with("/ns_last_pid")
                || (t.contains("/agent-tasks-")
                    && (t.ends_with("/cgroup.procs") || t.ends_with("/cgroup.events")))
        })
        .collect()
}

/// A background function task that writes a little output (so it has a
/// log) and returns.
fn small_task(i: usize) -> impl BackgroundTask {
    FnTask::new("small", move |ctx| async move {
        ctx.stdout(format!("task {i} output line\n"));
        Ok(json!(i))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_tasks_hold_no_descriptors_and_ten_thousand_open_under_a_low_limit() {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, 128, hard).expect("setrlimit");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");

    // 300 tasks with logs, one after another, under a limit of 128: each one
    // would keep its log open if an ended task held a descriptor.
    let manager = TaskManager::open(&root).expect("open");
    let baseline = open_descriptors();
    for i in 0..300 {
        let task = manager
            .spawn(small_task(i), SpawnOptions::background())
            .expect("spawn");
        let outcome = manager
            .collect(task.id().as_str(), Some(Duration::from_secs(30)))
            .await
            .expect("collect");
        let result = outcome.result().expect("finished");
        assert_eq!(result.status, TaskStatus::Completed);
        assert!(result.output.spilled);
    }
    assert!(
        open_descriptors() <= baseline + 8,
        "{} descriptors open after 300 ended tasks (baseline {baseline})",
        open_descriptors()
    );
    // Process tasks on pipes and on a pseudo-terminal (its master, the
    // handle kept for resizing, its input writer): none is left open. On
    // a root of their own, so the count of ended tasks below stays.
    let processes = TaskManager::open(dir.path().join("processes")).expect("open");
    let baseline = open_descriptors();
    for i in 0..100 {
        let mut task = ProcessTask::shell("read line; echo got $line").interactive(true);
        if i % 2 == 0 {
            task = task.pty(80, 24);
        }
        let task = processes
            .spawn(task, SpawnOptions::background())
            .expect("spawn");
        processes.send(task.id().as_str(), "x\n").expect("send");
        let outcome = processes
            .collect(task.id().as_str(), Some(Duration::from_secs(30)))
            .await
            .expect("collect");
        assert_eq!(
            outcome.result().expect("finished").status,
            TaskStatus::Completed
        );
    }
    assert!(
        open_descriptors() <= baseline + 8,
        "{} descriptors open after 100 ended process tasks (baseline {baseline})",
        open_descriptors()
    );
    processes.shutdown("done").await;
    drop(processes);
    let ids = manager.ids();
    for id in &ids {
        let page = manager.poll(id.as_str(), 0, 1024).expect("poll");
        assert!(page.text().starts_with("task "));
    }
    manager.shutdown("done").await;
    drop(manager);

    // Make it 10,000 ended tasks: copies of one task folder under new ids.
    let tasks = root.join("tasks");
    let template_id = ids[0].to_string();
    let template = tasks.join(&template_id);
    for n in 0..(10_000 - ids.len()) {
        let id = format!("small-copy{n:06}");
        let copy = tasks.join(&id);
        std::fs::create_dir(&copy).expect("mkdir");
        for name in ["manifest.json", "result.json", "output.log", "events.jsonl"] {
            let text = std::fs::read(template.join(name)).expect("read");
            let text = String::from_utf8_lossy(&text).replace(&template_id, &id);
            std::fs::write(copy.join(name), text).expect("write");
        }
    }

    let before = open_descriptors();
    let reopened = TaskManager::open(&root).expect("open 10,000 ended tasks");
    assert!(
        reopened.load_problems().is_empty(),
        "{:?}",
        reopened.load_problems()
    );
    assert!(
        open_descriptors() <= before + 8,
        "open holds {} descriptors for 10,000 ended tasks",
        open_descriptors() - before
    );
    let listed = reopened.list(&ListFilter::default());
    assert_eq!(listed.len(), 10_000);
    for info in &listed {
        let page = reopened.poll(info.id.as_str(), 0, 1024).expect("poll");
        assert!(page.eof);
        assert!(page.text().starts_with("task "), "{}", page.text());
    }
    assert!(open_descriptors() <= before + 8);
    // gc frees the disk: nothing holds the logs open.
    let report = reopened.gc(None, Some(0)).expect("gc");
    assert_eq!(report.removed.len(), 10_000);
    assert_eq!(std::fs::read_dir(&tasks).expect("tasks").count(), 0);
    reopened.shutdown("done").await;
    drop(reopened);

    // The files kept open to make spawns cheaper (`/dev/null`,
    // `ns_last_pid`, a reused cgroup's two files) give way once descriptors
    // run out: a spawn that finds none left closes them, and none are kept
    // from then on.
    let tight = TaskManager::open(dir.path().join("tight")).expect("open");
    let echo = || async {
        let task = tight
            .spawn(ProcessTask::shell("echo hi"), SpawnOptions::foreground())
            .expect("spawn");
        match task.wait_foreground().await {
            agent_tasks::ForegroundOutcome::Finished(result) => result,
            agent_tasks::ForegroundOutcome::Detached(_) => panic!("the task was detached"),
        }
    };
    // One task first: every file the spawns keep is open now (which ones
    // depends on the containment: with every child born in its cgroup no
    // walk reads `ns_last_pid`).
    assert_eq!(echo().await.status, TaskStatus::Completed);
    let kept = open_descriptors();
    let named = kept_named();
    // The kept `/dev/null` besides the named ones.
    let kept_files = named.len() + 1;
    let highest = std::fs::read_dir("/proc/self/fd")
        .expect("fds")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .expect("a descriptor");
    // Every number up to the highest taken (the earlier parts closed many),
    // and the limit just above it: not one descriptor is free.
    setrlimit(Resource::RLIMIT_NOFILE, highest + 64, hard).expect("setrlimit");
    let mut fillers = Vec::new();
    loop {
        let filler = std::fs::File::open("/dev/null").expect("/dev/null");
        if std::os::fd::AsRawFd::as_raw_fd(&filler) as u64 > highest {
            break;
        }
        fillers.push(filler);
    }
    let filled = open_descriptors();
    setrlimit(Resource::RLIMIT_NOFILE, highest + 1, hard).expect("setrlimit");
    let starved = echo().await;
    assert_eq!(starved.status, TaskStatus::Failed);
    assert!(
        starved
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Too many open files")),
        "{:?}",
        starved.error
    );
    // (Room for the count itself: reading /proc/self/fd takes one.)
    setrlimit(Resource::RLIMIT_NOFILE, highest + 64, hard).expect("setrlimit");
    let after = open_descriptors();
    assert!(
        after + kept_files <= filled && kept_named().is_empty(),
        "the kept files stayed open: {after} descriptors, {filled} before the starved spawn; \
         {:?} of {named:?}",
        kept_named()
    );
    setrlimit(Resource::RLIMIT_NOFILE, 128, hard).expect("setrlimit");
    drop(fillers);
    // With room again tasks run, and nothing is kept open any more.
    for _ in 0..3 {
        assert_eq!(echo().await.status, TaskStatus::Completed);
    }
    assert!(
        open_descriptors() + kept_files <= kept && kept_named().is_empty(),
        "files are kept open again: {} descriptors, {kept} while they were kept",
        open_descriptors()
    );
    tight.shutdown("done").await;
}
