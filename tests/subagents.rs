//! The pieces subagents stand on, through the public API: a cap per kind
//! under racing spawns; a function task's value (and the delegation it
//! answers) reaching the model in `task_wait`, `task_output` and the end
//! notification, within the text budget; an end told once; the roster of
//! open work within its budget.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agent_tasks::tools::{Agent, ToolBox, ToolBoxConfig};
use agent_tasks::{
    BackgroundTask, CancelReason, FnTask, ManagerConfig, NotificationKind, SpawnOptions, TaskSource,
};
use common::{manager_in_temp, wait_for};
use serde_json::{json, Value};

/// A subagent that waits until it is stopped.
fn waiting_agent() -> impl BackgroundTask {
    FnTask::new("waits for its stop", |ctx| async move {
        ctx.cancelled().await;
        Ok(json!(null))
    })
    .kind("agent")
}

/// A subagent that returns `value` at once.
fn answering_agent(value: Value) -> impl BackgroundTask {
    FnTask::new("answers", move |ctx| async move {
        ctx.stdout("thinking\n");
        Ok(value)
    })
    .kind("agent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_per_kind_holds_under_racing_spawns() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default().max_running_of_kind("agent", 3));
    let started = Arc::new(std::sync::Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let manager = manager.clone();
            let started = started.clone();
            std::thread::spawn(move || {
                let options = if i % 2 == 0 {
                    SpawnOptions::background()
                } else {
                    SpawnOptions::foreground().no_timeout()
                };
                match manager.spawn(waiting_agent(), options) {
                    Ok(handle) => started.lock().expect("lock").push(handle.id().to_string()),
                    Err(e) => assert_eq!(e.code(), "CAPACITY_EXCEEDED", "{e}"),
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let ids = started.lock().expect("lock").clone();
    assert_eq!(ids.len(), 3, "exactly the cap started");
    // Other kinds are not held back by it.
    let other = manager
        .spawn(
            FnTask::new("another kind", |_| async { Ok(json!(1)) }),
            SpawnOptions::background(),
        )
        .expect("another kind runs");
    manager
        .collect(other.id().as_str(), None)
        .await
        .expect("collect");
    // A slot frees when one of them ends.
    manager
        .cancel(&ids[0], CancelReason::user(""))
        .await
        .expect("cancel");
    let fourth = manager
        .spawn(waiting_agent(), SpawnOptions::background())
        .expect("a slot is free again");
    for id in ids.iter().skip(1).chain([&fourth.id().to_string()]) {
        manager
            .cancel(id, CancelReason::user(""))
            .await
            .expect("cancel");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_and_its_source_reach_the_model_and_the_end_is_told_once() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let source = TaskSource::new("researcher", json!({"goal": "why does the parser fail?"}));
    // Nobody looks: the notification carries the value and the source.
    let unseen = manager
        .spawn(
            answering_agent(json!({"answer": "an off-by-one in the lexer"})),
            SpawnOptions::background().owner("s").source(source.clone()),
        )
        .expect("spawn");
    manager
        .collect(unseen.id().as_str(), None)
        .await
        .expect("collect");
    let notes = manager.notifications(Some("s"));
    let note = notes
        .iter()
        .find(|n| n.task_id == *unseen.id() && n.kind == NotificationKind::Finished)
        .expect("an end notification");
    assert_eq!(note.source.as_ref(), Some(&source));
    assert!(note.value.as_deref().unwrap_or("").contains("off-by-one"));
    assert!(
        note.text.contains("answers: researcher with"),
        "{}",
        note.text
    );
    assert!(
        note.text.contains("why does the parser fail?"),
        "{}",
        note.text
    );
    assert!(
        note.text
            .contains("result:\n{\"answer\":\"an off-by-one in the lexer\"}"),
        "{}",
        note.text
    );

    // The model waits for one through a tool: the answer shows the value,
    // and no end notification repeats it.
    let tools = ToolBox::new(manager.clone(), "s");
    let seen = manager
        .spawn(
            FnTask::new("answers later", |ctx| async move {
                ctx.stdout("working\n");
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(json!("the config file is missing"))
            })
            .kind("agent"),
            SpawnOptions::background().owner("s").source(source.clone()),
        )
        .expect("spawn");
    let waited = tools
        .call("task_wait", json!({"task_id": seen.id(), "timeout": 60}))
        .await;
    assert!(!waited.is_error, "{}", waited.text);
    assert!(
        waited.text.contains("result:\nthe config file is missing"),
        "{}",
        waited.text
    );
    let output = tools
        .call("task_output", json!({"task_id": seen.id()}))
        .await;
    assert!(
        output.text.contains("the config file is missing"),
        "{}",
        output.text
    );
    assert!(
        !manager
            .notifications(Some("s"))
            .iter()
            .any(|n| n.task_id == *seen.id() && n.kind == NotificationKind::Finished),
        "the end was told twice"
    );
    // task_output at the end also counts as telling: a task that ended
    // unseen loses its pending end notice once the model reads the end.
    let read = tools
        .call("task_output", json!({"task_id": unseen.id()}))
        .await;
    assert!(read.text.contains("off-by-one"), "{}", read.text);
    assert!(manager
        .notifications(Some("s"))
        .iter()
        .all(|n| n.task_id != *unseen.id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_value_stays_within_the_budget() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let huge = "x".repeat(10 * 1024 * 1024) + "THE END";
    let task = manager
        .spawn(
            answering_agent(json!(huge)),
            SpawnOptions::background().owner("s"),
        )
        .expect("spawn");
    manager
        .collect(task.id().as_str(), None)
        .await
        .expect("collect");
    let note = manager
        .notifications(Some("s"))
        .into_iter()
        .find(|n| n.task_id == *task.id())
        .expect("notification");
    assert!(note.text.len() < 12_000, "{}", note.text.len());
    assert!(note.text.contains("THE END") && note.text.contains("characters omitted"));
    for budget in [2000, 12_000] {
        let tools = ToolBox::with_config(
            manager.clone(),
            "s",
            ToolBoxConfig {
                text_budget: budget,
                ..Default::default()
            },
        )
        .expect("toolbox");
        for name in ["task_wait", "task_output"] {
            let answer = tools.call(name, json!({"task_id": task.id()})).await;
            assert!(answer.text.len() <= budget, "{name}: {}", answer.text.len());
            assert!(
                answer.text.starts_with(&format!("task_id: {}", task.id())),
                "{}",
                answer.text
            );
            assert!(answer.text.contains("THE END"), "{name}: {}", answer.text);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roster_lists_exactly_the_open_work_within_its_budget() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    assert_eq!(manager.roster("s", 2000).text, "");
    let source = TaskSource::new("researcher", json!({"goal": "read the logs"}));
    let open = manager
        .spawn(
            FnTask::new("read the logs", |ctx| async move {
                ctx.stdout("line one\nopened server.log\n");
                ctx.cancelled().await;
                Ok(json!(null))
            })
            .kind("agent"),
            SpawnOptions::background().owner("s").source(source),
        )
        .expect("spawn");
    let foreground = manager
        .spawn(
            waiting_agent(),
            SpawnOptions::foreground().owner("s").no_timeout(),
        )
        .expect("spawn");
    let ended = manager
        .spawn(
            answering_agent(json!(1)),
            SpawnOptions::background().owner("s"),
        )
        .expect("spawn");
    manager
        .collect(ended.id().as_str(), None)
        .await
        .expect("collect");
    let other_owner = manager
        .spawn(waiting_agent(), SpawnOptions::background().owner("t"))
        .expect("spawn");
    wait_for("the last line", || {
        manager
            .roster("s", 2000)
            .items
            .first()
            .and_then(|i| i.last_line.clone())
            .is_some_and(|l| l == "opened server.log")
    })
    .await;
    let roster = manager.roster("s", 2000);
    let ids: Vec<&str> = roster.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec![open.id().as_str()]);
    assert_eq!(roster.items[0].agent.as_deref(), Some("researcher"));
    assert!(
        roster.text.contains("[researcher]") && roster.text.contains("opened server.log"),
        "{}",
        roster.text
    );

    // 500 open tasks: the text stays within the budget and says how many it left out.
    let many: Vec<_> = (0..500)
        .map(|_| {
            manager
                .spawn(waiting_agent(), SpawnOptions::background().owner("s"))
                .expect("spawn")
        })
        .collect();
    let roster = manager.roster("s", 2000);
    assert_eq!(roster.items.len(), 501);
    assert!(roster.text.len() <= 2000, "{}", roster.text.len());
    assert!(roster.text.starts_with("Open background work (501):"));
    assert!(roster.text.contains("more not shown"));
    for task in many.iter().chain([&open, &foreground, &other_owner]) {
        manager
            .cancel(task.id().as_str(), CancelReason::user(""))
            .await
            .expect("cancel");
    }
    assert_eq!(manager.roster("s", 2000).items.len(), 0);
}

/// A toolbox with three agents: one that answers with its goal, one that
/// waits for a steering message and answers with it, one that fails.
fn toolbox_with_agents(manager: &agent_tasks::TaskManager) -> ToolBox {
    let mut tools = ToolBox::new(manager.clone(), "s");
    tools
        .register_agent(
            Agent::new("echo", "Answers with its goal.", |args, ctx| async move {
                ctx.stdout("echoing\n");
                Ok(json!({ "echo": args["goal"] }))
            })
            .parameters(json!({
                "type": "object",
                "properties": {
                    "goal": {"type": "string"},
                    "context": {"type": "string"}
                },
                "required": ["goal"]
            })),
        )
        .expect("register echo");
    tools
        .register_agent(Agent::new(
            "listener",
            "Waits for a steering message and answers with it; stops when cancelled.",
            |_args, ctx| async move {
                ctx.stdout("waiting for a hint\n");
                tokio::select! {
                    msg = ctx.recv() => Ok(json!({ "heard": msg.map(|m| m.text()) })),
                    reason = ctx.cancelled() => Ok(json!({ "stopped": reason.to_string() })),
                }
            },
        ))
        .expect("register listener");
    tools
        .register_agent(Agent::new(
            "broken",
            "Always fails.",
            |args, _ctx| async move {
                if args["goal"] == "panic" {
                    panic!("the broken agent panicked");
                }
                Err("the broken agent gave up".into())
            },
        ))
        .expect("register broken");
    tools
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_agents_add_the_delegation_tool_in_every_shape() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let plain = ToolBox::new(manager.clone(), "s");
    assert!(plain
        .definitions()
        .iter()
        .all(|d| d.name != "task_delegate"));
    let unknown = plain
        .call(
            "task_delegate",
            json!({"agent": "echo", "tasks": [{"goal": "x"}]}),
        )
        .await;
    assert!(
        unknown.is_error && unknown.text.contains("there is no tool"),
        "{}",
        unknown.text
    );

    let tools = toolbox_with_agents(&manager);
    let delegate = tools
        .definitions()
        .into_iter()
        .find(|d| d.name == "task_delegate")
        .expect("task_delegate");
    for shape in [delegate.openai(), delegate.anthropic(), delegate.mcp()] {
        assert!(shape.to_string().contains("\"echo\"") && shape.to_string().contains("listener"));
    }
    insta::assert_snapshot!(
        "task_delegate_definition",
        serde_json::to_string_pretty(&delegate.anthropic()).expect("json")
    );

    let mut bad = ToolBox::new(manager.clone(), "s");
    let refused = bad.register_agent(Agent::new("Bad Name", "x", |_a, _c| async { Ok(json!(1)) }));
    assert_eq!(refused.expect_err("bad name").code(), "INVALID_ARGUMENT");
    let no_goal = bad.register_agent(
        Agent::new("nogoal", "x", |_a, _c| async { Ok(json!(1)) })
            .parameters(json!({"type": "object", "properties": {"topic": {"type": "string"}}})),
    );
    assert!(no_goal.expect_err("no goal").to_string().contains("goal"));
    bad.register_agent(Agent::new("twice", "x", |_a, _c| async { Ok(json!(1)) }))
        .expect("first");
    let twice = bad.register_agent(Agent::new("twice", "x", |_a, _c| async { Ok(json!(1)) }));
    assert!(twice
        .expect_err("duplicate")
        .to_string()
        .contains("registered already"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_delegates_steers_cancels_and_collects_subagents() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = toolbox_with_agents(&manager);

    // Three listeners in one call, in the background: three ids at once.
    let started = tools
        .call(
            "task_delegate",
            json!({"agent": "listener", "background": true, "tasks": [
                {"goal": "first"}, {"goal": "second"}, {"goal": "third"}
            ]}),
        )
        .await;
    assert!(!started.is_error, "{}", started.text);
    let ids: Vec<String> = started.json["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["task_id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids
        .iter()
        .all(|id| id.starts_with("agent-") && started.text.contains(id.as_str())));

    // Steer one: it hears the message and answers with it.
    let sent = tools
        .call(
            "task_send",
            json!({"task_id": ids[0], "message": "look at the lexer"}),
        )
        .await;
    assert!(!sent.is_error, "{}", sent.text);
    let waited = tools
        .call("task_wait", json!({"task_id": ids[0], "timeout": 60}))
        .await;
    assert!(waited.text.contains("status: completed"), "{}", waited.text);
    assert!(waited.text.contains("look at the lexer"), "{}", waited.text);

    // Cancel one: the reason reaches the runner.
    let cancelled = tools
        .call(
            "task_cancel",
            json!({"task_id": ids[1], "reason": "not needed any more"}),
        )
        .await;
    assert!(!cancelled.is_error, "{}", cancelled.text);

    // The roster shows the one still open, with its agent.
    let roster = manager.roster("s", 2000);
    assert_eq!(roster.items.len(), 1);
    assert_eq!(roster.items[0].id, ids[2]);
    assert_eq!(roster.items[0].agent.as_deref(), Some("listener"));

    // The last one ends without the model looking: its notification
    // carries its value and what it answers.
    manager
        .cancel(&ids[2], CancelReason::user("host stops it"))
        .await
        .expect("cancel");
    // Host cancels are quiet by default; a finished subagent is not.
    let answered = tools
        .call("task_delegate", json!({"agent": "echo", "background": true, "tasks": [{"goal": "ping", "context": "c"}]}))
        .await;
    let id = answered.json["tasks"][0]["task_id"]
        .as_str()
        .expect("id")
        .to_string();
    manager.collect(&id, None).await.expect("collect");
    let note = manager
        .notifications(Some("s"))
        .into_iter()
        .find(|n| n.task_id.as_str() == id)
        .expect("notification");
    assert!(
        note.text
            // JSON objects keep the model's key order.
            .contains("answers: echo with {\"goal\":\"ping\",\"context\":\"c\"}"),
        "{}",
        note.text
    );
    assert!(
        note.text.contains("result:\n{\"echo\":\"ping\"}"),
        "{}",
        note.text
    );

    // In the foreground: a quick one answers in the same call.
    let quick = tools
        .call(
            "task_delegate",
            json!({"agent": "echo", "tasks": [{"goal": "now"}]}),
        )
        .await;
    assert!(
        quick.text.contains("status: completed") && quick.text.contains("\"echo\":\"now\""),
        "{}",
        quick.text
    );
    // A slow one moves to the background at the timeout and goes on.
    let slow = tools
        .call(
            "task_delegate",
            json!({"agent": "listener", "timeout": 0.2, "tasks": [{"goal": "wait"}]}),
        )
        .await;
    assert!(
        slow.text.contains("moved to the background"),
        "{}",
        slow.text
    );
    let slow_id = slow.json["tasks"][0]["task_id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        manager.info(&slow_id).expect("info").status,
        agent_tasks::TaskStatus::Running
    );
    manager
        .cancel(&slow_id, CancelReason::user(""))
        .await
        .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_subagents_and_bad_delegations_are_answered_clearly() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = toolbox_with_agents(&manager);
    let failed = tools
        .call(
            "task_delegate",
            json!({"agent": "broken", "tasks": [{"goal": "try"}, {"goal": "panic"}]}),
        )
        .await;
    assert!(!failed.is_error, "{}", failed.text);
    assert!(
        failed.text.contains("the broken agent gave up"),
        "{}",
        failed.text
    );
    assert!(
        failed.text.contains("the broken agent panicked"),
        "{}",
        failed.text
    );
    assert_eq!(
        failed.text.matches("status: failed").count(),
        2,
        "{}",
        failed.text
    );
    // The manager goes on.
    let after = tools
        .call(
            "task_delegate",
            json!({"agent": "echo", "tasks": [{"goal": "still here"}]}),
        )
        .await;
    assert!(after.text.contains("still here"), "{}", after.text);

    for (args, names) in [
        (
            json!({"agent": "nobody", "tasks": [{"goal": "x"}]}),
            "`agent`",
        ),
        (json!({"agent": "echo", "tasks": []}), "`tasks`"),
        (
            json!({"agent": "echo", "tasks": vec![json!({"goal": "x"}); 9]}),
            "`tasks`",
        ),
        (
            json!({"agent": "echo", "tasks": [{"context": "no goal"}]}),
            "`tasks[0].goal`",
        ),
        (
            json!({"agent": "echo", "tasks": [{"goal": "  "}]}),
            "`tasks[0].goal`",
        ),
        (
            json!({"agent": "echo", "tasks": ["just a string"]}),
            "`tasks[0]`",
        ),
        (
            json!({"agent": "echo", "tasks": [{"goal": "x"}], "colour": "red"}),
            "colour",
        ),
    ] {
        let answer = tools.call("task_delegate", args.clone()).await;
        assert!(answer.is_error, "{args}: {}", answer.text);
        assert!(answer.text.contains(names), "{args}: {}", answer.text);
    }
    assert!(tools
        .call(
            "task_delegate",
            json!({"agent": "nobody", "tasks": [{"goal": "x"}]})
        )
        .await
        .text
        .contains("the agents are: echo, listener, broken"));
}

/// The `answers:` line of an answer: the agent and arguments a subagent
/// works for.
fn answers_line(text: &str) -> Option<&str> {
    text.lines().find(|l| l.starts_with("answers: "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_wait_and_task_output_say_what_a_subagent_answers() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = toolbox_with_agents(&manager);
    let delegate = |agent: &str, goal: &str| {
        tools.call(
            "task_delegate",
            json!({"agent": agent, "background": true, "tasks": [{"goal": goal, "context": "line one\nline two"}]}),
        )
    };
    let id_of = |answer: &agent_tasks::tools::ToolResponse| {
        answer.json["tasks"][0]["task_id"]
            .as_str()
            .expect("id")
            .to_string()
    };

    // While it runs: task_output, and a task_wait that times out or waits
    // for a line, all say whom it answers, on one line.
    let listening = id_of(&delegate("listener", "find the flaky test").await);
    let output = tools
        .call("task_output", json!({"task_id": listening}))
        .await;
    let waited = tools
        .call("task_wait", json!({"task_id": listening, "timeout": 0}))
        .await;
    let ready = tools
        .call(
            "task_wait",
            json!({"task_id": listening, "until": "waiting", "timeout": 60}),
        )
        .await;
    for answer in [&output, &waited, &ready] {
        assert!(!answer.is_error, "{}", answer.text);
        let line = answers_line(&answer.text).unwrap_or_else(|| panic!("{}", answer.text));
        assert!(line.starts_with("answers: listener with {"), "{line}");
        assert!(line.contains("find the flaky test"), "{line}");
        // Metadata: before the output.
        let at = answer.text.find(line).expect("line");
        assert!(at < answer.text.find("--- output").expect("output"));
    }
    manager
        .cancel(&listening, CancelReason::user("done"))
        .await
        .expect("cancel");

    // At its end, the same line as the end notification's (one renderer).
    let echo = id_of(&delegate("echo", "ping").await);
    manager.collect(&echo, None).await.expect("collect");
    let note = manager
        .notifications(Some("s"))
        .into_iter()
        .find(|n| n.task_id.as_str() == echo && n.kind == NotificationKind::Finished)
        .expect("an end notification");
    let noted = answers_line(&note.text).expect("the notification's line");
    for name in ["task_wait", "task_output"] {
        let answer = tools.call(name, json!({"task_id": echo})).await;
        assert!(!answer.is_error, "{}", answer.text);
        assert_eq!(answers_line(&answer.text), Some(noted), "{}", answer.text);
    }

    // A task that is not a subagent has no such line.
    let plain = manager
        .spawn(
            answering_agent(json!("plain")),
            SpawnOptions::background().owner("s"),
        )
        .expect("spawn");
    let answer = tools
        .call("task_wait", json!({"task_id": plain.id(), "timeout": 60}))
        .await;
    assert_eq!(answers_line(&answer.text), None, "{}", answer.text);
}

/// The delegation a subagent answers is saved with it: after the host
/// shuts down and another opens the root, `task_output` and `task_wait`
/// still say which agent and arguments it answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_subagent_answers_is_kept_across_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let manager = agent_tasks::TaskManager::open(dir.path()).expect("open");
        let tools = toolbox_with_agents(&manager);
        let answer = tools
            .call(
                "task_delegate",
                json!({"agent": "echo", "background": true, "tasks": [{"goal": "ping"}]}),
            )
            .await;
        assert!(!answer.is_error, "{}", answer.text);
        let id = answer.json["tasks"][0]["task_id"]
            .as_str()
            .expect("id")
            .to_string();
        manager.collect(&id, None).await.expect("collect");
        manager.shutdown("bye").await;
        id
    };
    let reopened = agent_tasks::TaskManager::open(dir.path()).expect("reopen");
    let tools = toolbox_with_agents(&reopened);
    for name in ["task_output", "task_wait"] {
        let answer = tools.call(name, json!({"task_id": id})).await;
        assert!(!answer.is_error, "{}", answer.text);
        let line = answers_line(&answer.text).unwrap_or_else(|| panic!("{}", answer.text));
        assert!(line.starts_with("answers: echo with {"), "{line}");
        assert!(line.contains("ping"), "{line}");
    }
}
