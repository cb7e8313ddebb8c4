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
//! - `options`: the option objects going in (generated, with the wrapper's
//!   table of options, by `scripts/gen_node_options.py`);
//! - `args`: those options parsed into the core's settings, through
//!   `convert` (counts, milliseconds, names);
//! - `tools`: the model-facing tool definitions and `NativeToolBox`;
//! - `acp`: ACP agents as tasks (`nativeSpawnAcp`, wrapped by `runAcp`);
//! - `errors`: coded errors (`TASK_NOT_FOUND`, …).

#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

mod acp;
mod args;
mod context;
mod convert;
mod errors;
mod events;
mod manager;
mod options;
mod shapes;
mod tools;
mod values;
