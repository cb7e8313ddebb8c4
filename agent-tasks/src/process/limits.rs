//! Enforcing a task's [`Limits`] with cgroups, and reading what the task
//! used and whether it was killed at its memory limit.
//!
//! Each controller is used where this host has it:
//! * **cgroup v2**, when the controller is delegated to the host's own v2
//!   cgroup (listed in its `cgroup.subtree_control`): the limits are
//!   written to the task's own v2 cgroup (`super::cgroup`), which the
//!   child is born in already (`memory.max`, `memory.swap.max` 0,
//!   `memory.oom.group` 1, `pids.max`, `cpu.max`). That cgroup is then
//!   removed at the task's end, never pooled (its limits would carry over).
//!   Not exercised on the machines this was written on (no controller is
//!   delegated in their v2 hierarchy); the writes are these few files.
//! * **cgroup v1** (hybrid or legacy machines: `memory`, `pids`, `cpu`
//!   mounted as v1 hierarchies): a cgroup per task and hierarchy,
//!   `agent-tasks-h<host pid>-lim-<random>`, under the host's own cgroup
//!   there. The child joins each before it runs its program (it writes `0`
//!   to their `cgroup.procs`: `super::clone_into`, the PTY pre-exec hook),
//!   so it and everything it starts are counted from birth; where the
//!   spawn cannot do that (`posix_spawn`), the host moves the child and
//!   what it started right after the spawn. They are removed at the task's
//!   end (and on every exit path: [`LimitGroups`] removes them on drop);
//!   those of a host that died are swept by the next host that makes one.
//!   v1 has no `oom.group`: an OOM is noticed through `cgroup.event_control`
//!   (an eventfd) and the whole tree is killed by the task's driver.
//!
//! A manager's **ceiling** ([`Ceiling`]: all its tasks together) is one
//! more v1 cgroup per hierarchy, `agent-tasks-h<host pid>-mgr-<random>`,
//! under the host's own; every task's limit cgroups are made inside it, in
//! each hierarchy the ceiling limits whether or not the task has a limit of
//! its own there, so each task counts. The kernel's accounting is
//! hierarchical there (memory, pids, CFS quota). An OOM at the ceiling is
//! told to every task below it (v1 notifies the subtree), but the kernel
//! kills one victim: a task's driver acts only once its own cgroup counts
//! an OOM kill ([`LimitGroups::oom`]). Whose limit it was is told by the
//! task's own failure counter (`memory.failcnt`: charges refused at the
//! task's own limit; those refused at the ceiling count there). A ceiling
//! is v1 only: on a host whose controllers are v2-delegated it is refused.
//!
//! Why no crate: `cgroups-rs` creates a cgroup in every hierarchy and
//! moves processes by pid from the parent; the child here joins its
//! cgroups itself between `clone` and `execve`, where nothing may allocate,
//! from descriptors opened beforehand. That needs the folders and the
//! `cgroup.procs` files, and the rest is six small files: kept direct.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::info::Containment;
use crate::limits::{
    size_text, CeilingDirs, LimitKind, LimitReached, LimitScope, Limits, LimitsInfo, NotEnforced,
    Usage, UsageSource,
};

/// The controllers limits use, by the kind of limit they enforce.
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// The CFS period written with a CPU limit (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;

/// Where a controller is for this host.
#[derive(Clone, Debug, PartialEq)]
enum Place {
    /// Delegated in cgroup v2: written on the task's own v2 cgroup.
    V2,
    /// A v1 hierarchy: the host's own cgroup's folder there.
    V1(PathBuf),
}

/// What this host offers, read once.
#[derive(Debug, Default)]
struct Support {
    /// Per controller (same order as [`CONTROLLERS`]): where it is, or why not.
    places: [Option<Place>; 3],
}

fn support() -> &'static Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    SUPPORT.get_or_init(|| {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let delegated = super::cgroup::own_cgroup_dir()
            .and_then(|dir| std::fs::read_to_string(dir.join("cgroup.subtree_control")).ok())
            .unwrap_or_default();
        let mut places: [Option<Place>; 3] = Default::default();
        for (slot, controller) in places.iter_mut().zip(CONTROLLERS) {
            *slot = if delegated.split_whitespace().any(|c| c == controller) {
                Some(Place::V2)
            } else {
                v1_dir(&mountinfo, &own, controller)
                    .filter(|dir| writable(dir))
                    .map(Place::V1)
            };
        }
        Support { places }
    })
}

fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The host's own cgroup folder in the v1 hierarchy of `controller`: its
/// mount (a `cgroup` line of mountinfo whose options name it) joined with
/// the host's path there (`/proc/self/cgroup`), less the mount's root.
fn v1_dir(mountinfo: &str, own: &str, controller: &str) -> Option<PathBuf> {
    let names = |list: &str| list.split(',').any(|c| c == controller);
    let (mount, root) = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split_whitespace();
        if right.next()? != "cgroup" {
            return None;
        }
        let options = right.nth(1)?;
        if !names(options) {
            return None;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        Some((PathBuf::from(fields.get(4)?), fields.get(3)?.to_string()))
    })?;
    let path = own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
        names(list).then_some(path.trim())
    })?;
    super::cgroup::folder_in_mount(&mount, &root, path)
}

fn place(controller: &str) -> Option<&'static Place> {
    let i = CONTROLLERS.iter().position(|c| *c == controller)?;
    support().places.get(i)?.as_ref()
}

/// The kinds of `limits` that cannot be applied to a task under
/// containment `wanted`, and why; `None` when all can (as far as can be
/// told before anything is made: the spawn-time check).
pub(crate) fn unenforceable(limits: &Limits, wanted: Containment) -> Option<NotEnforced> {
    if limits.is_empty() {
        return None;
    }
    if wanted == Containment::ProcessGroup {
        return Some(NotEnforced {
            limits: *limits,
            reason: "the task's containment is process_group, which leaves the host's cgroups \
                     untouched"
                .to_string(),
        });
    }
    let v2_possible = wanted == Containment::Cgroup
        && super::cgroup::own_cgroup_dir().is_some_and(|dir| writable(&dir));
    let missing = split(limits, |controller| match place(controller) {
        Some(Place::V2) => v2_possible,
        Some(Place::V1(_)) => true,
        None => false,
    })
    .1;
    missing.map(|limits| NotEnforced {
        reason: missing_reason(&limits),
        limits,
    })
}

fn missing_reason(missing: &Limits) -> String {
    format!(
        "no writable cgroup with the {} for this host (v2 delegated or v1 hierarchy)",
        controllers_text(missing)
    )
}

/// The controllers `limits` needs, for texts: `memory controller`,
/// `memory, pids controllers`.
fn controllers_text(limits: &Limits) -> String {
    let kinds = limits.kinds();
    let plural = if kinds.len() > 1 { "s" } else { "" };
    format!("{} controller{plural}", kinds.join(", "))
}

/// `limits` split by `can(controller)`: those that can be applied, and
/// those that cannot (`None` if none).
fn split(limits: &Limits, can: impl Fn(&str) -> bool) -> (Limits, Option<Limits>) {
    let mut yes = Limits::default();
    let mut no = Limits::default();
    if limits.memory.is_some() {
        if can("memory") {
            yes.memory = limits.memory;
        } else {
            no.memory = limits.memory;
        }
    }
    if limits.pids.is_some() {
        if can("pids") {
            yes.pids = limits.pids;
        } else {
            no.pids = limits.pids;
        }
    }
    if limits.cpu.is_some() {
        if can("cpu") {
            yes.cpu = limits.cpu;
        } else {
            no.cpu = limits.cpu;
        }
    }
    (yes, (!no.is_empty()).then_some(no))
}

/// A v1 cgroup made for a task: its folder and its `cgroup.procs`, open
/// for the child to join.
#[derive(Debug)]
struct V1Group {
    dir: PathBuf,
    procs: File,
}

/// A task's limits as applied: its v1 cgroups, the v2 cgroup written to,
/// and what is needed to read its usage and its OOM at the end. Dropped,
/// it removes its v1 cgroups (once empty; see [`LimitGroups::remove`]).
#[derive(Debug)]
pub(crate) struct LimitGroups {
    enforced: Limits,
    not_enforced: Option<NotEnforced>,
    /// The manager's ceiling the task's cgroups are made in; held so that
    /// its folders outlive the task's (they are removed last).
    ceiling: Option<Arc<dyn CeilingDirs>>,
    v1: Vec<V1Group>,
    /// The v1 memory cgroup (also in `v1`), for the OOM and the peak.
    v1_memory: Option<PathBuf>,
    /// The v1 pids cgroup, for the forks refused at a limit.
    v1_pids: Option<PathBuf>,
    /// The v1 cpu cgroup, for the time throttled.
    v1_cpu: Option<PathBuf>,
    /// The task's v2 cgroup, if it has one (limits written there, or only
    /// read for the CPU time).
    v2: Option<PathBuf>,
    /// Whether the memory limit is v2's.
    v2_memory: bool,
    /// The v2 cgroup's `cpu.stat` user and system µs at the start (a pooled
    /// cgroup counts its earlier tasks' time).
    cpu_base: Option<(u64, u64)>,
    /// Readable once the v1 memory cgroup hit its limit (an eventfd).
    oom_event: Option<tokio::io::unix::AsyncFd<OwnedFd>>,
}

