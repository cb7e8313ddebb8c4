//! The model-facing tools through the public API: snapshot tests of every
//! tool's text in typical cases, arbitrary JSON never panics, a 10 MB output
//! keeps the id and metadata within the budget, the regex filter, and bad
//! input answered with a text that names the problem. Every answer fits its
//! text budget, whatever the arguments: huge descriptions (a 50 KB heredoc),
//! cancel reasons, filters, invalid values quoted by serde, thousands of ids,
//! small budgets.

mod common;

use std::time::Duration;

use agent_tasks::tools::{definitions, ToolBox, ToolBoxConfig};
use agent_tasks::{ManagerConfig, TaskManager};
use common::{manager_in_temp, wait_for};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Replaces what changes from run to run (ids, durations, paths).
fn redact(text: &str) -> String {
    let rules = [
        (r"\b(process|fn|subagent)-[a-z0-9]{4,32}\b", "[TASK_ID]"),
        (r"\b\d+(\.\d+)? (ms|s)\b|\b\d+ min \d+ s\b", "[DURATION]"),
        (r"/tmp/[^\s`]+", "[PATH]"),
        (r"(?m)^used: peak memory .*$", "used: [USAGE]"),
    ];
    let mut out = text.to_string();
    for (pattern, replacement) in rules {
        out = regex::Regex::new(pattern)
            .expect("regex")
            .replace_all(&out, replacement)
            .into_owned();
    }
    out
}

fn toolbox(manager: &TaskManager) -> ToolBox {
    ToolBox::new(manager.clone(), "session-1")
}

