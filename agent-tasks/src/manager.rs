//! [`TaskManager`]: the public face. It owns the registry of tasks, spawns
//! them onto the runtime, and answers the host's verbs: detach, poll,
//! collect, cancel, send, list, shutdown. The lifecycle rules themselves live
//! in `lifecycle`; the output rules in `output`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::config::{ManagerConfig, SpawnOptions, MIN_HEARTBEAT};
use crate::context::{Inbox, Message, OutputWriter, SinkErrors, TaskContext};
use crate::error::{Error, Result};
use crate::events::{EventBus, EventSubscription};
use crate::id::TaskId;
use crate::info::{
    CancelKind, CancelReason, PollResponse, Preview, TaskInfo, TaskResult, TaskStatus,
};
use crate::lifecycle::{
    Announce, DetachError, NewEntry, Pending, Registry, RootHold, Services, Settled,
    SupervisedAtOpen, TaskEntry, TaskSpec,
};
use crate::notifications::{Notification, NotificationQueue};
use crate::output::{OutputBuffer, OutputLimits};
use crate::process::{Key, ProcessTask};
use crate::readiness::{WaitOutcome, WaitUntil};
use crate::roster::{Roster, RosterItem};
use crate::sink::SharedSink;
use crate::store::{RootLock, TaskStore};
use crate::task::BackgroundTask;
use crate::util::{lock, millis, now_ms};
use crate::watch::WatchSink;

/// Steering messages a task's inbox holds before `send` reports it full.
const INBOX_CAPACITY: usize = 1024;
/// The most bytes one `poll` returns, whatever is asked.
pub const MAX_POLL_BYTES: usize = 16 * 1024 * 1024;

/// How a foreground wait ended.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ForegroundOutcome {
    /// The task ended while the caller waited.
    Finished(TaskResult),
    /// The task was moved to the background; it goes on running.
    Detached(TaskInfo),
}

/// What `collect` found.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CollectOutcome {
    /// The task has ended: its result.
    Finished(TaskResult),
    /// The timeout passed first: the task's info now.
    StillRunning(TaskInfo),
}

impl CollectOutcome {
    /// The result, if the task has ended.
    pub fn result(&self) -> Option<&TaskResult> {
        match self {
            CollectOutcome::Finished(r) => Some(r),
            CollectOutcome::StillRunning(_) => None,
        }
    }
}

/// Which tasks `list` returns. The default lists every task of every owner,
/// except foreground tasks that ended without being detached.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Only tasks of this owner.
    pub owner: Option<String>,
    /// Only tasks in one of these statuses.
    pub statuses: Option<Vec<TaskStatus>>,
    /// Only tasks that are still running.
    pub active_only: bool,
}

impl ListFilter {
    /// Tasks of one owner.
    pub fn owner(owner: impl Into<String>) -> Self {
        ListFilter {
            owner: Some(owner.into()),
            ..Default::default()
        }
    }

    /// Only running tasks.
    pub fn active(mut self) -> Self {
        self.active_only = true;
        self
    }
}

/// A spawned task: its id, and the foreground caller's way to wait for it.
#[derive(Clone)]
pub struct TaskHandle {
    entry: Arc<TaskEntry>,
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.entry.spec.id)
            .finish()
    }
}

impl TaskHandle {
    /// The task's id.
    pub fn id(&self) -> &TaskId {
        &self.entry.spec.id
    }

    /// The task's info now.
    pub fn info(&self) -> TaskInfo {
        self.entry.info()
    }

    /// Waits until the task ends (`Finished`) or is moved to the background
    /// by [`TaskManager::detach`] or a foreground timeout (`Detached`). For a
    /// task spawned in the background this returns `Detached` at once.
    pub async fn wait_foreground(&self) -> ForegroundOutcome {
        match self.entry.wait_until(true).await {
            Settled::Terminal(result) => ForegroundOutcome::Finished(result),
            Settled::Detached(info) => ForegroundOutcome::Detached(info),
        }
    }

    /// Waits until the task has ended (its end saved and announced),
    /// wherever it runs, and gives its result. Unlike
    /// [`TaskHandle::wait_foreground`] a detach does not end the wait; and it
    /// needs no manager, so it also waits for a task whose manager is gone.
    pub async fn wait_end(&self) -> TaskResult {
        loop {
            if let Settled::Terminal(result) = self.entry.wait_until(false).await {
                return result;
            }
        }
    }
}

/// What `gc` removed.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
pub struct GcReport {
    /// Ids of the tasks removed (their folders and their entries).
    pub removed: Vec<TaskId>,
}

struct Inner {
    config: ManagerConfig,
    root: PathBuf,
    registry: Arc<Mutex<Registry>>,
    services: Arc<Services>,
    load_problems: Vec<String>,
    runtime: Handle,
    /// The root's lock (and temporary folder); running drivers hold it too.
    root_hold: Arc<RootHold>,
    /// Keeps the process's idle task cgroups while the manager can spawn.
    cgroup_pool: crate::process::CgroupPoolUser,
    /// The ceiling all process tasks of this manager count against
    /// ([`ManagerConfig::limits_ceiling`]), if one is set; let go at
    /// shutdown (the tasks still running, keep-alive ones, hold it on).
    ceiling: Mutex<Option<Arc<dyn crate::limits::CeilingDirs>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: nobody can collect these tasks any more.
        let entries: Vec<_> = lock(&self.registry).tasks.values().cloned().collect();
        for entry in entries {
            if !entry.spec.keep_alive && !entry.spec.supervised {
                entry.request_cancel(CancelReason::shutdown("the task manager was dropped"));
            }
        }
    }
}

/// What [`TaskManager::start_task`] starts.
struct NewTask {
    spec: TaskSpec,
    task: Box<dyn BackgroundTask>,
    output: Arc<OutputBuffer>,
    watcher: Option<Arc<WatchSink>>,
    host_limits: crate::limits::HostLimits,
    /// When an earlier host created the task (a re-attach).
    created_at_ms: Option<u64>,
    announce: Announce,
}

