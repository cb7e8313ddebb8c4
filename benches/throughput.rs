//! Output throughput, peak memory, spawn and cancel overhead of `agent-tasks`, each
//! measured beside a bare baseline in the same run (see DESIGN.md,
//! "Performance and resource goals").
//!
//! ```text
//! cargo bench --bench throughput                     # 1 GiB per case
//! cargo bench --bench throughput -- --bytes 268435456
//! BENCH_BYTES=268435456 cargo bench --bench throughput
//! ```
//!
//! Optional: `--rounds R` (or `BENCH_ROUNDS`, default 3): measured throughput
//! runs per side after one warm-up, in rotating order, median reported.
//!
//! Every measurement runs in a fresh child process (this binary re-executed
//! with the hidden `--case NAME`), so peak memory and allocator state never
//! mix between cases. A child reports `RESULT key value` lines on stdout.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Instant;

use agent_tasks::{
    Containment, ForegroundOutcome, ManagerConfig, ProcessTask, SpawnOptions, TaskManager,
    TaskStatus, MAX_POLL_BYTES,
};
use tokio::io::AsyncReadExt;

const DEFAULT_BYTES: u64 = 1 << 30;
const DEFAULT_ROUNDS: usize = 3;
const READ_CHUNK: usize = 128 * 1024;
const SPAWNS: usize = 200;
const SPAWN_WARMUP: usize = 20;
const SPAWN_ROUNDS: usize = 5;
const CANCELS: usize = 30;
const MIB: f64 = 1024.0 * 1024.0;
const RSS_GOAL_MIB: f64 = 32.0;

struct Args {
    bytes: u64,
    rounds: usize,
    case: Option<String>,
}

fn parse_args() -> Args {
    let env_num = |key: &str| {
        std::env::var(key).ok().map(|v| {
            v.trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{key} must be a number, got `{v}`"))
        })
    };
    let mut args = Args {
        bytes: env_num("BENCH_BYTES").unwrap_or(DEFAULT_BYTES),
        rounds: env_num("BENCH_ROUNDS").map_or(DEFAULT_ROUNDS, |r| r as usize),
        case: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match arg.as_str() {
            "--bytes" => {
                let v = value("--bytes");
                args.bytes = v
                    .parse()
                    .unwrap_or_else(|_| panic!("--bytes must be a number, got `{v}`"));
            }
            "--rounds" => {
                let v = value("--rounds");
                args.rounds = v
                    .parse()
                    .unwrap_or_else(|_| panic!("--rounds must be a number, got `{v}`"));
            }
            "--case" => args.case = Some(value("--case")),
            // `cargo bench` passes `--bench`; ignore it and anything else unknown.
            _ => {}
        }
    }
    assert!(args.bytes > 0, "the byte count must be positive");
    args.rounds = args.rounds.max(1);
    args
}

fn main() {
    let args = parse_args();
    match &args.case {
        Some(case) => run_case(case, args.bytes),
        None => run_all(&args),
    }
}

// ---------------------------------------------------------------------------
// Parent: runs the children and prints the table.
// ---------------------------------------------------------------------------

type Report = HashMap<String, f64>;

