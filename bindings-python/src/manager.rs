//! The manager and task handle as Python classes, over the core's
//! [`TaskManager`] running on the module's runtime. Verbs that return at once
//! (`run`, `spawn`, `detach`, `poll`, `send`, `list`, `notifications`, `ack`, `gc`...)
//! are plain methods; verbs that wait (`collect`, `cancel`,
//! `wait_foreground`, `close_owner`, `shutdown`)
//! return a [`Pending`] that can be awaited or blocked on. The `agent_tasks`
//! Python package wraps these into its public `TaskManager` and `Task`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use agent_tasks::{
    CancelReason, ListFilter, ManagerConfig, OnTimeout, ProcessTask, SpawnOptions, TaskHandle,
    TaskManager, TaskStatus,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

use crate::context::python_task;
use crate::convert::{count, duration, size, timeout_setting, wait_limit, with_bytes};
use crate::errors::{core_err, invalid_argument};
use crate::events::NativeEvents;
use crate::notifications::Notification;
use crate::pending::{quiesce, runtime, spawn, Pending, Ready};
use crate::types::{OutcomeInner, PollResult, Preview, TaskInfo};

/// Every manager made from Python, so `_at_exit` can shut the live ones down.
static MANAGERS: Mutex<Vec<Weak<TaskManager>>> = Mutex::new(Vec::new());
/// Process tasks that may still run, so `_at_exit` can wait until they are
/// stopped (no process outlives the interpreter unless it is keep-alive).
static PROCESSES: Mutex<Tracked> = Mutex::new(Tracked {
    handles: Vec::new(),
    prune_at: 64,
});

