//! `agent-tasks mcp`: the model-facing tools of `agent_tasks::tools` served
//! over the Model Context Protocol on stdio, with the official Rust SDK
//! (`rmcp`). The tools are not re-declared here: `tools/list` answers the
//! core's `definitions()` (their `.mcp()` shape) and `tools/call` hands the
//! call to the core's `ToolBox`, whose text goes in the result's content,
//! its JSON in `structuredContent` and its error flag in `isError`.
//!
//! What no MCP client can do on its own is hear that background work ended,
//! so the owner's pending notifications are appended to the next tool answer
//! (after a `--- background task notifications ---` line) and acknowledged
//! once shown; each is also sent as an MCP logging message when it appears,
//! for clients that display those. When the client disconnects (stdin EOF)
//! the server stops its tasks cleanly and exits, or with `--keep-alive`
//! waits for them to end first.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use agent_tasks::tools::{definitions, ToolBox, ToolBoxConfig};
use agent_tasks::{ListFilter, ManagerConfig, TaskManager};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, Content, Implementation, ListToolsResult, LoggingLevel,
    LoggingMessageNotificationParam, PaginatedRequestParams, ServerCapabilities, ServerInfo,
    SetLevelRequestParams, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, Peer, ServerHandler, ServiceExt};
use serde_json::{json, Value};

use crate::Failure;

/// The line that opens the notifications appended to a tool answer.
pub const NOTIFICATIONS_MARKER: &str = "--- background task notifications ---";

/// Arguments of `agent-tasks mcp`.
#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// A durable task root (opened with `TaskManager::open`; refused while
    /// another host holds it). Without it, a private temporary root.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// The owner (session) the client's tasks belong to.
    #[arg(long, value_name = "O", default_value = "mcp")]
    owner: String,
    /// Working directory of commands that give none.
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// When the client disconnects, keep running tasks going until they end
    /// (default: stop them and exit).
    #[arg(long)]
    keep_alive: bool,
}

/// The MCP server: one toolbox, for one owner.
#[derive(Clone)]
struct Server {
    manager: TaskManager,
    toolbox: ToolBox,
    owner: String,
    tools: Arc<Vec<Tool>>,
    /// Notifications already sent as logging messages.
    logged: Arc<Mutex<HashSet<String>>>,
}

/// The core's tool definitions as rmcp tools (same name, description, schema).
fn mcp_tools() -> Result<Vec<Tool>, Failure> {
    definitions()
        .iter()
        .map(|d| {
            serde_json::from_value::<Tool>(d.mcp())
                .map_err(|e| Failure(format!("tool definition {}: {e}", d.name)))
        })
        .collect()
}

impl Server {
    /// The owner's pending notifications, as a block to append to an
    /// answer; they are acknowledged here, so each is shown once.
    fn take_notifications(&self) -> Option<String> {
        let pending = self.manager.notifications(Some(&self.owner));
        if pending.is_empty() {
            return None;
        }
        let ids: Vec<&str> = pending.iter().map(|n| n.id.as_str()).collect();
        let mut block = String::from(NOTIFICATIONS_MARKER);
        for n in &pending {
            block.push('\n');
            block.push_str(n.text.trim_end());
        }
        if let Err(e) = self.manager.ack(&ids) {
            eprintln!("agent-tasks mcp: acknowledging notifications: {e}");
        }
        Some(block)
    }

