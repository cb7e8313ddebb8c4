//! The host's side of a supervised task: [`SupervisedTask`] is the task the
//! host's lifecycle runs in place of the `ProcessTask` it wraps. It starts
//! the supervisor (or takes a connection a re-attach made), then turns the
//! supervisor's frames into the entry's output (a mirror: see
//! `OutputBuffer::mirror`) and its process report, and the host's stop,
//! input, pause and resize into frames. Its end is the exit record's.
//! Dropping it (the host exits, leaves the task to a later host, or gives
//! up a stop after its grace) stops nothing: the supervisor goes on.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::context::{Control, ControlRequest, TaskContext};
use crate::info::Containment;
use crate::process::ProcessTask;
use crate::root_dir::Folder;
use crate::task::{BackgroundTask, TaskOutcome};

use super::protocol::{encode, read_frame, read_frame_blocking, Frame, Started};
use super::records::{socket_path, ExitRecord, Spec, SPEC_FILE};
use super::SUPERVISOR_ARG;

/// How long a host waits for a supervisor's handshake or first answer.
const HANDSHAKE_BOUND: Duration = Duration::from_secs(20);

/// Why the host records a failure when the supervisor died first.
pub(crate) const SUPERVISOR_DIED: &str =
    "its supervisor died before the task ended (the task's processes were killed)";

/// A process task run by a supervisor process (see the module's header).
pub(crate) struct SupervisedTask {
    task: ProcessTask,
    folder: Folder,
    start: Start,
}

enum Start {
    /// Start a supervisor with this spec, from this program.
    Launch {
        spec: Box<Spec>,
        program: super::Program,
    },
    /// A connection to a live supervisor, attached at open.
    Attached(Attached),
}

/// A connection to a supervisor that answered an attach.
pub(crate) struct Attached {
    pub stream: UnixStream,
    pub started: Option<Started>,
}

impl SupervisedTask {
    /// A task whose supervisor this host starts.
    pub(crate) fn launch(
        task: ProcessTask,
        folder: Folder,
        spec: Spec,
        program: super::Program,
    ) -> Self {
        SupervisedTask {
            task,
            folder,
            start: Start::Launch {
                spec: Box::new(spec),
                program,
            },
        }
    }

    /// A task whose supervisor runs already (a re-attach).
    pub(crate) fn attached(task: ProcessTask, folder: Folder, attached: Attached) -> Self {
        SupervisedTask {
            task,
            folder,
            start: Start::Attached(attached),
        }
    }
}

/// Connects to the supervisor of the task in `folder` and attaches: returns
/// the connection and the stream's state. Blocking, with a bound.
/// With `every_byte`, every chunk comes with its bytes (see
/// `Frame::Attach`).
pub(crate) fn attach(
    folder: &Folder,
    every_byte: bool,
) -> Result<(Attached, crate::output::OutputSnapshot), String> {
    let dir = folder
        .open_dir()
        .map_err(|e| format!("opening {}: {e}", folder.path().display()))?;
    let path = socket_path(&folder.path(), Some(dir.as_raw_fd()));
    let mut stream = UnixStream::connect(&path)
        .map_err(|e| format!("connecting to its supervisor ({}): {e}", path.display()))?;
    drop(dir);
    let _ = stream.set_read_timeout(Some(HANDSHAKE_BOUND));
    stream
        .write_all(&encode(&Frame::Attach { every_byte }, &[]))
        .map_err(|e| format!("attaching to its supervisor: {e}"))?;
    let (frame, tail) = read_frame_blocking(&mut stream)
        .map_err(|e| format!("attaching to its supervisor: {e}"))?;
    let _ = stream.set_read_timeout(None);
    match frame {
        Frame::Snapshot {
            mut output,
            started,
        } => {
            output.tail = tail;
            Ok((Attached { stream, started }, output))
        }
        other => Err(format!("its supervisor answered an attach with {other:?}")),
    }
}

