//! PTY mode in Node: the terminal size of `run({ pty })`, typing keys by
//! name (`sendKeys`) and resizing a task's terminal (`resize`). The key
//! names and size rules are the core's (`agent_tasks::Key`,
//! `agent_tasks::terminal_size`).

use agent_tasks::Key;
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use crate::args::cells;
use crate::errors::CoreResultExt;
use crate::manager::NativeTaskManager;

#[napi]
impl NativeTaskManager {
    /// Types keys by name (`enter`, `tab`, `escape`, `up`, `ctrl+c`, …)
    /// into a task's input, mostly a PTY task's terminal.
    #[napi]
    pub fn send_keys(&self, id: String, keys: Vec<String>) -> napi::Result<()> {
        let keys = Key::parse_all(&keys).js()?;
        self.manager()?.send_keys(&id, &keys).js()
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
        let (cols, rows) = cells(cols, rows)?;
        let manager = self.manager()?;
        env.spawn_future(async move { manager.resize(&id, cols, rows).await.js() })
    }
}