impl LimitGroups {
    /// Applies `limits` to a task about to be spawned: makes its v1 cgroups
    /// and writes the limits, and writes the v2 ones to `v2` (the task's
    /// own v2 cgroup, if it has one). `Err` with a reason if a limit that
    /// this host offers could not be written (then nothing is left made);
    /// limits this host does not offer at all are returned as
    /// [`LimitGroups::not_enforced`], for the caller's policy.
    pub fn create(
        limits: &Limits,
        wanted: Containment,
        v2: Option<&Path>,
        ceiling: Option<&Arc<dyn CeilingDirs>>,
    ) -> Result<LimitGroups, String> {
        let (enforced, not_enforced) = if wanted == Containment::ProcessGroup {
            // Outside any cgroup of its own, the task cannot count against
            // the ceiling either.
            let ceiling = ceiling.map(|c| c.limits()).unwrap_or_default();
            (Limits::default(), Some(limits.or(ceiling)))
        } else {
            split(limits, |controller| match place(controller) {
                Some(Place::V2) => v2.is_some(),
                Some(Place::V1(_)) => true,
                None => false,
            })
        };
        let not_enforced = not_enforced.map(|missing| NotEnforced {
            reason: if wanted == Containment::ProcessGroup {
                "the task's containment is process_group".to_string()
            } else {
                missing_reason(&missing)
            },
            limits: missing,
        });
        let ceiling = ceiling.filter(|_| wanted != Containment::ProcessGroup);
        let mut groups = LimitGroups {
            enforced,
            not_enforced,
            ceiling: ceiling.cloned(),
            v1: Vec::new(),
            v1_memory: None,
            v1_pids: None,
            v1_cpu: None,
            v2: v2.map(Path::to_path_buf),
            v2_memory: false,
            cpu_base: None,
            oom_event: None,
        };
        // (On an error below, dropping `groups` removes what was made.)
        let tag = crate::id::TaskId::generate("lim");
        let name = format!("agent-tasks-h{}-{}", std::process::id(), tag.as_str());
        let under_ceiling = ceiling.map(|c| c.limits()).unwrap_or_default();
        for (controller, own, shared) in [
            (
                "memory",
                enforced.memory.is_some(),
                under_ceiling.memory.is_some(),
            ),
            (
                "pids",
                enforced.pids.is_some(),
                under_ceiling.pids.is_some(),
            ),
            ("cpu", enforced.cpu.is_some(), under_ceiling.cpu.is_some()),
        ] {
            // Under a ceiling of this kind the task gets a cgroup of its own
            // there (made in the ceiling's) whether or not it has a limit of
            // the kind: it counts.
            let ceiling_dir = ceiling.and_then(|c| c.dir(controller)).filter(|_| shared);
            let parent = match (ceiling_dir, place(controller)) {
                (Some(dir), _) => dir,
                (None, Some(Place::V1(parent))) if own => parent.as_path(),
                (None, Some(Place::V2)) if own => {
                    let dir = v2.ok_or("the task has no v2 cgroup")?;
                    write_v2(controller, dir, &enforced)?;
                    groups.v2_memory |= controller == "memory";
                    continue;
                }
                _ => continue,
            };
            let dir = groups.v1_group(parent, &name)?;
            write_v1(controller, &dir, &enforced)?;
            match controller {
                "memory" => {
                    groups.oom_event = oom_eventfd(&dir);
                    groups.v1_memory = Some(dir);
                }
                "pids" => groups.v1_pids = Some(dir),
                _ => groups.v1_cpu = Some(dir),
            }
        }
        if let Some(dir) = v2 {
            groups.cpu_base = read_cpu_stat(dir);
        }
        Ok(groups)
    }

