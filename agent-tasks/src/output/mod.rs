//! A task's output stream: one ordered byte stream, addressed by offsets,
//! that lives in memory while the task is in the foreground and small, and
//! spills to `<task dir>/output.log` on detach, on overflow of the memory
//! limit, or from the start for background tasks. After a spill only a bounded
//! tail stays in memory. The log is capped too: past `disk_limit` it keeps its
//! head, the tail ring keeps the end, and when the stream finishes the tail is
//! appended behind a `[... N bytes omitted ...]` marker.
//!
//! This module is bookkeeping plus I/O and nothing else: it never calls out
//! to whoever owns the task. Every call that can change something returns
//! what happened ([`Report`]) once its locks are released, and the caller acts
//! on it (announces a spill, saves the manifest, schedules a flush).
//!
//! Two locks: producers hold `writer` for the whole append (so the stream has
//! one order and a disk write never races a spill); readers take only `view`,
//! and read log bytes outside it (bytes once in the log never change). The
//! view is changed only in one step per append, after the bytes are where it
//! says they are, so a reader racing a spill, a flush or the cap never sees a
//! gap that is not a real loss.
//!
//! File descriptors: the log is open only while the stream is spilled and not
//! finished (one descriptor, shared by the writer and the readers). A finished
//! stream holds none: reads open the log, read, and close it.
//!
//! Memory of an ended stream: at most [`ENDED_OUTPUT_MEMORY`] bytes. A
//! stream that ends in memory (a foreground task under its memory limit)
//! with more than that is moved to its log at the end, like a spill, so
//! reads go on giving the same bytes, from the log; if the log cannot be
//! written (or could not hold it all, under a small disk cap), the bytes
//! stay in memory rather than be lost. An ended spilled stream whose log is
//! whole frees its tail window.
//!
//! A supervised task's log is written by its supervisor process, which runs
//! this same code; the host keeps a *mirror* ([`OutputBuffer::mirror`]): it
//! is given the same chunks in the same order after the supervisor wrote
//! them, so it reaches the same view (the same head, cap and tail), but it
//! writes nothing and reads log bytes from the file the supervisor wrote.

mod page;
mod tail_ring;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::info::{omitted_marker, OutputStats, Preview, StreamSpan};
use crate::root_dir::{Access, Folder};
use crate::sink::Stream;
use crate::util::lock;

pub(crate) use page::{complete_utf8_len, leading_continuation_bytes, Page};
use tail_ring::TailRing;

/// Stream transitions remembered for `poll` spans; older ones are forgotten.
const MAX_SPANS: usize = 8192;
/// Small writes to the log are gathered up to this many bytes (and at most
/// half the tail window, so gathered bytes are always readable from the
/// tail)...
const COALESCE_MAX: usize = 64 * 1024;
/// ...for at most this long, so a crash loses at most this much output.
pub(crate) const FLUSH_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

/// The most bytes of output an ended task keeps in memory (a foreground
/// task that ended with more under its memory limit has it moved to its
/// log at the end), unless its log could not be written: then its output
/// stays in memory rather than be lost. Reads give the same bytes either
/// way. 300 ended commands of 256 KiB each hold 4.8 MiB, not 77 MB.
pub const ENDED_OUTPUT_MEMORY: usize = 16 * 1024;

/// The log's name in the task's folder.
const LOG_FILE: &str = "output.log";

/// The line put between the kept head and tail in a capped log.
fn marker_line(omitted: u64) -> String {
    format!("\n{}\n", omitted_marker(omitted))
}

/// Sizes that bound a task's output.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutputLimits {
    pub memory_limit: usize,
    pub disk_limit: u64,
    pub tail_window: usize,
    /// Whether small writes may be gathered (the caller can flush them).
    pub gather: bool,
    /// Record when output was last written (only stall detection needs it,
    /// so other tasks skip the clock read on every write).
    pub track_activity: bool,
}

impl OutputLimits {
    /// Bytes of the stream the log keeps from its start; the rest of the
    /// disk budget is left for the tail written at the end.
    fn head_cap(&self) -> u64 {
        let tail_reserve = (self.tail_window as u64).min(self.disk_limit / 2);
        self.disk_limit - tail_reserve
    }

    /// Bytes past the cap between two saves of the counts: a crash loses
    /// at most this much of the count (between 1 and 64 MiB, with the cap).
    fn checkpoint_every(&self) -> u64 {
        self.disk_limit.clamp(1 << 20, 64 << 20)
    }

    fn coalesce_limit(&self) -> usize {
        if self.gather {
            (self.tail_window / 2).min(COALESCE_MAX)
        } else {
            0
        }
    }
}

