//! [`NativeTaskManager`]: the core [`TaskManager`] behind the JS wrapper's
//! `TaskManager`. Every method converts its arguments, calls the core, and
//! converts the answer; lifecycle rules stay in the core. Waiting calls return
//! Promises run on napi-rs's tokio runtime (the runtime the manager's tasks run
//! on too) and accept a [`WaitHandle`] that aborts the wait, since a Promise
//! itself cannot be cancelled.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use agent_tasks::inspect::KillOutcome;
use agent_tasks::{
    CancelReason, ListFilter as CoreListFilter, ManagerConfig, SpawnOptions as CoreSpawnOptions,
    TaskManager,
};
use napi::bindgen_prelude::{Buffer, Either, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

use crate::context::{js_task, TaskFn};
use crate::conversion::{
    bytes, finite_millis, millis, on_timeout, size, CollectOutcome, ForegroundOutcome, GcReport,
    Notification, PollResponse, Preview, Roster, TaskInfo, WaitOutcome,
};
use crate::errors::{aborted, shut_down, CoreResultExt};
use crate::events::{EventCallback, NativeEventListener, NativeEventStream};

/// Settings of a manager (all optional; the core's defaults otherwise).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct ManagerOptions {
    /// Folder for task folders (default: a private temporary folder, removed
    /// when the manager is closed or collected).
    pub root: Option<String>,
    /// Bytes of output a foreground task keeps in memory before it spills
    /// (default 1 MiB).
    pub memory_limit: Option<f64>,
    /// Bytes of output one task may write to its log (default 256 MiB).
    pub disk_limit: Option<f64>,
    /// Bytes of the latest output kept in memory after a spill (64 KiB).
    pub tail_window: Option<f64>,
    /// Default foreground timeout (60 s); null: none.
    #[napi(ts_type = "number | null")]
    pub foreground_timeout_ms: Option<f64>,
    /// Default background timeout (10 min); null: none.
    #[napi(ts_type = "number | null")]
    pub background_timeout_ms: Option<f64>,
    /// Default action of a foreground timeout (default `detach`).
    #[napi(ts_type = "OnTimeout")]
    pub on_timeout: Option<String>,
    /// Cap on background tasks running at once, over all owners.
    pub max_background: Option<u32>,
    /// Cap on background tasks running at once for any one owner.
    pub max_background_per_owner: Option<u32>,
    /// How long a function task may take to return after a stop request
    /// before the manager drops it (default 5 s).
    pub stop_grace_ms: Option<f64>,
    /// Owner of tasks spawned without one (default `default`).
    pub default_owner: Option<String>,
    /// Whether host cancels of background tasks still queue notifications.
    pub notify_host_cancels: Option<bool>,
    /// Over a background cap, wait in a FIFO queue (status `queued`) instead
    /// of failing with `CAPACITY_EXCEEDED` (default false).
    pub queue_over_capacity: Option<bool>,
}

impl ManagerOptions {
    fn into_config(self) -> napi::Result<ManagerConfig> {
        let mut c = ManagerConfig::default();
        if let Some(root) = self.root {
            c = c.root(root);
        }
        if let Some(v) = self.memory_limit {
            c = c.memory_limit(size("memoryLimit", v)?);
        }
        if let Some(v) = self.disk_limit {
            c = c.disk_limit(bytes("diskLimit", v)?);
        }
        if let Some(v) = self.tail_window {
            c = c.tail_window(size("tailWindow", v)?);
        }
        if let Some(v) = self.foreground_timeout_ms {
            c = c.foreground_timeout(millis("foregroundTimeoutMs", v)?);
        }
        if let Some(v) = self.background_timeout_ms {
            c = c.background_timeout(millis("backgroundTimeoutMs", v)?);
        }
        if let Some(v) = self.on_timeout {
            c = c.on_timeout(on_timeout("onTimeout", &v)?);
        }
        if let Some(v) = self.max_background {
            c = c.max_background(v as usize);
        }
        if let Some(v) = self.max_background_per_owner {
            c = c.max_background_per_owner(v as usize);
        }
        if let Some(v) = self.stop_grace_ms {
            c = c.stop_grace(finite_millis("stopGraceMs", v)?);
        }
        if let Some(v) = self.default_owner {
            c = c.default_owner(v);
        }
        if let Some(v) = self.queue_over_capacity {
            c = c.queue_over_capacity(v);
        }
        if let Some(v) = self.notify_host_cancels {
            c = c.notify_host_cancels(v);
        }
        Ok(c)
    }
}

