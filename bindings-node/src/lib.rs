//! Node.js binding of `agent-tasks` (napi-rs v3): the native layer under the
//! JS wrapper in `index.js`. It converts types and runtimes and nothing more;
//! the lifecycle rules live in the core crate.
//!
//! - `manager`: the `NativeTaskManager` class and its verbs;
//! - `context`: JS async functions as tasks, and their context;
//! - `events`: the event stream (pull) and event listener (push);
//! - `conversion`: the plain objects that cross the boundary;
//! - `shapes`: fast construction of the objects `poll` returns;
//! - `tools`: the model-facing tool definitions and `NativeToolBox`;
//! - `acp`: ACP agents as tasks (`nativeSpawnAcp`, wrapped by `runAcp`);
//! - `errors`: coded errors (`TASK_NOT_FOUND`, …).

#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

mod acp;
mod context;
mod conversion;
mod errors;
mod events;
mod manager;
mod shapes;
mod tools;
