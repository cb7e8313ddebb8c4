//! The options of the calls a front end makes (a manager's settings,
//! `run`/`spawn`, a tool box, an ACP agent), read as data: `serde` structs
//! with the core's names, filled from a binding's keyword arguments (a
//! Python dict through `pythonize`, a JSON object, ...) and turned into the
//! core's builders here, so the names, the defaults (`None` keeps the
//! core's), the ranges and the errors are one rule for every front end.
//!
//! Scalars are read strictly (a `bool` is no count, a `str` no number), and
//! an error is an [`Error::InvalidArgument`] naming the option: its name,
//! or `limits.<key>` inside `limits` (an unknown key there gets the "did
//! you mean" hint of [`unknown_option`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;

use crate::acp::{AcpTask, FileAccess, PermissionPolicy};
use crate::config::{ManagerConfig, SpawnOptions};
use crate::durations::{
    duration_from_millis, duration_from_secs, timeout_from_millis, timeout_from_secs,
};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::names::{parse_name, unknown_option};
use crate::process::{terminal_size, ProcessTask};
use crate::tools::ToolBoxConfig;

/// Reads the options `T` of `call` (`run`, ...) from `options` (a map of
/// option names to values). An unknown option, with a "did you mean" hint,
/// or a value of the wrong kind is an [`Error::InvalidArgument`] naming it
/// (`limits.memory` inside `limits`; an unknown key of `limits` with a
/// "did you mean" hint).
///
/// ```
/// use agent_tasks::{parse_options, TaskOptions};
/// use serde_json::json;
/// let options: TaskOptions = parse_options("run", json!({"timeout": 5, "background": true}))?;
/// assert_eq!((options.timeout, options.background), (Some(5.0), true));
/// let err = parse_options::<TaskOptions, _>("run", json!({"tiemout": 5})).unwrap_err();
/// assert!(err.to_string().contains("did you mean `timeout`?"), "{err}");
/// let err = parse_options::<TaskOptions, _>("run", json!({"limits": {"pids": true}})).unwrap_err();
/// assert!(err.to_string().starts_with("invalid argument `limits.pids`"), "{err}");
/// # Ok::<(), agent_tasks::Error>(())
/// ```
pub fn parse_options<'de, T, D>(call: &str, options: D) -> Result<T>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    parse_options_with(call, options, |e| e.to_string())
}

/// [`parse_options`] with a deserializer whose errors show more than serde's
/// message (napi-rs's show its status first): `message` gives the message.
pub fn parse_options_with<'de, T, D>(
    call: &str,
    options: D,
    message: impl FnOnce(D::Error) -> String,
) -> Result<T>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    serde_path_to_error::deserialize(options).map_err(|e| {
        // The option's name: the path up to a list index (`pty[0]` is `pty`).
        let path = e.path().to_string();
        let name = path.split('[').next().unwrap_or_default().to_string();
        let message = message(e.into_inner());
        // serde: "unknown field `memroy`, expected one of `memory`, `pids`, `cpu`"
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let mut names = rest.split('`').step_by(2).map(str::to_string);
            let given = names.next().unwrap_or_default();
            let known: Vec<String> = names.filter(|n| !n.is_empty()).collect();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            // The path ends with the key (`limits.memroy`); at the root it is the key.
            let parent = name.strip_suffix(&given).unwrap_or(&name);
            let parent = parent.strip_suffix('.').unwrap_or(call);
            return match unknown_option(parent, &given, &known) {
                Error::InvalidArgument { message, .. } => Error::invalid_argument(&name, message),
                other => other,
            };
        }
        Error::invalid_argument(if name == "." { "options" } else { &name }, message)
    })
}

/// The unit of the times of an option struct (its `unit`): seconds, the
/// core's (Python's `timeout=1.5`), or milliseconds, a JavaScript front
/// end's (`timeoutMs: 1500`, named by the core's name). `inf` is none in both.
///
/// ```
/// use agent_tasks::{parse_options, TaskOptions, TimeUnit};
/// use serde_json::json;
/// let mut options: TaskOptions = parse_options("run", json!({"timeout": -5}))?;
/// options.unit = TimeUnit::Millis;
/// let err = options.spawn_options().unwrap_err();
/// assert!(err.to_string().contains("a number of milliseconds >= 0, got -5"), "{err}");
/// # Ok::<(), agent_tasks::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds (the default).
    #[default]
    Seconds,
    /// Milliseconds.
    Millis,
}

