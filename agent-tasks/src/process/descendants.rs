//! Finding a task's processes in `/proc`, for the containments that have no
//! cgroup: a task's processes are its process group, every process that
//! carries its marker variable ([`MARKER_VAR`], inherited by all descendants
//! unless one clears its environment), and the descendants of those by the
//! parent chain. Also the per-process facts recovery relies on (the start
//! time that tells a reused pid apart).

use std::collections::{HashMap, HashSet};

/// The environment variable every process of a task inherits, set to the
/// task's id: how a descendant that left the process group (`setsid`,
/// `setpgid`, a double fork) is still recognised as the task's.
pub(crate) const MARKER_VAR: &str = "AGENT_TASKS_TASK";

/// The fields of `/proc/<pid>/stat` process control needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub pid: u32,
    /// The state letter: `R`, `S`, `D`, `T`, `Z` (zombie), `X` (dead)...
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    /// Start time in clock ticks since boot (field 22).
    pub start: u64,
}

impl ProcStat {
    /// True once the process has ended (a zombie waits only to be reaped).
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Reads `/proc/<pid>/stat`; `None` if no such process. One `read` into a
/// buffer on the stack (the line is well under 1 KiB; a longer one, with a
/// very long command name, is read whole): walks read many of these.
pub(crate) fn stat(pid: u32) -> Option<ProcStat> {
    let mut buf = [0u8; 1024];
    let text = read_short(format!("/proc/{pid}/stat"), &mut buf)?;
    parse_stat(pid, &String::from_utf8_lossy(&text))
}

/// Reads a small file of `/proc` or `/sys` into `buf`, without the size
/// query and the allocation of `fs::read_to_string` (these files report no
/// size): a spawn reads a few of them. A file longer than `buf` is read
/// whole into a new vector.
pub(crate) fn read_short(
    path: impl AsRef<std::path::Path>,
    buf: &mut [u8],
) -> Option<std::borrow::Cow<'_, [u8]>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => return Some(std::borrow::Cow::Borrowed(&buf[..len])),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
        if len == buf.len() {
            let mut text = buf.to_vec();
            file.read_to_end(&mut text).ok()?;
            return Some(std::borrow::Cow::Owned(text));
        }
    }
}

fn parse_stat(pid: u32, text: &str) -> Option<ProcStat> {
    // The command name (field 2) is in parentheses and may hold spaces and
    // parentheses: the fields resume after the last `)`.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state); field 22 is index 19 here.
    Some(ProcStat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The clock tick since boot it is now, in the unit and from the clock of
/// a start time in `/proc/<pid>/stat` (`CLOCK_BOOTTIME` in units of
/// `sysconf(_SC_CLK_TCK)`, rounded down, as the kernel reports it); `None`
/// if either cannot be read.
///
/// Read just before and just after a spawn, it gives the child's start time
/// without reading `/proc`: the kernel takes the child's start while it is
/// forked, so when both reads fall in the same tick (a tick is 10 ms, a spawn
/// well under one) that tick is the child's start. Reading the new child's
/// `/proc/<pid>/stat` instead costs about 50 µs here, while the child waits
/// for the CPU the host holds.
pub(crate) fn boot_ticks() -> Option<u64> {
    use nix::time::{clock_gettime, ClockId};
    static TICKS_PER_SECOND: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let per_second = (*TICKS_PER_SECOND.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0 && 1_000_000_000 % t == 0)
    }))?;
    let now = clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?;
    let nanos = u64::try_from(now.tv_sec())
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(u64::try_from(now.tv_nsec()).ok()?)?;
    Some(nanos / (1_000_000_000 / per_second))
}

/// Start time of process `pid` in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), or `None` if no such process runs. With the pid it
/// names one process for good within one boot: a reused pid has another
/// start time. Across a reboot both start again, so a saved start time is
/// only compared under the same [`boot_id`].
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    stat(pid).filter(|s| !s.is_dead()).map(|s| s.start)
}

/// This boot of the machine (`/proc/sys/kernel/random/boot_id`, read once),
/// or `None` where the kernel does not say.
pub(crate) fn boot_id() -> Option<&'static str> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|id| id.trim().to_string())
                .filter(|id| !id.is_empty())
        })
        .as_deref()
}

/// Every process in `/proc` (thread group leaders), read once.
pub(crate) fn all_processes() -> Vec<ProcStat> {
    processes_in(&Pids::All)
}