/// Something that happened to the stream that its owner should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OutputEvent {
    /// Buffered bytes were moved to the log.
    Spilled { buffered: u64 },
    /// The log reached its cap; later bytes are kept only in the tail.
    CapReached { disk_bytes: u64 },
    /// The count of bytes past the cap grew by a checkpoint's worth since
    /// the last one: save the counts, so a crash loses at most that much of
    /// them (the bytes themselves exist only in the tail until the end).
    Checkpoint,
    /// Writing the log failed; nothing more is written to it.
    WriteFailed(String),
    /// A host sink failed (first failure only; reported by the writer).
    HostSinkFailed(String),
}

/// What a call that changes the stream did.
#[derive(Debug, Default)]
#[must_use = "the caller acts on what happened"]
pub(crate) struct Report {
    /// Events to announce, in order.
    pub events: Vec<OutputEvent>,
    /// Bytes were gathered for the log: call [`OutputBuffer::flush`] within
    /// [`FLUSH_DELAY`].
    pub flush_needed: bool,
}

impl Report {
    fn push(&mut self, event: OutputEvent) {
        self.events.push(event);
    }

    fn failed(&mut self, result: std::result::Result<(), String>) {
        if let Err(err) = result {
            self.push(OutputEvent::WriteFailed(err));
        }
    }
}

/// One chunk read back from the stream.
#[derive(Debug)]
pub(crate) struct ReadChunk {
    /// Offset of the first byte of `data` (past any omitted bytes).
    pub cursor: u64,
    pub data: Vec<u8>,
    /// Bytes between the asked cursor and `cursor` that no longer exist.
    pub omitted: u64,
    /// The end of the stream when this was read.
    pub end: u64,
    /// True when the stream was finished when this was read.
    pub finished: bool,
    pub spans: Vec<StreamSpan>,
}

#[derive(Debug, Default)]
struct Writer {
    /// The log is written by another process (a supervisor) running this
    /// same code on the same chunks: this buffer only keeps the view.
    external: bool,
    spilled: bool,
    finished: bool,
    file: Option<Arc<File>>,
    disk_len: u64,
    disk_failed: bool,
    cap_reported: bool,
    /// Past the cap: the stream's length at which the next
    /// [`OutputEvent::Checkpoint`] is due.
    next_checkpoint: u64,
    /// Bytes of the stream gathered for the log but not written yet.
    pending: Vec<u8>,
    flush_needed: bool,
}

/// A stream's state as a mirror continues from it (see
/// [`OutputBuffer::snapshot`]): sent by a supervisor to a host that
/// attaches.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct OutputSnapshot {
    pub total: u64,
    pub stdout: u64,
    pub stderr: u64,
    pub disk_len: u64,
    pub disk_failed: bool,
    pub cap_reported: bool,
    pub next_checkpoint: u64,
    pub write_error: Option<String>,
    /// `(offset, stream)` at every change of stream still remembered.
    pub spans: Vec<(u64, Stream)>,
    /// The tail window's bytes: the stream's last `tail.len()` bytes
    /// (carried beside the rest as raw bytes, not in its JSON).
    #[serde(skip)]
    pub tail: Vec<u8>,
}

/// Where a finished stream's tail is in a capped log: behind the head and
/// the omitted marker, stream bytes `[from, total)` start at byte
/// `file_offset` of the log.
#[derive(Debug, Clone, Copy)]
struct TailInLog {
    from: u64,
    file_offset: u64,
}

#[derive(Debug)]
struct View {
    total: u64,
    stdout: u64,
    stderr: u64,
    spilled: bool,
    finished: bool,
    /// The whole stream, while not spilled. Shared only by a spill in
    /// progress (which holds the writer lock, so no write changes it then).
    memory: Arc<Vec<u8>>,
    /// The end of the stream, once spilled (empty once it is in the log).
    ring: TailRing,
    /// Set when a finished stream's tail was written behind the marker.
    tail_in_log: Option<TailInLog>,
    /// Stream bytes `[0, disk_len)` are in the log at the same offsets.
    disk_len: u64,
    /// Once the cap is reached: the head the log keeps (see
    /// [`OutputBuffer::capped_head`]).
    log_head: Option<u64>,
    /// A stream read back from a task that was lost: its end is the last
    /// count saved, and what it printed after that is unknown, so a cursor
    /// past that end (one a reader held before the crash) reads as the end
    /// instead of being refused.
    end_unknown: bool,
    /// The log, while it is open for writing; readers share it.
    file: Option<Arc<File>>,
    /// Whether a log exists (for `log_path` in the stats).
    has_log: bool,
    write_error: Option<String>,
    /// `(offset, stream)` at every change of stream.
    spans: VecDeque<(u64, Stream)>,
    last_write: Option<tokio::time::Instant>,
    track_activity: bool,
}

/// The bounded output buffer of one task.
pub(crate) struct OutputBuffer {
    limits: OutputLimits,
    /// The task's folder, through the locked root's descriptor.
    dir: Folder,
    writer: Mutex<Writer>,
    view: Mutex<View>,
    growth: Growth,
}