impl TimeUnit {
    /// A finite duration named `name` ([`duration_from_secs`] or [`duration_from_millis`]).
    fn duration(self, name: &str, value: f64) -> Result<Duration> {
        match self {
            TimeUnit::Seconds => duration_from_secs(name, value),
            TimeUnit::Millis => duration_from_millis(name, value),
        }
    }

    /// A timeout setting: `None` keeps the default, `Some(None)` is none.
    fn timeout(self, name: &str, value: Option<f64>) -> Result<Option<Option<Duration>>> {
        value
            .map(|v| match self {
                TimeUnit::Seconds => timeout_from_secs(name, Some(v)),
                TimeUnit::Millis => timeout_from_millis(name, Some(v)),
            })
            .transpose()
    }
}

/// A scalar as given, of whichever kind (read with `deserialize_any`, so
/// a `bool` stays a `bool` and a `str` a `str`).
enum Scalar {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
}

impl Scalar {
    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Scalar::Bool(b) => Unexpected::Bool(*b),
            Scalar::Int(i) => match i64::try_from(*i) {
                Ok(i) => Unexpected::Signed(i),
                Err(_) => Unexpected::Other("an int out of range"),
            },
            Scalar::Float(f) => Unexpected::Float(*f),
            Scalar::Str(s) => Unexpected::Str(s),
        }
    }
}

/// Reads a [`Scalar`]; anything else is an error expecting `.0`.
struct ScalarVisitor(&'static str);

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Str(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor("a bool, a number or a string"))
    }
}

/// What a strict scalar is to be: its description in errors, and the check.
trait Kind: Sized {
    const EXPECTED: &'static str;
    fn from_scalar(scalar: Scalar) -> std::result::Result<Self, Scalar>;
}

impl Kind for bool {
    const EXPECTED: &'static str = "a bool";
    fn from_scalar(s: Scalar) -> std::result::Result<Self, Scalar> {
        match s {
            Scalar::Bool(b) => Ok(b),
            other => Err(other),
        }
    }
}

impl Kind for u64 {
    const EXPECTED: &'static str = "a non-negative int";
    fn from_scalar(s: Scalar) -> std::result::Result<Self, Scalar> {
        match s {
            Scalar::Int(i) => u64::try_from(i).map_err(|_| Scalar::Int(i)),
            other => Err(other),
        }
    }
}

impl Kind for f64 {
    const EXPECTED: &'static str = "a number (float)";
    fn from_scalar(s: Scalar) -> std::result::Result<Self, Scalar> {
        match s {
            Scalar::Float(f) => Ok(f),
            // An int is a number too (as exact as an f64 holds it).
            Scalar::Int(i) => Ok(i as f64),
            other => Err(other),
        }
    }
}

impl Kind for String {
    const EXPECTED: &'static str = "a string (str)";
    fn from_scalar(s: Scalar) -> std::result::Result<Self, Scalar> {
        match s {
            Scalar::Str(s) => Ok(s),
            other => Err(other),
        }
    }
}

impl Kind for PathBuf {
    const EXPECTED: &'static str = "a path (str)";
    fn from_scalar(s: Scalar) -> std::result::Result<Self, Scalar> {
        String::from_scalar(s).map(PathBuf::from)
    }
}

/// A strict scalar of kind `K` (see [`Kind`]).
struct Strict<K>(K);

impl<'de, K: Kind> Deserialize<'de> for Strict<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        K::from_scalar(d.deserialize_any(ScalarVisitor(K::EXPECTED))?)
            .map(Strict)
            .map_err(|s| de::Error::invalid_type(s.unexpected(), &K::EXPECTED))
    }
}

/// `deserialize_with` of an optional strict scalar (`None`: not given).
fn strict<'de, D: Deserializer<'de>, K: Kind>(d: D) -> std::result::Result<Option<K>, D::Error> {
    Ok(Option::<Strict<K>>::deserialize(d)?.map(|s| s.0))
}

/// `deserialize_with` of a strict `bool` (`None`, or not given, is false).
fn flag<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    Ok(Strict::<bool>::deserialize(d)?.0)
}

