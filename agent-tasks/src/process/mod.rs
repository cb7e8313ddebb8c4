//! [`ProcessTask`]: a command run in its own process group, with every
//! descendant contained. This file owns the task itself: its options, their
//! validation, spawning, reading stdout and stderr as separate streams, the
//! SIGTERM → grace → SIGKILL escalation, and the bounded drain after the
//! child exits (a grandchild holding a pipe open cannot hang the task). The
//! OS concerns live next to it, one per file:
//!
//! * `contain`: choosing and applying the containment, and killing all;
//! * `cgroup`: the cgroup v2 per task;
//! * `limits`: resource limits (cgroup v2 or v1 controllers), the task's
//!   usage and its OOM;
//! * `reaper`: the host as child subreaper, and reaping what it adopts;
//! * `descendants`: finding a task's processes in `/proc`;
//! * `group`: process-group signals;
//! * `kept`: files kept open to make spawns cheaper, given up when
//!   descriptors run out;
//! * `spawn`: starting the child on pipes and waiting for its exit;
//! * `clone_into`: starting it straight inside its cgroup (`clone3`),
//!   where `spawn` can (else it uses `posix_spawn`);
//! * `stdin`: feeding stdin and closing it;
//! * `pty`: PTY mode (the child on a pseudo-terminal) and [`Key`]s.

mod cgroup;
mod clone_into;
mod contain;
mod descendants;
mod group;
mod kept;
mod limits;
mod pty;
mod reaper;
mod spawn;
mod stdin;

use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::unix::pipe;
use tokio::process::Command;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::context::{Control, TaskContext};
use crate::error::Error;
use crate::info::{Containment, ExitInfo};
use crate::sink::Stream;
use crate::task::{BackgroundTask, TaskOutcome};
use spawn::{Child, Spawn};

pub(crate) use cgroup::PoolUser as CgroupPoolUser;
pub(crate) use contain::Contained;
pub(crate) use contain::{kill_group, kill_task_now, signal_task};
pub(crate) use descendants::{boot_id, process_start_time};
pub(crate) use limits::Ceiling;
pub(crate) use pty::check_terminal_size;
pub use pty::{terminal_size, Key};

const READ_CHUNK: usize = 128 * 1024;

/// Why a process task did not start: its manager's host is exiting.
pub(crate) const HOST_EXITING: &str = "the host is exiting: no new process starts";
/// Pipes are enlarged to this so a fast writer blocks less often.
const PIPE_SIZE: i32 = 1024 * 1024;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Program {
    Argv(Vec<OsString>),
    Shell(String),
}

/// A command to run as a task: argv or a shell string, with cwd, env and
/// stdin. It runs in its own process group; cancel sends SIGTERM to the task's
/// processes, waits the kill grace (default 5 s), then SIGKILL to all of them.
///
/// No descendant survives the task (a cancel, a timeout, its end with
/// [`kill_group_on_exit`](ProcessTask::kill_group_on_exit), a dropped
/// manager), including one that left the process group with `setsid`,
/// `setpgid` or a double fork: the task gets a cgroup v2 of its own where the
/// host may create one, else the host becomes a child subreaper and the
/// task's processes are found by a walk of `/proc` (see
/// [`ProcessTask::containment`]; the task's info says which was used). Every
/// process of a task carries the environment variable `AGENT_TASKS_TASK` set
/// to the task's id.
///
/// Exit code 0 is `completed`; any other exit, a signal, a spawn error or a
/// pipe read error is `failed`.
///
/// With [`ProcessTask::pty`] the child runs on a pseudo-terminal instead of
/// pipes (for programs that want a terminal: password prompts, REPLs,
/// `git rebase -i`); see there.
///
/// ```
/// use std::time::Duration;
/// use agent_tasks::ProcessTask;
///
/// let build = ProcessTask::shell("cargo build 2>&1")
///     .cwd("/tmp")
///     .env("CARGO_TERM_COLOR", "never")
///     .kill_grace(Duration::from_secs(2));
/// let ls = ProcessTask::argv(["ls", "-l"]);
/// ```
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ProcessTask {
    program: Program,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    env_clear: bool,
    stdin: Option<Vec<u8>>,
    interactive: bool,
    /// Columns and rows of the task's terminal, in PTY mode.
    pty: Option<(u16, u16)>,
    kill_grace: Duration,
    drain_grace: Duration,
    kill_group_on_exit: bool,
    containment: Containment,
    limits: crate::limits::Limits,
    description: Option<String>,
}

