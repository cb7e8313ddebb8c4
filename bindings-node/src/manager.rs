//! [`NativeTaskManager`]: the core [`TaskManager`] behind the JS wrapper's
//! `TaskManager`. Every method converts its arguments, calls the core, and
//! converts the answer; lifecycle rules, key names and terminal sizes (PTY
//! mode) stay in the core. Waiting calls return
//! Promises run on napi-rs's tokio runtime (the runtime the manager's tasks run
//! on too) and accept a [`WaitHandle`] that aborts the wait, since a Promise
//! itself cannot be cancelled.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use agent_tasks::{
    CancelReason, Key, ListFilter, ManagerOptions, TaskInfo, TaskManager, TaskOptions,
};
use napi::bindgen_prelude::{Buffer, Either, Object, PromiseRaw, ToNapiValue};
use napi::Env;
use napi_derive::napi;
use tokio_util::sync::CancellationToken;

use crate::context::{js_task, TaskFn};
use crate::errors::{aborted, invalid, shut_down, CoreResultExt};
use crate::events::{EventCallback, NativeEventListener, NativeEventStream};
use crate::options::CoreOptions;
use crate::values::{Js, Poll, Preview};

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

/// Runs `fut` as a Promise, unless `wait` is aborted first (then it
/// rejects with code `ABORTED`).
fn waiting<'env, T: ToNapiValue + Send + 'static>(
    env: &'env Env,
    wait: Option<&WaitHandle>,
    fut: impl Future<Output = napi::Result<T>> + Send + 'static,
) -> napi::Result<PromiseRaw<'env, T>> {
    let token = wait.map(|w| w.token.clone());
    env.spawn_future(async move {
        match token {
            None => fut.await,
            Some(token) => tokio::select! {
                biased;
                _ = token.cancelled() => Err(aborted()),
                result = fut => result,
            },
        }
    })
}

/// A `timeoutMs` option: absent or `Infinity` (the wrapper's null) waits
/// without limit.
fn timeout(ms: Option<f64>) -> napi::Result<Option<Duration>> {
    agent_tasks::timeout_from_millis("timeoutMs", ms).js()
}