/// Writes the spec, starts the supervisor and waits for its handshake.
fn start_supervisor(
    folder: &Folder,
    spec: &Spec,
    (program, args): &super::Program,
) -> Result<(), String> {
    let bytes = serde_json::to_vec(spec).map_err(|e| e.to_string())?;
    folder
        .write_whole_unsynced(SPEC_FILE, &bytes)
        .map_err(|e| format!("saving {SPEC_FILE}: {e}"))?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .arg(SUPERVISOR_ARG)
        .arg(folder.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the supervisor {}: {e}", program.display()))?;
    // The handshake: one line, then the pipe closes (the supervisor keeps
    // it open only until it is ready, or says why it is not).
    let mut said = String::new();
    let read = match child.stdout.take() {
        Some(mut out) => out.read_to_string(&mut said).map(|_| ()),
        None => Ok(()),
    };
    // The first stage exits at once; the supervisor is not this host's child.
    let _ = child.wait();
    read.map_err(|e| format!("reading the supervisor's handshake: {e}"))?;
    match said.lines().next() {
        Some("ready") => Ok(()),
        Some(line) => Err(format!(
            "the supervisor did not start: {}",
            line.strip_prefix("error: ").unwrap_or(line)
        )),
        None => Err(format!(
            "the supervisor {} exited without a handshake",
            program.display()
        )),
    }
}

/// Tells the entry which process the supervisor started.
fn report(ctx: &TaskContext, started: &Started) {
    match started.containment {
        Some(containment) => ctx.report_contained(
            started.pid,
            containment,
            started.start_time,
            started.limits.clone(),
        ),
        None => ctx.report_process(started.pid, Containment::ProcessGroup),
    }
}

async fn send(writer: &mut tokio::net::unix::OwnedWriteHalf, frame: &Frame, payload: &[u8]) {
    // A supervisor that is gone is seen on the reading side.
    let _ = writer.write_all(&encode(frame, payload)).await;
}

async fn next_control(
    controls: &mut Option<tokio::sync::mpsc::Receiver<ControlRequest>>,
) -> Option<ControlRequest> {
    match controls {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[async_trait::async_trait]
impl BackgroundTask for SupervisedTask {
    fn kind(&self) -> &str {
        self.task.kind()
    }

    fn description(&self) -> String {
        BackgroundTask::description(&self.task)
    }

    fn accepts_messages(&self) -> bool {
        self.task.accepts_messages()
    }

    fn stop_grace(&self) -> Option<Duration> {
        self.task.stop_grace()
    }

    fn validate(&self) -> crate::Result<()> {
        self.task.validate()
    }

    fn check_limits(
        &self,
        defaults: &crate::limits::Limits,
        ceiling: &crate::limits::Limits,
        policy: crate::limits::UnenforcedLimits,
    ) -> crate::Result<()> {
        self.task.check_limits(defaults, ceiling, policy)
    }

    fn pausable(&self) -> bool {
        true
    }

    async fn run(self: Box<Self>, ctx: TaskContext) -> TaskOutcome {
        let SupervisedTask {
            task,
            folder,
            start,
        } = *self;
        let attached = match start {
            Start::Launch { spec, program } => {
                let Some(ticket) = ctx.spawn_ticket() else {
                    return TaskOutcome::failed(crate::process::HOST_EXITING);
                };
                let dir = folder.clone();
                let every_byte = ctx.output().has_sinks();
                let started = tokio::task::spawn_blocking(move || {
                    start_supervisor(&dir, &spec, &program)?;
                    attach(&dir, every_byte)
                })
                .await
                .unwrap_or_else(|e| Err(format!("starting the supervisor: {e}")));
                drop(ticket);
                match started {
                    Ok((attached, _empty)) => attached,
                    Err(e) => return TaskOutcome::failed(e),
                }
            }
            Start::Attached(attached) => attached,
        };
        converse(&ctx, &task, &folder, attached).await
    }
}

/// Runs the conversation with the supervisor until the task's end.
async fn converse(
    ctx: &TaskContext,
    task: &ProcessTask,
    folder: &Folder,
    attached: Attached,
) -> TaskOutcome {
    let mut pid = attached.started.as_ref().map(|s| s.pid);
    if let Some(started) = &attached.started {
        report(ctx, started);
    }
    let stream = match attached
        .stream
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(attached.stream))
    {
        Ok(stream) => stream,
        Err(e) => return TaskOutcome::failed(format!("talking to its supervisor: {e}")),
    };
    let (mut reader, mut writer) = stream.into_split();
    let output = ctx.output();
    let mut controls = ctx.take_controls();
    let mut answers: VecDeque<tokio::sync::oneshot::Sender<Result<(), String>>> = VecDeque::new();
    let mut cancel_sent = false;
    let mut input_open = task.accepts_messages();
    let ended = loop {
        tokio::select! {
            frame = read_frame(&mut reader) => match frame {
                Ok((Frame::Output { stream, logged: None }, bytes)) => {
                    output.write_through(&stream, &bytes);
                }
                Ok((Frame::Output { stream, logged: Some(len) }, _)) => {
                    output.buffer().write_logged(&stream, len);
                }
                Ok((Frame::WriteFailed { error }, _)) => output.buffer().writer_failed(error),
                Ok((Frame::Started(started), _)) => {
                    pid = Some(started.pid);
                    report(ctx, &started);
                }
                Ok((Frame::Answer { error }, _)) => {
                    if let Some(done) = answers.pop_front() {
                        let _ = done.send(error.map_or(Ok(()), Err));
                    }
                }
                Ok((Frame::Ended, _)) => break true,
                Ok(_) => {}
                Err(_) => break false,
            },
            reason = ctx.cancelled(), if !cancel_sent => {
                cancel_sent = true;
                send(&mut writer, &Frame::Cancel { reason }, &[]).await;
            }
            message = ctx.recv(), if input_open => match message {
                Some(message) => {
                    let eof = message.is_eof();
                    send(&mut writer, &Frame::Input { eof }, message.as_bytes()).await;
                }
                None => input_open = false,
            },
            request = next_control(&mut controls), if controls.is_some() => match request {
                Some(request) => {
                    let frame = match request.control {
                        Control::Signal(signal) => Frame::Signal { signal: signal as i32 },
                        Control::Resize { cols, rows } => Frame::Resize { cols, rows },
                    };
                    send(&mut writer, &frame, &[]).await;
                    answers.push_back(request.done);
                }
                None => controls = None,
            },
        }
    };
    let dir = folder.clone();
    let record = tokio::task::spawn_blocking(move || ExitRecord::read(&dir))
        .await
        .ok()
        .flatten();
    match record {
        Some(Ok(record)) => {
            let mut outcome = record.outcome();
            if let Some(stop) = &record.stop {
                // The host's own stop, if it asked first, stays the reason.
                ctx.cancel_signal().cancel(stop.clone());
            }
            if let (Some(stop), false) = (&record.killed_from_outside, outcome.success) {
                ctx.cancel_signal().cancel(stop.clone());
                outcome.ended_on_its_own = false;
            }
            outcome
        }
        Some(Err(e)) => TaskOutcome::failed(format!("reading its exit record: {e}")),
        None => {
            let _ = ended;
            if let Some(pid) = pid {
                crate::process::kill_task_now(ctx.id().as_str(), pid);
            }
            TaskOutcome::failed(SUPERVISOR_DIED)
        }
    }
}
