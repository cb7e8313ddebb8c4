//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod peer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_tasks::{ManagerConfig, TaskManager};

/// Waits until `cond` holds, checking every few milliseconds, for at most
/// 30 s; panics naming `what` if it never does.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A task's whole output so far, running or not: read on from 0 until a
/// page brings nothing new (a page stops where the bytes' place changes).
pub fn output_so_far(manager: &TaskManager, id: &str) -> String {
    let mut data = Vec::new();
    let mut cursor = 0;
    loop {
        let page = manager.poll(id, cursor, 1 << 20).expect("poll");
        if page.next_cursor == cursor {
            return String::from_utf8_lossy(&data).into_owned();
        }
        data.extend_from_slice(&page.data);
        cursor = page.next_cursor;
    }
}

/// Reads a finished task's whole output by polling from 0 until `eof`,
/// asserting nothing was omitted.
pub fn read_all(manager: &TaskManager, id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cursor = 0;
    loop {
        let page = manager.poll(id, cursor, 1 << 20).expect("poll");
        assert_eq!(page.omitted_bytes, 0, "bytes were omitted at {cursor}");
        assert_eq!(page.cursor, cursor);
        out.extend_from_slice(&page.data);
        cursor = page.next_cursor;
        if page.eof {
            return out;
        }
    }
}

/// `seq 1 n` output.
pub fn seq_output(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 1..=n {
        out.extend_from_slice(format!("{i}\n").as_bytes());
    }
    out
}

/// A manager rooted in a fresh temporary folder, returned with the folder.
pub fn manager_in_temp(config: ManagerConfig) -> (TaskManager, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = TaskManager::new(config.root(dir.path())).expect("manager");
    (manager, dir)
}

/// True if `pid` no longer runs (gone, or a zombie waiting to be reaped).
pub fn process_is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            // The state follows the `(comm)` field, which may contain spaces.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            matches!(state, Some("Z") | Some("X"))
        }
    }
}

/// The folder of this process's own cgroup, if a cgroup can be made in it.
pub fn own_cgroup_dir() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim()
        .to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split(' ').nth(4).map(str::to_string))?
    })?;
    let dir = Path::new(&mount).join(own.trim_start_matches('/'));
    let probe = dir.join(format!("agent-tasks-probe-{}", std::process::id()));
    (std::fs::create_dir(&probe).is_ok() && std::fs::remove_dir(&probe).is_ok()).then_some(dir)
}
