//! The inspection commands (`status`, `log`, `files`, `events`, `kill`,
//! `notifications`, `gc`) over `agent_tasks::inspect::RootReader`. They read
//! the root's files without its lock and never write to it, with one
//! exception: `kill` of a task of a live host leaves a kill request in the
//! task's folder (atomically) before it signals, so the host records the
//! end as `cancelled` by this command. `gc` goes through
//! `TaskManager::open`, which is refused while a host holds the root.
//!
//! Whether a host holds the root is read from the lock's state
//! (`RootReader::holder`, without taking it): with no host, `status` and
//! `kill` show a task saved as running as a reopening host would (`lost`,
//! its run time frozen), never as `running`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agent_tasks::inspect::{
    kill_task_processes, InspectError, KillOutcome, KillRequest, RecordSource, RootHolder,
    RootProblem, RootReader, TaskRecord, KILL_REQUEST_FILE,
};
use agent_tasks::{EventKind, TaskInfo, TaskManager, TaskStatus};
use notify::Watcher;
use serde_json::json;

use crate::human::{self, Style, Table};
use crate::{Failure, RootArg};

/// Ended tasks `status` shows without `--all`.
const RECENT_ENDED: usize = 20;
/// Bytes read from a log at a time.
const CHUNK: usize = 64 * 1024;
/// Lines of output `status ID` shows.
const STATUS_TAIL_LINES: usize = 10;
/// The longest a follower sleeps without a file event before it looks again
/// (a safety net for a missed event; not a busy loop).
const FOLLOW_FALLBACK: Duration = Duration::from_secs(1);
/// How long `kill` waits for the host to record the task's end.
const HOST_RECORD_WAIT: Duration = Duration::from_secs(10);

fn reader(root: &RootArg) -> Result<RootReader, Failure> {
    let Some(path) = &root.root else {
        return Err(Failure(
            "no task root given: pass --root DIR or set AGENT_TASKS_ROOT".to_string(),
        ));
    };
    Ok(RootReader::open(path)?)
}

/// Writes to stdout; a closed pipe (`| head`) ends the command quietly.
fn emit(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure(format!("writing to stdout: {e}"))),
    }
}

fn emit_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    emit(text.as_bytes())
}

fn exit_text(info: &TaskInfo) -> String {
    match info.exit {
        Some(e) => match (e.code, e.signal) {
            (Some(code), _) => code.to_string(),
            (None, Some(signal)) => format!("sig {signal}"),
            _ => "-".to_string(),
        },
        None => "-".to_string(),
    }
}

/// Run time: so far for a running task (from its creation), in all once ended.
fn run_time(info: &TaskInfo) -> u64 {
    if info.status.is_terminal() {
        info.duration_ms
    } else {
        human::now_ms()
            .saturating_sub(info.created_at_ms)
            .max(info.duration_ms)
    }
}

/// Output size: the saved count, or the log's length when a running task
/// wrote more since its manifest was saved.
fn output_size(reader: &RootReader, record: &TaskRecord) -> u64 {
    let saved = record.info.output.total_bytes;
    // A lost task's host may have written more than its last save counted.
    let may_have_grown =
        !record.info.status.is_terminal() || record.info.status == TaskStatus::Lost;
    if !may_have_grown || !record.info.output.spilled {
        return saved;
    }
    let on_disk = reader
        .read_log(record.info.id.as_str(), 0, 0)
        .map_or(0, |c| c.file_len);
    saved.max(on_disk)
}

fn problems_json(problems: &[RootProblem]) -> serde_json::Value {
    problems
        .iter()
        .map(|p| json!({"path": p.path, "task_id": p.task_id, "message": p.message}))
        .collect()
}

fn problems_text(problems: &[RootProblem], style: Style) -> String {
    let mut out = String::new();
    if !problems.is_empty() {
        out.push_str(&style.bold(&format!("\n{} unreadable:\n", problems.len())));
        for p in problems {
            out.push_str(&format!("  {}: {}\n", p.path.display(), p.message));
        }
    }
    out
}

