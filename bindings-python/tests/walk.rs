//! The unit tests of `src/walk.rs`, which is plain serde: the crate itself
//! is a Python extension without a Rust test harness (it would have to link
//! libpython).

#[allow(dead_code)]
#[path = "../src/walk.rs"]
mod walk;