/// Which pids a walk looks at.
enum Pids {
    /// Every process: `/proc` is listed.
    All,
    /// The circular range `[first, last]` of pids handed out since `first`
    /// (see [`younger_than`]).
    Range { first: u32, last: u32 },
}

/// Past this many pids, listing `/proc` is cheaper than probing each pid.
const MAX_PROBED_PIDS: u32 = 256;

impl Pids {
    fn contains(&self, pid: u32) -> bool {
        match *self {
            Pids::All => true,
            Pids::Range { first, last } if last >= first => (first..=last).contains(&pid),
            Pids::Range { first, last } => pid >= first || pid <= last,
        }
    }

    /// The pids to probe one by one, when there are few (the usual case
    /// right after a spawn: a handful were handed out since).
    fn few(&self) -> Option<std::ops::RangeInclusive<u32>> {
        match *self {
            Pids::Range { first, last } if last >= first && last - first < MAX_PROBED_PIDS => {
                Some(first..=last)
            }
            _ => None,
        }
    }
}

/// The processes among `pids`, read from `/proc`: only those have their
/// `stat` read. A short range is probed pid by pid instead of listing
/// `/proc` (a listing costs a `getdents` over every process of the host).
fn processes_in(pids: &Pids) -> Vec<ProcStat> {
    if let Some(range) = pids.few() {
        // A probe also finds threads (`/proc/<tid>` answers though it is
        // not listed): only thread group leaders are processes.
        return range
            .filter_map(|pid| stat(pid).filter(|_| is_process(pid)))
            .collect();
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let name = entry.ok()?.file_name();
        let pid: u32 = name.to_str()?.parse().ok()?;
        if pids.contains(pid) {
            stat(pid)
        } else {
            None
        }
    })
    .collect()
}

/// True if `pid` leads its thread group (is a process, not another thread
/// of one): its `Tgid` is itself.
fn is_process(pid: u32) -> bool {
    let mut buf = [0u8; 4096];
    read_short(format!("/proc/{pid}/status"), &mut buf).is_some_and(|text| {
        String::from_utf8_lossy(&text)
            .lines()
            .find_map(|line| line.strip_prefix("Tgid:"))
            .and_then(|tgid| tgid.trim().parse::<u32>().ok())
            == Some(pid)
    })
}

/// Which pids can belong to processes started after process `first`: pids
/// are handed out counting up from the last one given
/// (`/proc/sys/kernel/ns_last_pid`) and wrap at `pid_max`, so the younger
/// ones lie in the circular range `[first, last]`. (A task that lived through
/// a whole wrap of the pid space could have a younger process outside it;
/// its group is still signalled.) Without `ns_last_pid`, every pid.
fn younger_than(first: u32) -> Pids {
    ns_last_pid().map_or(Pids::All, |last| Pids::Range { first, last })
}

/// The last pid handed out in this pid namespace
/// (`/proc/sys/kernel/ns_last_pid`). Every spawn reads it (twice): the file
/// is kept open ([`super::kept`]) and read with `pread`, which costs a
/// fraction of an open, read and close.
fn ns_last_pid() -> Option<u32> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 32];
    let n = super::kept::NS_LAST_PID
        .with(|file| file.read_at(&mut buf, 0))?
        .ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

/// The live processes of task `task_id` other than its root process `root`,
/// for the walk right after the root was moved into the task's cgroup: only
/// a process started since can have stayed outside. When no pid was handed
/// out since the root (the usual case), nothing is read but `ns_last_pid`.
pub(crate) fn task_processes_besides_root(task_id: &str, root: u32, since: u64) -> Vec<ProcStat> {
    if matches!(younger_than(root), Pids::Range { last, .. } if last == root) {
        return Vec::new();
    }
    let mut procs = task_processes(task_id, root, since);
    procs.retain(|p| p.pid != root);
    procs
}

/// The task id in the marker variable of process `pid`, if it has one.
/// Unreadable for a zombie (its memory is gone) or for another user's
/// process.
pub(crate) fn marker_of(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{MARKER_VAR}=");
    environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .and_then(|id| std::str::from_utf8(id).ok())
        .map(str::to_string)
}