/// Owns all tasks of one agent process. Cheap to clone (an `Arc`), `Send +
/// Sync`; every clone is the same manager.
///
/// ```no_run
/// use agent_tasks::{ForegroundOutcome, ManagerConfig, ProcessTask, SpawnOptions, TaskManager};
///
/// # async fn demo() -> agent_tasks::Result<()> {
/// let manager = TaskManager::new(ManagerConfig::default())?;
/// let handle = manager.spawn(ProcessTask::shell("make test"), SpawnOptions::foreground())?;
/// match handle.wait_foreground().await {
///     ForegroundOutcome::Finished(result) => println!("{}", result.status),
///     ForegroundOutcome::Detached(info) => println!("{} runs on in the background", info.id),
/// }
/// let page = manager.poll(handle.id().as_str(), 0, 64 * 1024)?;
/// println!("{}", page.text());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TaskManager {
    inner: Arc<Inner>,
}

/// A handle on a manager that does not keep it alive: held by tasks that
/// start tasks of their own (an ACP agent's terminals), so a running task
/// never stops its manager from being dropped (and its tasks cancelled).
#[derive(Clone)]
pub(crate) struct WeakManager(std::sync::Weak<Inner>);

impl WeakManager {
    /// The manager, if it still exists.
    pub(crate) fn upgrade(&self) -> Option<TaskManager> {
        self.0.upgrade().map(|inner| TaskManager { inner })
    }
}

impl TaskManager {
    /// A handle that does not keep the manager alive.
    pub(crate) fn downgrade(&self) -> WeakManager {
        WeakManager(Arc::downgrade(&self.inner))
    }
}

impl std::fmt::Debug for TaskManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskManager")
            .field("root", &self.inner.root)
            .finish()
    }
}

impl TaskManager {
    /// A manager that runs its tasks on the current tokio runtime.
    ///
    /// Fails with [`Error::InvalidArgument`] outside a runtime (use
    /// [`TaskManager::with_runtime`]) or for an invalid config, and with
    /// [`Error::Io`] if the root folder cannot be made.
    pub fn new(config: ManagerConfig) -> Result<Self> {
        let runtime = Handle::try_current().map_err(|_| {
            Error::invalid_argument(
                "runtime",
                "TaskManager::new must be called inside a tokio runtime; use TaskManager::with_runtime",
            )
        })?;
        Self::with_runtime(config, runtime)
    }