fn run_child(case: &str, bytes: u64) -> Report {
    let exe = std::env::current_exe().expect("locating the bench binary");
    let out = std::process::Command::new(exe)
        .args(["--case", case, "--bytes", &bytes.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("running a bench child process");
    assert!(
        out.status.success(),
        "bench case `{case}` failed: {}",
        out.status
    );
    let mut report = Report::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.split_whitespace();
        if parts.next() != Some("RESULT") {
            continue;
        }
        if let (Some(key), Some(value)) = (parts.next(), parts.next()) {
            if let Ok(v) = value.parse() {
                report.insert(key.to_string(), v);
            }
        }
    }
    report
}

fn get(report: &Report, key: &str) -> f64 {
    *report
        .get(key)
        .unwrap_or_else(|| panic!("child report lacks `{key}`"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Label column width in the table.
const W: usize = 52;

/// The runs of one throughput case: MB/s of each, and the child reports.
#[derive(Default)]
struct Runs {
    speeds: Vec<f64>,
    reports: Vec<Report>,
}

impl Runs {
    fn median(&self) -> f64 {
        median(&mut self.speeds.clone())
    }
}

/// Runs each case once unmeasured (warms the page cache and the binaries),
/// then `rounds` measured times, rotating which case goes first each round.
fn throughput_cases(cases: &[&str], args: &Args) -> HashMap<String, Runs> {
    for case in cases {
        run_child(case, args.bytes);
    }
    let mut runs: HashMap<String, Runs> = HashMap::new();
    for round in 0..args.rounds {
        for i in 0..cases.len() {
            let case = cases[(i + round) % cases.len()];
            let r = run_child(case, args.bytes);
            let got = get(&r, "bytes") as u64;
            if got != args.bytes {
                println!(
                    "   WARNING: `{case}` produced {got} bytes, expected {}",
                    args.bytes
                );
            }
            let entry = runs.entry(case.to_string()).or_default();
            entry.speeds.push(mbps(args.bytes, get(&r, "secs")));
            entry.reports.push(r);
        }
    }
    runs
}

fn print_speed(label: &str, runs: &Runs) -> f64 {
    let m = runs.median();
    println!(
        "   {label:<W$} {m:>7.0} MB/s   (runs: {})",
        list(&runs.speeds)
    );
    m
}

fn print_ratio(ours: f64, base: f64) {
    let ratio = ours / base;
    println!("   ratio {ratio:.2} (goal >= 0.8){}", verdict(ratio >= 0.8));
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "  ok"
    } else {
        "  MISSED"
    }
}

fn run_all(args: &Args) {
    let n = args.bytes;
    println!(
        "agent-tasks bench: N = {n} bytes ({:.1} MiB); throughput: 1 warm-up + {} run(s) per side, median; temp dir {}",
        n as f64 / MIB,
        args.rounds,
        std::env::temp_dir().display()
    );
    println!();

    // 1. Memory destination.
    let runs = throughput_cases(&["mem-base", "mem-ours", "mem-base-bigpipe"], args);
    println!("1. Throughput, memory destination (`head -c N /dev/zero`)");
    // The baseline reads through the same 1 MiB pipe a ProcessTask uses, so
    // the ratio compares the output path, not the pipe size.
    let base = print_speed(
        "baseline: tokio::process, same 1 MiB pipe, read into Vec",
        &runs["mem-base-bigpipe"],
    );
    let ours = print_speed("ours: foreground task, memory_limit = N", &runs["mem-ours"]);
    print_ratio(ours, base);
    let small = print_speed(
        "(extra) baseline with the default 64 KiB pipe",
        &runs["mem-base"],
    );
    println!(
        "   (extra) ours / default-pipe baseline: {:.2}",
        ours / small
    );
    let ours_reports = &runs["mem-ours"].reports;
    let mut readback: Vec<f64> = ours_reports
        .iter()
        .filter_map(|r| r.get("poll_secs").map(|s| mbps(n, *s)))
        .collect();
    if !readback.is_empty() {
        println!(
            "   (extra) reading it all back with poll, 16 MiB pages: {:.0} MB/s",
            median(&mut readback)
        );
    }
    if ours_reports.iter().any(|r| r.get("spilled") == Some(&1.0)) {
        println!("   WARNING: the in-memory task spilled to disk");
    }
    println!();

    // 2. File destination.
    let runs = throughput_cases(&["file-base", "file-ours", "file-supervised"], args);
    println!("2. Throughput, file destination");
    let base = print_speed(
        "baseline: sh -c 'head -c N /dev/zero | cat > FILE'",
        &runs["file-base"],
    );
    let ours = print_speed(
        "ours: background task, spilled to output.log",
        &runs["file-ours"],
    );
    print_ratio(ours, base);
    let mut size_ok = true;
    for r in &runs["file-ours"].reports {
        let size = get(r, "log_size") as u64;
        if size != n {
            size_ok = false;
            println!("   WARNING: output.log is {size} bytes, expected {n}");
        }
    }
    if size_ok {
        println!("   output.log size == N in every run");
    }
    let supervised = print_speed(
        "(extra) a task under its supervisor (OnHostExit::KeepRunning)",
        &runs["file-supervised"],
    );
    println!(
        "   supervised / ours {:.2}, supervised / baseline {:.2}   (goal: within 10 % of ours){}",
        supervised / ours,
        supervised / base,
        verdict(supervised / ours >= 0.9)
    );
    println!();

    // 3. Peak RSS.
    println!("3. Peak RSS (VmHWM) of a fresh process while N bytes flow through one task,");
    println!("   memory_limit 1 MiB, disk_limit 256 MiB (defaults)");
    let idle = get(&run_child("rss-idle", n), "hwm_kib") / 1024.0;
    println!(
        "   {:<W$} {idle:>7.1} MiB   (reference)",
        "baseline: tokio multi-thread runtime only"
    );
    for (case, label) in [
        ("rss-background", "ours: background task"),
        (
            "rss-foreground",
            "ours: foreground task, overflows and spills",
        ),
    ] {
        let r = run_child(case, n);
        let hwm = get(&r, "hwm_kib") / 1024.0;
        println!(
            "   {label:<W$} {hwm:>7.1} MiB   (goal < {RSS_GOAL_MIB:.0} MiB){}",
            verdict(hwm < RSS_GOAL_MIB)
        );
        let total = get(&r, "bytes") as u64;
        if total != n {
            println!("   WARNING: `{case}` saw {total} bytes, expected {n}");
        }
        if get(&r, "spilled") != 1.0 {
            println!("   WARNING: `{case}` did not spill to disk");
        }
    }
    println!();

    // 4. Spawn overhead.
    let r = run_child("spawn", n);
    println!(
        "4. Spawn overhead: each side against a bare spawn taking turns with it, \
         {SPAWNS} of each per round after {SPAWN_WARMUP} warm-up; median of \
         {SPAWN_ROUNDS} rounds' ratios"
    );
    let row = |label: &str, key: &str| {
        let rounds = (0..SPAWN_ROUNDS)
            .map(|i| {
                format!(
                    "{:.0}/{:.0}",
                    get(&r, &format!("{key}_us_{i}")),
                    get(&r, &format!("{key}_bare_us_{i}"))
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let ratio = get(&r, &format!("{key}_ratio"));
        println!("   {label:<W$} ratio {ratio:>5.2}   (µs per spawn, side/bare: {rounds})");
        ratio
    };
    println!("   baseline: tokio Command::new(\"true\").status()");
    let ours = row("ours: spawn(foreground) + wait_foreground", "ours");
    println!("   (goal <= 1.2){}", verdict(ours <= 1.2));
    let piped = row(
        "(extra) bare, ProcessTask's stdio: pipes + own pgrp",
        "piped",
    );
    println!("   (extra) ours / piped bare: {:.2}", ours / piped);
    row("(extra) ours, process group + /proc walk", "ours_group");
    row(
        "(extra) ours, contained by subreaper + /proc walk",
        "ours_subreaper",
    );
    println!();

    // 6 (printed after 5). Supervised tasks' own cost.
    let supervised = run_child("supervised", n);

    // 5. Cancel of a tree.
    let r = run_child("cancel", n);
    println!(
        "5. Cancel of a 3-process tree that honours SIGTERM (`sh` and two `sleep`s), \
         {CANCELS} of each side taking turns; medians"
    );
    let ours = get(&r, "cancel_ours_us");
    let bare = get(&r, "cancel_bare_us");
    println!("   baseline: killpg(SIGTERM) + waitpid of the root: {bare:.0} µs");
    println!(
        "   ours: TaskManager::cancel until it returns (the end recorded): {ours:.0} µs, \
         {:.2} ms over the baseline   (goal <= 1 ms over){}",
        (ours - bare) / 1000.0,
        verdict(ours - bare <= 1000.0)
    );
    println!();

    let r = supervised;
    println!(
        "6. A supervised task's cost: spawn of `true` in the background until its end is \
         recorded, {SUPERVISED_SPAWNS} of each side taking turns, medians; the supervisor's memory"
    );
    let plain = get(&r, "plain_ms");
    let ours = get(&r, "supervised_ms");
    println!("   baseline: the same task under its host: {plain:.2} ms");
    println!(
        "   ours: under a supervisor of its own: {ours:.2} ms, {:.2} ms more   (goal <= 1 ms more){}",
        ours - plain,
        verdict(ours - plain <= 1.0)
    );
    println!(
        "   the supervisor's resident memory while its task runs: {:.1} MiB (VmRSS), peak {:.1} MiB",
        get(&r, "supervisor_rss_kib") / 1024.0,
        get(&r, "supervisor_hwm_kib") / 1024.0
    );
}

/// Spawns of a supervised task measured by the `supervised` case.
const SUPERVISED_SPAWNS: usize = 30;

/// The supervisor this crate builds.
const SUPERVISOR: &str = env!("CARGO_BIN_EXE_agent-tasks-supervisor");

/// A `VmRSS`/`VmHWM`-style line of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What a supervised task costs over one under its host: ms from spawn to
/// the recorded end of `true`, taking turns, medians; and the supervisor's
/// memory while a task runs.
async fn supervised_cost() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let manager = TaskManager::new(
        ManagerConfig::default()
            .root(dir.path())
            .supervisor_program(SUPERVISOR),
    )
    .expect("creating the manager");
    let (mut plain, mut supervised) = (Vec::new(), Vec::new());
    for _ in 0..SUPERVISED_SPAWNS {
        for (keep, times) in [(false, &mut plain), (true, &mut supervised)] {
            let policy = if keep {
                agent_tasks::OnHostExit::KeepRunning
            } else {
                agent_tasks::OnHostExit::Kill
            };
            let start = Instant::now();
            let handle = manager
                .spawn(
                    ProcessTask::argv(["true"]),
                    SpawnOptions::background().on_host_exit(policy),
                )
                .expect("spawning");
            let r = handle.wait_end().await;
            times.push(start.elapsed().as_secs_f64() * 1e3);
            assert_eq!(r.status, TaskStatus::Completed, "{:?}", r.error);
        }
    }
    result("plain_ms", median(&mut plain));
    result("supervised_ms", median(&mut supervised));
    let handle = manager
        .spawn(
            ProcessTask::argv(["sleep", "1000"]),
            SpawnOptions::background().on_host_exit(agent_tasks::OnHostExit::KeepRunning),
        )
        .expect("spawning");
    let id = handle.id().to_string();
    let mut pid = None;
    while pid.is_none() {
        pid = manager.info(&id).expect("info").pid;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.expect("pid")))
        .expect("the task's stat");
    let supervisor: u32 = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
        .expect("the task's parent");
    result("supervisor_rss_kib", status_kib(supervisor, "VmRSS:"));
    result("supervisor_hwm_kib", status_kib(supervisor, "VmHWM:"));
    manager
        .cancel(&id, agent_tasks::CancelReason::user("bench"))
        .await
        .expect("cancel");
}

// ---------------------------------------------------------------------------
// Children: one measurement each.
// ---------------------------------------------------------------------------

/// The tree a cancel stops: a shell and two children, `ready` once all run.
const TREE: &str = "sleep 1000 & sleep 1000 & echo ready; wait";

/// µs from the stop request of a running tree until the stop is done,
/// ours (`cancel`, which returns once the end is recorded) and a bare
/// `killpg` + `waitpid` of the same tree, taking turns; the medians.
async fn cancel_overhead() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let manager =
        TaskManager::new(ManagerConfig::default().root(dir.path())).expect("creating the manager");
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..CANCELS {
        let handle = manager
            .spawn(ProcessTask::shell(TREE), SpawnOptions::background())
            .expect("spawning the tree");
        let id = handle.id().to_string();
        manager
            .wait_for(
                &id,
                agent_tasks::WaitUntil::parse("ready", 0).expect("a pattern"),
                Some(std::time::Duration::from_secs(30)),
            )
            .await
            .expect("waiting for the tree");
        let start = Instant::now();
        manager
            .cancel(&id, agent_tasks::CancelReason::user("bench"))
            .await
            .expect("cancel");
        ours.push(start.elapsed().as_secs_f64() * 1e6);

        let mut child = tokio::process::Command::new("sh")
            .args(["-c", TREE])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawning the bare tree");
        let mut out = child.stdout.take().expect("piped stdout");
        let mut seen = Vec::new();
        let mut buf = [0u8; 64];
        while !seen.ends_with(b"ready\n") {
            let n = out.read(&mut buf).await.expect("reading the bare tree");
            assert!(n > 0, "the bare tree ended early");
            seen.extend_from_slice(&buf[..n]);
        }
        let pgid = nix::unistd::Pid::from_raw(child.id().expect("a pid") as i32);
        let start = Instant::now();
        nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM).expect("killpg");
        child.wait().await.expect("waiting for the bare tree");
        bare.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    result("cancel_ours_us", median(ours));
    result("cancel_bare_us", median(bare));
}

fn result(key: &str, value: impl std::fmt::Display) {
    println!("RESULT {key} {value}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime")
}

/// Peak resident set size of this process, in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("parsing VmHWM in /proc/self/status")
}

fn producer(bytes: u64) -> [String; 4] {
    [
        "head".into(),
        "-c".into(),
        bytes.to_string(),
        "/dev/zero".into(),
    ]
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("agent-tasks-bench-")
        .tempdir()
        .expect("creating a temporary folder")
}

fn log_size(manager: &TaskManager, id: &str) -> u64 {
    let path = manager.root().join("tasks").join(id).join("output.log");
    std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("reading the size of {}: {e}", path.display()))
        .len()
}

fn finished(outcome: ForegroundOutcome) -> agent_tasks::TaskResult {
    match outcome {
        ForegroundOutcome::Finished(r) => {
            if r.status != TaskStatus::Completed {
                eprintln!("warning: the task ended {:?}: {:?}", r.status, r.error);
            }
            r
        }
        ForegroundOutcome::Detached(info) => panic!("the foreground task was detached: {info:?}"),
    }
}

async fn collect_all(manager: &TaskManager, id: &str) -> agent_tasks::TaskResult {
    let outcome = manager
        .collect(id, None)
        .await
        .expect("collecting the task");
    let r = outcome
        .result()
        .expect("collect without a timeout returns the result")
        .clone();
    if r.status != TaskStatus::Completed {
        eprintln!("warning: the task ended {:?}: {:?}", r.status, r.error);
    }
    r
}

fn run_case(case: &str, bytes: u64) {
    let rt = runtime();
    let case = case.to_string();
    // The measured code runs on a worker thread, as the manager's tasks do,
    // not on the `block_on` thread (which would add a cross-thread wake-up to
    // every I/O readiness event of the baselines).
    let body = async move {
        match case.as_str() {
            "mem-base" => mem_base(bytes, false).await,
            "mem-base-bigpipe" => mem_base(bytes, true).await,
            "mem-ours" => mem_ours(bytes).await,
            "file-base" => file_base(bytes).await,
            "file-ours" => file_ours(bytes).await,
            "rss-idle" => {
                // Let every worker thread start and run something.
                let tasks: Vec<_> = (0..8)
                    .map(|_| tokio::spawn(tokio::task::yield_now()))
                    .collect();
                for t in tasks {
                    t.await.expect("joining a no-op task");
                }
                result("hwm_kib", vm_hwm_kib());
            }
            "rss-background" | "rss-foreground" => rss_task(bytes, case == "rss-background").await,
            "spawn" => spawn_overhead().await,
            "cancel" => cancel_overhead().await,
            "supervised" => supervised_cost().await,
            "file-supervised" => file_supervised(bytes).await,
            other => panic!("unknown bench case `{other}`"),
        }
    };
    rt.block_on(async { tokio::spawn(body).await })
        .expect("the bench case panicked");
}

async fn mem_base(bytes: u64, big_pipe: bool) {
    let start = Instant::now();
    let mut child = tokio::process::Command::new("head")
        .args(&producer(bytes)[1..])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawning head");
    let mut stdout = child.stdout.take().expect("piped stdout");
    if big_pipe {
        // The size ProcessTask gives its pipes; failing only slows the run.
        let _ = nix::fcntl::fcntl(&stdout, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1024 * 1024));
    }
    let mut buf = vec![0u8; READ_CHUNK];
    let mut data = Vec::new();
    loop {
        let n = stdout.read(&mut buf).await.expect("reading head's stdout");
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    child.wait().await.expect("waiting for head");
    result("secs", start.elapsed().as_secs_f64());
    result("bytes", data.len());
}

async fn mem_ours(bytes: u64) {
    let limit = usize::try_from(bytes).expect("N fits in memory");
    let manager = TaskManager::new(ManagerConfig::default().memory_limit(limit))
        .expect("creating the manager");
    let start = Instant::now();
    let handle = manager
        .spawn(
            ProcessTask::argv(producer(bytes)),
            SpawnOptions::foreground().no_timeout(),
        )
        .expect("spawning the task");
    let r = finished(handle.wait_foreground().await);
    result("secs", start.elapsed().as_secs_f64());
    result("bytes", r.output.total_bytes);
    result("spilled", u8::from(r.output.spilled));

    // Extra: how fast the host can page it all back out.
    let id = handle.id().as_str();
    let start = Instant::now();
    let mut cursor = 0;
    let mut got = 0usize;
    loop {
        let page = manager
            .poll(id, cursor, MAX_POLL_BYTES)
            .expect("polling the task");
        got += page.data.len();
        cursor = page.next_cursor;
        if page.eof || page.data.is_empty() {
            break;
        }
    }
    result("poll_secs", start.elapsed().as_secs_f64());
    if got as u64 != bytes {
        eprintln!("warning: poll returned {got} bytes, expected {bytes}");
    }
}

async fn file_base(bytes: u64) {
    let dir = temp_dir();
    let file = dir.path().join("out.log");
    let script = format!("head -c {bytes} /dev/zero | cat > '{}'", file.display());
    let start = Instant::now();
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .status()
        .await
        .expect("running the shell pipeline");
    result("secs", start.elapsed().as_secs_f64());
    assert!(status.success(), "the baseline pipeline failed: {status}");
    let size = std::fs::metadata(&file)
        .expect("reading the baseline file size")
        .len();
    result("bytes", size);
}

async fn file_ours(bytes: u64) {
    let dir = temp_dir();
    let config = ManagerConfig::default()
        .root(dir.path().join("root"))
        .disk_limit(bytes + 4 * 1024 * 1024);
    let manager = TaskManager::new(config).expect("creating the manager");
    let start = Instant::now();
    let handle = manager
        .spawn(
            ProcessTask::argv(producer(bytes)),
            SpawnOptions::background().no_timeout(),
        )
        .expect("spawning the task");
    let r = collect_all(&manager, handle.id().as_str()).await;
    result("secs", start.elapsed().as_secs_f64());
    result("bytes", r.output.total_bytes);
    result("log_size", log_size(&manager, handle.id().as_str()));
}

async fn file_supervised(bytes: u64) {
    let dir = temp_dir();
    let config = ManagerConfig::default()
        .root(dir.path().join("root"))
        .disk_limit(bytes + 4 * 1024 * 1024)
        .supervisor_program(SUPERVISOR);
    let manager = TaskManager::new(config).expect("creating the manager");
    let start = Instant::now();
    let handle = manager
        .spawn(
            ProcessTask::argv(producer(bytes)),
            SpawnOptions::background()
                .no_timeout()
                .on_host_exit(agent_tasks::OnHostExit::KeepRunning),
        )
        .expect("spawning the task");
    let r = collect_all(&manager, handle.id().as_str()).await;
    result("secs", start.elapsed().as_secs_f64());
    result("bytes", r.output.total_bytes);
    result("log_size", log_size(&manager, handle.id().as_str()));
}

async fn rss_task(bytes: u64, background: bool) {
    let dir = temp_dir();
    let manager = TaskManager::new(ManagerConfig::default().root(dir.path().join("root")))
        .expect("creating the manager");
    let options = if background {
        SpawnOptions::background().no_timeout()
    } else {
        SpawnOptions::foreground().no_timeout()
    };
    let handle = manager
        .spawn(ProcessTask::argv(producer(bytes)), options)
        .expect("spawning the task");
    let r = if background {
        collect_all(&manager, handle.id().as_str()).await
    } else {
        finished(handle.wait_foreground().await)
    };
    result("hwm_kib", vm_hwm_kib());
    result("bytes", r.output.total_bytes);
    result("spilled", u8::from(r.output.spilled));
}

/// One side of the spawn comparison.
#[derive(Clone, Copy)]
enum SpawnSide {
    /// `Command::new("true").status()`, as the goal is stated.
    Bare,
    /// A bare spawn with ProcessTask's stdio: null stdin, stdout and stderr
    /// piped and read to EOF, its own process group.
    Piped,
    /// Through the manager (the default containment: a cgroup where the
    /// host may make one).
    Ours,
    /// Through the manager, contained by the host as subreaper.
    OursSubreaper,
    /// Through the manager, contained by the process group only.
    OursGroup,
}

impl SpawnSide {
    fn key(self) -> &'static str {
        match self {
            SpawnSide::Bare => "bare",
            SpawnSide::Piped => "piped",
            SpawnSide::Ours => "ours",
            SpawnSide::OursSubreaper => "ours_subreaper",
            SpawnSide::OursGroup => "ours_group",
        }
    }
}

