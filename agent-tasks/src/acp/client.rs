//! The client side of one ACP connection: the line transport over the
//! agent's stdio (which notices a malformed or over-long line or a lost
//! channel and says so), the handlers of what the agent asks of its client
//! (permissions, files, terminals) and of its session updates, and the
//! session itself: initialize and open a session (within the handshake
//! bound), then one prompt turn after another until the task is cancelled,
//! goes idle, or the agent goes away. The protocol
//! (framing, JSON-RPC, the schema) is the `agent-client-protocol` crate's.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acp::schema::ProtocolVersion;
use acp::v1::schema::{
    CancelNotification, ClientCapabilities, ContentBlock, CreateTerminalRequest,
    CreateTerminalResponse, FileSystemCapabilities, Implementation, InitializeRequest,
    KillTerminalRequest, KillTerminalResponse, McpServer, NewSessionRequest, PromptRequest,
    ReadTextFileRequest, ReadTextFileResponse, ReleaseTerminalRequest, ReleaseTerminalResponse,
    RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse,
    SelectedPermissionOutcome, SessionNotification, TerminalExitStatus, TerminalOutputRequest,
    TerminalOutputResponse, TextContent, WaitForTerminalExitRequest, WaitForTerminalExitResponse,
    WriteTextFileRequest, WriteTextFileResponse,
};
use agent_client_protocol as acp;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe::{Receiver as ChildStdout, Sender as ChildStdin};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::policy::{
    pick_option, FileAccess, PermissionChoice, PermissionPolicy, PermissionRequest,
};
use super::render::{quoted, Renderer};
use super::terminals::{TerminalExit, TerminalSpec, Terminals};
use super::UpdateCallback;
use crate::context::{CancelSignal, Message, OutputWriter};
use crate::sink::Stream;
use crate::util::lock;

/// Characters of a malformed line quoted in the error.
const QUOTE_CHARS: usize = 200;

/// What the handlers share.
pub(crate) struct Shared {
    pub task_id: String,
    pub output: OutputWriter,
    pub renderer: Mutex<Renderer>,
    pub on_update: Option<UpdateCallback>,
    pub permissions: PermissionPolicy,
    pub files: FileAccess,
    pub cwd: PathBuf,
    pub terminals: Terminals,
}

impl Shared {
    /// Renders with the renderer and writes the text, in order: the lock is
    /// held across the write so lines of concurrent handlers never mix.
    /// Text that ends a line is written through to the log at once (not
    /// gathered for up to 20 ms): a whole line is what watch patterns,
    /// readers in other processes and a host that crashes next need, and
    /// an agent's updates come a few a second, not thousands.
    fn show(&self, render: impl FnOnce(&mut Renderer) -> String) {
        let mut renderer = lock(&self.renderer);
        let text = render(&mut renderer);
        if text.contains('\n') {
            self.output.write_through(&Stream::STDOUT, text.as_bytes());
        } else if !text.is_empty() {
            self.output.write(&Stream::STDOUT, text.as_bytes());
        }
    }

    /// A note about something the host did (the agent's message may go on).
    pub(crate) fn note(&self, text: &str) {
        self.show(|r| r.note(text));
    }

    /// A note about something the agent asked for (its message is over).
    fn agent_note(&self, text: &str) {
        self.show(|r| r.agent_note(text));
    }

    fn on_notification(&self, notification: &SessionNotification) {
        let Ok(raw) = serde_json::to_value(notification) else {
            return;
        };
        if let Some(callback) = &self.on_update {
            callback(&raw);
        }
        if let Some(update) = raw.get("update") {
            self.show(|r| r.update(update));
        }
    }