/// The live processes of task `task_id` whose root process (group leader)
/// is `pgid`: the group, the processes carrying the task's marker, and all
/// their descendants by the parent chain. The host itself and init are
/// never in it.
///
/// `since` is the start time of the task's first process: a process started
/// before it cannot be the task's, so only younger ones have their
/// environment read (most of a host's processes are older: the walk then
/// costs one `stat` read per process).
pub(crate) fn task_processes(task_id: &str, pgid: u32, since: u64) -> Vec<ProcStat> {
    let me = std::process::id();
    // The task's processes all started after its first one: read `stat`
    // only for pids that can be younger (a handful, not the whole host).
    let procs = processes_in(&younger_than(pgid));
    let mut children: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, p) in procs.iter().enumerate() {
        children.entry(p.ppid).or_default().push(i);
    }
    let mut found: HashSet<usize> = HashSet::new();
    let mut stack: Vec<usize> = Vec::new();
    for (i, p) in procs.iter().enumerate() {
        if p.pid <= 1 || p.pid == me {
            continue;
        }
        // Zombies keep their group but not their environment.
        let ours = p.pgrp == pgid
            || (!p.is_dead() && p.start >= since && marker_of(p.pid).as_deref() == Some(task_id));
        if ours && found.insert(i) {
            stack.push(i);
        }
    }
    while let Some(i) = stack.pop() {
        for &c in children
            .get(&procs[i].pid)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            if procs[c].pid != me && found.insert(c) {
                stack.push(c);
            }
        }
    }
    let mut out: Vec<ProcStat> = found
        .into_iter()
        .map(|i| procs[i])
        .filter(|p| !p.is_dead())
        .collect();
    out.sort_by_key(|p| p.pid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parses_a_name_with_spaces_and_parentheses() {
        let text = "42 (a (b) c) S 7 42 5 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        let s = parse_stat(42, text).expect("parsed");
        assert_eq!(
            (s.state, s.ppid, s.pgrp, s.session, s.start),
            ('S', 7, 42, 5, 12345)
        );
    }

    #[test]
    fn this_process_has_a_start_time() {
        assert!(process_start_time(std::process::id()).is_some());
        assert!(stat(std::process::id()).is_some_and(|s| !s.is_dead()));
    }

    #[test]
    fn boot_ticks_around_a_spawn_give_the_childs_start_time() {
        // `cat` waits on its stdin: alive until the pipe is closed.
        let mut agreed = 0;
        for _ in 0..40 {
            let before = boot_ticks().expect("the boot clock reads");
            let mut child = std::process::Command::new("cat")
                .stdin(std::process::Stdio::piped())
                .spawn()
                .expect("spawning cat");
            let after = boot_ticks().expect("the boot clock reads");
            let start = stat(child.id()).expect("cat runs").start;
            assert!(
                (before..=after).contains(&start),
                "start tick {start} outside [{before}, {after}]"
            );
            if before == after {
                assert_eq!(start, before);
                agreed += 1;
            }
            drop(child.stdin.take());
            child.wait().expect("waiting for cat");
        }
        // How many windows were one tick depends on the machine's load (a
        // busy machine stretches a spawn past a tick): not asserted, only
        // that a one-tick window always gives that tick (above).
        let _ = agreed;
    }

    #[test]
    fn a_short_range_is_probed_and_a_wrapped_or_long_one_listed() {
        let short = Pids::Range {
            first: 100,
            last: 110,
        };
        assert_eq!(short.few(), Some(100..=110));
        assert!(short.contains(105) && !short.contains(99) && !short.contains(111));
        let wrapped = Pids::Range {
            first: 4000,
            last: 10,
        };
        assert_eq!(wrapped.few(), None);
        assert!(wrapped.contains(4001) && wrapped.contains(5) && !wrapped.contains(100));
        let long = Pids::Range {
            first: 1,
            last: 1 + MAX_PROBED_PIDS,
        };
        assert_eq!(long.few(), None);
    }

    #[test]
    fn a_probe_finds_a_young_process_with_the_marker_but_not_a_thread() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(MARKER_VAR, "probe-test")
            .spawn()
            .expect("spawning sleep");
        let pid = child.id();
        // The spawn returns once the exec has begun; the new environment is
        // readable a moment later.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while marker_of(pid).is_none() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let found = task_processes("probe-test", pid, 0);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.iter().any(|p| p.pid == pid), "{found:?}");

        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            let _ = tx.send(nix::unistd::gettid().as_raw() as u32);
            let _ = done_rx.recv();
        });
        let live_tid = rx.recv().expect("tid");
        assert!(
            !is_process(live_tid),
            "thread {live_tid} taken for a process"
        );
        assert!(is_process(std::process::id()));
        let _ = done_tx.send(());
        handle.join().expect("thread");
    }
}