/// How to run a command (`run`).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct RunOptions {
    /// Working directory (default: the host's).
    pub cwd: Option<String>,
    /// Environment variables to set.
    pub env: Option<HashMap<String, String>>,
    /// Start from an empty environment instead of the host's.
    pub env_clear: Option<bool>,
    /// Bytes (or text) written to stdin at start.
    pub stdin: Option<Either<String, Buffer>>,
    /// Keep stdin open so `send` can write to it.
    pub interactive: Option<bool>,
    /// Time between SIGTERM and SIGKILL on cancel (default 5 s).
    pub kill_grace_ms: Option<f64>,
    /// Run on a pseudo-terminal of this size: stdout and stderr are then
    /// one stream (tagged stdout), and the task always takes input (`send`
    /// types, `sendKeys` types control keys; `resize` changes the size).
    pub pty: Option<crate::pty::TerminalSize>,
    /// Start in the background (default: the foreground).
    pub background: Option<bool>,
    /// Timeout of the mode it starts in; null: none (default: the manager's).
    #[napi(ts_type = "number | null")]
    pub timeout_ms: Option<f64>,
    /// Timeout once in the background (after a detach, from the detach);
    /// null: none.
    #[napi(ts_type = "number | null")]
    pub background_timeout_ms: Option<f64>,
    /// What a foreground timeout does (default: the manager's).
    #[napi(ts_type = "OnTimeout")]
    pub on_timeout: Option<String>,
    /// Description shown in lists (default: the command line).
    pub description: Option<String>,
    /// Owner (session key); default: the manager's default owner.
    pub owner: Option<String>,
    /// Leave it running on `close` and `closeOwner`.
    pub keep_alive: Option<bool>,
    /// Record the files it creates, modifies and deletes under this folder.
    pub track_changes: Option<String>,
    /// Regexes matched against each output line; a match queues a
    /// `watch_match` notification with the line (while the task is in the
    /// background). A pattern that does not compile fails with
    /// `INVALID_ARGUMENT`.
    pub watch: Option<Vec<String>>,
    /// At most one watch notification per this many milliseconds (default
    /// 15 s); matches in between are counted in the next one.
    pub watch_interval_ms: Option<f64>,
    /// After this many watch notifications (default 8) watching stops, with
    /// one `watch_stopped` notice.
    pub watch_max: Option<u32>,
    /// A `progress` notification every this many milliseconds (at least
    /// 60,000) with the output since the last one, skipped when there is none.
    pub heartbeat_ms: Option<f64>,
    /// No output for this long gives a `task.stalled` event and (in the
    /// background) a `stalled` notification.
    pub idle_timeout_ms: Option<f64>,
    /// Also cancel the task when it stalls (it ends `timed_out`, reason
    /// `stalled`).
    pub cancel_on_stall: Option<bool>,
}

