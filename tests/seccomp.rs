//! Process tasks where a seccomp filter refuses `clone3` (as the default
//! profile of container runtimes does): they still start, in a cgroup of
//! their own where one can be made, by `posix_spawn` and a move. The host
//! runs as this binary re-run under the filter; a test binary of its own,
//! so nothing else runs beside the re-run.
#![cfg(target_arch = "x86_64")]

mod common;

use agent_tasks::{
    Containment, ForegroundOutcome, ManagerConfig, ProcessTask, SpawnOptions, TaskStatus,
};
use common::{manager_in_temp, own_cgroup_dir};

/// Set in the environment of this binary re-run as a host under a seccomp
/// filter ([`seccomp_host`]).
const SECCOMP_HOST: &str = "AGENT_TASKS_TEST_SECCOMP_HOST";

/// Makes `clone3` fail with `ENOSYS` for this thread and every thread and
/// process it starts later, as the default seccomp profile of container
/// runtimes does; false where seccomp filters are not available.
fn refuse_clone3() -> bool {
    use nix::libc;
    const CLONE3: u32 = 435;
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    let statement = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: 0x15, // BPF_JMP | BPF_JEQ | BPF_K
        jt,
        jf,
        k,
    };
    let mut filter = [
        statement(0x20, 4), // load the architecture
        jump(AUDIT_ARCH_X86_64, 1, 0),
        statement(0x06, 0x7fff_0000), // another architecture: allow
        statement(0x20, 0),           // load the system call number
        jump(CLONE3, 0, 1),
        statement(0x06, 0x0005_0000 | libc::ENOSYS as u32), // clone3: ENOSYS
        statement(0x06, 0x7fff_0000),                       // anything else: allow
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: the filter program is valid and outlives the calls, which
    // copy it.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &program) != 0
        {
            return false;
        }
        // The filter works: clone3 is refused.
        assert_eq!(libc::syscall(libc::SYS_clone3, 0usize, 0usize), -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ENOSYS)
        );
    }
    true
}

/// The host half of [`tasks_start_in_their_cgroup_where_a_seccomp_filter_refuses_clone3`]:
/// only runs in the re-run binary.
#[test]
fn seccomp_host() {
    if std::env::var_os(SECCOMP_HOST).is_none() {
        return;
    }
    if !refuse_clone3() {
        println!("no seccomp filter can be installed here: nothing to test");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (manager, _dir) = manager_in_temp(ManagerConfig::default());
        // Twice: the first refusal is remembered, the second spawn does not
        // try again; both end up in a cgroup, the root moved in after its
        // start (so the shell waits, bounded, until what it starts lands
        // there).
        let command = "for i in $(seq 1 500); do \
             grep -q agent-tasks-h /proc/self/cgroup && break; sleep 0.01; done; \
             cat /proc/self/cgroup";
        for _ in 0..2 {
            let task = manager
                .spawn(ProcessTask::shell(command), SpawnOptions::foreground())
                .expect("spawn");
            let id = task.id().to_string();
            let ForegroundOutcome::Finished(result) = task.wait_foreground().await else {
                panic!("the task was detached");
            };
            assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
            let info = manager.info(&id).expect("info");
            assert_eq!(info.containment, Some(Containment::Cgroup));
            let text = String::from_utf8(common::read_all(&manager, &id)).expect("utf-8");
            assert!(text.contains("agent-tasks-h"), "not in its cgroup: {text}");
        }
        // Limits hold there too: the root is moved into its limit cgroups
        // right after its start, and what it starts is born inside.
        let limited = "for i in $(seq 1 500); do \
             grep -q ':pids:.*-lim-' /proc/self/cgroup && break; sleep 0.01; done; \
             cat /sys/fs/cgroup/pids$(grep ':pids:' /proc/self/cgroup | cut -d: -f3)/pids.max";
        let task = ProcessTask::shell(limited).limits(agent_tasks::Limits {
            pids: Some(8),
            ..Default::default()
        });
        match manager.spawn(task, SpawnOptions::foreground()) {
            Err(agent_tasks::Error::LimitsUnavailable { reason, .. }) => {
                println!("no pids limit here ({reason}): not tested under the filter");
            }
            spawned => {
                let task = spawned.expect("spawn");
                let id = task.id().to_string();
                let ForegroundOutcome::Finished(result) = task.wait_foreground().await else {
                    panic!("the task was detached");
                };
                assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
                let text = String::from_utf8(common::read_all(&manager, &id)).expect("utf-8");
                assert_eq!(text, "8\n", "not in its limit cgroup");
            }
        }
        manager.shutdown("").await;
    });
    println!("the seccomp host ran its tasks");
}

#[test]
fn tasks_start_in_their_cgroup_where_a_seccomp_filter_refuses_clone3() {
    if std::env::var_os(SECCOMP_HOST).is_some() || own_cgroup_dir().is_none() {
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", "seccomp_host", "--nocapture", "--test-threads=1"])
        .env(SECCOMP_HOST, "1")
        .output()
        .expect("running the host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && (stdout.contains("the seccomp host ran its tasks")
                || stdout.contains("nothing to test")),
        "the host failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
