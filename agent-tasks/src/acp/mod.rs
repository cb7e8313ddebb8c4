//! [`AcpTask`]: a coding agent that speaks the Agent Client Protocol (ACP:
//! JSON-RPC over stdio; Gemini CLI, Claude Code and Codex through their
//! adapters, OpenCode, Goose, ...) run as a persistent background subagent.
//! This library is the ACP *client*: it starts the agent command (contained
//! like a [`ProcessTask`]), opens a session and sends the goal as the first
//! prompt; each [`TaskManager::send`](crate::TaskManager::send) is a
//! follow-up prompt, and each turn's end queues a one-shot notification with
//! the agent's final message. One file per concern:
//!
//! * `client`: the transport over the agent's stdio, the handlers of what the
//!   agent asks of its client, and the session's turns;
//! * `render`: session updates as readable lines of the task's output;
//! * `policy`: the host's answers to permission requests and file access;
//! * `terminals`: the agent's terminals, served by process tasks;
//! * `presets`: the argv and environment real agents need to run offline
//!   and unattended.

mod client;
mod policy;
mod presets;
mod render;
mod terminals;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_client_protocol::v1::schema::{
    EnvVariable, HttpHeader, McpServer, McpServerHttp, McpServerStdio,
};
use nix::sys::signal::Signal;
use tokio::io::AsyncReadExt;

pub use policy::{
    FileAccess, PermissionCallback, PermissionChoice, PermissionDecision, PermissionFuture,
    PermissionPolicy, PermissionRequest,
};
pub use presets::{AgentKind, AgentPreset, ModelEndpoint};
pub use terminals::DEFAULT_TERMINAL_OUTPUT;

use crate::context::TaskContext;
use crate::error::Error;
use crate::info::Containment;
use crate::manager::{TaskManager, WeakManager};
use crate::process::{ProcessTask, Started};
use crate::sink::Stream;
use crate::task::{BackgroundTask, TaskOutcome};
use client::{run_session, SessionEnd, SessionReport, SessionSetup, Shared, Wire};
use render::Renderer;

/// A host callback that receives every raw session update (the whole
/// `session/update` notification as JSON), for hosts that want structure
/// rather than the rendered text.
pub type UpdateCallback = Arc<dyn Fn(&serde_json::Value) + Send + Sync>;

/// How long a stopping agent gets to exit by itself once its stdin is
/// closed, before it is signalled.
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// How long stderr is still read after the agent is gone.
const STDERR_DRAIN: Duration = Duration::from_secs(1);

/// The default bound of the handshake (`initialize`, then `session/new`):
/// see [`AcpTask::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default longest message (one line of the agent's output) the client
/// reads: see [`AcpTask::max_message_bytes`].
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The smallest bound [`AcpTask::max_message_bytes`] accepts: no ACP
/// message fits in less.
const MIN_MESSAGE_BYTES: usize = 1024;