/// `deserialize_with` of a list of strings.
fn strings<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<String>>, D::Error> {
    let list = Option::<Vec<Strict<String>>>::deserialize(d)?;
    Ok(list.map(|l| l.into_iter().map(|s| s.0).collect()))
}

/// `deserialize_with` of an environment: a map of names to strings.
fn env<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<BTreeMap<String, String>>, D::Error> {
    let map = Option::<BTreeMap<String, Strict<String>>>::deserialize(d)?;
    Ok(map.map(|m| m.into_iter().map(|(k, v)| (k, v.0)).collect()))
}

/// `deserialize_with` of a terminal size: `(cols, rows)`.
fn size_pair<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<(u64, u64)>, D::Error> {
    Ok(Option::<(Strict<u64>, Strict<u64>)>::deserialize(d)?.map(|(c, r)| (c.0, r.0)))
}

/// `deserialize_with` of caps by kind: a map of kind names to counts,
/// named as a whole when wrong (its keys are the host's, not options).
fn caps<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<BTreeMap<String, u64>>, D::Error> {
    let Some(map) = Option::<BTreeMap<Scalar, Scalar>>::deserialize(d)? else {
        return Ok(None);
    };
    let mut caps = BTreeMap::new();
    for (kind, max) in map {
        let (Scalar::Str(kind), Ok(max)) = (kind, u64::from_scalar(max)) else {
            return Err(de::Error::custom(
                "expected a mapping of kind names (str) to non-negative ints",
            ));
        };
        caps.insert(kind, max);
    }
    Ok(Some(caps))
}

// A map's keys must be ordered to be read into a `BTreeMap`; a `Scalar`
// key is only ever checked, so any total order does.
impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Scalar {}
impl PartialOrd for Scalar {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scalar {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |s: &Scalar| match s {
            Scalar::Bool(b) => (0, b.to_string()),
            Scalar::Int(i) => (1, i.to_string()),
            Scalar::Float(f) => (2, f.to_string()),
            Scalar::Str(s) => (3, s.clone()),
        };
        key(self).cmp(&key(other))
    }
}

/// `usize` of a count (saturating where `usize` is narrower).
fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Resource limits of a process task's whole tree (a task's `limits`, or
/// a manager's default for each kind a task does not set), enforced by the
/// kernel through cgroups. A kind left out (or null) sets no limit of that
/// kind; the ranges are [`Limits::check`]'s.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsOptions {
    /// Bytes (at least 1 MiB; swap off). At the limit the kernel kills the
    /// task's processes and the task ends `failed` with an error naming the
    /// limit and the peak (`killed: memory limit 64 MiB reached (OOM), peak
    /// 64 MiB`).
    #[serde(default, deserialize_with = "strict")]
    pub memory: Option<u64>,
    /// Processes and threads at once; past it `fork` fails inside the task.
    #[serde(default, deserialize_with = "strict")]
    pub pids: Option<u64>,
    /// A fraction of one core (`0.5`, `2.0`); it throttles.
    #[serde(default, deserialize_with = "strict")]
    pub cpu: Option<f64>,
}

impl From<LimitsOptions> for Limits {
    fn from(o: LimitsOptions) -> Limits {
        Limits {
            memory: o.memory,
            pids: o.pids,
            cpu: o.cpu,
        }
    }
}