    /// The v1 cgroup `name` under `parent` (made once per hierarchy: two
    /// controllers may share one).
    fn v1_group(&mut self, parent: &Path, name: &str) -> Result<PathBuf, String> {
        let dir = parent.join(name);
        if self.v1.iter().any(|g| g.dir == dir) {
            return Ok(dir);
        }
        if self.ceiling.is_none() {
            sweep_once(parent);
        }
        std::fs::create_dir(&dir)
            .map_err(|e| format!("making the cgroup `{}`: {e}", dir.display()))?;
        let procs = OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|e| {
                let _ = std::fs::remove_dir(&dir);
                format!("opening `{}/cgroup.procs`: {e}", dir.display())
            })?;
        self.v1.push(V1Group {
            dir: dir.clone(),
            procs,
        });
        Ok(dir)
    }

    /// What the task's info says of its limits.
    pub fn info(&self) -> LimitsInfo {
        LimitsInfo {
            enforced: self.enforced,
            not_enforced: self.not_enforced.clone(),
        }
    }

    /// The limits asked for that are not applied, and why.
    pub fn not_enforced(&self) -> Option<&NotEnforced> {
        self.not_enforced.as_ref()
    }

    /// Whether limits are written on the task's v2 cgroup (which must then
    /// not be pooled).
    pub fn uses_v2(&self) -> bool {
        self.v2.is_some()
            && [
                ("memory", self.enforced.memory.is_some()),
                ("pids", self.enforced.pids.is_some()),
                ("cpu", self.enforced.cpu.is_some()),
            ]
            .iter()
            .any(|(c, set)| *set && place(c) == Some(&Place::V2))
    }

    /// The `cgroup.procs` descriptors the child writes `0` to before its
    /// exec, joining the task's v1 cgroups; up to [`MAX_JOIN`].
    pub fn join_fds(&self) -> JoinFds {
        let mut fds = JoinFds::default();
        for group in &self.v1 {
            fds.push(group.procs.as_raw_fd());
        }
        fds
    }

    /// Moves process `pid` into the task's v1 cgroups from the host side
    /// (a child that could not join them itself). False if a move failed.
    pub fn adopt(&self, pid: u32) -> bool {
        let pid = pid.to_string();
        self.v1
            .iter()
            .all(|g| (&g.procs).write_all(pid.as_bytes()).is_ok())
    }

    /// Waits until the task's memory cgroup runs out of memory (v1: its
    /// OOM eventfd); never returns where that cannot be told (v2 kills the
    /// whole tree itself: `memory.oom.group`).
    ///
    /// Under a ceiling, every task below it is told of an OOM at the
    /// ceiling, where the kernel kills one victim: this returns only once
    /// the task's own cgroup counts an OOM kill (or, at the task's own
    /// limit, once its memory is at that limit), so the other tasks run on.
    pub async fn oom(&self) {
        let Some(event) = &self.oom_event else {
            return std::future::pending().await;
        };
        loop {
            let Ok(mut ready) = event.readable().await else {
                return std::future::pending().await;
            };
            let mut count = [0u8; 8];
            // SAFETY: reads 8 bytes (the eventfd's counter) into a buffer
            // of 8 bytes from a descriptor this owns.
            let n = unsafe {
                nix::libc::read(
                    event.get_ref().as_raw_fd(),
                    count.as_mut_ptr().cast(),
                    count.len(),
                )
            };
            if n != 8 {
                ready.clear_ready();
                continue;
            }
            if self.ceiling.is_none() || self.oom_is_ours().await {
                return;
            }
        }
    }

    /// After an OOM event under a ceiling: whether the kernel's kill is
    /// this task's. The kill is counted a moment after the event; waited
    /// for up to a second.
    async fn oom_is_ours(&self) -> bool {
        let Some(dir) = &self.v1_memory else {
            return false;
        };
        for _ in 0..100 {
            if read_key(&dir.join("memory.oom_control"), "oom_kill").unwrap_or(0) > 0 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // No kill counted here: at the task's own limit it is still this
        // task's OOM (the kernel may have found its victim exiting).
        self.own_memory_limit_hit()
    }

    /// Whether a charge was refused at the task's own memory limit (not
    /// at the ceiling's, which counts its refusals itself).
    fn own_memory_limit_hit(&self) -> bool {
        let Some(dir) = &self.v1_memory else {
            return false;
        };
        self.enforced.memory.is_some()
            && ["memory.failcnt", "memory.memsw.failcnt"]
                .iter()
                .any(|file| read_number(&dir.join(file)).unwrap_or(0) > 0)
    }

    /// The memory limit that killed a process of the task, if one did:
    /// told by the cgroup's OOM kill count, or by its OOM event
    /// (`notified`), never guessed from a SIGKILL (the event comes as the
    /// kernel starts its OOM kill, and the tree killed then leaves it no
    /// process to count a kill of). Whose it was: the task's own limit if
    /// a charge was refused there, else the ceiling's.
    fn oom_reached(&self, notified: bool) -> Option<LimitReached> {
        let kills = if let Some(dir) = &self.v1_memory {
            read_key(&dir.join("memory.oom_control"), "oom_kill")
        } else if self.v2_memory {
            read_key(&self.v2.as_ref()?.join("memory.events"), "oom_kill")
        } else {
            None
        }
        .unwrap_or(0);
        if kills == 0 && !notified {
            return None;
        }
        let ceiling = self.ceiling.as_ref().and_then(|c| c.limits().memory);
        let (scope, limit) = match (self.enforced.memory, ceiling) {
            (Some(_), Some(ceiling)) if !self.own_memory_limit_hit() => {
                (LimitScope::Ceiling, ceiling)
            }
            (Some(own), _) => (LimitScope::Task, own),
            (None, Some(ceiling)) => (LimitScope::Ceiling, ceiling),
            (None, None) => return None,
        };
        Some(LimitReached {
            limit: LimitKind::Memory,
            scope,
            value: limit as f64,
            count: kills.max(1),
        })
    }

    /// The pids limit fork refusals were counted at, if any (v1 counts
    /// them in the forking cgroup whichever limit refused: the task's own
    /// if it has one, else the ceiling's).
    fn pids_reached(&self) -> Option<LimitReached> {
        let refused = read_key(&self.v1_pids.as_ref()?.join("pids.events"), "max")?;
        if refused == 0 {
            return None;
        }
        let (scope, value) = match (self.enforced.pids, &self.ceiling) {
            (Some(own), _) => (LimitScope::Task, own),
            (None, Some(ceiling)) => (LimitScope::Ceiling, ceiling.limits().pids?),
            (None, None) => return None,
        };
        Some(LimitReached {
            limit: LimitKind::Pids,
            scope,
            value: value as f64,
            count: refused,
        })
    }

    /// The task's own CPU limit's throttling: periods throttled and the
    /// time (ms), from its v1 cpu cgroup (a ceiling's throttling is the
    /// ceiling's, shared: not counted per task).
    fn cpu_throttled(&self) -> Option<(u64, u64)> {
        self.enforced.cpu?;
        let path = self.v1_cpu.as_ref()?.join("cpu.stat");
        let periods = read_key(&path, "nr_throttled")?;
        let ns = read_key(&path, "throttled_time")?;
        Some((periods, ns / 1_000_000))
    }

    /// The error of a task a memory limit killed: `killed: memory limit
    /// 128 MiB reached (OOM), peak 128 MiB` (`memory ceiling of the
    /// manager …` for the ceiling's).
    fn oom_error(&self, reached: &LimitReached) -> String {
        let peak = self
            .peak_memory()
            .map(|peak| format!(", peak {}", size_text(peak)))
            .unwrap_or_default();
        format!("killed: {} reached (OOM){peak}", reached.limit_text())
    }

    /// The tree's peak memory, from its memory cgroup.
    fn peak_memory(&self) -> Option<u64> {
        if let Some(dir) = &self.v1_memory {
            return read_number(&dir.join("memory.max_usage_in_bytes"));
        }
        if self.v2_memory {
            return read_number(&self.v2.as_ref()?.join("memory.peak"));
        }
        None
    }

    /// What the task used: from its cgroups where they tell, else from the
    /// root's `rusage` (`root`, if known).
    /// At the task's end: the error of a task a memory limit killed (see
    /// [`LimitGroups::oom`]; `oom_notified`: it returned), and what the
    /// task used, with the limits it reached.
    pub fn end_report(
        &self,
        root: Option<&RootUsage>,
        oom_notified: bool,
    ) -> (Option<String>, Option<Usage>) {
        let oom = self.oom_reached(oom_notified);
        let error = oom.as_ref().map(|reached| self.oom_error(reached));
        let usage = self.usage(root).map(|mut usage| {
            usage.limits_reached.extend(oom);
            usage.limits_reached.extend(self.pids_reached());
            if let Some((periods, ms)) = self.cpu_throttled() {
                usage.cpu_throttled_ms = Some(ms);
                if periods > 0 {
                    usage.limits_reached.push(LimitReached {
                        limit: LimitKind::Cpu,
                        scope: LimitScope::Task,
                        value: self.enforced.cpu.unwrap_or_default(),
                        count: periods,
                    });
                }
            }
            usage
        });
        (error, usage)
    }

    fn usage(&self, root: Option<&RootUsage>) -> Option<Usage> {
        let cpu = self.v2.as_ref().and_then(|dir| {
            let (user, system) = read_cpu_stat(dir)?;
            let (base_user, base_system) = self.cpu_base.unwrap_or((0, 0));
            Some((
                user.saturating_sub(base_user) / 1000,
                system.saturating_sub(base_system) / 1000,
            ))
        });
        let (cpu_user_ms, cpu_system_ms, cpu_source) = match (cpu, root) {
            (Some((user, system)), _) => (user, system, UsageSource::Cgroup),
            (None, Some(root)) => (root.user_ms, root.system_ms, UsageSource::Rusage),
            (None, None) => return None,
        };
        let (peak_memory_bytes, memory_source) = match (self.peak_memory(), root) {
            (Some(peak), _) => (peak, UsageSource::Cgroup),
            (None, Some(root)) => (root.max_rss_bytes, UsageSource::Rusage),
            (None, None) => return None,
        };
        Some(Usage {
            peak_memory_bytes,
            memory_source,
            cpu_user_ms,
            cpu_system_ms,
            cpu_source,
            cpu_throttled_ms: None,
            limits_reached: Vec::new(),
        })
    }

    /// Moves the processes still in the v1 cgroups back to the host's
    /// (left running on purpose), then removes them.
    pub fn release(&self) -> bool {
        for group in &self.v1 {
            let Some(parent) = group.dir.parent() else {
                continue;
            };
            let pids = std::fs::read_to_string(group.dir.join("cgroup.procs")).unwrap_or_default();
            if pids.trim().is_empty() {
                continue;
            }
            if let Ok(mut procs) = OpenOptions::new()
                .write(true)
                .open(parent.join("cgroup.procs"))
            {
                for pid in pids.lines() {
                    let _ = procs.write_all(pid.trim().as_bytes());
                }
            }
        }
        self.remove()
    }

    /// Removes the v1 cgroups (the task's processes are gone); false while
    /// one still holds a process (the caller retries).
    pub fn remove(&self) -> bool {
        let mut all = true;
        for group in &self.v1 {
            match std::fs::remove_dir(&group.dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => all = false,
            }
        }
        all
    }
}