impl ProcessTask {
    fn with_program(program: Program) -> Self {
        ProcessTask {
            program,
            cwd: None,
            env: Vec::new(),
            env_clear: false,
            stdin: None,
            interactive: false,
            pty: None,
            kill_grace: Duration::from_secs(5),
            drain_grace: Duration::from_secs(2),
            kill_group_on_exit: true,
            containment: Containment::Cgroup,
            limits: crate::limits::Limits::default(),
            description: None,
        }
    }

    /// Runs `argv[0]` with the rest as arguments (no shell).
    pub fn argv<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self::with_program(Program::Argv(argv.into_iter().map(Into::into).collect()))
    }

    /// Runs `command` with `/bin/sh -c`.
    pub fn shell(command: impl Into<String>) -> Self {
        Self::with_program(Program::Shell(command.into()))
    }

    /// The working directory (default: the host's).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts from an empty environment instead of the host's.
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self
    }

    /// Bytes written to stdin at start.
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Keeps stdin open so `send` can write to it.
    pub fn interactive(mut self, yes: bool) -> Self {
        self.interactive = yes;
        self
    }

    /// Runs the command on a pseudo-terminal of `cols` × `rows` (PTY mode),
    /// for programs that behave differently or refuse to run without a
    /// terminal (password prompts of `sudo` and `ssh`, REPLs, `npm init`,
    /// pagers, full-screen programs). The child leads a new session whose
    /// controlling terminal is the PTY (so `test -t 0` and `test -t 1` hold)
    /// and gets `TERM=xterm-256color` unless its environment sets `TERM`.
    ///
    /// Under a PTY:
    /// * stdout and stderr are **one stream**: the terminal's output, tagged
    ///   `stdout`, in the order the program wrote it. The terminal echoes
    ///   what is typed and ends lines with `\r\n`, as a terminal does.
    /// * the task always takes input: [`TaskManager::send`](crate::TaskManager::send)
    ///   types keystrokes and [`TaskManager::send_keys`](crate::TaskManager::send_keys)
    ///   control keys ([`Key`]: Ctrl+C interrupts the foreground processes,
    ///   arrows, Enter…); [`Message::eof`](crate::Message::eof) types Ctrl+D,
    ///   and the terminal stays open. [`stdin_bytes`](ProcessTask::stdin_bytes)
    ///   are typed at start.
    /// * [`TaskManager::resize`](crate::TaskManager::resize) changes the size
    ///   (the program gets `SIGWINCH`).
    /// * every promise of a process task holds: the containment, cancel
    ///   killing the whole tree, bounded and spilled output, detach without
    ///   loss, pause and resume, and the bounded drain: a descendant that
    ///   keeps the terminal open after the child exits cannot hang the task.
    ///
    /// Both must be at least 1 (else `InvalidArgument` naming `cols` or
    /// `rows` at spawn).
    pub fn pty(mut self, cols: u16, rows: u16) -> Self {
        self.pty = Some((cols, rows));
        self
    }

    /// Time between SIGTERM and SIGKILL on cancel.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// How long to keep reading after the child exits while something (a
    /// grandchild) still holds its pipes open.
    pub fn drain_grace(mut self, grace: Duration) -> Self {
        self.drain_grace = grace;
        self
    }

    /// Whether processes left in the group after the child exits are killed
    /// (default true: no descendant outlives its task).
    pub fn kill_group_on_exit(mut self, yes: bool) -> Self {
        self.kill_group_on_exit = yes;
        self
    }

    /// The strongest containment to use for the task's descendants
    /// (default [`Containment::Cgroup`]); the task gets the strongest one at
    /// or below it that the host offers, and its info says which.
    ///
    /// * `Cgroup`: a cgroup v2 of its own where the host may create one (a
    ///   writable cgroup2 mount), else as `Subreaper`.
    /// * `Subreaper`: the host process becomes a child subreaper (once, for
    ///   its whole life: orphans of any of its children are then re-parented
    ///   to it; only the tasks' ones are reaped by this library), and the
    ///   task's processes are found by their process group, the marker
    ///   variable and the parent chain. Else as `ProcessGroup`.
    /// * `ProcessGroup`: leaves the host process untouched; the process group
    ///   and the same walk when stopping. A descendant that left the group
    ///   and cleared its environment can escape.
    pub fn containment(mut self, strongest: Containment) -> Self {
        self.containment = strongest;
        self
    }

    /// Resource limits of the task's whole tree (memory, processes, CPU),
    /// enforced by cgroups; each kind not set here is the manager's default
    /// ([`ManagerConfig::default_limits`](crate::ManagerConfig::default_limits)).
    /// A task killed at its memory limit ends `failed` with
    /// `killed: memory limit 128 MiB reached (OOM), peak 128 MiB`; at its
    /// `pids` limit its `fork`s fail with `EAGAIN`; a CPU limit throttles.
    ///
    /// Where a limit cannot be enforced (no cgroup can be made here, a
    /// controller is not available, containment `ProcessGroup`), the
    /// manager's policy ([`ManagerConfig::unenforced_limits`](crate::ManagerConfig::unenforced_limits))
    /// refuses the spawn ([`Error::LimitsUnavailable`](crate::Error::LimitsUnavailable),
    /// the default) or runs the task with the limit listed as not enforced
    /// in its info ([`TaskInfo::limits`](crate::TaskInfo::limits)).
    ///
    /// ```
    /// use agent_tasks::{Limits, ProcessTask};
    /// let tests = ProcessTask::shell("npm test").limits(Limits {
    ///     memory: Some(2 << 30),
    ///     pids: Some(512),
    ///     cpu: Some(1.5),
    /// });
    /// ```
    pub fn limits(mut self, limits: crate::limits::Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The description shown in lists (default: the command line).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    fn command_line(&self) -> String {
        match &self.program {
            Program::Shell(cmd) => cmd.clone(),
            Program::Argv(argv) => argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// Refuses what can never run: an empty command, NUL bytes, a bad
    /// environment entry, a working directory that is not a directory.
    fn check(&self) -> Result<(), Error> {
        let command = |message: &str| Error::invalid_argument("command", message);
        match &self.program {
            Program::Shell(line) => {
                if line.trim().is_empty() {
                    return Err(command("the shell command is empty"));
                }
                if line.contains('\0') {
                    return Err(command("the shell command contains a NUL byte"));
                }
            }
            Program::Argv(argv) => {
                match argv.first() {
                    None => return Err(command("the argv is empty")),
                    Some(first) if first.is_empty() => {
                        return Err(command("the program name (argv[0]) is empty"))
                    }
                    Some(_) => {}
                }
                if let Some(i) = argv.iter().position(|a| a.as_encoded_bytes().contains(&0)) {
                    return Err(command(&format!("argv[{i}] contains a NUL byte")));
                }
            }
        }
        for (key, value) in &self.env {
            let shown = key.to_string_lossy();
            let bytes = key.as_encoded_bytes();
            let problem = if bytes.is_empty() {
                Some("an environment variable name is empty".to_string())
            } else if bytes.contains(&b'=') {
                Some(format!(
                    "the environment variable name `{shown}` contains `=`"
                ))
            } else if bytes.contains(&0) {
                Some(format!(
                    "the environment variable name `{}` contains a NUL byte",
                    shown.replace('\0', "\\0")
                ))
            } else if value.as_encoded_bytes().contains(&0) {
                Some(format!(
                    "the value of environment variable `{shown}` contains a NUL byte"
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                return Err(Error::invalid_argument("env", message));
            }
        }
        if let Some((cols, rows)) = self.pty {
            check_terminal_size(cols, rows)?;
        }
        self.limits.check()?;
        self.existing_cwd()
            .map_err(|message| Error::invalid_argument("cwd", message))?;
        Ok(())
    }

    /// The working directory, if one is set; an error if it is not (or no
    /// longer) a directory.
    fn existing_cwd(&self) -> Result<Option<&PathBuf>, String> {
        match &self.cwd {
            Some(dir) if !dir.is_dir() => Err(format!(
                "the working directory `{}` does not exist or is not a directory",
                dir.display()
            )),
            cwd => Ok(cwd.as_ref()),
        }
    }

    /// The command with its program, cwd and environment, no stdio set up.
    fn build_base_command(&self) -> Result<Command, String> {
        let mut cmd = match &self.program {
            Program::Shell(line) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(line);
                c
            }
            Program::Argv(argv) => {
                let Some(first) = argv.first() else {
                    return Err("the argv is empty".to_string());
                };
                let mut c = Command::new(first);
                c.args(&argv[1..]);
                c
            }
        };
        if let Some(dir) = self.existing_cwd()? {
            cmd.current_dir(dir);
        }
        if self.env_clear {
            cmd.env_clear();
        }
        if self.pty.is_some() {
            // Before the caller's entries, which may set another.
            cmd.env("TERM", pty::DEFAULT_TERM);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        Ok(cmd)
    }

    /// The spawn of the command on pipes for task `task_id` (in its own
    /// process group; stdin a pipe if the task takes input, else
    /// `/dev/null`), its environment carrying the task's marker.
    fn spawn_request(&self, task_id: &str) -> Result<Spawn, String> {
        let spawn = match &self.program {
            Program::Shell(line) => Spawn::new(
                OsStr::new("/bin/sh"),
                [OsStr::new("-c"), OsStr::new(line.as_str())],
            ),
            Program::Argv(argv) => {
                let Some(first) = argv.first() else {
                    return Err("the argv is empty".to_string());
                };
                Spawn::new(first, argv[1..].iter().map(OsString::as_os_str))
            }
        };
        let mut spawn = spawn.map_err(|e| e.to_string())?;
        if let Some(dir) = self.existing_cwd()? {
            spawn.cwd(dir);
        }
        if self.env_clear {
            spawn.env_clear();
        }
        for (k, v) in &self.env {
            spawn.env(k, v);
        }
        // Last: it wins over an entry of the task's own of that name.
        let (marker, value) = contain::marker(task_id);
        spawn.env(marker, value);
        if self.stdin.is_some() || self.interactive {
            spawn.piped_stdin();
        }
        Ok(spawn)
    }
}

/// A process started for a task, held by its containment: dropping
/// `procs` (the task's future was dropped) kills every process of the task.
pub(crate) struct Started {
    pub child: Child,
    pub procs: Contained,
}

impl ProcessTask {
    /// Spawns the command for the task of `ctx` in its own process group
    /// under the strongest containment the host offers (up to the one asked
    /// for), and reports its pid. Shared by every task kind that runs a
    /// process (ACP agents too), so spawning and containment live once,
    /// here. Refused once the host is exiting (the manager's spawn gate is
    /// closed): the ticket is held until the pid is reported.
    pub(crate) fn start(&self, ctx: &TaskContext) -> Result<Started, String> {
        let task_id = ctx.id().as_str();
        let spawn = self.spawn_request(task_id)?;
        let Some(ticket) = ctx.spawn_ticket() else {
            return Err(HOST_EXITING.to_string());
        };
        let host = ctx.host_limits();
        let limits = self.limits.or(host.defaults);
        let prepared = contain::prepare(task_id, self.containment, &limits, host)?;
        let cgroup = prepared.cgroup_dir();
        let cgroup = cgroup.as_ref().map(AsFd::as_fd);
        let join = prepared.join_fds();
        let spawned = spawn.spawn_joining(cgroup, join).or_else(|e| {
            if !kept::out_of_descriptors(&e) || !kept::keeping() {
                return Err(e);
            }
            // The files kept open to make spawns cheaper give way.
            kept::give_up();
            spawn.spawn_joining(cgroup, join)
        });
        let (child, cloned) = match spawned {
            Ok(child) => child,
            Err(e) => {
                prepared.abandon();
                return Err(format!("failed to start `{}`: {e}", self.command_line()));
            }
        };
        let pid = child.id();
        let born_inside = cloned && cgroup.is_some();
        let procs = prepared.started(pid, born_inside, cloned);
        ctx.report_contained(pid, procs.mode(), procs.start_time(), procs.limits_info());
        drop(ticket);
        Ok(Started { child, procs })
    }

    /// The command line, for messages.
    pub(crate) fn command_text(&self) -> String {
        self.command_line()
    }

    /// Refuses the task if its limits (over `host`'s defaults) cannot be
    /// enforced here and `host`'s policy refuses such tasks.
    fn refuse_unenforceable(
        &self,
        defaults: &crate::limits::Limits,
        ceiling: &crate::limits::Limits,
        policy: crate::limits::UnenforcedLimits,
    ) -> crate::Result<()> {
        let mut limits = self.limits.or(*defaults);
        if policy == crate::limits::UnenforcedLimits::Report {
            return Ok(());
        }
        if self.containment == Containment::ProcessGroup {
            // Outside a cgroup of its own it cannot count against the
            // manager's ceiling either.
            limits = limits.or(*ceiling);
        }
        match limits::unenforceable(&limits, self.containment) {
            Some(missing) => Err(missing.refusal()),
            None => Ok(()),
        }
    }

    /// The time between SIGTERM and SIGKILL.
    pub(crate) fn grace(&self) -> Duration {
        self.kill_grace
    }
}

/// The next pause/resume request, if the task takes them.
async fn recv_control(
    controls: &mut Option<tokio::sync::mpsc::Receiver<crate::context::ControlRequest>>,
) -> Option<crate::context::ControlRequest> {
    match controls {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A stream of a task's output the driver reads: a pipe is enlarged once a
/// read fills the read buffer (a fast writer then blocks less often and
/// wakes the reader less often); a quiet or short-lived process never
/// pays for it.
trait OutputStream: AsyncRead + Unpin {
    /// Makes the stream's kernel buffer larger, if it has one to grow.
    fn enlarge(&self) {}
}

fn enlarge_pipe(fd: &impl std::os::fd::AsFd) {
    // Failing is harmless: the pipe keeps its size.
    let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
}

impl OutputStream for pipe::Receiver {
    fn enlarge(&self) {
        enlarge_pipe(self);
    }
}

/// A task's root process as the driver waits for it: a child started here
/// on pipes, or by `pty-process` on a terminal.
trait RootProcess {
    /// The exit status if it has exited, without waiting.
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>>;
    /// Waits for its exit.
    fn wait(
        &mut self,
    ) -> impl std::future::Future<Output = std::io::Result<ExitStatus>> + Send + '_;
    /// Its `rusage`, once reaped here (`None` where another reaps it).
    fn usage(&self) -> Option<limits::RootUsage> {
        None
    }
}

impl RootProcess for Child {
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        Child::try_wait(self)
    }

    fn wait(
        &mut self,
    ) -> impl std::future::Future<Output = std::io::Result<ExitStatus>> + Send + '_ {
        Child::wait(self)
    }

    fn usage(&self) -> Option<limits::RootUsage> {
        Child::usage(self)
    }
}

impl RootProcess for tokio::process::Child {
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        tokio::process::Child::try_wait(self)
    }

    fn wait(
        &mut self,
    ) -> impl std::future::Future<Output = std::io::Result<ExitStatus>> + Send + '_ {
        tokio::process::Child::wait(self)
    }
}

fn describe_exit(status: ExitStatus) -> (ExitInfo, Option<String>) {
    let exit = ExitInfo {
        code: status.code(),
        signal: status.signal(),
    };
    let error = match (status.code(), status.signal()) {
        (Some(0), _) => None,
        (Some(code), _) => Some(format!("exited with code {code}")),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig)
                .map(|s| s.as_str())
                .unwrap_or("unknown");
            Some(format!("killed by signal {sig} ({name})"))
        }
        (None, None) => Some("ended with an unknown status".to_string()),
    };
    (exit, error)
}