fn task_id(answer: &agent_tasks::tools::ToolResponse) -> String {
    answer.json["task_id"]
        .as_str()
        .or_else(|| answer.json["info"]["id"].as_str())
        .expect("task id")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_texts_for_typical_cases() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = toolbox(&manager);
    let mut transcript = Vec::new();
    let mut record = |title: &str, answer: &agent_tasks::tools::ToolResponse| {
        transcript.push(format!(
            "## {title} (is_error: {})\n{}",
            answer.is_error,
            redact(&answer.text)
        ));
    };

    let done = tools
        .call("task_run", json!({"command": "printf 'hello\\nworld\\n'"}))
        .await;
    record("task_run, completed in the foreground", &done);
    let failed = tools
        .call(
            "task_run",
            json!({"command": "echo oops >&2; exit 3", "description": "a failing step"}),
        )
        .await;
    record("task_run, failed", &failed);
    let detached = tools
        .call("task_run", json!({"command": "echo compiling; sleep 1000", "timeout": 0.3, "description": "slow build"}))
        .await;
    record(
        "task_run, moved to the background after its timeout",
        &detached,
    );
    let slow = task_id(&detached);
    let bg = tools
        .call(
            "task_run",
            json!({"command": "sleep 1000", "background": true, "description": "a server"}),
        )
        .await;
    record("task_run, background", &bg);
    let server = task_id(&bg);

    record(
        "task_output, running",
        &tools
            .call("task_output", json!({"task_id": slow, "cursor": 0}))
            .await,
    );
    record(
        "task_output, nothing new",
        &tools
            .call("task_output", json!({"task_id": slow, "cursor": 10}))
            .await,
    );
    record(
        "task_wait, still running",
        &tools
            .call("task_wait", json!({"task_id": server, "timeout": 0}))
            .await,
    );
    record("task_list", &tools.call("task_list", json!({})).await);
    record(
        "task_cancel",
        &tools
            .call(
                "task_cancel",
                json!({"task_id": slow, "reason": "taking too long"}),
            )
            .await,
    );
    record(
        "task_cancel, again",
        &tools.call("task_cancel", json!({"task_id": slow})).await,
    );
    record(
        "task_output, cancelled",
        &tools.call("task_output", json!({"task_id": slow})).await,
    );
    tools.call("task_cancel", json!({"task_id": server})).await;
    record(
        "task_wait, ended",
        &tools
            .call("task_wait", json!({"task_id": task_id(&failed)}))
            .await,
    );

    let reader = tools
        .call(
            "task_run",
            // (It stays running, so the refusal is for its lack of input,
            // not for its end.)
            json!({"command": "read line; echo \"got $line\"; sleep 30", "background": true}),
        )
        .await;
    let reader_id = task_id(&reader);
    record(
        "task_send, to a command without stdin",
        &tools
            .call(
                "task_send",
                json!({"task_id": reader_id, "message": "hi\n"}),
            )
            .await,
    );

    let long = tools
        .call("task_run", json!({"command": "seq 1 20000"}))
        .await;
    let small = ToolBox::with_config(
        manager.clone(),
        "session-1",
        ToolBoxConfig {
            text_budget: 1400,
            ..Default::default()
        },
    )
    .expect("toolbox");
    record(
        "task_output, truncated",
        &small
            .call(
                "task_output",
                json!({"task_id": task_id(&long), "cursor": 0, "max_bytes": 100000}),
            )
            .await,
    );
    record(
        "task_output, filtered",
        &tools
            .call(
                "task_output",
                json!({"task_id": task_id(&long), "filter": "^1999[0-9]$"}),
            )
            .await,
    );

    record(
        "error: unknown tool",
        &tools.call("task_explode", json!({})).await,
    );
    record(
        "error: unknown id",
        &tools
            .call("task_output", json!({"task_id": "process-doesnotexist"}))
            .await,
    );
    record(
        "error: malformed id",
        &tools
            .call("task_output", json!({"task_id": "../../etc/passwd"}))
            .await,
    );
    record(
        "error: missing argument",
        &tools.call("task_run", json!({})).await,
    );
    record(
        "error: mistyped argument",
        &tools
            .call("task_wait", json!({"task_id": slow, "timeout": "soon"}))
            .await,
    );
    record(
        "error: unknown argument",
        &tools.call("task_list", json!({"verbose": true})).await,
    );
    record(
        "error: bad regex",
        &tools
            .call(
                "task_output",
                json!({"task_id": slow, "filter": "(unclosed"}),
            )
            .await,
    );
    record(
        "error: not an object",
        &tools.call("task_list", json!([1, 2])).await,
    );
    manager.shutdown("").await;
    insta::assert_snapshot!("tool_texts", transcript.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_of_output_keep_the_id_and_metadata_within_the_budget() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = ToolBox::with_config(
        manager.clone(),
        "me",
        ToolBoxConfig {
            text_budget: 4000,
            ..Default::default()
        },
    )
    .expect("toolbox");
    let run = tools
        .call(
            "task_run",
            json!({"command": "head -c 10000000 /dev/zero | tr '\\0' 'x'; echo; echo THE-END"}),
        )
        .await;
    assert!(!run.is_error, "{}", run.text);
    let id = task_id(&run);
    for answer in [
        run.clone(),
        tools
            .call(
                "task_output",
                json!({"task_id": id, "cursor": 0, "max_bytes": 16000000}),
            )
            .await,
        tools.call("task_wait", json!({"task_id": id})).await,
    ] {
        assert!(answer.text.len() <= 4000, "{} bytes", answer.text.len());
        assert!(
            answer
                .text
                .starts_with(&format!("task_id: {id}\nstatus: completed\nexit_code: 0")),
            "{}",
            &answer.text[..200]
        );
        assert!(answer.text.contains("bytes_omitted: "));
        assert!(answer.text.contains("bytes omitted ...]"));
    }
    assert!(run.text.trim_end().ends_with("THE-END"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_regex_filter_keeps_matching_lines_and_cursors_follow_new_output() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = toolbox(&manager);
    let run = tools
        .call("task_run", json!({"command": "for i in 1 2 3 4 5; do echo \"ok $i\"; echo \"error $i\" >&2; done"}))
        .await;
    let id = task_id(&run);
    let filtered = tools
        .call(
            "task_output",
            json!({"task_id": id, "filter": "^error [24]$"}),
        )
        .await;
    assert!(
        filtered.text.ends_with("--- output ---\nerror 2\nerror 4"),
        "{}",
        filtered.text
    );
    assert!(filtered.text.contains("(2 of 10 lines matched)"));

    let bg = tools
        .call(
            "task_run",
            json!({"command": "echo one; sleep 1000", "background": true}),
        )
        .await;
    let id = task_id(&bg);
    wait_for("the first line", || {
        manager.poll(&id, 0, 100).expect("poll").text() == "one\n"
    })
    .await;
    let first = tools
        .call("task_output", json!({"task_id": id, "cursor": 0}))
        .await;
    assert!(first.text.ends_with("one\n"));
    assert_eq!(first.json["next_cursor"], 4);
    let _ = manager
        .cancel(&id, agent_tasks::CancelReason::user(""))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_owners_task_is_invisible() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let alice = ToolBox::new(manager.clone(), "alice");
    let bob = ToolBox::new(manager.clone(), "bob");
    let run = alice
        .call(
            "task_run",
            json!({"command": "sleep 1000", "background": true}),
        )
        .await;
    let id = task_id(&run);
    let peek = bob.call("task_cancel", json!({"task_id": id})).await;
    assert!(peek.is_error);
    assert!(peek.text.contains("you have no tasks"), "{}", peek.text);
    assert_eq!(
        manager.info(&id).expect("info").status,
        agent_tasks::TaskStatus::Running
    );
    let listed = alice.call("task_list", json!(null)).await;
    assert!(listed.text.contains(&id));
    assert_eq!(bob.call("task_list", json!({})).await.text, "no tasks");
    manager.shutdown("").await;
}

#[test]
fn definitions_export_in_every_shape() {
    let defs = definitions();
    let names: Vec<_> = defs.iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        [
            "task_run",
            "task_list",
            "task_output",
            "task_wait",
            "task_cancel",
            "task_send"
        ]
    );
    for d in &defs {
        assert_eq!(d.parameters["type"], "object", "{}", d.name);
        assert!(
            !d.parameters.to_string().contains("$ref"),
            "{} has a $ref",
            d.name
        );
        assert_eq!(d.openai()["function"]["parameters"], d.parameters);
        assert_eq!(d.anthropic()["input_schema"], d.parameters);
        assert_eq!(d.mcp()["inputSchema"], d.parameters);
        assert!(d.description.len() > 40);
    }
    let run = &defs[0].parameters;
    assert_eq!(run["required"], json!(["command"]));
    assert_eq!(run["additionalProperties"], json!(false));
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,40}".prop_map(Value::from),
        Just(Value::from("process-abcd1234")),
        Just(Value::from("../x")),
        Just(Value::from(heredoc_command())),
        Just(Value::from("\u{e9}".repeat(30_000))),
    ];
    let keys = prop_oneof![
        Just("command".to_string()),
        Just("task_id".to_string()),
        Just("cursor".to_string()),
        Just("filter".to_string()),
        Just("max_bytes".to_string()),
        Just("timeout".to_string()),
        Just("background".to_string()),
        Just("message".to_string()),
        Just("reason".to_string()),
        Just("running_only".to_string()),
        "[a-z_]{1,12}",
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics_and_always_answers(
        args in arbitrary_json(),
        tool in 0usize..7,
        budget in prop::sample::select(BUDGETS.to_vec()),
    ) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let sandbox = tempfile::tempdir().expect("tempdir");
        let answer = runtime.block_on(async {
            let manager = TaskManager::new(
                ManagerConfig::default()
                    .root(sandbox.path().join("root"))
                    .background_timeout(Some(Duration::from_secs(2))),
            )
            .expect("manager");
            // Commands made of random text run with no PATH in an empty
            // folder, and are stopped within two seconds.
            let config = ToolBoxConfig {
                cwd: Some(sandbox.path().to_path_buf()),
                env: vec![("PATH".to_string(), "/nonexistent".to_string())],
                max_run_timeout: Duration::from_secs(2),
                on_timeout: agent_tasks::OnTimeout::Kill,
                max_wait_timeout: Duration::from_secs(2),
                text_budget: budget,
                ..ToolBoxConfig::default()
            };
            let tools = ToolBox::with_config(manager.clone(), "fuzz", config).expect("toolbox");
            let names = ["task_run", "task_list", "task_output", "task_wait", "task_cancel", "task_send", "nope"];
            let answer = tools.call(names[tool], args.clone()).await;
            manager.shutdown("").await;
            answer
        });
        prop_assert!(!answer.text.is_empty());
        prop_assert!(answer.text.len() <= budget, "{} > {budget}", answer.text.len());
        if answer.is_error {
            prop_assert!(answer.text.starts_with("error: "));
            prop_assert!(answer.json["error"]["code"].is_string());
        }
    }
}