    /// Sends each pending notification not sent yet as a logging message.
    async fn log_new_notifications(&self, peer: &Peer<RoleServer>) {
        let fresh: Vec<_> = {
            let mut logged = self
                .logged
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            self.manager
                .notifications(Some(&self.owner))
                .into_iter()
                .filter(|n| logged.insert(n.id.clone()))
                .collect()
        };
        for n in fresh {
            let param = LoggingMessageNotificationParam {
                level: LoggingLevel::Info,
                logger: Some("agent-tasks".to_string()),
                data: json!({
                    "notification_id": n.id,
                    "task_id": n.task_id,
                    "kind": n.kind,
                    "status": n.status,
                    "text": n.text,
                }),
            };
            if peer.notify_logging_message(param).await.is_err() {
                return; // the client is gone
            }
        }
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerInfo {
        ServerInfo {
            capabilities: ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .build(),
            server_info: Implementation {
                name: "agent-tasks".to_string(),
                title: Some("agent-tasks".to_string()),
                version: env!("CARGO_PKG_VERSION").to_string(),
                description: None,
                icons: None,
                website_url: None,
            },
            instructions: Some(
                "Run shell commands as tasks: task_run waits in the foreground up to its timeout, then moves the command to the background and answers with its task_id. Read new output with task_output (pass the next cursor), wait with task_wait, stop with task_cancel, send input with task_send. When background tasks end, a notice is appended to your next tool answer."
                    .to_string(),
            ),
            ..ServerInfo::default()
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let answer = self.toolbox.call(&request.name, args).await;
        // Each notification is sent as a logging message once, before it is
        // acknowledged below (the event-driven logger may not have run yet).
        self.log_new_notifications(&context.peer).await;
        let mut text = answer.text;
        if let Some(block) = self.take_notifications() {
            text.push_str("\n\n");
            text.push_str(&block);
        }
        let structured = match answer.json {
            Value::Object(_) => answer.json,
            Value::Null => Value::Object(Default::default()),
            other => json!({ "value": other }),
        };
        Ok(CallToolResult {
            content: vec![Content::text(text)],
            structured_content: Some(structured),
            is_error: Some(answer.is_error),
            meta: None,
        })
    }

    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }
}

/// Runs the server until the client disconnects.
pub fn serve(args: McpArgs) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: McpArgs) -> Result<(), Failure> {
    // The session ends when the client disconnects (stdin EOF); SIGTERM,
    // SIGHUP and Ctrl+C end it too, and then the tasks are stopped as well.
    // Listened to before the manager exists, so a signal never finds a
    // root without its cleanup.
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let config = match &args.root {
        Some(root) => ManagerConfig::default().root(root),
        None => ManagerConfig::default(),
    };
    let manager = TaskManager::new(config).map_err(|e| match e {
        agent_tasks::Error::RootInUse { path } => Failure(format!(
            "the root {} is held by another host; give another --root, or none for a private one",
            path.display()
        )),
        other => Failure(other.to_string()),
    })?;
    let toolbox = ToolBox::with_config(
        manager.clone(),
        args.owner.clone(),
        ToolBoxConfig {
            cwd: args.cwd.clone(),
            ..ToolBoxConfig::default()
        },
    )
    .map_err(|e| Failure(e.to_string()))?;
    let server = Server {
        manager: manager.clone(),
        toolbox,
        owner: args.owner.clone(),
        tools: Arc::new(mcp_tools()?),
        logged: Arc::new(Mutex::new(HashSet::new())),
    };
    let started = tokio::select! {
        started = server.clone().serve(rmcp::transport::stdio()) => Some(started),
        _ = terminate.recv() => None,
        _ = hangup.recv() => None,
        _ = interrupt.recv() => None,
    };
    let Some(started) = started else {
        // Signalled before the session started: nothing ran.
        manager.shutdown("the MCP server was stopped").await;
        manager.remove_temporary_root_now(std::time::Duration::ZERO);
        return Ok(());
    };
    let service = started.map_err(|e| Failure(format!("starting the MCP session: {e}")))?;
    // Logging messages for notifications as they appear (a task ended, a
    // watch matched): every event is a moment to look.
    let peer = service.peer().clone();
    let mut events = manager.subscribe();
    let logger = tokio::spawn({
        let server = server.clone();
        async move {
            while events.recv().await.is_some() {
                server.log_new_notifications(&peer).await;
            }
        }
    });
    let session = service.cancellation_token();
    let signalled = tokio::select! {
        quit = service.waiting() => {
            if let Err(e) = quit {
                eprintln!("agent-tasks mcp: the session ended with an error: {e}");
            }
            false
        }
        _ = terminate.recv() => true,
        _ = hangup.recv() => true,
        _ = interrupt.recv() => true,
    };
    session.cancel();
    logger.abort();
    if args.keep_alive && !signalled {
        // Running tasks go on until they end; their ends are saved in the root.
        let wait_all = async {
            for info in manager.list(&ListFilter::default().active()) {
                let _ = manager.collect(info.id.as_str(), None).await;
            }
        };
        tokio::select! {
            () = wait_all => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
            _ = interrupt.recv() => {}
        }
    }
    manager.shutdown("the MCP client disconnected").await;
    // A private temporary root goes with the server, whatever still holds
    // the manager (the tasks have ended: nothing waits for them here).
    manager.remove_temporary_root_now(std::time::Duration::ZERO);
    Ok(())
}