/// How to spawn a JS function as a task (`spawn`).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct SpawnOptions {
    /// The task's kind, which prefixes its id (default `fn`).
    pub kind: Option<String>,
    /// Start in the background (default: the foreground).
    pub background: Option<bool>,
    /// Timeout of the mode it starts in; null: none (default: the manager's).
    #[napi(ts_type = "number | null")]
    pub timeout_ms: Option<f64>,
    /// Timeout once in the background; null: none.
    #[napi(ts_type = "number | null")]
    pub background_timeout_ms: Option<f64>,
    /// What a foreground timeout does (default: the manager's).
    #[napi(ts_type = "OnTimeout")]
    pub on_timeout: Option<String>,
    /// Description (default: the function's name).
    pub description: Option<String>,
    /// Owner (session key); default: the manager's default owner.
    pub owner: Option<String>,
    /// Leave it running on `close` and `closeOwner`.
    pub keep_alive: Option<bool>,
    /// Record the files it creates, modifies and deletes under this folder.
    pub track_changes: Option<String>,
    /// Regexes matched against each output line; a match queues a
    /// `watch_match` notification with the line (while the task is in the
    /// background). A pattern that does not compile fails with
    /// `INVALID_ARGUMENT`.
    pub watch: Option<Vec<String>>,
    /// At most one watch notification per this many milliseconds (default
    /// 15 s); matches in between are counted in the next one.
    pub watch_interval_ms: Option<f64>,
    /// After this many watch notifications (default 8) watching stops, with
    /// one `watch_stopped` notice.
    pub watch_max: Option<u32>,
    /// A `progress` notification every this many milliseconds (at least
    /// 60,000) with the output since the last one, skipped when there is none.
    pub heartbeat_ms: Option<f64>,
    /// No output for this long gives a `task.stalled` event and (in the
    /// background) a `stalled` notification.
    pub idle_timeout_ms: Option<f64>,
    /// Also cancel the task when it stalls (it ends `timed_out`, reason
    /// `stalled`).
    pub cancel_on_stall: Option<bool>,
}

/// The options `run` and `spawn` share.
struct Common {
    background: Option<bool>,
    timeout_ms: Option<f64>,
    background_timeout_ms: Option<f64>,
    on_timeout: Option<String>,
    description: Option<String>,
    owner: Option<String>,
    keep_alive: Option<bool>,
    track_changes: Option<String>,
    watch: Option<Vec<String>>,
    watch_interval_ms: Option<f64>,
    watch_max: Option<u32>,
    heartbeat_ms: Option<f64>,
    idle_timeout_ms: Option<f64>,
    cancel_on_stall: Option<bool>,
}

impl Common {
    fn into_options(self) -> napi::Result<CoreSpawnOptions> {
        let background = self.background.unwrap_or(false);
        let mut o = if background {
            CoreSpawnOptions::background()
        } else {
            CoreSpawnOptions::foreground()
        };
        if let Some(v) = self.timeout_ms {
            o = match millis("timeoutMs", v)? {
                Some(d) => o.timeout(d),
                None => o.no_timeout(),
            };
        }
        if let Some(v) = self.background_timeout_ms {
            o = o.background_timeout(millis("backgroundTimeoutMs", v)?);
        }
        if let Some(v) = self.on_timeout {
            o = o.on_timeout(on_timeout("onTimeout", &v)?);
        }
        if let Some(v) = self.description {
            o = o.description(v);
        }
        if let Some(v) = self.owner {
            o = o.owner(v);
        }
        if let Some(v) = self.keep_alive {
            o = o.keep_alive(v);
        }
        if let Some(v) = self.track_changes {
            o = o.track_changes(v);
        }
        // The core checks the values (a regex that does not compile, a
        // heartbeat under 60 s, a zero idle timeout).
        if let Some(patterns) = self.watch {
            o = o.watch(patterns);
        }
        if let Some(v) = self.watch_interval_ms {
            o = o.watch_interval(finite_millis("watchIntervalMs", v)?);
        }
        if let Some(v) = self.watch_max {
            o = o.watch_max(v as usize);
        }
        if let Some(v) = self.heartbeat_ms {
            o = o.heartbeat(finite_millis("heartbeatMs", v)?);
        }
        if let Some(v) = self.idle_timeout_ms {
            o = o.idle_timeout(finite_millis("idleTimeoutMs", v)?);
        }
        if let Some(v) = self.cancel_on_stall {
            o = o.cancel_on_stall(v);
        }
        Ok(o)
    }
}

/// Which tasks `list` returns.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct ListFilter {
    /// Only tasks of this owner.
    pub owner: Option<String>,
    /// Only tasks in one of these statuses.
    #[napi(ts_type = "Array<TaskStatus>")]
    pub statuses: Option<Vec<String>>,
    /// Only tasks that are still running.
    pub active_only: Option<bool>,
}