    async fn permission(&self, request: RequestPermissionRequest) -> RequestPermissionResponse {
        let tool_call = serde_json::to_value(&request.tool_call).unwrap_or_default();
        let text = |key: &str| {
            tool_call
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let choices: Vec<PermissionChoice> = request
            .options
            .iter()
            .map(|o| PermissionChoice {
                id: o.option_id.to_string(),
                name: o.name.clone(),
                kind: serde_json::to_value(o.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            })
            .collect();
        let title = text("title");
        let asked = PermissionRequest {
            task_id: self.task_id.clone(),
            title: title.clone(),
            tool_kind: text("kind"),
            options: choices.clone(),
            tool_call: tool_call.clone(),
        };
        let decision = self.permissions.decide(asked).await;
        let picked = pick_option(&decision, &choices);
        let what = title.map_or_else(|| "a tool call".to_string(), |t| quoted(&t));
        let outcome = match picked.as_ref().and_then(|id| {
            request
                .options
                .iter()
                .find(|o| o.option_id.to_string() == *id)
        }) {
            Some(option) => {
                let kind = choices
                    .iter()
                    .find(|c| c.id == option.option_id.to_string())
                    .map(|c| c.kind.clone())
                    .unwrap_or_default();
                self.agent_note(&format!("permission for {what}: {kind} ({})", option.name));
                RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(
                    option.option_id.clone(),
                ))
            }
            None => {
                self.agent_note(&format!(
                    "permission for {what}: cancelled ({decision:?} matched no offered option)"
                ));
                RequestPermissionOutcome::Cancelled
            }
        };
        RequestPermissionResponse::new(outcome)
    }

    async fn read_file(&self, request: ReadTextFileRequest) -> Result<String, String> {
        let path = self
            .files
            .check(&request.path, false, &self.cwd)
            .inspect_err(|e| self.agent_note(&format!("file read refused: {e}")))?;
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| format!("reading `{}`: {e}", path.display()))?;
        let start = request.line.map_or(0, |l| l.saturating_sub(1) as usize);
        if start == 0 && request.limit.is_none() {
            return Ok(text);
        }
        let limit = request.limit.map_or(usize::MAX, |l| l as usize);
        let mut out = String::new();
        for line in text.split_inclusive('\n').skip(start).take(limit) {
            out.push_str(line);
        }
        Ok(out)
    }

    async fn write_file(&self, request: WriteTextFileRequest) -> Result<(), String> {
        let path = self
            .files
            .check(&request.path, true, &self.cwd)
            .inspect_err(|e| self.agent_note(&format!("file write refused: {e}")))?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| format!("creating `{}`: {e}", parent.display()))?;
        }
        tokio::fs::write(&path, request.content.as_bytes())
            .await
            .map_err(|e| format!("writing `{}`: {e}", path.display()))?;
        self.agent_note(&format!("wrote {}", path.display()));
        Ok(())
    }

    fn create_terminal(&self, request: CreateTerminalRequest) -> Result<String, String> {
        let spec = TerminalSpec {
            command: request.command.clone(),
            args: request.args.clone(),
            env: request
                .env
                .iter()
                .map(|v| (v.name.clone(), v.value.clone()))
                .collect(),
            cwd: request.cwd.clone(),
            output_limit: request.output_byte_limit,
        };
        let shown = std::iter::once(request.command.as_str())
            .chain(request.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let id = self.terminals.create(spec)?;
        self.agent_note(&format!("terminal {id}: {shown}"));
        Ok(id)
    }
}

fn exit_status(exit: TerminalExit) -> TerminalExitStatus {
    TerminalExitStatus::new()
        .exit_code(exit.code)
        .signal(exit.signal)
}

/// A protocol error with a message for the agent.
fn refusal(message: String) -> acp::Error {
    acp::Error::new(acp::ErrorCode::from(-32602), message)
}

/// How the transport ended, when it did: set before `closed` fires.
#[derive(Clone, Default)]
pub(crate) struct Wire {
    pub closed: CancellationToken,
    pub problem: Arc<Mutex<Option<String>>>,
}

impl Wire {
    fn close(&self, problem: Option<String>) {
        if let Some(problem) = problem {
            lock(&self.problem).get_or_insert(problem);
        }
        self.closed.cancel();
    }

    /// The protocol problem that closed the transport, if any.
    pub(crate) fn problem(&self) -> Option<String> {
        lock(&self.problem).clone()
    }
}

/// How one read of the agent's output ended.
enum LineRead {
    /// A line (its newline kept), or the last bytes before the end.
    Line(Vec<u8>),
    /// The output ended.
    End,
    /// More than the limit came without a newline; nothing more was read.
    TooLong,
}

/// Reads one line of at most `max` bytes (the newline not counted) without
/// ever holding more: a line that runs past the limit is given up as soon as
/// it does, so an agent that prints without a newline costs the host at
/// most `max` bytes, not all it prints.
async fn read_line_bounded<R>(reader: &mut R, max: usize) -> std::io::Result<LineRead>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() {
                LineRead::End
            } else {
                LineRead::Line(line)
            });
        }
        let (taken, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        let text_len = line.len() + taken - usize::from(complete);
        if text_len > max {
            return Ok(LineRead::TooLong);
        }
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if complete {
            return Ok(LineRead::Line(line));
        }
    }
}

