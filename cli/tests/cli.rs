//! The `agent-tasks` inspection commands against roots made by the library
//! in the test, run as the built binary while the test's `TaskManager` holds
//! the root: snapshots of the texts (ids, pids, times and paths redacted),
//! `--json` parsed into the core's types, `log --follow` ending with the
//! task, `kill` of a task of a host in another process (which records the
//! end), `kill` refusing a mismatching start time, `gc` refused on a held
//! root, and errors that name the problem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use agent_tasks::{
    ChangedFiles, Event, EventKind, FnTask, ManagerConfig, Notification, ProcessTask, SpawnOptions,
    TaskInfo, TaskManager, TaskResult, TaskStatus,
};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_agent-tasks");
const HOST_ROOT: &str = "AGENT_TASKS_CLI_TEST_HOST_ROOT";
/// The shell command `kill_host_child` runs, if not its own.
const HOST_COMMAND: &str = "AGENT_TASKS_CLI_TEST_HOST_COMMAND";
/// Set for `kill_host_child` to run its task in the foreground.
const HOST_FOREGROUND: &str = "AGENT_TASKS_CLI_TEST_HOST_FOREGROUND";

/// The binary, without colours or an inherited root.
fn bin() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("NO_COLOR", "1").env_remove("AGENT_TASKS_ROOT");
    cmd
}

