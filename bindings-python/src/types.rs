//! The core's wire types as typed, immutable Python objects. Each wraps the
//! core value and converts a field only when it is read, so returning one
//! (from `poll`, say) costs one allocation. `to_dict()` gives the wire form
//! (the same JSON shape as the core's `serde` output).

use agent_tasks::ForegroundOutcome;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use pyo3::IntoPyObjectExt;

use crate::convert::{from_json, to_dict};

/// A Python-style repr of a string.
pub(crate) fn q(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A Python-style repr of an optional value.
pub(crate) fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_string(), |v| v.to_string())
}

/// How a process ended.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct ExitInfo(pub(crate) agent_tasks::ExitInfo);

#[pymethods]
impl ExitInfo {
    /// The exit code, if it exited normally.
    #[getter]
    fn code(&self) -> Option<i32> {
        self.0.code
    }

    /// The signal that killed it, if any.
    #[getter]
    fn signal(&self) -> Option<i32> {
        self.0.signal
    }

    /// The wire form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "ExitInfo(code={}, signal={})",
            opt(self.0.code),
            opt(self.0.signal)
        )
    }
}

/// Why a task was asked to stop.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct CancelReason(pub(crate) agent_tasks::CancelReason);

#[pymethods]
impl CancelReason {
    /// What asked for the stop: `user`, `timeout`, `shutdown`, `owner_closed`, `stalled` or `external`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.0.kind.as_str()
    }

    /// Free text from whoever asked.
    #[getter]
    fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    /// The wire form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0)
    }

    fn __str__(&self) -> String {
        self.0.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "CancelReason(kind={}, message={})",
            q(self.0.kind.as_str()),
            opt(self.0.message.as_deref().map(q))
        )
    }
}

/// Byte counts and state of a task's output stream.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct OutputStats(pub(crate) agent_tasks::OutputStats);

#[pymethods]
impl OutputStats {
    /// Bytes the task has written in all.
    #[getter]
    fn total_bytes(&self) -> u64 {
        self.0.total_bytes
    }
    /// Of those, bytes written to stdout.
    #[getter]
    fn stdout_bytes(&self) -> u64 {
        self.0.stdout_bytes
    }
    /// Of those, bytes written to stderr.
    #[getter]
    fn stderr_bytes(&self) -> u64 {
        self.0.stderr_bytes
    }
    /// Whether the output has been spilled to `output.log`.
    #[getter]
    fn spilled(&self) -> bool {
        self.0.spilled
    }
    /// Bytes of the stream stored in `output.log` from its start.
    #[getter]
    fn disk_bytes(&self) -> u64 {
        self.0.disk_bytes
    }
    /// Bytes that are neither on disk nor in memory (disk cap or disk error).
    #[getter]
    fn omitted_bytes(&self) -> u64 {
        self.0.omitted_bytes
    }
    /// Bytes the output buffer holds in memory now.
    #[getter]
    fn memory_bytes(&self) -> u64 {
        self.0.memory_bytes
    }
    /// The last disk write error, if writing the log failed.
    #[getter]
    fn write_error(&self) -> Option<&str> {
        self.0.write_error.as_deref()
    }
    /// Path of `output.log`, once spilled.
    #[getter]
    fn log_path(&self) -> Option<&str> {
        self.0.log_path.as_deref()
    }

    /// The wire form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "OutputStats(total_bytes={}, spilled={}, omitted_bytes={})",
            self.0.total_bytes,
            if self.0.spilled { "True" } else { "False" },
            self.0.omitted_bytes
        )
    }
}

/// Everything known about a task at one moment.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct TaskInfo(pub(crate) agent_tasks::TaskInfo);