/// An ACP agent run as a task: the agent command (argv, cwd, env; its own
/// process group and containment, as for a [`ProcessTask`]) and the goal,
/// its first prompt.
///
/// * **Output**: the session's updates as readable lines (the agent's
///   messages, each ending its line as soon as the agent moves on, so
///   watch patterns and `wait_for` see it mid-turn; tool calls with their
///   status, printed when it changes, and their content (the output the
///   agent saw, diffs, file locations) indented under them, at most
///   16 KiB per tool call; plans; optionally its thoughts), so `poll`,
///   `preview`, watch patterns and the tools work unchanged; the agent's
///   stderr is the task's stderr. Raw updates go to
///   [`AcpTask::on_update`]. The agent's process is started before
///   [`TaskManager::spawn`] returns, so its pid is in the info at once.
/// * **Turns**: [`TaskManager::send`](crate::TaskManager::send) is a
///   follow-up prompt. One sent while a turn runs is *queued* and sent when
///   the turn ends (ACP runs one prompt at a time per session, and the host
///   model cannot know when a turn ends; refusing would make it retry in a
///   loop). The end of each turn queues a one-shot
///   [`NotificationKind::TurnEnded`](crate::NotificationKind::TurnEnded)
///   notification with the agent's final message (its last message of the
///   turn; everything the turn wrote is in the log by then); the task stays `running`
///   between turns until it is cancelled, its [idle
///   timeout](AcpTask::idle_timeout) passes, its input is closed
///   ([`Message::eof`](crate::Message::eof)), or the agent ends the session.
/// * **How it ends**, one rule: the host ending it (input closed, idle
///   timeout) ends it `completed` with `{session_id, turns, stop_reason,
///   message}` (the last turn's); so does an agent that exits *by itself
///   with code 0 between turns* (or closes its output between turns and is
///   then stopped). An agent that exits with another code or is killed by a
///   signal between turns ends it `failed` (`the agent was killed by signal
///   9 (SIGKILL) between turns`); any end during the handshake or a turn
///   is `failed` (channel loss, below); a cancel is `cancelled`.
/// * **Permissions** follow a [`PermissionPolicy`] (default: deny);
///   **files** a [`FileAccess`] (default: inside the session directory);
///   **terminals** are process tasks of the manager given to
///   [`AcpTask::terminals`] (none are offered without one).
/// * **Cancel** sends the protocol's `session/cancel` for the running turn,
///   waits up to the [cancel grace](AcpTask::cancel_grace) for the turn to
///   end, then stops the agent's processes as any process task's.
/// * **Channel loss**: an agent that exits, or whose stdio breaks or carries
///   a line that is not JSON-RPC, during a turn ends the task `failed` with
///   an error that says so; nothing waits for it forever.
/// * **Bounds**: the handshake (`initialize`, `session/new`) has its own
///   [timeout](AcpTask::handshake_timeout) (default 60 s), and one line
///   of the agent's output its [size limit](AcpTask::max_message_bytes)
///   (default 16 MiB); past either the task ends `failed` with an error
///   naming the bound.
///
/// ```no_run
/// use std::time::Duration;
/// use agent_tasks::acp::{AcpTask, PermissionPolicy};
/// use agent_tasks::{SpawnOptions, TaskManager, ManagerConfig};
///
/// # async fn run() -> agent_tasks::Result<()> {
/// let manager = TaskManager::new(ManagerConfig::default())?;
/// let agent = AcpTask::new(["gemini", "--acp"], "make the failing test pass")
///     .cwd("/work/repo")
///     .permissions(PermissionPolicy::AllowAll)
///     .terminals(&manager)
///     .idle_timeout(Duration::from_secs(1800));
/// let task = manager.spawn(agent, SpawnOptions::background().no_timeout())?;
/// manager.send(task.id().as_str(), "also update the changelog")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AcpTask {
    process: ProcessTask,
    goal: String,
    cwd: Option<PathBuf>,
    mcp_servers: Vec<McpServer>,
    permissions: PermissionPolicy,
    files: FileAccess,
    show_thoughts: bool,
    idle_timeout: Option<Duration>,
    cancel_grace: Duration,
    handshake_timeout: Duration,
    max_message_bytes: usize,
    terminals: Option<WeakManager>,
    on_update: Option<UpdateCallback>,
    description: Option<String>,
    kind: String,
    /// The agent's process, started by `on_start` (so its pid is known
    /// when `spawn` returns) for `run` to take.
    early: EarlyStart,
}

/// The agent's process started ahead of `run`, or why it could not be. A
/// clone of the task (a template) starts empty: a process is one task's.
#[derive(Default)]
struct EarlyStart(Mutex<Option<Result<Started, String>>>);

impl Clone for EarlyStart {
    fn clone(&self) -> Self {
        EarlyStart::default()
    }
}