fn run(args: &[&str], root: &Path) -> Output {
    bin()
        .args(args)
        .arg("--root")
        .arg(root)
        .stdin(Stdio::null())
        .output()
        .expect("run agent-tasks")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a command that must succeed; its stdout.
fn ok(args: &[&str], root: &Path) -> String {
    let out = run(args, root);
    assert!(
        out.status.success(),
        "agent-tasks {args:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

/// Waits until `cond` holds, for at most 60 s.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn manifest(root: &Path, id: &str) -> Value {
    let path = root.join("tasks").join(id).join("manifest.json");
    std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// Snapshot settings that redact what changes from run to run.
fn redacted(root: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    let root = regex_escape(&root.display().to_string());
    settings.add_filter(&root, "[ROOT]");
    settings.add_filter(r"\b([a-z][a-z0-9_]*)-[0-9a-z]{10}\b", "$1-[ID]");
    // Durations and ages, and the padding after them (their width varies).
    settings.add_filter(
        r"\d+(\.\d+)? (ms|s|min|h|d)( \d+ (s|min|h))?( ago)?( +|\b)",
        "[T] ",
    );
    // The header's padding follows those widths too.
    settings.add_filter(r"STARTED +TIME +EXIT", "STARTED  TIME  EXIT");
    settings.add_filter(r"pid \d+", "pid [PID]");
    // The containment this machine offers (cgroup, subreaper, process group).
    settings.add_filter(r"(?m)^(containment +)\w+", "$1[CONTAINMENT]");
    // Event sequence numbers are the manager's, shared by concurrent tasks.
    settings.add_filter(r"(?m)^ *\d+  ", "[SEQ]  ");
    settings.add_filter(r"(?m)^(pid +)\d+", "$1[PID]");
    // What a process used (peak memory, CPU time) varies by run.
    settings.add_filter(r"(?m)^( *used:? +)peak memory .*$", "$1[USAGE]");
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Ids of the fixture's tasks.
struct Fixture {
    dir: tempfile::TempDir,
    manager: TaskManager,
    running: String,
    completed: String,
    failed: String,
    function: String,
    spilled: String,
    capped: String,
    lost: String,
}

impl Fixture {
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
}

/// A root with running, completed, failed, function, spilled (foreground
/// overflow), disk-capped and lost tasks and a torn manifest, held by a
/// manager of this process. Tasks are made one after another with distinct
/// creation times, so listings have a stable order.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let config = || {
        ManagerConfig::default()
            .root(&root)
            .memory_limit(1024)
            .disk_limit(2048)
            .tail_window(512)
    };
    // A lost task: one that was running when an earlier host stopped. Made
    // by saving a finished task's manifest as a running one, then opening.
    let lost = {
        let first = TaskManager::new(config()).expect("open");
        let t = first
            .spawn(
                FnTask::new("a subagent", |_ctx| async move { Ok(json!(null)) }),
                SpawnOptions::background().owner("session-1"),
            )
            .expect("spawn");
        first.collect(t.id().as_str(), None).await.expect("collect");
        let notes: Vec<String> = first
            .notifications(None)
            .into_iter()
            .map(|n| n.id)
            .collect();
        first.ack(&notes).expect("ack");
        first.shutdown("test").await;
        drop(first);
        let id = "fn-l0st000000".to_string();
        let mut m = manifest(&root, t.id().as_str());
        m["info"]["id"] = json!(id);
        m["info"]["status"] = json!("running");
        m["info"]["description"] = json!("was running when its host died");
        m["info"]
            .as_object_mut()
            .expect("info")
            .remove("finished_at_ms");
        std::fs::remove_dir_all(root.join("tasks").join(t.id().as_str())).expect("rm");
        let lost_dir = root.join("tasks").join(&id);
        std::fs::create_dir_all(&lost_dir).expect("mkdir");
        std::fs::write(lost_dir.join("manifest.json"), m.to_string()).expect("write");
        id
    };
    // A torn manifest (a crash in the middle of a write of an older format).
    let torn = root.join("tasks").join("process-t0rn000000");
    std::fs::create_dir_all(&torn).expect("mkdir");
    std::fs::write(torn.join("manifest.json"), br#"{"version":1,"info":{"id":"#).expect("write");

    let manager = TaskManager::new(config()).expect("open");
    let owner = |o: &str| SpawnOptions::background().owner(o).no_timeout();
    let mut last_created = 0;
    let mut spawn = |task: ProcessTask, options: SpawnOptions| {
        // Distinct creation times: wait for the clock to move on.
        while agent_tasks_now_ms() <= last_created {
            std::thread::sleep(Duration::from_millis(1));
        }
        let handle = manager.spawn(task, options).expect("spawn");
        last_created = handle.info().created_at_ms;
        handle.id().to_string()
    };
    let completed = spawn(
        ProcessTask::shell("echo hello; echo world"),
        owner("session-1").description("say hello"),
    );
    let failed = spawn(
        ProcessTask::shell("echo oops >&2; exit 3"),
        owner("session-2").description("fail on purpose"),
    );
    let capped = spawn(
        ProcessTask::argv(["seq", "1", "3000"]),
        owner("session-1").description("a flood past the disk cap"),
    );
    let spilled = spawn(
        ProcessTask::argv(["seq", "1", "1000"]),
        SpawnOptions::foreground()
            .owner("session-1")
            .description("foreground, past the memory limit"),
    );
    for id in [&completed, &failed, &capped, &spilled] {
        manager.collect(id, None).await.expect("collect");
    }
    while agent_tasks_now_ms() <= last_created {
        std::thread::sleep(Duration::from_millis(1));
    }
    let function = manager
        .spawn(
            FnTask::new("a subagent", |ctx| async move {
                ctx.stdout("thinking\n");
                Ok(json!({"answer": 42}))
            }),
            owner("session-1").description("answer the question"),
        )
        .expect("spawn")
        .id()
        .to_string();
    manager.collect(&function, None).await.expect("collect");
    while agent_tasks_now_ms() <= manager.info(&function).expect("info").created_at_ms {
        std::thread::sleep(Duration::from_millis(1));
    }
    let running = manager
        .spawn(
            ProcessTask::shell("echo started; exec sleep 1000"),
            owner("session-1").description("runs until stopped"),
        )
        .expect("spawn")
        .id()
        .to_string();
    let root2 = root.clone();
    let r = running.clone();
    wait_for("the running task's output and pid on disk", || {
        std::fs::read(root2.join("tasks").join(&r).join("output.log"))
            .is_ok_and(|b| b == b"started\n")
            && manifest(&root2, &r)["process_start_time"].is_u64()
    })
    .await;
    Fixture {
        dir,
        manager,
        running,
        completed,
        failed,
        function,
        spilled,
        capped,
        lost,
    }
}

fn agent_tasks_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_the_tasks_of_a_held_root() {
    let f = fixture().await;
    let root = f.root();
    let settings = redacted(&root);
    let table = ok(&["status"], &root);
    settings.bind(|| insta::assert_snapshot!("status_table", table));

    let only = ok(&["status", "--owner", "session-2"], &root);
    assert!(
        only.contains(&f.failed) && !only.contains(&f.completed),
        "{only}"
    );

    let json: Value = serde_json::from_str(&ok(&["status", "--json"], &root)).expect("json");
    let tasks: Vec<TaskInfo> = serde_json::from_value(json["tasks"].clone()).expect("TaskInfo");
    assert_eq!(tasks.len(), 7);
    assert_eq!(json["active"], 1);
    let status = |id: &str| {
        tasks
            .iter()
            .find(|t| t.id.as_str() == id)
            .map(|t| t.status)
            .expect("listed")
    };
    assert_eq!(status(&f.running), TaskStatus::Running);
    assert_eq!(status(&f.completed), TaskStatus::Completed);
    assert_eq!(status(&f.failed), TaskStatus::Failed);
    assert_eq!(status(&f.lost), TaskStatus::Lost);
    let problems = json["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["task_id"], "process-t0rn000000");
    f.manager.shutdown("test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_one_task_shows_it_whole() {
    let f = fixture().await;
    let root = f.root();
    let settings = redacted(&root);
    let failed = ok(&["status", &f.failed], &root);
    settings.bind(|| insta::assert_snapshot!("status_failed", failed));
    let function = ok(&["status", &f.function], &root);
    settings.bind(|| insta::assert_snapshot!("status_function", function));
    let running = ok(&["status", &f.running], &root);
    assert!(
        running.contains("(alive)") && running.contains("started"),
        "{running}"
    );

    let json: Value =
        serde_json::from_str(&ok(&["status", &f.function, "--json"], &root)).expect("json");
    let info: TaskInfo = serde_json::from_value(json["info"].clone()).expect("TaskInfo");
    let result: TaskResult = serde_json::from_value(json["result"].clone()).expect("TaskResult");
    assert_eq!(info.status, TaskStatus::Completed);
    assert_eq!(result.value, Some(json!({"answer": 42})));
    let notes: Vec<Notification> =
        serde_json::from_value(json["notifications"].clone()).expect("Notification");
    assert_eq!(notes.len(), 1);
    f.manager.shutdown("test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_prints_the_output_as_stored() {
    let f = fixture().await;
    let root = f.root();
    assert_eq!(ok(&["log", &f.completed], &root), "hello\nworld\n");
    assert_eq!(ok(&["log", &f.spilled, "--head", "2"], &root), "1\n2\n");
    assert_eq!(
        ok(&["log", &f.spilled, "--tail", "2"], &root),
        "999\n1000\n"
    );
    // The capped log: head, the marker as stored, tail.
    let capped = ok(&["log", &f.capped], &root);
    let info = f.manager.info(&f.capped).expect("info");
    assert!(info.output.omitted_bytes > 0, "{info:?}");
    let marker = format!("\n[... {} bytes omitted ...]\n", info.output.omitted_bytes);
    assert!(capped.contains(&marker), "{capped}");
    assert!(capped.starts_with("1\n2\n") && capped.ends_with("2999\n3000\n"));
    let log_path = root.join("tasks").join(&f.capped).join("output.log");
    let raw = run(&["log", &f.capped, "--raw"], &root);
    assert_eq!(raw.stdout, std::fs::read(log_path).expect("read"));
    f.manager.shutdown("test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_follow_streams_until_the_task_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let manager = TaskManager::open(&root).expect("open");
    let go = dir.path().join("go");
    let task = manager
        .spawn(
            ProcessTask::shell(format!(
                "echo first; while [ ! -e '{}' ]; do sleep 0.05; done; echo last",
                go.display()
            )),
            SpawnOptions::background().no_timeout(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let log = root.join("tasks").join(&id).join("output.log");
    wait_for("the first line", || {
        std::fs::read(&log).is_ok_and(|b| b == b"first\n")
    })
    .await;
    let mut follower = bin()
        .args(["log", &id, "--follow", "--root"])
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("follow");
    // It follows while the task runs...
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        follower.try_wait().expect("try_wait").is_none(),
        "it stopped early"
    );
    std::fs::write(&go, b"").expect("go");
    // ...and ends when the task has ended.
    wait_for("the follower to end", || {
        follower.try_wait().expect("try_wait").is_some()
    })
    .await;
    let out = follower.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "first\nlast\n");
    assert!(manager.info(&id).expect("info").status.is_terminal());
    manager.shutdown("test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_notifications_and_files() {
    let f = fixture().await;
    let root = f.root();
    let settings = redacted(&root);
    let events = ok(&["events", &f.completed], &root);
    settings.bind(|| insta::assert_snapshot!("events_completed", events));
    let lines = ok(&["events", &f.completed, "--json"], &root);
    let parsed: Vec<Event> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("Event"))
        .collect();
    assert!(matches!(
        parsed.first().map(|e| &e.kind),
        Some(EventKind::Started { .. })
    ));
    assert!(matches!(
        parsed.last().map(|e| &e.kind),
        Some(EventKind::Finished { .. })
    ));

    let pending: Vec<Notification> =
        serde_json::from_str(&ok(&["notifications", "--json"], &root)).expect("Notification");
    assert!(pending.iter().any(|n| n.task_id.as_str() == f.completed));
    let mine: Vec<Notification> = serde_json::from_str(&ok(
        &["notifications", "--owner", "session-2", "--json"],
        &root,
    ))
    .expect("Notification");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].task_id.as_str(), f.failed);
    let text = ok(&["notifications", "--owner", "session-2"], &root);
    settings.bind(|| insta::assert_snapshot!("notifications_session_2", text));

    // Changed files: a task that tracks its folder.
    let work = f.dir.path().join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    std::fs::write(work.join("old.txt"), b"old").expect("write");
    let t = f
        .manager
        .spawn(
            ProcessTask::shell("echo new > new.txt; rm old.txt").cwd(&work),
            SpawnOptions::background().track_changes(&work),
        )
        .expect("spawn");
    f.manager
        .collect(t.id().as_str(), None)
        .await
        .expect("collect");
    let files = ok(&["files", t.id().as_str()], &root);
    assert!(
        files.contains("A  new.txt") && files.contains("D  old.txt"),
        "{files}"
    );
    let changed: ChangedFiles =
        serde_json::from_str(&ok(&["files", t.id().as_str(), "--json"], &root)).expect("json");
    assert_eq!(changed.created, vec!["new.txt".to_string()]);
    assert!(ok(&["files", &f.completed], &root).contains("not tracked"));
    f.manager.shutdown("test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_problem_and_exit_non_zero() {
    let f = fixture().await;
    let root = f.root();
    let thinking = f
        .manager
        .spawn(
            FnTask::new("a subagent", |ctx| async move {
                ctx.cancelled().await;
                Ok(json!(null))
            }),
            SpawnOptions::background(),
        )
        .expect("spawn")
        .id()
        .to_string();
    let cases: [(&[&str], &Path, &str); 6] = [
        (&["status"], Path::new("/no/such/root"), "no such root"),
        (&["status"], f.dir.path(), "not a task root"),
        (&["log", "process-n0such0000"], &root, "no such task"),
        (&["status", "../etc"], &root, "invalid task id"),
        (&["status", "process-t0rn000000"], &root, "manifest.json"),
        (&["kill", &thinking], &root, "has no process"),
    ];
    for (args, at, message) in cases {
        let out = run(args, at);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    let out = bin().arg("status").output().expect("run");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--root"), "{}", stderr(&out));
    f.manager.shutdown("test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_is_refused_while_a_host_holds_the_root() {
    let f = fixture().await;
    let root = f.root();
    let out = run(&["gc", "--max-count", "0"], &root);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("gc refused: a host holds the root"),
        "{}",
        stderr(&out)
    );
    assert!(root.join("tasks").join(&f.completed).exists());
    f.manager.shutdown("test").await;
    drop(f.manager);
    // Free now: gc runs through a manager of its own.
    let out = ok(&["gc", "--max-count", "0"], &root);
    assert!(out.starts_with("removed "), "{out}");
    assert!(!root.join("tasks").join(&f.completed).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_refuses_a_pid_whose_start_time_does_not_match() {
    let f = fixture().await;
    let root = f.root();
    // Make the saved start time wrong, as if the pid had been reused.
    let path = root.join("tasks").join(&f.running).join("manifest.json");
    let mut m = manifest(&root, &f.running);
    let start = m["process_start_time"].as_u64().expect("start time");
    m["process_start_time"] = json!(start + 1);
    std::fs::write(&path, m.to_string()).expect("write");
    let out = run(&["kill", &f.running, "--grace", "1"], &root);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not the task's process any more"),
        "{}",
        stderr(&out)
    );
    let info = f.manager.info(&f.running).expect("info");
    assert_eq!(info.status, TaskStatus::Running, "the task was touched");
    f.manager.shutdown("test").await;
}

/// The host in another process whose task `kill` stops: run by
/// `kill_stops_a_task_of_a_host_in_another_process` as a child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a helper run in a child process by the kill test"]
async fn kill_host_child() {
    let Some(root) = std::env::var_os(HOST_ROOT) else {
        return;
    };
    let root = PathBuf::from(root);
    let manager = TaskManager::open(&root).expect("open");
    // A foreground task has no folder while it runs: only its record.
    let foreground = std::env::var_os(HOST_FOREGROUND).is_some();
    let options = if foreground {
        SpawnOptions::foreground().no_timeout()
    } else {
        SpawnOptions::background().no_timeout()
    };
    let command = std::env::var(HOST_COMMAND)
        .unwrap_or_else(|_| "echo ready; sleep 1000; echo never".to_string());
    let task = manager
        .spawn(ProcessTask::shell(command), options)
        .expect("spawn");
    let id = task.id().to_string();
    let ready = root.join("ready.txt");
    std::fs::write(ready.with_extension("tmp"), &id).expect("write");
    std::fs::rename(ready.with_extension("tmp"), &ready).expect("rename");
    let status = if foreground {
        match task.wait_foreground().await {
            agent_tasks::ForegroundOutcome::Finished(result) => Some(result.status.to_string()),
            agent_tasks::ForegroundOutcome::Detached(_) => None,
        }
    } else {
        let outcome = manager.collect(&id, None).await.expect("collect");
        outcome.result().map(|r| r.status.to_string())
    };
    let ended = root.join("ended.txt");
    std::fs::write(ended.with_extension("tmp"), status.unwrap_or_default()).expect("write");
    std::fs::rename(ended.with_extension("tmp"), &ended).expect("rename");
    manager.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_stops_a_task_of_a_host_in_another_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    let mut host = Command::new(std::env::current_exe().expect("exe"))
        .args(["kill_host_child", "--exact", "--ignored", "--nocapture"])
        .env(HOST_ROOT, &root)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the host");
    let ready = root.join("ready.txt");
    wait_for("the host to be ready", || ready.exists()).await;
    let id = std::fs::read_to_string(&ready).expect("read");
    wait_for("the pid to be saved", || {
        manifest(&root, &id)["process_start_time"].is_u64()
    })
    .await;
    let pid = manifest(&root, &id)["info"]["pid"].as_u64().expect("pid");
    let out = ok(&["kill", &id, "--grace", "5"], &root);
    assert!(out.contains("they ended within the grace"), "{out}");
    // A stop from outside is a cancel, and the host says who asked.
    assert!(
        out.contains(
            "the host recorded its end: cancelled (stopped from outside: agent-tasks kill (pid "
        ),
        "{out}"
    );
    let ended = root.join("ended.txt");
    wait_for("the host to record the end", || ended.exists()).await;
    assert_eq!(std::fs::read_to_string(&ended).expect("read"), "cancelled");
    let info: TaskInfo =
        serde_json::from_value(manifest(&root, &id)["info"].clone()).expect("TaskInfo");
    let reason = info.cancel_reason.expect("a cancel reason");
    assert_eq!(reason.kind, agent_tasks::CancelKind::External);
    let message = reason.message.expect("a message");
    assert!(
        message.starts_with("agent-tasks kill (pid ") && message.contains(", user "),
        "{message}"
    );
    assert_eq!(info.exit.and_then(|e| e.signal), Some(15));
    // The request was read and removed; the host did not ask for this stop,
    // so the end is notified.
    assert!(!root
        .join("tasks")
        .join(&id)
        .join("kill-request.json")
        .exists());
    let notifications = ok(&["notifications", "--json"], &root);
    assert!(notifications.contains(&id), "{notifications}");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        }
    );
    let status = host.wait().expect("host");
    assert!(status.success(), "the host failed: {status}");
    // The stopped task's end is on disk: status shows it, and kill again
    // says there is nothing to stop.
    let info: Value = serde_json::from_str(&ok(&["status", &id, "--json"], &root)).expect("json");
    assert_eq!(info["info"]["status"], "cancelled");
    assert!(ok(&["kill", &id], &root).contains("already ended"));
}

/// `kill` of a foreground process, known only by its host's record (no
/// folder): the request's folder is made for it, and removed by the host
/// once read; the task ends `cancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_of_a_foreground_task_is_a_cancel_and_leaves_no_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    let mut host = Command::new(std::env::current_exe().expect("exe"))
        .args(["kill_host_child", "--exact", "--ignored", "--nocapture"])
        .env(HOST_ROOT, &root)
        .env(HOST_FOREGROUND, "1")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the host");
    let ready = root.join("ready.txt");
    wait_for("the host to be ready", || ready.exists()).await;
    let id = std::fs::read_to_string(&ready).expect("read");
    wait_for("the foreground record with its start time", || {
        let out = run(&["status", &id, "--json"], &root);
        out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| {
                v["process_start_time"].is_u64() && v["source"] == "foreground_record"
            })
    })
    .await;
    let out = ok(&["kill", &id, "--grace", "5"], &root);
    assert!(out.contains("sent SIGTERM"), "{out}");
    let ended = root.join("ended.txt");
    wait_for("the host to record the end", || ended.exists()).await;
    assert_eq!(std::fs::read_to_string(&ended).expect("read"), "cancelled");
    assert!(host.wait().expect("host").success());
    assert!(!root.join("tasks").join(&id).exists(), "no folder is left");
}

/// A task that answers `kill`'s SIGTERM by exiting 0 completed: it keeps
/// its status, and the host takes the request all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_completes_on_kill_keeps_its_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    let mut host = Command::new(std::env::current_exe().expect("exe"))
        .args(["kill_host_child", "--exact", "--ignored", "--nocapture"])
        .env(HOST_ROOT, &root)
        .env(
            HOST_COMMAND,
            "trap 'exit 0' TERM; echo ready; sleep 1000 & wait",
        )
        .stdout(Stdio::null())
        .spawn()
        .expect("start the host");
    let ready = root.join("ready.txt");
    wait_for("the host to be ready", || ready.exists()).await;
    let id = std::fs::read_to_string(&ready).expect("read");
    wait_for("the pid and the trap", || {
        manifest(&root, &id)["process_start_time"].is_u64()
            && std::fs::read_to_string(root.join("tasks").join(&id).join("output.log"))
                .is_ok_and(|log| log.contains("ready"))
    })
    .await;
    let out = ok(&["kill", &id, "--grace", "5"], &root);
    assert!(
        out.contains("the host recorded its end: completed"),
        "{out}"
    );
    let ended = root.join("ended.txt");
    wait_for("the host to record the end", || ended.exists()).await;
    assert_eq!(std::fs::read_to_string(&ended).expect("read"), "completed");
    assert!(!root
        .join("tasks")
        .join(&id)
        .join("kill-request.json")
        .exists());
    assert!(host.wait().expect("host").success());
}

/// A host that gets SIGKILLed with a background task running: run by
/// `status_and_kill_of_a_dead_hosts_task_say_lost` as a child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a helper run in a child process by the dead-host test"]
async fn dead_host_child() {
    let Some(root) = std::env::var_os(HOST_ROOT) else {
        return;
    };
    let root = PathBuf::from(root);
    let manager = TaskManager::open(&root).expect("open");
    let task = manager
        .spawn(
            ProcessTask::shell("echo ready; exec sleep 1000"),
            SpawnOptions::background().no_timeout(),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("the output and the pid on disk", || {
        manager.info(&id).expect("info").output.disk_bytes > 0
            && manifest(&root, &id)["process_start_time"].is_u64()
    })
    .await;
    let ready = root.join("ready.txt");
    std::fs::write(ready.with_extension("tmp"), &id).expect("write");
    std::fs::rename(ready.with_extension("tmp"), &ready).expect("rename");
    std::future::pending::<()>().await;
}

/// With its host SIGKILLed, a task saved as running is shown as a reopening
/// host shows it: `lost`, its run time ending before the crash (not growing
/// with the clock); `kill` stops a process that outlived the host and says
/// the task stays lost, and a host that opens the root agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_kill_of_a_dead_hosts_task_say_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    let host = Command::new(std::env::current_exe().expect("exe"))
        .args(["dead_host_child", "--exact", "--ignored", "--nocapture"])
        .env(HOST_ROOT, &root)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the host");
    // However the test ends, the host goes (SIGKILL, as the test does).
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut host = KillOnDrop(host);
    let ready = root.join("ready.txt");
    wait_for("the host to be ready", || ready.exists()).await;
    let id = std::fs::read_to_string(&ready).expect("read");
    // While the host lives, the task runs and the host is named.
    let live: Value = serde_json::from_str(&ok(&["status", "--json"], &root)).expect("json");
    assert_eq!(live["host"]["held"], true, "{live}");
    assert_eq!(live["host"]["pid"], host.0.id(), "{live}");
    assert_eq!(live["tasks"][0]["status"], "running", "{live}");
    host.0.kill().expect("SIGKILL the host");
    host.0.wait().expect("reap the host");
    let crashed_at_ms = agent_tasks_now_ms();

    let shown = |root: &Path| -> TaskInfo {
        let json: Value = serde_json::from_str(&ok(&["status", "--json"], root)).expect("json");
        assert_eq!(json["host"]["held"], false, "{json}");
        serde_json::from_value(json["tasks"][0].clone()).expect("TaskInfo")
    };
    let first = shown(&root);
    assert_eq!(first.status, TaskStatus::Lost);
    assert_eq!(
        json!(first.error),
        json!("the host stopped while the task ran; its end is unknown")
    );
    assert!(
        first.created_at_ms + first.duration_ms <= crashed_at_ms,
        "the run time ends by the crash: {first:?}, crashed at {crashed_at_ms}"
    );
    let again = shown(&root);
    assert_eq!(
        again.duration_ms, first.duration_ms,
        "the run time does not grow"
    );
    let table = ok(&["status"], &root);
    assert!(table.contains("no host holds this root"), "{table}");
    assert!(table.contains("lost"), "{table}");
    assert!(!table.contains("running"), "{table}");
    let one = ok(&["status", &id], &root);
    assert!(one.contains("lost") && one.contains("duration"), "{one}");
    // Followers stop: the end they wait for will not be recorded.
    for args in [["log", &id, "--follow"], ["events", &id, "--follow"]] {
        let mut follower = bin()
            .args(args)
            .arg("--root")
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("follow");
        let mut status = None;
        wait_for("the follower to stop", || {
            status = follower.try_wait().expect("try_wait");
            status.is_some()
        })
        .await;
        let out = follower.wait_with_output().expect("output");
        assert!(
            status.is_some_and(|s| s.success()),
            "{args:?}: {}",
            stderr(&out)
        );
        if args[0] == "log" {
            assert_eq!(stdout(&out), "ready\n");
            assert!(stderr(&out).contains("is lost"), "{}", stderr(&out));
        }
    }

    // `kill` stops what outlived the host (or says there is nothing to
    // stop) and says clearly that no host records the end.
    let out = ok(&["kill", &id, "--grace", "5"], &root);
    assert!(
        out.contains("the task stays lost") || out.contains("is lost: no host holds the root"),
        "{out}"
    );
    assert!(!out.contains("has not recorded"), "{out}");
    if let Some(pid) = first.orphan_pid {
        assert!(out.contains("sent SIGTERM"), "{out}");
        wait_for("the orphan to be gone", || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
                stat.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
        })
        .await;
    }
    // Nothing was written to the root for it: no host would read a request.
    assert!(!root
        .join("tasks")
        .join(&id)
        .join("kill-request.json")
        .exists());
    // A host that reopens the root shows what the command showed.
    let manager = TaskManager::open(&root).expect("reopen");
    let reopened = manager.info(&id).expect("info");
    assert_eq!(reopened.status, TaskStatus::Lost);
    assert_eq!(reopened.error, first.error);
    assert_eq!(reopened.duration_ms, first.duration_ms, "{reopened:?}");
    assert_eq!(
        reopened.finished_at_ms, first.finished_at_ms,
        "{reopened:?}"
    );
    manager.shutdown("test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a helper run in a child process by the supervised-task test"]
async fn supervised_host_child() {
    let Some(root) = std::env::var_os(HOST_ROOT) else {
        return;
    };
    let root = PathBuf::from(root);
    // The command is its own tasks' supervisor (`run_if_supervisor`).
    let manager = TaskManager::new(ManagerConfig::default().root(&root).supervisor_program(BIN))
        .expect("open");
    let task = manager
        .spawn(
            ProcessTask::shell("echo ready; exec sleep 1000"),
            SpawnOptions::background()
                .no_timeout()
                .on_host_exit(agent_tasks::OnHostExit::KeepRunning),
        )
        .expect("spawn");
    let id = task.id().to_string();
    wait_for("the output and the pid on disk", || {
        manager.info(&id).expect("info").output.disk_bytes > 0
            && manifest(&root, &id)["process_start_time"].is_u64()
    })
    .await;
    let ready = root.join("ready.txt");
    std::fs::write(ready.with_extension("tmp"), &id).expect("write");
    std::fs::rename(ready.with_extension("tmp"), &ready).expect("rename");
    std::future::pending::<()>().await;
}

/// A task that outlives its host (`OnHostExit::KeepRunning`) is shown
/// running with no host; `log` reads what its supervisor wrote; `kill`
/// stops it and the supervisor records the stop as the command's, which
/// `status` and a host that opens the root then show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_task_of_a_dead_host_runs_on_and_kill_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut host = KillOnDrop(
        Command::new(std::env::current_exe().expect("exe"))
            .args([
                "supervised_host_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(HOST_ROOT, &root)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the host"),
    );
    let ready = root.join("ready.txt");
    wait_for("the host to be ready", || ready.exists()).await;
    let id = std::fs::read_to_string(&ready).expect("read");
    host.0.kill().expect("SIGKILL the host");
    host.0.wait().expect("reap the host");

    let shown = |root: &Path| -> TaskInfo {
        let json: Value = serde_json::from_str(&ok(&["status", "--json"], root)).expect("json");
        assert_eq!(json["host"]["held"], false, "{json}");
        serde_json::from_value(json["tasks"][0].clone()).expect("TaskInfo")
    };
    assert_eq!(shown(&root).status, TaskStatus::Running);
    assert_eq!(ok(&["log", &id], &root), "ready\n");
    let out = ok(&["kill", &id, "--grace", "5"], &root);
    assert!(out.contains("sent SIGTERM"), "{out}");
    let exit_record = root.join("tasks").join(&id).join("exit.json");
    wait_for("the exit record", || exit_record.exists()).await;
    let ended = shown(&root);
    assert_eq!(ended.status, TaskStatus::Cancelled, "{ended:?}");
    let reason = ended.cancel_reason.clone().expect("a reason");
    assert_eq!(reason.kind, agent_tasks::CancelKind::External);
    let manager = TaskManager::open(&root).expect("reopen");
    let reopened = manager.info(&id).expect("info");
    assert_eq!(reopened.status, TaskStatus::Cancelled);
    assert_eq!(reopened.cancel_reason, ended.cancel_reason);
    manager.shutdown("test").await;
}

/// A foreground process of a live host has no folder: `status` finds it in
/// the host's foreground journal while it runs, and not once it has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_running_foreground_process_of_a_live_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let manager = TaskManager::open(&root).expect("open");
    let task = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::foreground()
                .no_timeout()
                .description("a foreground sleep"),
        )
        .expect("spawn");
    let id = task.id().to_string();
    let listed = |root: &Path| -> Vec<TaskInfo> {
        let json: Value =
            serde_json::from_str(&ok(&["status", "--all", "--json"], root)).expect("json");
        serde_json::from_value(json["tasks"].clone()).expect("TaskInfo")
    };
    // The journal's folder is made as the record is written (off the
    // spawning thread): until then the root is not yet a task root.
    wait_for("the foreground record", || {
        run(&["status", "--all", "--json"], &root).status.success()
            && listed(&root)
                .iter()
                .any(|t| t.id.as_str() == id && t.status == TaskStatus::Running && t.pid.is_some())
    })
    .await;
    let one = ok(&["status", &id, "--json"], &root);
    assert!(one.contains("a foreground sleep"), "{one}");
    manager
        .cancel(&id, agent_tasks::CancelReason::user("done"))
        .await
        .expect("cancel");
    task.wait_foreground().await;
    assert!(!listed(&root).iter().any(|t| t.id.as_str() == id));
}