/// `bytes` in words: whole MiB or KiB when it is one, else bytes.
fn size_text(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The JSON-RPC line transport over the agent's stdio. Every incoming line
/// is checked to be JSON first: a line that is not ends the connection with
/// a clear error (a reply may have been in it, so waiting on would hang the
/// turn), as do a line longer than `max_line` (the host's memory bound for
/// one message), unreadable output (invalid UTF-8) and the end of it.
fn transport(
    stdin: ChildStdin,
    stdout: ChildStdout,
    wire: Wire,
    max_line: usize,
) -> acp::Lines<
    impl futures::Sink<String, Error = std::io::Error> + Send + 'static,
    impl futures::Stream<Item = std::io::Result<String>> + Send + 'static,
> {
    let outgoing = futures::sink::unfold(stdin, |mut stdin, line: String| async move {
        stdin.write_all(line.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
        stdin.flush().await?;
        Ok::<_, std::io::Error>(stdin)
    });
    let reader = BufReader::new(stdout);
    let incoming = futures::stream::unfold(
        (reader, wire, 0u64),
        move |(mut reader, wire, mut number)| async move {
            loop {
                let bytes = match read_line_bounded(&mut reader, max_line).await {
                    Ok(LineRead::Line(bytes)) => bytes,
                    Ok(LineRead::End) => {
                        wire.close(None);
                        return None;
                    }
                    Ok(LineRead::TooLong) => {
                        wire.close(Some(format!(
                            "the agent broke the protocol: its output line {} is longer than \
                             the limit of {} for one message (max_message_bytes) and has no \
                             newline within it",
                            number + 1,
                            size_text(max_line)
                        )));
                        return None;
                    }
                    Err(e) => {
                        wire.close(Some(format!("reading the agent's output: {e}")));
                        return None;
                    }
                };
                number += 1;
                let mut line = match String::from_utf8(bytes) {
                    Ok(line) => line,
                    Err(_) => {
                        wire.close(Some(format!(
                            "reading the agent's output: its output line {number} is not \
                             valid UTF-8"
                        )));
                        return None;
                    }
                };
                let kept = line.trim_end_matches(['\n', '\r']).len();
                line.truncate(kept);
                let text = line.as_str();
                if text.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                    Ok(_) if text.trim_start().starts_with(['{', '[']) => {
                        return Some((Ok(line), (reader, wire, number)));
                    }
                    _ => {
                        let quoted: String = text.chars().take(QUOTE_CHARS).collect();
                        wire.close(Some(format!(
                            "the agent broke the protocol: its output line {number} is \
                             not a JSON-RPC message: `{quoted}`"
                        )));
                        return None;
                    }
                }
            }
        },
    );
    acp::Lines::new(outgoing, Box::pin(incoming))
}

/// How a session ended, as the connection saw it.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// No follow-up came for the idle timeout.
    Idle,
    /// The host ended the input ([`Message::eof`]).
    InputClosed,
    /// The task was cancelled (the running turn, if any, was cancelled first).
    Cancelled,
    /// The agent closed the connection between turns.
    AgentClosed,
    /// The connection was lost during a turn (or its setup).
    Lost(String),
}

/// What a finished session reports.
#[derive(Debug)]
pub(crate) struct SessionReport {
    pub end: SessionEnd,
    pub session_id: Option<String>,
    pub turns: u64,
    pub last_stop_reason: Option<String>,
    pub last_message: String,
}

/// Everything a session needs besides the shared handler state.
pub(crate) struct SessionSetup {
    pub goal: String,
    pub mcp_servers: Vec<McpServer>,
    pub idle_timeout: Option<Duration>,
    pub cancel_grace: Duration,
    /// How long `initialize` and `session/new` together may take.
    pub handshake_timeout: Duration,
    /// The longest line (one message) read from the agent.
    pub max_line: usize,
    pub inbox: Option<mpsc::Receiver<Message>>,
    pub cancel: CancelSignal,
    pub turn_ended: Arc<dyn Fn(u64, String) + Send + Sync>,
}