/// The settings of a manager ([`ManagerConfig`]); `None` keeps the core's
/// default. Times are seconds, `inf` for no timeout.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagerOptions {
    /// Folder of the task folders (`<root>/tasks/<id>`; default: a private
    /// temporary folder). A manager loads the tasks and pending notifications
    /// an earlier one left there (a task that was running when its host died
    /// becomes `lost`, or is reported orphaned while its process still runs).
    /// One root is open in one manager at a time (`RootInUse` otherwise); a
    /// shutdown that leaves nothing running releases it.
    #[serde(default, deserialize_with = "strict")]
    pub root: Option<PathBuf>,
    /// Bytes of output a foreground task keeps in memory before it spills to
    /// disk (default 1 MiB).
    #[serde(default, deserialize_with = "strict")]
    pub memory_limit: Option<u64>,
    /// Bytes of output one task may write to its log (default 256 MiB).
    #[serde(default, deserialize_with = "strict")]
    pub disk_limit: Option<u64>,
    /// Bytes of the latest output kept in memory after a spill (default 64 KiB).
    #[serde(default, deserialize_with = "strict")]
    pub tail_window: Option<u64>,
    /// Default foreground timeout in seconds (default 60; `inf`: none).
    #[serde(default, deserialize_with = "strict")]
    pub foreground_timeout: Option<f64>,
    /// Default background timeout in seconds (default 600; `inf`: none).
    #[serde(default, deserialize_with = "strict")]
    pub background_timeout: Option<f64>,
    /// What a foreground timeout does: `detach` (default) or `kill`.
    #[serde(default, deserialize_with = "strict")]
    pub on_timeout: Option<String>,
    /// Cap on background tasks running at once, over all owners (default: none).
    #[serde(default, deserialize_with = "strict")]
    pub max_background: Option<u64>,
    /// Cap on background tasks running at once for any one owner (default: none).
    #[serde(default, deserialize_with = "strict")]
    pub max_background_per_owner: Option<u64>,
    /// Caps on running background tasks by kind, e.g. `{"agent": 3}` for at
    /// most three subagents at once (the check and the insert are atomic, so
    /// racing spawns cannot pass it).
    #[serde(default, deserialize_with = "caps")]
    pub max_running_of_kind: Option<BTreeMap<String, u64>>,
    /// Seconds a function task may take to return after a stop request
    /// before the manager gives up on it (default 5).
    #[serde(default, deserialize_with = "strict")]
    pub stop_grace: Option<f64>,
    /// Owner of tasks started without one (default `default`).
    #[serde(default, deserialize_with = "strict")]
    pub default_owner: Option<String>,
    /// Whether a background task stopped by the host (cancel, shutdown,
    /// `close_owner`) still queues an end notification (default: no; timeouts
    /// always do).
    #[serde(default, deserialize_with = "flag")]
    pub notify_host_cancels: bool,
    /// A background task over a cap waits in a FIFO queue (status `queued`,
    /// cancellable) instead of failing with `CapacityExceeded` (default: no).
    #[serde(default, deserialize_with = "flag")]
    pub queue_over_capacity: bool,
    /// Default resource limits of every process task, for each kind a task's
    /// own `limits` does not set (default: none).
    #[serde(default)]
    pub limits: Option<LimitsOptions>,
    /// A ceiling for all of the manager's process tasks together (one parent
    /// cgroup their own are made in; default: none): at its memory the
    /// kernel kills a process of one task, which ends `failed` with
    /// `killed: memory ceiling of the manager … reached (OOM)`. Needs cgroup
    /// v1 hierarchies for its kinds, else the manager is refused with
    /// `LimitsUnavailable`.
    #[serde(default)]
    pub limits_ceiling: Option<LimitsOptions>,
    /// A task whose limits this host cannot enforce: `refuse` (default) fails
    /// with `LimitsUnavailable`; `report` runs it, and its
    /// `info.limits.not_enforced` says what is not applied and why.
    #[serde(default, deserialize_with = "strict")]
    #[schemars(with = "Option<crate::limits::UnenforcedLimits>")]
    pub unenforced_limits: Option<String>,
    /// What becomes of background process tasks when the host exits, for
    /// those whose start does not say: `kill` (default) or `keep_running`
    /// (under a supervisor process of their own, re-attached by the next
    /// host that opens the root; needs a `root`).
    #[serde(default, deserialize_with = "strict")]
    #[schemars(with = "Option<crate::OnHostExit>")]
    pub on_host_exit: Option<String>,
    /// The supervisor program of `keep_running` tasks (default: the one the
    /// binding ships).
    #[serde(default)]
    pub supervisor_program: Option<PathBuf>,
    /// The unit of the times above (set by the front end, not an option).
    #[serde(skip)]
    pub unit: TimeUnit,
}

