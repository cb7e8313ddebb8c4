//! The supervisor process: one per supervised task, started by the host
//! through [`super::SUPERVISOR_ARG`]. It re-spawns itself in a session of
//! its own (so it is never the host's child and no signal to the host's
//! group reaches it), binds the task's control socket, waits for its host
//! to attach, then runs the task with this library's own `ProcessTask`
//! code (containment, limits, kill escalation, the output rules: memory →
//! spill → head + tail, `output.log` byte for byte as a host writes it),
//! passing every chunk on to the attached host after it is in the log. It
//! fires the task's timeout itself, so it fires with no host attached, and
//! saves the exit record before it tells the host the task ended.
//!
//! One thread runs the task (a current-thread runtime); each attached
//! host's frames are read by a thread of its own and handed over in order.
//! Writes to the host block (with a bound): a slow host slows the task, as
//! a slow disk does, and a host that stops reading is let go.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::context::{CancelSignal, Control, ControlRequest, HostLinks, Inbox, OutputWriter};
use crate::context::{Message, TaskContext};
use crate::id::TaskId;
use crate::info::CancelReason;
use crate::output::{OutputBuffer, OutputEvent, OutputLimits};
use crate::root_dir::{Folder, RootDir};
use crate::sink::{Sink, Stream};
use crate::task::BackgroundTask;
use crate::util::{lock, now_ms};

use super::protocol::{encode, read_frame_blocking, Frame, Started};
use super::records::{ExitRecord, Spec, EXIT_FILE, SOCKET_FILE, SPEC_FILE};
use super::{OnHostExit, SUPERVISOR_ARG};

/// The argument of the second stage (the supervisor proper).
const RUN_ARG: &str = "--agent-tasks-supervisor-run";
/// How long the supervisor waits for its host's first attach.
const FIRST_ATTACH: Duration = Duration::from_secs(30);
/// How long a write to the host may block before the host is let go.
const HOST_WRITE_BOUND: Duration = Duration::from_secs(30);
/// The supervisor's own messages (it has no terminal).
const LOG_FILE: &str = "supervisor.log";

/// Runs the supervisor if `args` (a program's arguments, the program's
/// name first) ask for it; returns the exit code then, `None` if not.
/// The marker may follow arguments of the program's own (an interpreter's
/// `-m module`): they are kept for the second stage.
pub(crate) fn main_if_asked(args: &[OsString]) -> Option<i32> {
    let at = args
        .iter()
        .position(|a| a == SUPERVISOR_ARG || a == RUN_ARG)?;
    let dir = Path::new(args.get(at + 1)?);
    if args[at] == RUN_ARG {
        return Some(supervise(dir));
    }
    if single_threaded() {
        return Some(fork_off(dir));
    }
    Some(respawn(&args[..at], dir))
}

/// Whether this process runs one thread (`Threads:` of its status).
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|l| l.strip_prefix("Threads:").is_some_and(|n| n.trim() == "1"))
    })
}

/// The first stage of a single-threaded program: forks the supervisor
/// proper into a new session and returns at once (the host reaps this
/// process; the supervisor is never its child). One exec less than
/// [`respawn`].
fn fork_off(dir: &Path) -> i32 {
    // SAFETY: the process has one thread (checked just before; nothing
    // here starts one), so the child inherits no lock another thread held
    // and may go on running ordinary code.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => 0,
        Ok(nix::unistd::ForkResult::Child) => {
            if let Err(e) = nix::unistd::setsid() {
                return fail(&format!("starting a session: {e}"));
            }
            supervise(dir)
        }
        Err(e) => fail(&format!("starting the supervisor: {e}")),
    }
}