/// A cheap signal of new output, for readiness waits. The write path only
/// reads a counter (no lock, no allocation) unless someone waits.
#[derive(Debug, Default)]
pub(crate) struct Growth {
    notify: tokio::sync::Notify,
    waiters: std::sync::atomic::AtomicUsize,
}

impl Growth {
    fn bump(&self) {
        if self.waiters.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// The future a waiter awaits; create (and `enable`) it before checking
    /// the output, so no write between the check and the await is missed.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

/// Keeps the growth signal armed while it lives.
pub(crate) struct GrowthWatch<'a>(&'a Growth);

impl Drop for GrowthWatch<'_> {
    fn drop(&mut self) {
        self.0
            .waiters
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl std::fmt::Debug for OutputBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputBuffer")
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl OutputBuffer {
    /// A buffer whose log, once spilled, is `dir/output.log` (`dir` is
    /// reached through the root's descriptor; unit tests may name it by
    /// path). With `spilled_from_start`, output goes to disk from the first
    /// byte.
    pub(crate) fn new(
        dir: impl Into<Folder>,
        limits: OutputLimits,
        spilled_from_start: bool,
    ) -> Self {
        OutputBuffer {
            limits,
            dir: dir.into(),
            writer: Mutex::new(Writer {
                spilled: spilled_from_start,
                ..Writer::default()
            }),
            view: Mutex::new(View {
                total: 0,
                stdout: 0,
                stderr: 0,
                spilled: spilled_from_start,
                finished: false,
                memory: Arc::new(Vec::new()),
                ring: TailRing::new(limits.tail_window),
                tail_in_log: None,
                disk_len: 0,
                log_head: None,
                end_unknown: false,
                file: None,
                has_log: false,
                write_error: None,
                spans: VecDeque::new(),
                last_write: None,
                track_activity: limits.track_activity,
            }),
            growth: Growth::default(),
        }
    }

    /// Arms the growth signal until the guard is dropped: from then on every
    /// write wakes [`OutputBuffer::growth`]'s waiters.
    pub(crate) fn watch_growth(&self) -> GrowthWatch<'_> {
        self.growth
            .waiters
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        GrowthWatch(&self.growth)
    }

    /// The signal of new output (see [`OutputBuffer::watch_growth`]).
    pub(crate) fn growth(&self) -> &Growth {
        &self.growth
    }

    /// A finished stream read back from a task folder: `stats` as saved in
    /// the manifest. With `unfinished` (the task was lost) the saved counts
    /// are a lower bound, saved at the last spill, cap or checkpoint: the
    /// log's head is its bytes (up to `log_head`, where the cap was
    /// reached), the end is the larger of the saved count and the head, and
    /// what lies between is reported omitted: a gap is never hidden. Opens
    /// no file: it only asks for the log's length.
    pub(crate) fn restore(
        dir: impl Into<Folder>,
        limits: OutputLimits,
        stats: &OutputStats,
        unfinished: bool,
        log_head: Option<u64>,
    ) -> Self {
        let buffer = OutputBuffer::new(dir, limits, true);
        let file_len = buffer.dir.file_len(LOG_FILE).unwrap_or(0);
        {
            let mut w = lock(&buffer.writer);
            w.finished = true;
            let mut v = lock(&buffer.view);
            v.finished = true;
            v.has_log = file_len > 0;
            if unfinished {
                // Past a reached cap the log may hold a trailer the end
                // began to write: only the head counts.
                let head = log_head.map_or(file_len, |head| head.min(file_len));
                v.disk_len = head;
                v.total = stats.total_bytes.max(head);
                v.log_head = log_head;
                v.end_unknown = true;
            } else if !stats.spilled || stats.disk_bytes >= stats.total_bytes {
                v.total = stats.total_bytes.min(file_len);
                v.disk_len = v.total;
            } else {
                v.total = stats.total_bytes;
                v.disk_len = stats.disk_bytes.min(file_len);
                let from = stats.disk_bytes + stats.omitted_bytes;
                let file_offset = if stats.omitted_bytes > 0 {
                    stats.disk_bytes + marker_line(stats.omitted_bytes).len() as u64
                } else {
                    stats.disk_bytes
                };
                // The tail is in the log only if the trailer was written whole.
                if file_len >= file_offset + (stats.total_bytes - from) {
                    v.tail_in_log = Some(TailInLog { from, file_offset });
                }
            }
            v.stdout = stats.stdout_bytes;
            v.stderr = stats.stderr_bytes;
            v.write_error = stats.write_error.clone();
        }
        buffer
    }

    /// Once the cap is reached, the length of the head the log keeps: saved
    /// with the counts, so a restore knows which of the log's bytes are the
    /// stream's.
    pub(crate) fn capped_head(&self) -> Option<u64> {
        lock(&self.view).log_head
    }

    /// What a mirror needs to continue from this stream's state now: its
    /// counts, its log's head and cap, its stream changes, and its tail.
    pub(crate) fn snapshot(&self) -> OutputSnapshot {
        let w = lock(&self.writer);
        let v = lock(&self.view);
        let mut tail = Vec::with_capacity(v.ring.len());
        v.ring.copy_range(0, v.ring.len(), &mut tail);
        OutputSnapshot {
            total: v.total,
            stdout: v.stdout,
            stderr: v.stderr,
            disk_len: w.disk_len,
            disk_failed: w.disk_failed,
            cap_reported: w.cap_reported,
            next_checkpoint: w.next_checkpoint,
            write_error: v.write_error.clone(),
            spans: v.spans.iter().cloned().collect(),
            tail,
        }
    }

    /// A mirror of a stream whose log another process writes (a task's
    /// supervisor), continuing from `snapshot` (a stream with no output
    /// yet: [`OutputSnapshot::default`]). Chunks given to it afterwards must
    /// be the ones the writer wrote, in its order, after it wrote them.
    pub(crate) fn mirror(
        dir: impl Into<Folder>,
        limits: OutputLimits,
        snapshot: OutputSnapshot,
    ) -> Self {
        let buffer = OutputBuffer::new(dir, limits, true);
        {
            let mut w = lock(&buffer.writer);
            w.external = true;
            w.disk_len = snapshot.disk_len;
            w.disk_failed = snapshot.disk_failed;
            w.cap_reported = snapshot.cap_reported;
            w.next_checkpoint = snapshot.next_checkpoint;
            let mut v = lock(&buffer.view);
            v.total = snapshot.total;
            v.stdout = snapshot.stdout;
            v.stderr = snapshot.stderr;
            v.has_log = snapshot.disk_len > 0;
            v.write_error = snapshot.write_error;
            v.spans = snapshot.spans.into();
            v.ring.push(&snapshot.tail);
            v.sync_disk(&w);
        }
        buffer
    }

    /// For a mirror: `len` bytes of `stream` that its writer wrote to the
    /// log's head, given by their length alone (the mirror reads them from
    /// the log; see [`OutputBuffer::all_in_log`]). The view is the one
    /// writing them would give: bytes below the log's end are always read
    /// from the log, so the tail window needs only what passes the cap.
    pub(crate) fn write_logged(&self, stream: &Stream, len: u64) {
        let mut w = lock(&self.writer);
        if w.finished || len == 0 {
            return;
        }
        w.disk_len += len;
        let mut v = lock(&self.view);
        v.has_log = true;
        v.sync_disk(&w);
        v.account(stream, len as usize);
        drop(v);
        drop(w);
        self.growth.bump();
    }

    /// Whether every byte of the stream so far is in the log (a writer's
    /// last chunk went wholly into its head): a mirror can then be told it
    /// by its length ([`OutputBuffer::write_logged`]).
    pub(crate) fn all_in_log(&self) -> bool {
        let v = lock(&self.view);
        v.spilled && v.disk_len == v.total && v.write_error.is_none()
    }

    /// For a mirror: the writer's log failed here (`error`); like the
    /// writer, nothing more counts as written to it.
    pub(crate) fn writer_failed(&self, error: String) {
        let mut w = lock(&self.writer);
        w.disk_failed = true;
        lock(&self.view).write_error = Some(error);
    }

    /// The log's path, for messages (it is opened through the root's
    /// descriptor).
    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    /// Appends a chunk. Never fails: a disk error is reported and the bytes
    /// stay available from the in-memory tail. With `gather`, small chunks
    /// bound for the log are gathered into one write (the report then asks
    /// for a flush); without, they are written at once. Bytes written after
    /// [`OutputBuffer::finish`] are dropped: the stream has ended.
    pub(crate) fn write(&self, stream: &Stream, bytes: &[u8], gather: bool) -> Report {
        let report = self.write_inner(stream, bytes, gather);
        self.growth.bump();
        report
    }

    fn write_inner(&self, stream: &Stream, bytes: &[u8], gather: bool) -> Report {
        let mut report = Report::default();
        if bytes.is_empty() {
            return report;
        }
        let mut w = lock(&self.writer);
        if w.finished {
            return report;
        }
        if !w.spilled {
            let mut v = lock(&self.view);
            if v.memory.len() + bytes.len() <= self.limits.memory_limit {
                let memory = Arc::make_mut(&mut v.memory);
                grow_within(memory, bytes.len(), self.limits.memory_limit);
                memory.extend_from_slice(bytes);
                v.account(stream, bytes.len());
                return report;
            }
            drop(v);
            self.spill_locked(&mut w, &mut report);
        }
        let limit = if gather {
            self.limits.coalesce_limit()
        } else {
            0
        };
        let result = if bytes.len() >= limit || w.disk_failed {
            // Big chunks (a process's pipe reads) go straight to the log.
            self.write_pending(&mut w, &mut report)
                .and_then(|()| self.write_head(&mut w, bytes, &mut report))
        } else {
            w.pending.extend_from_slice(bytes);
            if w.pending.len() >= limit {
                self.write_pending(&mut w, &mut report)
            } else {
                if !w.flush_needed {
                    w.flush_needed = true;
                    report.flush_needed = true;
                }
                Ok(())
            }
        };
        // One step for readers: the bytes are counted, in the tail, and (if
        // written) inside `disk_len`, all at once.
        let mut v = lock(&self.view);
        v.sync_disk(&w);
        v.ring.push(bytes);
        v.account(stream, bytes.len());
        if let Err(err) = &result {
            v.write_error = Some(err.clone());
        }
        if w.cap_reported && v.total >= w.next_checkpoint {
            w.next_checkpoint = v.total.saturating_add(self.limits.checkpoint_every());
            report.push(OutputEvent::Checkpoint);
        }
        drop(v);
        drop(w);
        report.failed(result);
        report
    }

    /// Writes any gathered bytes to the log now.
    pub(crate) fn flush(&self) -> Report {
        let mut report = Report::default();
        let mut w = lock(&self.writer);
        w.flush_needed = false;
        let result = self.write_pending(&mut w, &mut report);
        let mut v = lock(&self.view);
        v.sync_disk(&w);
        if let Err(err) = &result {
            v.write_error = Some(err.clone());
        }
        drop(v);
        drop(w);
        report.failed(result);
        report
    }

    /// Moves the in-memory output to the log; later output is appended after
    /// it. Nothing happens if the stream is spilled already (or finished).
    pub(crate) fn spill(&self) -> Report {
        let mut report = Report::default();
        let mut w = lock(&self.writer);
        if !w.spilled && !w.finished {
            self.spill_locked(&mut w, &mut report);
        }
        report
    }

    /// Writes the buffered bytes to the log while readers still read them
    /// from memory, then switches the view in one step: no reader ever sees
    /// them missing.
    fn spill_locked(&self, w: &mut Writer, report: &mut Report) {
        // Readers go on reading the buffered bytes from memory meanwhile.
        let memory = lock(&self.view).memory.clone();
        w.spilled = true;
        let result = self.write_head(w, &memory, report);
        {
            let mut v = lock(&self.view);
            v.spilled = true;
            v.memory = Arc::new(Vec::new());
            v.sync_disk(w);
            v.ring.push(&memory);
            if let Err(err) = &result {
                v.write_error = Some(err.clone());
            }
        }
        report.push(OutputEvent::Spilled {
            buffered: memory.len() as u64,
        });
        report.failed(result);
    }

    /// At the end of a stream still in memory: if it holds more than
    /// [`ENDED_OUTPUT_MEMORY`], moves it to the log so the ended task holds
    /// little memory. Only a log that takes every byte replaces the memory
    /// (a small disk cap, or a write error, leaves the bytes in memory,
    /// where reads find them as before); the view switches in one step, so
    /// a reader never sees them missing.
    fn spill_at_end(&self, w: &mut Writer, report: &mut Report) {
        let memory = lock(&self.view).memory.clone();
        let fits = memory.len() as u64 <= self.limits.head_cap();
        if memory.len() <= ENDED_OUTPUT_MEMORY || !fits || w.disk_failed {
            return;
        }
        if let Err(err) = self.write_head(w, &memory, report) {
            // Nothing is lost: the memory stays the stream's copy.
            lock(&self.view).write_error = Some(err.clone());
            report.push(OutputEvent::WriteFailed(err));
            return;
        }
        w.spilled = true;
        {
            let mut v = lock(&self.view);
            v.spilled = true;
            v.memory = Arc::new(Vec::new());
            v.disk_len = w.disk_len;
        }
        report.push(OutputEvent::Spilled {
            buffered: memory.len() as u64,
        });
    }

    /// Writes the gathered bytes to the log.
    fn write_pending(
        &self,
        w: &mut Writer,
        report: &mut Report,
    ) -> std::result::Result<(), String> {
        if w.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut w.pending);
        let result = self.write_head(w, &pending, report);
        // Keep the allocation for the next gathering.
        w.pending = pending;
        w.pending.clear();
        result
    }

