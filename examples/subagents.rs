//! A scripted agent (no real model) that delegates work to subagents: the
//! host registers a `researcher` agent with its toolbox; the "model"
//! delegates three research questions in one call, checks one, steers one,
//! cancels one, collects the last; at each idle point the host injects the
//! roster of open work and the pending notifications. Prints the transcript
//! the model would see. `cargo run --example subagents`.

use std::time::Duration;

use agent_tasks::tools::{Agent, ToolBox};
use agent_tasks::{ManagerConfig, TaskManager, DEFAULT_ROSTER_BUDGET};
use serde_json::{json, Value};

fn show(label: &str, text: &str) {
    println!("\n{label}");
    for line in text.lines() {
        println!("    {line}");
    }
}

async fn call(tools: &ToolBox, name: &str, args: Value) -> Value {
    println!("\n>>> model calls {name} {args}");
    let answer = tools.call(name, args).await;
    show("<<< answer", &answer.text);
    answer.json
}

/// The host's idle point: the roster and the notifications go into the
/// model's next turn; the notifications are acknowledged once shown.
fn idle_point(manager: &TaskManager, owner: &str) -> Result<(), agent_tasks::Error> {
    let roster = manager.roster(owner, DEFAULT_ROSTER_BUDGET);
    if !roster.text.is_empty() {
        show("--- roster injected into the next turn", &roster.text);
    }
    let notes = manager.notifications(Some(owner));
    for note in &notes {
        show("--- notification injected into the next turn", &note.text);
    }
    let ids: Vec<String> = notes.into_iter().map(|n| n.id).collect();
    manager.ack(&ids)?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = TaskManager::new(ManagerConfig::default().max_running_of_kind("agent", 3))?;
    let mut tools = ToolBox::new(manager.clone(), "session-1");
    tools.register_agent(
        Agent::new(
            "researcher",
            "Researches one question in the code base and answers it.",
            |args, ctx| async move {
                let goal = args["goal"].as_str().unwrap_or_default().to_string();
                ctx.stdout(format!("researching: {goal}\n"));
                // A real subagent would run its own model loop here.
                tokio::select! {
                    hint = ctx.recv() => {
                        let hint = hint.map(|m| m.text()).unwrap_or_default();
                        ctx.stdout(format!("steered: {hint}\n"));
                        Ok(json!({"question": goal, "answer": format!("found it by following: {hint}")}))
                    }
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {
                        Ok(json!({"question": goal, "answer": "the cache key ignores the locale"}))
                    }
                    reason = ctx.cancelled() => Ok(json!({"stopped": reason.to_string()})),
                }
            },
        )
        .parameters(json!({
            "type": "object",
            "properties": {"goal": {"type": "string", "description": "the question"}},
            "required": ["goal"]
        })),
    )?;
    let names: Vec<_> = tools.definitions().iter().map(|d| d.name).collect();
    println!("host registers {} tools: {}", names.len(), names.join(", "));

    let started = call(
        &tools,
        "task_delegate",
        json!({"agent": "researcher", "background": true, "tasks": [
            {"goal": "Why are cached pages stale after a language switch?"},
            {"goal": "Which module owns session expiry?"},
            {"goal": "Is the retry loop in the uploader bounded?"}
        ]}),
    )
    .await;
    let ids: Vec<String> = started["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter_map(|t| t["task_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    idle_point(&manager, "session-1")?;

    call(&tools, "task_output", json!({"task_id": ids[0]})).await;
    call(
        &tools,
        "task_send",
        json!({"task_id": ids[1], "message": "start from auth/session.rs"}),
    )
    .await;
    call(
        &tools,
        "task_cancel",
        json!({"task_id": ids[2], "reason": "the uploader is being rewritten"}),
    )
    .await;
    call(
        &tools,
        "task_wait",
        json!({"task_id": ids[1], "timeout": 30}),
    )
    .await;

    // The first one ends on its own while the model does other things: the
    // host tells it at the next idle point, once.
    manager.collect(&ids[0], None).await?;
    idle_point(&manager, "session-1")?;
    idle_point(&manager, "session-1")?;
    manager.shutdown("example done").await;
    Ok(())
}
