//! The main demo: a command starts in the foreground, is detached to the
//! background while it runs, is polled for new output and collected; then a
//! function task (a stand-in for a subagent) is steered with messages and
//! cancelled. Run it with `cargo run --example demo`.

use std::time::Duration;

use agent_tasks::{
    CancelReason, CollectOutcome, FnTask, ForegroundOutcome, ListFilter, ManagerConfig,
    ProcessTask, SpawnOptions, TaskManager,
};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = TaskManager::new(ManagerConfig::default())?;
    println!("task root: {}", manager.root().display());

    // 1. A "build" in the foreground. After a moment the host decides it is
    //    taking too long and detaches it; nothing is restarted or lost.
    let build = manager.spawn(
        ProcessTask::shell(
            "for i in 1 2 3 4 5 6; do echo \"compiling unit $i\"; sleep 0.3; done; echo build ok",
        ),
        SpawnOptions::foreground(),
    )?;
    let id = build.id().to_string();
    println!("\n[foreground] started {id}");
    let waiter = tokio::spawn({
        let build = build.clone();
        async move { build.wait_foreground().await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let info = manager.detach(&id)?;
    println!(
        "[detach] {} is now in the background (spilled to disk: {})",
        info.id, info.output.spilled
    );
    if let ForegroundOutcome::Detached(_) = waiter.await? {
        println!("[foreground] the waiting caller was released at once");
    }

    // 2. The agent keeps working and polls the build now and then.
    let mut cursor = 0;
    loop {
        let page = manager.poll(&id, cursor, 64 * 1024)?;
        for line in page.text().lines() {
            println!("[poll @{cursor:>3}] {line}");
        }
        cursor = page.next_cursor;
        if page.eof {
            break;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    // 3. Collect the result.
    if let CollectOutcome::Finished(result) =
        manager.collect(&id, Some(Duration::from_secs(10))).await?
    {
        println!(
            "[collect] {} {} (exit {:?}) in {} ms, {} bytes of output",
            result.id,
            result.status,
            result.exit.and_then(|e| e.code),
            result.duration_ms,
            result.output.total_bytes
        );
    }

    // 4. A subagent as a function task: steered with messages, then cancelled.
    let subagent = manager.spawn(
        FnTask::new("research the failing test", |ctx| async move {
            ctx.stdout("subagent: reading the test suite\n");
            let mut notes = Vec::new();
            loop {
                tokio::select! {
                    msg = ctx.recv() => match msg {
                        Some(m) => {
                            ctx.stdout(format!("subagent: steering received: {}\n", m.text()));
                            notes.push(m.text());
                        }
                        None => break,
                    },
                    reason = ctx.cancelled() => {
                        ctx.stdout(format!("subagent: stopping ({reason})\n"));
                        return Ok(json!({ "notes": notes, "stopped": reason.to_string() }));
                    }
                }
            }
            Ok(json!({ "notes": notes }))
        })
        .kind("subagent"),
        SpawnOptions::background(),
    )?;
    let sub = subagent.id().to_string();
    println!("\n[spawn] {sub} in the background");
    manager.send(&sub, "focus on tests/output.rs")?;
    manager.send(&sub, "ignore flaky network tests")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for info in manager.list(&ListFilter::default()) {
        println!(
            "[list] {} {:<9} {}",
            info.id,
            info.status.as_str(),
            info.description
        );
    }
    let info = manager
        .cancel(&sub, CancelReason::user("the user found the bug"))
        .await?;
    println!("[cancel] {} -> {}", info.id, info.status);
    print!("{}", manager.poll(&sub, 0, 4096)?.text());
    if let CollectOutcome::Finished(result) = manager.collect(&sub, Some(Duration::ZERO)).await? {
        println!("[collect] value: {}", result.value.unwrap_or_default());
    }

    manager.shutdown("demo over").await;
    Ok(())
}