    /// Writes as much of `bytes` as the head cap allows to the log.
    fn write_head(
        &self,
        w: &mut Writer,
        bytes: &[u8],
        report: &mut Report,
    ) -> std::result::Result<(), String> {
        if w.disk_failed {
            return Ok(());
        }
        let room = self.limits.head_cap().saturating_sub(w.disk_len);
        let take = (bytes.len() as u64).min(room) as usize;
        if take < bytes.len() && !w.cap_reported {
            w.cap_reported = true;
            // The cap's own save counts as the first checkpoint.
            w.next_checkpoint = w
                .disk_len
                .saturating_add(take as u64)
                .saturating_add(self.limits.checkpoint_every());
            report.push(OutputEvent::CapReached {
                disk_bytes: self.limits.head_cap(),
            });
        }
        if take == 0 {
            return Ok(());
        }
        if w.external {
            // The supervisor wrote these bytes before it passed them on.
            w.disk_len += take as u64;
            lock(&self.view).has_log = true;
            return Ok(());
        }
        let file = match &w.file {
            Some(file) => file.clone(),
            None => match self.open_log() {
                Ok(file) => {
                    let file = Arc::new(file);
                    let mut v = lock(&self.view);
                    v.file = Some(file.clone());
                    v.has_log = true;
                    drop(v);
                    w.file = Some(file.clone());
                    file
                }
                Err(e) => {
                    w.disk_failed = true;
                    return Err(e);
                }
            },
        };
        let mut rest = &bytes[..take];
        while !rest.is_empty() {
            match (&*file).write(rest) {
                Ok(0) => {
                    w.disk_failed = true;
                    return Err(format!(
                        "writing {}: wrote zero bytes",
                        self.log_path().display()
                    ));
                }
                Ok(n) => {
                    w.disk_len += n as u64;
                    rest = &rest[n..];
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    w.disk_failed = true;
                    return Err(format!("writing {}: {e}", self.log_path().display()));
                }
            }
        }
        Ok(())
    }