impl EarlyStart {
    fn take(&self) -> Option<Result<Started, String>> {
        crate::util::lock(&self.0).take()
    }
}

impl std::fmt::Debug for AcpTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcpTask")
            .field("command", &self.process.command_text())
            .field("goal", &self.goal)
            .field("cwd", &self.cwd)
            .field("permissions", &self.permissions)
            .field("files", &self.files)
            .finish()
    }
}

impl AcpTask {
    /// The agent command `argv` (no shell), with `goal` as its first prompt.
    pub fn new<I, S>(argv: I, goal: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        AcpTask {
            process: ProcessTask::argv(argv).interactive(true),
            goal: goal.into(),
            cwd: None,
            mcp_servers: Vec::new(),
            permissions: PermissionPolicy::default(),
            files: FileAccess::default(),
            show_thoughts: false,
            idle_timeout: None,
            cancel_grace: Duration::from_secs(5),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            terminals: None,
            on_update: None,
            description: None,
            kind: "acp".to_string(),
            early: EarlyStart::default(),
        }
    }

    /// A real agent started by `command` (its program, and what runs it:
    /// `["opencode"]`, `["node", ".../claude-code-acp/dist/index.js"]`,
    /// or a wrapper such as `["ip", "netns", "exec", "ns", "opencode"]`),
    /// followed by the [preset](AgentPreset)'s arguments, with the preset's
    /// environment (a private home, telemetry and auto-update off, npm
    /// offline, the model endpoint), and `goal` as its first prompt.
    /// Everything else is as for [`AcpTask::new`], and can be set after.
    pub fn preset<I, S>(command: I, preset: &AgentPreset, goal: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let argv = command
            .into_iter()
            .map(Into::into)
            .chain(preset.args())
            .collect::<Vec<OsString>>();
        preset
            .env()
            .into_iter()
            .fold(AcpTask::new(argv, goal), |task, (key, value)| {
                task.env(key, value)
            })
    }

    /// The same agent with another first prompt: a configured task is a
    /// template (it is `Clone`), e.g. for a delegation tool that starts it
    /// with each goal the model gives.
    pub fn goal(mut self, goal: impl Into<String>) -> Self {
        self.goal = goal.into();
        self
    }

