//! [`ProcessTask`]: a command run in its own process group. Process control
//! lives here: spawning, reading stdout and stderr as separate streams,
//! forwarding steering messages to stdin, the SIGTERM → grace → SIGKILL
//! escalation on the whole group, and the bounded drain after the child exits
//! (a grandchild holding a pipe open cannot hang the task).

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};
use tokio::time::Instant;

use crate::context::{Message, TaskContext};
use crate::info::ExitInfo;
use crate::sink::Stream;
use crate::task::{BackgroundTask, TaskOutcome};

const READ_CHUNK: usize = 128 * 1024;
/// Pipes are enlarged to this so a fast writer blocks less often.
const PIPE_SIZE: i32 = 1024 * 1024;

#[derive(Clone, Debug)]
enum Program {
    Argv(Vec<OsString>),
    Shell(String),
}

/// A command to run as a task: argv or a shell string, with cwd, env and
/// stdin. It runs in its own process group; cancel sends SIGTERM to the group,
/// waits the kill grace (default 5 s), then SIGKILL to the group.
///
/// Exit code 0 is `completed`; any other exit, a signal, a spawn error or a
/// pipe read error is `failed`.
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
#[derive(Clone, Debug)]
pub struct ProcessTask {
    program: Program,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    env_clear: bool,
    stdin: Option<Vec<u8>>,
    interactive: bool,
    kill_grace: Duration,
    drain_grace: Duration,
    kill_group_on_exit: bool,
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
            kill_grace: Duration::from_secs(5),
            drain_grace: Duration::from_secs(2),
            kill_group_on_exit: true,
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

    fn build_command(&self) -> Result<Command, String> {
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
        if let Some(dir) = &self.cwd {
            if !dir.is_dir() {
                return Err(format!(
                    "the working directory `{}` does not exist or is not a directory",
                    dir.display()
                ));
            }
            cmd.current_dir(dir);
        }
        if self.env_clear {
            cmd.env_clear();
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let wants_stdin = self.stdin.is_some() || self.interactive;
        cmd.stdin(if wants_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
        Ok(cmd)
    }
}

/// Sends SIGKILL to the group when dropped while armed, so a task future that
/// is dropped (manager gave up waiting, runtime shut down) leaves no process.
struct GroupGuard {
    pgid: Pid,
    armed: bool,
}

impl GroupGuard {
    fn signal(&self, signal: Signal) {
        // ESRCH (the group is gone) is the expected end state: ignore errors.
        let _ = killpg(self.pgid, signal);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            self.signal(Signal::SIGKILL);
        }
    }
}

/// Start time of process `pid` in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), or `None` if no such process runs. With the pid it
/// names one process for good: a reused pid has another start time.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state); field 22 is index 19 here.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None; // a zombie has ended; it only waits to be reaped
    }
    fields.get(19)?.parse().ok()
}

/// Sends SIGKILL to process group `pgid`; true if the group existed.
pub(crate) fn kill_group(pgid: u32) -> bool {
    killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL).is_ok()
}

fn enlarge_pipe(fd: &impl std::os::fd::AsFd) {
    // A larger pipe means fewer wake-ups for a fast writer; failing is harmless.
    let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
}

async fn feed_stdin(
    mut stdin: ChildStdin,
    initial: Option<Vec<u8>>,
    inbox: Option<tokio::sync::mpsc::Receiver<Message>>,
) {
    if let Some(bytes) = initial {
        if stdin.write_all(&bytes).await.is_err() {
            return;
        }
        let _ = stdin.flush().await;
    }
    let Some(mut inbox) = inbox else {
        return; // dropping stdin closes it: the child sees EOF
    };
    while let Some(msg) = inbox.recv().await {
        if stdin.write_all(msg.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
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
        self.interactive
    }

    fn stop_grace(&self) -> Option<Duration> {
        Some(self.kill_grace + self.drain_grace + Duration::from_secs(1))
    }

    async fn run(self: Box<Self>, ctx: TaskContext) -> TaskOutcome {
        let mut cmd = match self.build_command() {
            Ok(cmd) => cmd,
            Err(e) => return TaskOutcome::failed(e),
        };
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                return TaskOutcome::failed(format!(
                    "failed to start `{}`: {e}",
                    self.command_line()
                ))
            }
        };
        let Some(pid) = child.id() else {
            return TaskOutcome::failed("the process ended before its id could be read");
        };
        ctx.report_pid(pid);
        let mut guard = GroupGuard {
            pgid: Pid::from_raw(pid as i32),
            armed: true,
        };
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take())
        else {
            return TaskOutcome::failed("the child's output pipes are missing");
        };
        enlarge_pipe(&stdout);
        enlarge_pipe(&stderr);

        let stdin_feeder = match child.stdin.take() {
            Some(stdin) => {
                let inbox = if self.interactive {
                    ctx.take_inbox().await
                } else {
                    None
                };
                Some(tokio::spawn(feed_stdin(stdin, self.stdin.clone(), inbox)))
            }
            None => None,
        };

        let output = ctx.output();
        let cancel = ctx.cancel_signal().clone();
        let mut out_buf = vec![0u8; READ_CHUNK];
        let mut err_buf = vec![0u8; READ_CHUNK / 2];
        let (mut stdout_open, mut stderr_open) = (true, true);
        let mut exit_status: Option<ExitStatus> = None;
        let mut failure: Option<String> = None;
        let mut drain_until: Option<Instant> = None;
        let mut kill_at: Option<Instant> = None;
        let mut terminating = false;
        let far = Duration::from_secs(86_400 * 365);

        loop {
            if exit_status.is_some() && !stdout_open && !stderr_open {
                break;
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled(), if !terminating => {
                    terminating = true;
                    guard.signal(Signal::SIGTERM);
                    kill_at = Some(Instant::now() + self.kill_grace);
                }
                _ = tokio::time::sleep_until(kill_at.unwrap_or_else(|| Instant::now() + far)), if kill_at.is_some() => {
                    guard.signal(Signal::SIGKILL);
                    kill_at = None;
                }
                _ = tokio::time::sleep_until(drain_until.unwrap_or_else(|| Instant::now() + far)), if drain_until.is_some() => {
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
                    drain_until = Some(Instant::now() + self.drain_grace);
                }
                read = stdout.read(&mut out_buf), if stdout_open => match read {
                    Ok(0) => stdout_open = false,
                    Ok(n) => output.write_through(&Stream::STDOUT, &out_buf[..n]),
                    Err(e) => {
                        failure.get_or_insert_with(|| format!("reading stdout: {e}"));
                        stdout_open = false;
                    }
                },
                read = stderr.read(&mut err_buf), if stderr_open => match read {
                    Ok(0) => stderr_open = false,
                    Ok(n) => output.write_through(&Stream::STDERR, &err_buf[..n]),
                    Err(e) => {
                        failure.get_or_insert_with(|| format!("reading stderr: {e}"));
                        stderr_open = false;
                    }
                },
            }
        }

        if self.kill_group_on_exit || terminating {
            guard.signal(Signal::SIGKILL);
        }
        guard.armed = false;
        if let Some(feeder) = stdin_feeder {
            feeder.abort();
        }
        let Some(status) = exit_status else {
            return TaskOutcome::failed("the process status is unknown");
        };
        let (exit, exit_error) = describe_exit(status);
        match failure.or(exit_error) {
            Some(error) => TaskOutcome::failed(error).with_exit(exit),
            None => TaskOutcome {
                success: true,
                value: None,
                error: None,
                exit: Some(exit),
            },
        }
    }
}
