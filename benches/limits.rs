//! CPU limits throttle: a spinner under `cpu: 0.5` gets about half a core.
//! Each round runs the same fixed amount of CPU work twice, once without a
//! limit (the baseline) and once under each limit, and prints the share of
//! a core each got (CPU time over wall time, the CPU time from the task's
//! own `usage`); the figure is the median of the rounds.
//!
//! ```text
//! cargo bench --bench limits                     # 0.25 and 0.5 of a core, 5 rounds
//! cargo bench --bench limits -- --rounds 9
//! ```
//!
//! Needs a cgroup (v1 `cpu` hierarchy or delegated v2 `cpu`) to limit with;
//! says so and exits 0 where there is none.

use std::time::{Duration, Instant};

use agent_tasks::{
    Error, ForegroundOutcome, Limits, ManagerConfig, ProcessTask, SpawnOptions, TaskManager,
};

/// CPU seconds of work per run.
const WORK_SECONDS: f64 = 0.6;

/// Spins until it has used `WORK_SECONDS` of CPU.
fn spinner() -> ProcessTask {
    let script = format!("import time\nwhile time.process_time() < {WORK_SECONDS}:\n    pass\n");
    ProcessTask::argv(["python3", "-c", script.as_str()])
}

/// The share of a core one run got: its CPU time over its wall time.
async fn share(manager: &TaskManager, cpu: Option<f64>) -> Result<f64, String> {
    let task = spinner().limits(Limits {
        cpu,
        ..Limits::default()
    });
    let started = Instant::now();
    let handle = match manager.spawn(task, SpawnOptions::foreground()) {
        Ok(handle) => handle,
        Err(Error::LimitsUnavailable { reason, .. }) => return Err(reason),
        Err(e) => return Err(e.to_string()),
    };
    let ForegroundOutcome::Finished(result) = handle.wait_foreground().await else {
        return Err("the spinner was detached".to_string());
    };
    let wall = started.elapsed().as_secs_f64();
    let usage = result.usage.ok_or("no usage in the result")?;
    let cpu_seconds = (usage.cpu_user_ms + usage.cpu_system_ms) as f64 / 1000.0;
    Ok(cpu_seconds / wall)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
        .max(1);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = ManagerConfig::default()
            .root(dir.path())
            .foreground_timeout(Some(Duration::from_secs(600)));
        let manager = TaskManager::new(config).expect("a manager");
        let limits = [0.25, 0.5];
        let mut base = Vec::new();
        let mut limited: Vec<Vec<f64>> = vec![Vec::new(); limits.len()];
        for _ in 0..rounds {
            base.push(share(&manager, None).await.expect("the baseline run"));
            for (i, cores) in limits.iter().enumerate() {
                match share(&manager, Some(*cores)).await {
                    Ok(s) => limited[i].push(s),
                    Err(reason) => {
                        println!("cpu limits cannot be enforced here: {reason}");
                        return;
                    }
                }
            }
        }
        let base = median(base);
        println!("unlimited: {base:.3} of a core (the baseline; median of {rounds})");
        for (cores, shares) in limits.iter().zip(limited) {
            let got = median(shares);
            println!(
                "cpu limit {cores}: {got:.3} of a core, {:.2} x the limit, {:.2} x the baseline",
                got / cores,
                got / base
            );
        }
        manager.shutdown("bench done").await;
    });
}
