//! Resource limits of a process task's whole tree, and what a task used:
//! the public types ([`Limits`], [`UnenforcedLimits`], [`LimitsInfo`],
//! [`Usage`]) and the few rules on them written once (validation, merging a
//! task's limits over the manager's default, the texts that name a size).
//! Enforcing them is the OS side's (`process::limits`).

use serde::{Deserialize, Serialize};

/// Resource limits for a process task's whole tree (the command and every
/// process it starts, a `setsid` daemon included), enforced by the kernel
/// through cgroups. A field left `None` sets no limit of that kind.
///
/// * `memory`: bytes of memory (swap is off under a memory limit). At the
///   limit the kernel kills the task's processes; the task ends `failed`
///   with an error naming the limit and the peak, e.g.
///   `killed: memory limit 128 MiB reached (OOM), peak 128 MiB`.
/// * `pids`: processes and threads at once; past it `fork` fails with
///   `EAGAIN` inside the task, the host is not touched.
/// * `cpu`: a fraction of one core (`0.5`: half a core; `2.0`: two cores);
///   it throttles, it never kills.
///
/// ```
/// use agent_tasks::{Limits, ProcessTask};
///
/// let build = ProcessTask::shell("make -j4").limits(Limits {
///     memory: Some(2 << 30),
///     pids: Some(256),
///     cpu: Some(2.0),
/// });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Limits {
    /// Memory of the whole tree, in bytes (swap off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Processes (and threads) at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// CPU as a fraction of one core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
}

/// Smallest memory limit taken: below it a shell cannot even start.
pub const MIN_MEMORY_LIMIT: u64 = 1 << 20;
/// Smallest CPU limit taken (1 ms of CPU per 100 ms period).
pub const MIN_CPU_LIMIT: f64 = 0.01;

impl Limits {
    /// No limit of any kind.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.pids.is_none() && self.cpu.is_none()
    }

    /// These limits, with each one not set here taken from `defaults` (a
    /// task's own limits over its manager's default).
    pub fn or(self, defaults: Limits) -> Limits {
        Limits {
            memory: self.memory.or(defaults.memory),
            pids: self.pids.or(defaults.pids),
            cpu: self.cpu.or(defaults.cpu),
        }
    }

    /// Refuses limits no kernel takes: `InvalidArgument` naming
    /// `limits.memory` (below 1 MiB), `limits.pids` (0) or `limits.cpu`
    /// (not a number, below 0.01 core, or more than 1,000,000 cores).
    pub fn check(&self) -> crate::Result<()> {
        self.check_as("limits")
    }

    /// [`Limits::check`], naming `<name>.memory` and so on.
    pub(crate) fn check_as(&self, name: &str) -> crate::Result<()> {
        if let Some(memory) = self.memory {
            if memory < MIN_MEMORY_LIMIT {
                return Err(crate::Error::invalid_argument(
                    format!("{name}.memory"),
                    format!("{memory} bytes is below the smallest limit, 1 MiB"),
                ));
            }
        }
        if self.pids == Some(0) {
            return Err(crate::Error::invalid_argument(
                format!("{name}.pids"),
                "must be at least 1",
            ));
        }
        if let Some(cpu) = self.cpu {
            if !cpu.is_finite() || !(MIN_CPU_LIMIT..=1_000_000.0).contains(&cpu) {
                return Err(crate::Error::invalid_argument(
                    format!("{name}.cpu"),
                    format!("{cpu} is not a fraction of a core between 0.01 and 1000000"),
                ));
            }
        }
        Ok(())
    }

    /// These limits lowered to `allowed` wherever they ask for more (or
    /// for none where `allowed` sets one), and a note per kind lowered:
    /// `memory 8 GiB lowered to 2 GiB (the host's limit)`. The rule a
    /// model's request meets ([`ToolBox`](crate::tools::ToolBox)'s
    /// `task_run`): lower limits than the host's are taken, higher ones
    /// never.
    ///
    /// ```
    /// use agent_tasks::Limits;
    /// let asked = Limits { memory: Some(8 << 30), pids: Some(10), cpu: None };
    /// let host = Limits { memory: Some(2 << 30), pids: None, cpu: Some(1.0) };
    /// let (limits, notes) = asked.within(&host);
    /// assert_eq!(limits, Limits { memory: Some(2 << 30), pids: Some(10), cpu: Some(1.0) });
    /// assert_eq!(notes, ["memory 8 GiB lowered to 2 GiB (the host's limit)"]);
    /// ```
    pub fn within(&self, allowed: &Limits) -> (Limits, Vec<String>) {
        let mut notes = Vec::new();
        let mut note = |kind: &str, asked: String, max: String| {
            notes.push(format!(
                "{kind} {asked} lowered to {max} (the host's limit)"
            ));
        };
        let limits = Limits {
            memory: match (self.memory, allowed.memory) {
                (Some(a), Some(m)) if a > m => {
                    note("memory", size_text(a), size_text(m));
                    Some(m)
                }
                (a, m) => a.or(m),
            },
            pids: match (self.pids, allowed.pids) {
                (Some(a), Some(m)) if a > m => {
                    note("pids", a.to_string(), m.to_string());
                    Some(m)
                }
                (a, m) => a.or(m),
            },
            cpu: match (self.cpu, allowed.cpu) {
                (Some(a), Some(m)) if a > m => {
                    note("cpu", cores_text(a), cores_text(m));
                    Some(m)
                }
                (a, m) => a.or(m),
            },
        };
        (limits, notes)
    }

    /// The limits set, for texts: `memory 64 MiB, pids 16, cpu 0.5 cores`
    /// (empty for none).
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.memory {
            parts.push(format!("memory {}", size_text(m)));
        }
        if let Some(p) = self.pids {
            parts.push(format!("pids {p}"));
        }
        if let Some(c) = self.cpu {
            parts.push(format!("cpu {}", cores_text(c)));
        }
        parts.join(", ")
    }

    /// The kinds set, by name (`memory`, `pids`, `cpu`).
    pub(crate) fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if self.memory.is_some() {
            kinds.push("memory");
        }
        if self.pids.is_some() {
            kinds.push("pids");
        }
        if self.cpu.is_some() {
            kinds.push("cpu");
        }
        kinds
    }
}

