//! The checked-in JSON Schemas in `schema/` must match what the Rust wire
//! types generate, so no binding can drift from the core. To regenerate after
//! changing a wire type: `UPDATE_SCHEMA=1 cargo test --test schema`. The
//! options of the calls (`call_options`), which a binding reads rather than
//! returns, are in `schema/options/`.

use std::path::PathBuf;

use agent_tasks::tools::ToolResponse;
use agent_tasks::{
    AcpOptions, CancelReason, ChangedFiles, CollectOutcome, Event, EventItem, ForegroundOutcome,
    GcReport, ManagerOptions, Notification, PollResponse, Preview, Roster, TaskInfo, TaskOptions,
    TaskResult, ToolBoxOptions, WaitOutcome,
};

fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("task_info", schemars::schema_for!(TaskInfo)),
        ("task_result", schemars::schema_for!(TaskResult)),
        ("poll_response", schemars::schema_for!(PollResponse)),
        ("preview", schemars::schema_for!(Preview)),
        ("event", schemars::schema_for!(Event)),
        ("event_item", schemars::schema_for!(EventItem)),
        ("notification", schemars::schema_for!(Notification)),
        ("cancel_reason", schemars::schema_for!(CancelReason)),
        ("changed_files", schemars::schema_for!(ChangedFiles)),
        (
            "foreground_outcome",
            schemars::schema_for!(ForegroundOutcome),
        ),
        ("collect_outcome", schemars::schema_for!(CollectOutcome)),
        ("wait_outcome", schemars::schema_for!(WaitOutcome)),
        ("roster", schemars::schema_for!(Roster)),
        ("gc_report", schemars::schema_for!(GcReport)),
        ("tool_response", schemars::schema_for!(ToolResponse)),
        (
            "options/manager_options",
            schemars::schema_for!(ManagerOptions),
        ),
        ("options/task_options", schemars::schema_for!(TaskOptions)),
        (
            "options/tool_box_options",
            schemars::schema_for!(ToolBoxOptions),
        ),
        ("options/acp_options", schemars::schema_for!(AcpOptions)),
    ]
}

#[test]
fn checked_in_schemas_match_the_rust_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema");
    let update = std::env::var_os("UPDATE_SCHEMA").is_some();
    let mut stale = Vec::new();
    for (name, schema) in schemas() {
        let path = dir.join(format!("{name}.json"));
        let generated = serde_json::to_string_pretty(&schema).expect("serialise") + "\n";
        if update {
            let folder = path.parent().expect("a schema's folder");
            std::fs::create_dir_all(folder).expect("mkdir schema/");
            std::fs::write(&path, &generated).expect("write schema");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(saved) if saved == generated => {}
            _ => stale.push(name),
        }
    }
    assert!(
        stale.is_empty(),
        "schema/ is out of date for {stale:?}; run `UPDATE_SCHEMA=1 cargo test --test schema`"
    );
}

#[test]
fn events_are_tagged_by_type() {
    let schema = serde_json::to_value(schemars::schema_for!(Event)).expect("json");
    let text = schema.to_string();
    for tag in [
        "task.started",
        "task.detached",
        "task.spilled",
        "task.finished",
        "task.lost",
        "task.orphaned",
        "task.output_dropped",
        "task.sink_error",
        "task.paused",
        "task.resumed",
        "task.queued",
    ] {
        assert!(text.contains(tag), "the event schema lacks {tag}");
    }
}