    /// The working directory of the agent and of its session (default: the
    /// host's). File access is checked against it.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        self.process = self.process.cwd(dir.clone());
        self.cwd = Some(dir);
        self
    }

    /// Sets an environment variable of the agent.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.process = self.process.env(key, value);
        self
    }

    /// An MCP server (a command over stdio) the agent should connect to.
    pub fn mcp_stdio_server<A, E, K, V>(
        mut self,
        name: impl Into<String>,
        command: impl Into<PathBuf>,
        args: A,
        env: E,
    ) -> Self
    where
        A: IntoIterator,
        A::Item: Into<String>,
        E: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let server = McpServerStdio::new(name, command)
            .args(args.into_iter().map(Into::into).collect())
            .env(
                env.into_iter()
                    .map(|(k, v)| EnvVariable::new(k, v))
                    .collect(),
            );
        self.mcp_servers.push(McpServer::Stdio(server));
        self
    }

    /// An MCP server over HTTP the agent should connect to.
    pub fn mcp_http_server<H, K, V>(
        mut self,
        name: impl Into<String>,
        url: impl Into<String>,
        headers: H,
    ) -> Self
    where
        H: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let server = McpServerHttp::new(name, url).headers(
            headers
                .into_iter()
                .map(|(k, v)| HttpHeader::new(k, v))
                .collect(),
        );
        self.mcp_servers.push(McpServer::Http(server));
        self
    }

    /// How permission requests are answered (default: denied).
    pub fn permissions(mut self, policy: PermissionPolicy) -> Self {
        self.permissions = policy;
        self
    }

    /// Which files the agent may read and write through the client
    /// (default: inside the session directory).
    pub fn files(mut self, access: FileAccess) -> Self {
        self.files = access;
        self
    }

    /// Whether the agent's thoughts are written to the output (default: no).
    pub fn show_thoughts(mut self, yes: bool) -> Self {
        self.show_thoughts = yes;
        self
    }

    /// Ends the session (`completed`) when no follow-up comes this long
    /// after a turn ended (default: never; the task's own timeout still
    /// applies, so a persistent agent is usually spawned with
    /// [`SpawnOptions::no_timeout`](crate::SpawnOptions::no_timeout)).
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// How long a cancelled turn may take to end before the agent is
    /// stopped anyway (default 5 s).
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// How long the agent may take to answer `initialize` and `session/new`
    /// together (default [60 s](DEFAULT_HANDSHAKE_TIMEOUT)). An agent that
    /// has not opened its session by then ends the task `failed`, with an
    /// error naming the step it did not answer, instead of holding a
    /// `running` task until the task's own timeout (usually none for a
    /// persistent agent). Any `Duration` is accepted; a huge one means no
    /// bound.
    pub fn handshake_timeout(mut self, bound: Duration) -> Self {
        self.handshake_timeout = bound;
        self
    }

    /// The longest line (one JSON-RPC message) read from the agent, in bytes
    /// (default [16 MiB](DEFAULT_MAX_MESSAGE_BYTES); at least 1 KiB). The
    /// client never holds more of one line than this: an agent whose line
    /// runs past it without a newline ends the task `failed` with an error
    /// naming the limit, so a runaway agent costs the host at most this
    /// much memory for its output.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Time between SIGTERM and SIGKILL when the agent is stopped (default 5 s).
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.process = self.process.kill_grace(grace);
        self
    }

    /// The strongest containment for the agent's processes (see
    /// [`ProcessTask::containment`]).
    pub fn containment(mut self, strongest: Containment) -> Self {
        self.process = self.process.containment(strongest);
        self
    }

    /// Serves the agent's terminal requests with process tasks of `manager`
    /// (foreground tasks owned by this task's id, so they are contained,
    /// bounded, and stopped with it). Without it the agent is told the
    /// client has no terminals. The task holds no strong reference to the
    /// manager.
    pub fn terminals(mut self, manager: &TaskManager) -> Self {
        self.terminals = Some(manager.downgrade());
        self
    }

    /// Gives the agent terminals from `manager` unless it has some.
    pub(crate) fn terminals_if_unset(mut self, manager: &WeakManager) -> Self {
        if self.terminals.is_none() {
            self.terminals = Some(manager.clone());
        }
        self
    }

    /// Receives every raw session update as JSON (the whole
    /// `session/update` notification). It is called on the connection's
    /// dispatch loop, in order, before the update is rendered: keep it
    /// quick (hand the value to a channel for slow work).
    pub fn on_update(
        mut self,
        callback: impl Fn(&serde_json::Value) + Send + Sync + 'static,
    ) -> Self {
        self.on_update = Some(Arc::new(callback));
        self
    }

    /// The description shown in lists (default: `acp <command>: <goal>`).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// The kind (the id prefix; default `acp`).
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// The session directory: the one given, made absolute, else the host's.
    fn session_dir(&self) -> Result<PathBuf, String> {
        let dir = match &self.cwd {
            Some(dir) => dir.clone(),
            None => std::env::current_dir()
                .map_err(|e| format!("the host's working directory is unknown: {e}"))?,
        };
        dir.canonicalize()
            .map_err(|e| format!("the working directory `{}`: {e}", dir.display()))
    }
}

#[async_trait::async_trait]
impl BackgroundTask for AcpTask {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn description(&self) -> String {
        self.description.clone().unwrap_or_else(|| {
            let goal: String = self.goal.chars().take(120).collect();
            format!("acp {}: {goal}", self.process.command_text())
        })
    }

