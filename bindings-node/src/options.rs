//! The options of the calls the core reads (a manager's, `run`'s and
//! `spawn`'s, a toolbox's, an ACP agent's): the wrapper (`index.js`) has
//! checked their names (`options.js`, generated) and renamed them to the
//! core's (`timeoutMs` is `timeout`, its value in milliseconds); here the
//! core reads them into its option structs ([`agent_tasks::parse_options`]),
//! which check every value and name the option in their errors (the
//! wrapper names it back in JavaScript's terms). Also the core's rules the
//! wrapper calls: "did you mean", and cutting output into lines.

use agent_tasks::{AcpOptions, ManagerOptions, TaskOptions, TimeUnit, ToolBoxOptions};
use napi::bindgen_prelude::Object;
use napi_derive::napi;
use serde::de::DeserializeOwned;

use crate::errors::CoreResultExt;

/// An option struct of the core whose times the wrapper gives in milliseconds.
pub(crate) trait CoreOptions: DeserializeOwned + Default {
    /// The unit of its times.
    fn unit(&mut self) -> &mut TimeUnit;

    /// The options of `call` (none given: the defaults), read by the core.
    fn read(call: &str, options: Option<Object>) -> napi::Result<Self> {
        let Some(options) = options else {
            return Ok(Self::default());
        };
        let mut read: Self = agent_tasks::parse_options_with(
            call,
            &mut napi::De::new(&options),
            // napi-rs's errors show their status first: the message alone.
            |e| e.reason.clone(),
        )
        .js()?;
        *read.unit() = TimeUnit::Millis;
        Ok(read)
    }
}

macro_rules! core_options {
    ($($t:ty),*) => {$(
        impl CoreOptions for $t {
            fn unit(&mut self) -> &mut TimeUnit {
                &mut self.unit
            }
        }
    )*};
}
core_options!(ManagerOptions, TaskOptions, ToolBoxOptions, AcpOptions);

/// The core's "did you mean" rule ([`agent_tasks::closest_name`]), for the
/// wrapper's check of option names: the known name closest to `given`.
#[napi]
// Registered with Node by napi-rs, which test builds leave out.
#[cfg_attr(test, allow(dead_code))]
pub fn closest_name(given: String, known: Vec<String>) -> Option<String> {
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    agent_tasks::closest_name(&given, &known).map(str::to_owned)
}

/// The core's rule for cutting output into lines ([`agent_tasks::LineSplitter`]),
/// for the wrapper's `lines()`. Internal.
#[napi]
#[derive(Default)]
pub struct NativeLineSplitter(agent_tasks::LineSplitter);

#[napi]
impl NativeLineSplitter {
    /// An empty splitter.
    #[napi(constructor)]
    pub fn new() -> Self {
        NativeLineSplitter::default()
    }

    /// The lines the next bytes end.
    #[napi]
    pub fn push(&mut self, bytes: napi::bindgen_prelude::BufferSlice) -> Vec<String> {
        self.0.push(&bytes)
    }

    /// The last line, once the stream has ended.
    #[napi]
    pub fn finish(&mut self) -> Option<String> {
        self.0.finish()
    }
}