async fn spawn_true(side: SpawnSide, manager: &TaskManager) {
    match side {
        SpawnSide::Bare => {
            let status = tokio::process::Command::new("true")
                .status()
                .await
                .expect("running `true`");
            assert!(status.success(), "`true` failed: {status}");
        }
        SpawnSide::Piped => {
            let mut child = tokio::process::Command::new("true")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .expect("spawning `true`");
            let mut out = child.stdout.take().expect("piped stdout");
            let mut err = child.stderr.take().expect("piped stderr");
            let (mut out_buf, mut err_buf) = ([0u8; 512], [0u8; 512]);
            let (o, e, status) =
                tokio::join!(out.read(&mut out_buf), err.read(&mut err_buf), child.wait());
            assert_eq!(o.expect("reading stdout"), 0, "`true` wrote to stdout");
            assert_eq!(e.expect("reading stderr"), 0, "`true` wrote to stderr");
            let status = status.expect("waiting for `true`");
            assert!(status.success(), "`true` failed: {status}");
        }
        SpawnSide::Ours | SpawnSide::OursSubreaper | SpawnSide::OursGroup => {
            let containment = match side {
                SpawnSide::OursSubreaper => Containment::Subreaper,
                SpawnSide::OursGroup => Containment::ProcessGroup,
                _ => Containment::Cgroup,
            };
            let handle = manager
                .spawn(
                    ProcessTask::argv(["true"]).containment(containment),
                    SpawnOptions::foreground(),
                )
                .expect("spawning `true`");
            let r = finished(handle.wait_foreground().await);
            assert_eq!(
                r.status,
                TaskStatus::Completed,
                "`true` failed: {:?}",
                r.error
            );
        }
    }
}