/// A count the wrapper has checked (a non-negative safe integer), or `default`.
fn count(name: &str, n: Option<i64>, default: usize) -> napi::Result<usize> {
    n.map_or(Ok(default), |n| {
        usize::try_from(n).map_err(|_| invalid(name, format!("expected a count, got {n}")))
    })
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
    #[napi(constructor, ts_args_type = "options?: object")]
    pub fn new(options: Option<Object>) -> napi::Result<Self> {
        let config = ManagerOptions::read("manager", options)?.config().js()?;
        let runtime =
            napi::bindgen_prelude::within_runtime_if_available(tokio::runtime::Handle::current);
        let manager = TaskManager::with_runtime(config, runtime.clone()).js()?;
        Ok(NativeTaskManager {
            root: manager.root().to_string_lossy().into_owned(),
            manager: Arc::new(RwLock::new(Some(manager))),
            runtime,
        })
    }

    /// The core manager, for the verbs defined in other files too.
    pub(crate) fn manager(&self) -> napi::Result<TaskManager> {
        open(&self.manager)
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

    /// `TaskManager.run`; `stdin` is written at the start.
    #[napi(
        ts_args_type = "command: string | Array<string>, options?: object, stdin?: string | Buffer",
        ts_return_type = "TaskInfo"
    )]
    pub fn run(
        &self,
        command: Either<String, Vec<String>>,
        options: Option<Object>,
        stdin: Option<Either<String, Buffer>>,
    ) -> napi::Result<Js<TaskInfo>> {
        let manager = self.manager()?;
        // The core checks the command (not empty).
        let task = match command {
            Either::A(line) => agent_tasks::shell_command("command", line),
            Either::B(argv) => agent_tasks::argv_command("command", argv),
        }
        .js()?;
        let o = TaskOptions::read("run", options)?;
        let mut task = o.process(task).js()?;
        match stdin {
            Some(Either::A(text)) => task = task.stdin_bytes(text.into_bytes()),
            Some(Either::B(data)) => task = task.stdin_bytes(data.to_vec()),
            None => {}
        }
        Ok(Js(manager
            .spawn(task, o.spawn_options().js()?)
            .js()?
            .info()))
    }

    /// Starts a JS function as a task. `func(ctx)` is called once, on the
    /// JS thread, and must return a Promise of a `TaskFnOutcome` (the
    /// wrapper makes it so). `description` is used unless the options give one.
    #[napi(
        ts_args_type = "func: (ctx: NativeTaskContext) => Promise<TaskFnOutcome>, description: string, options?: object",
        ts_return_type = "TaskInfo"
    )]
    pub fn spawn(
        &self,
        func: TaskFn,
        description: String,
        options: Option<Object>,
    ) -> napi::Result<Js<TaskInfo>> {
        let manager = self.manager()?;
        let mut o = TaskOptions::read("spawn", options)?;
        let description = o.description.take().unwrap_or(description);
        let task = js_task(description, o.kind.take(), func);
        Ok(Js(manager
            .spawn_boxed(task, o.spawn_options().js()?)
            .js()?
            .info()))
    }

    /// `TaskManager.info`.
    #[napi(ts_return_type = "TaskInfo")]
    pub fn info(&self, id: String) -> napi::Result<Js<TaskInfo>> {
        Ok(Js(self.manager()?.info(&id).js()?))
    }

    /// `TaskManager.detach`.
    #[napi(ts_return_type = "TaskInfo")]
    pub fn detach(&self, id: String) -> napi::Result<Js<TaskInfo>> {
        Ok(Js(self.manager()?.detach(&id).js()?))
    }

    /// `TaskManager.poll`, its options as numbers (no object to read: the
    /// hot path).
    #[napi(ts_return_type = "PollResponse")]
    pub fn poll(
        &self,
        id: String,
        cursor: Option<i64>,
        max_bytes: Option<i64>,
    ) -> napi::Result<Poll> {
        let cursor = count("cursor", cursor, 0)? as u64;
        let max_bytes = count("maxBytes", max_bytes, agent_tasks::DEFAULT_POLL_BYTES)?;
        Ok(Poll(self.manager()?.poll(&id, cursor, max_bytes).js()?))
    }

    /// `TaskManager.preview`.
    #[napi(ts_return_type = "Preview")]
    pub fn preview(
        &self,
        id: String,
        head_bytes: Option<i64>,
        tail_bytes: Option<i64>,
    ) -> napi::Result<Preview> {
        let head = count("headBytes", head_bytes, agent_tasks::DEFAULT_PREVIEW_BYTES)?;
        let tail = count("tailBytes", tail_bytes, agent_tasks::DEFAULT_PREVIEW_BYTES)?;
        Ok(Preview(self.manager()?.preview(&id, head, tail).js()?))
    }

    /// Waits until output past `cursor` exists or the task has ended, then
    /// answers as `poll` does: what the wrapper's output streams read.
    #[napi(ts_return_type = "Promise<PollResponse>")]
    pub fn wait_output<'env>(
        &self,
        env: &'env Env,
        id: String,
        cursor: i64,
        max_bytes: Option<i64>,
        wait: Option<&WaitHandle>,
    ) -> napi::Result<PromiseRaw<'env, Poll>> {
        let manager = self.manager()?;
        let cursor = count("cursor", Some(cursor), 0)? as u64;
        let max_bytes = count("maxBytes", max_bytes, agent_tasks::DEFAULT_POLL_BYTES)?;
        waiting(env, wait, async move {
            Ok(Poll(
                manager.poll_wait(&id, cursor, max_bytes, None).await.js()?,
            ))
        })
    }

    /// `TaskManager.collect` (and `result`).
    #[napi(ts_return_type = "Promise<CollectOutcome>")]
    pub fn collect<'env>(
        &self,
        env: &'env Env,
        id: String,
        timeout_ms: Option<f64>,
        wait: Option<&WaitHandle>,
    ) -> napi::Result<PromiseRaw<'env, Js<agent_tasks::CollectOutcome>>> {
        let manager = self.manager()?;
        let timeout = timeout(timeout_ms)?;
        waiting(env, wait, async move {
            Ok(Js(manager.collect(&id, timeout).await.js()?))
        })
    }

    /// `TaskManager.cancel`.
    #[napi(ts_return_type = "Promise<TaskInfo>")]
    pub fn cancel<'env>(
        &self,
        env: &'env Env,
        id: String,
        reason: Option<String>,
        wait: Option<&WaitHandle>,
    ) -> napi::Result<PromiseRaw<'env, Js<TaskInfo>>> {
        let manager = self.manager()?;
        let reason = CancelReason::user(reason.unwrap_or_default());
        waiting(env, wait, async move {
            Ok(Js(manager.cancel(&id, reason).await.js()?))
        })
    }

    /// `TaskManager.waitFor`; the core parses `until`.
    #[napi(ts_return_type = "Promise<WaitOutcome>")]
    pub fn wait_for<'env>(
        &self,
        env: &'env Env,
        id: String,
        until: String,
        timeout_ms: Option<f64>,
        cursor: Option<i64>,
        wait: Option<&WaitHandle>,
    ) -> napi::Result<PromiseRaw<'env, Js<agent_tasks::WaitOutcome>>> {
        let manager = self.manager()?;
        let timeout = timeout(timeout_ms)?;
        let cursor = count("cursor", cursor, 0)? as u64;
        let until = agent_tasks::WaitUntil::parse(&until, cursor).js()?;
        waiting(env, wait, async move {
            Ok(Js(manager.wait_for(&id, until, timeout).await.js()?))
        })
    }

    /// `TaskManager.pause`.
    #[napi(ts_return_type = "Promise<TaskInfo>")]
    pub fn pause<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, Js<TaskInfo>>> {
        let manager = self.manager()?;
        env.spawn_future(async move { Ok(Js(manager.pause(&id).await.js()?)) })
    }

    /// `TaskManager.resume`.
    #[napi(ts_return_type = "Promise<TaskInfo>")]
    pub fn resume<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, Js<TaskInfo>>> {
        let manager = self.manager()?;
        env.spawn_future(async move { Ok(Js(manager.resume(&id).await.js()?)) })
    }

    /// `TaskManager.waitForeground`.
    #[napi(ts_return_type = "Promise<ForegroundOutcome>")]
    pub fn wait_foreground<'env>(
        &self,
        env: &'env Env,
        id: String,
        wait: Option<&WaitHandle>,
    ) -> napi::Result<PromiseRaw<'env, Js<agent_tasks::ForegroundOutcome>>> {
        let manager = self.manager()?;
        waiting(env, wait, async move {
            Ok(Js(manager.wait_foreground(&id).await.js()?))
        })
    }

    /// `TaskManager.send`: a message, the end of input, or both (the core's
    /// rule: one of them at least).
    #[napi]
    pub fn send(
        &self,
        id: String,
        message: Option<Either<String, Buffer>>,
        eof: Option<bool>,
    ) -> napi::Result<()> {
        let bytes = message.map(|message| match message {
            Either::A(text) => text.into_bytes(),
            Either::B(data) => data.to_vec(),
        });
        let manager = self.manager()?;
        for message in agent_tasks::Message::input(bytes, eof.unwrap_or(false)).js()? {
            manager.send(&id, message).js()?;
        }
        Ok(())
    }

    /// Types keys by name (`enter`, `tab`, `escape`, `up`, `ctrl+c`, …)
    /// into a task's input, mostly a PTY task's terminal.
    #[napi]
    pub fn send_keys(&self, id: String, keys: Vec<String>) -> napi::Result<()> {
        let keys = Key::parse_all(&keys).js()?;
        self.manager()?.send_keys(&id, &keys).js()
    }

    /// Resizes a PTY task's terminal (the program gets SIGWINCH).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn resize<'env>(
        &self,
        env: &'env Env,
        id: String,
        cols: i64,
        rows: i64,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let size = |name, n: i64| u64::try_from(n).map_err(|_| invalid(name, "must be positive"));
        let (cols, rows) =
            agent_tasks::terminal_size(size("cols", cols)?, size("rows", rows)?).js()?;
        let manager = self.manager()?;
        env.spawn_future(async move { manager.resize(&id, cols, rows).await.js() })
    }

    /// `TaskManager.list`.
    #[napi(ts_return_type = "TaskInfo[]")]
    pub fn list(
        &self,
        owner: Option<String>,
        statuses: Option<Vec<String>>,
        active_only: Option<bool>,
    ) -> napi::Result<Js<Vec<TaskInfo>>> {
        let statuses = statuses.map(|names| {
            let parse = |n: &String| agent_tasks::parse_name("statuses", n);
            names
                .iter()
                .map(parse)
                .collect::<agent_tasks::Result<Vec<_>>>()
        });
        let filter = ListFilter {
            owner,
            statuses: statuses.transpose().js()?,
            active_only: active_only.unwrap_or(false),
        };
        Ok(Js(self.manager()?.list(&filter)))
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

    /// `TaskManager.roster`.
    #[napi(ts_return_type = "Roster")]
    pub fn roster(
        &self,
        owner: String,
        budget: Option<i64>,
    ) -> napi::Result<Js<agent_tasks::Roster>> {
        let budget = count("budget", budget, agent_tasks::DEFAULT_ROSTER_BUDGET)?;
        Ok(Js(self.manager()?.roster(&owner, budget)))
    }

    /// `TaskManager.notifications`.
    #[napi(ts_return_type = "Notification[]")]
    pub fn notifications(
        &self,
        owner: Option<String>,
    ) -> napi::Result<Js<Vec<agent_tasks::Notification>>> {
        Ok(Js(self.manager()?.notifications(owner.as_deref())))
    }

    /// `TaskManager.ack`.
    #[napi]
    pub fn ack(&self, ids: Vec<String>) -> napi::Result<u32> {
        let removed = self.manager()?.ack(&ids).js()?;
        Ok(u32::try_from(removed).unwrap_or(u32::MAX))
    }

    /// `TaskManager.closeOwner`.
    #[napi(ts_return_type = "Promise<TaskInfo[]>")]
    pub fn close_owner<'env>(
        &self,
        env: &'env Env,
        owner: String,
        reason: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, Js<Vec<TaskInfo>>>> {
        let manager = self.manager()?;
        let reason = reason.unwrap_or_default();
        env.spawn_future(async move { Ok(Js(manager.close_owner(&owner, reason).await)) })
    }

    /// `TaskManager.killOrphan`.
    #[napi(ts_return_type = "TaskInfo")]
    pub fn kill_orphan(&self, id: String) -> napi::Result<Js<TaskInfo>> {
        Ok(Js(self.manager()?.kill_orphan(&id).js()?))
    }

    /// `TaskManager.gc`.
    #[napi(ts_return_type = "GcReport")]
    pub fn gc(
        &self,
        max_age_ms: Option<f64>,
        max_count: Option<i64>,
    ) -> napi::Result<Js<agent_tasks::GcReport>> {
        let max_age = max_age_ms.map(|ms| agent_tasks::duration_from_millis("maxAgeMs", ms));
        let max_count = max_count
            .map(|n| count("maxCount", Some(n), 0))
            .transpose()?;
        Ok(Js(self
            .manager()?
            .gc(max_age.transpose().js()?, max_count)
            .js()?))
    }

    /// `TaskManager.close`: the core's `shutdown`; reads go on answering.
    /// Closing again does nothing more.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(
        &self,
        env: &'env Env,
        reason: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let manager = self.manager().ok();
        env.spawn_future(async move {
            if let Some(manager) = manager {
                manager
                    .shutdown(reason.unwrap_or_else(|| agent_tasks::DEFAULT_SHUTDOWN_REASON.into()))
                    .await;
            }
            Ok(())
        })
    }

    /// Kills, now and synchronously, the processes of every running task
    /// (the core's `kill_processes_now`: no process starts afterwards, and
    /// spawns under way are waited for, 500 ms at most). For the wrapper's
    /// exit hooks (`process.exit`, an uncaught exception, SIGINT/SIGTERM),
    /// where nothing asynchronous runs any more. Returns how many tasks had
    /// processes to kill. Keep-alive tasks are killed too: the host is
    /// exiting.
    #[napi]
    pub fn kill_processes_sync(&self) -> u32 {
        let Ok(manager) = self.manager() else {
            return 0;
        };
        manager.kill_processes_now(Duration::from_millis(500)) as u32
    }

    /// Drops this handle's manager (the wrapper's exit hooks, after
    /// `killProcessesSync`), and removes its temporary root now: the tasks
    /// just killed get a moment (2 s at most) to record their ends first
    /// (the core's `remove_temporary_root_now`), as Node exits right after.
    /// Every later call answers `SHUT_DOWN`.
    #[napi]
    pub fn release(&self) {
        let manager = self
            .manager
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(manager) = &manager {
            manager.remove_temporary_root_now(Duration::from_secs(2));
        }
        drop(manager);
    }

    /// True while a process task runs or the manager's private temporary
    /// root (no `root` was given) is on disk: the wrapper's signal hooks
    /// stay installed while one is, so a fatal signal kills it or removes it.
    #[napi]
    pub fn needs_exit_hooks(&self) -> bool {
        self.manager().is_ok_and(|m| {
            m.has_temporary_root()
                || m.list(&ListFilter::default().active())
                    .iter()
                    .any(|i| i.kind == "process" && !i.status.is_terminal())
        })
    }
}