impl Drop for LimitGroups {
    /// Every exit path: what is still there is removed, retried a moment
    /// away from the caller while the kernel lets go of a killed process.
    fn drop(&mut self) {
        if self.remove() {
            return;
        }
        remove_or_retry(self.v1.iter().map(|g| g.dir.clone()).collect());
        // (The ceiling, if this held its last reference, is dropped after
        // this: its own removal retries until these are gone.)
    }
}

/// A manager's ceiling: one v1 cgroup per hierarchy it limits, holding the
/// limit cgroups of every task of the manager. Dropped (with the manager
/// and its last task), it removes its folders once they are empty.
#[derive(Debug)]
pub(crate) struct Ceiling {
    limits: Limits,
    /// The ceiling's folder per controller it limits.
    dirs: Vec<(&'static str, PathBuf)>,
}

impl Ceiling {
    /// Makes the ceiling's cgroups and writes `limits` there. Refused
    /// (`LimitsUnavailable`) where a kind cannot be: the controller is not
    /// a writable v1 hierarchy here (a v2-delegated one included: task
    /// cgroups there are not nested under a manager's).
    pub fn create(limits: &Limits) -> crate::Result<Ceiling> {
        let (_, missing) = split(limits, |c| matches!(place(c), Some(Place::V1(_))));
        if let Some(missing) = missing {
            return Err(crate::Error::LimitsUnavailable {
                kinds: missing.kinds().iter().map(|k| k.to_string()).collect(),
                reason: format!(
                    "a ceiling needs a writable cgroup v1 hierarchy with the {}",
                    controllers_text(&missing)
                ),
            });
        }
        let tag = crate::id::TaskId::generate("mgr");
        let name = format!("agent-tasks-h{}-{}", std::process::id(), tag.as_str());
        let mut ceiling = Ceiling {
            limits: *limits,
            dirs: Vec::new(),
        };
        for controller in limits.kinds() {
            let Some(Place::V1(parent)) = place(controller) else {
                continue;
            };
            sweep_once(parent);
            let dir = parent.join(&name);
            if !ceiling.dirs.iter().any(|(_, d)| *d == dir) {
                std::fs::create_dir(&dir).map_err(|e| crate::Error::LimitsUnavailable {
                    kinds: vec![controller.to_string()],
                    reason: format!("making the cgroup `{}`: {e}", dir.display()),
                })?;
            }
            ceiling.dirs.push((controller, dir.clone()));
            write_v1(controller, &dir, limits).map_err(|reason| {
                crate::Error::LimitsUnavailable {
                    kinds: vec![controller.to_string()],
                    reason,
                }
            })?;
        }
        Ok(ceiling)
    }
}

impl CeilingDirs for Ceiling {
    fn limits(&self) -> Limits {
        self.limits
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, dir)| dir.as_path())
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let mut dirs: Vec<PathBuf> = self.dirs.iter().map(|(_, d)| d.clone()).collect();
        dirs.dedup();
        remove_or_retry(dirs);
    }
}