/// A heredoc command of about 50 KB (multi-byte text, many lines).
fn heredoc_command() -> String {
    format!(
        "cat <<'EOF'\n{}EOF",
        "status: completed — line of a long heredoc é\n".repeat(1100)
    )
}

/// Budgets the huge-argument tests answer within.
const BUDGETS: [usize; 4] = [500, 2000, 4000, 12_000];

/// Stands for the id of a running task with a huge description.
const RUNNING: &str = "$RUNNING";
/// Stands for the id of a task cancelled with a huge reason.
const CANCELLED: &str = "$CANCELLED";

fn huge_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::from(heredoc_command())),
        Just(Value::from("x".repeat(50_000))),
        Just(Value::from(format!("({}", "é".repeat(25_000)))),
        Just(Value::from(format!("{}\n", "a|".repeat(20_000)))),
        Just(Value::from(RUNNING)),
        Just(Value::from(CANCELLED)),
        any::<u64>().prop_map(Value::from),
        Just(Value::from(0.001)),
        Just(Value::from(true)),
        Just(Value::Array(vec![Value::from("y".repeat(30_000)); 2])),
    ]
}

/// Tool arguments with huge values (and huge unknown argument names),
/// mostly aimed at an existing task.
fn huge_arguments() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("command".to_string()),
        Just("description".to_string()),
        Just("cwd".to_string()),
        Just("task_id".to_string()),
        Just("cursor".to_string()),
        Just("filter".to_string()),
        Just("max_bytes".to_string()),
        Just("timeout".to_string()),
        Just("background".to_string()),
        Just("message".to_string()),
        Just("reason".to_string()),
        Just("z".repeat(20_000)),
    ];
    (
        prop::collection::btree_map(keys, huge_value(), 0..4),
        prop_oneof![Just(RUNNING), Just(CANCELLED), Just("")],
    )
        .prop_map(|(map, target)| {
            let mut args: serde_json::Map<String, Value> = map.into_iter().collect();
            if !target.is_empty() {
                args.entry("task_id".to_string())
                    .or_insert_with(|| Value::from(target));
            }
            Value::Object(args)
        })
}