#[async_trait::async_trait]
impl BackgroundTask for ProcessTask {
    fn kind(&self) -> &str {
        "process"
    }

    fn description(&self) -> String {
        self.description
            .clone()
            .unwrap_or_else(|| self.command_line())
    }

    fn accepts_messages(&self) -> bool {
        self.interactive || self.pty.is_some()
    }

    fn stop_grace(&self) -> Option<Duration> {
        Some(
            self.kill_grace
                .saturating_add(self.drain_grace)
                .saturating_add(Duration::from_secs(1)),
        )
    }

    fn validate(&self) -> crate::Result<()> {
        self.check()
    }

    fn check_limits(
        &self,
        defaults: &crate::limits::Limits,
        ceiling: &crate::limits::Limits,
        policy: crate::limits::UnenforcedLimits,
    ) -> crate::Result<()> {
        self.refuse_unenforceable(defaults, ceiling, policy)
    }

    fn pausable(&self) -> bool {
        true
    }

    fn as_process_task(&self) -> Option<&ProcessTask> {
        Some(self)
    }

    async fn run(self: Box<Self>, ctx: TaskContext) -> TaskOutcome {
        if let Some((cols, rows)) = self.pty {
            return pty::run(self, ctx, cols, rows).await;
        }
        // From here on, dropping `procs` (the future was dropped) kills
        // every process of the task.
        let Started { mut child, procs } = match self.start(&ctx) {
            Ok(started) => started,
            Err(e) => return TaskOutcome::failed(e),
        };
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return TaskOutcome::failed("the child's output pipes are missing");
        };

