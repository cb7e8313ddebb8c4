//! Resource limits on real cgroups (issue 23): a memory hog killed at its
//! limit and said so (with its peak), the whole tree gone; a fork bomb
//! stopped at its pids limit with the host unharmed; a tree that left its
//! session still counted; usage present and plausible; limits refused or
//! reported as not enforced where containment is `ProcessGroup`. Every test
//! checks that the cgroups it made are gone afterwards.
//!
//! On a host without a writable v1 memory/pids hierarchy or delegated v2
//! controllers there is nothing to enforce with: those tests say so and
//! return (the refusal test still runs).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use agent_tasks::{
    CancelReason, Containment, Error, EventItem, EventKind, ForegroundOutcome, LimitKind,
    LimitReached, LimitScope, Limits, ManagerConfig, ProcessTask, SpawnOptions, TaskManager,
    TaskResult, TaskStatus, UnenforcedLimits, UsageSource,
};
use common::{manager_in_temp, wait_for};

const MIB: u64 = 1 << 20;

/// One test at a time: each checks that no limit cgroup of this process is
/// left once it is done, which another test running beside it would have.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This host's own folder in the v1 hierarchy of `controller`, if it has
/// one and it is writable.
fn own_v1_dir(controller: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
        list.split(',')
            .any(|c| c == controller)
            .then(|| path.trim().to_string())
    })?;
    let dir =
        PathBuf::from(format!("/sys/fs/cgroup/{controller}")).join(path.trim_start_matches('/'));
    let probe = dir.join(format!("agent-tasks-probe-{}", std::process::id()));
    (std::fs::create_dir(&probe).is_ok() && std::fs::remove_dir(&probe).is_ok()).then_some(dir)
}

/// Whether `controller` can be limited here (v1 hierarchy, or delegated v2).
fn can_limit(controller: &str) -> bool {
    let v2 = common::own_cgroup_dir()
        .and_then(|dir| std::fs::read_to_string(dir.join("cgroup.subtree_control")).ok())
        .is_some_and(|list| list.split_whitespace().any(|c| c == controller));
    v2 || own_v1_dir(controller).is_some()
}

/// The limit cgroups this test process made, still there: tasks' and
/// managers' ceilings (with what is inside them).
fn our_limit_cgroups() -> Vec<PathBuf> {
    let prefix = format!("agent-tasks-h{}-", std::process::id());
    let ours = |e: &std::fs::DirEntry| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with(&format!("{prefix}lim-")) || name.starts_with(&format!("{prefix}mgr-"))
    };
    let mut found: Vec<PathBuf> = ["memory", "pids", "cpu"]
        .iter()
        .filter_map(|c| own_v1_dir(c))
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter(ours)
        .map(|e| e.path())
        .collect();
    let inside: Vec<PathBuf> = found
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter(|e| e.path().is_dir() && ours(e))
        .map(|e| e.path())
        .collect();
    found.extend(inside);
    found
}

/// The ceiling cgroup of this process's manager in the v1 hierarchy of
/// `controller` (one manager with a ceiling at a time: `ONE_AT_A_TIME`).
fn ceiling_dir(controller: &str) -> Option<PathBuf> {
    let prefix = format!("agent-tasks-h{}-mgr-", std::process::id());
    std::fs::read_dir(own_v1_dir(controller)?)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
}

/// The `task.limit_reached` events received so far for `task`.
fn limit_events(events: &mut agent_tasks::EventSubscription, task: &str) -> Vec<LimitReached> {
    let mut found = Vec::new();
    while let Some(item) = events.try_recv() {
        if let EventItem::Event(event) = item {
            if let EventKind::LimitReached {
                limit,
                scope,
                value,
                count,
            } = event.kind
            {
                if event.task_id.as_str() == task {
                    found.push(LimitReached {
                        limit,
                        scope,
                        value,
                        count,
                    });
                }
            }
        }
    }
    found
}

