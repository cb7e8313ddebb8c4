//! What a running task sees: [`TaskContext`] with its output writer, its
//! [`CancelSignal`] (which carries the reason), and its inbox of steering
//! [`Message`]s.

use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::id::TaskId;
use crate::info::{CancelReason, Containment};
use crate::output::{OutputBuffer, OutputEvent, Report, FLUSH_DELAY};
use crate::sink::{SharedSink, Stream};

/// A steering message sent to a running task with
/// [`TaskManager::send`](crate::TaskManager::send): text for a function task,
/// bytes for a process's stdin. [`Message::eof`] is the end of input: a
/// process's stdin is closed (the child reads EOF), a function task's
/// [`TaskContext::recv`] returns `None` from then on, and later sends are
/// refused. Under a PTY ([`ProcessTask::pty`](crate::ProcessTask::pty)) it
/// types Ctrl+D instead, the terminal's end of input, and the terminal stays
/// open for later sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    bytes: Vec<u8>,
    eof: bool,
}

impl Message {
    /// The end-of-input marker: no bytes; the task's input is closed once it
    /// arrives (after the messages sent before it).
    pub fn eof() -> Self {
        Message {
            bytes: Vec::new(),
            eof: true,
        }
    }

    /// What one send that may end the input delivers, in order: `bytes` (if
    /// given), then the end of input if `eof`. The rule the bindings' `send`
    /// (`eof=True`, `{ eof: true }`) and the `task_send` tool share: a send
    /// of neither is refused with `InvalidArgument` naming `message`.
    ///
    /// ```
    /// use agent_tasks::Message;
    /// let sent = Message::input(Some(b"last line\n".to_vec()), true)?;
    /// assert_eq!(sent, [Message::from("last line\n"), Message::eof()]);
    /// assert!(Message::input(None, false).is_err());
    /// # Ok::<(), agent_tasks::Error>(())
    /// ```
    pub fn input(bytes: Option<Vec<u8>>, eof: bool) -> crate::Result<Vec<Message>> {
        let mut messages: Vec<Message> = bytes.into_iter().map(Message::from).collect();
        if eof {
            messages.push(Message::eof());
        }
        if messages.is_empty() {
            return Err(crate::Error::invalid_argument(
                "message",
                "give a message, the end of input (eof), or both",
            ));
        }
        Ok(messages)
    }

    /// True for the end-of-input marker made by [`Message::eof`].
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// The raw bytes (none for the end-of-input marker).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The message as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Takes the bytes out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Message { bytes, eof: false }
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::from(s.as_bytes().to_vec())
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::from(s.into_bytes())
    }
}

impl From<&[u8]> for Message {
    fn from(b: &[u8]) -> Self {
        Message::from(b.to_vec())
    }
}

/// The stop request a task watches: set once, with the reason, and never
/// cleared. While the task runs it is where its cancel reason is kept (the
/// first request wins); once the task ends, its result keeps it.
#[derive(Clone, Debug, Default)]
pub struct CancelSignal {
    token: CancellationToken,
    reason: Arc<OnceLock<CancelReason>>,
}

impl CancelSignal {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Asks for the stop. The first reason wins; returns whether this call
    /// was the first.
    pub(crate) fn cancel(&self, reason: CancelReason) -> bool {
        let first = self.reason.set(reason).is_ok();
        self.token.cancel();
        first
    }

    /// True once a stop was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The reason, once a stop was asked for.
    pub fn reason(&self) -> Option<CancelReason> {
        self.reason.get().cloned()
    }

    /// Waits until a stop is asked for and returns its reason.
    pub async fn cancelled(&self) -> CancelReason {
        self.token.cancelled().await;
        self.reason().unwrap_or_else(|| CancelReason::user(""))
    }
}

/// Host sink failures seen while a task wrote; reported in the info.
#[derive(Debug, Default)]
pub(crate) struct SinkErrors {
    pub last: Mutex<Option<String>>,
}

/// Who acts on what happened to a task's output (the task's owner: it
/// announces spills, saves the manifest). Called with no lock held.
pub(crate) type OutputEvents = Arc<dyn Fn(OutputEvent) + Send + Sync>;

