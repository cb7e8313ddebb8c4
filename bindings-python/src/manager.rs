//! The manager and task handle as Python classes, over the core's
//! [`TaskManager`] running on the module's runtime. Verbs that return at once
//! (`run`, `spawn`, `detach`, `poll`, `send`, `list`, `notifications`, `ack`, `gc`...)
//! are plain methods; verbs that wait (`collect`, `cancel`,
//! `wait_foreground`, `close_owner`, `shutdown`)
//! return a [`Pending`] that can be awaited or blocked on. The `agent_tasks`
//! Python package wraps these into its public `TaskManager` and `Task`.
//! Their arguments become the core's options in `options`; what must not
//! outlive the interpreter is tracked in `exit`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use agent_tasks::{
    CancelReason, CollectOutcome, ListFilter, ManagerConfig, Message, TaskHandle, TaskManager,
    WaitOutcome,
};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyMapping, PyString};

use crate::context::python_task;
use crate::convert::{count, duration, shown, size, timeout_setting, wait_limit, with_bytes};
use crate::errors::{core_err, invalid_argument};
use crate::events::NativeEvents;
use crate::exit::{track_manager, track_process};
use crate::options::{process_task, spawn_options, status, Monitoring};
use crate::pending::{spawn, Failure, Pending};
use crate::runtime::runtime;
use crate::types::{info, outcome, to_dict, Page, Wire};

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

/// A `max_running_of_kind` argument: a mapping of kind names to caps
/// (non-negative ints); anything else is an `InvalidArgument` naming it.
fn kind_caps(caps: &Bound<'_, PyAny>) -> PyResult<Vec<(String, usize)>> {
    const NAME: &str = "max_running_of_kind";
    let mapping = caps.cast::<PyMapping>().map_err(|_| {
        invalid_argument(
            NAME,
            format!(
                "expected a mapping of kind names to non-negative ints, got {}",
                shown(caps)
            ),
        )
    })?;
    let mut out = Vec::new();
    for item in mapping.items()?.iter() {
        let (kind, max): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let kind = kind.cast::<PyString>().map_err(|_| {
            invalid_argument(
                NAME,
                format!("a kind name must be a str, got {}", shown(&kind)),
            )
        })?;
        out.push((kind.to_str()?.to_string(), size(NAME, &max)?));
    }
    Ok(out)
}