    fn open_log(&self) -> std::result::Result<File, String> {
        self.dir
            .create()
            .map_err(|e| format!("creating {}: {e}", self.dir.path().display()))?;
        self.dir
            .open_file(LOG_FILE, Access::Append)
            .map_err(|e| format!("opening {}: {e}", self.log_path().display()))
    }

    /// Marks the stream complete and closes the log. If the log dropped
    /// bytes past its cap, the tail is appended behind an omitted marker, so
    /// the log shows both ends; once that is written the tail's memory is
    /// freed (reads find it in the log).
    pub(crate) fn finish(&self) -> Report {
        let mut report = Report::default();
        let mut w = lock(&self.writer);
        if w.finished {
            return report;
        }
        let flushed = self.write_pending(&mut w, &mut report);
        report.failed(flushed);
        if !w.spilled {
            self.spill_at_end(&mut w, &mut report);
        }
        w.finished = true;
        w.flush_needed = false;
        let file = w.file.take();
        let (total, tail_from, tail) = {
            let mut v = lock(&self.view);
            v.sync_disk(&w);
            Arc::make_mut(&mut v.memory).shrink_to_fit();
            if !w.spilled || w.disk_failed || w.disk_len >= v.total {
                if w.spilled && !w.disk_failed && w.disk_len >= v.total {
                    // The log holds it all: reads no longer need the tail.
                    v.ring = TailRing::new(0);
                }
                v.finished = true;
                v.file = None;
                return report;
            }
            let tail_start = v.total - v.ring.len() as u64;
            let tail_from = tail_start.max(w.disk_len);
            let mut tail = Vec::new();
            v.ring.copy_range(
                (tail_from - tail_start) as usize,
                (v.total - tail_from) as usize,
                &mut tail,
            );
            (v.total, tail_from, tail)
        };
        let omitted = tail_from - w.disk_len;
        let mut trailer = Vec::with_capacity(tail.len() + 64);
        if omitted > 0 {
            trailer.extend_from_slice(marker_line(omitted).as_bytes());
        }
        let file_offset = w.disk_len + trailer.len() as u64;
        trailer.extend_from_slice(&tail);
        let result = match &file {
            Some(file) => (&**file).write_all(&trailer),
            // The supervisor wrote the same trailer (its failure, if any,
            // comes with its exit record).
            None if w.external => Ok(()),
            None => Err(std::io::Error::other("the log is not open")),
        };
        let mut v = lock(&self.view);
        v.finished = true;
        v.file = None;
        match result {
            Ok(()) if omitted == 0 => {
                // The tail continued the head exactly: the log is whole.
                w.disk_len = total;
                v.disk_len = total;
                v.ring = TailRing::new(0);
            }
            Ok(()) => {
                v.ring = TailRing::new(0);
                v.tail_in_log = Some(TailInLog {
                    from: tail_from,
                    file_offset,
                });
            }
            Err(e) => {
                let err = format!("writing {}: {e}", self.log_path().display());
                v.write_error = Some(err.clone());
                drop(v);
                report.push(OutputEvent::WriteFailed(err));
            }
        }
        report
    }

