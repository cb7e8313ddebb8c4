//! Scale: many concurrent lightweight tasks in one manager (100,000 unless
//! told), and the cost of `poll` as a task's total output grows (it should
//! not).
//!
//! ```text
//! cargo bench --bench scale                  # 100,000 tasks
//! cargo bench --bench scale -- --tasks 10000
//! ```
//!
//! Memory per task is given twice: the growth of the resident set (what the
//! host pays, allocator overhead and fragmentation included) and the bytes
//! held by live allocations, counted by this binary's global allocator
//! (what the library asks for; independent of the allocator's mood).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agent_tasks::{
    CancelReason, FnTask, ListFilter, ManagerConfig, ProcessTask, SpawnOptions, TaskManager,
};
use serde_json::json;

const DEFAULT_TASKS: usize = 100_000;
const POLLS: usize = 20_000;

/// The system allocator, counting the bytes of live allocations and the
/// number of allocations made.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to `System` with the caller's own layout
// and pointer, so `System`'s guarantees hold; the counters are only read
// for the report.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> f64 {
    LIVE_BYTES.load(Ordering::Relaxed) as f64
}

/// The task count: `--tasks N` (or a bare number), else 100,000.
fn task_count() -> usize {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = if arg == "--tasks" {
            args.next()
                .unwrap_or_else(|| panic!("--tasks needs a value"))
        } else if arg.chars().all(|c| c.is_ascii_digit()) && !arg.is_empty() {
            arg
        } else {
            // `cargo bench` passes `--bench`; ignore it and anything else.
            continue;
        };
        return value
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("the task count must be a number, got `{value}`"));
    }
    DEFAULT_TASKS
}

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
    let tasks = task_count();
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

    println!("1. {tasks} concurrent lightweight tasks (foreground function tasks waiting to be cancelled)");
    let mut ids = Vec::with_capacity(tasks);
    let rss_before = rss_kib();
    let (live_before, allocs_before) = (live_bytes(), ALLOCATIONS.load(Ordering::Relaxed));
    let start = Instant::now();
    for i in 0..tasks {
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
    let live_after = live_bytes();
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
    let start = Instant::now();
    let listed = manager.list(&ListFilter::default().active()).len();
    let list_time = start.elapsed();
    let small_poll = poll_cost(&manager, &ids[0], 0);
    println!(
        "   spawn: {:.1} µs per task ({:.2} s for all)",
        spawned.as_secs_f64() * 1e6 / tasks as f64,
        spawned.as_secs_f64()
    );
    println!(
        "   memory: resident set +{:.1} MiB for {tasks} tasks ({:.2} KiB per task; goal <= 4)",
        (rss_after - rss_before) / 1024.0,
        (rss_after - rss_before) / tasks as f64
    );
    println!(
        "   memory: live allocations +{:.1} MiB ({:.2} KiB, {:.1} allocations made per task)",
        (live_after - live_before) / (1024.0 * 1024.0),
        (live_after - live_before) / 1024.0 / tasks as f64,
        allocs as f64 / tasks as f64
    );
    println!(
        "   list of {listed} running tasks: {:.1} ms (goal < 50 ms at 100,000)",
        list_time.as_secs_f64() * 1e3
    );
    println!(
        "   poll of one task among {tasks}: {:.2} µs",
        small_poll.as_secs_f64() * 1e6
    );
    let start = Instant::now();
    runtime.block_on(manager.shutdown("bench over"));
    println!(
        "   shutdown (cancel all, wait for all): {:.2} s (goal < 0.25 s at 100,000)",
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