/// Aborts one waiting call (`collect`, `cancel`, `waitForeground`): the
/// wrapper makes one per call that has an `AbortSignal`. Aborting a wait
/// leaves the task alone.
#[napi]
#[derive(Default)]
pub struct WaitHandle {
    token: CancellationToken,
}

#[napi]
impl WaitHandle {
    /// A handle that nothing has aborted yet.
    #[napi(constructor)]
    pub fn new() -> Self {
        WaitHandle::default()
    }

    /// Aborts the wait: its Promise rejects with code `ABORTED`.
    #[napi]
    pub fn abort(&self) {
        self.token.cancel();
    }
}

/// Runs `fut` unless `wait` is aborted first.
async fn abortable<T>(
    wait: Option<CancellationToken>,
    fut: impl Future<Output = napi::Result<T>>,
) -> napi::Result<T> {
    match wait {
        None => fut.await,
        Some(token) => tokio::select! {
            biased;
            _ = token.cancelled() => Err(aborted()),
            result = fut => result,
        },
    }
}

/// The core manager, shared with the toolboxes made on it. `close` shuts it
/// down and keeps it (reads are answered after a shutdown, as in the core);
/// only `release` (the wrapper's exit hook) takes it, and every call answers
/// `SHUT_DOWN` from then on.
pub(crate) type SharedManager = Arc<RwLock<Option<TaskManager>>>;

/// The manager of `shared`, or `SHUT_DOWN` once it was released.
pub(crate) fn open(shared: &SharedManager) -> napi::Result<TaskManager> {
    shared
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or_else(shut_down)
}

/// The manager behind the JS `TaskManager`. Internal: use the wrapper.
#[napi]
pub struct NativeTaskManager {
    manager: SharedManager,
    runtime: tokio::runtime::Handle,
    root: String,
}

#[napi]
impl NativeTaskManager {
    /// Opens (or creates) a manager. Tasks of an earlier run under the same
    /// root are loaded: running ones become `lost` (or orphaned).
    #[napi(constructor)]
    pub fn new(options: Option<ManagerOptions>) -> napi::Result<Self> {
        let config = options.unwrap_or_default().into_config()?;
        let runtime =
            napi::bindgen_prelude::within_runtime_if_available(tokio::runtime::Handle::current);
        let manager = TaskManager::with_runtime(config, runtime.clone()).js()?;
        Ok(NativeTaskManager {
            root: manager.root().to_string_lossy().into_owned(),
            manager: Arc::new(RwLock::new(Some(manager))),
            runtime,
        })
    }

    fn manager(&self) -> napi::Result<TaskManager> {
        open(&self.manager)
    }

    /// The core manager, for the verbs defined in other files.
    pub(crate) fn core(&self) -> napi::Result<TaskManager> {
        self.manager()
    }

    /// The shared manager slot, for a toolbox.
    pub(crate) fn shared(&self) -> SharedManager {
        self.manager.clone()
    }

    /// The root folder; task folders are `<root>/tasks/<id>`.
    #[napi(getter)]
    pub fn root(&self) -> String {
        self.root.clone()
    }

    /// Task folders or notifications found at open that could not be read.
    #[napi]
    pub fn load_problems(&self) -> napi::Result<Vec<String>> {
        Ok(self.manager()?.load_problems().to_vec())
    }