    /// When the task last wrote output, if it has.
    pub(crate) fn last_write(&self) -> Option<tokio::time::Instant> {
        lock(&self.view).last_write
    }

    /// The end offset of the stream now.
    pub(crate) fn len(&self) -> u64 {
        lock(&self.view).total
    }

    pub(crate) fn stats(&self) -> OutputStats {
        let v = lock(&self.view);
        let omitted = v.omitted_now();
        let memory = v.memory.capacity() + v.ring.allocated();
        OutputStats {
            total_bytes: v.total,
            stdout_bytes: v.stdout,
            stderr_bytes: v.stderr,
            spilled: v.spilled,
            disk_bytes: v.disk_len,
            omitted_bytes: omitted,
            memory_bytes: memory as u64,
            write_error: v.write_error.clone(),
            log_path: v.has_log.then(|| self.log_path().display().to_string()),
        }
    }

    /// Reads up to `max` bytes from `cursor`. Bytes that are gone (past the
    /// disk cap and out of the tail) are skipped and counted in `omitted`.
    pub(crate) fn read(&self, cursor: u64, max: usize) -> Result<ReadChunk> {
        let v = lock(&self.view);
        let end = v.total;
        if cursor > end && v.end_unknown {
            // Past the last saved count of a lost task: the end, as far as
            // anything is known.
            return Ok(ReadChunk {
                cursor,
                data: Vec::new(),
                omitted: 0,
                end: cursor,
                finished: true,
                spans: Vec::new(),
            });
        }
        if cursor > end {
            return Err(Error::invalid_argument(
                "cursor",
                format!("{cursor} is past the end of the output ({end} bytes)"),
            ));
        }
        let finished = v.finished;
        let want = |from: u64, limit: u64| limit.min(from.saturating_add(max as u64));
        // Where the bytes at `cursor` are, decided under the lock; log bytes
        // are read after it is released (they never change once written).
        // `after_log`: bytes that continue the log's part in the tail ring.
        let mut after_log = Vec::new();
        let (start, omitted, from_log) = if !v.spilled {
            let stop = want(cursor, end);
            let data = v.memory[cursor as usize..stop as usize].to_vec();
            return Ok(v.chunk(cursor, data, 0, finished));
        } else if cursor < v.disk_len {
            let stop = want(cursor, end);
            if stop > v.disk_len && v.tail_in_log.is_none() {
                // Bytes written but gathered for the log (not in it yet) are
                // in the tail: the chunk goes on with them, so whatever a
                // reader saw written (a readiness wait's match) is in the
                // next page, not only in the one after.
                let tail_start = end - v.ring.len() as u64;
                if tail_start <= v.disk_len {
                    v.ring.copy_range(
                        (v.disk_len - tail_start) as usize,
                        (stop - v.disk_len) as usize,
                        &mut after_log,
                    );
                }
            }
            (cursor, 0, Some((cursor, stop.min(v.disk_len))))
        } else {
            match v.tail_in_log {
                Some(TailInLog { from, file_offset }) => {
                    let start = cursor.max(from);
                    let stop = want(start, end);
                    let at = file_offset + (start - from);
                    (start, start - cursor, Some((at, at + (stop - start))))
                }
                None => {
                    let tail_start = end - v.ring.len() as u64;
                    let start = cursor.max(tail_start);
                    let len = (want(start, end) - start) as usize;
                    let mut data = Vec::with_capacity(len);
                    v.ring
                        .copy_range((start - tail_start) as usize, len, &mut data);
                    return Ok(v.chunk(start, data, start - cursor, finished));
                }
            }
        };
        let file = v.file.clone();
        let Some((file_from, file_to)) = from_log else {
            return Ok(v.chunk(start, Vec::new(), omitted, finished));
        };
        let spans = v.spans_in(
            start,
            start + (file_to - file_from) + after_log.len() as u64,
        );
        drop(v);
        let mut data = self.read_log(file, file_from, file_to)?;
        data.extend_from_slice(&after_log);
        Ok(ReadChunk {
            cursor: start,
            data,
            omitted,
            end,
            finished,
            spans,
        })
    }