        let child_exited = CancellationToken::new();
        if let Some(stdin) = child.stdin.take() {
            let inbox = if self.interactive {
                ctx.take_inbox().await
            } else {
                None
            };
            tokio::spawn(stdin::feed_stdin(
                stdin,
                self.stdin.clone(),
                inbox,
                child_exited.clone(),
            ));
        }
        self.drive(&ctx, child, procs, stdout, Some(stderr), None, child_exited)
            .await
    }
}

impl ProcessTask {
    /// Reads the task's output until the child exited and its output ended
    /// (or the drain grace passed), while it answers stop requests (SIGTERM,
    /// the kill grace, SIGKILL to all), pause/resume and resize requests;
    /// then kills what is left and describes the end. `stdout` is the
    /// terminal under a PTY (no `stderr` then). `child_exited` is cancelled
    /// when the child exits (and when this returns), for the input feeder.
    #[allow(clippy::too_many_arguments)]
    async fn drive(
        &self,
        ctx: &TaskContext,
        mut child: impl RootProcess,
        mut procs: contain::Contained,
        mut stdout: impl OutputStream,
        stderr: Option<impl OutputStream>,
        terminal: Option<pty::Terminal>,
        child_exited: CancellationToken,
    ) -> TaskOutcome {
        let _stop_feeder = child_exited.clone().drop_guard();
        let output = ctx.output();
        let cancel = ctx.cancel_signal().clone();
        let mut controls = ctx.take_controls();
        let mut out_buf = ReadBuffer::new(READ_CHUNK);
        let mut err_buf = ReadBuffer::new(READ_CHUNK / 2);
        let (mut stdout_open, mut stderr_open) = (true, stderr.is_some());
        let mut stderr = stderr;
        let mut exit_status: Option<ExitStatus> = None;
        let mut failure: Option<String> = None;
        let mut drain_until: Option<Instant> = None;
        let mut kill_at: Option<Instant> = None;
        let mut terminating = false;
        // Set once the task's memory cgroup ran out of memory (v1): the
        // whole tree is killed then, as v2's `memory.oom.group` does.
        let mut out_of_memory = false;
        // Whether the child's status was in before any stop signal was sent.
        let mut ended_on_its_own = false;
        let out_name = if terminal.is_some() {
            "the terminal"
        } else {
            "stdout"
        };

        loop {
            if exit_status.is_some() && !stdout_open && !stderr_open {
                break;
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled(), if !terminating => {
                    terminating = true;
                    // A child that already exited on its own is not stopped:
                    // its natural status stands.
                    if exit_status.is_none() {
                        if let Ok(Some(status)) = child.try_wait() {
                            exit_status = Some(status);
                            ended_on_its_own = true;
                            child_exited.cancel();
                            drain_until = crate::util::deadline(Instant::now(), self.drain_grace);
                        }
                    }
                    procs.signal(Signal::SIGTERM);
                    // A paused (stopped) process must run to see its SIGTERM.
                    procs.signal(Signal::SIGCONT);
                    kill_at = crate::util::deadline(Instant::now(), self.kill_grace);
                }
                request = recv_control(&mut controls), if controls.is_some() => match request {
                    Some(request) => {
                        let answer = match request.control {
                            Control::Signal(signal) => {
                                // After a stop began, only continuing is allowed.
                                if !terminating || signal == Signal::SIGCONT {
                                    procs.signal(signal);
                                }
                                Ok(())
                            }
                            Control::Resize { cols, rows } => match &terminal {
                                Some(terminal) => terminal.resize(cols, rows),
                                None => Err("it has no terminal (start a process task with `pty`)".to_string()),
                            },
                        };
                        let _ = request.done.send(answer);
                    }
                    None => controls = None,
                },
                _ = procs.oom(), if !out_of_memory => {
                    out_of_memory = true;
                    procs.kill_all().await;
                }
                _ = crate::util::sleep_until(kill_at), if kill_at.is_some() => {
                    procs.kill_all().await;
                    kill_at = None;
                }
                _ = crate::util::sleep_until(drain_until), if drain_until.is_some() => {
                    // The child is gone but something still holds a pipe: stop reading.
                    break;
                }
                status = child.wait(), if exit_status.is_none() => {
                    match status {
                        Ok(status) => exit_status = Some(status),
                        Err(e) => {
                            failure.get_or_insert_with(|| format!("waiting for the process: {e}"));
                            exit_status = Some(ExitStatus::from_raw(0));
                        }
                    }
                    ended_on_its_own = !terminating;
                    child_exited.cancel();
                    drain_until = crate::util::deadline(Instant::now(), self.drain_grace);
                }
                read = stdout.read_buf(out_buf.space()), if stdout_open => match read {
                    Ok(0) => stdout_open = false,
                    Ok(n) => {
                        output.write_through(&Stream::STDOUT, out_buf.filled(n));
                        if out_buf.first_fill() {
                            stdout.enlarge();
                        }
                    }
                    Err(e) => {
                        failure.get_or_insert_with(|| format!("reading {out_name}: {e}"));
                        stdout_open = false;
                    }
                },
                read = read_some(&mut stderr, err_buf.space()), if stderr_open => match read {
                    Ok(0) => stderr_open = false,
                    Ok(n) => {
                        output.write_through(&Stream::STDERR, err_buf.filled(n));
                        if err_buf.first_fill() {
                            if let Some(stderr) = &stderr {
                                stderr.enlarge();
                            }
                        }
                    }
                    Err(e) => {
                        failure.get_or_insert_with(|| format!("reading stderr: {e}"));
                        stderr_open = false;
                    }
                },
            }
        }

        if self.kill_group_on_exit || terminating {
            procs.kill_all().await;
        }
        // Read before the cgroups go: the OOM count, the peak, CPU time.
        let (oom_error, usage) = procs.end_report(child.usage(), out_of_memory);
        procs.finish();
        let Some(status) = exit_status else {
            return TaskOutcome::failed("the process status is unknown").with_usage(usage);
        };
        let (exit, exit_error) = describe_exit(status);
        // A kill at the memory limit is said as such, whatever the root's
        // own status (it may have outlived the process the kernel chose).
        let outcome = match oom_error.or(failure).or(exit_error) {
            Some(error) => TaskOutcome::failed(error).with_exit(exit),
            None => TaskOutcome {
                success: true,
                value: None,
                error: None,
                exit: Some(exit),
                usage: None,
                ended_on_its_own: false,
            },
        }
        .with_usage(usage);
        if ended_on_its_own {
            outcome.ended_on_its_own()
        } else {
            outcome
        }
    }
}