/// Replaces the placeholders with real ids, wherever they are.
fn substitute(value: &mut Value, running: &str, cancelled: &str) {
    match value {
        Value::String(s) if s == RUNNING => *s = running.to_string(),
        Value::String(s) if s == CANCELLED => *s = cancelled.to_string(),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| substitute(v, running, cancelled)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| substitute(v, running, cancelled)),
        _ => {}
    }
}

/// Checks what every answer must hold: within the budget, and an answer
/// about a task starts with its id and status.
fn check_answer(answer: &agent_tasks::tools::ToolResponse, budget: usize) {
    assert!(
        answer.text.len() <= budget,
        "{} bytes over a budget of {budget}: {}",
        answer.text.len(),
        answer.text.chars().take(300).collect::<String>()
    );
    assert!(!answer.text.is_empty());
    if answer.is_error {
        assert!(answer.text.starts_with("error: "), "{}", answer.text);
    } else if let Some(id) = answer.json["info"]["id"].as_str() {
        let mut lines = answer.text.lines();
        assert_eq!(lines.next(), Some(format!("task_id: {id}").as_str()));
        assert!(
            lines.next().is_some_and(|l| l.starts_with("status: ")),
            "{}",
            answer.text
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn huge_arguments_answer_within_the_budget(
        args in huge_arguments(),
        tool in 0usize..7,
        budget in prop::sample::select(BUDGETS.to_vec()),
    ) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let sandbox = tempfile::tempdir().expect("tempdir");
        runtime.block_on(async {
            let manager = TaskManager::new(
                ManagerConfig::default()
                    .root(sandbox.path().join("root"))
                    .background_timeout(Some(Duration::from_secs(2))),
            )
            .expect("manager");
            let spawn = |description: String| {
                manager
                    .spawn(
                        agent_tasks::ProcessTask::shell("sleep 5"),
                        agent_tasks::SpawnOptions::background()
                            .owner("fuzz")
                            .description(description),
                    )
                    .expect("spawn")
                    .id()
                    .to_string()
            };
            let running = spawn(heredoc_command());
            let cancelled = spawn("z".repeat(30_000));
            manager
                .cancel(&cancelled, agent_tasks::CancelReason::user("because\n".repeat(5000)))
                .await
                .expect("cancel");
            let mut args = args.clone();
            substitute(&mut args, &running, &cancelled);
            let config = ToolBoxConfig {
                text_budget: budget,
                cwd: Some(sandbox.path().to_path_buf()),
                env: vec![("PATH".to_string(), "/nonexistent".to_string())],
                max_run_timeout: Duration::from_secs(1),
                on_timeout: agent_tasks::OnTimeout::Kill,
                max_wait_timeout: Duration::from_millis(200),
                ..ToolBoxConfig::default()
            };
            let tools = ToolBox::with_config(manager.clone(), "fuzz", config).expect("toolbox");
            let names = ["task_run", "task_list", "task_output", "task_wait", "task_cancel", "task_send", "nope"];
            let answer = tools.call(names[tool], args).await;
            check_answer(&answer, budget);
            // The huge-description and huge-reason tasks as every tool shows them.
            for id in [&running, &cancelled] {
                for (name, args) in [
                    ("task_output", json!({"task_id": id})),
                    ("task_wait", json!({"task_id": id, "timeout": 0})),
                    ("task_cancel", json!({"task_id": id})),
                ] {
                    let answer = tools.call(name, args).await;
                    check_answer(&answer, budget);
                    prop_assert!(!answer.is_error, "{}", answer.text);
                    prop_assert!(answer.text.contains("\nduration: "), "{}", answer.text);
                }
            }
            check_answer(&tools.call("task_list", json!({})).await, budget);
            manager.shutdown("").await;
            Ok(())
        })?;
    }
}

/// The answers about one task, for the focused tests below.
async fn answers_about(tools: &ToolBox, id: &str) -> Vec<agent_tasks::tools::ToolResponse> {
    let mut answers = Vec::new();
    for (name, args) in [
        ("task_output", json!({"task_id": id, "cursor": 0})),
        (
            "task_output",
            json!({"task_id": id, "filter": "x".repeat(40_000)}),
        ),
        ("task_wait", json!({"task_id": id, "timeout": 0})),
        (
            "task_cancel",
            json!({"task_id": id, "reason": "r".repeat(40_000)}),
        ),
    ] {
        answers.push(tools.call(name, args).await);
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_heredoc_keeps_id_status_exit_and_cursor_first() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    for budget in [500, 2000, 12_000] {
        let tools = ToolBox::with_config(
            manager.clone(),
            "me",
            ToolBoxConfig {
                text_budget: budget,
                ..Default::default()
            },
        )
        .expect("toolbox");
        // The description is the whole 50 KB command, and so is the output.
        let run = tools
            .call("task_run", json!({"command": heredoc_command()}))
            .await;
        assert!(!run.is_error, "{}", run.text);
        check_answer(&run, budget);
        let id = task_id(&run);
        let lines: Vec<&str> = run.text.lines().collect();
        assert_eq!(lines[0], format!("task_id: {id}"));
        assert_eq!(lines[1], "status: completed");
        assert_eq!(lines[2], "exit_code: 0");
        assert!(lines[4].starts_with("description: cat <<'EOF'⏎status: completed"));
        assert!(lines[4].ends_with('…'), "{}", lines[4]);
        // What the process used, then the cursor.
        assert!(lines[5].starts_with("used: peak memory "), "{}", lines[5]);
        let end = run.json["next_cursor"].as_u64().expect("cursor");
        assert_eq!(
            lines[6],
            format!("output: {end} bytes (next cursor: {end})")
        );
        assert!(lines[7].starts_with("bytes_omitted: "));
        assert_eq!(
            run.json["bytes_omitted"].as_u64(),
            lines[7]["bytes_omitted: ".len()..].parse().ok()
        );
        for answer in answers_about(&tools, &id).await {
            check_answer(&answer, budget);
            assert!(answer.text.contains("\nexit_code: 0\n"), "{}", answer.text);
            if answer.json.get("next_cursor").is_some() {
                assert!(answer.text.contains("(next cursor: "), "{}", answer.text);
            }
        }
    }
    manager.shutdown("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_cancel_reason_and_filter_are_cut_with_a_visible_mark() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = ToolBox::with_config(
        manager.clone(),
        "me",
        ToolBoxConfig {
            text_budget: 2000,
            ..Default::default()
        },
    )
    .expect("toolbox");
    let bg = tools
        .call(
            "task_run",
            json!({"command": "echo ready; sleep 1000", "background": true}),
        )
        .await;
    let id = task_id(&bg);
    // The filter below looks for the line the task prints first.
    wait_for("the task's first line", || {
        manager
            .poll(&id, 0, 100)
            .is_ok_and(|page| page.text().contains("ready"))
    })
    .await;
    let cancel = tools
        .call(
            "task_cancel",
            json!({"task_id": id, "reason": "line\n".repeat(10_000)}),
        )
        .await;
    check_answer(&cancel, 2000);
    let reason = cancel
        .text
        .lines()
        .find(|l| l.starts_with("reason: cancelled: line⏎line"))
        .expect("reason line");
    assert!(reason.ends_with('…'), "{reason}");
    assert!(cancel
        .text
        .contains("\ndescription: echo ready; sleep 1000"));
    let filtered = tools
        .call(
            "task_output",
            json!({"task_id": id, "filter": format!("ready|{}", "q".repeat(30_000))}),
        )
        .await;
    check_answer(&filtered, 2000);
    assert!(
        filtered.text.contains("filter: ready|qqq"),
        "{}",
        filtered.text
    );
    assert!(filtered.text.contains("… (1 of 1 lines matched)"));
    assert!(filtered.text.ends_with("--- output ---\nready"));
    manager.shutdown("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_invalid_values_are_quoted_in_part() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    for budget in [500, 2000, 12_000] {
        let tools = ToolBox::with_config(
            manager.clone(),
            "me",
            ToolBoxConfig {
                text_budget: budget,
                ..Default::default()
            },
        )
        .expect("toolbox");
        let mistyped = tools
            .call(
                "task_wait",
                json!({"task_id": "process-abcd", "timeout": "s".repeat(50_000)}),
            )
            .await;
        check_answer(&mistyped, budget);
        assert!(mistyped.is_error);
        assert!(
            mistyped
                .text
                .starts_with("error: invalid argument `timeout`: invalid type: string \"sss"),
            "{}",
            mistyped.text
        );
        assert!(mistyped.text.contains(" … "), "{}", mistyped.text);
        if budget >= 2000 {
            // The start and the end of serde's message are kept.
            assert!(
                mistyped.text.ends_with("\", expected f64"),
                "{}",
                mistyped.text
            );
        }
        let unknown = tools
            .call("task_list", json!({ "w".repeat(50_000): true }))
            .await;
        check_answer(&unknown, budget);
        assert!(unknown.text.starts_with("error: invalid argument `www"));
        let bad_regex = tools.call("task_list", json!("[".repeat(50_000))).await;
        check_answer(&bad_regex, budget);
        assert!(bad_regex
            .text
            .starts_with("error: the arguments are not valid JSON"));
        assert!(
            mistyped.json["error"]["message"]
                .as_str()
                .expect("message")
                .len()
                < 5000
        );
    }
    manager.shutdown("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_tasks_are_listed_and_named_within_the_budget() {
    let manager = TaskManager::new(ManagerConfig::default()).expect("manager");
    let count = 3000;
    for i in 0..count {
        manager
            .spawn(
                agent_tasks::FnTask::new(format!("job {i}: {}", "d".repeat(300)), |_ctx| async {
                    Ok(json!(null))
                }),
                agent_tasks::SpawnOptions::background().owner("me"),
            )
            .expect("spawn");
    }
    wait_for("every task to end", || {
        manager
            .list(&agent_tasks::ListFilter::owner("me"))
            .iter()
            .all(|t| t.status.is_terminal())
    })
    .await;
    for budget in [500, 2000, 12_000] {
        let tools = ToolBox::with_config(
            manager.clone(),
            "me",
            ToolBoxConfig {
                text_budget: budget,
                ..Default::default()
            },
        )
        .expect("toolbox");
        let list = tools.call("task_list", json!({})).await;
        check_answer(&list, budget);
        assert!(
            list.text.starts_with("3000 tasks (0 running):\n(the "),
            "{}",
            list.text
        );
        assert!(list.text.contains("older not shown)"));
        assert!(list.text.trim_end().ends_with('…'), "{}", list.text);
        assert!(list.text.contains(&format!("job {}: ddd", count - 1)));
        for call in [
            json!({"task_id": "fn-doesnotexist"}),
            json!({"task_id": "../".repeat(10_000)}),
            json!({"task_id": "fn-".repeat(10_000)}),
        ] {
            let unknown = tools.call("task_output", call).await;
            check_answer(&unknown, budget);
            assert!(unknown.is_error);
            assert!(
                unknown.text.contains("your latest tasks are: fn-"),
                "{}",
                unknown.text
            );
            if budget >= 2000 {
                assert!(
                    unknown.text.ends_with(", … (3000 in all)"),
                    "{}",
                    unknown.text
                );
            }
        }
    }
    manager.shutdown("").await;
}

/// A budget too small to carry the task id is refused when the toolbox is
/// made, with an error naming `text_budget` and the minimum, a core
/// constant; the minimum itself is accepted and keeps the id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_budget_too_small_for_the_id_is_refused() {
    use agent_tasks::tools::MIN_TEXT_BUDGET;
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    for budget in [0, 1, 50, MIN_TEXT_BUDGET - 1] {
        let refused = ToolBox::with_config(
            manager.clone(),
            "me",
            ToolBoxConfig {
                text_budget: budget,
                ..ToolBoxConfig::default()
            },
        );
        match refused {
            Err(agent_tasks::Error::InvalidArgument { name, message }) => {
                assert_eq!(name, "text_budget");
                assert!(message.contains(&MIN_TEXT_BUDGET.to_string()), "{message}");
            }
            other => panic!("budget {budget}: {other:?}"),
        }
    }
    let refused = ToolBox::with_config(
        manager.clone(),
        "me",
        ToolBoxConfig {
            output_bytes: 0,
            ..ToolBoxConfig::default()
        },
    );
    assert!(
        matches!(&refused, Err(agent_tasks::Error::InvalidArgument { name, .. }) if name == "output_bytes"),
        "{refused:?}"
    );
    let tools = ToolBox::with_config(
        manager.clone(),
        "me",
        ToolBoxConfig {
            text_budget: MIN_TEXT_BUDGET,
            ..ToolBoxConfig::default()
        },
    )
    .expect("the minimum is accepted");
    let run = tools
        .call("task_run", json!({"command": "yes | head -c 100000"}))
        .await;
    assert!(!run.is_error, "{}", run.text);
    check_answer(&run, MIN_TEXT_BUDGET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_send_with_eof_closes_a_commands_input() {
    let (manager, _dir) = manager_in_temp(ManagerConfig::default());
    let tools = toolbox(&manager);
    let counted = |command: &str| json!({"command": command, "background": true, "stdin": true, "timeout": 120});
    let run = tools.call("task_run", counted("wc -l")).await;
    assert!(!run.is_error, "{}", run.text);
    let id = task_id(&run);

    let sent = tools
        .call("task_send", json!({"task_id": id, "message": "one\ntwo\n"}))
        .await;
    assert!(!sent.is_error, "{}", sent.text);
    // The end of input alone: `wc -l` prints its count and ends.
    let closed = tools
        .call("task_send", json!({"task_id": id, "eof": true}))
        .await;
    assert!(!closed.is_error, "{}", closed.text);
    assert!(closed.text.contains("end of input"), "{}", closed.text);
    assert_eq!(closed.json["eof"], true);
    let result = manager
        .collect(&id, Some(Duration::from_secs(60)))
        .await
        .expect("collect")
        .result()
        .cloned()
        .expect("wc -l ended");
    assert_eq!(result.status, agent_tasks::TaskStatus::Completed);
    let out = String::from_utf8(common::read_all(&manager, &id)).expect("utf-8");
    assert_eq!(out.trim(), "2");
    // Nothing can be sent after the end of input.
    let late = tools
        .call("task_send", json!({"task_id": id, "message": "three\n"}))
        .await;
    assert!(late.is_error, "{}", late.text);

    // A message and the end of input in one call.
    let run = tools.call("task_run", counted("wc -l")).await;
    let id = task_id(&run);
    let sent = tools
        .call(
            "task_send",
            json!({"task_id": id, "message": "a\nb\nc\n", "eof": true}),
        )
        .await;
    assert!(!sent.is_error, "{}", sent.text);
    manager
        .collect(&id, Some(Duration::from_secs(60)))
        .await
        .expect("collect");
    let out = String::from_utf8(common::read_all(&manager, &id)).expect("utf-8");
    assert_eq!(out.trim(), "3");

    // Nothing to send at all is refused, naming what may be given.
    let empty = tools.call("task_send", json!({"task_id": id})).await;
    assert!(empty.is_error);
    assert!(empty.text.contains("eof=true"), "{}", empty.text);
    // The argument is in the tool's schema.
    let send = definitions()
        .into_iter()
        .find(|d| d.name == "task_send")
        .expect("task_send");
    assert_eq!(send.parameters["properties"]["eof"]["type"], "boolean");
}