/// Writes a task's output: into its bounded buffer and any host sinks, in
/// order. Cheap to clone; every clone writes to the same stream.
#[derive(Clone)]
pub struct OutputWriter {
    buffer: Arc<OutputBuffer>,
    sinks: Arc<[SharedSink]>,
    sink_errors: Arc<SinkErrors>,
    on_event: OutputEvents,
    /// Where delayed flushes of gathered writes run.
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for OutputWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputWriter")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl OutputWriter {
    pub(crate) fn new(
        buffer: Arc<OutputBuffer>,
        sinks: Arc<[SharedSink]>,
        sink_errors: Arc<SinkErrors>,
        on_event: OutputEvents,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        OutputWriter {
            buffer,
            sinks,
            sink_errors,
            on_event,
            runtime,
        }
    }

    /// Appends `bytes` of `stream` to the task's output. Once the output
    /// goes to disk, small writes are gathered into larger ones (flushed
    /// within 20 ms), so a task that writes many small pieces stays fast.
    pub fn write(&self, stream: &Stream, bytes: &[u8]) {
        self.write_with(stream, bytes, true);
    }

    /// Like [`OutputWriter::write`], but bytes bound for the log are written
    /// at once, not gathered: for output that must survive a host crash the
    /// moment it is written (process tasks use this; each of their chunks
    /// already costs a read from a pipe).
    pub fn write_through(&self, stream: &Stream, bytes: &[u8]) {
        self.write_with(stream, bytes, false);
    }

    fn write_with(&self, stream: &Stream, bytes: &[u8], gather: bool) {
        let report = self.buffer.write(stream, bytes, gather);
        self.act(report);
        for sink in self.sinks.iter() {
            if let Err(e) = sink.write(stream, bytes) {
                self.record_sink_error(e);
            }
        }
    }

    /// The buffer it writes into.
    pub(crate) fn buffer(&self) -> &Arc<OutputBuffer> {
        &self.buffer
    }

    /// Whether chunks go anywhere but the buffer (host sinks, a watch).
    pub(crate) fn has_sinks(&self) -> bool {
        !self.sinks.is_empty()
    }

    /// Acts on what the buffer did: hands its events to the owner and
    /// schedules the flush of gathered bytes.
    pub(crate) fn act(&self, report: Report) {
        for event in report.events {
            (self.on_event)(event);
        }
        if report.flush_needed {
            let buffer = self.buffer.clone();
            let on_event = self.on_event.clone();
            self.runtime.spawn(async move {
                tokio::time::sleep(FLUSH_DELAY).await;
                for event in buffer.flush().events {
                    on_event(event);
                }
            });
        }
    }

    fn record_sink_error(&self, error: std::io::Error) {
        let text = error.to_string();
        let first = {
            let mut last = crate::util::lock(&self.sink_errors.last);
            let first = last.is_none();
            *last = Some(text.clone());
            first
        };
        // One event per task, not one per chunk: a broken sink stays broken.
        if first {
            (self.on_event)(OutputEvent::HostSinkFailed(text));
        }
    }

    pub(crate) fn close_sinks(&self) {
        for sink in self.sinks.iter() {
            if let Err(e) = sink.close() {
                self.record_sink_error(e);
            }
        }
    }
}

/// What the manager asks of a running process task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// Send this signal to every process of the task (pause, resume).
    Signal(nix::sys::signal::Signal),
    /// Resize the task's terminal (a PTY task only).
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
}