#[pymethods]
impl TaskInfo {
    /// The task's id.
    #[getter]
    fn id(&self) -> &str {
        self.0.id.as_str()
    }
    /// Its kind (`process`, `fn`, or the kind given to `spawn`).
    #[getter]
    fn kind(&self) -> &str {
        &self.0.kind
    }
    /// A one-line description.
    #[getter]
    fn description(&self) -> &str {
        &self.0.description
    }
    /// The session that owns it.
    #[getter]
    fn owner(&self) -> &str {
        &self.0.owner
    }
    /// `running`, `completed`, `failed`, `cancelled`, `timed_out`, `lost` or `queued`.
    #[getter]
    fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// True once the task has ended (the status will not change again).
    #[getter]
    fn is_terminal(&self) -> bool {
        self.0.status.is_terminal()
    }
    /// True while it runs in the foreground.
    #[getter]
    fn foreground(&self) -> bool {
        self.0.foreground
    }
    /// True once it was moved from the foreground to the background.
    #[getter]
    fn detached(&self) -> bool {
        self.0.detached
    }
    /// Left running by `shutdown`.
    #[getter]
    fn keep_alive(&self) -> bool {
        self.0.keep_alive
    }
    /// True while its processes are stopped by `pause` (until `resume`).
    #[getter]
    fn paused(&self) -> bool {
        self.0.paused
    }
    /// When it was spawned (milliseconds since the Unix epoch).
    #[getter]
    fn created_at_ms(&self) -> u64 {
        self.0.created_at_ms
    }
    /// When it ended (milliseconds since the Unix epoch).
    #[getter]
    fn finished_at_ms(&self) -> Option<u64> {
        self.0.finished_at_ms
    }
    /// Run time so far, or in all once it ended.
    #[getter]
    fn duration_ms(&self) -> u64 {
        self.0.duration_ms
    }
    /// Process (group) id, for process tasks.
    #[getter]
    fn pid(&self) -> Option<u32> {
        self.0.pid
    }
    /// Set when the task was found lost after a restart but its process
    /// still runs: that process's id (`kill_orphan` ends it).
    #[getter]
    fn orphan_pid(&self) -> Option<u32> {
        self.0.orphan_pid
    }
    /// How a process task's processes are contained: `cgroup`, `subreaper`
    /// or `process_group`.
    #[getter]
    fn containment(&self) -> Option<&'static str> {
        self.0.containment.map(|c| c.as_str())
    }
    /// How the process ended.
    #[getter]
    fn exit(&self) -> Option<ExitInfo> {
        self.0.exit.map(ExitInfo)
    }
    /// Why it was asked to stop, if it was.
    #[getter]
    fn cancel_reason(&self) -> Option<CancelReason> {
        self.0.cancel_reason.clone().map(CancelReason)
    }
    /// The error of a failed task (for a Python task: its traceback).
    #[getter]
    fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// The last error of a host sink.
    #[getter]
    fn sink_error(&self) -> Option<&str> {
        self.0.sink_error.as_deref()
    }
    /// Its output stream's counts.
    #[getter]
    fn output(&self) -> OutputStats {
        OutputStats(self.0.output.clone())
    }

    /// The wire form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "TaskInfo(id={}, status={}, description={})",
            q(self.0.id.as_str()),
            q(self.0.status.as_str()),
            q(&self.0.description)
        )
    }
}

/// How a task ended.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct TaskResult(pub(crate) agent_tasks::TaskResult);

#[pymethods]
impl TaskResult {
    /// The task's id.
    #[getter]
    fn id(&self) -> &str {
        self.0.id.as_str()
    }
    /// Its terminal status.
    #[getter]
    fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// How the process ended (process tasks).
    #[getter]
    fn exit(&self) -> Option<ExitInfo> {
        self.0.exit.map(ExitInfo)
    }
    /// The value a function task returned (converted from JSON).
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.0.value {
            Some(v) => from_json(py, v),
            None => Ok(py.None().into_bound(py)),
        }
    }
    /// The error of a failed task (for a Python task: its traceback).
    #[getter]
    fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// Why it was stopped, for `cancelled` and `timed_out`.
    #[getter]
    fn cancel_reason(&self) -> Option<CancelReason> {
        self.0.cancel_reason.clone().map(CancelReason)
    }
    /// Run time in milliseconds.
    #[getter]
    fn duration_ms(&self) -> u64 {
        self.0.duration_ms
    }
    /// Its output stream's final counts.
    #[getter]
    fn output(&self) -> OutputStats {
        OutputStats(self.0.output.clone())
    }
    /// What it changed in its tracked folder (`track_changes`), if tracked.
    #[getter]
    fn changed_files(&self) -> Option<ChangedFiles> {
        self.0.changed_files.clone().map(ChangedFiles)
    }

    /// The wire form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "TaskResult(id={}, status={}, exit_code={})",
            q(self.0.id.as_str()),
            q(self.0.status.as_str()),
            opt(self.0.exit.and_then(|e| e.code))
        )
    }
}