/// Removes the (empty) cgroup folders `dirs`, retried a moment away from
/// the caller while the kernel lets go of a killed process.
fn remove_or_retry(dirs: Vec<PathBuf>) {
    let remove_all = |dirs: &[PathBuf]| {
        !dirs.iter().any(|dir| {
            matches!(std::fs::remove_dir(dir), Err(e) if e.kind() != std::io::ErrorKind::NotFound)
        })
    };
    if remove_all(&dirs) {
        return;
    }
    let retry = move || {
        for _ in 0..250 {
            std::thread::sleep(std::time::Duration::from_millis(4));
            if remove_all(&dirs) {
                return;
            }
        }
    };
    // Without a thread, the folders stay (swept by the next host).
    let _ = std::thread::Builder::new()
        .name("agent-tasks-limits".to_string())
        .spawn(retry);
}

/// The root process's own `rusage` at its exit (it and the descendants it
/// waited for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RootUsage {
    pub user_ms: u64,
    pub system_ms: u64,
    pub max_rss_bytes: u64,
}

impl RootUsage {
    /// The usage of a task that has no limit cgroups: the root's `rusage`.
    pub fn alone(&self) -> Usage {
        Usage {
            peak_memory_bytes: self.max_rss_bytes,
            memory_source: UsageSource::Rusage,
            cpu_user_ms: self.user_ms,
            cpu_system_ms: self.system_ms,
            cpu_source: UsageSource::Rusage,
            cpu_throttled_ms: None,
            limits_reached: Vec::new(),
        }
    }
}

