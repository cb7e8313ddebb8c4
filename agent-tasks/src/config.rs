//! Settings: [`ManagerConfig`] for a whole manager (limits, default timeouts,
//! capacity caps) and [`SpawnOptions`] for one task (foreground or
//! background, owner, timeout and what a foreground timeout does).

use std::path::PathBuf;
use std::time::Duration;

use crate::sink::SharedSink;

/// What happens when a foreground task's timeout passes.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Stop the task: it ends `timed_out`.
    Kill,
    /// Move it to the background and release the waiting caller, so a long
    /// build does not die at the foreground limit. Its background timeout
    /// then counts from the detach.
    Detach,
}

/// Settings for a [`TaskManager`](crate::TaskManager). Built with chained
/// setters from the defaults.
///
/// ```
/// use std::time::Duration;
/// use agent_tasks::ManagerConfig;
///
/// let config = ManagerConfig::default()
///     .memory_limit(256 * 1024)
///     .max_background(8)
///     .background_timeout(None); // background tasks may run forever
/// ```
#[derive(Clone)]
pub struct ManagerConfig {
    pub(crate) root: Option<PathBuf>,
    pub(crate) memory_limit: usize,
    pub(crate) disk_limit: u64,
    pub(crate) tail_window: usize,
    pub(crate) foreground_timeout: Option<Duration>,
    pub(crate) background_timeout: Option<Duration>,
    pub(crate) on_timeout: OnTimeout,
    pub(crate) max_background: Option<usize>,
    pub(crate) max_background_per_owner: Option<usize>,
    pub(crate) queue_over_capacity: bool,
    pub(crate) max_running_of_kind: std::collections::HashMap<String, usize>,
    pub(crate) stop_grace: Duration,
    pub(crate) default_owner: String,
    pub(crate) sinks: Vec<SharedSink>,
    pub(crate) notify_host_cancels: bool,
    pub(crate) default_limits: crate::limits::Limits,
    pub(crate) limits_ceiling: crate::limits::Limits,
    pub(crate) unenforced_limits: crate::limits::UnenforcedLimits,
    pub(crate) on_host_exit: crate::supervisor::OnHostExit,
    /// The supervisor's program and the arguments before its own.
    pub(crate) supervisor: Option<(PathBuf, Vec<std::ffi::OsString>)>,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            root: None,
            memory_limit: 1024 * 1024,
            disk_limit: 256 * 1024 * 1024,
            tail_window: 64 * 1024,
            foreground_timeout: Some(Duration::from_secs(60)),
            background_timeout: Some(Duration::from_secs(600)),
            on_timeout: OnTimeout::Detach,
            max_background: None,
            max_background_per_owner: None,
            queue_over_capacity: false,
            max_running_of_kind: std::collections::HashMap::new(),
            stop_grace: Duration::from_secs(5),
            default_owner: "default".to_string(),
            sinks: Vec::new(),
            notify_host_cancels: false,
            default_limits: crate::limits::Limits::default(),
            limits_ceiling: crate::limits::Limits::default(),
            unenforced_limits: crate::limits::UnenforcedLimits::default(),
            on_host_exit: crate::supervisor::OnHostExit::default(),
            supervisor: None,
        }
    }
}

impl std::fmt::Debug for ManagerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerConfig")
            .field("root", &self.root)
            .field("memory_limit", &self.memory_limit)
            .field("disk_limit", &self.disk_limit)
            .field("tail_window", &self.tail_window)
            .field("foreground_timeout", &self.foreground_timeout)
            .field("background_timeout", &self.background_timeout)
            .field("on_timeout", &self.on_timeout)
            .field("max_background", &self.max_background)
            .field("max_background_per_owner", &self.max_background_per_owner)
            .field("queue_over_capacity", &self.queue_over_capacity)
            .field("max_running_of_kind", &self.max_running_of_kind)
            .field("stop_grace", &self.stop_grace)
            .field("default_owner", &self.default_owner)
            .field("sinks", &self.sinks.len())
            .field("notify_host_cancels", &self.notify_host_cancels)
            .field("default_limits", &self.default_limits)
            .field("limits_ceiling", &self.limits_ceiling)
            .field("unenforced_limits", &self.unenforced_limits)
            .field("on_host_exit", &self.on_host_exit)
            .field("supervisor", &self.supervisor)
            .finish()
    }
}

