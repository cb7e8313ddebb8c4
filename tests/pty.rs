//! PTY mode through the public API: a PTY task sees a terminal (stdin,
//! stdout and stderr, one stream), reads what `send` types, reacts to a
//! resize, is interrupted by Ctrl+C typed with `send_keys`, loses no byte
//! when detached mid-output, can be paused and resumed; cancel kills a tree
//! that ignores SIGHUP and SIGTERM; a descendant holding the terminal after
//! the child exits cannot hang the task; bad sizes and resizing a task
//! without a terminal are refused.

mod common;

use std::time::Duration;

use agent_tasks::{
    CancelReason, CollectOutcome, Containment, Error, ForegroundOutcome, Key, ManagerConfig,
    Message, ProcessTask, SpawnOptions, Stream, TaskManager, TaskResult, TaskStatus, WaitOutcome,
    WaitUntil,
};
use common::{manager_in_temp, process_is_dead, read_all, wait_for};

const LONG: Option<Duration> = Some(Duration::from_secs(30));

/// Waits for an output line of `id` matching `pattern` from `cursor`;
/// returns the line and the cursor past it.
async fn line(manager: &TaskManager, id: &str, pattern: &str, cursor: u64) -> (String, u64) {
    let outcome = manager
        .wait_for(id, WaitUntil::output(pattern, cursor).expect("regex"), LONG)
        .await
        .expect("wait");
    match outcome {
        WaitOutcome::Matched { line, cursor } => (line, cursor),
        other => panic!(
            "no line matching {pattern:?}: {other:?}; output: {:?}",
            so_far(manager, id)
        ),
    }
}

async fn finish(manager: &TaskManager, id: &str) -> TaskResult {
    match manager.collect(id, LONG).await.expect("collect") {
        CollectOutcome::Finished(result) => result,
        CollectOutcome::StillRunning(info) => panic!("still running: {info:?}"),
    }
}

/// A finished task's whole output, as text.
fn text(manager: &TaskManager, id: &str) -> String {
    String::from_utf8_lossy(&read_all(manager, id)).into_owned()
}