struct Tracked {
    handles: Vec<TaskHandle>,
    prune_at: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn track_process(handle: &TaskHandle) {
    let mut tracked = lock(&PROCESSES);
    tracked.handles.push(handle.clone());
    if tracked.handles.len() >= tracked.prune_at {
        tracked.handles.retain(|h| !h.info().status.is_terminal());
        tracked.prune_at = (tracked.handles.len() * 2).max(64);
    }
}

/// An `on_timeout` argument: the core's names (`detach`, `kill`).
pub(crate) fn on_timeout(value: Option<&str>) -> PyResult<Option<OnTimeout>> {
    value
        .map(|v| agent_tasks::parse_name("on_timeout", v))
        .transpose()
        .map_err(core_err)
}

/// A `status` argument: the core's status names.
fn status(name: &str) -> PyResult<TaskStatus> {
    agent_tasks::parse_name("status", name).map_err(core_err)
}

/// The monitoring and change-tracking options of `run` and `spawn`; the
/// core checks them (a regex that does not compile, a heartbeat under 60 s).
struct Monitoring {
    watch: Option<Vec<String>>,
    watch_interval: Option<f64>,
    watch_max: Option<usize>,
    heartbeat: Option<f64>,
    idle_timeout: Option<f64>,
    cancel_on_stall: bool,
    track_changes: Option<PathBuf>,
}

impl Monitoring {
    fn apply(self, mut options: SpawnOptions) -> PyResult<SpawnOptions> {
        if let Some(patterns) = self.watch {
            options = options.watch(patterns);
        }
        if let Some(s) = self.watch_interval {
            options = options.watch_interval(duration("watch_interval", s)?);
        }
        if let Some(max) = self.watch_max {
            options = options.watch_max(max);
        }
        if let Some(s) = self.heartbeat {
            options = options.heartbeat(duration("heartbeat", s)?);
        }
        if let Some(s) = self.idle_timeout {
            options = options.idle_timeout(duration("idle_timeout", s)?);
        }
        if let Some(dir) = self.track_changes {
            options = options.track_changes(dir);
        }
        Ok(options.cancel_on_stall(self.cancel_on_stall))
    }
}

/// The spawn options every kind of task shares.
#[allow(clippy::too_many_arguments)]
fn spawn_options(
    background: bool,
    timeout: Option<f64>,
    background_timeout: Option<f64>,
    on_timeout_policy: Option<&str>,
    description: Option<String>,
    owner: Option<String>,
    keep_alive: bool,
    monitoring: Monitoring,
) -> PyResult<SpawnOptions> {
    let mut options = if background {
        SpawnOptions::background()
    } else {
        SpawnOptions::foreground()
    };
    if background && timeout.is_some() && background_timeout.is_some() {
        return Err(invalid_argument(
            "background_timeout",
            "give `timeout` or `background_timeout` for a task started in the background, not both",
        ));
    }
    if let Some(setting) = timeout_setting("background_timeout", background_timeout)? {
        options = options.background_timeout(setting);
    }
    match timeout_setting("timeout", timeout)? {
        None => {}
        Some(None) => options = options.no_timeout(),
        Some(Some(limit)) => options = options.timeout(limit),
    }
    if let Some(policy) = on_timeout(on_timeout_policy)? {
        options = options.on_timeout(policy);
    }
    if let Some(text) = description {
        options = options.description(text);
    }
    if let Some(owner) = owner {
        options = options.owner(owner);
    }
    monitoring.apply(options.keep_alive(keep_alive))
}

fn os_string(item: &Bound<'_, PyAny>) -> PyResult<OsString> {
    if let Ok(s) = item.cast::<PyString>() {
        return Ok(OsString::from(s.to_str()?));
    }
    if let Ok(b) = item.cast::<PyBytes>() {
        return Ok(OsString::from_vec(b.as_bytes().to_vec()));
    }
    let path: PathBuf = item
        .extract()
        .map_err(|_| invalid_argument("command", "an argv item must be str, bytes or a path"))?;
    Ok(path.into_os_string())
}

/// A `str` command runs with `sh -c`; a sequence is an argv. The core
/// checks both (not empty).
fn process_task(command: &Bound<'_, PyAny>) -> PyResult<ProcessTask> {
    if let Ok(line) = command.cast::<PyString>() {
        return agent_tasks::shell_command("command", line.to_str()?).map_err(core_err);
    }
    let items = command.try_iter().map_err(|_| {
        invalid_argument(
            "command",
            "must be a shell string or a sequence of arguments",
        )
    })?;
    let argv = items
        .map(|item| item.and_then(|i| os_string(&i)))
        .collect::<PyResult<Vec<_>>>()?;
    agent_tasks::argv_command("command", argv).map_err(core_err)
}

/// The core manager, as the `agent_tasks` package's engine.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct NativeManager {
    manager: Arc<TaskManager>,
}

impl NativeManager {
    /// The core manager.
    pub(crate) fn core(&self) -> &TaskManager {
        &self.manager
    }
}