/// Mean µs per spawn of `side` and of a bare spawn over `count` spawns of
/// each, the two taking turns spawn by spawn (which goes first alternates):
/// on a noisy machine a slow second hits both alike, where a run of one
/// side after a run of the other would each meet a different machine.
async fn spawn_pair(side: SpawnSide, manager: &TaskManager, count: usize) -> (f64, f64) {
    let (mut ours, mut bare) = (0.0, 0.0);
    for n in 0..count {
        for first in [n % 2 == 0, n % 2 == 1] {
            let start = Instant::now();
            if first {
                spawn_true(side, manager).await;
                ours += start.elapsed().as_secs_f64() * 1e6;
            } else {
                spawn_true(SpawnSide::Bare, manager).await;
                bare += start.elapsed().as_secs_f64() * 1e6;
            }
        }
    }
    (ours / count as f64, bare / count as f64)
}

/// Each side against a bare spawn measured beside it. The subreaper side
/// goes last: it makes the host a child subreaper for good.
async fn spawn_overhead() {
    let manager = TaskManager::new(ManagerConfig::default()).expect("creating the manager");
    for side in [
        SpawnSide::Ours,
        SpawnSide::Piped,
        SpawnSide::OursGroup,
        SpawnSide::OursSubreaper,
    ] {
        spawn_pair(side, &manager, SPAWN_WARMUP).await;
        let key = side.key();
        let mut ratios = Vec::new();
        for round in 0..SPAWN_ROUNDS {
            let (ours, bare) = spawn_pair(side, &manager, SPAWNS).await;
            result(&format!("{key}_us_{round}"), ours);
            result(&format!("{key}_bare_us_{round}"), bare);
            ratios.push(ours / bare);
        }
        result(&format!("{key}_ratio"), median(&mut ratios));
    }
}