/// A request from the manager to a running process task: do `control`, then
/// answer on `done` (an error text when the task cannot do it).
pub(crate) struct ControlRequest {
    pub control: Control,
    pub done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// What a running task is given: where to write, when to stop, and its
/// steering messages.
pub struct TaskContext {
    id: TaskId,
    output: OutputWriter,
    cancel: CancelSignal,
    /// Shared with the entry, which sends; `None` for a task that takes no
    /// messages.
    inbox: Option<Arc<Inbox>>,
    /// The inbox's reading end, once this context took it.
    reader: tokio::sync::Mutex<Reader>,
    /// Set once [`Message::eof`] came out of the inbox: it is closed.
    inbox_ended: std::sync::atomic::AtomicBool,
    controls: std::sync::Mutex<Option<mpsc::Receiver<ControlRequest>>>,
    host: HostLinks,
}

/// How a running task reaches the manager that runs it: what it reports
/// (its pid, the end of a turn) and the gate its process spawns pass.
pub(crate) struct HostLinks {
    pub pid_hook: PidHook,
    pub turn_hook: TurnHook,
    pub spawn_gate: Arc<crate::spawn_gate::SpawnGate>,
    /// The manager's default limits and its policy for unenforceable ones.
    pub limits: crate::limits::HostLimits,
}

/// Called when a multi-turn task finished a turn: its number and the text
/// the notification carries.
pub(crate) type TurnHook = Arc<dyn Fn(u64, String) + Send + Sync>;

/// Called with the pid of a task's process once it is known, how its
/// descendants are contained (if the task says), and its start time (clock
/// ticks since boot) where the caller read it already.
/// And the task's limits as applied, if it has any.
pub(crate) type PidHook = Arc<
    dyn Fn(u32, Option<Containment>, Option<u64>, Option<crate::limits::LimitsInfo>) + Send + Sync,
>;

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext").field("id", &self.id).finish()
    }
}

impl TaskContext {
    pub(crate) fn new(
        id: TaskId,
        output: OutputWriter,
        cancel: CancelSignal,
        inbox: Option<Arc<Inbox>>,
        controls: Option<mpsc::Receiver<ControlRequest>>,
        host: HostLinks,
    ) -> Self {
        TaskContext {
            id,
            output,
            cancel,
            inbox,
            reader: tokio::sync::Mutex::new(Reader::Unfetched),
            inbox_ended: std::sync::atomic::AtomicBool::new(false),
            controls: std::sync::Mutex::new(controls),
            host,
        }
    }

    /// Leave to start a process, held until its pid is reported; `None`
    /// once the host is exiting (see `TaskManager::kill_processes_now`):
    /// then no process may start.
    pub(crate) fn spawn_ticket(&self) -> Option<crate::spawn_gate::SpawnTicket> {
        self.host.spawn_gate.enter()
    }

    /// Tells the owner that a multi-turn task (an ACP agent) finished a turn
    /// and is waiting for a follow-up: queues a one-shot
    /// [`NotificationKind::TurnEnded`](crate::NotificationKind::TurnEnded)
    /// notification (id `<task-id>.t<turn>`) whose text carries `summary`
    /// (the stop reason and the agent's final message of the turn, cut to
    /// [`NOTIFICATION_VALUE_CHARS`](crate::NOTIFICATION_VALUE_CHARS)). The
    /// task keeps running.
    pub fn turn_ended(&self, turn: u64, summary: impl Into<String>) {
        (self.host.turn_hook)(turn, summary.into());
    }

    /// The manager's signal requests (pause, resume), for the task that
    /// runs the processes; `None` once taken or if the task is not pausable.
    pub(crate) fn take_controls(&self) -> Option<mpsc::Receiver<ControlRequest>> {
        crate::util::lock(&self.controls).take()
    }

    /// Records the id of the process (group) the task started, so the info
    /// shows it and recovery can check it.
    pub fn report_pid(&self, pid: u32) {
        (self.host.pid_hook)(pid, None, None, None);
    }

    /// Like [`TaskContext::report_pid`], and records how the process's
    /// descendants are contained, for the info.
    pub fn report_process(&self, pid: u32, containment: Containment) {
        (self.host.pid_hook)(pid, Some(containment), None, None);
    }

    /// [`TaskContext::report_process`] with the process's start time, read
    /// by the spawn already (one `/proc` read less per spawn).
    pub(crate) fn report_contained(
        &self,
        pid: u32,
        containment: Containment,
        start: Option<u64>,
        limits: Option<crate::limits::LimitsInfo>,
    ) {
        (self.host.pid_hook)(pid, Some(containment), start, limits);
    }

    /// The manager's default limits and its policy for those that cannot
    /// be enforced.
    pub(crate) fn host_limits(&self) -> crate::limits::HostLimits {
        self.host.limits.clone()
    }

    /// The task's id.
    pub fn id(&self) -> &TaskId {
        &self.id
    }

    /// Writes a chunk of output to `stream`.
    pub fn write(&self, stream: impl Into<Stream>, bytes: impl AsRef<[u8]>) {
        self.output.write(&stream.into(), bytes.as_ref());
    }