#[pymethods]
impl NativeManager {
    /// Makes a manager on the module's runtime. `None` keeps a default;
    /// timeouts are seconds, `math.inf` for none.
    #[new]
    #[pyo3(signature = (
        root=None, *, memory_limit=None, disk_limit=None, tail_window=None,
        foreground_timeout=None, background_timeout=None, on_timeout=None,
        max_background=None, max_background_per_owner=None, max_running_of_kind=None,
        stop_grace=None,
        default_owner=None, notify_host_cancels=false, queue_over_capacity=false,
        limits=None, unenforced_limits=None,
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
        max_running_of_kind: Option<&Bound<'_, PyAny>>,
        stop_grace: Option<f64>,
        default_owner: Option<String>,
        notify_host_cancels: bool,
        queue_over_capacity: bool,
        limits: Option<&Bound<'_, PyAny>>,
        unenforced_limits: Option<&str>,
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
        if let Some(policy) = crate::options::on_timeout(on_timeout)? {
            config = config.on_timeout(policy);
        }
        if let Some(v) = max_background {
            config = config.max_background(size("max_background", v)?);
        }
        if let Some(v) = max_background_per_owner {
            config = config.max_background_per_owner(size("max_background_per_owner", v)?);
        }
        if let Some(caps) = max_running_of_kind {
            for (kind, max) in kind_caps(caps)? {
                config = config.max_running_of_kind(kind, max);
            }
        }
        if let Some(grace) = stop_grace {
            config = config.stop_grace(duration("stop_grace", grace)?);
        }
        if let Some(owner) = default_owner {
            config = config.default_owner(owner);
        }
        if let Some(v) = limits {
            config = config.default_limits(crate::options::limits(v)?);
        }
        if let Some(policy) = crate::options::unenforced_limits(unenforced_limits)? {
            config = config.unenforced_limits(policy);
        }
        config = config
            .notify_host_cancels(notify_host_cancels)
            .queue_over_capacity(queue_over_capacity);
        let handle = runtime()?.handle().clone();
        let manager = Arc::new(TaskManager::with_runtime(config, handle).map_err(core_err)?);
        track_manager(&manager);
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
        cancel_on_stall=false, track_changes=None, pty=None, limits=None,
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
        pty: Option<(u64, u64)>,
        limits: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<NativeTask> {
        let mut task = process_task(command)?;
        if let Some((cols, rows)) = pty {
            let (cols, rows) = agent_tasks::terminal_size(cols, rows).map_err(core_err)?;
            task = task.pty(cols, rows);
        }
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
        if let Some(v) = limits {
            task = task.limits(crate::options::limits(v)?);
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
    fn detach(&self, id: &str) -> PyResult<Wire<agent_tasks::TaskInfo>> {
        self.manager.detach(id).map(info).map_err(core_err)
    }

    /// Non-blocking: info plus up to `max_bytes` of output from `cursor`.
    #[pyo3(signature = (id, cursor, max_bytes))]
    fn poll(
        &self,
        id: &str,
        cursor: &Bound<'_, PyAny>,
        max_bytes: &Bound<'_, PyAny>,
    ) -> PyResult<Page> {
        let cursor = count("cursor", cursor)?;
        let max_bytes = size("max_bytes", max_bytes)?;
        self.manager
            .poll(id, cursor, max_bytes)
            .map(Page)
            .map_err(core_err)
    }

    /// The first `head_bytes` and last `tail_bytes` of the output.
    fn preview<'py>(
        &self,
        py: Python<'py>,
        id: &str,
        head_bytes: &Bound<'_, PyAny>,
        tail_bytes: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let head = size("head_bytes", head_bytes)?;
        let tail = size("tail_bytes", tail_bytes)?;
        crate::types::preview(py, self.manager.preview(id, head, tail).map_err(core_err)?)
    }

    /// The task's info now.
    fn info(&self, id: &str) -> PyResult<Wire<agent_tasks::TaskInfo>> {
        self.manager.info(id).map(info).map_err(core_err)
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
        PyList::new(py, self.manager.list(&filter).into_iter().map(info))
    }

    /// Sends a steering message (`str` or `bytes`), then, with `eof`, the
    /// end of input (the core's rule: one of them at least).
    #[pyo3(signature = (id, message=None, *, eof=false))]
    fn send(&self, id: &str, message: Option<&Bound<'_, PyAny>>, eof: bool) -> PyResult<()> {
        let bytes = message
            .map(|m| with_bytes("message", m, <[u8]>::to_vec))
            .transpose()?;
        for message in Message::input(bytes, eof).map_err(core_err)? {
            self.manager.send(id, message).map_err(core_err)?;
        }
        Ok(())
    }

    /// Types keys by name (`ctrl+c`, `enter`, `up`…; parsed by the core)
    /// into a task's input, mostly a PTY task's terminal.
    fn send_keys(&self, id: &str, keys: Vec<String>) -> PyResult<()> {
        let keys = agent_tasks::Key::parse_all(&keys).map_err(core_err)?;
        self.manager.send_keys(id, &keys).map_err(core_err)
    }

    /// Resizes a PTY task's terminal to `cols` x `rows`.
    fn resize(&self, id: String, cols: u64, rows: u64) -> PyResult<Pending> {
        let (cols, rows) = agent_tasks::terminal_size(cols, rows).map_err(core_err)?;
        let manager = TaskManager::clone(&self.manager);
        spawn(async move {
            manager.resize(&id, cols, rows).await?;
            Ok::<_, Failure>(())
        })
    }

    /// Waits until the task ends and gives `Finished`; `TimeoutError` when
    /// `timeout` seconds (`None`: no limit; `0`: answer at once) pass first.
    #[pyo3(signature = (id, timeout=None))]
    fn collect(&self, id: String, timeout: Option<f64>) -> PyResult<Pending> {
        let limit = wait_limit("timeout", timeout)?;
        let manager = TaskManager::clone(&self.manager);
        spawn(async move {
            match manager.collect(&id, limit).await? {
                CollectOutcome::Finished(result) => {
                    Ok(outcome(agent_tasks::ForegroundOutcome::Finished(result)))
                }
                CollectOutcome::StillRunning(info) => Err(Failure::TimedOut(format!(
                    "task {} is still {} after {} s",
                    info.id,
                    info.status,
                    limit.unwrap_or_default().as_secs_f64()
                ))),
            }
        })
    }

    /// Waits until there is output past `cursor` or the task's output is
    /// finished, and gives the page (as `poll`); `TimeoutError` when
    /// `timeout` seconds (`None`: no limit) pass first. Woken by the task's
    /// writes and its end (the core's `poll_wait`).
    #[pyo3(signature = (id, cursor, max_bytes, timeout=None))]
    fn poll_wait(
        &self,
        id: String,
        cursor: &Bound<'_, PyAny>,
        max_bytes: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Pending> {
        let cursor = count("cursor", cursor)?;
        let max_bytes = size("max_bytes", max_bytes)?;
        let limit = wait_limit("timeout", timeout)?;
        let manager = TaskManager::clone(&self.manager);
        spawn(async move {
            let page = manager.poll_wait(&id, cursor, max_bytes, limit).await?;
            // The core says when the time ran out (one rule), never an
            // empty page taken for it.
            if page.timed_out {
                return Err(Failure::TimedOut(format!(
                    "task {id} wrote nothing past byte {cursor} within {} s",
                    limit.unwrap_or_default().as_secs_f64()
                )));
            }
            Ok(Page(page))
        })
    }

    /// Waits until `until` holds (a regex over output lines from `cursor`,
    /// `port:N`, or `end`; parsed by the core) or the task ends, and gives
    /// the outcome's wire form; `TimeoutError` when `timeout` seconds
    /// (`None`: no limit) pass first.
    #[pyo3(signature = (id, until, timeout=None, cursor=None))]
    fn wait_for(
        &self,
        id: String,
        until: &str,
        timeout: Option<f64>,
        cursor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Pending> {
        let cursor = cursor.map(|c| count("cursor", c)).transpose()?.unwrap_or(0);
        let until = agent_tasks::WaitUntil::parse(until, cursor).map_err(core_err)?;
        let limit = wait_limit("timeout", timeout)?;
        let manager = TaskManager::clone(&self.manager);
        spawn(async move {
            match manager.wait_for(&id, until, limit).await? {
                WaitOutcome::TimedOut => Err(Failure::TimedOut(format!(
                    "task {id}: the condition did not hold within {} s",
                    limit.unwrap_or_default().as_secs_f64()
                ))),
                outcome => Ok(Wire("", outcome)),
            }
        })
    }

    /// Stops every process of a process task (SIGSTOP); gives its info.
    fn pause(&self, id: String) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        spawn(async move { Ok::<_, Failure>(info(manager.pause(&id).await?)) })
    }

    /// Continues a paused task (SIGCONT); gives its info.
    fn resume(&self, id: String) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        spawn(async move { Ok::<_, Failure>(info(manager.resume(&id).await?)) })
    }

    /// Stops the task, waits until it has ended, gives its final info.
    #[pyo3(signature = (id, reason=None))]
    fn cancel(&self, id: String, reason: Option<String>) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        let reason = CancelReason::user(reason.unwrap_or_default());
        spawn(async move { Ok::<_, Failure>(info(manager.cancel(&id, reason).await?)) })
    }

