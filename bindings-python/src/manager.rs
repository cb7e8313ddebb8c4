//! The manager and task handle as Python classes, over the core's
//! [`TaskManager`] running on the module's runtime. Verbs that return at once
//! (`run`, `spawn`, `detach`, `poll`, `send`, `list`, `notifications`, `ack`, `gc`...)
//! are plain methods; verbs that wait (`collect`, `cancel`,
//! `wait_foreground`, `close_owner`, `shutdown`)
//! return a [`Pending`] that can be awaited or blocked on. The `agent_tasks`
//! Python package wraps these into its public `TaskManager` and `Task`.
//! Their arguments become the core's options in `options`; what must not
//! outlive the interpreter is tracked in `exit`.

use std::path::PathBuf;
use std::sync::Arc;

use agent_tasks::{
    CancelReason, CollectOutcome, ListFilter, ManagerOptions, Message, TaskHandle, TaskManager,
    TaskOptions, WaitOutcome,
};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::context::python_task;
use crate::convert::{count, flag, limit, opt_text, size, text, with_bytes};
use crate::errors::core_err;
use crate::events::NativeEvents;
use crate::exit::{track_manager, track_process};
use crate::options::{parse, process_task, status};
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

#[pymethods]
impl NativeManager {
    /// Makes a manager on the module's runtime from its options (a dict
    /// of the core's [`agent_tasks::ManagerOptions`]).
    #[new]
    fn new(options: &Bound<'_, PyAny>) -> PyResult<Self> {
        // Tasks that outlive their host run under this interpreter running
        // `agent_tasks._supervisor`, unless the options name a supervisor.
        let python: PathBuf = options
            .py()
            .import("sys")?
            .getattr("executable")?
            .extract()?;
        let config = parse::<ManagerOptions>("TaskManager", options)?
            .config()
            .map_err(core_err)?
            .supervisor_command(python, ["-m", "agent_tasks._supervisor"], true);
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

    /// Starts a command (a `str` runs with `sh -c`, a sequence is an argv)
    /// with `stdin` written at start and `options` (a dict of the core's
    /// [`TaskOptions`]).
    fn run(
        &self,
        command: &Bound<'_, PyAny>,
        stdin: Option<&Bound<'_, PyAny>>,
        options: &Bound<'_, PyAny>,
    ) -> PyResult<NativeTask> {
        let mut task = process_task(command)?;
        if let Some(data) = stdin.filter(|d| !d.is_none()) {
            task = task.stdin_bytes(with_bytes("stdin", data, <[u8]>::to_vec)?);
        }
        let options = parse::<TaskOptions>("run", options)?;
        let task = options.process(task).map_err(core_err)?;
        let options = options.spawn_options().map_err(core_err)?;
        let handle = self.manager.spawn(task, options).map_err(core_err)?;
        track_process(&handle);
        Ok(NativeTask { handle })
    }

    /// Starts a Python function through `starter` (see `agent_tasks._manager`)
    /// with `options` (a dict of the core's [`TaskOptions`]).
    fn spawn(&self, starter: Py<PyAny>, options: &Bound<'_, PyAny>) -> PyResult<NativeTask> {
        let mut options = parse::<TaskOptions>("spawn", options)?;
        let description = options.description.take().unwrap_or_default();
        let kind = options.kind.take().unwrap_or_else(|| "fn".to_string());
        let task = python_task(starter, description, kind);
        let options = options.spawn_options().map_err(core_err)?;
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
    #[pyo3(signature = (*, owner=None, statuses=None, active_only=None))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        owner: Option<&Bound<'_, PyAny>>,
        statuses: Option<Vec<String>>,
        active_only: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (owner, active_only) = (opt_text("owner", owner)?, flag("active_only", active_only)?);
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
    #[pyo3(signature = (id, message=None, *, eof=None))]
    fn send(
        &self,
        id: &str,
        message: Option<&Bound<'_, PyAny>>,
        eof: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let eof = flag("eof", eof)?;
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
    fn resize(
        &self,
        id: String,
        cols: &Bound<'_, PyAny>,
        rows: &Bound<'_, PyAny>,
    ) -> PyResult<Pending> {
        let (cols, rows) = (count("cols", cols)?, count("rows", rows)?);
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
    fn collect(&self, id: String, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Pending> {
        let limit = limit("timeout", timeout)?;
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
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Pending> {
        let cursor = count("cursor", cursor)?;
        let max_bytes = size("max_bytes", max_bytes)?;
        let limit = limit("timeout", timeout)?;
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
        until: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        cursor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Pending> {
        let cursor = cursor.map(|c| count("cursor", c)).transpose()?.unwrap_or(0);
        let until = text("until", until)?;
        let until = agent_tasks::WaitUntil::parse(&until, cursor).map_err(core_err)?;
        let limit = limit("timeout", timeout)?;
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
    fn cancel(&self, id: String, reason: Option<&Bound<'_, PyAny>>) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        let reason = CancelReason::user(opt_text("reason", reason)?.unwrap_or_default());
        spawn(async move { Ok::<_, Failure>(info(manager.cancel(&id, reason).await?)) })
    }

    /// Cancels every task but keep-alive ones and waits until they ended.
    #[pyo3(signature = (reason=None))]
    fn shutdown(&self, reason: Option<&Bound<'_, PyAny>>) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        let reason = opt_text("reason", reason)?
            .unwrap_or_else(|| agent_tasks::DEFAULT_SHUTDOWN_REASON.to_string());
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
    fn close_owner(
        &self,
        owner: &Bound<'_, PyAny>,
        reason: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Pending> {
        let manager = TaskManager::clone(&self.manager);
        let (owner, reason) = (text("owner", owner)?, opt_text("reason", reason)?);
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
        owner: &Bound<'_, PyAny>,
        budget: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let owner = text("owner", owner)?;
        // No budget: the core's default (one rule for every front end).
        let budget = match budget {
            Some(b) if !b.is_none() => crate::convert::size("budget", b)?,
            _ => agent_tasks::DEFAULT_ROSTER_BUDGET,
        };
        to_dict(py, &self.manager.roster(&owner, budget))
    }

    /// Pending notifications, oldest first, of one owner or of all.
    #[pyo3(signature = (owner=None))]
    fn notifications<'py>(
        &self,
        py: Python<'py>,
        owner: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let owner = opt_text("owner", owner)?;
        PyList::new(
            py,
            self.manager
                .notifications(owner.as_deref())
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
        max_age: Option<&Bound<'_, PyAny>>,
        max_count: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<String>> {
        let max_age = limit("max_age", max_age)?;
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