    fn stop_grace(&self) -> Option<Duration> {
        Some(
            self.cancel_grace
                .saturating_add(EXIT_GRACE)
                .saturating_add(self.process.grace())
                .saturating_add(Duration::from_secs(2)),
        )
    }

    fn validate(&self) -> crate::Result<()> {
        self.process.validate()?;
        if self.goal.trim().is_empty() {
            return Err(Error::invalid_argument(
                "goal",
                "the goal (first prompt) is empty",
            ));
        }
        if self.kind.is_empty() {
            return Err(Error::invalid_argument("kind", "the kind is empty"));
        }
        if self.max_message_bytes < MIN_MESSAGE_BYTES {
            return Err(Error::invalid_argument(
                "max_message_bytes",
                format!(
                    "{} bytes is too small for one ACP message: give at least {MIN_MESSAGE_BYTES}",
                    self.max_message_bytes
                ),
            ));
        }
        self.session_dir()
            .map(|_| ())
            .map_err(|e| Error::invalid_argument("cwd", e))
    }

    fn check_limits(
        &self,
        defaults: &crate::limits::Limits,
        ceiling: &crate::limits::Limits,
        policy: crate::limits::UnenforcedLimits,
    ) -> crate::Result<()> {
        // The agent's process is a process task's: refused at the spawn
        // the same way.
        self.process.check_limits(defaults, ceiling, policy)
    }

    fn on_start(&mut self, ctx: &TaskContext) {
        // Without a session directory `run` fails before any process.
        if self.session_dir().is_ok() {
            *crate::util::lock(&self.early.0) = Some(self.process.start(ctx));
        }
    }

    async fn run(self: Box<Self>, ctx: TaskContext) -> TaskOutcome {
        let this = *self;
        let cwd = match this.session_dir() {
            Ok(dir) => dir,
            Err(e) => return TaskOutcome::failed(e),
        };
        let started = match this.early.take() {
            Some(started) => started,
            None => this.process.start(&ctx),
        };
        let Started {
            mut child,
            mut procs,
        } = match started {
            Ok(started) => started,
            Err(e) => return TaskOutcome::failed(e),
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return TaskOutcome::failed("the agent's stdio pipes are missing");
        };
        let output = ctx.output();
        let stderr_task = tokio::spawn(copy_stderr(stderr, output.clone()));
        let inbox = ctx.take_inbox().await;
        let ctx = Arc::new(ctx);
        let shared = Arc::new(Shared {
            task_id: ctx.id().to_string(),
            output,
            renderer: Mutex::new(Renderer::new(this.show_thoughts)),
            on_update: this.on_update.clone(),
            permissions: this.permissions.clone(),
            files: this.files,
            cwd: cwd.clone(),
            terminals: terminals::Terminals::new(this.terminals.clone(), ctx.id().to_string(), cwd),
        });
        let turn_ctx = ctx.clone();
        let setup = SessionSetup {
            goal: this.goal.clone(),
            mcp_servers: this.mcp_servers.clone(),
            idle_timeout: this.idle_timeout,
            cancel_grace: this.cancel_grace,
            handshake_timeout: this.handshake_timeout,
            max_line: this.max_message_bytes,
            inbox,
            cancel: ctx.cancel_signal().clone(),
            turn_ended: Arc::new(move |turn, summary| turn_ctx.turn_ended(turn, summary)),
        };
        let wire = Wire::default();
        let session = run_session(shared.clone(), setup, stdin, stdout, wire.clone());
        tokio::pin!(session);
        let mut exit_status = None;
        let report: SessionReport = loop {
            tokio::select! {
                report = &mut session => break report,
                status = child.wait(), if exit_status.is_none() => {
                    exit_status = Some(status);
                    // Whatever the agent left behind may hold its stdout
                    // open: without them the session sees the end at once.
                    procs.kill_all().await;
                }
            }
        };
        shared.terminals.release_all().await;

        // Stop the agent: its stdin is closed by now (the session is over);
        // a well-behaved agent exits; else it is signalled like a process
        // task, then killed.
        if exit_status.is_none() {
            exit_status = tokio::time::timeout(EXIT_GRACE, child.wait()).await.ok();
        }
        // Whether the agent ended by itself: after this, a status is the
        // answer to our own signals and says nothing of the agent.
        let exited_by_itself = exit_status.is_some();
        if exit_status.is_none() {
            procs.signal(Signal::SIGTERM);
            procs.signal(Signal::SIGCONT);
            exit_status = tokio::time::timeout(this.process.grace(), child.wait())
                .await
                .ok();
        }
        procs.kill_all().await;
        if exit_status.is_none() {
            exit_status = tokio::time::timeout(Duration::from_secs(1), child.wait())
                .await
                .ok();
        }
        procs.finish();
        let _ = tokio::time::timeout(STDERR_DRAIN, stderr_task).await;

        let exit = match exit_status.and_then(Result::ok) {
            Some(status) if exited_by_itself => AgentExit::ByItself(describe(&status)),
            Some(status) => AgentExit::Stopped(describe(&status).0),
            None => AgentExit::Unknown,
        };
        outcome(report, exit, wire.problem())
    }
}