async fn no_limit_cgroups_left() {
    wait_for("the task's limit cgroups to be removed", || {
        our_limit_cgroups().is_empty()
    })
    .await;
}

async fn run(manager: &TaskManager, task: ProcessTask) -> TaskResult {
    let handle = manager
        .spawn(task, SpawnOptions::foreground())
        .expect("spawn");
    let outcome = tokio::time::timeout(Duration::from_secs(120), handle.wait_foreground())
        .await
        .expect("the task ends");
    match outcome {
        ForegroundOutcome::Finished(result) => result,
        ForegroundOutcome::Detached(info) => panic!("detached: {info:?}"),
    }
}

fn output_of(manager: &TaskManager, result: &TaskResult) -> String {
    String::from_utf8_lossy(&common::read_all(manager, result.id.as_str())).into_owned()
}

fn config() -> ManagerConfig {
    ManagerConfig::default().foreground_timeout(Some(Duration::from_secs(300)))
}

/// Allocates (and touches) `mib` MiB in 8 MiB steps, then prints `done`.
fn python_allocating(mib: u64) -> String {
    format!(
        "python3 -c 'import sys\nkept=[]\nfor i in range({}):\n    kept.append(b\"x\" * (8<<20))\nprint(\"done\"); sys.stdout.flush()'",
        mib / 8
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_is_killed_at_its_limit_said_so_and_its_whole_tree_goes() {
    let _alone = ONE_AT_A_TIME.lock().await;
    if !can_limit("memory") {
        eprintln!("no memory controller to limit with here: nothing to test");
        return;
    }
    let (manager, _dir) = manager_in_temp(config());
    // The hog left its session (setsid) and a sibling sleeps on: both are
    // the task's; the hog is counted against the limit, and once it is
    // killed the sleeper goes too (else `wait` would hold the task 1000 s).
    let script = format!(
        "setsid sleep 1000 & setsid {} ; wait",
        python_allocating(512)
    );
    let limit = 64 * MIB;
    let result = run(
        &manager,
        ProcessTask::shell(script).limits(Limits {
            memory: Some(limit),
            ..Limits::default()
        }),
    )
    .await;
    assert_eq!(result.status, TaskStatus::Failed, "{result:?}");
    let error = result.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("killed: memory limit 64 MiB reached (OOM), peak "),
        "{error}"
    );
    assert!(!output_of(&manager, &result).contains("done"));
    let usage = result.usage.expect("usage in the result");
    assert_eq!(usage.memory_source, UsageSource::Cgroup);
    assert!(
        usage.peak_memory_bytes > limit * 3 / 4 && usage.peak_memory_bytes <= limit + MIB,
        "peak {} for a limit of {limit}",
        usage.peak_memory_bytes
    );
    // The info says what was enforced.
    let info = manager.info(result.id.as_str()).expect("info");
    let limits = info.limits.expect("limits in the info");
    assert_eq!(limits.enforced.memory, Some(limit));
    assert!(limits.not_enforced.is_none());
    no_limit_cgroups_left().await;
    // The host goes on: another task runs.
    let after = run(&manager, ProcessTask::shell("echo alive")).await;
    assert_eq!(after.status, TaskStatus::Completed);
    manager.shutdown("test done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_meets_eagain_at_its_pids_limit_and_the_host_is_unharmed() {
    let _alone = ONE_AT_A_TIME.lock().await;
    if !can_limit("pids") {
        eprintln!("no pids controller to limit with here: nothing to test");
        return;
    }
    let (manager, _dir) = manager_in_temp(config());
    let mut events = manager.subscribe();
    // Bounded: at most 200 forks, each child sleeps (and goes with the
    // task at its end).
    let bomb = "import os, time, errno\n\
                n = 0\n\
                for i in range(200):\n\
                \x20   try:\n\
                \x20       pid = os.fork()\n\
                \x20   except OSError as e:\n\
                \x20       print('fork failed', errno.errorcode[e.errno], 'after', n, flush=True)\n\
                \x20       break\n\
                \x20   if pid == 0:\n\
                \x20       time.sleep(60)\n\
                \x20       os._exit(0)\n\
                \x20   n += 1\n\
                else:\n\
                \x20   print('never failed', flush=True)\n";
    let result = run(
        &manager,
        ProcessTask::argv(["python3", "-c", bomb]).limits(Limits {
            pids: Some(16),
            ..Limits::default()
        }),
    )
    .await;
    let output = output_of(&manager, &result);
    assert_eq!(result.status, TaskStatus::Completed, "{result:?} {output}");
    let after: u32 = output
        .trim()
        .strip_prefix("fork failed EAGAIN after ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no EAGAIN: {output}"));
    assert!(after < 16, "{after} forks under a limit of 16");
    // The limit reached is in the usage, and told as an event.
    let reached = result.usage.expect("usage").limits_reached;
    assert_eq!(reached.len(), 1, "{reached:?}");
    assert_eq!(
        (reached[0].limit, reached[0].scope, reached[0].value),
        (LimitKind::Pids, LimitScope::Task, 16.0)
    );
    assert!(reached[0].count >= 1);
    assert_eq!(limit_events(&mut events, result.id.as_str()), reached);
    no_limit_cgroups_left().await;
    let again = run(&manager, ProcessTask::shell("sh -c 'echo $$' & wait")).await;
    assert_eq!(again.status, TaskStatus::Completed);
    manager.shutdown("test done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_written_where_the_child_is_from_its_birth() {
    let _alone = ONE_AT_A_TIME.lock().await;
    if !can_limit("memory") || own_v1_dir("memory").is_none() || own_v1_dir("cpu").is_none() {
        eprintln!("no v1 memory and cpu hierarchies here: nothing to test");
        return;
    }
    let (manager, _dir) = manager_in_temp(config());
    // What the child itself sees of its cgroups (v1 on this machine).
    let script = "m=/sys/fs/cgroup/memory$(grep ':memory:' /proc/self/cgroup | cut -d: -f3); \
                  c=/sys/fs/cgroup/cpu$(grep ':cpu:' /proc/self/cgroup | cut -d: -f3); \
                  cat $m/memory.limit_in_bytes; \
                  cat $m/memory.memsw.limit_in_bytes 2>/dev/null || cat $m/memory.swappiness; \
                  cat $c/cpu.cfs_quota_us $c/cpu.cfs_period_us";
    let result = run(
        &manager,
        ProcessTask::shell(script).limits(Limits {
            memory: Some(100 * MIB),
            cpu: Some(0.5),
            pids: None,
        }),
    )
    .await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
    let lines: Vec<String> = output_of(&manager, &result)
        .lines()
        .map(str::to_string)
        .collect();
    let bytes = (100 * MIB).to_string();
    assert_eq!(lines[0], bytes);
    assert!(
        lines[1] == bytes || lines[1] == "0",
        "swap not off: {lines:?}"
    );
    assert_eq!(lines[2..], ["50000".to_string(), "100000".to_string()]);
    no_limit_cgroups_left().await;
    manager.shutdown("test done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_in_the_result_and_plausible() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (manager, _dir) = manager_in_temp(config());
    // Without limits: the root's rusage (python itself is the root).
    let alone = run(
        &manager,
        ProcessTask::argv(["sh", "-c", &format!("exec {}", python_allocating(128))]),
    )
    .await;
    assert_eq!(alone.status, TaskStatus::Completed, "{alone:?}");
    let usage = alone.usage.expect("usage without limits");
    assert_eq!(usage.memory_source, UsageSource::Rusage);
    let peak = usage.peak_memory_bytes;
    assert!(
        (128 * MIB..=128 * MIB * 6 / 5).contains(&peak),
        "peak {peak} for 128 MiB allocated"
    );
    if !can_limit("memory") {
        eprintln!("no memory controller to limit with here: the cgroup figures are not tested");
        return;
    }
    // Under a memory limit: the cgroup's peak of the whole tree.
    let limited = run(
        &manager,
        ProcessTask::shell(python_allocating(200)).limits(Limits {
            memory: Some(512 * MIB),
            ..Limits::default()
        }),
    )
    .await;
    assert_eq!(limited.status, TaskStatus::Completed, "{limited:?}");
    let usage = limited.usage.expect("usage under limits");
    assert_eq!(usage.memory_source, UsageSource::Cgroup);
    let peak = usage.peak_memory_bytes;
    assert!(
        (200 * MIB..=200 * MIB * 6 / 5).contains(&peak),
        "peak {peak} for 200 MiB allocated"
    );
    assert!(usage.cpu_user_ms + usage.cpu_system_ms > 0, "{usage:?}");
    no_limit_cgroups_left().await;
    manager.shutdown("test done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_under_process_group_containment_are_refused_or_reported_as_not_enforced() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let limits = Limits {
        memory: Some(64 * MIB),
        pids: Some(10),
        cpu: None,
    };
    let task = || {
        ProcessTask::shell("echo ran")
            .containment(Containment::ProcessGroup)
            .limits(limits)
    };
    // The default policy refuses, at the spawn, with a typed error.
    let (manager, _dir) = manager_in_temp(config());
    match manager.spawn(task(), SpawnOptions::foreground()) {
        Err(Error::LimitsUnavailable { kinds, reason }) => {
            assert_eq!(kinds, ["memory", "pids"]);
            assert!(reason.contains("process_group"), "{reason}");
        }
        other => panic!("expected a refusal: {other:?}"),
    }
    // So do the manager's default limits.
    let (strict, _dir2) = manager_in_temp(config().default_limits(limits));
    let refused = strict.spawn(
        ProcessTask::shell("echo ran").containment(Containment::ProcessGroup),
        SpawnOptions::foreground(),
    );
    assert!(matches!(refused, Err(Error::LimitsUnavailable { .. })));
    // An ACP agent's process too, at the spawn (nothing starts).
    let agent =
        agent_tasks::AcpTask::new(["true"], "do nothing").containment(Containment::ProcessGroup);
    match strict.spawn(agent, SpawnOptions::background()) {
        Err(Error::LimitsUnavailable { kinds, .. }) => assert_eq!(kinds, ["memory", "pids"]),
        other => panic!("expected a refusal: {other:?}"),
    }
    // Reporting instead: it runs, and its info says nothing is enforced.
    let (lenient, _dir3) = manager_in_temp(config().unenforced_limits(UnenforcedLimits::Report));
    let result = run(&lenient, task()).await;
    assert_eq!(result.status, TaskStatus::Completed);
    let info = lenient.info(result.id.as_str()).expect("info");
    let applied = info.limits.expect("limits in the info");
    assert_eq!(applied.enforced, Limits::default());
    let missing = applied.not_enforced.expect("said not enforced");
    assert_eq!(missing.limits, limits);
    no_limit_cgroups_left().await;
    for m in [manager, strict, lenient] {
        m.shutdown("test done").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_limit_throttles_and_says_how_long() {
    let _alone = ONE_AT_A_TIME.lock().await;
    if own_v1_dir("cpu").is_none() {
        eprintln!("no v1 cpu hierarchy here: nothing to test");
        return;
    }
    let (manager, _dir) = manager_in_temp(config());
    let mut events = manager.subscribe();
    // Spins until it has used 0.3 s of CPU: under 0.2 of a core that takes
    // many throttled periods (the kernel counts them; no clock is read here).
    let spin = "import time\nwhile time.process_time() < 0.3:\n    pass\nprint('spun')";
    let result = run(
        &manager,
        ProcessTask::argv(["python3", "-c", spin]).limits(Limits {
            cpu: Some(0.2),
            ..Limits::default()
        }),
    )
    .await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
    let usage = result.usage.expect("usage");
    let throttled = usage
        .cpu_throttled_ms
        .expect("throttled time under a CPU limit");
    assert!(throttled > 0, "{usage:?}");
    assert!(usage.line().contains(", throttled "), "{}", usage.line());
    let reached = &usage.limits_reached;
    assert_eq!(reached.len(), 1, "{reached:?}");
    assert_eq!((reached[0].limit, reached[0].value), (LimitKind::Cpu, 0.2));
    assert!(reached[0].count > 1, "{reached:?}");
    assert_eq!(limit_events(&mut events, result.id.as_str()), *reached);
    no_limit_cgroups_left().await;
    manager.shutdown("test done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_on_a_terminal_is_killed_at_its_limit_too() {
    let _alone = ONE_AT_A_TIME.lock().await;
    if !can_limit("memory") {
        eprintln!("no memory controller to limit with here: nothing to test");
        return;
    }
    let (manager, _dir) = manager_in_temp(config());
    let result = run(
        &manager,
        ProcessTask::shell(python_allocating(512))
            .pty(80, 24)
            .limits(Limits {
                memory: Some(48 * MIB),
                pids: Some(32),
                cpu: None,
            }),
    )
    .await;
    assert_eq!(result.status, TaskStatus::Failed, "{result:?}");
    let error = result.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("killed: memory limit 48 MiB reached (OOM)"),
        "{error}"
    );
    let info = manager.info(result.id.as_str()).expect("info");
    let enforced = info.limits.expect("limits").enforced;
    assert_eq!((enforced.memory, enforced.pids), (Some(48 * MIB), Some(32)));
    no_limit_cgroups_left().await;
    manager.shutdown("test done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_memory_ceiling_one_task_is_killed_and_said_so_the_others_run_on() {
    let _alone = ONE_AT_A_TIME.lock().await;
    if own_v1_dir("memory").is_none() {
        eprintln!("no v1 memory hierarchy here: a ceiling cannot be made");
        return;
    }
    let ceiling = 96 * MIB;
    let (manager, _dir) = manager_in_temp(config().limits_ceiling(Limits {
        memory: Some(ceiling),
        ..Limits::default()
    }));
    assert!(ceiling_dir("memory").is_some(), "the ceiling's cgroup");
    let mut events = manager.subscribe();
    // A quiet task under the same ceiling, and a hog with no limit of its
    // own: the ceiling stops the hog, the quiet one is not touched.
    let quiet = manager
        .spawn(
            ProcessTask::shell("echo waiting; sleep 1000"),
            SpawnOptions::background(),
        )
        .expect("spawn the quiet task");
    wait_for("the quiet task to start", || {
        common::output_so_far(&manager, quiet.id().as_str()).contains("waiting")
    })
    .await;
    let hog = run(&manager, ProcessTask::shell(python_allocating(256))).await;
    assert_eq!(hog.status, TaskStatus::Failed, "{hog:?}");
    let error = hog.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("killed: memory ceiling of the manager 96 MiB reached (OOM), peak "),
        "{error}"
    );
    let reached = hog.usage.clone().expect("usage").limits_reached;
    assert_eq!(
        reached
            .iter()
            .map(|r| (r.limit, r.scope, r.value))
            .collect::<Vec<_>>(),
        [(LimitKind::Memory, LimitScope::Ceiling, ceiling as f64)]
    );
    assert_eq!(limit_events(&mut events, hog.id.as_str()), reached);
    let peak = std::fs::read_to_string(
        ceiling_dir("memory")
            .expect("the ceiling")
            .join("memory.max_usage_in_bytes"),
    )
    .expect("the ceiling's peak");
    assert!(peak.trim().parse::<u64>().expect("a number") <= ceiling);
    // The quiet task runs on, and ends as cancelled, not failed.
    let info = manager.info(quiet.id().as_str()).expect("info");
    assert_eq!(info.status, TaskStatus::Running, "{info:?}");
    let stopped = manager
        .cancel(quiet.id().as_str(), CancelReason::user("test done"))
        .await
        .expect("cancel");
    assert_eq!(stopped.status, TaskStatus::Cancelled);
    assert!(limit_events(&mut events, quiet.id().as_str()).is_empty());
    // The shutdown lets the ceiling go, the manager still alive.
    manager.shutdown("test done").await;
    no_limit_cgroups_left().await;
    drop(quiet);
    drop(manager);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_tasks_under_their_own_limits_stay_under_the_ceiling_together() {
    let _alone = ONE_AT_A_TIME.lock().await;
    if own_v1_dir("memory").is_none() {
        eprintln!("no v1 memory hierarchy here: a ceiling cannot be made");
        return;
    }
    let ceiling = 160 * MIB;
    let own = 48 * MIB;
    let dir = tempfile::tempdir().expect("temp dir");
    let go = dir.path().join("go");
    let (manager, _root) = manager_in_temp(
        config()
            .default_limits(Limits {
                memory: Some(own),
                ..Limits::default()
            })
            .limits_ceiling(Limits {
                memory: Some(ceiling),
                ..Limits::default()
            }),
    );
    // Each takes 32 MiB (under its own 48) and holds it until `go` exists:
    // ten of them would need 320 MiB, twice the ceiling.
    let hold = format!(
        "import os, time\nkept = [b'x' * (8 << 20) for _ in range(4)]\nprint('holding', flush=True)\nwhile not os.path.exists({:?}):\n    time.sleep(0.05)\nprint('done')",
        go.display().to_string()
    );
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            manager
                .spawn(
                    ProcessTask::argv(["python3", "-c", hold.as_str()]),
                    SpawnOptions::background(),
                )
                .expect("spawn")
        })
        .collect();
    // Every task either holds its memory or was stopped by the ceiling.
    wait_for("every task to hold its memory or end", || {
        tasks.iter().all(|t| {
            let id = t.id().as_str();
            manager.info(id).is_ok_and(|i| i.status.is_terminal())
                || common::output_so_far(&manager, id).contains("holding")
        })
    })
    .await;
    let peak: u64 = std::fs::read_to_string(
        ceiling_dir("memory")
            .expect("the ceiling")
            .join("memory.max_usage_in_bytes"),
    )
    .expect("the ceiling's peak")
    .trim()
    .parse()
    .expect("a number");
    assert!(peak <= ceiling, "the tasks together peaked at {peak}");
    std::fs::write(&go, b"").expect("go");
    let mut by_ceiling = 0;
    for task in &tasks {
        let result = manager
            .collect(task.id().as_str(), Some(Duration::from_secs(120)))
            .await
            .expect("collect")
            .result()
            .cloned()
            .expect("ended");
        match result.status {
            TaskStatus::Completed => {}
            TaskStatus::Failed => {
                let error = result.error.clone().unwrap_or_default();
                // Never the task's own limit: each stayed under it.
                assert!(
                    error.starts_with("killed: memory ceiling of the manager 160 MiB"),
                    "{error}"
                );
                by_ceiling += 1;
            }
            other => panic!("{other:?}: {result:?}"),
        }
    }
    assert!(by_ceiling >= 1, "320 MiB fit under a ceiling of 160 MiB?");
    assert!(by_ceiling < 10, "no task ran under the ceiling");
    manager.shutdown("test done").await;
    drop(tasks);
    drop(manager);
    no_limit_cgroups_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ceiling_is_refused_where_it_cannot_hold() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // Out of range: named.
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = TaskManager::new(config().root(dir.path()).limits_ceiling(Limits {
        pids: Some(0),
        ..Limits::default()
    }));
    match bad {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "limits_ceiling.pids"),
        other => panic!("expected a refusal: {:?}", other.err()),
    }
    if own_v1_dir("pids").is_none() {
        eprintln!("no v1 pids hierarchy here: the ceiling itself is not tested");
        return;
    }
    let (manager, _root) = manager_in_temp(config().limits_ceiling(Limits {
        pids: Some(64),
        ..Limits::default()
    }));
    // A task outside any cgroup of its own cannot count against it.
    let refused = manager.spawn(
        ProcessTask::shell("echo ran").containment(Containment::ProcessGroup),
        SpawnOptions::foreground(),
    );
    match refused {
        Err(Error::LimitsUnavailable { kinds, .. }) => assert_eq!(kinds, ["pids"]),
        other => panic!("expected a refusal: {other:?}"),
    }
    // A task without limits of its own still counts: it is in the ceiling.
    let result = run(
        &manager,
        ProcessTask::shell("cat /proc/self/cgroup | grep ':pids:'"),
    )
    .await;
    let output = output_of(&manager, &result);
    let ceiling = ceiling_dir("pids").expect("the ceiling");
    let name = ceiling
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    assert!(output.contains(&format!("/{name}/")), "{output}");
    manager.shutdown("test done").await;
    drop(manager);
    no_limit_cgroups_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_may_lower_the_hosts_limits_never_raise_them() {
    let _alone = ONE_AT_A_TIME.lock().await;
    if !can_limit("memory") || !can_limit("pids") {
        eprintln!("no memory and pids controllers to limit with here: nothing to test");
        return;
    }
    let (manager, _dir) = manager_in_temp(config().default_limits(Limits {
        memory: Some(256 * MIB),
        ..Limits::default()
    }));
    let toolbox = agent_tasks::tools::ToolBox::new(manager.clone(), "model");
    let answer = toolbox
        .call(
            "task_run",
            serde_json::json!({"command": "echo hi", "limits": {"memory": "8G", "pids": 64}}),
        )
        .await;
    assert!(!answer.is_error, "{}", answer.text);
    let text = &answer.text;
    assert!(
        text.contains("\nlimits: memory 256 MiB, pids 64\n"),
        "{text}"
    );
    assert!(
        text.contains("\nnote: memory 8 GiB lowered to 256 MiB (the host's limit)\n"),
        "{text}"
    );
    assert!(text.contains("\nused: peak memory "), "{text}");
    let id = answer.json["task_id"].as_str().expect("a task id");
    let enforced = manager
        .info(id)
        .expect("info")
        .limits
        .expect("limits")
        .enforced;
    assert_eq!(
        (enforced.memory, enforced.pids),
        (Some(256 * MIB), Some(64))
    );
    // Lower is taken as asked.
    let lower = toolbox
        .call(
            "task_run",
            serde_json::json!({"command": "true", "limits": {"memory": "64 MiB"}}),
        )
        .await;
    assert!(
        lower.text.contains("\nlimits: memory 64 MiB\n"),
        "{}",
        lower.text
    );
    assert!(!lower.text.contains("lowered"), "{}", lower.text);
    // A size that is not one, and an unknown kind, are named.
    for (limits, named) in [
        (serde_json::json!({"memory": "lots"}), "limits.memory"),
        (serde_json::json!({"pids": 0}), "limits.pids"),
        (serde_json::json!({"disk": 1}), "disk"),
    ] {
        let refused = toolbox
            .call(
                "task_run",
                serde_json::json!({"command": "true", "limits": limits}),
            )
            .await;
        assert!(refused.is_error, "{}", refused.text);
        assert!(refused.text.contains(named), "{}", refused.text);
    }
    no_limit_cgroups_left().await;
    manager.shutdown("test done").await;
}

#[test]
fn bad_limits_are_refused_by_name() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let _alone = ONE_AT_A_TIME.lock().await;
        let (manager, _dir) = manager_in_temp(config());
        let refused = manager.spawn(
            ProcessTask::shell("true").limits(Limits {
                pids: Some(0),
                ..Limits::default()
            }),
            SpawnOptions::foreground(),
        );
        match refused {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "limits.pids"),
            other => panic!("expected a refusal: {other:?}"),
        }
        manager.shutdown("test done").await;
    });
}
