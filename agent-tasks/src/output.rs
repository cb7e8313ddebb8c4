//! A task's output stream: one ordered byte stream, addressed by offsets,
//! that lives in memory while the task is in the foreground and small, and
//! spills to `<task dir>/output.log` on detach, on overflow of the memory
//! limit, or from the start for background tasks. After a spill only a bounded
//! tail stays in memory. The log is capped too: past `disk_limit` it keeps its
//! head, the tail ring keeps the end, and when the task ends the tail is
//! appended behind a `[... N bytes omitted ...]` marker.
//!
//! Two locks: producers hold `writer` for the whole append (so the stream has
//! one order and a disk write never races a spill), readers take only `view`,
//! and read already-written log bytes without any lock (they never change).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::info::{OutputStats, Preview, StreamSpan};
use crate::sink::Stream;
use crate::tail_ring::TailRing;

/// Stream transitions remembered for `poll` spans; older ones are forgotten.
const MAX_SPANS: usize = 8192;
/// Small writes to the log are gathered up to this many bytes (at most half
/// the tail window, so gathered bytes are always readable from the tail)...
const COALESCE_MAX: usize = 64 * 1024;
/// ...or for at most this long, so a crash loses at most this much output.
const FLUSH_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

/// The text put between the kept head and tail of an over-long output.
pub(crate) fn omitted_marker(omitted: u64) -> String {
    format!("[... {omitted} bytes omitted ...]")
}

/// Sizes that bound a task's output.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutputLimits {
    pub memory_limit: usize,
    pub disk_limit: u64,
    pub tail_window: usize,
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
}

/// Something about the output the task's owner of record should hear of.
#[derive(Debug, Clone)]
pub(crate) enum OutputEvent {
    /// Buffered bytes were moved to the log.
    Spilled { buffered: u64 },
    /// The log reached its cap.
    CapReached,
    /// Writing the log failed; nothing more is written to it.
    WriteFailed(String),
    /// A host sink failed (first failure only).
    HostSinkFailed(String),
}

type Observer = Box<dyn Fn(OutputEvent) + Send + Sync>;

/// One chunk read back from the stream.
#[derive(Debug)]
pub(crate) struct ReadChunk {
    pub cursor: u64,
    pub data: Vec<u8>,
    pub omitted: u64,
    pub end: u64,
    pub spans: Vec<StreamSpan>,
}

#[derive(Debug)]
struct Writer {
    spilled: bool,
    file: Option<File>,
    disk_len: u64,
    disk_failed: bool,
    cap_reported: bool,
    /// Bytes of the stream gathered for the log but not written yet.
    pending: Vec<u8>,
    flush_scheduled: bool,
}

#[derive(Debug)]
struct View {
    total: u64,
    stdout: u64,
    stderr: u64,
    spilled: bool,
    /// The whole stream, while not spilled.
    memory: Vec<u8>,
    /// The end of the stream, once spilled.
    tail: TailRing,
    /// Stream bytes `[0, disk_len)` are in the log at the same offsets.
    disk_len: u64,
    reader: Option<Arc<File>>,
    write_error: Option<String>,
    /// `(offset, stream)` at every change of stream.
    spans: VecDeque<(u64, Stream)>,
    finished: bool,
    last_write: Option<tokio::time::Instant>,
    track_activity: bool,
}

/// The bounded output buffer of one task.
pub(crate) struct OutputBuffer {
    limits: OutputLimits,
    dir: PathBuf,
    writer: Mutex<Writer>,
    view: Mutex<View>,
    observer: std::sync::OnceLock<Observer>,
    /// Where delayed flushes run; without one, small writes are not gathered.
    runtime: Option<tokio::runtime::Handle>,
    me: std::sync::Weak<OutputBuffer>,
}

impl std::fmt::Debug for OutputBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputBuffer")
            .field("dir", &self.dir)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain counters behind; keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Creates `dir` (and parents) with mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