/// What a manager does with a task whose limits this host cannot enforce
/// (no cgroup can be made, a controller is not available, or the task's
/// containment is [`Containment::ProcessGroup`](crate::Containment)).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UnenforcedLimits {
    /// Refuse the task: the spawn fails with
    /// [`Error::LimitsUnavailable`](crate::Error::LimitsUnavailable)
    /// (found out at the spawn, or, rarely, as the task's start fails). The
    /// default: a limit is asked for to protect the host, and running
    /// without it is what it was meant to prevent.
    #[default]
    Refuse,
    /// Run the task; the limits that are not applied are listed as such in
    /// its info ([`LimitsInfo::not_enforced`]). Never claimed as applied.
    Report,
}

impl UnenforcedLimits {
    /// Every policy, in declaration order.
    pub const ALL: [UnenforcedLimits; 2] = [UnenforcedLimits::Refuse, UnenforcedLimits::Report];

    /// The policy's wire name: `refuse` or `report`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnenforcedLimits::Refuse => "refuse",
            UnenforcedLimits::Report => "report",
        }
    }
}

impl std::fmt::Display for UnenforcedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for UnenforcedLimits {
    type Err = crate::Error;

    /// `refuse` or `report`; anything else is an `InvalidArgument` naming
    /// `unenforced_limits` and listing both.
    fn from_str(s: &str) -> crate::Result<Self> {
        crate::names::by_name(
            "unenforced_limits",
            s,
            &UnenforcedLimits::ALL,
            UnenforcedLimits::as_str,
        )
    }
}

/// The limits of a process task as they were applied, in its info.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LimitsInfo {
    /// The limits the task runs under: those the kernel enforces.
    pub enforced: Limits,
    /// Limits asked for that are not applied (the manager's policy is
    /// [`UnenforcedLimits::Report`]), with why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_enforced: Option<NotEnforced>,
}

/// Limits asked for but not applied, and why.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotEnforced {
    /// The limits not applied.
    pub limits: Limits,
    /// Why, e.g. `no cgroup hierarchy with the memory controller is writable here`.
    pub reason: String,
}

impl NotEnforced {
    /// The refusal of a task whose limits are these, under
    /// [`UnenforcedLimits::Refuse`]: the error names each kind and why.
    pub(crate) fn refusal(&self) -> crate::Error {
        crate::Error::LimitsUnavailable {
            kinds: self.limits.kinds().iter().map(|k| k.to_string()).collect(),
            reason: self.reason.clone(),
        }
    }
}

/// Where a usage figure came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// The task's own cgroup: the whole tree, every process counted.
    Cgroup,
    /// The root process's `rusage` at its exit: the root and the
    /// descendants it waited for (CPU summed; peak memory is the largest
    /// single one of them, not their sum).
    Rusage,
}