    /// Starts a command: a shell string (`sh -c`) or an argv array.
    #[napi]
    pub fn run(
        &self,
        command: Either<String, Vec<String>>,
        options: Option<RunOptions>,
    ) -> napi::Result<TaskInfo> {
        let manager = self.manager()?;
        let o = options.unwrap_or_default();
        // The core checks the command (not empty).
        let mut task = match command {
            Either::A(line) => agent_tasks::shell_command("command", line),
            Either::B(argv) => agent_tasks::argv_command("command", argv),
        }
        .js()?;
        if let Some(cwd) = o.cwd {
            task = task.cwd(cwd);
        }
        if o.env_clear.unwrap_or(false) {
            task = task.env_clear();
        }
        for (key, value) in o.env.unwrap_or_default() {
            task = task.env(key, value);
        }
        match o.stdin {
            Some(Either::A(text)) => task = task.stdin_bytes(text.into_bytes()),
            Some(Either::B(data)) => task = task.stdin_bytes(data.to_vec()),
            None => {}
        }
        if let Some(v) = o.interactive {
            task = task.interactive(v);
        }
        if let Some(v) = o.kill_grace_ms {
            task = task.kill_grace(finite_millis("killGraceMs", v)?);
        }
        if let Some(size) = &o.pty {
            let (cols, rows) = size.cells()?;
            task = task.pty(cols, rows);
        }
        let options = Common {
            background: o.background,
            timeout_ms: o.timeout_ms,
            background_timeout_ms: o.background_timeout_ms,
            on_timeout: o.on_timeout,
            description: o.description,
            owner: o.owner,
            keep_alive: o.keep_alive,
            track_changes: o.track_changes,
            watch: o.watch,
            watch_interval_ms: o.watch_interval_ms,
            watch_max: o.watch_max,
            heartbeat_ms: o.heartbeat_ms,
            idle_timeout_ms: o.idle_timeout_ms,
            cancel_on_stall: o.cancel_on_stall,
        }
        .into_options()?;
        Ok(manager.spawn(task, options).js()?.info().into())
    }