/// The first stage of a program that runs threads already: starts the
/// supervisor proper in a new session and returns at once, so the host
/// reaps this process and the supervisor is never its child. `program` is this program's own arguments (its name
/// first): the same program runs again, as it was named (an interpreter in
/// a virtual environment must keep its path), with them.
fn respawn(program: &[OsString], dir: &Path) -> i32 {
    let named = program
        .first()
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let exe = match named.map_or_else(std::env::current_exe, Ok) {
        Ok(exe) => exe,
        Err(e) => return fail(&format!("finding the supervisor's program: {e}")),
    };
    let mut command = std::process::Command::new(exe);
    command
        .args(program.iter().skip(1))
        .arg(RUN_ARG)
        .arg(dir)
        .stdin(std::process::Stdio::null());
    // SAFETY: `setsid` is async-signal-safe and touches no memory of the
    // parent; it is the only thing done between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    match command.spawn() {
        Ok(_) => 0,
        Err(e) => fail(&format!("starting the supervisor: {e}")),
    }
}

/// Tells the host (on stdout, its handshake pipe) why the supervisor
/// cannot run.
fn fail(message: &str) -> i32 {
    let _ = writeln!(std::io::stdout(), "error: {message}");
    1
}

/// The task's folder as a root-relative folder, opened by path (the
/// supervisor holds no root lock: it writes only its task's files).
fn open_folder(dir: &Path) -> std::io::Result<Folder> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(std::io::Error::other("the task folder has no parent"));
    };
    Ok(RootDir::open(parent)?.folder(PathBuf::from(name)))
}

/// Closes every descriptor but stdin, stdout and stderr: a host's own
/// (ones a Python or Node host left inheritable) must not live on in a
/// process that outlives it.
fn close_inherited() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: this runs first in a fresh single-threaded process,
        // before it opened anything of its own, so no owner of these
        // descriptors exists to use them after this. The listing's own
        // descriptor is among the numbers, closed already: the check skips
        // numbers that are not open.
        unsafe {
            let borrowed = std::os::fd::BorrowedFd::borrow_raw(fd);
            if rustix::io::fcntl_getfd(borrowed).is_ok() {
                rustix::io::close(fd);
            }
        }
    }
}

/// The second stage: the supervisor proper.
fn supervise(dir: &Path) -> i32 {
    close_inherited();
    let folder = match open_folder(dir) {
        Ok(folder) => folder,
        Err(e) => return fail(&format!("opening {}: {e}", dir.display())),
    };
    // Held for the supervisor's whole life: a host tests it to know the
    // supervisor lives.
    let lock_file = match folder.open_file(SPEC_FILE, crate::root_dir::Access::Read) {
        Ok(file) => file,
        Err(e) => return fail(&format!("opening {SPEC_FILE}: {e}")),
    };
    if rustix::fs::flock(
        &lock_file,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )
    .is_err()
    {
        return fail("another supervisor runs this task");
    }
    let spec = match super::records::read_spec(&folder) {
        Ok(spec) => spec,
        Err(e) => return fail(&format!("reading {SPEC_FILE}: {e}")),
    };
    let listener = match bind(dir, &spec.cwd) {
        Ok(listener) => listener,
        Err(e) => return fail(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("starting the runtime: {e}")),
    };
    // The handshake: the host reads this line, then its pipe closes.
    let _ = writeln!(std::io::stdout(), "ready");
    quiet_stdio(&folder);
    let code = runtime.block_on(serve(spec, folder.clone(), listener));
    drop(lock_file);
    code
}

/// Binds the control socket in the task's folder (mode 0600, by a relative
/// path, so a long root fits), then moves to the host's working folder.
fn bind(dir: &Path, cwd: &Path) -> Result<UnixListener, String> {
    std::env::set_current_dir(dir).map_err(|e| format!("entering {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(SOCKET_FILE);
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(SOCKET_FILE);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| format!("binding {SOCKET_FILE}: {e}"))?;
    std::env::set_current_dir(cwd)
        .map_err(|e| format!("entering the host's folder {}: {e}", cwd.display()))?;
    Ok(listener)
}

/// Stdin and stdout to `/dev/null`, stderr to the supervisor's log.
fn quiet_stdio(folder: &Folder) {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
    }
    if let Ok(log) = folder.open_file(LOG_FILE, crate::root_dir::Access::Append) {
        let _ = rustix::stdio::dup2_stderr(&log);
    }
}

