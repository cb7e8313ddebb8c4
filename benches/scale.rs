//! Scale: 10,000 concurrent lightweight tasks in one manager, and the cost
//! of `poll` as a task's total output grows (it should not).
//!
//! ```text
//! cargo bench --bench scale
//! ```

use std::time::{Duration, Instant};

use agent_tasks::{
    CancelReason, FnTask, ListFilter, ManagerConfig, ProcessTask, SpawnOptions, TaskManager,
};
use serde_json::json;

const TASKS: usize = 10_000;
const POLLS: usize = 20_000;

fn rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
}

/// Median time of one `poll` of 4 KiB at `cursor`.
fn poll_cost(manager: &TaskManager, id: &str, cursor: u64) -> Duration {
    let mut samples = Vec::with_capacity(POLLS / 100);
    for _ in 0..POLLS / 100 {
        let start = Instant::now();
        for _ in 0..100 {
            let page = manager.poll(id, cursor, 4096).expect("poll");
            std::hint::black_box(page);
        }
        samples.push(start.elapsed() / 100);
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// Seconds to write `count` chunks of `chunk` bytes through a function task.
fn fn_task_output(
    manager: &TaskManager,
    runtime: &tokio::runtime::Runtime,
    background: bool,
    count: usize,
    chunk: usize,
) -> f64 {
    let options = if background {
        SpawnOptions::background()
    } else {
        SpawnOptions::foreground()
    };
    let start = Instant::now();
    let task = manager
        .spawn(
            FnTask::new("writer", move |ctx| async move {
                let piece = vec![b'x'; chunk];
                for _ in 0..count {
                    ctx.stdout(&piece);
                }
                Ok(json!(null))
            }),
            options,
        )
        .expect("spawn");
    runtime
        .block_on(manager.collect(task.id().as_str(), None))
        .expect("collect");
    start.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let root = tempfile::tempdir().expect("tempdir");
    let manager = TaskManager::with_runtime(
        ManagerConfig::default()
            .root(root.path())
            .foreground_timeout(None),
        runtime.handle().clone(),
    )
    .expect("manager");

    println!("1. {TASKS} concurrent lightweight tasks (foreground function tasks waiting to be cancelled)");
    let rss_before = rss_kib();
    let start = Instant::now();
    let mut ids = Vec::with_capacity(TASKS);
    for i in 0..TASKS {
        let task = manager
            .spawn(
                FnTask::new(format!("worker {i}"), |ctx| async move {
                    ctx.stdout("ready\n");
                    ctx.cancelled().await;
                    Ok(json!(null))
                }),
                SpawnOptions::foreground(),
            )
            .expect("spawn");
        ids.push(task.id().to_string());
    }
    let spawned = start.elapsed();
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while manager
            .info(ids.last().expect("ids").as_str())
            .expect("info")
            .output
            .total_bytes
            == 0
        {
            assert!(Instant::now() < deadline, "tasks did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let rss_after = rss_kib();
    let start = Instant::now();
    let listed = manager.list(&ListFilter::default().active()).len();
    let list_time = start.elapsed();
    let small_poll = poll_cost(&manager, &ids[0], 0);
    println!(
        "   spawn: {:.1} µs per task ({:.2} s for all)",
        spawned.as_secs_f64() * 1e6 / TASKS as f64,
        spawned.as_secs_f64()
    );
    println!(
        "   memory: {:.1} MiB for {TASKS} tasks ({:.1} KiB per task)",
        (rss_after - rss_before) / 1024.0,
        (rss_after - rss_before) / TASKS as f64
    );
    println!(
        "   list of {listed} running tasks: {:.1} ms",
        list_time.as_secs_f64() * 1e3
    );
    println!(
        "   poll of one task among {TASKS}: {:.2} µs",
        small_poll.as_secs_f64() * 1e6
    );
    let start = Instant::now();
    runtime.block_on(manager.shutdown("bench over"));
    println!(
        "   shutdown (cancel all, wait for all): {:.2} s",
        start.elapsed().as_secs_f64()
    );

    println!("2. poll cost against total output size (4 KiB per poll)");
    let big = TaskManager::with_runtime(
        ManagerConfig::default()
            .root(root.path().join("big"))
            .disk_limit(1 << 40),
        runtime.handle().clone(),
    )
    .expect("manager");
    let mut rows = Vec::new();
    for bytes in [1u64 << 20, 64 << 20, 512 << 20] {
        let task = big
            .spawn(
                ProcessTask::argv(["head", "-c", &bytes.to_string(), "/dev/zero"]),
                SpawnOptions::background(),
            )
            .expect("spawn");
        let id = task.id().to_string();
        runtime.block_on(big.collect(&id, None)).expect("collect");
        let near_end = bytes - 8192;
        let cost = poll_cost(&big, &id, near_end);
        let at_start = poll_cost(&big, &id, 0);
        rows.push((bytes, cost, at_start));
        let _ = runtime.block_on(big.cancel(&id, CancelReason::user("")));
    }
    let base = rows[0].1.as_secs_f64();
    for (bytes, near_end, at_start) in &rows {
        println!(
            "   {:>4} MiB of output: poll near the end {:.2} µs, at the start {:.2} µs (ratio to 1 MiB: {:.2})",
            bytes >> 20,
            near_end.as_secs_f64() * 1e6,
            at_start.as_secs_f64() * 1e6,
            near_end.as_secs_f64() / base
        );
    }

    println!("3. a function task's output path: 1,000,000 writes of 100 bytes");
    let out = TaskManager::with_runtime(
        ManagerConfig::default()
            .root(root.path().join("out"))
            .memory_limit(200 << 20)
            .disk_limit(1 << 40),
        runtime.handle().clone(),
    )
    .expect("manager");
    let (count, chunk) = (1_000_000, 100);
    let start = Instant::now();
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    let mut vec = Vec::new();
    let piece = vec![b'x'; chunk];
    for _ in 0..count {
        vec.extend_from_slice(&piece);
    }
    buffers.push(std::hint::black_box(vec));
    let baseline = start.elapsed().as_secs_f64();
    let memory = fn_task_output(&out, &runtime, false, count, chunk);
    let disk = fn_task_output(&out, &runtime, true, count, chunk);
    println!(
        "   baseline: Vec::extend_from_slice          {:>7.1} ms",
        baseline * 1e3
    );
    println!(
        "   foreground task, in memory               {:>7.1} ms  (ratio {:.2})",
        memory * 1e3,
        memory / baseline
    );
    println!(
        "   background task, spilled to output.log   {:>7.1} ms  (ratio {:.2})",
        disk * 1e3,
        disk / baseline
    );
}