/// A kind of resource limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// [`Limits::memory`].
    Memory,
    /// [`Limits::pids`].
    Pids,
    /// [`Limits::cpu`].
    Cpu,
}

impl LimitKind {
    /// The kind's name: `memory`, `pids` or `cpu`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Memory => "memory",
            LimitKind::Pids => "pids",
            LimitKind::Cpu => "cpu",
        }
    }
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose limit a task reached: its own, or its manager's ceiling for all
/// its tasks together ([`ManagerConfig::limits_ceiling`](crate::ManagerConfig::limits_ceiling)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    /// The task's own limit (its own or the manager's default).
    Task,
    /// The manager's ceiling, shared by all its tasks.
    Ceiling,
}

/// A limit a task reached while it ran, in its [`Usage`] and as a
/// `task.limit_reached` event (told as the task ends, before
/// `task.finished`).
///
/// * `memory`: the kernel killed a process of the task at the limit (an
///   OOM kill; the task then ends `failed`).
/// * `pids`: `fork` failed inside the task `count` times at the limit.
/// * `cpu`: the task was throttled in `count` scheduler periods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LimitReached {
    /// Which limit.
    pub limit: LimitKind,
    /// Whose: the task's own, or the manager's ceiling.
    pub scope: LimitScope,
    /// The limit's value: bytes (`memory`), processes (`pids`), or cores
    /// (`cpu`).
    pub value: f64,
    /// How often: OOM kills, refused forks, or throttled periods.
    pub count: u64,
}

impl LimitReached {
    /// The limit as people write it: `memory limit 64 MiB`, `pids limit
    /// 16`, `cpu limit 0.5 core` (`ceiling` for the manager's).
    pub fn limit_text(&self) -> String {
        let what = match self.scope {
            LimitScope::Task => "limit",
            LimitScope::Ceiling => "ceiling of the manager",
        };
        let value = match self.limit {
            LimitKind::Memory => size_text(self.value as u64),
            LimitKind::Pids => format!("{}", self.value as u64),
            LimitKind::Cpu => cores_text(self.value),
        };
        format!("{} {what} {value}", self.limit)
    }

    /// One line for texts: `memory limit 64 MiB reached (OOM kill)`,
    /// `pids limit 16 reached: 3 forks refused`, `cpu limit 0.5 core
    /// reached: throttled in 12 periods`.
    pub fn line(&self) -> String {
        let what = match self.limit {
            LimitKind::Memory => "(OOM kill)".to_string(),
            LimitKind::Pids => format!(
                ": {} fork{} refused",
                self.count,
                if self.count == 1 { "" } else { "s" }
            ),
            LimitKind::Cpu => format!(
                ": throttled in {} period{}",
                self.count,
                if self.count == 1 { "" } else { "s" }
            ),
        };
        let sep = if self.limit == LimitKind::Memory {
            " "
        } else {
            ""
        };
        format!("{} reached{sep}{what}", self.limit_text())
    }
}

/// What a process task used, in its result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Usage {
    /// Peak memory in bytes (of the tree for `cgroup`; see [`UsageSource`]).
    pub peak_memory_bytes: u64,
    /// Where the peak came from.
    pub memory_source: UsageSource,
    /// CPU time in user mode, milliseconds.
    pub cpu_user_ms: u64,
    /// CPU time in the kernel, milliseconds.
    pub cpu_system_ms: u64,
    /// Where the CPU times came from.
    pub cpu_source: UsageSource,
    /// Time the task waited, throttled by a CPU limit (its own or the
    /// ceiling), in milliseconds; only where a CPU limit applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_throttled_ms: Option<u64>,
    /// The limits the task reached (each also told as a
    /// `task.limit_reached` event).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits_reached: Vec<LimitReached>,
}

impl Usage {
    /// One short line for texts: `peak memory 12.0 MiB, cpu 0.52 s user +
    /// 0.03 s system` (`, throttled 1.20 s` under a CPU limit); memory in
    /// MiB with one decimal whatever its size.
    pub fn line(&self) -> String {
        // Always MiB with one decimal: a line whose width does not jump
        // with the figure (texts are cut to budgets by their lengths).
        let mut line = format!(
            "peak memory {:.1} MiB, cpu {:.2} s user + {:.2} s system",
            self.peak_memory_bytes as f64 / (1u64 << 20) as f64,
            self.cpu_user_ms as f64 / 1000.0,
            self.cpu_system_ms as f64 / 1000.0
        );
        if let Some(ms) = self.cpu_throttled_ms {
            line.push_str(&format!(", throttled {:.2} s", ms as f64 / 1000.0));
        }
        line
    }

