//! The core's [`agent_tasks::LineSplitter`] for `agent_tasks.LineStream`:
//! where a line ends, and how it is decoded, is the core's one rule.

use pyo3::prelude::*;

/// Cuts a byte stream, given in pieces, into lines of text.
#[pyclass(module = "agent_tasks._native")]
#[derive(Default)]
pub struct LineSplitter(agent_tasks::LineSplitter);

#[pymethods]
impl LineSplitter {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes and returns the lines they end, in order (the
    /// i-th ends at the i-th `\n` of `data`).
    fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.0.push(data)
    }

    /// The stream has ended: the last line, if bytes followed the last `\n`.
    fn finish(&mut self) -> Option<String> {
        self.0.finish()
    }
}

/// The name of `known` closest to `given`, for a "did you mean" hint (the
/// core's [`agent_tasks::closest_name`]).
#[pyfunction]
pub fn closest_name(given: &str, known: Vec<String>) -> Option<String> {
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    agent_tasks::closest_name(given, &known).map(str::to_string)
}