    /// Cancels every task but keep-alive ones and waits until they ended.
    #[pyo3(signature = (reason=None))]
    fn shutdown(&self, reason: Option<String>) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        let reason = reason.unwrap_or_else(|| agent_tasks::DEFAULT_SHUTDOWN_REASON.to_string());
        spawn(async move {
            manager.shutdown(reason).await;
            Ok::<_, Failure>(())
        })
    }

    /// `NativeTask.wait_foreground` by id.
    fn wait_foreground(&self, id: String) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        spawn(async move { Ok::<_, Failure>(outcome(manager.wait_foreground(&id).await?)) })
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
            Ok::<_, Failure>(infos.into_iter().map(info).collect::<Vec<_>>())
        })
    }

    /// A live subscription to the manager's events from now on.
    fn subscribe(&self) -> NativeEvents {
        NativeEvents::new(self.manager.subscribe())
    }

    /// The owner's open background work: `{"text", "items"}` (the core's
    /// roster, the text within `budget` bytes).
    #[pyo3(signature = (owner, budget=None))]
    fn roster<'py>(
        &self,
        py: Python<'py>,
        owner: &str,
        budget: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // No budget: the core's default (one rule for every front end).
        let budget = match budget {
            Some(b) if !b.is_none() => crate::convert::size("budget", b)?,
            _ => agent_tasks::DEFAULT_ROSTER_BUDGET,
        };
        to_dict(py, &self.manager.roster(owner, budget))
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
                .map(|n| Wire("Notification", n)),
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
    fn kill_orphan(&self, id: &str) -> PyResult<Wire<agent_tasks::TaskInfo>> {
        self.manager.kill_orphan(id).map(info).map_err(core_err)
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
    fn info(&self) -> Wire<agent_tasks::TaskInfo> {
        info(self.handle.info())
    }

    /// Waits until the task ends (`finished`) or is detached (`detached`).
    fn wait_foreground(&self) -> PyResult<Pending> {
        let handle = self.handle.clone();
        spawn(async move { Ok::<_, Failure>(outcome(handle.wait_foreground().await)) })
    }

    fn __repr__(&self) -> String {
        format!("NativeTask(id={:?})", self.handle.id().as_str())
    }
}
