//! The ACP presets against real coding agents, driven through the library
//! as a host would: opencode and Claude Code, installed at pinned versions
//! from the npm registry under `target/real-agents/` by
//! `scripts/real_agents.sh` (run here too, so a bare `cargo test` sets
//! itself up; it does nothing once they are there). Each agent runs in a
//! network namespace of its own that has nothing but a loopback, with the
//! scripted model server (`tests/real_agents/model_server.py`) inside it:
//! no request can leave the machine, and whatever stray request an agent
//! makes fails at once. One scenario per agent: a turn that runs a shell
//! command (opencode in its own shell, Claude Code in a terminal the library
//! serves) after asking the host's permission policy, its final message
//! exact and the command's output visible to the host; a follow-up; a cancel mid-turn; then no process of the agent
//! left in its namespace. Needs root (for `ip netns`), node and npm; it
//! fails, never skips, without them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_tasks::acp::{
    AcpTask, AgentKind, AgentPreset, ModelEndpoint, PermissionDecision, PermissionPolicy,
    PermissionRequest,
};
use agent_tasks::{
    CancelReason, ManagerConfig, NotificationKind, SpawnOptions, TaskManager, TaskStatus,
};
use common::{manager_in_temp, process_is_dead};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// How long one step of a real agent may take (its start, one turn): the
/// agents answer in seconds; this bounds a hang, it is no pace.
const STEP: Duration = Duration::from_secs(120);

/// The command the scripted model asks the agent to run, and what it
/// prints: the output is in no prompt or command, only in what ran.
const COMMAND: &str = "echo tool-$((6*7))-out";
const COMMAND_OUTPUT: &str = "tool-42-out";

/// Waits (bounded by `STEP`) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Installs the pinned agents (once) and returns where they are.
fn agents() -> PathBuf {
    let status = Command::new("bash")
        .arg(format!("{REPO}/scripts/real_agents.sh"))
        .status()
        .expect("run scripts/real_agents.sh");
    assert!(
        status.success(),
        "scripts/real_agents.sh failed ({status}): the real agents could not be installed from the npm registry"
    );
    PathBuf::from(format!("{REPO}/target/real-agents"))
}

/// The command that starts each agent's ACP side (the preset adds its
/// arguments).
fn program(agents: &Path, kind: AgentKind) -> Vec<String> {
    match kind {
        AgentKind::Opencode => {
            // The package's own install script picks the build for the
            // processor; it is skipped at install, so pick here.
            let avx2 = std::fs::read_to_string("/proc/cpuinfo")
                .map(|info| info.contains(" avx2"))
                .unwrap_or(false);
            let build = if avx2 {
                "opencode-linux-x64"
            } else {
                "opencode-linux-x64-baseline"
            };
            let bin = agents.join(format!("opencode/node_modules/{build}/bin/opencode"));
            assert!(bin.exists(), "{} is missing", bin.display());
            vec![bin.display().to_string()]
        }
        AgentKind::ClaudeCode => {
            let js = agents
                .join("claude-code/node_modules/@zed-industries/claude-code-acp/dist/index.js");
            assert!(js.exists(), "{} is missing", js.display());
            vec!["node".to_string(), js.display().to_string()]
        }
        other => panic!("no rig for {other:?}"),
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?}: {status} (root is needed)");
}

/// A network namespace with its loopback up and the scripted model server
/// in it; removed, with whatever still runs in it, when dropped (however
/// the test ends).
struct Netns {
    name: String,
    server: Child,
    port: u16,
    log: PathBuf,
}

impl Netns {
    fn new(tag: &str, dir: &Path) -> Netns {
        let name = format!("at-real-{}-{tag}", std::process::id());
        // A namespace left by a killed run of the same pid and tag.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        let port_file = dir.join("model.port");
        let log = dir.join("model.log");
        let server = Command::new("ip")
            .args(["netns", "exec", &name, "python3"])
            .arg(format!("{REPO}/tests/real_agents/model_server.py"))
            .arg(&port_file)
            .arg(&log)
            .spawn()
            .expect("start the model server");
        let mut ns = Netns {
            name,
            server,
            port: 0,
            log,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        ns.port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                break port;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the model server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        ns
    }

    /// `ip netns exec <name>`: what runs a command inside.
    fn exec(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name]
            .map(str::to_string)
            .to_vec()
    }