    /// Starts a JS function as a task. `func(ctx)` is called once, on the JS
    /// thread, and must return a Promise of a `TaskFnOutcome` (the wrapper
    /// makes it so).
    #[napi(
        ts_args_type = "func: (ctx: NativeTaskContext) => Promise<TaskFnOutcome>, description: string, options?: SpawnOptions"
    )]
    pub fn spawn(
        &self,
        func: TaskFn,
        description: String,
        options: Option<SpawnOptions>,
    ) -> napi::Result<TaskInfo> {
        let manager = self.manager()?;
        let o = options.unwrap_or_default();
        let description = o.description.unwrap_or(description);
        let options = Common {
            background: o.background,
            timeout_ms: o.timeout_ms,
            background_timeout_ms: o.background_timeout_ms,
            on_timeout: o.on_timeout,
            description: None,
            owner: o.owner,
            keep_alive: o.keep_alive,
            track_changes: o.track_changes,
            watch: o.watch,
            watch_interval_ms: o.watch_interval_ms,
            watch_max: o.watch_max,
            heartbeat_ms: o.heartbeat_ms,
            idle_timeout_ms: o.idle_timeout_ms,
            cancel_on_stall: o.cancel_on_stall,
        }
        .into_options()?;
        let task = js_task(description, o.kind, func);
        Ok(manager.spawn_boxed(task, options).js()?.info().into())
    }

    /// The task's info now.
    #[napi]
    pub fn info(&self, id: String) -> napi::Result<TaskInfo> {
        Ok(self.manager()?.info(&id).js()?.into())
    }

    /// Moves a running foreground task to the background without losing a
    /// byte; a background or ended task's info is returned unchanged.
    #[napi]
    pub fn detach(&self, id: String) -> napi::Result<TaskInfo> {
        Ok(self.manager()?.detach(&id).js()?.into())
    }

    /// Non-blocking: the info and up to `maxBytes` (default 64 KiB, at most
    /// 16 MiB) of output written since `cursor` (default 0).
    #[napi]
    pub fn poll(
        &self,
        id: String,
        cursor: Option<f64>,
        max_bytes: Option<f64>,
    ) -> napi::Result<PollResponse> {
        let cursor = match cursor {
            Some(c) => bytes("cursor", c)?,
            None => 0,
        };
        let max_bytes = match max_bytes {
            Some(m) => size("maxBytes", m)?,
            None => agent_tasks::DEFAULT_POLL_BYTES,
        };
        Ok(self.manager()?.poll(&id, cursor, max_bytes).js()?.into())
    }

    /// The first `headBytes` and last `tailBytes` of the output (default 4 KiB
    /// each).
    #[napi]
    pub fn preview(
        &self,
        id: String,
        head_bytes: Option<f64>,
        tail_bytes: Option<f64>,
    ) -> napi::Result<Preview> {
        let head = match head_bytes {
            Some(v) => size("headBytes", v)?,
            None => agent_tasks::DEFAULT_PREVIEW_BYTES,
        };
        let tail = match tail_bytes {
            Some(v) => size("tailBytes", v)?,
            None => agent_tasks::DEFAULT_PREVIEW_BYTES,
        };
        Ok(self.manager()?.preview(&id, head, tail).js()?.into())
    }

    /// Waits until the task ends or `timeoutMs` passes (default: no limit;
    /// 0: answer at once).
    #[napi(ts_return_type = "Promise<CollectOutcome>")]
    pub fn collect<'env>(
        &self,
        env: &'env Env,
        id: String,
        timeout_ms: Option<f64>,
        wait: Option<&WaitHandle>,
    ) -> napi::Result<PromiseRaw<'env, CollectOutcome>> {
        let manager = self.manager()?;
        let timeout = match timeout_ms {
            Some(t) => millis("timeoutMs", t)?,
            None => None,
        };
        let wait = wait.map(|w| w.token.clone());
        env.spawn_future(abortable(wait, async move {
            Ok(manager.collect(&id, timeout).await.js()?.into())
        }))
    }

    /// Stops the task (SIGTERM to its process group, SIGKILL after the grace;
    /// a JS task's signal aborts), waits until it has ended, and returns its
    /// final info. Idempotent.
    #[napi(ts_return_type = "Promise<TaskInfo>")]
    pub fn cancel<'env>(
        &self,
        env: &'env Env,
        id: String,
        reason: Option<String>,
        wait: Option<&WaitHandle>,
    ) -> napi::Result<PromiseRaw<'env, TaskInfo>> {
        let manager = self.manager()?;
        let reason = CancelReason::user(reason.unwrap_or_default());
        let wait = wait.map(|w| w.token.clone());
        env.spawn_future(abortable(wait, async move {
            Ok(manager.cancel(&id, reason).await.js()?.into())
        }))
    }

    /// Waits until `until` holds (a regex over output lines from `cursor`,
    /// `port:N`, or `end`; parsed by the core), the task ends, or
    /// `timeoutMs` passes (default: no limit).
    #[napi(ts_return_type = "Promise<WaitOutcome>")]
    pub fn wait_for<'env>(
        &self,
        env: &'env Env,
        id: String,
        until: String,
        timeout_ms: Option<f64>,
        cursor: Option<f64>,
        wait: Option<&WaitHandle>,
    ) -> napi::Result<PromiseRaw<'env, WaitOutcome>> {
        let manager = self.manager()?;
        let timeout = match timeout_ms {
            Some(t) => millis("timeoutMs", t)?,
            None => None,
        };
        let cursor = match cursor {
            Some(c) => bytes("cursor", c)?,
            None => 0,
        };
        let until = agent_tasks::WaitUntil::parse(&until, cursor).js()?;
        let wait = wait.map(|w| w.token.clone());
        env.spawn_future(abortable(wait, async move {
            Ok(manager.wait_for(&id, until, timeout).await.js()?.into())
        }))
    }

    /// Pauses a process task (SIGSTOP to every process of it); its
    /// timeouts wait while paused. Returns its info.
    #[napi(ts_return_type = "Promise<TaskInfo>")]
    pub fn pause<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, TaskInfo>> {
        let manager = self.manager()?;
        env.spawn_future(async move { Ok(manager.pause(&id).await.js()?.into()) })
    }

    /// Resumes a paused task (SIGCONT). Returns its info.
    #[napi(ts_return_type = "Promise<TaskInfo>")]
    pub fn resume<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, TaskInfo>> {
        let manager = self.manager()?;
        env.spawn_future(async move { Ok(manager.resume(&id).await.js()?.into()) })
    }

    /// Waits until a foreground task ends (`finished`) or is moved to the
    /// background (`detached`). For a task already in the background this
    /// answers `detached` at once, or `finished` if it has ended.
    #[napi(ts_return_type = "Promise<ForegroundOutcome>")]
    pub fn wait_foreground<'env>(
        &self,
        env: &'env Env,
        id: String,
        wait: Option<&WaitHandle>,
    ) -> napi::Result<PromiseRaw<'env, ForegroundOutcome>> {
        let manager = self.manager()?;
        let wait = wait.map(|w| w.token.clone());
        env.spawn_future(abortable(wait, async move {
            Ok(manager.wait_foreground(&id).await.js()?.into())
        }))
    }

    /// Sends a steering message: to a JS task's `ctx.recv()`, or to an
    /// interactive process's stdin.
    #[napi]
    pub fn send(&self, id: String, message: Either<String, Buffer>) -> napi::Result<()> {
        let message = match message {
            Either::A(text) => text.into_bytes(),
            Either::B(data) => data.to_vec(),
        };
        self.manager()?.send(&id, message).js()
    }

    /// Tasks matching `filter`, oldest first. Foreground tasks that ended
    /// without being detached are not listed.
    #[napi]
    pub fn list(&self, filter: Option<ListFilter>) -> napi::Result<Vec<TaskInfo>> {
        let f = filter.unwrap_or_default();
        let filter = CoreListFilter {
            owner: f.owner,
            statuses: f
                .statuses
                .map(|names| {
                    names
                        .iter()
                        .map(|n| agent_tasks::parse_name::<agent_tasks::TaskStatus>("statuses", n))
                        .collect::<agent_tasks::Result<Vec<_>>>()
                })
                .transpose()
                .js()?,
            active_only: f.active_only.unwrap_or(false),
        };
        Ok(self
            .manager()?
            .list(&filter)
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// A pull stream of events from now on.
    #[napi]
    pub fn subscribe(&self) -> napi::Result<NativeEventStream> {
        Ok(NativeEventStream::new(self.manager()?.subscribe()))
    }

    /// Calls `callback` with every event from now on, until closed; never
    /// keeps Node alive.
    #[napi(ts_args_type = "callback: (item: EventItem) => void")]
    pub fn on_event(&self, callback: EventCallback) -> napi::Result<NativeEventListener> {
        let subscription = self.manager()?.subscribe();
        Ok(NativeEventListener::start(
            &self.runtime,
            subscription,
            callback,
        ))
    }

    /// The owner's open background work: a short text for the model within
    /// `budget` bytes (the core's default when absent) and the items.
    #[napi]
    pub fn roster(&self, owner: String, budget: Option<u32>) -> napi::Result<Roster> {
        let budget = budget.map_or(agent_tasks::DEFAULT_ROSTER_BUDGET, |b| b as usize);
        Ok(self.manager()?.roster(&owner, budget).into())
    }

    /// Pending notifications, oldest first: of one owner, or of all.
    #[napi]
    pub fn notifications(&self, owner: Option<String>) -> napi::Result<Vec<Notification>> {
        Ok(self
            .manager()?
            .notifications(owner.as_deref())
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Marks notifications delivered; they never come back. Returns how many
    /// were removed.
    #[napi]
    pub fn ack(&self, ids: Vec<String>) -> napi::Result<u32> {
        let removed = self.manager()?.ack(&ids).js()?;
        Ok(u32::try_from(removed).unwrap_or(u32::MAX))
    }

    /// Cancels the running tasks of `owner` except keep-alive ones, waits
    /// until they have ended, and returns their infos.
    #[napi(ts_return_type = "Promise<TaskInfo[]>")]
    pub fn close_owner<'env>(
        &self,
        env: &'env Env,
        owner: String,
        reason: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, Vec<TaskInfo>>> {
        let manager = self.manager()?;
        env.spawn_future(async move {
            let infos = manager
                .close_owner(&owner, reason.unwrap_or_default())
                .await;
            Ok(infos.into_iter().map(Into::into).collect::<Vec<TaskInfo>>())
        })
    }

    /// Kills the still-running process of a task found orphaned at open.
    #[napi]
    pub fn kill_orphan(&self, id: String) -> napi::Result<TaskInfo> {
        Ok(self.manager()?.kill_orphan(&id).js()?.into())
    }

    /// Removes ended tasks (and their folders) that ended more than
    /// `maxAgeMs` ago, and the oldest beyond the newest `maxCount`.
    #[napi]
    pub fn gc(&self, max_age_ms: Option<f64>, max_count: Option<u32>) -> napi::Result<GcReport> {
        let max_age = match max_age_ms {
            Some(ms) => Some(finite_millis("maxAgeMs", ms)?),
            None => None,
        };
        let report = self
            .manager()?
            .gc(max_age, max_count.map(|n| n as usize))
            .js()?;
        Ok(GcReport {
            removed: report.removed.iter().map(|id| id.to_string()).collect(),
        })
    }

    /// Cancels every task except keep-alive ones and waits until they have
    /// ended; new tasks are refused (`SHUT_DOWN`) from then on, while reads
    /// (`info`, `poll`, `collect`, `list`, …) go on answering, as the core's
    /// `shutdown` does. With nothing left running the root is released (a
    /// temporary root is removed when the manager is garbage-collected or
    /// released at exit). Closing again does nothing more.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(
        &self,
        env: &'env Env,
        reason: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let manager = self
            .manager
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        env.spawn_future(async move {
            if let Some(manager) = manager {
                manager
                    .shutdown(reason.unwrap_or_else(|| "the task manager was closed".into()))
                    .await;
            }
            Ok(())
        })
    }

    /// Kills, now and synchronously, the processes of every running process
    /// task (SIGKILL to the process group, the task's cgroup and the
    /// processes carrying its marker, through the core's
    /// `inspect::kill_task_processes` without a grace). For the wrapper's
    /// exit hooks (`process.exit`, an uncaught exception, SIGINT/SIGTERM),
    /// where nothing asynchronous runs any more. A task just started may not
    /// have its process yet (the runtime's threads spawn it): it is waited
    /// for, 500 ms at most. Returns how many tasks had a process to kill.
    /// Keep-alive tasks are killed too: the host is exiting.
    #[napi]
    pub fn kill_processes_sync(&self) -> u32 {
        let Ok(manager) = self.manager() else {
            return 0;
        };
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut done = HashSet::new();
        let mut killed = 0;
        loop {
            let mut unstarted = false;
            for info in running_processes(&manager) {
                let Some(pid) = info.pid else {
                    unstarted |= info.status == agent_tasks::TaskStatus::Running;
                    continue;
                };
                if !done.insert(info.id.to_string()) {
                    continue;
                }
                // The check `kill_task_processes` makes against pid reuse:
                // the task's process is this host's child, so its start time
                // now is its start time.
                let Some(start) = process_start_time(pid) else {
                    // Its first process has exited, but the task still runs:
                    // what it started may hold its output open. Its process
                    // group id cannot be reused while a member lives.
                    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    continue;
                };
                let outcome =
                    agent_tasks::inspect::kill_task_processes(&info, Some(start), Duration::ZERO);
                if matches!(outcome, Ok(KillOutcome::Killed | KillOutcome::Terminated)) {
                    killed += 1;
                }
            }
            if !unstarted || Instant::now() >= deadline {
                return killed;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// How many process tasks are running: the wrapper keeps its signal
    /// listeners installed while some are.
    #[napi]
    pub fn running_process_count(&self) -> u32 {
        self.manager()
            .map_or(0, |m| running_processes(&m).len() as u32)
    }

    /// Drops this handle's manager (the wrapper's exit hook, after
    /// `killProcessesSync`): a temporary root goes with it once no task holds
    /// it. Every later call answers `SHUT_DOWN`.
    #[napi]
    pub fn release(&self) {
        let manager = self
            .manager
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(manager);
    }
}

/// The running process tasks of `manager` (a pid once their process runs).
fn running_processes(manager: &TaskManager) -> Vec<agent_tasks::TaskInfo> {
    manager
        .list(&CoreListFilter::default().active())
        .into_iter()
        .filter(|i| i.kind == "process" && !i.status.is_terminal())
        .collect()
}

/// Field 22 of `/proc/<pid>/stat` (start time in ticks since boot), as the
/// core records it; `None` if the process is gone or is a zombie.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it start after its last `)`.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split(' ');
    // `rest` starts at field 3 (state); field 22 is the 20th from there.
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}