    /// Reads `[from, to)` of the log: through the open descriptor while the
    /// stream is written, else by opening the log for this read alone.
    fn read_log(&self, file: Option<Arc<File>>, from: u64, to: u64) -> Result<Vec<u8>> {
        let path = self.log_path();
        let mut data = vec![0u8; (to - from) as usize];
        let result = match file {
            Some(file) => file.read_exact_at(&mut data, from),
            None => self
                .dir
                .open_file(LOG_FILE, Access::Read)
                .and_then(|file| file.read_exact_at(&mut data, from)),
        };
        result.map_err(|e| Error::io("reading", path, e))?;
        Ok(data)
    }

    /// Reads `[from, to)` as far as it still exists: returns where the kept
    /// bytes start (after any gap) and the bytes.
    fn read_contiguous(&self, from: u64, to: u64) -> Result<(u64, Vec<u8>)> {
        let mut start = from;
        let mut data = Vec::new();
        let mut pos = from;
        while pos < to {
            let chunk = self.read(pos, (to - pos) as usize)?;
            if chunk.omitted > 0 {
                // A gap: what came before it is not adjacent to what follows.
                data.clear();
                start = chunk.cursor;
            }
            if chunk.data.is_empty() {
                break;
            }
            pos = chunk.cursor + chunk.data.len() as u64;
            data.extend_from_slice(&chunk.data);
        }
        Ok((start, data))
    }