/// How the agent process ended, in words, and whether it was a clean exit.
fn describe(status: &std::process::ExitStatus) -> (String, bool) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => ("exited with code 0".to_string(), true),
        (Some(code), _) => (format!("exited with code {code}"), false),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig)
                .map(|s| s.as_str())
                .unwrap_or("unknown");
            (format!("was killed by signal {sig} ({name})"), false)
        }
        (None, None) => ("ended with an unknown status".to_string(), false),
    }
}

/// How the agent process ended, as far as the task saw.
enum AgentExit {
    /// By itself (before the task signalled it): how, and whether cleanly
    /// (exit code 0).
    ByItself((String, bool)),
    /// Only once the task stopped it: how.
    Stopped(String),
    /// Its status could not be read.
    Unknown,
}

/// The task's outcome, by one rule: a session the host ended (its input
/// closed, the idle timeout) completes; an agent that ends the session
/// between turns completes when it exits by itself with code 0 (or closes
/// its output and has to be stopped: the session ended on its side without
/// a fault), and fails when it exits with another code or is killed by a
/// signal; any end during the handshake or a turn fails.
fn outcome(report: SessionReport, exit: AgentExit, problem: Option<String>) -> TaskOutcome {
    let value = serde_json::json!({
        "session_id": report.session_id,
        "turns": report.turns,
        "stop_reason": report.last_stop_reason,
        "message": report.last_message,
    });
    match report.end {
        SessionEnd::Idle | SessionEnd::InputClosed => TaskOutcome::completed(value),
        SessionEnd::AgentClosed => match exit {
            AgentExit::ByItself((how, false)) => {
                TaskOutcome::failed(format!("the agent {how} between turns"))
            }
            AgentExit::ByItself((_, true)) | AgentExit::Stopped(_) | AgentExit::Unknown => {
                TaskOutcome::completed(value)
            }
        },
        SessionEnd::Cancelled => TaskOutcome::failed("cancelled"),
        SessionEnd::Lost(error) => {
            let error = problem.unwrap_or(error);
            match exit {
                AgentExit::ByItself((how, _)) => {
                    TaskOutcome::failed(format!("{error} (the agent process {how})"))
                }
                AgentExit::Stopped(how) => TaskOutcome::failed(format!(
                    "{error} (the agent process was then stopped: it {how})"
                )),
                AgentExit::Unknown => TaskOutcome::failed(error),
            }
        }
    }
}

/// The agent's stderr, copied to the task's stderr as it comes.
async fn copy_stderr(mut stderr: tokio::net::unix::pipe::Receiver, output: crate::OutputWriter) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => output.write(&Stream::STDERR, &buf[..n]),
        }
    }
}