impl ManagerOptions {
    /// The manager's config, the rules checked.
    pub fn config(self) -> Result<ManagerConfig> {
        let mut c = ManagerConfig::default()
            .notify_host_cancels(self.notify_host_cancels)
            .queue_over_capacity(self.queue_over_capacity);
        if let Some(root) = self.root {
            c = c.root(root);
        }
        if let Some(n) = self.memory_limit {
            c = c.memory_limit(size(n));
        }
        if let Some(n) = self.disk_limit {
            c = c.disk_limit(n);
        }
        if let Some(n) = self.tail_window {
            c = c.tail_window(size(n));
        }
        if let Some(t) = self
            .unit
            .timeout("foreground_timeout", self.foreground_timeout)?
        {
            c = c.foreground_timeout(t);
        }
        if let Some(t) = self
            .unit
            .timeout("background_timeout", self.background_timeout)?
        {
            c = c.background_timeout(t);
        }
        if let Some(name) = self.on_timeout {
            c = c.on_timeout(parse_name("on_timeout", &name)?);
        }
        if let Some(n) = self.max_background {
            c = c.max_background(size(n));
        }
        if let Some(n) = self.max_background_per_owner {
            c = c.max_background_per_owner(size(n));
        }
        for (kind, max) in self.max_running_of_kind.into_iter().flatten() {
            c = c.max_running_of_kind(kind, size(max));
        }
        if let Some(s) = self.stop_grace {
            c = c.stop_grace(self.unit.duration("stop_grace", s)?);
        }
        if let Some(owner) = self.default_owner {
            c = c.default_owner(owner);
        }
        if let Some(limits) = self.limits {
            c = c.default_limits(limits.into());
        }
        if let Some(limits) = self.limits_ceiling {
            c = c.limits_ceiling(limits.into());
        }
        if let Some(name) = self.unenforced_limits {
            c = c.unenforced_limits(parse_name("unenforced_limits", &name)?);
        }
        if let Some(name) = self.on_host_exit {
            c = c.on_host_exit(parse_name("on_host_exit", &name)?);
        }
        if let Some(program) = self.supervisor_program {
            c = c.supervisor_program(program);
        }
        Ok(c)
    }
}

/// The options of starting a task (`run`, `spawn`): where it runs and its
/// timeouts, its monitoring, and, for a process task, how it is started.
/// `None` keeps the core's default; times are seconds (`inf`: none).
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskOptions {
    /// Start in the background (default: in the foreground, where the caller
    /// waits with `wait_foreground`).
    #[serde(default, deserialize_with = "flag")]
    pub background: bool,
    /// Seconds the task may run in the mode it starts in (default: the
    /// manager's; `inf`: none).
    #[serde(default, deserialize_with = "strict")]
    pub timeout: Option<f64>,
    /// Seconds the task may run in the background (after a detach).
    #[serde(default, deserialize_with = "strict")]
    pub background_timeout: Option<f64>,
    /// What a foreground timeout does: `detach` (to the background) or `kill`
    /// (default: the manager's).
    #[serde(default, deserialize_with = "strict")]
    pub on_timeout: Option<String>,
    /// What the task is, for lists and notifications (default: the command,
    /// or the function's name).
    #[serde(default, deserialize_with = "strict")]
    pub description: Option<String>,
    /// The session the task belongs to (default: the manager's `default_owner`).
    #[serde(default, deserialize_with = "strict")]
    pub owner: Option<String>,
    /// Not stopped by `shutdown` nor `close_owner`.
    #[serde(default, deserialize_with = "flag")]
    pub keep_alive: bool,
    /// Regexes matched against each output line: a match gives a
    /// `task.watch_matched` event and, in the background, a `watch_match`
    /// notification.
    #[serde(default, deserialize_with = "strings")]
    pub watch: Option<Vec<String>>,
    /// At most one watch notification per this many seconds (default 15).
    #[serde(default, deserialize_with = "strict")]
    pub watch_interval: Option<f64>,
    /// Watching stops after this many notifications (default 8).
    #[serde(default, deserialize_with = "strict")]
    pub watch_max: Option<u64>,
    /// Seconds (at least 60) between `progress` notifications with the new output.
    #[serde(default, deserialize_with = "strict")]
    pub heartbeat: Option<f64>,
    /// Seconds without output after which a `task.stalled` event (and
    /// notification) comes.
    #[serde(default, deserialize_with = "strict")]
    pub idle_timeout: Option<f64>,
    /// Stop the task when it stalls (see `idle_timeout`).
    #[serde(default, deserialize_with = "flag")]
    pub cancel_on_stall: bool,
    /// A folder: the files the task created, modified or deleted there are
    /// listed in `result.changed_files`.
    #[serde(default, deserialize_with = "strict")]
    pub track_changes: Option<PathBuf>,
    /// A function task's kind, the prefix of its id (default `fn`).
    #[serde(default, deserialize_with = "strict")]
    pub kind: Option<String>,
    /// A process task's working directory (default: the host's).
    #[serde(default, deserialize_with = "strict")]
    pub cwd: Option<PathBuf>,
    /// Environment variables added to the host's (with `env_clear`: replacing them).
    #[serde(default, deserialize_with = "env")]
    pub env: Option<BTreeMap<String, String>>,
    /// Start from an empty environment.
    #[serde(default, deserialize_with = "flag")]
    pub env_clear: bool,
    /// Keep stdin open for `send` (default: closed once `stdin` is written).
    #[serde(default, deserialize_with = "flag")]
    pub interactive: bool,
    /// Seconds between SIGTERM and SIGKILL to the process group on cancel
    /// (default 5).
    #[serde(default, deserialize_with = "strict")]
    pub kill_grace: Option<f64>,
    /// `(cols, rows)`: run on a pseudo-terminal of that size (for programs
    /// that want a terminal: password prompts, REPLs). Stdout and stderr are
    /// then one stream (`stdout`), the task always takes input (`send` types,
    /// `send_keys` types control keys), and `resize` changes the size.
    #[serde(default, deserialize_with = "size_pair")]
    pub pty: Option<(u64, u64)>,
    /// Resource limits of the task's whole tree (cgroups), over the manager's
    /// default kind by kind: a task over its memory limit ends `failed`
    /// (`killed: memory limit ... reached (OOM), peak ...`); `result.usage`
    /// has what it used.
    #[serde(default)]
    pub limits: Option<LimitsOptions>,
    /// What becomes of a background process task when its host exits:
    /// `kill` (default: the manager's) or `keep_running` (it runs on under a
    /// supervisor process of its own; the next host that opens the root
    /// re-attaches to it, or reads how it ended).
    #[serde(default, deserialize_with = "strict")]
    #[schemars(with = "Option<crate::OnHostExit>")]
    pub on_host_exit: Option<String>,
    /// The unit of the times above (set by the front end, not an option).
    #[serde(skip)]
    pub unit: TimeUnit,
}