/// `agent-tasks status [ID]`.
pub fn status(
    root: &RootArg,
    id: Option<&str>,
    owner: Option<&str>,
    all: bool,
    json: bool,
) -> Result<(), Failure> {
    let reader = reader(root)?;
    let holder = reader.holder()?;
    if let Some(id) = id {
        return status_one(&reader, holder, id, json);
    }
    let (records, problems) = reader.tasks();
    let records: Vec<TaskRecord> = records
        .into_iter()
        .filter(|r| owner.is_none_or(|o| r.info.owner == o))
        .map(|r| as_host_would_show(r, holder))
        .collect();
    let active = records
        .iter()
        .filter(|r| !r.info.status.is_terminal())
        .count();
    if json {
        let tasks: Vec<&TaskInfo> = records.iter().map(|r| &r.info).collect();
        return emit_json(&json!({
            "root": reader.root(),
            "host": host_json(holder),
            "active": active,
            "tasks": tasks,
            "problems": problems_json(&problems),
        }));
    }
    let ended = records.len() - active;
    let hidden = if all {
        0
    } else {
        ended.saturating_sub(RECENT_ENDED)
    };
    // Active first, then ended, newest last within each.
    let mut shown: Vec<&TaskRecord> = records
        .iter()
        .filter(|r| !r.info.status.is_terminal())
        .collect();
    shown.extend(
        records
            .iter()
            .filter(|r| r.info.status.is_terminal())
            .skip(hidden),
    );
    let style = Style::for_stdout();
    let mut out = format!(
        "{} active, {} ended{} in {}\n",
        active,
        ended,
        if hidden > 0 {
            format!(" ({hidden} older not shown: --all)")
        } else {
            String::new()
        },
        reader.root().display()
    );
    if !holder.is_held() && records.iter().any(|r| r.info.status == TaskStatus::Lost) {
        out.push_str("no host holds this root: what its host ran when it stopped is lost\n");
    }
    if !shown.is_empty() {
        let mut table = Table::new(&[
            "ID",
            "KIND",
            "STATUS",
            "OWNER",
            "STARTED",
            "TIME",
            "EXIT",
            "OUTPUT",
            "DESCRIPTION",
        ]);
        for r in shown {
            let i = &r.info;
            let mut status = i.status.to_string();
            if i.foreground && !i.status.is_terminal() {
                status.push_str(" (fg)");
            }
            table.row(vec![
                (i.id.to_string(), None),
                (i.kind.clone(), None),
                (status, Some(i.status)),
                (i.owner.clone(), None),
                (human::ago(i.created_at_ms), None),
                (human::duration(run_time(i)), None),
                (exit_text(i), None),
                (human::size(output_size(&reader, r)), None),
                (human::one_line(&i.description, 60), None),
            ]);
        }
        out.push('\n');
        out.push_str(&table.render(style));
    }
    out.push_str(&problems_text(&problems, style));
    emit(out.as_bytes())
}

/// The record as a host that holds the root shows it: as saved while a host
/// holds it; as a reopening host would show it when none does.
fn as_host_would_show(mut record: TaskRecord, holder: RootHolder) -> TaskRecord {
    if !holder.is_held() {
        record.info = record.as_reopened();
    }
    record
}

fn host_json(holder: RootHolder) -> serde_json::Value {
    match holder {
        RootHolder::Host { pid } => json!({"held": true, "pid": pid}),
        RootHolder::Free => json!({"held": false, "pid": null}),
    }
}