/// The attached host, if any: where frames go.
#[derive(Default)]
struct Link {
    host: Mutex<Option<(u64, UnixStream)>>,
    /// The attached host wants every chunk's bytes.
    every_byte: std::sync::atomic::AtomicBool,
    /// Connections accepted whose attach has not been handled yet.
    connecting: Mutex<Vec<(u64, UnixStream)>>,
}

impl Link {
    /// Sends a frame to the attached host; a host that cannot take it is
    /// let go (it re-attaches with a snapshot).
    fn send(&self, frame: &Frame, payload: &[u8]) {
        let mut host = lock(&self.host);
        if let Some((_, stream)) = host.as_mut() {
            if (&*stream).write_all(&encode(frame, payload)).is_err() {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                *host = None;
            }
        }
    }
}

/// Passes each chunk on to the attached host, after the buffer wrote it:
/// by its length alone if it went wholly into the log (the host reads it
/// there) and the host did not ask for every byte.
struct ForwardSink {
    link: Arc<Link>,
    buffer: Arc<OutputBuffer>,
}

impl Sink for ForwardSink {
    fn write(&self, stream: &Stream, bytes: &[u8]) -> std::io::Result<()> {
        let by_length = !self
            .link
            .every_byte
            .load(std::sync::atomic::Ordering::Relaxed)
            && self.buffer.all_in_log();
        let (logged, payload) = if by_length {
            (Some(bytes.len() as u64), &[][..])
        } else {
            (None, bytes)
        };
        self.link.send(
            &Frame::Output {
                stream: stream.clone(),
                logged,
            },
            payload,
        );
        Ok(())
    }
}

/// What the threads reading hosts hand the supervisor.
enum HostEvent {
    Frame(u64, Box<Frame>, Vec<u8>),
    Gone(u64),
}