#[pymethods]
impl NativeManager {
    /// Makes a manager on the module's runtime. `None` keeps a default;
    /// timeouts are seconds, `math.inf` for none.
    #[new]
    #[pyo3(signature = (
        root=None, *, memory_limit=None, disk_limit=None, tail_window=None,
        foreground_timeout=None, background_timeout=None, on_timeout=None,
        max_background=None, max_background_per_owner=None, stop_grace=None,
        default_owner=None, notify_host_cancels=false, queue_over_capacity=false,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        root: Option<PathBuf>,
        memory_limit: Option<&Bound<'_, PyAny>>,
        disk_limit: Option<&Bound<'_, PyAny>>,
        tail_window: Option<&Bound<'_, PyAny>>,
        foreground_timeout: Option<f64>,
        background_timeout: Option<f64>,
        on_timeout: Option<&str>,
        max_background: Option<&Bound<'_, PyAny>>,
        max_background_per_owner: Option<&Bound<'_, PyAny>>,
        stop_grace: Option<f64>,
        default_owner: Option<String>,
        notify_host_cancels: bool,
        queue_over_capacity: bool,
    ) -> PyResult<Self> {
        let mut config = ManagerConfig::default();
        if let Some(root) = root {
            config = config.root(root);
        }
        if let Some(v) = memory_limit {
            config = config.memory_limit(size("memory_limit", v)?);
        }
        if let Some(v) = disk_limit {
            config = config.disk_limit(count("disk_limit", v)?);
        }
        if let Some(v) = tail_window {
            config = config.tail_window(size("tail_window", v)?);
        }
        if let Some(t) = timeout_setting("foreground_timeout", foreground_timeout)? {
            config = config.foreground_timeout(t);
        }
        if let Some(t) = timeout_setting("background_timeout", background_timeout)? {
            config = config.background_timeout(t);
        }
        if let Some(policy) = self::on_timeout(on_timeout)? {
            config = config.on_timeout(policy);
        }
        if let Some(v) = max_background {
            config = config.max_background(size("max_background", v)?);
        }
        if let Some(v) = max_background_per_owner {
            config = config.max_background_per_owner(size("max_background_per_owner", v)?);
        }
        if let Some(grace) = stop_grace {
            config = config.stop_grace(duration("stop_grace", grace)?);
        }
        if let Some(owner) = default_owner {
            config = config.default_owner(owner);
        }
        config = config
            .notify_host_cancels(notify_host_cancels)
            .queue_over_capacity(queue_over_capacity);
        let handle = runtime()?.handle().clone();
        let manager = Arc::new(TaskManager::with_runtime(config, handle).map_err(core_err)?);
        let mut managers = lock(&MANAGERS);
        managers.retain(|m| m.strong_count() > 0);
        managers.push(Arc::downgrade(&manager));
        Ok(NativeManager { manager })
    }

    /// The root folder; task folders are `<root>/tasks/<id>`.
    #[getter]
    fn root(&self) -> PathBuf {
        self.manager.root().to_path_buf()
    }

    /// Starts a command: a `str` runs with `sh -c`, a sequence is an argv.
    #[pyo3(signature = (
        command, *, cwd=None, env=None, env_clear=false, stdin=None, interactive=false,
        background=false, timeout=None, background_timeout=None, on_timeout=None,
        description=None, owner=None, keep_alive=false, kill_grace=None, watch=None,
        watch_interval=None, watch_max=None, heartbeat=None, idle_timeout=None,
        cancel_on_stall=false, track_changes=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        command: &Bound<'_, PyAny>,
        cwd: Option<PathBuf>,
        env: Option<HashMap<OsString, OsString>>,
        env_clear: bool,
        stdin: Option<&Bound<'_, PyAny>>,
        interactive: bool,
        background: bool,
        timeout: Option<f64>,
        background_timeout: Option<f64>,
        on_timeout: Option<&str>,
        description: Option<String>,
        owner: Option<String>,
        keep_alive: bool,
        kill_grace: Option<f64>,
        watch: Option<Vec<String>>,
        watch_interval: Option<f64>,
        watch_max: Option<&Bound<'_, PyAny>>,
        heartbeat: Option<f64>,
        idle_timeout: Option<f64>,
        cancel_on_stall: bool,
        track_changes: Option<PathBuf>,
    ) -> PyResult<NativeTask> {
        let mut task = process_task(command)?;
        if let Some(dir) = cwd {
            task = task.cwd(dir);
        }
        if env_clear {
            task = task.env_clear();
        }
        for (key, value) in env.into_iter().flatten() {
            task = task.env(key, value);
        }
        if let Some(data) = stdin {
            task = task.stdin_bytes(with_bytes("stdin", data, <[u8]>::to_vec)?);
        }
        if let Some(grace) = kill_grace {
            task = task.kill_grace(duration("kill_grace", grace)?);
        }
        let options = spawn_options(
            background,
            timeout,
            background_timeout,
            on_timeout,
            description,
            owner,
            keep_alive,
            Monitoring {
                watch,
                watch_interval,
                watch_max: watch_max.map(|v| size("watch_max", v)).transpose()?,
                heartbeat,
                idle_timeout,
                cancel_on_stall,
                track_changes,
            },
        )?;
        let handle = self
            .manager
            .spawn(task.interactive(interactive), options)
            .map_err(core_err)?;
        track_process(&handle);
        Ok(NativeTask { handle })
    }

    /// Starts a Python function through `starter` (see `agent_tasks._manager`).
    #[pyo3(signature = (
        starter, description, *, kind="fn", background=false, timeout=None,
        background_timeout=None, on_timeout=None, owner=None, keep_alive=false, watch=None,
        watch_interval=None, watch_max=None, heartbeat=None, idle_timeout=None,
        cancel_on_stall=false, track_changes=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &self,
        starter: Py<PyAny>,
        description: String,
        kind: &str,
        background: bool,
        timeout: Option<f64>,
        background_timeout: Option<f64>,
        on_timeout: Option<&str>,
        owner: Option<String>,
        keep_alive: bool,
        watch: Option<Vec<String>>,
        watch_interval: Option<f64>,
        watch_max: Option<&Bound<'_, PyAny>>,
        heartbeat: Option<f64>,
        idle_timeout: Option<f64>,
        cancel_on_stall: bool,
        track_changes: Option<PathBuf>,
    ) -> PyResult<NativeTask> {
        let options = spawn_options(
            background,
            timeout,
            background_timeout,
            on_timeout,
            None,
            owner,
            keep_alive,
            Monitoring {
                watch,
                watch_interval,
                watch_max: watch_max.map(|v| size("watch_max", v)).transpose()?,
                heartbeat,
                idle_timeout,
                cancel_on_stall,
                track_changes,
            },
        )?;
        let task = python_task(starter, description, kind.to_string());
        let handle = self.manager.spawn_boxed(task, options).map_err(core_err)?;
        Ok(NativeTask { handle })
    }

    /// Moves a running foreground task to the background (no byte lost).
    fn detach(&self, id: &str) -> PyResult<TaskInfo> {
        self.manager.detach(id).map(TaskInfo).map_err(core_err)
    }

    /// Non-blocking: info plus up to `max_bytes` of output from `cursor`.
    #[pyo3(signature = (id, cursor, max_bytes))]
    fn poll(
        &self,
        id: &str,
        cursor: &Bound<'_, PyAny>,
        max_bytes: &Bound<'_, PyAny>,
    ) -> PyResult<PollResult> {
        let cursor = count("cursor", cursor)?;
        let max_bytes = size("max_bytes", max_bytes)?;
        self.manager
            .poll(id, cursor, max_bytes)
            .map(PollResult)
            .map_err(core_err)
    }

    /// The first `head_bytes` and last `tail_bytes` of the output.
    fn preview(
        &self,
        id: &str,
        head_bytes: &Bound<'_, PyAny>,
        tail_bytes: &Bound<'_, PyAny>,
    ) -> PyResult<Preview> {
        let head = size("head_bytes", head_bytes)?;
        let tail = size("tail_bytes", tail_bytes)?;
        self.manager
            .preview(id, head, tail)
            .map(Preview)
            .map_err(core_err)
    }

    /// The task's info now.
    fn info(&self, id: &str) -> PyResult<TaskInfo> {
        self.manager.info(id).map(TaskInfo).map_err(core_err)
    }

    /// The ids of all tasks, oldest first.
    fn ids(&self) -> Vec<String> {
        self.manager
            .ids()
            .into_iter()
            .map(|id| id.as_str().to_string())
            .collect()
    }

    /// Tasks matching the filter, oldest first.
    #[pyo3(signature = (*, owner=None, statuses=None, active_only=false))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        owner: Option<String>,
        statuses: Option<Vec<String>>,
        active_only: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let statuses = statuses
            .map(|names| {
                names
                    .iter()
                    .map(|n| status(n))
                    .collect::<PyResult<Vec<_>>>()
            })
            .transpose()?;
        let filter = ListFilter {
            owner,
            statuses,
            active_only,
        };
        PyList::new(py, self.manager.list(&filter).into_iter().map(TaskInfo))
    }

    /// Sends a steering message (`str` or `bytes`).
    fn send(&self, id: &str, message: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = with_bytes("message", message, <[u8]>::to_vec)?;
        self.manager.send(id, bytes).map_err(core_err)
    }

    /// Waits until the task ends or `timeout` seconds pass (`None`: no limit).
    #[pyo3(signature = (id, timeout=None))]
    fn collect(&self, id: String, timeout: Option<f64>) -> PyResult<Pending> {
        let limit = wait_limit("timeout", timeout)?;
        let manager = TaskManager::clone(&self.manager);
        spawn(async move {
            let outcome = manager.collect(&id, limit).await?;
            Ok(Ready::Outcome(OutcomeInner::Collect(outcome)))
        })
    }

    /// Waits until `until` holds (a regex over output lines from `cursor`,
    /// `port:N`, or `end`; parsed by the core), the task ends, or `timeout`
    /// seconds pass (`None`: no limit). Gives the outcome's wire form.
    #[pyo3(signature = (id, until, timeout=None, cursor=0))]
    fn wait_for(
        &self,
        id: String,
        until: &str,
        timeout: Option<f64>,
        cursor: u64,
    ) -> PyResult<Pending> {
        let until = agent_tasks::WaitUntil::parse(until, cursor).map_err(core_err)?;
        let limit = wait_limit("timeout", timeout)?;
        let manager = TaskManager::clone(&self.manager);
        spawn(async move { Ok(Ready::Wait(manager.wait_for(&id, until, limit).await?)) })
    }

    /// Stops every process of a process task (SIGSTOP); gives its info.
    fn pause(&self, id: String) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        spawn(async move { Ok(Ready::Info(manager.pause(&id).await?)) })
    }

    /// Continues a paused task (SIGCONT); gives its info.
    fn resume(&self, id: String) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        spawn(async move { Ok(Ready::Info(manager.resume(&id).await?)) })
    }

    /// Stops the task, waits until it has ended, gives its final info.
    #[pyo3(signature = (id, reason=None))]
    fn cancel(&self, id: String, reason: Option<String>) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        let reason = CancelReason::user(reason.unwrap_or_default());
        spawn(async move { Ok(Ready::Info(manager.cancel(&id, reason).await?)) })
    }

    /// Cancels every task but keep-alive ones and waits until they ended.
    #[pyo3(signature = (reason=None))]
    fn shutdown(&self, reason: Option<String>) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        let reason = reason.unwrap_or_else(|| "the task manager was shut down".to_string());
        spawn(async move {
            manager.shutdown(reason).await;
            Ok(Ready::Unit)
        })
    }

    /// `NativeTask.wait_foreground` by id.
    fn wait_foreground(&self, id: String) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        spawn(async move {
            let outcome = manager.wait_foreground(&id).await?;
            Ok(Ready::Outcome(OutcomeInner::Foreground(outcome)))
        })
    }

    /// Cancels the running tasks of `owner` but keep-alive ones; waits until
    /// they ended; gives their infos.
    #[pyo3(signature = (owner, reason=None))]
    fn close_owner(&self, owner: String, reason: Option<String>) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        spawn(async move {
            let infos = manager
                .close_owner(&owner, reason.unwrap_or_default())
                .await;
            Ok(Ready::Infos(infos))
        })
    }

    /// A live subscription to the manager's events from now on.
    fn subscribe(&self) -> NativeEvents {
        NativeEvents::new(self.manager.subscribe())
    }

    /// The owner's open background work: `{"text", "items"}` (the core's
    /// roster, the text within `budget` bytes).
    #[pyo3(signature = (owner, budget))]
    fn roster<'py>(
        &self,
        py: Python<'py>,
        owner: &str,
        budget: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let budget = crate::convert::size("budget", budget)?;
        crate::convert::to_dict(py, &self.manager.roster(owner, budget))
    }

    /// Pending notifications, oldest first, of one owner or of all.
    #[pyo3(signature = (owner=None))]
    fn notifications<'py>(
        &self,
        py: Python<'py>,
        owner: Option<&str>,
    ) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            self.manager
                .notifications(owner)
                .into_iter()
                .map(Notification),
        )
    }

    /// Acknowledges notifications by id; gives how many were removed.
    fn ack(&self, ids: Vec<String>) -> PyResult<usize> {
        self.manager.ack(&ids).map_err(core_err)
    }

    /// Task folders and notifications found unreadable at open (skipped).
    fn load_problems(&self) -> Vec<String> {
        self.manager.load_problems().to_vec()
    }

    /// Kills the still-running process of a task found orphaned at open.
    fn kill_orphan(&self, id: &str) -> PyResult<TaskInfo> {
        self.manager.kill_orphan(id).map(TaskInfo).map_err(core_err)
    }

    /// Removes ended tasks older than `max_age` seconds and beyond the
    /// newest `max_count`; gives the removed ids.
    #[pyo3(signature = (max_age=None, max_count=None))]
    fn gc(
        &self,
        max_age: Option<f64>,
        max_count: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<String>> {
        let max_age = wait_limit("max_age", max_age)?;
        let max_count = max_count.map(|v| size("max_count", v)).transpose()?;
        let report = self.manager.gc(max_age, max_count).map_err(core_err)?;
        Ok(report.removed.into_iter().map(String::from).collect())
    }

    fn __repr__(&self) -> String {
        format!("NativeManager(root={:?})", self.manager.root())
    }
}

