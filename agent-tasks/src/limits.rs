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
        if let Some(memory) = self.memory {
            if memory < MIN_MEMORY_LIMIT {
                return Err(crate::Error::invalid_argument(
                    "limits.memory",
                    format!("{memory} bytes is below the smallest limit, 1 MiB"),
                ));
            }
        }
        if self.pids == Some(0) {
            return Err(crate::Error::invalid_argument(
                "limits.pids",
                "must be at least 1",
            ));
        }
        if let Some(cpu) = self.cpu {
            if !cpu.is_finite() || !(MIN_CPU_LIMIT..=1_000_000.0).contains(&cpu) {
                return Err(crate::Error::invalid_argument(
                    "limits.cpu",
                    format!("{cpu} is not a fraction of a core between 0.01 and 1000000"),
                ));
            }
        }
        Ok(())
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

/// What a process task used, in its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
}

impl Usage {
    /// One short line for texts: `peak memory 12.0 MiB, cpu 0.52 s user + 0.03 s system`.
    pub fn line(&self) -> String {
        format!(
            "peak memory {}, cpu {:.2} s user + {:.2} s system",
            size_text(self.peak_memory_bytes),
            self.cpu_user_ms as f64 / 1000.0,
            self.cpu_system_ms as f64 / 1000.0
        )
    }
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

/// The manager's side of limits, handed to every task: its default limits
/// and its policy for limits that cannot be enforced.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct HostLimits {
    pub defaults: Limits,
    pub policy: UnenforcedLimits,
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