/// Descriptors a child joins, at most (one per v1 hierarchy).
pub(crate) const MAX_JOIN: usize = 4;

/// The `cgroup.procs` descriptors a child writes `0` to: a fixed array, so
/// the child's side allocates nothing.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct JoinFds {
    fds: [RawFd; MAX_JOIN],
    len: usize,
}

impl JoinFds {
    fn push(&mut self, fd: RawFd) {
        if let Some(slot) = self.fds.get_mut(self.len) {
            *slot = fd;
            self.len += 1;
        }
    }

    /// The descriptors.
    pub fn as_slice(&self) -> &[RawFd] {
        self.fds.get(..self.len).unwrap_or(&[])
    }

    /// In the child, before its exec: joins each cgroup (a `write(2)` of
    /// `0` to its `cgroup.procs`); the errno of the first that fails. No
    /// allocation, no lock, nothing that panics.
    pub fn join(&self) -> Result<(), i32> {
        for &fd in self.as_slice() {
            // SAFETY: one write(2) of a static byte to a descriptor the
            // parent keeps open until the child has exec'd.
            let n = unsafe { nix::libc::write(fd, b"0".as_ptr().cast(), 1) };
            if n != 1 {
                // SAFETY: the calling thread's errno.
                return Err(unsafe { *nix::libc::__errno_location() }.max(1));
            }
        }
        Ok(())
    }
}