/// Runs the session over the agent's stdio until it ends.
pub(crate) async fn run_session(
    shared: Arc<Shared>,
    setup: SessionSetup,
    stdin: ChildStdin,
    stdout: ChildStdout,
    wire: Wire,
) -> SessionReport {
    let report = Arc::new(Mutex::new(SessionReport {
        end: SessionEnd::Lost("the session did not start".to_string()),
        session_id: None,
        turns: 0,
        last_stop_reason: None,
        last_message: String::new(),
    }));
    let transport = transport(stdin, stdout, wire.clone(), setup.max_line);
    let (s1, s2, s3, s4, s5, s6, s7, s8) = (
        shared.clone(),
        shared.clone(),
        shared.clone(),
        shared.clone(),
        shared.clone(),
        shared.clone(),
        shared.clone(),
        shared.clone(),
    );
    let main_report = report.clone();
    let main_shared = shared.clone();
    let main_wire = wire.clone();
    let result = acp::Client
        .v1()
        .name("agent-tasks")
        .on_receive_notification(
            async move |n: SessionNotification, _cx| {
                s1.on_notification(&n);
                Ok(())
            },
            acp::on_receive_notification!(),
        )
        .on_receive_request(
            async move |req: RequestPermissionRequest, responder, cx| {
                let s = s2.clone();
                // The host's callback may take its time: off the dispatch loop.
                cx.spawn(async move { responder.respond(s.permission(req).await) })
            },
            acp::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: ReadTextFileRequest, responder, cx| {
                let s = s3.clone();
                cx.spawn(async move {
                    match s.read_file(req).await {
                        Ok(text) => responder.respond(ReadTextFileResponse::new(text)),
                        Err(e) => responder.respond_with_error(refusal(e)),
                    }
                })
            },
            acp::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: WriteTextFileRequest, responder, cx| {
                let s = s4.clone();
                cx.spawn(async move {
                    match s.write_file(req).await {
                        Ok(()) => responder.respond(WriteTextFileResponse::new()),
                        Err(e) => responder.respond_with_error(refusal(e)),
                    }
                })
            },
            acp::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: CreateTerminalRequest, responder, _cx| match s5.create_terminal(req) {
                Ok(id) => responder.respond(CreateTerminalResponse::new(id)),
                Err(e) => responder.respond_with_error(refusal(e)),
            },
            acp::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: TerminalOutputRequest, responder, _cx| match s6
                .terminals
                .output(&req.terminal_id.to_string())
            {
                Ok(out) => responder.respond(
                    TerminalOutputResponse::new(out.text, out.truncated)
                        .exit_status(out.exit.map(exit_status)),
                ),
                Err(e) => responder.respond_with_error(refusal(e)),
            },
            acp::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: WaitForTerminalExitRequest, responder, cx| {
                let s = s7.clone();
                // Waiting for a command must not hold the dispatch loop.
                cx.spawn(async move {
                    match s
                        .terminals
                        .wait_for_exit(&req.terminal_id.to_string())
                        .await
                    {
                        Ok(exit) => {
                            responder.respond(WaitForTerminalExitResponse::new(exit_status(exit)))
                        }
                        Err(e) => responder.respond_with_error(refusal(e)),
                    }
                })
            },
            acp::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: KillTerminalRequest, responder, cx| {
                let s = s8.clone();
                cx.spawn(async move {
                    match s.terminals.kill(&req.terminal_id.to_string()).await {
                        Ok(()) => responder.respond(KillTerminalResponse::new()),
                        Err(e) => responder.respond_with_error(refusal(e)),
                    }
                })
            },
            acp::on_receive_request!(),
        )
        .on_receive_request(
            {
                let s = shared.clone();
                async move |req: ReleaseTerminalRequest, responder, cx| {
                    let s = s.clone();
                    cx.spawn(async move {
                        match s.terminals.release(&req.terminal_id.to_string()).await {
                            Ok(()) => responder.respond(ReleaseTerminalResponse::new()),
                            Err(e) => responder.respond_with_error(refusal(e)),
                        }
                    })
                }
            },
            acp::on_receive_request!(),
        )
        .connect_with(
            transport,
            async move |cx: acp::v1::ConnectionTo<acp::Agent>| {
                let end = session(&cx, &main_shared, setup, &main_report, &main_wire).await;
                lock(&main_report).end = end;
                Ok(())
            },
        )
        .await;
    let mut report = match Arc::try_unwrap(report) {
        Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
        Err(shared) => {
            let mut r = lock(&shared);
            SessionReport {
                end: std::mem::replace(&mut r.end, SessionEnd::Idle),
                session_id: r.session_id.clone(),
                turns: r.turns,
                last_stop_reason: r.last_stop_reason.clone(),
                last_message: std::mem::take(&mut r.last_message),
            }
        }
    };
    if let Err(e) = result {
        if !matches!(report.end, SessionEnd::Lost(_)) {
            report.end = SessionEnd::Lost(format!("the connection to the agent failed: {e}"));
        }
    }
    report
}

