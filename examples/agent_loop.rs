//! A scripted agent loop (no real model): the host registers the tools, the
//! "model" runs a build-like command that outlives its foreground timeout and
//! moves to the background, checks on it, and the host injects the
//! completion notification at its next idle point. Prints the transcript the
//! model would see. `cargo run --example agent_loop`.

use std::time::Duration;

use agent_tasks::tools::{definitions, ToolBox, ToolBoxConfig};
use agent_tasks::{EventItem, EventKind, ManagerConfig, TaskManager};
use serde_json::{json, Value};

fn show_call(name: &str, args: &Value) {
    println!("\n>>> model calls {name} {args}");
}

fn show_answer(text: &str) {
    for line in text.lines() {
        println!("    {line}");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = TaskManager::new(ManagerConfig::default())?;
    let config = ToolBoxConfig {
        run_timeout: Duration::from_secs(1),
        ..ToolBoxConfig::default()
    };
    let tools = ToolBox::with_config(manager.clone(), "session-1", config)?;
    let names: Vec<_> = definitions().iter().map(|d| d.name).collect();
    println!("host registers {} tools: {}", names.len(), names.join(", "));
    println!(
        "(Anthropic shape of task_wait: {})",
        definitions()[3].anthropic()
    );
    let mut events = manager.subscribe();

    // 1. A build that takes longer than the 1 s foreground wait.
    let args = json!({
        "command": "for i in 1 2 3 4 5 6; do echo \"   Compiling crate-$i v0.1.0\"; sleep 0.4; done; echo 'warning: unused variable `x`'; echo '    Finished dev profile'",
        "description": "cargo build (simulated)"
    });
    show_call("task_run", &args);
    let answer = tools.call("task_run", args).await;
    show_answer(&answer.text);
    let id = answer.json["task_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cursor = answer.json["next_cursor"].as_u64().unwrap_or(0);

    // 2. The model goes on with other work, then looks at its tasks.
    let args = json!({});
    show_call("task_list", &args);
    show_answer(&tools.call("task_list", args).await.text);

    let args = json!({ "task_id": id, "cursor": cursor });
    show_call("task_output", &args);
    show_answer(&tools.call("task_output", args).await.text);

    // 3. The host's idle point: wait for the build to end, then inject the
    //    notification into the conversation and acknowledge it.
    while let Some(item) = events.recv().await {
        if let EventItem::Event(event) = item {
            if event.task_id.as_str() == id && matches!(event.kind, EventKind::Finished { .. }) {
                break;
            }
        }
    }
    for note in manager.notifications(Some(tools.owner())) {
        println!("\n<<< host injects a notification:");
        show_answer(&note.text);
        manager.ack(&[note.id.as_str()])?;
    }

    // 4. The model greps the finished log for warnings.
    let args = json!({ "task_id": id, "filter": "^warning" });
    show_call("task_output", &args);
    show_answer(&tools.call("task_output", args).await.text);

    // 5. A mistake: the answer names the problem and the ids that exist.
    let args = json!({ "task_id": "process-nosuchtask" });
    show_call("task_wait", &args);
    show_answer(&tools.call("task_wait", args).await.text);

    manager.shutdown("demo over").await;
    Ok(())
}
