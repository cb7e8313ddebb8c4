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
    Containment, Error, ForegroundOutcome, Limits, ManagerConfig, ProcessTask, SpawnOptions,
    TaskManager, TaskResult, TaskStatus, UnenforcedLimits, UsageSource,
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

/// The limit cgroups this test process made, still there.
fn our_limit_cgroups() -> Vec<PathBuf> {
    let prefix = format!("agent-tasks-h{}-lim-", std::process::id());
    ["memory", "pids", "cpu"]
        .iter()
        .filter_map(|c| own_v1_dir(c))
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
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