impl TaskOptions {
    /// The spawn options every kind of task shares, the rules checked.
    pub fn spawn_options(&self) -> Result<SpawnOptions> {
        let mut o = if self.background {
            SpawnOptions::background()
        } else {
            SpawnOptions::foreground()
        };
        if self.background && self.timeout.is_some() && self.background_timeout.is_some() {
            return Err(Error::invalid_argument(
                "background_timeout",
                "give `timeout` or `background_timeout` for a task started in the background, not both",
            ));
        }
        if let Some(t) = self
            .unit
            .timeout("background_timeout", self.background_timeout)?
        {
            o = o.background_timeout(t);
        }
        match self.unit.timeout("timeout", self.timeout)? {
            None => {}
            Some(None) => o = o.no_timeout(),
            Some(Some(limit)) => o = o.timeout(limit),
        }
        if let Some(name) = &self.on_timeout {
            o = o.on_timeout(parse_name("on_timeout", name)?);
        }
        if let Some(text) = &self.description {
            o = o.description(text.clone());
        }
        if let Some(owner) = &self.owner {
            o = o.owner(owner.clone());
        }
        if let Some(patterns) = &self.watch {
            o = o.watch(patterns.clone());
        }
        if let Some(s) = self.watch_interval {
            o = o.watch_interval(self.unit.duration("watch_interval", s)?);
        }
        if let Some(max) = self.watch_max {
            o = o.watch_max(size(max));
        }
        if let Some(s) = self.heartbeat {
            o = o.heartbeat(self.unit.duration("heartbeat", s)?);
        }
        if let Some(s) = self.idle_timeout {
            o = o.idle_timeout(self.unit.duration("idle_timeout", s)?);
        }
        if let Some(dir) = &self.track_changes {
            o = o.track_changes(dir.clone());
        }
        if let Some(name) = &self.on_host_exit {
            o = o.on_host_exit(parse_name("on_host_exit", name)?);
        }
        Ok(o.keep_alive(self.keep_alive)
            .cancel_on_stall(self.cancel_on_stall))
    }