/// Why the agent could not be reached: the transport's own problem if it
/// saw one, else `what`.
fn lost(wire: &Wire, what: String) -> SessionEnd {
    SessionEnd::Lost(wire.problem().unwrap_or(what))
}

async fn session(
    cx: &acp::v1::ConnectionTo<acp::Agent>,
    shared: &Shared,
    mut setup: SessionSetup,
    report: &Mutex<SessionReport>,
    wire: &Wire,
) -> SessionEnd {
    let capabilities = ClientCapabilities::new()
        .fs(FileSystemCapabilities::new()
            .read_text_file(shared.files.can_read())
            .write_text_file(shared.files.can_write()))
        .terminal(shared.terminals.available());
    let init = InitializeRequest::new(ProtocolVersion::V1)
        .client_capabilities(capabilities)
        .client_info(Implementation::new(
            "agent-tasks",
            env!("CARGO_PKG_VERSION"),
        ));
    // The handshake has a bound of its own: an agent that never answers
    // would otherwise hold a `running` task until the task's timeout, which
    // for a persistent agent is usually none.
    let handshake_end = crate::util::deadline(tokio::time::Instant::now(), setup.handshake_timeout);
    let out_of_time = |step: &str| {
        SessionEnd::Lost(format!(
            "the agent did not answer `{step}` within the handshake timeout of {} \
             (handshake_timeout)",
            crate::info::human_duration(crate::util::millis(setup.handshake_timeout))
        ))
    };
    let initialized = tokio::select! {
        r = cx.send_request(init).block_task() => r,
        _ = wire.closed.cancelled() => return lost(wire, "the agent exited before it initialized".into()),
        _ = setup.cancel.cancelled() => return SessionEnd::Cancelled,
        _ = crate::util::sleep_until(handshake_end), if handshake_end.is_some() => {
            return out_of_time("initialize");
        }
    };
    if let Err(e) = initialized {
        return lost(wire, format!("the agent refused to initialize: {e}"));
    }
    let new_session = NewSessionRequest::new(shared.cwd.clone())
        .mcp_servers(std::mem::take(&mut setup.mcp_servers));
    let opened = tokio::select! {
        r = cx.send_request(new_session).block_task() => r,
        _ = wire.closed.cancelled() => return lost(wire, "the agent exited before it opened a session".into()),
        _ = setup.cancel.cancelled() => return SessionEnd::Cancelled,
        _ = crate::util::sleep_until(handshake_end), if handshake_end.is_some() => {
            return out_of_time("session/new");
        }
    };
    let session_id = match opened {
        Ok(response) => response.session_id,
        Err(e) => return lost(wire, format!("the agent refused to open a session: {e}")),
    };
    lock(report).session_id = Some(session_id.to_string());

    let mut pending: VecDeque<String> = VecDeque::from([setup.goal.clone()]);
    let mut input_closed = false;
    let mut turn = 0u64;
    loop {
        let prompt = match pending.pop_front() {
            Some(prompt) => prompt,
            None if input_closed => return SessionEnd::InputClosed,
            None => {
                let idle = crate::util::deadline(
                    tokio::time::Instant::now(),
                    setup.idle_timeout.unwrap_or(Duration::MAX),
                );
                tokio::select! {
                    message = recv(&mut setup.inbox) => match message {
                        Some(m) if m.is_eof() => return SessionEnd::InputClosed,
                        Some(m) => m.text(),
                        None => return SessionEnd::InputClosed,
                    },
                    _ = crate::util::sleep_until(idle), if idle.is_some() => {
                        shared.note("no follow-up within the idle timeout: ending the session");
                        return SessionEnd::Idle;
                    }
                    _ = wire.closed.cancelled() => {
                        return match wire.problem() {
                            Some(problem) => SessionEnd::Lost(problem),
                            None => SessionEnd::AgentClosed,
                        };
                    }
                    _ = setup.cancel.cancelled() => return SessionEnd::Cancelled,
                }
            }
        };
        turn += 1;
        lock(report).turns = turn;
        shared.show(|r| r.prompt(turn, &prompt));
        let request = PromptRequest::new(
            session_id.clone(),
            vec![ContentBlock::Text(TextContent::new(prompt))],
        );
        let response = cx.send_request(request).block_task();
        tokio::pin!(response);
        let mut cancel_deadline: Option<tokio::time::Instant> = None;
        let result = loop {
            tokio::select! {
                r = &mut response => break Some(r),
                message = recv(&mut setup.inbox), if !input_closed => match message {
                    Some(m) if !m.is_eof() => {
                        shared.note(&format!(
                            "follow-up queued: it is sent when turn {turn} ends"
                        ));
                        pending.push_back(m.text());
                    }
                    _ => input_closed = true,
                },
                _ = wire.closed.cancelled() => break None,
                _ = setup.cancel.cancelled(), if cancel_deadline.is_none() => {
                    shared.note(&format!("cancelling turn {turn}"));
                    let _ = cx.send_notification(CancelNotification::new(session_id.clone()));
                    cancel_deadline = crate::util::deadline(tokio::time::Instant::now(), setup.cancel_grace);
                }
                _ = crate::util::sleep_until(cancel_deadline), if cancel_deadline.is_some() => {
                    return SessionEnd::Cancelled;
                }
            }
        };
        let response = match result {
            Some(Ok(response)) => response,
            Some(Err(e)) if cancel_deadline.is_none() => {
                return lost(wire, format!("turn {turn} failed: {e}"));
            }
            Some(Err(_)) => return SessionEnd::Cancelled,
            None => {
                return lost(
                    wire,
                    format!("the connection to the agent was lost during turn {turn}"),
                )
            }
        };
        let stop_reason = serde_json::to_value(response.stop_reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".to_string());
        let message = lock(&shared.renderer).turn_message();
        shared.show(|r| r.turn_end(turn, &stop_reason));
        {
            let mut report = lock(report);
            report.last_stop_reason = Some(stop_reason.clone());
            report.last_message = message.clone();
        }
        if cancel_deadline.is_some() {
            return SessionEnd::Cancelled;
        }
        let summary = if message.is_empty() {
            format!("turn {turn} ended ({stop_reason}); the agent said nothing")
        } else {
            format!("turn {turn} ended ({stop_reason}); the agent's final message:\n{message}")
        };
        (setup.turn_ended)(turn, summary);
    }
}

async fn recv(inbox: &mut Option<mpsc::Receiver<Message>>) -> Option<Message> {
    match inbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads every line of `input` through a buffer of `capacity` bytes.
    async fn lines(input: &[u8], capacity: usize, max: usize) -> Vec<Result<String, &'static str>> {
        let mut reader = BufReader::with_capacity(capacity, input);
        let mut out = Vec::new();
        loop {
            match read_line_bounded(&mut reader, max).await {
                Ok(LineRead::Line(bytes)) => out.push(Ok(String::from_utf8(bytes).expect("utf-8"))),
                Ok(LineRead::End) => return out,
                Ok(LineRead::TooLong) => {
                    out.push(Err("too long"));
                    return out;
                }
                Err(_) => {
                    out.push(Err("error"));
                    return out;
                }
            }
        }
    }

    #[tokio::test]
    async fn a_line_may_fill_the_bound_but_not_pass_it_whatever_the_buffer() {
        for capacity in [1, 3, 8, 64] {
            // Exactly the bound (the newline not counted), across buffer refills.
            assert_eq!(
                lines(b"12345678\nab\n", capacity, 8).await,
                [Ok("12345678\n".to_string()), Ok("ab\n".to_string())],
                "capacity {capacity}"
            );
            // One byte over: given up without reading on.
            assert_eq!(
                lines(b"ab\n123456789\nnever read\n", capacity, 8).await,
                [Ok("ab\n".to_string()), Err("too long")],
                "capacity {capacity}"
            );
            // The last bytes without a newline are a line; then the end.
            assert_eq!(
                lines(b"ab\ncd", capacity, 8).await,
                [Ok("ab\n".to_string()), Ok("cd".to_string())],
                "capacity {capacity}"
            );
            assert_eq!(lines(b"", capacity, 8).await, []);
        }
    }

    #[test]
    fn sizes_are_named_in_whole_units() {
        assert_eq!(size_text(16 * 1024 * 1024), "16 MiB");
        assert_eq!(size_text(2048), "2 KiB");
        assert_eq!(size_text(1500), "1500 bytes");
    }
}