    /// Writes to stdout.
    pub fn stdout(&self, bytes: impl AsRef<[u8]>) {
        self.output.write(&Stream::STDOUT, bytes.as_ref());
    }

    /// Writes to stderr.
    pub fn stderr(&self, bytes: impl AsRef<[u8]>) {
        self.output.write(&Stream::STDERR, bytes.as_ref());
    }

    /// A writer that can be moved into other tasks or threads.
    pub fn output(&self) -> OutputWriter {
        self.output.clone()
    }

    /// The task's stop signal (clone it to watch from elsewhere).
    pub fn cancel_signal(&self) -> &CancelSignal {
        &self.cancel
    }

    /// True once a stop was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Waits until a stop is asked for; returns the reason.
    pub async fn cancelled(&self) -> CancelReason {
        self.cancel.cancelled().await
    }

    /// The next steering message, or `None` once no more can come (the task
    /// ended its input with [`Message::eof`], or cannot receive).
    pub async fn recv(&self) -> Option<Message> {
        let mut reader = self.reader.lock().await;
        let rx = self.receiver(&mut reader, true)?;
        if self.inbox_ended.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let message = rx.recv().await?;
        self.end_if_eof(rx, message)
    }

    /// A steering message if one is waiting, without waiting.
    pub fn try_recv(&self) -> Option<Message> {
        let mut reader = self.reader.try_lock().ok()?;
        // Nothing was ever sent if the channel was never made: not made for
        // a look either.
        let rx = self.receiver(&mut reader, false)?;
        if self.inbox_ended.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let message = rx.try_recv().ok()?;
        self.end_if_eof(rx, message)
    }

    /// The inbox's reading end, taken from the shared inbox on first use
    /// (made there if `make`, else only if a message made it already).
    fn receiver<'a>(
        &self,
        reader: &'a mut Reader,
        make: bool,
    ) -> Option<&'a mut mpsc::Receiver<Message>> {
        if matches!(reader, Reader::Unfetched) {
            match self.inbox.as_ref() {
                None => *reader = Reader::Gone,
                Some(inbox) => match inbox.take_receiver(make) {
                    Some(rx) => *reader = Reader::Held(rx),
                    None if make => *reader = Reader::Gone,
                    None => return None,
                },
            }
        }
        match reader {
            Reader::Held(rx) => Some(rx),
            Reader::Unfetched | Reader::Gone => None,
        }
    }

    /// Passes a message on, or closes the inbox at the end-of-input marker
    /// (later sends are refused; what was queued after it is dropped).
    fn end_if_eof(&self, rx: &mut mpsc::Receiver<Message>, message: Message) -> Option<Message> {
        if message.is_eof() {
            self.inbox_ended
                .store(true, std::sync::atomic::Ordering::Release);
            rx.close();
            return None;
        }
        Some(message)
    }

    /// Takes the inbox out of the context, for a task that hands its
    /// messages to something else (a process's stdin).
    pub async fn take_inbox(&self) -> Option<mpsc::Receiver<Message>> {
        let mut reader = self.reader.lock().await;
        self.receiver(&mut reader, true)?;
        match std::mem::replace(&mut *reader, Reader::Gone) {
            Reader::Held(rx) => Some(rx),
            Reader::Unfetched | Reader::Gone => None,
        }
    }
}

impl Drop for TaskContext {
    /// The task is over: a message to an inbox it never read is refused
    /// from now on, as a dropped reading end refuses it.
    fn drop(&mut self) {
        if let Some(inbox) = &self.inbox {
            inbox.reader_gone();
        }
    }
}

/// The context's hold on the inbox's reading end.
enum Reader {
    /// Not taken from the shared [`Inbox`] yet.
    Unfetched,
    Held(mpsc::Receiver<Message>),
    /// Handed on ([`TaskContext::take_inbox`]) or never to come.
    Gone,
}

/// A task's inbox of steering messages, its channel made on first use (the
/// first send, or the task's first wait for a message): most tasks are
/// never sent one, and a channel costs about 1.6 KiB (tokio's shared state
/// and first block of slots), which 100,000 tasks would pay for nothing.
/// The entry sends through it; the context takes the reading end.
pub(crate) struct Inbox {
    capacity: usize,
    state: Mutex<InboxState>,
}