fn status_one(
    reader: &RootReader,
    holder: RootHolder,
    id: &str,
    json: bool,
) -> Result<(), Failure> {
    let record = as_host_would_show(reader.task(id)?, holder);
    let result = reader.result(id)?;
    let changed = reader.changed_files(id)?;
    let (notifications, _) = reader.notifications(None);
    let notifications: Vec<_> = notifications
        .into_iter()
        .filter(|n| n.task_id == record.info.id)
        .collect();
    if json {
        return emit_json(&json!({
            "host": host_json(holder),
            "info": record.info,
            "process_start_time": record.process_start_time,
            "process_alive": record.process_alive(),
            "source": match record.source {
                RecordSource::Folder => "folder",
                RecordSource::ForegroundRecord => "foreground_record",
            },
            "result": result,
            "changed_files": changed,
            "notifications": notifications,
        }));
    }
    let style = Style::for_stdout();
    let i = &record.info;
    let mut rows: Vec<(&str, String)> = vec![
        ("id", i.id.to_string()),
        ("kind", i.kind.clone()),
        ("description", i.description.clone()),
        ("owner", i.owner.clone()),
        ("status", style.status(i.status, i.status.as_str())),
        ("started", human::ago(i.created_at_ms)),
    ];
    rows.push((
        if i.status.is_terminal() {
            "duration"
        } else {
            "running for"
        },
        human::duration(run_time(i)),
    ));
    let mut placement = vec![if i.foreground {
        "foreground"
    } else {
        "background"
    }];
    if i.detached {
        placement.push("detached");
    }
    if i.keep_alive {
        placement.push("keep-alive");
    }
    rows.push(("placement", placement.join(", ")));
    if let Some(pid) = i.pid {
        let alive = if record.process_alive() {
            "alive"
        } else {
            "not running"
        };
        rows.push(("pid", format!("{pid} ({alive})")));
    }
    if let Some(pid) = i.orphan_pid {
        rows.push(("orphan pid", pid.to_string()));
    }
    if let Some(c) = i.containment {
        rows.push(("containment", c.to_string()));
    }
    if i.exit.is_some() {
        rows.push(("exit", exit_text(i)));
    }
    if let Some(reason) = &i.cancel_reason {
        rows.push(("stopped", reason.to_string()));
    }
    if let Some(error) = &i.error {
        rows.push(("error", error.clone()));
    }
    if let Some(limits) = &i.limits {
        rows.push(("limits", limits_text(limits)));
    }
    if let Some(usage) = result.as_ref().and_then(|r| r.usage.as_ref()) {
        rows.push(("used", usage.line()));
        for reached in &usage.limits_reached {
            rows.push(("limit", reached.line()));
        }
    }
    let o = &i.output;
    let mut output = format!(
        "{} (stdout {}, stderr {})",
        human::size(output_size(reader, &record)),
        human::size(o.stdout_bytes),
        human::size(o.stderr_bytes)
    );
    if o.omitted_bytes > 0 {
        output.push_str(&format!(
            ", {} omitted by the disk cap",
            human::size(o.omitted_bytes)
        ));
    }
    rows.push(("output", output));
    rows.push((
        "log",
        if o.spilled {
            record.log_path().display().to_string()
        } else {
            "none (the output is in the host's memory)".to_string()
        },
    ));
    if let Some(e) = &o.write_error {
        rows.push(("log error", e.clone()));
    }
    if let Some(e) = &i.sink_error {
        rows.push(("sink error", e.clone()));
    }
    if let Some(value) = result.as_ref().and_then(|r| r.value.as_ref()) {
        rows.push(("value", value.to_string()));
    }
    if let Some(c) = &changed {
        rows.push((
            "changed files",
            format!(
                "{} created, {} modified, {} deleted (agent-tasks files {})",
                c.created.len(),
                c.modified.len(),
                c.deleted.len(),
                i.id
            ),
        ));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in &rows {
        out.push_str(&format!(
            "{}  {value}\n",
            style.bold(&format!("{key:width$}"))
        ));
    }
    if o.spilled {
        let lines = last_lines(reader, i.id.as_str(), STATUS_TAIL_LINES)?;
        out.push_str(&style.dim("\n--- last lines of output ---\n"));
        out.push_str(&lines);
        if !lines.is_empty() && !lines.ends_with('\n') {
            out.push('\n');
        }
    }
    if !notifications.is_empty() {
        out.push_str(&style.dim(&format!(
            "\n--- {} pending notification(s) ---\n",
            notifications.len()
        )));
        for n in &notifications {
            out.push_str(&format!("[{}]\n{}\n", n.id, n.text.trim_end()));
        }
    }
    emit(out.as_bytes())
}

/// The last `n` lines of the task's log, decoded.
fn last_lines(reader: &RootReader, id: &str, n: usize) -> Result<String, Failure> {
    let len = reader.read_log(id, 0, 0)?.file_len;
    let from = tail_offset(reader, id, len, n)?;
    let chunk = reader.read_log(id, from, usize::try_from(len - from).unwrap_or(usize::MAX))?;
    Ok(String::from_utf8_lossy(&chunk.data).into_owned())
}

/// File offset where the last `n` lines of the log start (a final newline
/// does not open an empty line).
fn tail_offset(reader: &RootReader, id: &str, len: u64, n: usize) -> Result<u64, Failure> {
    if n == 0 {
        return Ok(len);
    }
    let mut end = len;
    let mut newlines = 0usize;
    let mut first = true;
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let chunk = reader.read_log(id, start, (end - start) as usize)?;
        let mut data = &chunk.data[..];
        if first {
            first = false;
            if data.last() == Some(&b'\n') {
                data = &data[..data.len() - 1];
            }
        }
        for (i, b) in data.iter().enumerate().rev() {
            if *b == b'\n' {
                newlines += 1;
                if newlines == n {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}

/// Decodes a byte stream as UTF-8 across chunk boundaries, replacing
/// invalid bytes; `raw` passes bytes through untouched.
struct Printer {
    raw: bool,
    carry: Vec<u8>,
}

impl Printer {
    fn print(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        if self.raw {
            return emit(bytes);
        }
        self.carry.extend_from_slice(bytes);
        let keep = match std::str::from_utf8(&self.carry) {
            Ok(_) => 0,
            // An incomplete character at the end waits for the next chunk.
            Err(e) if e.error_len().is_none() => self.carry.len() - e.valid_up_to(),
            Err(_) => incomplete_tail(&self.carry),
        };
        let ready = self.carry.len() - keep;
        let text = String::from_utf8_lossy(&self.carry[..ready]).into_owned();
        self.carry.drain(..ready);
        emit(text.as_bytes())
    }

    fn finish(&mut self) -> Result<(), Failure> {
        let text = String::from_utf8_lossy(&self.carry).into_owned();
        self.carry.clear();
        emit(text.as_bytes())
    }
}

/// Bytes at the end that start a multi-byte character not yet complete.
fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=3.min(bytes.len()) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 != 0x80 {
            let need = if b >= 0xF0 {
                4
            } else if b >= 0xE0 {
                3
            } else if b >= 0xC0 {
                2
            } else {
                1
            };
            return if need > back { back } else { 0 };
        }
    }
    0
}

/// Waits for changes in a few folders (inotify through `notify`), at most
/// [`FOLLOW_FALLBACK`] per wait.
struct Waiter {
    watcher: Option<notify::RecommendedWatcher>,
    events: mpsc::Receiver<()>,
    watched: Vec<PathBuf>,
}

impl Waiter {
    fn new() -> Self {
        let (tx, events) = mpsc::channel();
        let watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
            let _ = tx.send(());
        })
        .ok();
        Waiter {
            watcher,
            events,
            watched: Vec::new(),
        }
    }

    /// Watches `dir` (not recursively) once it exists.
    fn watch(&mut self, dir: &Path) {
        if self.watched.iter().any(|w| w == dir) || !dir.is_dir() {
            return;
        }
        if let Some(w) = &mut self.watcher {
            if w.watch(dir, notify::RecursiveMode::NonRecursive).is_ok() {
                self.watched.push(dir.to_path_buf());
            }
        }
    }

    /// Blocks until something changed in a watched folder, or the fallback
    /// interval passed; then drains what piled up.
    fn wait(&self) {
        let _ = self.events.recv_timeout(FOLLOW_FALLBACK);
        while self.events.try_recv().is_ok() {}
    }
}