async fn serve(spec: Spec, folder: Folder, listener: UnixListener) -> i32 {
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixListener::from_std(listener))
    {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("listening: {e}");
            return 1;
        }
    };
    let Ok(id) = TaskId::parse(&spec.task_id) else {
        eprintln!("not a task id: {}", spec.task_id);
        return 1;
    };
    let limits = OutputLimits {
        memory_limit: spec.memory_limit,
        disk_limit: spec.disk_limit,
        tail_window: spec.tail_window,
        gather: false,
        track_activity: false,
    };
    let buffer = Arc::new(OutputBuffer::new(folder.clone(), limits, true));
    let link = Arc::new(Link::default());
    let started: Arc<Mutex<Option<Started>>> = Arc::default();
    let on_event = {
        let link = link.clone();
        Arc::new(move |event: OutputEvent| {
            if let OutputEvent::WriteFailed(error) = event {
                link.send(&Frame::WriteFailed { error }, &[]);
            }
        })
    };
    let sinks: Arc<[crate::sink::SharedSink]> = Arc::new([Arc::new(ForwardSink {
        link: link.clone(),
        buffer: buffer.clone(),
    }) as crate::sink::SharedSink]);
    let writer = OutputWriter::new(
        buffer.clone(),
        sinks,
        Arc::default(),
        on_event,
        tokio::runtime::Handle::current(),
    );
    let cancel = CancelSignal::new();
    let task = spec.task.clone();
    let inbox = task.accepts_messages().then(|| Inbox::new(1024));
    let (controls_tx, controls_rx) = mpsc::channel::<ControlRequest>(4);
    let pid_hook = {
        let (link, started) = (link.clone(), started.clone());
        Arc::new(move |pid, containment, start_time, limits| {
            let info = Started {
                pid,
                containment,
                start_time,
                limits,
            };
            *lock(&started) = Some(info.clone());
            link.send(&Frame::Started(info), &[]);
        })
    };
    let ctx = TaskContext::new(
        id,
        writer,
        cancel.clone(),
        inbox.clone(),
        Some(controls_rx),
        HostLinks {
            pid_hook,
            turn_hook: Arc::new(|_, _| {}),
            spawn_gate: Arc::default(),
            limits: crate::limits::HostLimits {
                defaults: spec.default_limits,
                policy: spec.unenforced_limits,
                ceiling: None,
            },
        },
    );
    let mut ctx = Some(ctx);
    let (events_tx, mut events) = mpsc::unbounded_channel::<HostEvent>();
    let mut next_host = 0u64;
    let mut run: Option<std::pin::Pin<Box<dyn std::future::Future<Output = _>>>> = None;
    let first_attach = tokio::time::Instant::now() + FIRST_ATTACH;
    let deadline = spec.deadline_ms.map(|at| {
        let left = at.saturating_sub(now_ms());
        crate::util::deadline(tokio::time::Instant::now(), Duration::from_millis(left))
    });
    let deadline = deadline.flatten();
    let outcome = loop {
        tokio::select! {
            outcome = async { run.as_mut().expect("checked").await }, if run.is_some() => break outcome,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                if !same_user(&stream) {
                    continue;
                }
                let Ok(stream) = stream.into_std().and_then(|s| { s.set_nonblocking(false)?; Ok(s) }) else { continue };
                next_host += 1;
                watch_host(next_host, stream, &link, events_tx.clone());
            }
            event = events.recv() => {
                let Some(event) = event else { continue };
                match event {
                    HostEvent::Frame(host, frame, _) if matches!(*frame, Frame::Attach { .. }) => {
                        let every_byte = matches!(*frame, Frame::Attach { every_byte: true });
                        attach(host, every_byte, &link, &buffer, &started);
                        if let Some(ctx) = ctx.take() {
                            run = Some(Box::pin(Box::new(task.clone()).run(ctx)));
                        }
                    }
                    HostEvent::Frame(_, frame, payload) => {
                        on_request(*frame, payload, &cancel, inbox.as_deref(), &controls_tx, &link);
                    }
                    HostEvent::Gone(host) => {
                        lock(&link.connecting).retain(|(id, _)| *id != host);
                        let mut attached = lock(&link.host);
                        if attached.as_ref().is_some_and(|(id, _)| *id == host) {
                            *attached = None;
                            drop(attached);
                            if spec.on_host_exit == OnHostExit::Kill {
                                cancel.cancel(CancelReason::shutdown("its host exited"));
                            }
                        }
                    }
                }
            }
            _ = crate::util::sleep_until(deadline), if deadline.is_some() && run.is_some() => {
                cancel.cancel(CancelReason::timeout());
            }
            _ = tokio::time::sleep_until(first_attach), if run.is_none() => {
                eprintln!("no host attached within {FIRST_ATTACH:?}");
                let _ = folder.remove_file(SOCKET_FILE);
                return 1;
            }
        }
    };
    let report = buffer.finish();
    for event in report.events {
        if let OutputEvent::WriteFailed(error) = event {
            link.send(&Frame::WriteFailed { error }, &[]);
        }
    }
    let mut record = ExitRecord {
        success: outcome.success,
        error: outcome.error.clone(),
        exit: outcome.exit,
        usage: outcome.usage.clone(),
        ended_on_its_own: outcome.ended_on_its_own,
        stop: cancel.reason(),
        output: buffer.stats(),
        log_head: buffer.capped_head(),
        ended_at_ms: now_ms(),
        killed_from_outside: None,
    };
    let natural = cancel.reason().is_none() || outcome.ended_on_its_own;
    if let (true, false, Some(started)) = (natural, outcome.success, lock(&started).as_ref()) {
        record.killed_from_outside = crate::inspect::take_kill_request(&folder, started.pid);
    }
    let saved = serde_json::to_vec(&record)
        .map_err(std::io::Error::other)
        .and_then(|bytes| folder.write_whole_unsynced(EXIT_FILE, &bytes));
    if let Err(e) = saved {
        eprintln!("saving {EXIT_FILE}: {e}");
    }
    link.send(&Frame::Ended, &[]);
    let _ = folder.remove_file(SOCKET_FILE);
    0
}