    /// The lines end texts carry (a notification, a tool's answer), each
    /// after a line break: `used: …` ([`Usage::line`]), then `limit: …`
    /// per limit reached ([`LimitReached::line`]).
    pub fn text_lines(&self) -> String {
        let mut text = format!("\nused: {}", self.line());
        for reached in &self.limits_reached {
            text.push_str(&format!("\nlimit: {}", reached.line()));
        }
        text
    }
}

/// A size as people and models write it: digits (bytes), or a number with
/// a binary unit, `K`, `M`, `G`, `T` (also `KiB`, `MB`…, all powers of
/// 1024; case and a space before the unit do not matter): `512M`, `1.5 GiB`.
///
/// ```
/// use agent_tasks::parse_size;
/// assert_eq!(parse_size("limits.memory", "512M").unwrap(), 512 << 20);
/// assert_eq!(parse_size("limits.memory", "1.5 GiB").unwrap(), 3 << 29);
/// assert!(parse_size("limits.memory", "lots").is_err());
/// ```
pub fn parse_size(name: &str, text: &str) -> crate::Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => u32::MAX,
    };
    let value: Option<f64> = number.parse().ok();
    match value {
        Some(v) if shift != u32::MAX && v.is_finite() => {
            let bytes = v * (1u64 << shift) as f64;
            if bytes < u64::MAX as f64 {
                return Ok(bytes as u64);
            }
            Err(crate::Error::invalid_argument(
                name,
                format!("{text:?} is too large"),
            ))
        }
        _ => Err(crate::Error::invalid_argument(
            name,
            format!("{text:?} is not a size (bytes, or a number with K, M, G or T: \"512M\")"),
        )),
    }
}

/// A CPU limit for texts: `0.5 cores`, `1 core`.
pub(crate) fn cores_text(cores: f64) -> String {
    format!("{cores} core{}", if cores == 1.0 { "" } else { "s" })
}

/// A byte count for texts: `128 MiB` for whole MiB, else one decimal
/// (`12.3 MiB`, `1.5 GiB`), bytes below 1 KiB.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, unit) in UNITS {
        if bytes >= unit {
            return if bytes.is_multiple_of(unit) {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} B")
}

/// The manager's side of limits, handed to every task: its default limits,
/// its policy for limits that cannot be enforced, and its ceiling.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostLimits {
    pub defaults: Limits,
    pub policy: UnenforcedLimits,
    pub ceiling: Option<std::sync::Arc<dyn CeilingDirs>>,
}

impl HostLimits {
    /// The ceiling's limits (none without one).
    pub fn ceiling_limits(&self) -> Limits {
        self.ceiling
            .as_ref()
            .map(|c| c.limits())
            .unwrap_or_default()
    }
}

/// A manager's ceiling as the OS side made it (`process::limits`): its
/// limits, and the folder per controller its tasks' cgroups are made in.
pub(crate) trait CeilingDirs: std::fmt::Debug + Send + Sync {
    /// The ceiling's limits.
    fn limits(&self) -> Limits;
    /// Its folder in the hierarchy of `controller`, if it limits that kind.
    fn dir(&self, controller: &str) -> Option<&std::path::Path>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(128 << 20), "128 MiB");
        assert_eq!(size_text(3 << 29), "1.5 GiB");
        assert_eq!(size_text(1000), "1000 B");
        assert_eq!(size_text(1536), "1.5 KiB");
    }

    #[test]
    fn limits_merge_over_defaults_and_bad_ones_are_named() {
        let own = Limits {
            memory: Some(64 << 20),
            ..Limits::default()
        };
        let defaults = Limits {
            memory: Some(1 << 30),
            pids: Some(100),
            cpu: None,
        };
        assert_eq!(
            own.or(defaults),
            Limits {
                memory: Some(64 << 20),
                pids: Some(100),
                cpu: None
            }
        );
        let name = |limits: Limits| match limits.check() {
            Err(crate::Error::InvalidArgument { name, .. }) => name,
            other => panic!("expected a refusal: {other:?}"),
        };
        assert_eq!(
            name(Limits {
                memory: Some(10),
                ..Limits::default()
            }),
            "limits.memory"
        );
        assert_eq!(
            name(Limits {
                pids: Some(0),
                ..Limits::default()
            }),
            "limits.pids"
        );
        assert_eq!(
            name(Limits {
                cpu: Some(f64::NAN),
                ..Limits::default()
            }),
            "limits.cpu"
        );
        assert!(defaults.check().is_ok());
    }
}
