//! The bindings declare the core's names as types (Python `Literal`s,
//! TypeScript string unions) because type checkers cannot read them from the
//! native module; the values themselves come from the core at run time. The
//! wire enums' declarations are generated from `schema/` (`_types.py`,
//! `types.d.ts`; their generators check for drift); the rest (the timeout
//! policy, the tool shapes) are written by hand. This test holds both to
//! the core's own names, so a renamed or added status, kind, policy, shape
//! or event type fails here instead of drifting.

use std::collections::BTreeSet;
use std::path::Path;

use agent_tasks::tools::ToolShape;
use agent_tasks::{CancelKind, EventKind, NotificationKind, OnTimeout, TaskStatus};

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The quoted names from `start` to the first `end` after it.
fn quoted(text: &str, start: &str, end: &str) -> BTreeSet<String> {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("`{start}` not found"));
    let rest = &text[from + start.len()..];
    let body = &rest[..rest.find(end).expect("end")];
    body.split(['"', '\''])
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn names(list: impl IntoIterator<Item = &'static str>) -> BTreeSet<String> {
    list.into_iter().map(str::to_string).collect()
}

#[test]
fn the_bindings_declare_the_core_names() {
    let statuses = names(TaskStatus::ALL.map(TaskStatus::as_str));
    let cancel_kinds = names(CancelKind::ALL.map(CancelKind::as_str));
    let notification_kinds = names(NotificationKind::ALL.map(NotificationKind::as_str));
    let policies = names(OnTimeout::ALL.map(OnTimeout::as_str));
    let shapes = names(ToolShape::ALL.map(ToolShape::as_str));
    let events = names(EventKind::TYPE_NAMES);

    let stubs = read("bindings-python/python/agent_tasks/_types.py");
    assert_eq!(quoted(&stubs, "TaskStatus = Literal[", "]"), statuses);
    assert_eq!(quoted(&stubs, "CancelKind = Literal[", "]"), cancel_kinds);
    assert_eq!(
        quoted(&stubs, "NotificationKind = Literal[", "]"),
        notification_kinds
    );
    assert_eq!(quoted(&stubs, "EventType = Literal[", "]"), events);
    let tools = read("bindings-python/python/agent_tasks/_tools.py");
    assert_eq!(quoted(&tools, "ToolShape = Literal[", "]"), shapes);

    let dts = read("bindings-node/types.d.ts");
    assert_eq!(quoted(&dts, "export type TaskStatus = ", "\n"), statuses);
    assert_eq!(
        quoted(&dts, "export type CancelKind = ", "\n"),
        cancel_kinds
    );
    assert_eq!(
        quoted(&dts, "export type NotificationKind = ", "\n"),
        notification_kinds
    );
    let header = read("bindings-node/index.header.d.ts");
    assert_eq!(quoted(&header, "export type OnTimeout = ", "\n"), policies);
    assert_eq!(quoted(&header, "export type ToolShape = ", "\n"), shapes);
    for event in &events {
        assert!(
            dts.contains(&format!("type: '{event}'")),
            "types.d.ts has no event of type {event}"
        );
    }
}