/// A spawned task, as the `agent_tasks.Task` handle's engine.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct NativeTask {
    handle: TaskHandle,
}

impl NativeTask {
    /// The handle of a task that runs processes, started elsewhere in the
    /// binding (an ACP agent): tracked so `_at_exit` waits for it.
    pub(crate) fn of_process(handle: TaskHandle) -> Self {
        track_process(&handle);
        NativeTask { handle }
    }
}

#[pymethods]
impl NativeTask {
    /// The task's id.
    #[getter]
    fn id(&self) -> &str {
        self.handle.id().as_str()
    }

    /// The task's info now.
    fn info(&self) -> TaskInfo {
        TaskInfo(self.handle.info())
    }

    /// Waits until the task ends (`finished`) or is detached (`detached`).
    fn wait_foreground(&self) -> PyResult<Pending> {
        let handle = self.handle.clone();
        spawn(async move {
            Ok(Ready::Outcome(OutcomeInner::Foreground(
                handle.wait_foreground().await,
            )))
        })
    }

    fn __repr__(&self) -> String {
        format!("NativeTask(id={:?})", self.handle.id().as_str())
    }
}

/// Called when the interpreter exits: stops calls into Python from runtime
/// threads and blocking waits (see `pending::quiesce`), shuts down every live
/// manager (tasks are cancelled, keep-alive ones left) and waits, GIL
/// released, up to `timeout` seconds until no process task is left running,
/// so none outlives the interpreter.
#[pyfunction]
#[pyo3(signature = (timeout=10.0))]
pub fn _at_exit(py: Python<'_>, timeout: f64) -> PyResult<()> {
    let limit = duration("timeout", timeout)?;
    let deadline = Instant::now() + limit;
    quiesce(py, deadline);
    let managers: Vec<Arc<TaskManager>> =
        lock(&MANAGERS).iter().filter_map(Weak::upgrade).collect();
    let rt = runtime()?;
    let mut live: Vec<(TaskManager, String)> = Vec::new();
    for manager in managers {
        let manager = TaskManager::clone(&manager);
        // Process tasks started by a `ToolBox` are not in PROCESSES.
        live.extend(
            manager
                .list(&ListFilter::default().active())
                .into_iter()
                .filter(|i| i.kind == "process" && !i.keep_alive)
                .map(|i| (manager.clone(), i.id.to_string())),
        );
        rt.spawn(async move { manager.shutdown("the Python interpreter is exiting").await });
    }
    let processes: Vec<TaskHandle> = std::mem::take(&mut lock(&PROCESSES).handles);
    py.detach(|| {
        for (manager, id) in live {
            while Instant::now() < deadline
                && manager.info(&id).is_ok_and(|i| !i.status.is_terminal())
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        for handle in processes {
            loop {
                let info = handle.info();
                if info.status.is_terminal() || info.keep_alive || Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    Ok(())
}