/// The task's record as saved now; `None` once a foreground task without a
/// folder ended (its record is removed).
fn saved_record(reader: &RootReader, id: &str) -> Result<Option<TaskRecord>, Failure> {
    match reader.task(id) {
        Ok(r) => Ok(Some(r)),
        Err(InspectError::NoSuchTask { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The task's record now, as a host that holds the root shows it: with no
/// host, a task saved as running is lost, so a follower stops.
fn current(reader: &RootReader, id: &str) -> Result<Option<TaskRecord>, Failure> {
    match saved_record(reader, id)? {
        Some(r) => Ok(Some(as_host_would_show(r, reader.holder()?))),
        None => Ok(None),
    }
}

/// `agent-tasks log ID`.
pub fn log(
    root: &RootArg,
    id: &str,
    follow: bool,
    head: Option<usize>,
    tail: Option<usize>,
    raw: bool,
) -> Result<(), Failure> {
    let reader = reader(root)?;
    let record = reader.task(id)?;
    let mut printer = Printer {
        raw,
        carry: Vec::new(),
    };
    let len = reader.read_log(id, 0, 0)?.file_len;
    if !record.info.output.spilled && len == 0 && !follow {
        eprintln!(
            "agent-tasks: task {id} has no output on disk: its output is in its host's memory (a foreground task that has not spilled)"
        );
        return Ok(());
    }
    let mut offset = match tail {
        Some(n) => tail_offset(&reader, id, len, n)?,
        None => 0,
    };
    if let Some(n) = head {
        print_head(&reader, id, n, &mut printer)?;
        return printer.finish();
    }
    offset = print_range(&reader, id, offset, len, &mut printer)?;
    if !follow {
        return printer.finish();
    }
    let mut waiter = Waiter::new();
    let tasks_dir = reader.root().join("tasks");
    let foreground_dir = reader.root().join("foreground");
    loop {
        waiter.watch(&record.dir);
        waiter.watch(&tasks_dir);
        waiter.watch(&foreground_dir);
        let now = current(&reader, id)?;
        // Read what is there now, then stop if the task had ended before
        // the read: its last bytes were written before its end was saved.
        let len = reader.read_log(id, 0, 0)?.file_len;
        offset = print_range(&reader, id, offset, len, &mut printer)?;
        match now {
            Some(r) if !r.info.status.is_terminal() => {}
            Some(r) => {
                if r.info.status == TaskStatus::Lost {
                    printer.finish()?;
                    eprintln!("agent-tasks: task {id} is lost: no host holds the root (its host stopped while it ran)");
                    return Ok(());
                }
                break;
            }
            None => {
                printer.finish()?;
                eprintln!(
                    "agent-tasks: task {id} ended in the foreground without spilling its output to disk"
                );
                return Ok(());
            }
        }
        waiter.wait();
    }
    printer.finish()
}

/// Prints log bytes `[from, to)`; returns `to`.
fn print_range(
    reader: &RootReader,
    id: &str,
    mut from: u64,
    to: u64,
    printer: &mut Printer,
) -> Result<u64, Failure> {
    while from < to {
        let chunk = reader.read_log(id, from, CHUNK.min((to - from) as usize))?;
        if chunk.data.is_empty() {
            break;
        }
        printer.print(&chunk.data)?;
        from = chunk.next_offset;
    }
    Ok(from)
}

fn print_head(
    reader: &RootReader,
    id: &str,
    lines: usize,
    printer: &mut Printer,
) -> Result<(), Failure> {
    let mut offset = 0;
    let mut seen = 0;
    while seen < lines {
        let chunk = reader.read_log(id, offset, CHUNK)?;
        if chunk.data.is_empty() {
            break;
        }
        let mut end = chunk.data.len();
        for (i, b) in chunk.data.iter().enumerate() {
            if *b == b'\n' {
                seen += 1;
                if seen == lines {
                    end = i + 1;
                    break;
                }
            }
        }
        printer.print(&chunk.data[..end])?;
        offset = chunk.next_offset;
    }
    Ok(())
}

/// `agent-tasks files ID`.
pub fn files(root: &RootArg, id: &str, json: bool) -> Result<(), Failure> {
    let reader = reader(root)?;
    let record = reader.task(id)?;
    let Some(changed) = reader.changed_files(id)? else {
        if json {
            return emit(b"null\n");
        }
        let why = if record.info.status.is_terminal() {
            "changes were not tracked for it"
        } else {
            "it is still running (the report is made when it ends), or changes are not tracked"
        };
        emit(format!("task {id} has no changed-files report: {why}\n").as_bytes())?;
        return Ok(());
    };
    if json {
        return emit_json(&changed);
    }
    let style = Style::for_stdout();
    let mut out = format!(
        "{} created, {} modified, {} deleted under {}{}\n",
        changed.created.len(),
        changed.modified.len(),
        changed.deleted.len(),
        changed.root,
        if changed.truncated {
            " (the folder was too large to look at whole)"
        } else {
            ""
        }
    );
    for (mark, list) in [
        ("A", &changed.created),
        ("M", &changed.modified),
        ("D", &changed.deleted),
    ] {
        for path in list {
            out.push_str(&format!("{}  {path}\n", style.bold(mark)));
        }
    }
    emit(out.as_bytes())
}

/// A task's limits as applied, for `status`: `memory 64 MiB, pids 16`,
/// then what is not enforced and why.
fn limits_text(limits: &agent_tasks::LimitsInfo) -> String {
    let mut text = limits.enforced.text();
    if text.is_empty() {
        text.push_str("none enforced");
    }
    if let Some(missing) = &limits.not_enforced {
        text.push_str(&format!(
            "; not enforced: {} ({})",
            missing.limits.text(),
            missing.reason
        ));
    }
    text
}

fn event_line(event: &agent_tasks::Event) -> String {
    let (name, detail) = match &event.kind {
        EventKind::Started {
            kind,
            owner,
            background,
            ..
        } => (
            "started",
            format!(
                "{kind}, owner {owner}, {}",
                if *background {
                    "background"
                } else {
                    "foreground"
                }
            ),
        ),
        EventKind::Queued { kind, owner, .. } => ("queued", format!("{kind}, owner {owner}")),
        EventKind::Detached {} => ("detached", String::new()),
        EventKind::Reattached { pid } => (
            "reattached",
            pid.map(|pid| format!("by a new host, process {pid}"))
                .unwrap_or_else(|| "by a new host".to_string()),
        ),
        EventKind::Paused {} => ("paused", String::new()),
        EventKind::Resumed {} => ("resumed", String::new()),
        EventKind::Spilled { buffered_bytes, .. } => (
            "spilled",
            format!(
                "{} buffered in memory went first",
                human::size(*buffered_bytes)
            ),
        ),
        EventKind::Finished {
            status,
            exit,
            reason,
            error,
            duration_ms,
        } => {
            let mut d = format!("{status} after {}", human::duration(*duration_ms));
            if let Some(e) = exit {
                match (e.code, e.signal) {
                    (Some(c), _) => d.push_str(&format!(", exit {c}")),
                    (None, Some(s)) => d.push_str(&format!(", signal {s}")),
                    _ => {}
                }
            }
            if let Some(r) = reason {
                d.push_str(&format!(", {r}"));
            }
            if let Some(e) = error {
                d.push_str(&format!(", {}", human::one_line(e, 80)));
            }
            ("finished", d)
        }
        EventKind::LimitReached {
            limit,
            scope,
            value,
            count,
        } => (
            "limit_reached",
            agent_tasks::LimitReached {
                limit: *limit,
                scope: *scope,
                value: *value,
                count: *count,
            }
            .line(),
        ),
        EventKind::Lost {} => ("lost", String::new()),
        EventKind::Orphaned { pid } => ("orphaned", format!("pid {pid} still runs")),
        EventKind::OutputDropped { disk_limit } => (
            "output_dropped",
            format!("the log reached its cap of {}", human::size(*disk_limit)),
        ),
        EventKind::WatchMatched { line } => ("watch_matched", human::one_line(line, 100)),
        EventKind::Heartbeat { new_bytes } => {
            ("heartbeat", format!("{} new", human::size(*new_bytes)))
        }
        EventKind::Stalled { idle_ms } => (
            "stalled",
            format!("silent for {}", human::duration(*idle_ms)),
        ),
        EventKind::SinkError { sink, error } => ("sink_error", format!("{sink}: {error}")),
    };
    format!(
        "{:>6}  {:<14}  {}  {detail}",
        event.seq,
        name,
        human::ago(event.timestamp_ms)
    )
    .trim_end()
    .to_string()
}

/// `agent-tasks events ID`.
pub fn events(root: &RootArg, id: &str, follow: bool, json: bool) -> Result<(), Failure> {
    let reader = reader(root)?;
    let record = reader.task(id)?;
    let mut offset = 0;
    let mut waiter = Waiter::new();
    loop {
        waiter.watch(&record.dir);
        waiter.watch(&reader.root().join("tasks"));
        let now = current(&reader, id)?;
        let chunk = reader.events(id, offset)?;
        offset = chunk.next_offset;
        let mut out = String::new();
        for event in &chunk.events {
            if json {
                out.push_str(&serde_json::to_string(event)?);
            } else {
                out.push_str(&event_line(event));
            }
            out.push('\n');
        }
        emit(out.as_bytes())?;
        for p in &chunk.problems {
            eprintln!("agent-tasks: {}: {}", p.path.display(), p.message);
        }
        let ended = now.is_none_or(|r| r.info.status.is_terminal());
        if !follow || ended {
            return Ok(());
        }
        waiter.wait();
    }
}

/// `agent-tasks kill ID`.
pub fn kill(root: &RootArg, id: &str, grace: f64) -> Result<(), Failure> {
    let reader = reader(root)?;
    let holder = reader.holder()?;
    let saved = reader.task(id)?;
    let grace = Duration::try_from_secs_f64(grace)
        .map_err(|_| Failure(format!("--grace {grace}: give seconds, 0 or more")))?;
    // Saved as running, but no host holds the root: its host stopped.
    let lost = !holder.is_held() && !saved.info.status.is_terminal();
    let record = as_host_would_show(saved, holder);
    let info = &record.info;
    if info.status.is_terminal() && info.orphan_pid.is_none() {
        let text = if lost {
            format!(
                "task {id} is lost: no host holds the root (its host stopped while it ran) and its process is not running; nothing to stop\n"
            )
        } else {
            format!(
                "task {id} already ended ({}); nothing to stop\n",
                info.status
            )
        };
        return emit(text.as_bytes());
    }
    let pid = info.orphan_pid.or(info.pid);
    // The host is told who stopped its task: a request saved before the
    // signal, which it reads when it sees the process die.
    // (A supervised task's supervisor reads it too, with no host.)
    let told = holder.is_held() || record.supervised;
    let request_saved = match (told && !info.status.is_terminal(), pid) {
        (true, Some(pid)) => {
            KillRequest::from_this_process("agent-tasks kill", pid).save(&record)?;
            true
        }
        _ => false,
    };
    let outcome = kill_task_processes(info, record.process_start_time, grace);
    if request_saved && !matches!(outcome, Ok(KillOutcome::Terminated | KillOutcome::Killed)) {
        // Nothing was signalled: the request must not label an end that
        // is not this command's doing.
        let _ = std::fs::remove_file(record.dir.join(KILL_REQUEST_FILE));
    }
    let outcome = outcome?;
    let pid = pid.map_or_else(|| "?".to_string(), |p| p.to_string());
    let what = match outcome {
        KillOutcome::Terminated => {
            format!("task {id}: sent SIGTERM to pid {pid} and its processes; they ended within the grace")
        }
        KillOutcome::Killed => format!(
            "task {id}: sent SIGTERM to pid {pid} and its processes; still alive after {}: sent SIGKILL",
            human::duration(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX))
        ),
        KillOutcome::NotRunning => {
            format!("task {id}: its process (pid {pid}) is not running; nothing was signalled")
        }
    };
    emit(format!("{what}\n").as_bytes())?;
    if lost {
        return emit(
            b"no host holds the root, so none records this end: the task stays lost (a host that opens the root shows it so)\n",
        );
    }
    if info.status.is_terminal() {
        return Ok(()); // an orphan: no host records anything
    }
    // The host sees its process end and records it: wait a little for that.
    let mut waiter = Waiter::new();
    let deadline = Instant::now() + HOST_RECORD_WAIT;
    let recorded = |r: &TaskRecord| {
        let mut text = format!("the host recorded its end: {}", r.info.status);
        if let Some(reason) = &r.info.cancel_reason {
            text.push_str(&format!(" ({reason})"));
        } else if r.info.exit.is_some() {
            text.push_str(&format!(" (exit {})", exit_text(&r.info)));
        }
        text.push('\n');
        text
    };
    loop {
        waiter.watch(&record.dir);
        waiter.watch(&reader.root().join("foreground"));
        match saved_record(&reader, id)? {
            Some(r) if r.info.status.is_terminal() => return emit(recorded(&r).as_bytes()),
            None => return emit(b"the host recorded its end (its foreground record is gone)\n"),
            Some(_) if !reader.holder()?.is_held() => {
                // The host may have recorded the end and left between the
                // read above and this one: the record is read once more.
                return match saved_record(&reader, id)? {
                    Some(r) if r.info.status.is_terminal() => emit(recorded(&r).as_bytes()),
                    None => emit(b"the host recorded its end (its foreground record is gone)\n"),
                    Some(_) => emit(
                        b"its host stopped before it recorded the end: the task is lost (a host that opens the root shows it so)\n",
                    ),
                };
            }
            Some(_) if Instant::now() >= deadline => {
                let host = match reader.holder()? {
                    RootHolder::Host { pid: Some(pid) } => format!("its host (pid {pid})"),
                    _ => "its host".to_string(),
                };
                return emit(
                    format!(
                        "{host} holds the root but has not recorded the end within {}\n",
                        human::duration(
                            u64::try_from(HOST_RECORD_WAIT.as_millis()).unwrap_or(u64::MAX)
                        )
                    )
                    .as_bytes(),
                );
            }
            Some(_) => waiter.wait(),
        }
    }
}

/// `agent-tasks notifications`.
pub fn notifications(root: &RootArg, owner: Option<&str>, json: bool) -> Result<(), Failure> {
    let reader = reader(root)?;
    let (pending, problems) = reader.notifications(owner);
    if json {
        return emit_json(&pending);
    }
    let style = Style::for_stdout();
    let mut out = format!("{} pending notification(s)\n", pending.len());
    for n in &pending {
        out.push_str(&format!(
            "\n{}  {}  owner {}  {}\n",
            style.bold(&n.id),
            style.status(n.status, &format!("{:?}", n.kind).to_lowercase()),
            n.owner,
            human::ago(n.created_at_ms)
        ));
        for line in n.text.trim_end().lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str(&problems_text(&problems, style));
    emit(out.as_bytes())
}

/// `agent-tasks gc`: only when no host holds the root.
pub fn gc(root: &RootArg, max_age: Option<&str>, max_count: Option<usize>) -> Result<(), Failure> {
    let reader = reader(root)?;
    let max_age = max_age
        .map(|a| human::parse_duration(a).map_err(|e| Failure(format!("--max-age: {e}"))))
        .transpose()?;
    if max_age.is_none() && max_count.is_none() {
        return Err(Failure(
            "say what to remove: --max-age D (e.g. 7d) and/or --max-count N".to_string(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let manager = match TaskManager::open(reader.root()) {
            Ok(m) => m,
            Err(agent_tasks::Error::RootInUse { .. }) => {
                return Err(Failure(format!(
                    "gc refused: a host holds the root {} (it has it open); run gc from that host, or when it has stopped",
                    reader.root().display()
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let report = manager.gc(max_age, max_count);
        manager.shutdown("gc done").await;
        let report = report?;
        let mut out = format!("removed {} ended task(s)\n", report.removed.len());
        for id in &report.removed {
            out.push_str(&format!("  {id}\n"));
        }
        emit(out.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::incomplete_tail;

    #[test]
    fn an_incomplete_character_at_the_end_is_kept() {
        assert_eq!(incomplete_tail("é".as_bytes()), 0);
        assert_eq!(incomplete_tail(&"é".as_bytes()[..1]), 1);
        assert_eq!(incomplete_tail(&"€".as_bytes()[..2]), 2);
        assert_eq!(incomplete_tail(b"abc"), 0);
    }
}
