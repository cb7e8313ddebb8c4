//! The smallest useful program: run a command, wait for it in the
//! foreground, print its output. `cargo run --example quickstart`.

use agent_tasks::{ForegroundOutcome, ManagerConfig, ProcessTask, SpawnOptions, TaskManager};

#[tokio::main]
async fn main() -> agent_tasks::Result<()> {
    let manager = TaskManager::new(ManagerConfig::default())?;
    let task = manager.spawn(
        ProcessTask::shell("echo hello from $0; uname -s"),
        SpawnOptions::foreground(),
    )?;
    match task.wait_foreground().await {
        ForegroundOutcome::Finished(result) => {
            let output = manager.poll(task.id().as_str(), 0, 64 * 1024)?;
            println!("{} {}:\n{}", result.id, result.status, output.text());
        }
        ForegroundOutcome::Detached(info) => println!("{} went to the background", info.id),
    }
    Ok(())
}