    /// `task` with the process options applied (cwd, env, pty, limits...).
    pub fn process(&self, mut task: ProcessTask) -> Result<ProcessTask> {
        if let Some((cols, rows)) = self.pty {
            let (cols, rows) = terminal_size(cols, rows)?;
            task = task.pty(cols, rows);
        }
        if let Some(dir) = &self.cwd {
            task = task.cwd(dir.clone());
        }
        if self.env_clear {
            task = task.env_clear();
        }
        for (key, value) in self.env.iter().flatten() {
            task = task.env(key, value);
        }
        if let Some(s) = self.kill_grace {
            task = task.kill_grace(self.unit.duration("kill_grace", s)?);
        }
        if let Some(limits) = self.limits.clone() {
            task = task.limits(limits.into());
        }
        Ok(task.interactive(self.interactive))
    }
}

/// The settings of a model-facing tool box ([`ToolBoxConfig`]); `None`
/// keeps the core's default. Times are seconds.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolBoxOptions {
    /// Most bytes of text in one answer (default 12,000).
    #[serde(default, deserialize_with = "strict")]
    pub text_budget: Option<u64>,
    /// Seconds `task_run` waits in the foreground when the model gives no
    /// timeout (default 60).
    #[serde(default, deserialize_with = "strict")]
    pub run_timeout: Option<f64>,
    /// The longest timeout the model may give `task_run` (default 600 s).
    #[serde(default, deserialize_with = "strict")]
    pub max_run_timeout: Option<f64>,
    /// What a `task_run` foreground timeout does: `detach` (default: the
    /// command moves to the background) or `kill`.
    #[serde(default, deserialize_with = "strict")]
    pub on_timeout: Option<String>,
    /// `task_wait`'s default timeout (default 30 s).
    #[serde(default, deserialize_with = "strict")]
    pub wait_timeout: Option<f64>,
    /// `task_wait`'s largest timeout (default 300 s).
    #[serde(default, deserialize_with = "strict")]
    pub max_wait_timeout: Option<f64>,
    /// Bytes `task_output` reads without `max_bytes` (default 8000).
    #[serde(default, deserialize_with = "strict")]
    pub output_bytes: Option<u64>,
    /// Working directory of `task_run` commands.
    #[serde(default, deserialize_with = "strict")]
    pub cwd: Option<PathBuf>,
    /// Extra environment of `task_run` commands.
    #[serde(default, deserialize_with = "env")]
    pub env: Option<BTreeMap<String, String>>,
    /// Output in the answers as written (default: cleaned of terminal escapes
    /// and `\r` progress bars; `poll` and the log always keep the raw bytes).
    #[serde(default, deserialize_with = "flag")]
    pub raw_text: bool,
    /// `(cols, rows)` of the terminal of a `task_run` with `tty=true`
    /// (default 120 x 40).
    #[serde(default, deserialize_with = "size_pair")]
    pub tty_size: Option<(u64, u64)>,
    /// The unit of the times above (set by the front end, not an option).
    #[serde(skip)]
    pub unit: TimeUnit,
}

impl ToolBoxOptions {
    /// The tool box's config, the rules checked.
    pub fn config(self) -> Result<ToolBoxConfig> {
        let mut c = ToolBoxConfig::default();
        let secs = |name: &str, s: Option<f64>, default| match s {
            Some(s) => self.unit.duration(name, s),
            None => Ok(default),
        };
        c.text_budget = self.text_budget.map_or(c.text_budget, size);
        c.run_timeout = secs("run_timeout", self.run_timeout, c.run_timeout)?;
        c.max_run_timeout = secs("max_run_timeout", self.max_run_timeout, c.max_run_timeout)?;
        if let Some(name) = self.on_timeout {
            c.on_timeout = parse_name("on_timeout", &name)?;
        }
        c.wait_timeout = secs("wait_timeout", self.wait_timeout, c.wait_timeout)?;
        c.max_wait_timeout = secs(
            "max_wait_timeout",
            self.max_wait_timeout,
            c.max_wait_timeout,
        )?;
        c.output_bytes = self.output_bytes.map_or(c.output_bytes, size);
        c.cwd = self.cwd;
        c.env = self.env.into_iter().flatten().collect();
        c.raw_text = self.raw_text;
        if let Some((cols, rows)) = self.tty_size {
            c.tty_size = terminal_size(cols, rows)?;
        }
        Ok(c)
    }
}

