//! PTY mode in Node: the terminal size of `run({ pty })`, typing keys by
//! name (`sendKeys`) and resizing a task's terminal (`resize`). The key
//! names and size rules are the core's (`agent_tasks::Key`,
//! `agent_tasks::terminal_size`).

use agent_tasks::Key;
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use crate::args::size;
use crate::errors::CoreResultExt;
use crate::manager::NativeTaskManager;

/// The size of a task's terminal, in character cells.
#[napi(object, object_to_js = false)]
pub struct TerminalSize {
    /// Columns (1 to 65535).
    pub cols: f64,
    /// Rows (1 to 65535).
    pub rows: f64,
}

impl TerminalSize {
    /// Checked by the core's rule; a bad number names `pty.cols` or `pty.rows`.
    pub(crate) fn cells(&self) -> napi::Result<(u16, u16)> {
        cells(&self.cols, &self.rows)
    }
}

fn cells(cols: &f64, rows: &f64) -> napi::Result<(u16, u16)> {
    let cols = size("cols", *cols)? as u64;
    let rows = size("rows", *rows)? as u64;
    agent_tasks::terminal_size(cols, rows).js()
}

#[napi]
impl NativeTaskManager {
    /// Types keys by name (`enter`, `tab`, `escape`, `up`, `ctrl+c`, …)
    /// into a task's input, mostly a PTY task's terminal.
    #[napi]
    pub fn send_keys(&self, id: String, keys: Vec<String>) -> napi::Result<()> {
        let keys = Key::parse_all(&keys).js()?;
        self.core()?.send_keys(&id, &keys).js()
    }

    /// Resizes a PTY task's terminal (the program gets SIGWINCH).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn resize<'env>(
        &self,
        env: &'env Env,
        id: String,
        cols: f64,
        rows: f64,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let (cols, rows) = cells(&cols, &rows)?;
        let manager = self.core()?;
        env.spawn_future(async move { manager.resize(&id, cols, rows).await.js() })
    }
}