impl OutputBuffer {
    /// A buffer whose log, once spilled, is `dir/output.log`. With
    /// `spilled_from_start`, output goes to disk from the first byte.
    pub(crate) fn new(
        dir: PathBuf,
        limits: OutputLimits,
        spilled_from_start: bool,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self::build(dir, limits, spilled_from_start, runtime, me.clone()))
    }

    fn build(
        dir: PathBuf,
        limits: OutputLimits,
        spilled_from_start: bool,
        runtime: Option<tokio::runtime::Handle>,
        me: std::sync::Weak<OutputBuffer>,
    ) -> Self {
        OutputBuffer {
            limits,
            dir,
            runtime,
            me,
            writer: Mutex::new(Writer {
                spilled: spilled_from_start,
                file: None,
                disk_len: 0,
                disk_failed: false,
                cap_reported: false,
                pending: Vec::new(),
                flush_scheduled: false,
            }),
            view: Mutex::new(View {
                total: 0,
                stdout: 0,
                stderr: 0,
                spilled: spilled_from_start,
                memory: Vec::new(),
                tail: TailRing::new(limits.tail_window),
                disk_len: 0,
                reader: None,
                write_error: None,
                spans: VecDeque::new(),
                finished: false,
                last_write: None,
                track_activity: limits.track_activity,
            }),
            observer: std::sync::OnceLock::new(),
        }
    }

    /// A finished buffer read back from a task folder: `stats` as saved in
    /// the manifest. With `unfinished` (the task was lost) the saved counts
    /// are stale, and the log's own length is the truth.
    pub(crate) fn restore(
        dir: PathBuf,
        limits: OutputLimits,
        stats: &OutputStats,
        unfinished: bool,
    ) -> Self {
        let buffer = OutputBuffer::build(dir, limits, true, None, std::sync::Weak::new());
        let file = File::open(buffer.log_path()).ok();
        let file_len = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        {
            let mut w = lock(&buffer.writer);
            w.disk_failed = true; // read-only from now on
            let mut v = lock(&buffer.view);
            v.finished = true;
            if unfinished || !stats.spilled {
                v.total = file_len;
                v.disk_len = file_len;
            } else {
                v.total = stats.total_bytes;
                v.disk_len = stats.disk_bytes.min(file_len);
                let tail_start = stats.disk_bytes + stats.omitted_bytes;
                let tail_len = stats.total_bytes.saturating_sub(tail_start);
                if tail_len > 0 {
                    let marker = if stats.omitted_bytes > 0 {
                        format!("\n{}\n", omitted_marker(stats.omitted_bytes)).len() as u64
                    } else {
                        0
                    };
                    let mut tail = vec![0u8; tail_len as usize];
                    let read = file
                        .as_ref()
                        .map(|f| f.read_exact_at(&mut tail, stats.disk_bytes + marker));
                    if let Some(Ok(())) = read {
                        v.tail = TailRing::new(tail.len().max(limits.tail_window));
                        v.tail.push(&tail);
                    }
                }
            }
            v.stdout = stats.stdout_bytes;
            v.stderr = stats.stderr_bytes;
            v.write_error = stats.write_error.clone();
            v.reader = file.map(Arc::new);
        }
        buffer
    }

    /// Sets who hears of spills, the cap and write errors (once).
    pub(crate) fn set_observer(&self, observer: Observer) {
        let _ = self.observer.set(observer);
    }

    pub(crate) fn report(&self, event: OutputEvent) {
        if let Some(observer) = self.observer.get() {
            observer(event);
        }
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.join("output.log")
    }

    /// Appends a chunk. Never fails: a disk error is recorded in the stats
    /// and the bytes stay available from the in-memory tail. With `gather`,
    /// small chunks bound for the log are gathered (up to 64 KiB or 20 ms)
    /// into one write; without, they are written at once.
    pub(crate) fn write(&self, stream: &Stream, bytes: &[u8], gather: bool) {
        if bytes.is_empty() {
            return;
        }
        let mut w = lock(&self.writer);
        if !w.spilled {
            let mut v = lock(&self.view);
            if v.memory.len() + bytes.len() <= self.limits.memory_limit {
                let wanted = v.memory.len() + bytes.len();
                if wanted > v.memory.capacity() {
                    let target = (v.memory.capacity() * 2)
                        .max(wanted)
                        .max(4096)
                        .min(self.limits.memory_limit);
                    let len = v.memory.len();
                    v.memory.reserve_exact(target - len);
                }
                v.memory.extend_from_slice(bytes);
                v.account(stream, bytes.len());
                return;
            }
            drop(v);
            self.spill_locked(&mut w);
        }
        let limit = if gather { self.coalesce_limit() } else { 0 };
        let disk_part = if bytes.len() >= limit || w.disk_failed {
            // Big chunks (a process's pipe reads) go straight to the log.
            self.write_pending(&mut w)
                .and_then(|()| self.write_head(&mut w, bytes))
        } else {
            w.pending.extend_from_slice(bytes);
            if w.pending.len() >= limit {
                self.write_pending(&mut w)
            } else {
                self.schedule_flush(&mut w);
                Ok(())
            }
        };
        let mut v = lock(&self.view);
        v.disk_len = w.disk_len;
        v.tail.push(bytes);
        v.account(stream, bytes.len());
        if let Err(err) = disk_part {
            v.write_error = Some(err.clone());
            drop(v);
            self.report(OutputEvent::WriteFailed(err));
        }
    }

    fn coalesce_limit(&self) -> usize {
        if self.runtime.is_none() {
            return 0;
        }
        (self.limits.tail_window / 2).min(COALESCE_MAX)
    }

    /// Writes the gathered bytes to the log.
    fn write_pending(&self, w: &mut Writer) -> std::result::Result<(), String> {
        if w.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut w.pending);
        let result = self.write_head(w, &pending);
        // Keep the allocation for the next gathering.
        w.pending = pending;
        w.pending.clear();
        result
    }

    /// Makes sure gathered bytes reach the log within `FLUSH_DELAY`.
    fn schedule_flush(&self, w: &mut Writer) {
        if w.flush_scheduled {
            return;
        }
        let Some(runtime) = &self.runtime else {
            return;
        };
        w.flush_scheduled = true;
        let me = self.me.clone();
        runtime.spawn(async move {
            tokio::time::sleep(FLUSH_DELAY).await;
            if let Some(buffer) = me.upgrade() {
                buffer.flush();
            }
        });
    }

    /// Writes any gathered bytes to the log now.
    pub(crate) fn flush(&self) {
        let mut w = lock(&self.writer);
        w.flush_scheduled = false;
        let result = self.write_pending(&mut w);
        let mut v = lock(&self.view);
        v.disk_len = w.disk_len;
        if let Err(err) = result {
            v.write_error = Some(err.clone());
            drop(v);
            self.report(OutputEvent::WriteFailed(err));
        }
    }

    /// Writes as much of `bytes` as the head cap allows to the log.
    fn write_head(&self, w: &mut Writer, bytes: &[u8]) -> std::result::Result<(), String> {
        if w.disk_failed {
            return Ok(());
        }
        let room = self.limits.head_cap().saturating_sub(w.disk_len);
        let take = (bytes.len() as u64).min(room) as usize;
        if take < bytes.len() && !w.cap_reported {
            w.cap_reported = true;
            self.report(OutputEvent::CapReached);
        }
        if take == 0 {
            return Ok(());
        }
        if w.file.is_none() {
            match self.open_log() {
                Ok(file) => {
                    let reader = file.try_clone().map(Arc::new).ok();
                    lock(&self.view).reader = reader;
                    w.file = Some(file);
                }
                Err(e) => {
                    w.disk_failed = true;
                    return Err(e);
                }
            }
        }
        let Some(file) = w.file.as_mut() else {
            return Ok(());
        };
        let mut rest = &bytes[..take];
        while !rest.is_empty() {
            match file.write(rest) {
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
        create_private_dir(&self.dir)
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        let path = self.log_path();
        OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("opening {}: {e}", path.display()))
    }

    /// Moves the in-memory output to the log; later output is appended after
    /// it. Returns true if this call did the spill.
    pub(crate) fn spill(&self) -> bool {
        let mut w = lock(&self.writer);
        if w.spilled {
            return false;
        }
        self.spill_locked(&mut w);
        true
    }

    fn spill_locked(&self, w: &mut Writer) {
        let memory = {
            let mut v = lock(&self.view);
            v.spilled = true;
            std::mem::take(&mut v.memory)
        };
        w.spilled = true;
        let result = self.write_head(w, &memory);
        {
            let mut v = lock(&self.view);
            v.disk_len = w.disk_len;
            if let Err(err) = &result {
                v.write_error = Some(err.clone());
            }
            v.tail.push(&memory);
        }
        self.report(OutputEvent::Spilled {
            buffered: memory.len() as u64,
        });
        if let Err(err) = result {
            self.report(OutputEvent::WriteFailed(err));
        }
    }

    /// Marks the stream complete. If the log dropped bytes past its cap, the
    /// tail is appended behind an omitted marker, so the log shows both ends.
    pub(crate) fn finish(&self) {
        self.flush();
        let mut w = lock(&self.writer);
        let (total, tail_from, tail) = {
            let mut v = lock(&self.view);
            if v.finished {
                return;
            }
            v.finished = true;
            if !w.spilled || w.disk_failed || w.disk_len >= v.total {
                return;
            }
            let tail_start = v.total - v.tail.len() as u64;
            let tail_from = tail_start.max(w.disk_len);
            let mut tail = Vec::new();
            v.tail.copy_range(
                (tail_from - tail_start) as usize,
                (v.total - tail_from) as usize,
                &mut tail,
            );
            (v.total, tail_from, tail)
        };
        let omitted = tail_from - w.disk_len;
        let Some(file) = w.file.as_mut() else {
            return;
        };
        let mut trailer = Vec::with_capacity(tail.len() + 64);
        if omitted > 0 {
            trailer.extend_from_slice(format!("\n{}\n", omitted_marker(omitted)).as_bytes());
        }
        trailer.extend_from_slice(&tail);
        let result = file.write_all(&trailer).and_then(|_| file.flush());
        if omitted == 0 && result.is_ok() {
            // The tail continued the head exactly: the log is whole again.
            w.disk_len = total;
            lock(&self.view).disk_len = total;
        }
        if let Err(e) = result {
            lock(&self.view).write_error =
                Some(format!("writing {}: {e}", self.log_path().display()));
        }
    }

    /// When the task last wrote output, if it has.
    pub(crate) fn last_write(&self) -> Option<tokio::time::Instant> {
        lock(&self.view).last_write
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

    /// The end offset of the stream now.
    pub(crate) fn len(&self) -> u64 {
        lock(&self.view).total
    }

    pub(crate) fn stats(&self) -> OutputStats {
        let v = lock(&self.view);
        let tail_start = v.total - v.tail.len() as u64;
        let omitted = if v.spilled {
            tail_start.saturating_sub(v.disk_len)
        } else {
            0
        };
        OutputStats {
            total_bytes: v.total,
            stdout_bytes: v.stdout,
            stderr_bytes: v.stderr,
            spilled: v.spilled,
            disk_bytes: v.disk_len,
            omitted_bytes: omitted,
            memory_bytes: (v.memory.capacity() + v.tail.allocated()) as u64,
            write_error: v.write_error.clone(),
            log_path: v
                .reader
                .as_ref()
                .map(|_| self.log_path().display().to_string()),
        }
    }

    /// Reads up to `max` bytes from `cursor`. Bytes that are gone (past the
    /// disk cap and out of the tail) are skipped and counted in `omitted`.
    pub(crate) fn read(&self, cursor: u64, max: usize) -> Result<ReadChunk> {
        let v = lock(&self.view);
        let end = v.total;
        if cursor > end {
            return Err(Error::invalid_argument(
                "cursor",
                format!("{cursor} is past the end of the output ({end} bytes)"),
            ));
        }
        let mut data = Vec::new();
        let mut start = cursor;
        let mut omitted = 0;
        if !v.spilled {
            let stop = end.min(cursor + max as u64);
            data.extend_from_slice(&v.memory[cursor as usize..stop as usize]);
        } else if cursor < v.disk_len {
            let stop = v.disk_len.min(cursor + max as u64);
            let reader = v.reader.clone();
            let spans = v.spans_in(cursor, stop);
            drop(v);
            let data = self.read_log(reader, cursor, stop)?;
            return Ok(ReadChunk {
                cursor,
                data,
                omitted: 0,
                end,
                spans,
            });
        } else {
            let tail_start = end - v.tail.len() as u64;
            start = cursor.max(tail_start);
            omitted = start - cursor;
            let len = (end - start).min(max as u64) as usize;
            v.tail
                .copy_range((start - tail_start) as usize, len, &mut data);
        }
        let spans = v.spans_in(start, start + data.len() as u64);
        Ok(ReadChunk {
            cursor: start,
            data,
            omitted,
            end,
            spans,
        })
    }

    fn read_log(&self, reader: Option<Arc<File>>, from: u64, to: u64) -> Result<Vec<u8>> {
        let path = self.log_path();
        let Some(file) = reader else {
            return Err(Error::io(
                "reading",
                path,
                std::io::Error::other("the log is not open"),
            ));
        };
        let mut data = vec![0u8; (to - from) as usize];
        file.read_exact_at(&mut data, from)
            .map_err(|e| Error::io("reading", path, e))?;
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

impl View {
    fn account(&mut self, stream: &Stream, len: usize) {
        if self.track_activity {
            self.last_write = Some(tokio::time::Instant::now());
        }
        if self.spans.back().map(|(_, s)| s) != Some(stream) {
            if self.spans.len() == MAX_SPANS {
                self.spans.pop_front();
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

/// Length of the longest prefix of `data` that does not end inside a UTF-8
/// sequence (invalid bytes count as whole characters).
pub(crate) fn complete_utf8_len(data: &[u8]) -> usize {
    let len = data.len();
    for back in 1..=3.min(len) {
        let b = data[len - back];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: keep looking for the lead
        }
        let width = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if width > back { len - back } else { len };
    }
    len
}

/// How many continuation bytes open `data` (at most 3): where a tail cut
/// landed inside a character.
pub(crate) fn leading_continuation_bytes(data: &[u8]) -> usize {
    data.iter()
        .take(3)
        .take_while(|b| *b & 0b1100_0000 == 0b1000_0000)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_cuts() {
        let s = "héllo €".as_bytes();
        assert_eq!(complete_utf8_len(s), s.len());
        assert_eq!(complete_utf8_len(&s[..s.len() - 1]), s.len() - 3);
        assert_eq!(complete_utf8_len(&s[..2]), 1);
        assert_eq!(leading_continuation_bytes(&s[2..]), 1);
        assert_eq!(complete_utf8_len(b"\xff\xfe"), 2);
    }
}