    /// The processes inside, the model server's included.
    fn pids(&self) -> Vec<u32> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .expect("ip netns pids");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    fn model_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Waits for turn `turn`'s one-shot notification and returns its text.
async fn turn_notice(manager: &TaskManager, id: &str, turn: u64) -> String {
    let note_id = format!("{id}.t{turn}");
    let find = || {
        manager
            .notifications(None)
            .into_iter()
            .find(|n| n.id == note_id)
    };
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if let Some(note) = find() {
            assert_eq!(note.kind, NotificationKind::TurnEnded);
            assert_eq!(note.status, TaskStatus::Running);
            return note.text;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "turn {turn} did not end; output:\n{}\ninfo: {:?}",
                common::output_so_far(manager, id),
                manager.info(id).map(|i| (i.status, i.error))
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn scenario(kind: AgentKind, tag: &str) {
    let agents = agents();
    let (manager, dir) = manager_in_temp(ManagerConfig::default());
    let ns = Netns::new(tag, dir.path());
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    for file in ["alpha.txt", "beta.txt"] {
        std::fs::write(work.join(file), "x\n").expect("write");
    }
    let home = dir.path().join("home");
    let base = format!("http://127.0.0.1:{}", ns.port);
    let preset = match kind {
        AgentKind::Opencode => AgentPreset::opencode(&home).model(ModelEndpoint::new(
            format!("{base}/v1"),
            "scripted",
            "none",
        )),
        AgentKind::ClaudeCode => {
            AgentPreset::claude_code(&home).model(ModelEndpoint::new(base, "scripted", "none"))
        }
        other => panic!("no rig for {other:?}"),
    };
    let asked: Arc<Mutex<Vec<PermissionRequest>>> = Arc::default();
    let seen = asked.clone();
    let policy = PermissionPolicy::ask(move |request| {
        seen.lock().expect("lock").push(request);
        async { PermissionDecision::Allow }
    });
    let chunks: Arc<Mutex<String>> = Arc::default();
    let streamed = chunks.clone();
    let command = ns.exec().into_iter().chain(program(&agents, kind));
    let task = AcpTask::preset(command, &preset, "RUN-A-COMMAND: how many files are here?")
        .cwd(&work)
        .permissions(policy)
        .terminals(&manager)
        .handshake_timeout(STEP)
        .kill_grace(Duration::from_secs(2))
        .on_update(move |update| {
            if update["update"]["sessionUpdate"] == "agent_message_chunk" {
                if let Some(text) = update["update"]["content"]["text"].as_str() {
                    streamed.lock().expect("lock").push_str(text);
                }
            }
        });
    let id = manager
        .spawn(task, SpawnOptions::background().no_timeout())
        .expect("spawn")
        .id()
        .to_string();
    let pid = manager.info(&id).expect("info").pid.expect("pid");

    // Turn 1: the model asks for the command; the agent asks the host's
    // policy, runs it in its own shell, and the model answers.
    let notice = turn_notice(&manager, &id, 1).await;
    assert!(
        notice.ends_with("final message:\nThere are two files."),
        "{notice}"
    );
    let text = common::output_so_far(&manager, &id);
    assert!(text.contains("Let me look.\n"), "{text}");
    match kind {
        // opencode runs the command in its own shell and sends its output
        // as the tool call's content, rendered under it.
        AgentKind::Opencode => assert!(
            text.contains(&format!("\n    {COMMAND_OUTPUT}\n")),
            "the command's output is not under its tool call:\n{text}"
        ),
        // Claude Code's adapter runs it in a terminal the library serves
        // (a process task of the manager), named under the tool call.
        AgentKind::ClaudeCode => {
            let terminal = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("[terminal "))
                .and_then(|l| l.strip_suffix(']'))
                .unwrap_or_else(|| panic!("no terminal under the tool call:\n{text}"));
            let ran = common::output_so_far(&manager, terminal);
            assert_eq!(ran, format!("{COMMAND_OUTPUT}\n"), "terminal {terminal}");
            assert!(
                text.contains(&format!("[acp] terminal {terminal}: {COMMAND}\n")),
                "{text}"
            );
        }
        other => panic!("no rig for {other:?}"),
    }
    assert!(
        text.contains("There are two files.\n[turn 1 ended: end_turn]\n"),
        "{text}"
    );
    {
        let asked = asked.lock().expect("lock");
        assert!(
            asked
                .iter()
                .any(|r| r.tool_call.to_string().contains("6*7")),
            "no permission request for `{COMMAND}`: {:?}",
            asked.iter().map(|r| &r.tool_call).collect::<Vec<_>>()
        );
    }

    assert!(
        text.lines().any(|l| l.starts_with("[acp] permission for ")
            && l.contains("6*7")
            && l.contains(": allow_once (")),
        "the policy's answer is not in the output:\n{text}"
    );

    // Turn 2: a follow-up in the same session.
    manager
        .send(&id, "FOLLOW-UP: anything else?")
        .expect("follow-up");
    let notice = turn_notice(&manager, &id, 2).await;
    assert!(
        notice.ends_with("final message:\nFollow-up answered."),
        "{notice}"
    );

    // Turn 3: the model starts answering, then stalls; cancel mid-turn.
    manager.send(&id, "HANG: take your time").expect("send");
    until("the third turn's first words", || {
        chunks.lock().expect("lock").contains("Working on it")
    })
    .await;
    let info = manager
        .cancel(&id, CancelReason::user("no longer needed"))
        .await
        .expect("cancel");
    assert_eq!(info.status, TaskStatus::Cancelled);
    let text = common::output_so_far(&manager, &id);
    assert!(text.contains("[acp] cancelling turn 3"), "{text}");
    assert!(text.contains("[turn 3 ended: cancelled]"), "{text}");

    // No process left: the agent and all it started are gone; only the
    // model server still runs in the namespace.
    assert!(process_is_dead(pid));
    let server = ns.server.id();
    until("the namespace to hold only the model server", || {
        ns.pids().iter().all(|&p| p == server)
    })
    .await;
    // The model traffic went to the server in the namespace, and every
    // request it had was one it scripted.
    let log = ns.model_log();
    assert!(log.contains("hang=True"), "{log}");
    assert!(
        log.lines()
            .all(|l| l.starts_with("POST ") && !l.contains("(unknown)") || l == "client went away"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn opencode_offline_runs_a_command_follows_up_and_cancels() {
    scenario(AgentKind::Opencode, "oc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_code_offline_runs_a_command_follows_up_and_cancels() {
    scenario(AgentKind::ClaudeCode, "cc").await;
}