impl ManagerConfig {
    /// The root folder for task folders (default: a private temporary folder
    /// removed when the manager is dropped).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Bytes of output a foreground task keeps in memory before it spills
    /// (default 1 MiB).
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Bytes of output one task may write to its log (default 256 MiB); past
    /// it the log keeps the head and the tail.
    pub fn disk_limit(mut self, bytes: u64) -> Self {
        self.disk_limit = bytes;
        self
    }

    /// Bytes of the latest output kept in memory after a spill (default
    /// 64 KiB); also the tail kept when the disk cap is reached.
    pub fn tail_window(mut self, bytes: usize) -> Self {
        self.tail_window = bytes;
        self
    }

    /// Default timeout of foreground tasks (default 60 s; `None`: none).
    pub fn foreground_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.foreground_timeout = timeout;
        self
    }

    /// Default timeout of background tasks (default 10 min; `None`: none).
    pub fn background_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.background_timeout = timeout;
        self
    }

    /// Default action when a foreground timeout passes (default: detach).
    pub fn on_timeout(mut self, policy: OnTimeout) -> Self {
        self.on_timeout = policy;
        self
    }

    /// Cap on background tasks running at once, over all owners.
    pub fn max_background(mut self, max: usize) -> Self {
        self.max_background = Some(max);
        self
    }

    /// Cap on background tasks running at once for any one owner.
    pub fn max_background_per_owner(mut self, max: usize) -> Self {
        self.max_background_per_owner = Some(max);
        self
    }

    /// With `true`, a background spawn over a cap (global, per owner or per
    /// kind) is not refused: it waits in a FIFO queue (status `queued`,
    /// listed and pollable, counted in no cap, cancellable: it then ends
    /// `cancelled` without ever running) and starts when a slot frees,
    /// oldest first (one that still does not fit does not hold back the
    /// others). Its background timeout counts from its start. A foreground
    /// spawn over a kind cap is still refused (someone waits for it now),
    /// and so is a detach over a cap. Default `false`:
    /// [`Error::CapacityExceeded`](crate::Error::CapacityExceeded).
    pub fn queue_over_capacity(mut self, yes: bool) -> Self {
        self.queue_over_capacity = yes;
        self
    }

    /// Cap on running tasks of one kind, foreground and background alike
    /// (e.g. at most 3 subagents beside any number of shell commands);
    /// checked atomically with the insert, like the other caps.
    ///
    /// ```
    /// use agent_tasks::ManagerConfig;
    /// let config = ManagerConfig::default().max_running_of_kind("fn", 3);
    /// ```
    pub fn max_running_of_kind(mut self, kind: impl Into<String>, max: usize) -> Self {
        self.max_running_of_kind.insert(kind.into(), max);
        self
    }

    /// How long a function task may take to return after it was asked to
    /// stop before the manager drops it (default 5 s). Process tasks use
    /// their own kill grace.
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// The owner given to tasks spawned without one (default `"default"`).
    pub fn default_owner(mut self, owner: impl Into<String>) -> Self {
        self.default_owner = owner.into();
        self
    }

    /// A sink that receives the output of every task of this manager.
    pub fn sink(mut self, sink: SharedSink) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Whether a background task stopped by the host (cancel, shutdown,
    /// owner closed) still queues an end notification. Default false: the
    /// host already knows. Timeouts always notify.
    pub fn notify_host_cancels(mut self, yes: bool) -> Self {
        self.notify_host_cancels = yes;
        self
    }

    /// Resource limits of every process task of this manager, for each kind
    /// a task does not set itself ([`ProcessTask::limits`](crate::ProcessTask::limits));
    /// default none. See [`Limits`](crate::Limits).
    ///
    /// ```
    /// use agent_tasks::{Limits, ManagerConfig};
    /// let config = ManagerConfig::default().default_limits(Limits {
    ///     memory: Some(4 << 30),
    ///     pids: Some(1024),
    ///     cpu: None,
    /// });
    /// ```
    pub fn default_limits(mut self, limits: crate::limits::Limits) -> Self {
        self.default_limits = limits;
        self
    }

    /// A ceiling for all of this manager's process tasks together (one
    /// parent cgroup their own are made in; default none): many tasks,
    /// each under its own limits, cannot add up past it. At the memory
    /// ceiling the kernel kills a process of one task, which ends `failed`
    /// with `killed: memory ceiling of the manager 1 GiB reached (OOM)…`;
    /// at the pids ceiling `fork` fails in whichever task forks; under the
    /// CPU ceiling the tasks are throttled together.
    ///
    /// Needs cgroup v1 hierarchies for its kinds (this is what hybrid and
    /// legacy machines have): where one is missing, or the controllers are
    /// v2-delegated instead, building the manager fails with
    /// [`Error::LimitsUnavailable`](crate::Error::LimitsUnavailable)
    /// whatever the policy ([`ManagerConfig::unenforced_limits`]): a
    /// ceiling guards the host and is never claimed where it is not
    /// applied. A task whose containment is `ProcessGroup` cannot count
    /// against it: the policy decides for such a task.
    ///
    /// ```
    /// use agent_tasks::{Limits, ManagerConfig};
    /// let config = ManagerConfig::default().limits_ceiling(Limits {
    ///     memory: Some(8 << 30),
    ///     pids: Some(4096),
    ///     cpu: Some(1.5),
    /// });
    /// ```
    pub fn limits_ceiling(mut self, limits: crate::limits::Limits) -> Self {
        self.limits_ceiling = limits;
        self
    }

    /// What to do with a task whose limits this host cannot enforce
    /// (default [`UnenforcedLimits::Refuse`](crate::UnenforcedLimits::Refuse):
    /// the spawn fails with [`Error::LimitsUnavailable`](crate::Error::LimitsUnavailable)).
    pub fn unenforced_limits(mut self, policy: crate::limits::UnenforcedLimits) -> Self {
        self.unenforced_limits = policy;
        self
    }

    /// What becomes of background process tasks when the host exits, for
    /// those whose spawn does not say (default
    /// [`OnHostExit::Kill`](crate::OnHostExit::Kill)); see
    /// [`SpawnOptions::on_host_exit`].
    pub fn on_host_exit(mut self, policy: crate::supervisor::OnHostExit) -> Self {
        self.on_host_exit = policy;
        self
    }

    /// The program that supervises tasks that outlive their host (started
    /// with [`SUPERVISOR_ARG`](crate::SUPERVISOR_ARG)). Default: the one the
    /// `AGENT_TASKS_SUPERVISOR` environment variable names, else
    /// `agent-tasks-supervisor` beside the host's program, else the host's
    /// program itself if it calls [`run_if_supervisor`](crate::run_if_supervisor).
    pub fn supervisor_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.supervisor = Some((program.into(), Vec::new()));
        self
    }

    /// Like [`ManagerConfig::supervisor_program`], for a program that needs
    /// arguments before the supervisor's own (an interpreter and its
    /// module: a binding runs `python -m agent_tasks._supervisor`). Unless
    /// `only_if_unset` and one is set already.
    pub fn supervisor_command<I, S>(
        mut self,
        program: impl Into<PathBuf>,
        args: I,
        only_if_unset: bool,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        if !(only_if_unset && self.supervisor.is_some()) {
            self.supervisor = Some((program.into(), args.into_iter().map(Into::into).collect()));
        }
        self
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        self.default_limits.check()?;
        self.limits_ceiling.check_as("limits_ceiling")?;
        if self.memory_limit == 0 {
            return Err(crate::Error::invalid_argument(
                "memory_limit",
                "must be at least 1 byte",
            ));
        }
        if self.disk_limit < 2 {
            return Err(crate::Error::invalid_argument(
                "disk_limit",
                "must be at least 2 bytes",
            ));
        }
        Ok(())
    }
}

