//! Where a task's output goes: the [`Stream`] tag on each chunk and the
//! [`Sink`] trait that receives chunks. The manager gives every task its
//! bounded output buffer as the standard sink; hosts add their own (a UI tee,
//! tracing) per task or per manager.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The stream an output chunk belongs to: `stdout`, `stderr`, or a
/// task-defined log stream such as `"progress"`.
///
/// Serialised as a plain string.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Stream(Cow<'static, str>);

impl Stream {
    /// Standard output.
    pub const STDOUT: Stream = Stream(Cow::Borrowed("stdout"));
    /// Standard error.
    pub const STDERR: Stream = Stream(Cow::Borrowed("stderr"));

    /// A task-defined stream; `"stdout"` and `"stderr"` give the standard ones.
    pub fn named(name: impl Into<String>) -> Stream {
        Stream::from(name.into())
    }

    /// The stream's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for standard error.
    pub fn is_stderr(&self) -> bool {
        self.0 == "stderr"
    }
}

impl schemars::JsonSchema for Stream {
    fn schema_name() -> Cow<'static, str> {
        "Stream".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An output stream: `stdout`, `stderr`, or a task-defined name.",
            "type": "string"
        })
    }
}

impl From<String> for Stream {
    fn from(name: String) -> Self {
        match name.as_str() {
            "stdout" => Stream::STDOUT,
            "stderr" => Stream::STDERR,
            _ => Stream(Cow::Owned(name)),
        }
    }
}

impl From<&str> for Stream {
    fn from(name: &str) -> Self {
        Stream::from(name.to_string())
    }
}

impl From<Stream> for String {
    fn from(s: Stream) -> String {
        s.0.into_owned()
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stream({})", self.0)
    }
}

/// Receives a task's output chunks, in order, as the task writes them.
///
/// `write` is called on the task's own path, so a slow sink slows the task
/// (this is what keeps memory bounded). A sink that fails returns an error;
/// the manager reports it (in the task info, and as an event) and the task
/// goes on.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use agent_tasks::{Sink, Stream};
///
/// #[derive(Default)]
/// struct Collect(Mutex<Vec<u8>>);
///
/// impl Sink for Collect {
///     fn write(&self, _stream: &Stream, bytes: &[u8]) -> std::io::Result<()> {
///         self.0.lock().unwrap().extend_from_slice(bytes);
///         Ok(())
///     }
/// }
/// ```
pub trait Sink: Send + Sync + 'static {
    /// Takes one chunk of output of `stream`.
    fn write(&self, stream: &Stream, bytes: &[u8]) -> std::io::Result<()>;

    /// Called once when the task has ended and no more output will come.
    fn close(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A shared, type-erased sink.
pub type SharedSink = Arc<dyn Sink>;

impl Default for Stream {
    /// Standard output, where output goes when no stream is named.
    fn default() -> Self {
        Stream::STDOUT
    }
}

impl std::str::FromStr for Stream {
    type Err = std::convert::Infallible;

    /// Any name is a stream: `stdout` and `stderr` are the standard ones,
    /// anything else a task-defined stream.
    ///
    /// ```
    /// use agent_tasks::Stream;
    /// assert_eq!("stderr".parse::<Stream>(), Ok(Stream::STDERR));
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Stream::from(s))
    }
}