/// What a task changed in its tracked folder (paths relative to it).
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct ChangedFiles(pub(crate) agent_tasks::ChangedFiles);

#[pymethods]
impl ChangedFiles {
    /// The folder that was tracked.
    #[getter]
    fn root(&self) -> &str {
        &self.0.root
    }
    /// Files that exist now and did not before.
    #[getter]
    fn created(&self) -> Vec<String> {
        self.0.created.clone()
    }
    /// Files whose size or modification time changed.
    #[getter]
    fn modified(&self) -> Vec<String> {
        self.0.modified.clone()
    }
    /// Files that existed before and do not now.
    #[getter]
    fn deleted(&self) -> Vec<String> {
        self.0.deleted.clone()
    }
    /// True if the folder held more files than a snapshot looks at.
    #[getter]
    fn truncated(&self) -> bool {
        self.0.truncated
    }

    /// The wire form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "ChangedFiles(created={}, modified={}, deleted={})",
            self.0.created.len(),
            self.0.modified.len(),
            self.0.deleted.len()
        )
    }
}

/// A wait's answer when the task has ended: `state` is `finished`, with
/// the `result`. `collect` gives it (a `collect` whose time runs out raises
/// `TimeoutError`), and so does `wait_foreground` when the task ended in the
/// foreground.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct Finished(pub(crate) agent_tasks::TaskResult);

#[pymethods]
impl Finished {
    /// Always `finished`: the tag that tells it from `Detached`.
    #[getter]
    fn state(&self) -> &'static str {
        "finished"
    }
    /// Always true (false on `Detached`).
    #[getter]
    fn finished(&self) -> bool {
        true
    }
    /// How the task ended.
    #[getter]
    fn result(&self) -> TaskResult {
        TaskResult(self.0.clone())
    }
    /// Always `None` (the info of a task still running is on `Detached`).
    #[getter]
    fn info(&self) -> Option<TaskInfo> {
        None
    }
    /// The task's terminal status.
    #[getter]
    fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// The task's id.
    #[getter]
    fn id(&self) -> &str {
        self.0.id.as_str()
    }
    /// The wire form as a dict (`{"state": "finished", ...the result}`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &ForegroundOutcome::Finished(self.0.clone()))
    }

    fn __repr__(&self) -> String {
        format!(
            "Finished(id={}, status={})",
            q(self.0.id.as_str()),
            q(self.0.status.as_str())
        )
    }
}

/// `wait_foreground`'s answer when the task was moved to the background
/// (by `detach` or a foreground timeout) or started there: `state` is
/// `detached`, with the task's `info`; it goes on running.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct Detached(pub(crate) agent_tasks::TaskInfo);

#[pymethods]
impl Detached {
    /// Always `detached`: the tag that tells it from `Finished`.
    #[getter]
    fn state(&self) -> &'static str {
        "detached"
    }
    /// Always false (true on `Finished`).
    #[getter]
    fn finished(&self) -> bool {
        false
    }
    /// Always `None`: the task has not ended.
    #[getter]
    fn result(&self) -> Option<TaskResult> {
        None
    }
    /// The task's info when it left the foreground.
    #[getter]
    fn info(&self) -> TaskInfo {
        TaskInfo(self.0.clone())
    }
    /// The task's status then (`running`).
    #[getter]
    fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// The task's id.
    #[getter]
    fn id(&self) -> &str {
        self.0.id.as_str()
    }
    /// The wire form as a dict (`{"state": "detached", ...the info}`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &ForegroundOutcome::Detached(self.0.clone()))
    }

    fn __repr__(&self) -> String {
        format!(
            "Detached(id={}, status={})",
            q(self.0.id.as_str()),
            q(self.0.status.as_str())
        )
    }
}

