//! The README's Rust quickstart: a command that outlives its 1 s foreground
//! wait moves to the background, is polled, and collected.
//! `cargo run --example quickstart`.

use agent_tasks::*;
use std::time::Duration;

#[tokio::main]
async fn main() -> agent_tasks::Result<()> {
    let manager = TaskManager::new(ManagerConfig::default())?;

    // A command that outlives its 1 s foreground wait moves to the background.
    let task = manager.spawn(
        ProcessTask::shell("for i in 1 2 3 4 5; do echo step $i; sleep 1; done"),
        SpawnOptions::foreground()
            .timeout(Duration::from_secs(1))
            .on_timeout(OnTimeout::Detach),
    )?;
    let id = task.id().to_string();
    if let ForegroundOutcome::Detached(_) = task.wait_foreground().await {
        println!("detached; the conversation goes on");
        let page = manager.poll(&id, 0, 64 * 1024)?; // what it printed so far
        print!("{}", page.text());
        let outcome = manager.collect(&id, None).await?; // waits for the end
        print!("{}", manager.poll(&id, page.next_cursor, 64 * 1024)?.text()); // the rest
        println!("{:?}", outcome.result().map(|r| r.status));
    }
    manager.shutdown("done").await;
    Ok(())
}