/// A timeout choice that may defer to the manager's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum TimeoutSetting {
    #[default]
    Default,
    Never,
    After(Duration),
}

impl TimeoutSetting {
    pub(crate) fn resolve(self, default: Option<Duration>) -> Option<Duration> {
        match self {
            TimeoutSetting::Default => default,
            TimeoutSetting::Never => None,
            TimeoutSetting::After(d) => Some(d),
        }
    }
}

/// How to spawn one task.
///
/// ```
/// use std::time::Duration;
/// use agent_tasks::{OnTimeout, SpawnOptions};
///
/// let fg = SpawnOptions::foreground()
///     .timeout(Duration::from_secs(30))
///     .on_timeout(OnTimeout::Detach)
///     .owner("session-42");
/// let bg = SpawnOptions::background().no_timeout();
/// ```
#[derive(Clone, Default)]
pub struct SpawnOptions {
    pub(crate) background: bool,
    pub(crate) owner: Option<String>,
    pub(crate) foreground_timeout: TimeoutSetting,
    pub(crate) background_timeout: TimeoutSetting,
    pub(crate) on_timeout: Option<OnTimeout>,
    pub(crate) keep_alive: bool,
    pub(crate) description: Option<String>,
    pub(crate) sinks: Vec<SharedSink>,
    pub(crate) track_changes: Option<PathBuf>,
    pub(crate) monitoring: Monitoring,
    pub(crate) source: Option<crate::info::TaskSource>,
    pub(crate) on_host_exit: Option<crate::supervisor::OnHostExit>,
}