/// Writes the v1 files of `controller` in `dir`.
fn write_v1(controller: &str, dir: &Path, limits: &Limits) -> Result<(), String> {
    match controller {
        "memory" => {
            let Some(bytes) = limits.memory else {
                return Ok(());
            };
            write_file(dir, "memory.limit_in_bytes", &bytes.to_string())?;
            // Swap off: memory + swap may be no more than memory. Without
            // swap accounting (no such file) swappiness 0 does what it can.
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                write_file(dir, "memory.memsw.limit_in_bytes", &bytes.to_string())?;
            } else {
                write_file(dir, "memory.swappiness", "0")?;
            }
            Ok(())
        }
        "pids" => match limits.pids {
            Some(max) => write_file(dir, "pids.max", &max.to_string()),
            None => Ok(()),
        },
        "cpu" => match limits.cpu {
            Some(cores) => {
                write_file(dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                write_file(dir, "cpu.cfs_quota_us", &cpu_quota_us(cores).to_string())
            }
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Writes the v2 files of `controller` in the task's v2 cgroup `dir`.
fn write_v2(controller: &str, dir: &Path, limits: &Limits) -> Result<(), String> {
    match controller {
        "memory" => {
            let Some(bytes) = limits.memory else {
                return Ok(());
            };
            write_file(dir, "memory.max", &bytes.to_string())?;
            // (Absent without swap accounting: nothing to turn off then.)
            if dir.join("memory.swap.max").exists() {
                write_file(dir, "memory.swap.max", "0")?;
            }
            write_file(dir, "memory.oom.group", "1")
        }
        "pids" => match limits.pids {
            Some(max) => write_file(dir, "pids.max", &max.to_string()),
            None => Ok(()),
        },
        "cpu" => match limits.cpu {
            Some(cores) => write_file(
                dir,
                "cpu.max",
                &format!("{} {CPU_PERIOD_US}", cpu_quota_us(cores)),
            ),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The quota per [`CPU_PERIOD_US`] of `cores` (at least the kernel's
/// smallest, 1 ms).
fn cpu_quota_us(cores: f64) -> u64 {
    ((cores * CPU_PERIOD_US as f64).round() as u64).max(1000)
}

fn write_file(dir: &Path, name: &str, value: &str) -> Result<(), String> {
    let path = dir.join(name);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| format!("writing {value} to `{}`: {e}", path.display()))
}

/// An eventfd that becomes readable when the v1 memory cgroup `dir` runs
/// out of memory (`cgroup.event_control` with `memory.oom_control`).
fn oom_eventfd(dir: &Path) -> Option<tokio::io::unix::AsyncFd<OwnedFd>> {
    let control = File::open(dir.join("memory.oom_control")).ok()?;
    // SAFETY: makes a new eventfd; the returned descriptor is checked.
    let fd = unsafe { nix::libc::eventfd(0, nix::libc::EFD_CLOEXEC | nix::libc::EFD_NONBLOCK) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor owned by nothing else.
    let event = unsafe { OwnedFd::from_raw_fd(fd) };
    let line = format!("{} {}", event.as_raw_fd(), control.as_raw_fd());
    write_file(dir, "cgroup.event_control", &line).ok()?;
    // The kernel holds its own reference to `memory.oom_control` now.
    drop(control);
    // SAFETY: an `OwnedFd` stays open, and gives the same descriptor, for
    // as long as the `AsyncFd` owns it.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(event, tokio::io::Interest::READABLE)
    }
    .ok()
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines).
fn read_key(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// User and system µs of a v2 cgroup (`cpu.stat`, there with or without
/// the cpu controller).
fn read_cpu_stat(dir: &Path) -> Option<(u64, u64)> {
    let path = dir.join("cpu.stat");
    Some((
        read_key(&path, "user_usec")?,
        read_key(&path, "system_usec")?,
    ))
}

/// Sweeps the leftovers of dead hosts in v1 folder `parent`, once per
/// process and folder.
fn sweep_once(parent: &Path) {
    static SWEPT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut swept = crate::util::lock(&SWEPT);
    if swept.iter().any(|p| p == parent) {
        return;
    }
    swept.push(parent.to_path_buf());
    drop(swept);
    super::cgroup::sweep_leftovers(parent);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_hierarchy_is_found_from_mountinfo_and_proc_cgroup() {
        let mountinfo =
            "30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu\n\
             33 25 0:29 / /sys/fs/cgroup/memory rw,relatime shared:13 - cgroup cgroup rw,memory\n\
             40 25 0:36 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw";
        let own = "4:memory:/process_api/abc\n1:cpu:/\n0::/";
        assert_eq!(
            v1_dir(mountinfo, own, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/abc"))
        );
        assert_eq!(
            v1_dir(mountinfo, own, "cpu"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu"))
        );
        assert_eq!(v1_dir(mountinfo, own, "pids"), None);
        // `cpuacct` is not `cpu`.
        let own = "2:cpuacct:/x";
        assert_eq!(v1_dir(mountinfo, own, "cpu"), None);
    }

    #[test]
    fn cpu_quotas_and_the_split_of_limits() {
        assert_eq!(cpu_quota_us(0.5), 50_000);
        assert_eq!(cpu_quota_us(0.001), 1000);
        let limits = Limits {
            memory: Some(1 << 30),
            pids: Some(10),
            cpu: None,
        };
        let (yes, no) = split(&limits, |c| c == "memory");
        assert_eq!(yes.memory, Some(1 << 30));
        assert_eq!(no.and_then(|n| n.pids), Some(10));
    }
}