/// A read buffer that starts small and doubles, up to its most, each time a
/// read fills it: a quiet or short-lived process never costs the large
/// buffer, a flood gets it after a few reads. Reads go into its spare
/// capacity (`read_buf`), so nothing is zeroed first. Buffers of the first
/// size are handed from one task to the next through a small stash per
/// thread: every process task needs two, and a fresh allocation of this
/// size makes the allocator first merge its small free chunks, a cost paid
/// on every spawn.
struct ReadBuffer {
    buf: Vec<u8>,
    most: usize,
    first_fill: FirstFill,
}

/// Whether a read has filled a [`ReadBuffer`] yet, and whether that was
/// told ([`ReadBuffer::first_fill`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum FirstFill {
    NotYet,
    Untold,
    Told,
}

thread_local! {
    /// Emptied buffers of [`ReadBuffer::FIRST`] bytes, for the next tasks.
    static SPARE_READ_BUFFERS: std::cell::RefCell<Vec<Vec<u8>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl ReadBuffer {
    const FIRST: usize = 8 * 1024;
    /// Spare buffers kept per thread, at most.
    const SPARES: usize = 4;

    fn new(most: usize) -> ReadBuffer {
        let spare = if most >= Self::FIRST {
            SPARE_READ_BUFFERS
                .try_with(|spares| spares.borrow_mut().pop())
                .ok()
                .flatten()
        } else {
            None
        };
        ReadBuffer {
            buf: spare.unwrap_or_else(|| Vec::with_capacity(Self::FIRST.min(most))),
            most,
            first_fill: FirstFill::NotYet,
        }
    }

    /// Where the next read goes: the buffer emptied, its capacity free.
    fn space(&mut self) -> &mut Vec<u8> {
        self.buf.clear();
        &mut self.buf
    }

    /// The `n` bytes a read put in; the buffer grows if they filled it.
    fn filled(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.buf.len());
        if n >= self.buf.capacity() && self.first_fill == FirstFill::NotYet {
            self.first_fill = FirstFill::Untold;
        }
        if n >= self.buf.capacity() && self.buf.capacity() < self.most {
            let bigger = (self.buf.capacity() * 2).min(self.most);
            self.buf.reserve_exact(bigger - self.buf.len());
        }
        &self.buf[..n]
    }

    /// True once, after the first read that filled the buffer: the writer
    /// is fast.
    fn first_fill(&mut self) -> bool {
        let untold = self.first_fill == FirstFill::Untold;
        if untold {
            self.first_fill = FirstFill::Told;
        }
        untold
    }
}