/// Watch patterns, heartbeat and stall detection of one task.
#[derive(Clone, Debug)]
pub(crate) struct Monitoring {
    pub watch: Vec<String>,
    pub watch_interval: Duration,
    pub watch_max: usize,
    pub heartbeat: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub cancel_on_stall: bool,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            watch: Vec::new(),
            watch_interval: Duration::from_secs(15),
            watch_max: 8,
            heartbeat: None,
            idle_timeout: None,
            cancel_on_stall: false,
        }
    }
}

/// The shortest heartbeat interval allowed.
pub const MIN_HEARTBEAT: Duration = Duration::from_secs(60);

impl std::fmt::Debug for SpawnOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnOptions")
            .field("background", &self.background)
            .field("owner", &self.owner)
            .field("foreground_timeout", &self.foreground_timeout)
            .field("background_timeout", &self.background_timeout)
            .field("on_timeout", &self.on_timeout)
            .field("keep_alive", &self.keep_alive)
            .field("sinks", &self.sinks.len())
            .field("track_changes", &self.track_changes)
            .field("monitoring", &self.monitoring)
            .field("source", &self.source)
            .field("on_host_exit", &self.on_host_exit)
            .finish()
    }
}

impl SpawnOptions {
    /// A foreground task: its caller awaits
    /// [`TaskHandle::wait_foreground`](crate::TaskHandle::wait_foreground).
    pub fn foreground() -> Self {
        SpawnOptions::default()
    }

    /// A background task: its output goes to disk from the start.
    pub fn background() -> Self {
        SpawnOptions {
            background: true,
            ..SpawnOptions::default()
        }
    }

