//! [`NativeTaskManager`]: the core [`TaskManager`] behind the JS wrapper's
//! `TaskManager`. Every method converts its arguments, calls the core, and
//! converts the answer; lifecycle rules stay in the core. Waiting calls return
//! Promises run on napi-rs's tokio runtime (the runtime the manager's tasks run
//! on too) and accept a [`WaitHandle`] that aborts the wait, since a Promise
//! itself cannot be cancelled.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use agent_tasks::{CancelReason, ListFilter as CoreListFilter, TaskInfo, TaskManager};
use napi::bindgen_prelude::{Buffer, Either, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use tokio_util::sync::CancellationToken;

use crate::args::{bytes, finite_millis, millis, size};
use crate::context::{js_task, TaskFn};
use crate::errors::{aborted, shut_down, CoreResultExt};
use crate::events::{EventCallback, NativeEventListener, NativeEventStream};
use crate::options::{ListFilter, ManagerOptions, ProcessOptions, TaskOptions};
use crate::values::{Js, Outcome, Poll, Preview};

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
    #[napi(ts_return_type = "TaskInfo")]
    pub fn run(
        &self,
        command: Either<String, Vec<String>>,
        process: Option<ProcessOptions>,
        options: Option<TaskOptions>,
    ) -> napi::Result<Js<TaskInfo>> {
        let manager = self.manager()?;
        // The core checks the command (not empty).
        let task = match command {
            Either::A(line) => agent_tasks::shell_command("command", line),
            Either::B(argv) => agent_tasks::argv_command("command", argv),
        }
        .js()?;
        let task = process.unwrap_or_default().apply(task)?;
        let options = options.unwrap_or_default().into_options()?;
        Ok(Js(manager.spawn(task, options).js()?.info()))
    }

    /// Starts a JS function as a task of `kind` (default `fn`). `func(ctx)`
    /// is called once, on the JS thread, and must return a Promise of a
    /// `TaskFnOutcome` (the wrapper makes it so). `description` is used
    /// unless the options give one.
    #[napi(
        ts_args_type = "func: (ctx: NativeTaskContext) => Promise<TaskFnOutcome>, description: string, kind?: string | undefined | null, options?: TaskOptions | undefined | null",
        ts_return_type = "TaskInfo"
    )]
    pub fn spawn(
        &self,
        func: TaskFn,
        description: String,
        kind: Option<String>,
        options: Option<TaskOptions>,
    ) -> napi::Result<Js<TaskInfo>> {
        let manager = self.manager()?;
        let mut o = options.unwrap_or_default();
        let description = o.description.take().unwrap_or(description);
        let options = o.into_options()?;
        let task = js_task(description, kind, func);
        Ok(Js(manager.spawn_boxed(task, options).js()?.info()))
    }

    /// The task's info now.
    #[napi(ts_return_type = "TaskInfo")]
    pub fn info(&self, id: String) -> napi::Result<Js<TaskInfo>> {
        Ok(Js(self.manager()?.info(&id).js()?))
    }

    /// Moves a running foreground task to the background without losing a
    /// byte; a background or ended task's info is returned unchanged.
    #[napi(ts_return_type = "TaskInfo")]
    pub fn detach(&self, id: String) -> napi::Result<Js<TaskInfo>> {
        Ok(Js(self.manager()?.detach(&id).js()?))
    }

    /// Non-blocking: the info and up to `maxBytes` (default 64 KiB, at most
    /// 16 MiB) of output written since `cursor` (default 0).
    #[napi(ts_return_type = "PollResponse")]
    pub fn poll(
        &self,
        id: String,
        cursor: Option<f64>,
        max_bytes: Option<f64>,
    ) -> napi::Result<Poll> {
        let cursor = cursor.map(|v| bytes("cursor", v)).transpose()?.unwrap_or(0);
        let max_bytes = max_bytes
            .map(|v| size("maxBytes", v))
            .transpose()?
            .unwrap_or(agent_tasks::DEFAULT_POLL_BYTES);
        Ok(Poll(self.manager()?.poll(&id, cursor, max_bytes).js()?))
    }

    /// The first `headBytes` and last `tailBytes` of the output (default 4 KiB
    /// each).
    #[napi(ts_return_type = "Preview")]
    pub fn preview(
        &self,
        id: String,
        head_bytes: Option<f64>,
        tail_bytes: Option<f64>,
    ) -> napi::Result<Preview> {
        let head = head_bytes
            .map(|v| size("headBytes", v))
            .transpose()?
            .unwrap_or(agent_tasks::DEFAULT_PREVIEW_BYTES);
        let tail = tail_bytes
            .map(|v| size("tailBytes", v))
            .transpose()?
            .unwrap_or(agent_tasks::DEFAULT_PREVIEW_BYTES);
        Ok(Preview(self.manager()?.preview(&id, head, tail).js()?))
    }

    /// Waits until output past `cursor` exists or the task has ended, then
    /// answers as `poll` does (at most `maxBytes`, default 64 KiB): what the
    /// wrapper's output streams read. Woken by the task's output and its end.
    #[napi(ts_return_type = "Promise<PollResponse>")]
    pub fn wait_output<'env>(
        &self,
        env: &'env Env,
        id: String,
        cursor: f64,
        max_bytes: Option<f64>,
        wait: Option<&WaitHandle>,
    ) -> napi::Result<PromiseRaw<'env, Poll>> {
        let manager = self.manager()?;
        let cursor = bytes("cursor", cursor)?;
        let max_bytes = max_bytes
            .map(|v| size("maxBytes", v))
            .transpose()?
            .unwrap_or(agent_tasks::DEFAULT_POLL_BYTES);
        let wait = wait.map(|w| w.token.clone());
        env.spawn_future(abortable(wait, async move {
            Ok(Poll(
                manager.poll_wait(&id, cursor, max_bytes, None).await.js()?,
            ))
        }))
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
    ) -> napi::Result<PromiseRaw<'env, Js<Outcome>>> {
        let manager = self.manager()?;
        let timeout = timeout_ms
            .map(|t| millis("timeoutMs", t))
            .transpose()?
            .flatten();
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
    ) -> napi::Result<PromiseRaw<'env, Js<TaskInfo>>> {
        let manager = self.manager()?;
        let reason = CancelReason::user(reason.unwrap_or_default());
        let wait = wait.map(|w| w.token.clone());
        env.spawn_future(abortable(wait, async move {
            Ok(Js(manager.cancel(&id, reason).await.js()?))
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
    ) -> napi::Result<PromiseRaw<'env, Js<Outcome>>> {
        let manager = self.manager()?;
        let timeout = timeout_ms
            .map(|t| millis("timeoutMs", t))
            .transpose()?
            .flatten();
        let cursor = cursor.map(|v| bytes("cursor", v)).transpose()?.unwrap_or(0);
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
    ) -> napi::Result<PromiseRaw<'env, Js<TaskInfo>>> {
        let manager = self.manager()?;
        env.spawn_future(async move { Ok(Js(manager.pause(&id).await.js()?)) })
    }

    /// Resumes a paused task (SIGCONT). Returns its info.
    #[napi(ts_return_type = "Promise<TaskInfo>")]
    pub fn resume<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, Js<TaskInfo>>> {
        let manager = self.manager()?;
        env.spawn_future(async move { Ok(Js(manager.resume(&id).await.js()?)) })
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
    ) -> napi::Result<PromiseRaw<'env, Js<Outcome>>> {
        let manager = self.manager()?;
        let wait = wait.map(|w| w.token.clone());
        env.spawn_future(abortable(wait, async move {
            Ok(manager.wait_foreground(&id).await.js()?.into())
        }))
    }

    /// Sends a steering message: to a JS task's `ctx.recv()`, or to an
    /// interactive process's stdin; with `eof`, then the end of input (the
    /// core's rule: one of them at least).
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

    /// Tasks matching `filter`, oldest first. Foreground tasks that ended
    /// without being detached are not listed.
    #[napi(ts_return_type = "TaskInfo[]")]
    pub fn list(&self, filter: Option<ListFilter>) -> napi::Result<Js<Vec<TaskInfo>>> {
        let filter = filter.unwrap_or_default().into_filter()?;
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

    /// The owner's open background work: a short text for the model within
    /// `budget` bytes (the core's default when absent) and the items.
    #[napi(ts_return_type = "Roster")]
    pub fn roster(
        &self,
        owner: String,
        budget: Option<u32>,
    ) -> napi::Result<Js<agent_tasks::Roster>> {
        let budget = budget.map_or(agent_tasks::DEFAULT_ROSTER_BUDGET, |b| b as usize);
        Ok(Js(self.manager()?.roster(&owner, budget)))
    }

    /// Pending notifications, oldest first: of one owner, or of all.
    #[napi(ts_return_type = "Notification[]")]
    pub fn notifications(
        &self,
        owner: Option<String>,
    ) -> napi::Result<Js<Vec<agent_tasks::Notification>>> {
        Ok(Js(self.manager()?.notifications(owner.as_deref())))
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
    ) -> napi::Result<PromiseRaw<'env, Js<Vec<TaskInfo>>>> {
        let manager = self.manager()?;
        env.spawn_future(async move {
            let infos = manager
                .close_owner(&owner, reason.unwrap_or_default())
                .await;
            Ok(Js(infos))
        })
    }

    /// Kills the still-running process of a task found orphaned at open.
    #[napi(ts_return_type = "TaskInfo")]
    pub fn kill_orphan(&self, id: String) -> napi::Result<Js<TaskInfo>> {
        Ok(Js(self.manager()?.kill_orphan(&id).js()?))
    }

    /// Removes ended tasks (and their folders) that ended more than
    /// `maxAgeMs` ago, and the oldest beyond the newest `maxCount`.
    #[napi(ts_return_type = "GcReport")]
    pub fn gc(
        &self,
        max_age_ms: Option<f64>,
        max_count: Option<u32>,
    ) -> napi::Result<Js<agent_tasks::GcReport>> {
        let max_age = match max_age_ms {
            Some(ms) => Some(finite_millis("maxAgeMs", ms)?),
            None => None,
        };
        let report = self
            .manager()?
            .gc(max_age, max_count.map(|n| n as usize))
            .js()?;
        Ok(Js(report))
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

    /// How many process tasks are running: the wrapper keeps its signal
    /// listeners installed while some are.
    #[napi]
    pub fn running_process_count(&self) -> u32 {
        self.manager()
            .map_or(0, |m| running_processes(&m).len() as u32)
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

    /// True while the manager's private temporary root (no `root` was
    /// given) is on disk: the wrapper's signal hooks stay installed while
    /// one is, so a fatal signal removes it.
    #[napi]
    pub fn has_temporary_root(&self) -> bool {
        self.manager().is_ok_and(|m| m.has_temporary_root())
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