impl Drop for ReadBuffer {
    /// A buffer still of the first size goes to the stash (a grown one is
    /// freed: the stash stays small).
    fn drop(&mut self) {
        if self.buf.capacity() != Self::FIRST {
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        // (During the thread's exit the stash is gone: the buffer is freed.)
        let _ = SPARE_READ_BUFFERS.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.len() < Self::SPARES {
                spares.push(buf);
            }
        });
    }
}

/// Reads from `reader` if there is one, into `buf`'s spare capacity; a
/// missing reader is at its end.
async fn read_some(
    reader: &mut Option<impl AsyncRead + Unpin>,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    match reader {
        Some(reader) => reader.read_buf(buf).await,
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::ReadBuffer;

    #[test]
    fn a_read_buffer_grows_when_filled_and_keeps_what_was_read() {
        let mut buf = ReadBuffer::new(32 * 1024);
        assert_eq!(buf.space().capacity(), 8 * 1024);
        // A short read: no growth, and the writer is not taken for fast.
        buf.space().extend_from_slice(b"abc");
        assert_eq!(buf.filled(3), b"abc");
        assert!(!buf.first_fill());
        assert_eq!(buf.space().capacity(), 8 * 1024);
        // Full reads double it up to its most, the bytes read intact.
        for expected in [16 * 1024, 32 * 1024, 32 * 1024] {
            let space = buf.space();
            let n = space.capacity();
            space.resize(n, b'x');
            let read = buf.filled(n);
            assert_eq!(read.len(), n);
            assert!(read.iter().all(|b| *b == b'x'));
            assert!(buf.space().capacity() >= expected);
            assert!(buf.space().capacity() < expected * 2);
            // The first full read says so, once.
            assert_eq!(buf.first_fill(), expected == 16 * 1024);
        }
        // A most below the first size is the size.
        assert_eq!(ReadBuffer::new(1024).space().capacity(), 1024);
    }

    #[test]
    fn a_first_size_read_buffer_is_reused_by_the_next_task_and_a_grown_one_is_not() {
        let mut first = ReadBuffer::new(64 * 1024);
        first.space().extend_from_slice(b"old bytes");
        let at = first.space().as_ptr();
        drop(first);
        let mut next = ReadBuffer::new(64 * 1024);
        assert_eq!(
            next.space().as_ptr(),
            at,
            "the stashed buffer was not reused"
        );
        assert!(next.space().is_empty());
        // Grown, it is freed at the end instead.
        let n = next.space().capacity();
        next.space().resize(n, b'x');
        assert_eq!(next.filled(n).len(), n);
        assert!(next.space().capacity() > 8 * 1024);
        drop(next);
        let mut after = ReadBuffer::new(64 * 1024);
        assert_eq!(after.space().capacity(), 8 * 1024);
    }
}