/// Whether the peer of a connection runs as this process's user.
fn same_user(stream: &tokio::net::UnixStream) -> bool {
    match stream.peer_cred() {
        Ok(cred) => cred.uid() == rustix::process::getuid().as_raw(),
        Err(_) => false,
    }
}

/// Reads a host's frames on a thread of its own, in order. Its writing
/// end waits in `link` for its attach.
fn watch_host(
    host: u64,
    stream: UnixStream,
    link: &Link,
    events: mpsc::UnboundedSender<HostEvent>,
) {
    let Ok(mut reader) = stream.try_clone() else {
        return;
    };
    let _ = stream.set_write_timeout(Some(HOST_WRITE_BOUND));
    lock(&link.connecting).push((host, stream));
    std::thread::spawn(move || {
        let mut first = true;
        while let Ok((frame, payload)) = read_frame_blocking(&mut reader) {
            // A connection speaks only after it attached.
            if std::mem::take(&mut first) && !matches!(frame, Frame::Attach { .. }) {
                break;
            }
            if events
                .send(HostEvent::Frame(host, Box::new(frame), payload))
                .is_err()
            {
                break;
            }
        }
        let _ = events.send(HostEvent::Gone(host));
    });
}

/// A host attaches: it gets the stream's state now, then every chunk after
/// it (no write happens between the two: this runs on the task's thread).
/// A host attached before is let go.
fn attach(
    host: u64,
    every_byte: bool,
    link: &Link,
    buffer: &OutputBuffer,
    started: &Mutex<Option<Started>>,
) {
    let stream = {
        let mut connecting = lock(&link.connecting);
        let Some(at) = connecting.iter().position(|(id, _)| *id == host) else {
            return;
        };
        connecting.swap_remove(at).1
    };
    let mut snapshot = buffer.snapshot();
    let tail = std::mem::take(&mut snapshot.tail);
    let frame = Frame::Snapshot {
        output: snapshot,
        started: lock(started).clone(),
    };
    let mut attached = lock(&link.host);
    if let Some((_, old)) = attached.take() {
        let _ = old.shutdown(std::net::Shutdown::Both);
    }
    if (&stream).write_all(&encode(&frame, &tail)).is_ok() {
        link.every_byte
            .store(every_byte, std::sync::atomic::Ordering::Relaxed);
        *attached = Some((host, stream));
    }
}

/// Acts on a host's request.
fn on_request(
    frame: Frame,
    payload: Vec<u8>,
    cancel: &CancelSignal,
    inbox: Option<&Inbox>,
    controls: &mpsc::Sender<ControlRequest>,
    link: &Arc<Link>,
) {
    let control = match frame {
        Frame::Input { eof } => {
            if let Some(inbox) = inbox {
                if !payload.is_empty() {
                    let _ = inbox.try_send(Message::from(payload));
                }
                if eof {
                    let _ = inbox.try_send(Message::eof());
                }
            }
            return;
        }
        Frame::Cancel { reason } => {
            cancel.cancel(reason);
            return;
        }
        Frame::Signal { signal } => match nix::sys::signal::Signal::try_from(signal) {
            Ok(signal) => Control::Signal(signal),
            Err(_) => {
                link.send(
                    &Frame::Answer {
                        error: Some(format!("{signal} is not a signal")),
                    },
                    &[],
                );
                return;
            }
        },
        Frame::Resize { cols, rows } => Control::Resize { cols, rows },
        _ => return,
    };
    let (done, answer) = tokio::sync::oneshot::channel();
    let controls = controls.clone();
    let link = link.clone();
    tokio::spawn(async move {
        let error = match controls.send(ControlRequest { control, done }).await {
            Ok(()) => match answer.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("the task has ended".to_string()),
            },
            Err(_) => Some("the task has ended".to_string()),
        };
        link.send(&Frame::Answer { error }, &[]);
    });
}