#[derive(Default)]
struct InboxState {
    tx: Option<mpsc::Sender<Message>>,
    /// The reading end, until the context takes it.
    rx: Option<mpsc::Receiver<Message>>,
    /// The context is gone without taking the reading end: nothing reads.
    closed: bool,
}

impl Inbox {
    /// An inbox that holds up to `capacity` unread messages.
    pub(crate) fn new(capacity: usize) -> Arc<Inbox> {
        Arc::new(Inbox {
            capacity,
            state: Mutex::new(InboxState::default()),
        })
    }

    fn make(&self, st: &mut InboxState) {
        if st.tx.is_none() && !st.closed {
            let (tx, rx) = mpsc::channel(self.capacity);
            st.tx = Some(tx);
            st.rx = Some(rx);
        }
    }

    /// Queues a message without waiting (the channel is made if need be).
    pub(crate) fn try_send(
        &self,
        message: Message,
    ) -> Result<(), mpsc::error::TrySendError<Message>> {
        let mut st = crate::util::lock(&self.state);
        self.make(&mut st);
        match &st.tx {
            Some(tx) if !st.closed => tx.try_send(message),
            _ => Err(mpsc::error::TrySendError::Closed(message)),
        }
    }

    /// The reading end, once; made now if `make` (else only if a message
    /// made it already).
    fn take_receiver(&self, make: bool) -> Option<mpsc::Receiver<Message>> {
        let mut st = crate::util::lock(&self.state);
        if make {
            self.make(&mut st);
        }
        st.rx.take()
    }

    /// The context is gone. If it never took the reading end, later sends
    /// are refused and unread messages dropped; if it did, whoever holds
    /// that end closes the channel by dropping it.
    fn reader_gone(&self) {
        let mut st = crate::util::lock(&self.state);
        if st.rx.is_some() || st.tx.is_none() {
            st.closed = true;
            st.rx = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(inbox: &Inbox) -> bool {
        crate::util::lock(&inbox.state).tx.is_some()
    }

    #[test]
    fn the_channel_is_made_by_the_first_send_and_keeps_the_message() {
        let inbox = Inbox::new(2);
        assert!(!made(&inbox));
        // A look at an inbox nothing was sent to makes nothing.
        assert!(inbox.take_receiver(false).is_none());
        assert!(!made(&inbox));
        inbox.try_send(Message::from("hi")).expect("first send");
        let mut rx = inbox.take_receiver(false).expect("the reading end");
        assert_eq!(rx.try_recv().ok(), Some(Message::from("hi")));
        // The reading end is handed out once.
        assert!(inbox.take_receiver(true).is_none());
    }

    #[test]
    fn a_full_inbox_refuses_as_full() {
        let inbox = Inbox::new(1);
        inbox.try_send(Message::from("a")).expect("first send");
        assert!(matches!(
            inbox.try_send(Message::from("b")),
            Err(mpsc::error::TrySendError::Full(_))
        ));
    }

    #[test]
    fn once_the_reader_is_gone_sends_are_refused_as_closed() {
        // Never read, never sent to: nothing is made, and a send is refused.
        let inbox = Inbox::new(4);
        inbox.reader_gone();
        assert!(matches!(
            inbox.try_send(Message::from("late")),
            Err(mpsc::error::TrySendError::Closed(_))
        ));
        assert!(!made(&inbox));
        // Sent to but never read: the queued message goes with the reader.
        let inbox = Inbox::new(4);
        inbox.try_send(Message::from("unread")).expect("send");
        inbox.reader_gone();
        assert!(matches!(
            inbox.try_send(Message::from("late")),
            Err(mpsc::error::TrySendError::Closed(_))
        ));
        // Taken by the reader: its own end closes the channel when dropped.
        let inbox = Inbox::new(4);
        let rx = inbox.take_receiver(true).expect("the reading end");
        inbox.reader_gone();
        inbox
            .try_send(Message::from("read"))
            .expect("the reader is alive");
        drop(rx);
        assert!(matches!(
            inbox.try_send(Message::from("late")),
            Err(mpsc::error::TrySendError::Closed(_))
        ));
    }
}