/// A foreground wait's answer, handed to Python as `Finished` or `Detached`.
pub(crate) struct ForegroundAnswer(pub(crate) ForegroundOutcome);

impl<'py> IntoPyObject<'py> for ForegroundAnswer {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            ForegroundOutcome::Finished(r) => Finished(r).into_bound_py_any(py),
            ForegroundOutcome::Detached(i) => Detached(i).into_bound_py_any(py),
        }
    }
}

/// A run of bytes of one stream inside a poll window.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct StreamSpan(pub(crate) agent_tasks::StreamSpan);

#[pymethods]
impl StreamSpan {
    /// Offset of the first byte in the task's stream.
    #[getter]
    fn offset(&self) -> u64 {
        self.0.offset
    }
    /// Length in bytes.
    #[getter]
    fn len(&self) -> u64 {
        self.0.len
    }
    /// `stdout`, `stderr` or a task-defined stream name.
    #[getter]
    fn stream(&self) -> &str {
        self.0.stream.as_str()
    }

    /// The wire form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "StreamSpan(offset={}, len={}, stream={})",
            self.0.offset,
            self.0.len,
            q(self.0.stream.as_str())
        )
    }
}

/// The answer to `poll`: the task's info and the output written since a
/// cursor, with the cursor to poll from next.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct PollResult(pub(crate) agent_tasks::PollResponse);

#[pymethods]
impl PollResult {
    /// The task's info now.
    #[getter]
    fn info(&self) -> TaskInfo {
        TaskInfo(self.0.info.clone())
    }
    /// The task's status now.
    #[getter]
    fn status(&self) -> &'static str {
        self.0.info.status.as_str()
    }
    /// Offset of the first returned byte (past any omitted bytes).
    #[getter]
    fn cursor(&self) -> u64 {
        self.0.cursor
    }
    /// Where to poll from next.
    #[getter]
    fn next_cursor(&self) -> u64 {
        self.0.next_cursor
    }
    /// Bytes between the requested cursor and `cursor` that no longer exist.
    #[getter]
    fn omitted_bytes(&self) -> u64 {
        self.0.omitted_bytes
    }
    /// True when the task has ended and `next_cursor` is the end of its output.
    #[getter]
    fn eof(&self) -> bool {
        self.0.eof
    }
    /// True when a waiting poll's timeout passed with nothing past the cursor.
    #[getter]
    fn timed_out(&self) -> bool {
        self.0.timed_out
    }
    /// The output bytes.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.data)
    }
    /// The output decoded as UTF-8, invalid bytes replaced.
    #[getter]
    fn text(&self) -> String {
        self.0.text()
    }
    /// Which streams the returned bytes came from.
    #[getter]
    fn spans<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.0.spans.iter().cloned().map(StreamSpan))
    }

    /// The wire form as a dict (output as `text`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "PollResult(id={}, status={}, cursor={}, next_cursor={}, eof={})",
            q(self.0.info.id.as_str()),
            q(self.0.info.status.as_str()),
            self.0.cursor,
            self.0.next_cursor,
            if self.0.eof { "True" } else { "False" }
        )
    }
}

/// The start and the end of a task's output.
#[pyclass(frozen, module = "agent_tasks._native")]
pub struct Preview(pub(crate) agent_tasks::Preview);

#[pymethods]
impl Preview {
    /// The first bytes of the stream.
    #[getter]
    fn head<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.head)
    }
    /// The last bytes of the stream (never overlapping the head).
    #[getter]
    fn tail<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.tail)
    }
    /// Bytes between head and tail that are not shown.
    #[getter]
    fn omitted_bytes(&self) -> u64 {
        self.0.omitted_bytes
    }
    /// The stream's total length.
    #[getter]
    fn total_bytes(&self) -> u64 {
        self.0.total_bytes
    }
    /// Head and tail as text, joined by `[... N bytes omitted ...]`.
    #[getter]
    fn text(&self) -> String {
        self.0.text()
    }

    /// The wire form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "Preview(total_bytes={}, omitted_bytes={})",
            self.0.total_bytes, self.0.omitted_bytes
        )
    }
}