    /// The output from `from` to the end as text, at most the last
    /// `max_bytes` of it.
    pub(crate) fn text_since(&self, from: u64, max_bytes: usize) -> Result<String> {
        let total = self.len();
        let start = from.max(total.saturating_sub(max_bytes as u64));
        let (_, data) = self.read_contiguous(start, total)?;
        let skip = leading_continuation_bytes(&data);
        Ok(String::from_utf8_lossy(&data[skip..]).into_owned())
    }

    /// One page for a reader polling by cursor: up to `max` bytes from
    /// `cursor` (or its first character, if that is longer), cut on a UTF-8
    /// boundary unless it reaches the end of a finished stream, so
    /// successive pages decode cleanly.
    pub(crate) fn page(&self, cursor: u64, max: usize) -> Result<Page> {
        Page::read(cursor, max, |at, len| self.read(at, len))
    }

    /// The first `head_bytes` and the last `tail_bytes` of the stream, cut on
    /// UTF-8 character boundaries, never overlapping.
    pub(crate) fn preview(&self, head_bytes: usize, tail_bytes: usize) -> Result<Preview> {
        let total = self.len();
        let head = if head_bytes > 0 {
            let mut head = self.read(0, head_bytes)?;
            if head.cursor != 0 {
                head.data.clear();
            }
            let keep = complete_utf8_len(&head.data);
            head.data.truncate(keep);
            head.data
        } else {
            Vec::new()
        };
        let head_end = head.len() as u64;
        let wanted_from = total.saturating_sub(tail_bytes as u64).max(head_end);
        let (tail_cursor, mut tail) = self.read_contiguous(wanted_from, total)?;
        let skip = leading_continuation_bytes(&tail);
        let tail_start = tail_cursor + skip as u64;
        let tail_data = tail.split_off(skip.min(tail.len()));
        Ok(Preview {
            omitted_bytes: tail_start.saturating_sub(head_end),
            head,
            tail: tail_data,
            total_bytes: total,
        })
    }
}

/// The first allocation of a task's in-memory output, at least: a task that
/// writes a line or two (most of many thousand waiting tasks) costs a small
/// block, not a page; a chatty one doubles from here in a few steps.
const FIRST_MEMORY: usize = 256;

/// Grows `buf` geometrically for `extra` more bytes, never past `limit`.
fn grow_within(buf: &mut Vec<u8>, extra: usize, limit: usize) {
    let wanted = buf.len() + extra;
    if wanted > buf.capacity() {
        let target = (buf.capacity() * 2)
            .max(wanted)
            .max(FIRST_MEMORY)
            .min(limit);
        let len = buf.len();
        buf.reserve_exact(target.max(wanted) - len);
    }
}

impl View {
    /// Takes the writer's disk length (and, once the cap is reached, the
    /// head the log keeps) into the view.
    fn sync_disk(&mut self, w: &Writer) {
        self.disk_len = w.disk_len;
        if w.cap_reported && !w.disk_failed {
            self.log_head = Some(w.disk_len);
        }
    }

    /// Bytes that exist neither in the log nor in memory now.
    fn omitted_now(&self) -> u64 {
        if !self.spilled {
            return 0;
        }
        let kept_from = match self.tail_in_log {
            Some(TailInLog { from, .. }) => from,
            None => self.total - self.ring.len() as u64,
        };
        kept_from.saturating_sub(self.disk_len)
    }

    fn chunk(&self, cursor: u64, data: Vec<u8>, omitted: u64, finished: bool) -> ReadChunk {
        let spans = self.spans_in(cursor, cursor + data.len() as u64);
        ReadChunk {
            cursor,
            data,
            omitted,
            end: self.total,
            finished,
            spans,
        }
    }

    fn account(&mut self, stream: &Stream, len: usize) {
        if self.track_activity {
            self.last_write = Some(tokio::time::Instant::now());
        }
        if self.spans.back().map(|(_, s)| s) != Some(stream) {
            if self.spans.len() == MAX_SPANS {
                self.spans.pop_front();
            }
            // One slot to start (a push would take four): most tasks
            // write one stream, or change streams a few times.
            if self.spans.capacity() == 0 {
                self.spans.reserve_exact(1);
            }
            self.spans.push_back((self.total, stream.clone()));
        }
        self.total += len as u64;
        if stream == &Stream::STDOUT {
            self.stdout += len as u64;
        } else if stream.is_stderr() {
            self.stderr += len as u64;
        }
    }

    fn spans_in(&self, from: u64, to: u64) -> Vec<StreamSpan> {
        let mut out = Vec::new();
        if from >= to {
            return out;
        }
        let first = self.spans.partition_point(|(off, _)| *off <= from);
        let first = first.saturating_sub(1);
        for i in first..self.spans.len() {
            let (start, stream) = &self.spans[i];
            if *start >= to {
                break;
            }
            let end = self.spans.get(i + 1).map_or(self.total, |(off, _)| *off);
            let s = (*start).max(from);
            let e = end.min(to);
            if e > s {
                out.push(StreamSpan {
                    offset: s,
                    len: e - s,
                    stream: stream.clone(),
                });
            }
        }
        out
    }
}