    /// A manager that runs its tasks on `runtime`; its methods may then be
    /// called from any thread.
    ///
    /// If the root folder holds tasks of an earlier run, they are loaded: a
    /// task that was running when its host died becomes `lost` (or is
    /// reported orphaned while its process still runs), and pending
    /// notifications come back. Unreadable task folders are skipped and
    /// listed by [`TaskManager::load_problems`]. Fails with
    /// [`Error::RootInUse`] while another manager has the same root open.
    pub fn with_runtime(config: ManagerConfig, runtime: Handle) -> Result<Self> {
        config.validate()?;
        let ceiling = if config.limits_ceiling.is_empty() {
            None
        } else {
            let ceiling: Arc<dyn crate::limits::CeilingDirs> =
                Arc::new(crate::process::Ceiling::create(&config.limits_ceiling)?);
            Some(ceiling)
        };
        let (root, temp_root) = match &config.root {
            Some(root) => {
                crate::util::create_private_dir(root)
                    .map_err(|e| Error::io("creating the root folder", root, e))?;
                (root.clone(), None)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("agent-tasks-")
                    .tempdir()
                    .map_err(|e| {
                        Error::io("creating a temporary root folder", std::env::temp_dir(), e)
                    })?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        // From here on every file under the root is reached through the
        // locked folder's descriptor, not the path.
        let (root_lock, root_dir) = RootLock::acquire(&root)?;
        let root_hold = RootHold::new(root_lock, temp_root);
        let (notifications, mut load_problems) = NotificationQueue::open(&root_dir);
        let services = Arc::new(Services {
            bus: EventBus::new(),
            store: TaskStore::new(&root_dir),
            notifications,
            notify_host_cancels: config.notify_host_cancels,
            max_background: config.max_background,
            max_background_per_owner: config.max_background_per_owner,
            max_running_of_kind: config.max_running_of_kind.clone(),
            runtime: runtime.clone(),
            spawn_gate: Arc::default(),
            root: Arc::downgrade(&root_hold),
            unsaved: Default::default(),
        });
        let registry = Arc::new(Mutex::new(Registry::default()));
        let (loaded, problems) = services.store.load_all();
        load_problems.extend(problems);
        let (records, problems) = services.store.load_foreground_records();
        load_problems.extend(problems);
        let limits = Self::limits(&config);
        let from_folders = loaded.into_iter().map(|t| (t.manifest, t.result, false));
        let from_records = records.into_iter().map(|m| (m, None, true));
        let mut reattach = Vec::new();
        for (mut manifest, mut result, from_record) in from_folders.chain(from_records) {
            if manifest.supervised && result.is_none() && !manifest.info.status.is_terminal() {
                let folder = services.store.folder(&manifest.info.id);
                let every_byte = !config.sinks.is_empty();
                match TaskEntry::supervised_at_open(&folder, &mut manifest, every_byte) {
                    Some(SupervisedAtOpen::Running(found)) => {
                        reattach.push((manifest, found));
                        continue;
                    }
                    Some(SupervisedAtOpen::Ended(end)) => result = Some(*end),
                    // After a reboot: lost, as any task.
                    None => {}
                }
            }
            let ended_now = TaskEntry::settle_saved_end(&mut manifest, result.as_ref());
            let unfinished = !manifest.info.status.is_terminal();
            let output = Arc::new(OutputBuffer::restore(
                services.store.folder(&manifest.info.id),
                limits,
                &manifest.info.output,
                unfinished,
                manifest.log_head,
            ));
            let entry = TaskEntry::restore(
                manifest,
                result,
                ended_now,
                output,
                Arc::downgrade(&registry),
                services.clone(),
            );
            if from_record {
                // The task has a folder now (see `restore`): the record is done.
                if let Err(e) = services.store.remove_foreground_record(&entry.spec.id) {
                    load_problems.push(format!(
                        "ending the foreground record of {}: {e}",
                        entry.spec.id
                    ));
                }
            }
            lock(&registry).tasks.insert(entry.spec.id.clone(), entry);
        }
        let manager = TaskManager {
            inner: Arc::new(Inner {
                config,
                root,
                registry,
                services,
                load_problems,
                runtime,
                root_hold,
                cgroup_pool: crate::process::CgroupPoolUser::new(),
                ceiling: Mutex::new(ceiling),
            }),
        };
        for (manifest, found) in reattach {
            manager.reattach(manifest, *found)?;
        }
        Ok(manager)
    }

    /// Takes a task found running under its supervisor back: an entry that
    /// mirrors the supervisor's stream from its state now, `running` again.
    fn reattach(
        &self,
        manifest: crate::manifest::Manifest,
        found: crate::lifecycle::FoundRunning,
    ) -> Result<()> {
        let config = &self.inner.config;
        let info = manifest.info;
        let dir = self.inner.services.store.folder(&info.id);
        let output = Arc::new(OutputBuffer::mirror(
            dir.clone(),
            Self::limits(config),
            found.snapshot,
        ));
        let pid = found.attached.started.as_ref().map(|s| s.pid);
        let spec = TaskSpec {
            id: info.id,
            kind: info.kind,
            description: info.description,
            owner: info.owner,
            keep_alive: info.keep_alive,
            background: true,
            foreground_timeout: None,
            // The supervisor fires the timeout it was given.
            background_timeout: None,
            on_timeout: config.on_timeout,
            track_changes: None,
            monitoring: Default::default(),
            source: manifest.source.map(Box::new),
            supervised: true,
        };
        let task = crate::supervisor::SupervisedTask::attached(found.task, dir, found.attached);
        let host_limits = crate::limits::HostLimits {
            defaults: config.default_limits,
            policy: config.unenforced_limits,
            ceiling: None,
        };
        self.start_task(
            NewTask {
                spec,
                task: Box::new(task),
                output,
                watcher: None,
                host_limits,
                created_at_ms: Some(info.created_at_ms),
                announce: Announce::Reattach { pid },
            },
            &SpawnOptions::background(),
        )?;
        Ok(())
    }

    /// Opens (or creates) the manager whose tasks live under `root`, with
    /// default settings, on the current tokio runtime. See
    /// [`TaskManager::with_runtime`] for what is loaded.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        Self::new(ManagerConfig::default().root(root))
    }

    /// Task folders or notifications found at open that could not be read
    /// (a torn or corrupt file); they were skipped.
    pub fn load_problems(&self) -> &[String] {
        &self.inner.load_problems
    }

    fn limits(config: &ManagerConfig) -> OutputLimits {
        OutputLimits {
            memory_limit: config.memory_limit,
            disk_limit: config.disk_limit,
            tail_window: config.tail_window,
            gather: true,
            track_activity: false,
        }
    }

    /// The root folder; task folders are `<root>/tasks/<id>`.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Starts a task in the foreground or the background.
    ///
    /// Fails with [`Error::CapacityExceeded`] when a background cap is
    /// reached (the check and the insert are one atomic step; with
    /// [`ManagerConfig::queue_over_capacity`] the task waits in a queue,
    /// status `queued`, instead) and with
    /// [`Error::ShutDown`] after [`TaskManager::shutdown`].
    pub fn spawn(&self, task: impl BackgroundTask, options: SpawnOptions) -> Result<TaskHandle> {
        self.spawn_boxed(Box::new(task), options)
    }

    /// The limits every process task of this manager gets for each kind it
    /// does not set itself ([`ManagerConfig::default_limits`]).
    pub fn default_limits(&self) -> crate::limits::Limits {
        self.inner.config.default_limits
    }

    /// The ceiling all its process tasks count against together
    /// ([`ManagerConfig::limits_ceiling`]); empty without one.
    pub fn limits_ceiling(&self) -> crate::limits::Limits {
        self.inner.config.limits_ceiling
    }

    /// [`TaskManager::spawn`] for an already boxed task.
    pub fn spawn_boxed(
        &self,
        task: Box<dyn BackgroundTask>,
        options: SpawnOptions,
    ) -> Result<TaskHandle> {
        task.validate()?;
        let supervisor = self.supervisor_for(task.as_ref(), &options)?;
        let config = &self.inner.config;
        let host_limits = crate::limits::HostLimits {
            defaults: config.default_limits,
            policy: config.unenforced_limits,
            ceiling: lock(&self.inner.ceiling).clone(),
        };
        task.check_limits(
            &host_limits.defaults,
            &host_limits.ceiling_limits(),
            host_limits.policy,
        )?;
        let id = TaskId::generate(task.kind());
        let owner = options
            .owner
            .clone()
            .unwrap_or_else(|| config.default_owner.clone());
        let spec = TaskSpec {
            id: id.clone(),
            kind: task.kind().to_string(),
            description: options
                .description
                .clone()
                .unwrap_or_else(|| task.description()),
            owner: owner.clone(),
            keep_alive: options.keep_alive,
            background: options.background,
            foreground_timeout: options
                .foreground_timeout
                .resolve(config.foreground_timeout),
            background_timeout: options
                .background_timeout
                .resolve(config.background_timeout),
            on_timeout: options.on_timeout.unwrap_or(config.on_timeout),
            track_changes: options.track_changes.clone(),
            monitoring: options.monitoring.clone(),
            source: options.source.clone().map(Box::new),
            supervised: supervisor.is_some(),
        };
        let watcher = Self::watcher(&options)?;
        let dir = self.inner.services.store.folder(&id);
        let limits = OutputLimits {
            track_activity: options.monitoring.idle_timeout.is_some(),
            ..Self::limits(config)
        };
        let (task, output): (Box<dyn BackgroundTask>, _) = match supervisor {
            Some((process, program)) => {
                let spec = crate::supervisor::Spec {
                    task_id: id.to_string(),
                    task: process.clone(),
                    cwd: std::env::current_dir()
                        .map_err(|e| Error::io("reading the working folder", ".", e))?,
                    memory_limit: limits.memory_limit,
                    disk_limit: limits.disk_limit,
                    tail_window: limits.tail_window,
                    default_limits: config.default_limits,
                    unenforced_limits: config.unenforced_limits,
                    deadline_ms: spec.background_timeout.and_then(|timeout| {
                        crate::util::now_ms().checked_add(u64::try_from(timeout.as_millis()).ok()?)
                    }),
                    on_host_exit: crate::supervisor::OnHostExit::KeepRunning,
                };
                let mirror = OutputBuffer::mirror(dir.clone(), limits, Default::default());
                let task = crate::supervisor::SupervisedTask::launch(process, dir, spec, program);
                (Box::new(task), mirror)
            }
            None => (task, OutputBuffer::new(dir, limits, options.background)),
        };
        let output = Arc::new(output);
        self.start_task(
            NewTask {
                spec,
                task,
                output,
                watcher,
                host_limits,
                created_at_ms: None,
                announce: Announce::Start,
            },
            &options,
        )
    }

    /// Makes the entry and context of a task and starts it (or queues it,
    /// over a cap, if the host chose queueing). A re-attached task was
    /// running already: it takes its slots whatever the caps say.
    fn start_task(&self, new: NewTask, options: &SpawnOptions) -> Result<TaskHandle> {
        let NewTask {
            spec,
            task,
            output,
            watcher,
            host_limits,
            created_at_ms,
            announce,
        } = new;
        let reattached = matches!(announce, Announce::Reattach { .. });
        let config = &self.inner.config;
        let id = spec.id.clone();
        let owner = spec.owner.clone();
        let mut sinks: Vec<SharedSink> = config
            .sinks
            .iter()
            .chain(options.sinks.iter())
            .cloned()
            .collect();
        if let Some(watcher) = &watcher {
            sinks.push(watcher.clone());
        }
        let sinks: Arc<[SharedSink]> = sinks.into();
        let sink_errors = Arc::new(SinkErrors::default());

        let inbox = task.accepts_messages().then(|| Inbox::new(INBOX_CAPACITY));
        let (controls_tx, controls_rx) = if task.pausable() {
            let (tx, rx) = mpsc::channel(4);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let runtime = self.inner.runtime.clone();
        let entry = TaskEntry::new(
            NewEntry {
                spec,
                output: output.clone(),
                sink_errors: sink_errors.clone(),
                created_at_ms,
                inbox: inbox.clone(),
                controls: controls_tx,
                registry: Arc::downgrade(&self.inner.registry),
                services: self.inner.services.clone(),
            },
            |me| {
                let events = TaskEntry::output_events(me);
                OutputWriter::new(output, sinks, sink_errors, events, runtime)
            },
        );
        let Some(writer) = entry.writer().cloned() else {
            return Err(Error::invalid_argument(
                "task",
                "the task has no output writer",
            ));
        };
        let grace = task.stop_grace().unwrap_or(config.stop_grace);
        if let Some(watcher) = &watcher {
            let weak = Arc::downgrade(&entry);
            watcher.attach(Box::new(move |event| {
                if let Some(entry) = weak.upgrade() {
                    entry.on_watch(event);
                }
            }));
        }
        let weak = Arc::downgrade(&entry);
        let pid_hook = Arc::new(move |pid: u32, containment, start, limits| {
            if let Some(entry) = weak.upgrade() {
                entry.on_pid(pid, containment, start, limits);
            }
        });
        let weak = Arc::downgrade(&entry);
        let turn_hook = Arc::new(move |turn: u64, summary: String| {
            if let Some(entry) = weak.upgrade() {
                entry.on_turn_ended(turn, summary);
            }
        });
        let ctx = TaskContext::new(
            id.clone(),
            writer,
            entry.cancel.clone(),
            inbox,
            controls_rx,
            crate::context::HostLinks {
                pid_hook,
                turn_hook,
                spawn_gate: self.inner.services.spawn_gate.clone(),
                limits: host_limits,
            },
        );
        let pending = Pending {
            entry: entry.clone(),
            task,
            ctx,
            grace,
            root: self.inner.root_hold.clone(),
            announce,
        };
        {
            let mut reg = lock(&self.inner.registry);
            if reg.closed {
                return Err(Error::ShutDown);
            }
            // Every check before any count changes: a refusal leaves none.
            let kind = entry.spec.kind.clone();
            let fits = if reattached {
                Ok(())
            } else if options.background {
                reg.capacity.check(
                    &owner,
                    config.max_background,
                    config.max_background_per_owner,
                )
            } else {
                Ok(())
            }
            .and_then(|()| {
                reg.capacity
                    .check_kind(&kind, config.max_running_of_kind.get(&kind).copied())
            });
            match fits {
                Ok(()) => {
                    if options.background {
                        reg.capacity.add(&owner);
                    }
                    reg.capacity.add_kind(&kind);
                }
                // Over a cap, a background task waits its turn if the host
                // chose queueing; a foreground one is refused.
                Err(_) if options.background && config.queue_over_capacity => {
                    reg.tasks.insert(id, entry.clone());
                    reg.enqueue(pending);
                    return Ok(TaskHandle { entry });
                }
                Err(e) => return Err(e),
            }
            reg.tasks.insert(id, entry.clone());
        }
        pending.start();
        Ok(TaskHandle { entry })
    }

    /// The command and the supervisor program, if `task` runs under a
    /// supervisor of its own ([`OnHostExit::KeepRunning`]): asked for by
    /// the spawn (refused where it cannot apply) or by the manager's
    /// default (which applies to background process tasks in a root of
    /// the host's own, and leaves other tasks to the host).
    fn supervisor_for(
        &self,
        task: &dyn BackgroundTask,
        options: &SpawnOptions,
    ) -> Result<Option<(ProcessTask, crate::supervisor::Program)>> {
        use crate::supervisor::OnHostExit;
        let config = &self.inner.config;
        let asked = options.on_host_exit == Some(OnHostExit::KeepRunning);
        if options.on_host_exit.unwrap_or(config.on_host_exit) != OnHostExit::KeepRunning {
            return Ok(None);
        }
        let refusal = if !options.background {
            "keep_running applies to background tasks: a foreground task's caller waits for it"
        } else if self.inner.root_hold.has_temp_root() {
            "keep_running needs a root of the host's own: a temporary root goes with its host"
        } else {
            match task.as_process_task() {
                Some(_) => "",
                None => "keep_running applies to process tasks: a function task lives in its host",
            }
        };
        match (refusal.is_empty(), asked) {
            (false, true) => return Err(Error::invalid_argument("on_host_exit", refusal)),
            (false, false) => return Ok(None),
            _ => {}
        }
        let Some(process) = task.as_process_task() else {
            return Ok(None);
        };
        let program = config
            .supervisor
            .clone()
            .or_else(|| crate::supervisor::find_program().map(|p| (p, Vec::new())))
            .ok_or_else(|| {
                Error::invalid_argument(
                    "on_host_exit",
                    format!(
                        "keep_running needs the supervisor program and none was found: set {}, put {} beside the host's program, or call agent_tasks::run_if_supervisor() first in main",
                        crate::supervisor::SUPERVISOR_ENV,
                        crate::supervisor::SUPERVISOR_BINARY
                    ),
                )
            })?;
        Ok(Some((process.clone(), program)))
    }

    /// Checks the monitoring options and builds the watch sink, if any.
    fn watcher(options: &SpawnOptions) -> Result<Option<Arc<WatchSink>>> {
        let m = &options.monitoring;
        if m.heartbeat.is_some_and(|every| every < MIN_HEARTBEAT) {
            return Err(Error::invalid_argument(
                "heartbeat",
                "must be at least 60 s",
            ));
        }
        if m.idle_timeout.is_some_and(|idle| idle.is_zero()) {
            return Err(Error::invalid_argument(
                "idle_timeout",
                "must be more than zero",
            ));
        }
        if m.watch.is_empty() {
            return Ok(None);
        }
        if m.watch_max == 0 {
            return Err(Error::invalid_argument("watch_max", "must be at least 1"));
        }
        WatchSink::new(&m.watch, m.watch_interval, m.watch_max)
            .map(|w| Some(Arc::new(w)))
            .map_err(|e| Error::invalid_argument("watch", e))
    }

    fn entry(&self, id: &str) -> Result<Arc<TaskEntry>> {
        let id = TaskId::parse(id)?;
        lock(&self.inner.registry)
            .tasks
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::TaskNotFound { id: id.to_string() })
    }

    /// The ids of all tasks the manager knows, oldest first.
    pub fn ids(&self) -> Vec<TaskId> {
        let mut entries: Vec<_> = lock(&self.inner.registry).tasks.values().cloned().collect();
        entries.sort_by_key(|e| e.order);
        entries.iter().map(|e| e.spec.id.clone()).collect()
    }

    /// [`TaskHandle::wait_foreground`] by id: waits until the task ends
    /// (`Finished`) or is no longer in the foreground (`Detached`).
    pub async fn wait_foreground(&self, id: &str) -> Result<ForegroundOutcome> {
        let entry = self.entry(id)?;
        Ok(match entry.wait_until(true).await {
            Settled::Terminal(result) => ForegroundOutcome::Finished(result),
            Settled::Detached(info) => ForegroundOutcome::Detached(info),
        })
    }

    /// The task's result, once it has ended (and its end is saved); `None`
    /// while it runs. Non-blocking; see [`TaskManager::collect`] to wait.
    pub fn result(&self, id: &str) -> Result<Option<TaskResult>> {
        Ok(self.entry(id)?.result())
    }

    /// The task's info now.
    pub fn info(&self, id: &str) -> Result<TaskInfo> {
        Ok(self.entry(id)?.info())
    }

    /// Moves a running foreground task to the background without restarting
    /// it or losing a byte: its buffered output is written to disk first, then
    /// the rest follows in order. The caller of `wait_foreground` is released
    /// at once with `Detached`. For a background or finished task this
    /// returns its info unchanged.
    ///
    /// The background caps hold: when one is full, the detach is refused
    /// with [`Error::CapacityExceeded`] and the task goes on in the
    /// foreground, untouched. (At a foreground timeout with
    /// [`OnTimeout::Detach`](crate::OnTimeout::Detach) and a full cap, the
    /// task is stopped instead: it ends `timed_out`, and its cancel reason
    /// says the background was full.)
    pub fn detach(&self, id: &str) -> Result<TaskInfo> {
        let entry = self.entry(id)?;
        match entry.detach() {
            Ok(_) => Ok(entry.info()),
            Err(DetachError::Capacity(e)) => Err(e),
        }
    }

    /// Non-blocking: the task's info and up to `max_bytes` of output written
    /// since `cursor` (a byte offset into the task's whole output), with the
    /// cursor to poll from next. Text views are cut on UTF-8 boundaries while
    /// the task runs, so successive polls decode cleanly; a page holds at
    /// least one whole character, so with a `max_bytes` smaller than the
    /// character at `cursor` it is that character (up to 3 bytes more than
    /// asked) rather than a piece of it.
    pub fn poll(&self, id: &str, cursor: u64, max_bytes: usize) -> Result<PollResponse> {
        let entry = self.entry(id)?;
        let page = entry.output.page(cursor, max_bytes.min(MAX_POLL_BYTES))?;
        Ok(poll_response(&entry, page))
    }

    /// [`TaskManager::poll`] that waits for something to return: until there
    /// is output past `cursor` (or bytes skipped as omitted), the task has
    /// ended (`eof` then says whether `next_cursor` is the end), or
    /// `timeout` passes (`None`: no limit), when it answers with no data and
    /// `timed_out` set: what the bindings' output streams read.
    /// Woken by the task's own writes and state changes, not by a timer.
    /// Following `next_cursor` from one answer to the next reads every byte
    /// once, in order, until `eof`.
    pub async fn poll_wait(
        &self,
        id: &str,
        cursor: u64,
        max_bytes: usize,
        timeout: Option<Duration>,
    ) -> Result<PollResponse> {
        let entry = self.entry(id)?;
        let (page, timed_out) = entry
            .wait_page(cursor, max_bytes.min(MAX_POLL_BYTES), timeout)
            .await?;
        let mut response = poll_response(&entry, page);
        response.timed_out = timed_out;
        Ok(response)
    }

    /// The first `head_bytes` and last `tail_bytes` of the task's output, for
    /// showing a model both ends of a long log.
    pub fn preview(&self, id: &str, head_bytes: usize, tail_bytes: usize) -> Result<Preview> {
        self.entry(id)?.output.preview(head_bytes, tail_bytes)
    }

    /// Waits until the task ends or `timeout` passes (`None`: no limit;
    /// zero: answer at once).
    pub async fn collect(&self, id: &str, timeout: Option<Duration>) -> Result<CollectOutcome> {
        let entry = self.entry(id)?;
        if let Some(result) = entry.result() {
            return Ok(CollectOutcome::Finished(result));
        }
        let waited = match timeout {
            None => Some(entry.wait_until(false).await),
            Some(t) if t.is_zero() => None,
            Some(t) => tokio::time::timeout(t, entry.wait_until(false)).await.ok(),
        };
        Ok(match waited {
            Some(Settled::Terminal(result)) => CollectOutcome::Finished(result),
            _ => CollectOutcome::StillRunning(entry.info()),
        })
    }

    /// Waits until `until` holds (an output line matches, a port on
    /// 127.0.0.1 accepts), the task ends, or `timeout` passes (`None`: no
    /// limit), and says which. Woken by new output and by the task's end,
    /// never by a sleep loop; only a port is checked at an interval
    /// ([`PORT_POLL_INTERVAL`](crate::PORT_POLL_INTERVAL), 100 ms). A task
    /// that has already ended answers `Ended` at once, after its output was
    /// scanned for a match.
    pub async fn wait_for(
        &self,
        id: &str,
        until: WaitUntil,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome> {
        self.entry(id)?.wait_for(&until, timeout).await
    }

    /// Stops the task (its stop signal, then force after the grace), waits
    /// until it is terminal, and returns its final info. Idempotent: for an
    /// ended task it returns the info unchanged. The reason is recorded and
    /// reaches the task.
    pub async fn cancel(&self, id: &str, reason: CancelReason) -> Result<TaskInfo> {
        let entry = self.entry(id)?;
        entry.request_cancel(reason);
        entry.wait_until(false).await;
        Ok(entry.info())
    }

    /// Pauses a process task: `SIGSTOP` to every process of it (the group,
    /// and the cgroup members or marked descendants, as its containment
    /// finds them). Its timeouts wait while it is paused (the deadline moves
    /// by the time spent paused); `info.paused` says so, and a `task.paused`
    /// event is published. A paused task can still be cancelled (it is
    /// continued after its stop signal, so it can end). Pausing a paused
    /// task changes nothing. Refused with `InvalidArgument` for a function
    /// task (it runs inside the host: there is no process to stop) and for a
    /// task that has ended or is stopping.
    pub async fn pause(&self, id: &str) -> Result<TaskInfo> {
        let entry = self.entry(id)?;
        entry.set_paused(true).await?;
        Ok(entry.info())
    }

    /// Resumes a paused task: `SIGCONT` to every process of it; its timeouts
    /// run again from where they stood. A `task.resumed` event is published.
    /// Resuming a running task changes nothing; the refusals are those of
    /// [`TaskManager::pause`].
    pub async fn resume(&self, id: &str) -> Result<TaskInfo> {
        let entry = self.entry(id)?;
        entry.set_paused(false).await?;
        Ok(entry.info())
    }

    /// Sends a steering message: to a function task's inbox, or to a
    /// process's stdin (processes started with `interactive(true)`), or
    /// typed into a PTY task's terminal (see [`ProcessTask::pty`](crate::ProcessTask::pty)).
    pub fn send(&self, id: &str, message: impl Into<Message>) -> Result<()> {
        self.entry(id)?.send(message.into())
    }

    /// Types keys into a task's input: each [`Key`] as the bytes a terminal
    /// sends for it (Ctrl+C is `0x03`, which a PTY task's terminal turns
    /// into `SIGINT` for its foreground processes; Up is `ESC [ A`). Meant
    /// for PTY tasks ([`ProcessTask::pty`](crate::ProcessTask::pty)); a task reading a plain stdin
    /// gets the same bytes, with no terminal to interpret them. Parse key
    /// names with [`Key::parse`] or [`Key::parse_all`].
    pub fn send_keys(&self, id: &str, keys: &[Key]) -> Result<()> {
        if keys.is_empty() {
            return Err(Error::invalid_argument("keys", "no key given"));
        }
        let bytes = Key::encode(keys)?;
        self.entry(id)?.send(Message::from(bytes))
    }

    /// Resizes a PTY task's terminal to `cols` × `rows` (each 1 to 65535):
    /// its processes see the new size and get `SIGWINCH`. Refused with
    /// `InvalidArgument` for a task without a terminal (only a process task
    /// started with [`ProcessTask::pty`](crate::ProcessTask::pty) has one) or one that is queued or
    /// has ended.
    pub async fn resize(&self, id: &str, cols: u16, rows: u16) -> Result<()> {
        self.entry(id)?.resize(cols, rows).await
    }

    /// Tasks matching `filter`, oldest first. Foreground tasks that ended
    /// without being detached are not listed.
    pub fn list(&self, filter: &ListFilter) -> Vec<TaskInfo> {
        // Sorted on keys copied out (unique: the spawn order breaks ties), not
        // through the entries: with 100,000 tasks, a comparison that reads
        // two cold entries costs more than the listing itself.
        let mut entries: Vec<_> = lock(&self.inner.registry)
            .tasks
            .values()
            .map(|e| (e.order, e.clone()))
            .collect();
        entries.sort_unstable_by_key(|(order, _)| *order);
        entries
            .iter()
            .map(|(_, e)| e)
            .filter(|e| filter.owner.as_ref().is_none_or(|o| &e.spec.owner == o))
            .filter(|e| e.is_listed())
            .map(|e| e.info())
            .filter(|i| !filter.active_only || !i.status.is_terminal())
            .filter(|i| {
                filter
                    .statuses
                    .as_ref()
                    .is_none_or(|s| s.contains(&i.status))
            })
            .collect()
    }

    /// Cancels every running task except keep-alive ones, waits until they
    /// have ended (their output flushed), and refuses new spawns from then on.
    /// Nothing starts once it began: queued tasks (keep-alive ones too, which
    /// could never start) end `cancelled` at once, with the error "it never
    /// started", and a slot freed later starts none.
    /// If no task is left running, the root folder is released, so another
    /// manager may open it.
    pub async fn shutdown(&self, reason: impl Into<String>) {
        let reason = CancelReason::shutdown(reason);
        // Closing takes the queue out in the same step: a slot freed by a
        // task stopped below starts nothing (keep-alive queued tasks
        // included: they would never start either).
        let (entries, unstarted) = {
            let mut reg = lock(&self.inner.registry);
            let unstarted = reg.close(&reason);
            let entries: Vec<_> = reg.tasks.values().cloned().collect();
            (entries, unstarted)
        };
        let mut stopping: Vec<_> = unstarted.iter().map(|p| p.entry.clone()).collect();
        for pending in unstarted {
            pending.cancel_unstarted();
        }
        stopping.extend(entries.into_iter().filter(|e| {
            !e.spec.keep_alive && !e.spec.supervised && e.request_cancel(reason.clone())
        }));
        for entry in stopping {
            entry.wait_until(false).await;
        }
        // With nothing left running, another manager may take the root over.
        let all_ended = lock(&self.inner.registry)
            .tasks
            .values()
            .all(|e| e.status().is_terminal());
        if all_ended {
            // What a full disk refused gets a last try while the root is held.
            let services = self.inner.services.clone();
            let _ = self
                .inner
                .runtime
                .spawn_blocking(move || services.save_unsaved())
                .await;
            self.inner.root_hold.release();
        }
        // No spawn follows: the idle cgroups go once no other manager of
        // the process can use them, and the ceiling's once no task is in it.
        self.inner.cgroup_pool.release();
        lock(&self.inner.ceiling).take();
    }

    /// Kills, now and synchronously, every process of the manager's running
    /// tasks (SIGKILL, no grace: to each task's cgroup, its process group
    /// and every process carrying its marker), keep-alive ones included.
    /// For a host that is exiting, in an exit hook where nothing
    /// asynchronous runs any more (Node's `process.exit`, an uncaught
    /// exception, a fatal signal). First it closes the manager's spawn
    /// gate: from then on no task starts a process (one that tries ends
    /// `failed`, "the host is exiting"), and it waits, at most `wait`, for
    /// the spawns under way to record their pid, so every process is known
    /// when it kills. Returns how many tasks had processes to kill. The
    /// tasks' ends are recorded by their drivers as usual if the runtime
    /// still runs.
    ///
    /// ```
    /// # use agent_tasks::{ProcessTask, SpawnOptions, TaskManager};
    /// # use std::time::Duration;
    /// # #[tokio::main] async fn main() {
    /// let manager = TaskManager::new(Default::default()).unwrap();
    /// let task = manager
    ///     .spawn(ProcessTask::shell("sleep 1000"), SpawnOptions::background())
    ///     .unwrap();
    /// // In an exit hook:
    /// manager.kill_processes_now(Duration::from_millis(500));
    /// let result = manager.collect(task.id().as_str(), None).await.unwrap();
    /// # let _ = result;
    /// # }
    /// ```
    pub fn kill_processes_now(&self, wait: Duration) -> usize {
        self.inner.services.spawn_gate.close(wait);
        let entries: Vec<_> = lock(&self.inner.registry).tasks.values().cloned().collect();
        entries
            .iter()
            // A supervised task outlives its host: that is what it is for.
            .filter(|e| !e.spec.supervised)
            .filter_map(|e| e.running_pid().map(|pid| (e.spec.id.as_str(), pid)))
            .filter(|(id, pid)| crate::process::kill_task_now(id, *pid))
            .count()
    }

    /// For a host that is exiting, after [`TaskManager::kill_processes_now`]
    /// (or a shutdown): removes the manager's private temporary root (the
    /// one it made because no root was given) now, and gives the root up.
    /// Without this, the folder goes when the last task's driver lets go of
    /// it, which never happens once the process exits (`process.exit`, a
    /// fatal signal), so temporary roots would pile up.
    ///
    /// First it waits, at most `wait`, until every process task has
    /// recorded its end (those just killed record it as they see their
    /// process die, those the closed spawn gate refused as they reach it),
    /// so no late write of theirs makes the folder again. Queued tasks and
    /// function tasks are not waited for (nothing ends them here).
    /// That wait needs the manager's runtime to run on other threads; called
    /// from a thread of a runtime (where blocking would stall it), it does
    /// not wait. What a task still writes afterwards fails as a write
    /// error. Returns true if a temporary root was removed; a root the host
    /// gave is left alone.
    pub fn remove_temporary_root_now(&self, wait: Duration) -> bool {
        if !self.inner.root_hold.has_temp_root() {
            return false;
        }
        if tokio::runtime::Handle::try_current().is_err() && !wait.is_zero() {
            let entries: Vec<_> = lock(&self.inner.registry)
                .tasks
                .values()
                .filter(|e| {
                    let info = e.info();
                    info.status != crate::TaskStatus::Queued
                        && (info.pid.is_some() || info.kind == "process")
                })
                .cloned()
                .collect();
            let ends = futures::future::join_all(entries.iter().map(|e| e.wait_until(false)));
            let _ = self
                .inner
                .services
                .runtime
                .block_on(async { tokio::time::timeout(wait, ends).await });
        }
        self.inner.root_hold.remove_temp_root_now()
    }

    /// True while the manager's private temporary root (made because no
    /// root was given) is on disk: a host's exit hooks then have a folder
    /// to remove (see [`TaskManager::remove_temporary_root_now`]).
    pub fn has_temporary_root(&self) -> bool {
        self.inner.root_hold.has_temp_root()
    }

    /// [`TaskManager::shutdown`] that waits at most `timeout` for the tasks
    /// to end. Returns true if every task it stopped had ended in time; the
    /// others go on stopping in the background (their driver still kills
    /// them after their grace). For hosts that must exit promptly.
    pub async fn shutdown_within(&self, reason: impl Into<String>, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.shutdown(reason))
            .await
            .is_ok()
    }

    /// Cancels the running tasks of `owner` (a closed session), except
    /// keep-alive ones; waits until they have ended; returns their infos.
    pub async fn close_owner(&self, owner: &str, reason: impl Into<String>) -> Vec<TaskInfo> {
        let message = reason.into();
        let reason = CancelReason {
            kind: CancelKind::OwnerClosed,
            message: (!message.is_empty()).then_some(message),
        };
        let entries: Vec<_> = lock(&self.inner.registry)
            .tasks
            .values()
            .filter(|e| e.spec.owner == owner && !e.spec.keep_alive)
            .cloned()
            .collect();
        let stopping: Vec<_> = entries
            .into_iter()
            .filter(|e| e.request_cancel(reason.clone()))
            .collect();
        let mut infos = Vec::new();
        for entry in stopping {
            entry.wait_until(false).await;
            infos.push(entry.info());
        }
        infos
    }

    /// The owner's open background work (queued or running outside the
    /// foreground), newest first: a short text for the model within
    /// `budget` bytes (empty when nothing is open) and the items for a UI.
    /// Hosts put the text in front of the model each turn.
    ///
    /// ```no_run
    /// # async fn demo(manager: agent_tasks::TaskManager) {
    /// let roster = manager.roster("session-1", agent_tasks::DEFAULT_ROSTER_BUDGET);
    /// if !roster.text.is_empty() {
    ///     println!("{}", roster.text); // inject into the next turn
    /// }
    /// # }
    /// ```
    pub fn roster(&self, owner: &str, budget: usize) -> Roster {
        let mut entries: Vec<_> = lock(&self.inner.registry)
            .tasks
            .values()
            .filter(|e| e.spec.owner == owner)
            .cloned()
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.order));
        let pending = self.inner.services.notifications.pending(Some(owner));
        let items = entries
            .iter()
            .filter_map(|entry| {
                let info = entry.info();
                if info.status.is_terminal() || info.foreground {
                    return None;
                }
                let last_line = entry
                    .output
                    .text_since(info.output.total_bytes.saturating_sub(2048), 2048)
                    .ok()
                    // Clean for the model: no escape sequences, a progress
                    // bar in its last state.
                    .map(|text| crate::clean::clean_text(text.as_bytes()))
                    .and_then(|text| {
                        text.lines()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                            .map(str::to_string)
                    });
                let notices = pending.iter().filter(|n| n.task_id == info.id).count();
                let agent = entry.spec.source.as_ref().map(|s| s.agent.clone());
                Some(RosterItem::new(&info, agent, last_line, notices))
            })
            .collect();
        Roster::from_items(items, budget)
    }

    /// The delegation task `id` answers (agent and arguments), for a
    /// subagent started with [`SpawnOptions::source`](crate::SpawnOptions::source).
    pub(crate) fn source(&self, id: &str) -> Result<Option<crate::info::TaskSource>> {
        Ok(self.entry(id)?.spec.source.as_deref().cloned())
    }

    /// Tells the manager that the model has seen the end of task `id` (a
    /// tool answer showed it): its end notification is dropped so the model
    /// is told once. The toolbox calls this itself; a host that shows the
    /// model an end by other means may call it too.
    pub fn end_was_told(&self, id: &str) -> Result<()> {
        self.entry(id)?.end_was_told();
        Ok(())
    }

    /// A live stream of lifecycle events from now on. A subscriber that
    /// falls behind gets a `Lagged { missed }` item, never a silent gap.
    pub fn subscribe(&self) -> EventSubscription {
        self.inner.services.bus.subscribe()
    }

    /// Pending notifications, oldest first: of one owner, or of all with
    /// `None`. They stay pending (and survive restarts) until acknowledged
    /// with [`TaskManager::ack`].
    pub fn notifications(&self, owner: Option<&str>) -> Vec<Notification> {
        self.inner.services.notifications.pending(owner)
    }

    /// Marks notifications delivered; they never come back. Ids already
    /// acknowledged are ignored. Returns how many were removed.
    pub fn ack<S: AsRef<str>>(&self, ids: &[S]) -> Result<usize> {
        let ids: Vec<String> = ids.iter().map(|s| s.as_ref().to_string()).collect();
        self.inner.services.notifications.ack(&ids)
    }

    /// Kills the still-running process of a task found orphaned at open
    /// (after checking it is the same process: pid and start time), and
    /// clears the orphan mark. An error if the task has no orphan.
    pub fn kill_orphan(&self, id: &str) -> Result<TaskInfo> {
        self.entry(id)?.kill_orphan()
    }

    /// Removes ended tasks, their folders included: those that ended more
    /// than `max_age` ago, and the oldest beyond the newest `max_count`.
    /// Running tasks are never removed.
    pub fn gc(&self, max_age: Option<Duration>, max_count: Option<usize>) -> Result<GcReport> {
        let mut ended: Vec<(u64, Arc<TaskEntry>)> = lock(&self.inner.registry)
            .tasks
            .values()
            .filter_map(|e| e.finished_at_ms().map(|at| (at, e.clone())))
            .collect();
        ended.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        let now = now_ms();
        let mut report = GcReport::default();
        for (rank, (finished_at, entry)) in ended.into_iter().enumerate() {
            let too_old = max_age.is_some_and(|age| now.saturating_sub(finished_at) > millis(age));
            let too_many = max_count.is_some_and(|max| rank >= max);
            if !(too_old || too_many) {
                continue;
            }
            let id = entry.spec.id.clone();
            self.inner.services.store.remove(&id).map_err(|e| {
                Error::io(
                    "removing the task folder",
                    self.inner.services.store.task_dir(&id),
                    e,
                )
            })?;
            lock(&self.inner.registry).tasks.remove(&id);
            report.removed.push(id);
        }
        Ok(report)
    }
}

/// A page of a task's output with the task's info, as `poll` answers.
fn poll_response(entry: &TaskEntry, page: crate::output::Page) -> PollResponse {
    PollResponse {
        info: entry.info(),
        cursor: page.cursor,
        next_cursor: page.next_cursor,
        omitted_bytes: page.omitted,
        eof: page.eof,
        data: page.data,
        spans: page.spans,
        timed_out: false,
    }
}