/// The options of an ACP agent task ([`AcpTask`]), and of its start when
/// it is run at once (`timeout`, `owner`, `description`, `keep_alive`).
/// Times are seconds.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcpOptions {
    /// The session directory (default: the host's working directory).
    #[serde(default, deserialize_with = "strict")]
    pub cwd: Option<PathBuf>,
    /// Environment variables added to the agent's.
    #[serde(default, deserialize_with = "env")]
    pub env: Option<BTreeMap<String, String>>,
    /// Which files the agent may read and write through the client: `cwd`
    /// (default: inside the session directory), `read_cwd`, `anywhere`, `none`.
    #[serde(default, deserialize_with = "strict")]
    pub files: Option<String>,
    /// Render the agent's thoughts in the output too.
    #[serde(default, deserialize_with = "flag")]
    pub show_thoughts: bool,
    /// Seconds without a follow-up prompt after which the session ends.
    #[serde(default, deserialize_with = "strict")]
    pub idle_timeout: Option<f64>,
    /// Seconds a cancelled turn gets to end before the agent is stopped.
    #[serde(default, deserialize_with = "strict")]
    pub cancel_grace: Option<f64>,
    /// Seconds between SIGTERM and SIGKILL to the agent.
    #[serde(default, deserialize_with = "strict")]
    pub kill_grace: Option<f64>,
    /// Seconds `initialize` and `session/new` may take (default 60); past it
    /// the task ends `failed`, naming the bound.
    #[serde(default, deserialize_with = "strict")]
    pub handshake_timeout: Option<f64>,
    /// Most bytes of one line of the agent's output (default 16 MiB); past it
    /// the task ends `failed`, naming the bound.
    #[serde(default, deserialize_with = "strict")]
    pub max_message_bytes: Option<u64>,
    /// Seconds the task may run (default: no timeout).
    #[serde(default, deserialize_with = "strict")]
    pub timeout: Option<f64>,
    /// The session the task belongs to.
    #[serde(default, deserialize_with = "strict")]
    pub owner: Option<String>,
    /// What the task is, for lists and notifications.
    #[serde(default, deserialize_with = "strict")]
    pub description: Option<String>,
    /// Not stopped by `shutdown` nor `close_owner`.
    #[serde(default, deserialize_with = "flag")]
    pub keep_alive: bool,
    /// The unit of the times above (set by the front end, not an option).
    #[serde(skip)]
    pub unit: TimeUnit,
}

impl AcpOptions {
    /// The agent `argv` with these settings and `permissions`, with an
    /// empty goal: a template each start gives its goal ([`AcpTask::goal`]).
    pub fn template<I, S>(&self, argv: I, permissions: PermissionPolicy) -> Result<AcpTask>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        let files: FileAccess = parse_name("files", self.files.as_deref().unwrap_or("cwd"))?;
        let mut task = AcpTask::new(argv, "")
            .permissions(permissions)
            .files(files)
            .show_thoughts(self.show_thoughts);
        if let Some(dir) = &self.cwd {
            task = task.cwd(dir.clone());
        }
        for (key, value) in self.env.iter().flatten() {
            task = task.env(key, value);
        }
        if let Some(s) = self.idle_timeout {
            task = task.idle_timeout(self.unit.duration("idle_timeout", s)?);
        }
        if let Some(s) = self.cancel_grace {
            task = task.cancel_grace(self.unit.duration("cancel_grace", s)?);
        }
        if let Some(s) = self.kill_grace {
            task = task.kill_grace(self.unit.duration("kill_grace", s)?);
        }
        if let Some(s) = self.handshake_timeout {
            task = task.handshake_timeout(self.unit.duration("handshake_timeout", s)?);
        }
        if let Some(n) = self.max_message_bytes {
            task = task.max_message_bytes(size(n));
        }
        Ok(task)
    }

    /// The start of an agent run at once: in the background, with no task
    /// timeout unless `timeout` is given.
    pub fn spawn_options(&self) -> Result<SpawnOptions> {
        let mut o = match self.timeout {
            Some(s) => SpawnOptions::background().timeout(self.unit.duration("timeout", s)?),
            None => SpawnOptions::background().no_timeout(),
        }
        .keep_alive(self.keep_alive);
        if let Some(owner) = &self.owner {
            o = o.owner(owner.clone());
        }
        if let Some(text) = &self.description {
            o = o.description(text.clone());
        }
        Ok(o)
    }
}