    /// The owner (session key); default: the manager's default owner.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// The timeout of the mode the task starts in.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if self.background {
            self.background_timeout = TimeoutSetting::After(timeout);
        } else {
            self.foreground_timeout = TimeoutSetting::After(timeout);
        }
        self
    }

    /// No timeout in the mode the task starts in.
    pub fn no_timeout(mut self) -> Self {
        if self.background {
            self.background_timeout = TimeoutSetting::Never;
        } else {
            self.foreground_timeout = TimeoutSetting::Never;
        }
        self
    }

    /// The timeout once in the background (after a detach, counted from the
    /// detach); `None`: none.
    pub fn background_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.background_timeout = match timeout {
            Some(d) => TimeoutSetting::After(d),
            None => TimeoutSetting::Never,
        };
        self
    }

    /// What a foreground timeout does (default: the manager's).
    pub fn on_timeout(mut self, policy: OnTimeout) -> Self {
        self.on_timeout = Some(policy);
        self
    }

    /// What becomes of the task when its host exits or crashes (default:
    /// the manager's, [`ManagerConfig::on_host_exit`]). With
    /// [`OnHostExit::KeepRunning`](crate::OnHostExit::KeepRunning) a
    /// background process task runs under a supervisor process of its own:
    /// it outlives the host, `shutdown` leaves it running, and the next
    /// manager that opens the root re-attaches to it. Refused for a
    /// foreground task, a function task, and a manager without a root of
    /// its own (a temporary root goes with its host).
    pub fn on_host_exit(mut self, policy: crate::supervisor::OnHostExit) -> Self {
        self.on_host_exit = Some(policy);
        self
    }

    /// Leave the task running on `shutdown` and `close_owner`.
    pub fn keep_alive(mut self, yes: bool) -> Self {
        self.keep_alive = yes;
        self
    }

    /// What the task answers: the registered agent and the arguments the
    /// model delegated it with. It is carried into the end notification (so
    /// a model that forgot the delegation knows what the result answers)
    /// and the roster. Set by a toolbox's delegation tool; hosts may set it.
    pub fn source(mut self, source: crate::info::TaskSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Overrides the task's own description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// A sink that receives this task's output (besides the manager's).
    pub fn sink(mut self, sink: SharedSink) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Records which files under `dir` the task created, modified or
    /// deleted (honouring `.gitignore`); the list is in the result and in the
    /// task folder's `files.json`.
    pub fn track_changes(mut self, dir: impl Into<PathBuf>) -> Self {
        self.track_changes = Some(dir.into());
        self
    }

    /// Regexes matched against each output line; a match queues a
    /// notification with the line for the owner (while the task is in the
    /// background). A pattern that does not compile fails the spawn with
    /// `InvalidArgument { name: "watch" }`.
    pub fn watch<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.monitoring
            .watch
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// At most one watch notification per `interval` (default 15 s); matches
    /// in between are counted in the next one.
    pub fn watch_interval(mut self, interval: Duration) -> Self {
        self.monitoring.watch_interval = interval;
        self
    }

    /// After this many watch notifications (default 8) watching stops, with
    /// one notice saying so.
    pub fn watch_max(mut self, max: usize) -> Self {
        self.monitoring.watch_max = max;
        self
    }

    /// A progress notification every `interval` (at least 60 s) with the
    /// output since the last one, skipped when there is none.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.monitoring.heartbeat = Some(interval);
        self
    }

    /// No output for this long gives a `task.stalled` event and (in the
    /// background) a notification.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.monitoring.idle_timeout = Some(idle);
        self
    }

    /// Also cancel the task when it stalls (it ends `timed_out`).
    pub fn cancel_on_stall(mut self, yes: bool) -> Self {
        self.monitoring.cancel_on_stall = yes;
        self
    }
}

impl OnTimeout {
    /// Every policy, in declaration order.
    pub const ALL: [OnTimeout; 2] = [OnTimeout::Kill, OnTimeout::Detach];

    /// The policy's wire name: `kill` or `detach`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnTimeout::Kill => "kill",
            OnTimeout::Detach => "detach",
        }
    }
}

impl std::fmt::Display for OnTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OnTimeout {
    type Err = crate::Error;

    /// `kill` or `detach`; anything else is an `InvalidArgument` naming
    /// `on_timeout` and listing both.
    fn from_str(s: &str) -> crate::Result<Self> {
        crate::names::by_name("on_timeout", s, &OnTimeout::ALL, OnTimeout::as_str)
    }
}
