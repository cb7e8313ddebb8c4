//! Node.js binding of `agent-tasks` (napi-rs v3): the native layer under the
//! JS wrapper in `index.js`. It converts types and runtimes and nothing more;
//! the lifecycle rules live in the core crate.
//!
//! - `manager`: the `NativeTaskManager` class and its verbs (PTY mode's
//!   keys and resize too);
//! - `context`: JS async functions as tasks, and their context;
//! - `events`: the event stream (pull) and event listener (push);
//! - `values`: the values going out, the core's serde types as JS objects
//!   with camelCase keys (their TypeScript types, `types.d.ts`, and the
//!   factories of `shapes`, are generated from `schema/`);
//! - `options`: the options going in that the core reads (its option
//!   structs), and the core's rules the wrapper calls;
//! - `tools`: the model-facing tool definitions and `NativeToolBox`;
//! - `acp`: ACP agents as tasks (`nativeSpawnAcp`, wrapped by `runAcp`);
//! - `errors`: coded errors (`TASK_NOT_FOUND`, …).

#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

mod acp;
mod context;
mod errors;
mod events;
mod manager;
mod options;
mod shapes;
mod tools;
mod values;