/// The output of a task so far (it may still run), as text.
fn so_far(manager: &TaskManager, id: &str) -> String {
    manager.poll(id, 0, 1 << 20).expect("poll").text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pty_task_sees_a_terminal_and_its_streams_are_one() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell(
                "test -t 0 && test -t 1 && test -t 2 && echo on-a-tty; echo to-stderr >&2; echo term=$TERM; stty size",
            )
            .pty(80, 24),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let result = finish(&manager, &id).await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
    let out = text(&manager, &id);
    // The terminal ends lines with \r\n; stderr arrives in the same stream.
    assert!(
        out.contains("on-a-tty\r\nto-stderr\r\nterm=xterm-256color\r\n24 80\r\n"),
        "{out:?}"
    );
    let page = manager.poll(&id, 0, 1 << 20).expect("poll");
    assert!(
        !page.spans.is_empty() && page.spans.iter().all(|s| s.stream == Stream::STDOUT),
        "a PTY task writes one stream: {:?}",
        page.spans
    );

    // Without pty, the same command sees no terminal.
    let plain = manager
        .spawn(
            ProcessTask::shell("test -t 1 && echo on-a-tty || echo no-tty"),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let plain_id = plain.id().to_string();
    finish(&manager, &plain_id).await;
    assert_eq!(text(&manager, &plain_id), "no-tty\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_types_keystrokes_and_eof_types_ctrl_d() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("echo ready; read name; echo \"hello, $name\"; cat; echo cat-ended")
                .pty(80, 24),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let (_, cursor) = line(&manager, &id, "^ready", 0).await;
    manager.send(&id, "world").expect("send text");
    manager.send_keys(&id, &[Key::Enter]).expect("send enter");
    let (greeting, cursor) = line(&manager, &id, "^hello, ", cursor).await;
    assert_eq!(greeting, "hello, world");
    manager.send(&id, "typed into cat\n").expect("send");
    line(&manager, &id, "typed into cat", cursor).await;
    // Ctrl+D at the start of a line: `cat` reads its end of input.
    manager.send(&id, Message::eof()).expect("eof");
    let result = finish(&manager, &id).await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
    assert!(text(&manager, &id).contains("cat-ended"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resize_reaches_the_program() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell(
                "trap 'echo winch $(stty size)' WINCH; echo size $(stty size); while :; do sleep 0.02; done",
            )
            .pty(80, 24),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let (first, cursor) = line(&manager, &id, "^size ", 0).await;
    assert_eq!(first, "size 24 80");
    manager.resize(&id, 132, 43).await.expect("resize");
    let (after, _) = line(&manager, &id, "^winch ", cursor).await;
    assert_eq!(after, "winch 43 132");
    // A size of zero is refused, naming the argument.
    match manager.resize(&id, 0, 10).await {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "cols"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    manager
        .cancel(&id, CancelReason::user("done"))
        .await
        .expect("cancel");
    // An ended task's terminal is gone.
    assert!(matches!(
        manager.resize(&id, 80, 24).await,
        Err(Error::InvalidArgument { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_typed_with_send_keys_interrupts_the_program() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell(
                "trap 'echo interrupted; exit 3' INT; echo ready; while :; do sleep 0.05; done",
            )
            .pty(80, 24),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    line(&manager, &id, "^ready", 0).await;
    let keys = Key::parse_all(["ctrl+c"]).expect("parse");
    manager.send_keys(&id, &keys).expect("send ctrl+c");
    let result = finish(&manager, &id).await;
    assert_eq!(result.status, TaskStatus::Failed);
    assert_eq!(
        result.exit.as_ref().and_then(|e| e.code),
        Some(3),
        "{result:?}"
    );
    assert!(text(&manager, &id).contains("interrupted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pty_task_detached_mid_output_loses_no_byte() {
    const LINES: u64 = 200_000; // about 1.4 MB on the terminal
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().memory_limit(8 << 20));
    let task = manager
        .spawn(
            ProcessTask::argv(["seq", "1", &LINES.to_string()]).pty(80, 24),
            SpawnOptions::foreground().no_timeout(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("some output", || {
        manager.info(&id).expect("info").output.total_bytes > 64 * 1024
    })
    .await;
    let waiter = tokio::spawn({
        let task = task.clone();
        async move { task.wait_foreground().await }
    });
    let info = manager.detach(&id).expect("detach");
    assert!(info.detached && info.output.spilled);
    assert!(matches!(
        waiter.await.expect("join"),
        ForegroundOutcome::Detached(_)
    ));
    let result = finish(&manager, &id).await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
    // The terminal turns each \n into \r\n.
    let mut expected = Vec::new();
    for i in 1..=LINES {
        expected.extend_from_slice(format!("{i}\r\n").as_bytes());
    }
    let polled = read_all(&manager, &id);
    assert!(
        polled == expected,
        "polled output differs from what seq wrote"
    );
    let log = std::fs::read(result.output.log_path.expect("log path")).expect("read log");
    assert!(log == expected, "output.log differs from what seq wrote");
}

/// The pids a task printed as `pid N` lines.
fn printed_pids(out: &str) -> Vec<u32> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("pid "))
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_a_tree_that_ignores_hup_and_term_under_a_pty() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    // A subshell in the group and a `setsid` escapee, all ignoring HUP,
    // TERM and INT, under each containment.
    let script = "trap '' HUP TERM INT; \
        (trap '' HUP TERM INT; echo pid $(sh -c 'echo $PPID'); while :; do sleep 0.05; done) & \
        setsid sh -c 'trap \"\" HUP TERM INT; echo pid $$; while :; do sleep 0.05; done' & \
        echo pid $$; while :; do sleep 0.05; done";
    for mode in [
        Containment::Cgroup,
        Containment::Subreaper,
        Containment::ProcessGroup,
    ] {
        let task = manager
            .spawn(
                ProcessTask::shell(script)
                    .pty(80, 24)
                    .containment(mode)
                    .kill_grace(Duration::from_millis(200)),
                SpawnOptions::background(),
            )
            .expect("spawn");
        let id = task.id().to_string();
        wait_for("three pids", || {
            printed_pids(&so_far(&manager, &id)).len() == 3
        })
        .await;
        let pids = printed_pids(&so_far(&manager, &id));
        let info = manager
            .cancel(&id, CancelReason::user("stop"))
            .await
            .expect("cancel");
        assert_eq!(info.status, TaskStatus::Cancelled, "{mode:?}");
        assert!(info.containment.is_some(), "{mode:?}");
        for pid in pids {
            wait_for(&format!("process {pid} to die ({mode:?})"), || {
                process_is_dead(pid)
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descendant_holding_the_terminal_cannot_hang_the_end() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell(
                "(trap '' HUP; echo pid $(sh -c 'echo $PPID'); exec sleep 600) & sleep 0.2; echo parent-done",
            )
            .pty(80, 24)
            .drain_grace(Duration::from_millis(300)),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let result = finish(&manager, &id).await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
    let out = text(&manager, &id);
    assert!(out.contains("parent-done"), "{out:?}");
    for pid in printed_pids(&out) {
        wait_for(&format!("process {pid} to die"), || process_is_dead(pid)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pty_task_pauses_and_resumes() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let task = manager
        .spawn(
            ProcessTask::shell("i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.01; done")
                .pty(80, 24),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    line(&manager, &id, "^tick 3", 0).await;
    assert!(manager.pause(&id).await.expect("pause").paused);
    // Let what was already on the terminal arrive, then nothing may come.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = manager.info(&id).expect("info").output.total_bytes;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(manager.info(&id).expect("info").output.total_bytes, before);
    assert!(!manager.resume(&id).await.expect("resume").paused);
    line(&manager, &id, "^tick", before).await;
    let info = manager
        .cancel(&id, CancelReason::user("done"))
        .await
        .expect("cancel");
    assert_eq!(info.status, TaskStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sizes_and_tasks_without_a_terminal_are_refused() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    for (cols, rows, name) in [(0, 24, "cols"), (80, 0, "rows")] {
        match manager.spawn(
            ProcessTask::shell("true").pty(cols, rows),
            SpawnOptions::background(),
        ) {
            Err(Error::InvalidArgument { name: got, .. }) => assert_eq!(got, name),
            other => panic!("expected InvalidArgument for {name}, got {other:?}"),
        }
    }
    let plain = manager
        .spawn(
            ProcessTask::shell("sleep 30").interactive(true),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = plain.id().to_string();
    match manager.resize(&id, 80, 24).await {
        Err(Error::InvalidArgument { name, message }) => {
            assert_eq!(name, "id");
            assert!(message.contains("no terminal"), "{message}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    match manager.send_keys(&id, &[]) {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "keys"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    match manager.send_keys(&id, &[Key::Ctrl('1')]) {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "keys"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    manager
        .cancel(&id, CancelReason::user("done"))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_runs_a_command_on_a_terminal_and_types_control_keys() {
    use agent_tasks::tools::ToolBox;
    use serde_json::json;

    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = ToolBox::new(manager.clone(), "session");
    let answer = tools
        .call(
            "task_run",
            json!({"command": "test -t 1 && echo on-a-tty; stty size", "tty": true}),
        )
        .await;
    assert!(!answer.is_error, "{}", answer.text);
    assert!(answer.text.contains("on-a-tty"), "{}", answer.text);
    assert!(answer.text.contains("40 120"), "{}", answer.text);

    let answer = tools
        .call(
            "task_run",
            json!({
                "command": "trap 'echo interrupted; exit 3' INT; echo ready; while :; do sleep 0.05; done",
                "tty": true,
                "background": true,
                "wait_until": "^ready",
            }),
        )
        .await;
    assert!(!answer.is_error, "{}", answer.text);
    assert!(answer.text.contains("terminal: 120x40"), "{}", answer.text);
    let id = answer.json["task_id"]
        .as_str()
        .expect("task id")
        .to_string();
    let sent = tools
        .call("task_send", json!({"task_id": id, "keys": ["ctrl+c"]}))
        .await;
    assert!(!sent.is_error, "{}", sent.text);
    assert!(sent.text.contains("keys: ctrl+c"), "{}", sent.text);
    let result = finish(&manager, &id).await;
    assert_eq!(
        result.exit.as_ref().and_then(|e| e.code),
        Some(3),
        "{result:?}"
    );

    // An unknown key and an empty send are refused, naming the argument.
    let bad = tools
        .call("task_send", json!({"task_id": id, "keys": ["hyper+x"]}))
        .await;
    assert!(bad.is_error && bad.text.contains("keys"), "{}", bad.text);
    let empty = tools.call("task_send", json!({"task_id": id})).await;
    assert!(
        empty.is_error && empty.text.contains("message"),
        "{}",
        empty.text
    );
}

/// Kills, when dropped, every pid listed in a file (the daemons a test
/// started), so a failing test leaves nothing running.
struct KillListed(std::path::PathBuf);

impl KillListed {
    fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for KillListed {
    fn drop(&mut self) {
        for pid in self.pids() {
            if !process_is_dead(pid) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// A PTY task is contained from birth: what its program forks at once, a
/// daemon in a new session with an empty environment whose parent exits
/// at once (no marker, no parent chain to walk), is in the task's cgroup
/// and dies with the task. Many tasks at once, so a move into the cgroup
/// after the spawn would lose the race for some of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pty_task_is_in_its_cgroup_from_birth() {
    if common::own_cgroup_dir().is_none() {
        eprintln!("no cgroup can be made here: nothing to test");
        return;
    }
    const TASKS: usize = 160;
    let (manager, dir) = manager_in_temp(ManagerConfig::default());
    let list = dir.path().join("daemons");
    let daemons = KillListed(list.clone());
    let script = format!(
        "env -i setsid -f /bin/sh -c 'echo $$ >> {list}; exec sleep 1000' \
           </dev/null >/dev/null 2>&1; exec sleep 1000",
        list = list.display()
    );
    let mut ids = Vec::new();
    for _ in 0..TASKS {
        let task = manager
            .spawn(
                ProcessTask::shell(&script)
                    .pty(80, 24)
                    .kill_grace(Duration::from_millis(100)),
                SpawnOptions::background(),
            )
            .expect("spawn");
        ids.push(task.id().to_string());
    }
    wait_for("every daemon to record its pid", || {
        daemons.pids().len() == TASKS
    })
    .await;
    for id in &ids {
        let info = manager
            .cancel(id, CancelReason::user("stop"))
            .await
            .expect("cancel");
        assert_eq!(info.status, TaskStatus::Cancelled);
        assert_eq!(info.containment, Some(Containment::Cgroup), "{id}");
    }
    // Cancel waits until the task's cgroup is empty: a daemon inside is
    // dead (or a zombie) by now; give a straggler a moment anyway.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut alive: Vec<u32>;
    loop {
        alive = daemons
            .pids()
            .into_iter()
            .filter(|pid| !process_is_dead(*pid))
            .collect();
        if alive.is_empty() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        alive.is_empty(),
        "{} of {TASKS} daemons outlived their cancelled task: {alive:?}",
        alive.len()
    );
}

/// The README's REPL example: `wait_for("^>>> ")` on `python3 -i` in a PTY
/// matches the prompt, which has no newline while the REPL waits; the next
/// prompt is matched from the cursor past the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repl_prompt_is_matched_by_wait_for() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let repl = manager
        .spawn(
            ProcessTask::argv(["python3", "-i", "-q"]).pty(120, 40),
            SpawnOptions::background(),
        )
        .expect("spawn");
    let id = repl.id().to_string();
    let (prompt, cursor) = line(&manager, &id, "^>>> ", 0).await;
    assert_eq!(prompt, ">>> ");
    manager.send(&id, "print(6 * 7)").expect("send");
    manager.send_keys(&id, &[Key::Enter]).expect("keys");
    let (answer, cursor) = line(&manager, &id, "^42$", cursor).await;
    assert_eq!(answer, "42");
    let (prompt, _) = line(&manager, &id, "^>>> ", cursor).await;
    assert_eq!(prompt, ">>> ");
    manager
        .send_keys(&id, &Key::parse_all(["ctrl+d"]).expect("keys"))
        .expect("keys");
    let result = finish(&manager, &id).await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
}
