//! The journal of running foreground processes,
//! `<root>/foreground/records.jsonl`: one line when a foreground process
//! task without a folder gets its pid (`{"start": <manifest>}`), one when it
//! ends or gets a folder (`{"end": "<id>"}`). If the host crashes meanwhile,
//! the next `open` finds the starts without an end and reports those tasks
//! lost (or orphaned, while their process lives), like background tasks.
//!
//! Why a journal and not a file per task: a spawn then costs one append to
//! an open file instead of creating and unlinking a file (an inode created
//! and freed per command, the largest part of a short command's overhead).
//! The journal is rewritten with only the live starts once it has grown
//! past [`COMPACT_AT`] lines and most of them are done. Lines are appended
//! with one `write` each and not synced: the journal must outlive a crash
//! of the host, not of the machine. An append is all or nothing: one that
//! fails part way (a full disk) is cut off again, so the next line is whole.
//! A torn last line (a crash mid-append) is skipped, and a record glued onto
//! a torn line is still found.
//!
//! Reading ([`read_journal`]) is separate from writing, for readers that
//! must not write (the `agent-tasks` command). Roots written by earlier
//! versions kept one `<id>.json` per task in the same folder: those are
//! read too, and folded into the journal by [`ForegroundJournal::load`].

use std::collections::HashMap;
use std::fs::File;
#[cfg(test)]
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::id::TaskId;
use crate::manifest::Manifest;
use crate::root_dir::{append_whole, Access, Folder, RootDir};
use crate::util::lock;

/// The journal's file name in `<root>/foreground/`.
pub(crate) const JOURNAL_FILE: &str = "records.jsonl";

/// Lines past which the journal is rewritten with the live starts only
/// (when fewer than half of its lines are live ones).
const COMPACT_AT: usize = 512;

/// One line of the journal, as read back ([`LineOut`] writes it).
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Start(Box<Manifest>),
    End(TaskId),
}

/// A [`Line`] to write, borrowing what it records (same JSON).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum LineOut<'a> {
    Start(&'a Manifest),
    End(&'a TaskId),
}

impl LineOut<'_> {
    /// The line's bytes, newline included.
    fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        // Room for a usual line without regrowing (a start is about 400
        // bytes).
        let mut line = Vec::with_capacity(match self {
            LineOut::Start(_) => 768,
            LineOut::End(_) => 64,
        });
        serde_json::to_writer(&mut line, self).map_err(std::io::Error::other)?;
        line.push(b'\n');
        Ok(line)
    }
}

/// What a read of the journal found.
#[derive(Default)]
pub(crate) struct JournalRead {
    /// The records of processes started and not ended, oldest first.
    pub live: Vec<Manifest>,
    /// Unreadable records: the file, and what is wrong.
    pub problems: Vec<(PathBuf, String)>,
    /// Files of the older one-file-per-task layout that were read.
    pub legacy_files: Vec<PathBuf>,
}

/// Reads the journal in the folder at `dir` (and any older per-task record
/// files there), without writing anything: for readers by path (the
/// `agent-tasks` command).
pub(crate) fn read_journal(dir: &Path) -> JournalRead {
    match RootDir::open(dir) {
        Ok(opened) => read_journal_in(&opened.folder("")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => JournalRead::default(),
        Err(e) => JournalRead {
            problems: vec![(dir.to_path_buf(), e.to_string())],
            ..JournalRead::default()
        },
    }
}

/// [`read_journal`] of a folder reached through a root's descriptor.
pub(crate) fn read_journal_in(dir: &Folder) -> JournalRead {
    let mut read = JournalRead::default();
    let mut live: Vec<Manifest> = Vec::new();
    let path = dir.path().join(JOURNAL_FILE);
    match dir.read(JOURNAL_FILE) {
        Ok(bytes) => {
            let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
            let last = lines.len().saturating_sub(1);
            for (n, line) in lines.iter().enumerate() {
                if line.is_empty() {
                    continue;
                }
                match parse_line(line) {
                    Ok(Line::Start(manifest)) => {
                        live.retain(|m| m.info.id != manifest.info.id);
                        live.push(*manifest);
                    }
                    Ok(Line::End(id)) => live.retain(|m| m.info.id != id),
                    // The last line may be torn by a crash mid-append.
                    Err(_) if n == last => {}
                    Err(e) => read
                        .problems
                        .push((path.clone(), format!("line {}: {e}", n + 1))),
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => read.problems.push((path.clone(), e.to_string())),
    }
    if let Ok(entries) = dir.entries() {
        for (name, _) in entries {
            let Some(Ok(id)) = name.strip_suffix(".json").map(TaskId::parse) else {
                continue; // not a record of ours
            };
            let file = dir.path().join(&name);
            match dir
                .read(&name)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Manifest>(&b).map_err(|e| e.to_string()))
            {
                Ok(m) if m.info.id == id => {
                    if !live.iter().any(|l| l.info.id == id) {
                        live.push(m);
                    }
                }
                Ok(_) => read
                    .problems
                    .push((file.clone(), "the id does not match".to_string())),
                // A record removed while being read is gone, not torn.
                Err(_) if !dir.exists(&name) => continue,
                Err(e) => read.problems.push((file.clone(), e)),
            }
            read.legacy_files.push(file);
        }
    }
    read.live = live;
    read
}

/// The journal a manager writes (it holds the root, so it is the only
/// writer).
#[derive(Debug)]
pub(crate) struct ForegroundJournal {
    /// `<root>/foreground`, through the locked root's descriptor.
    dir: Folder,
    state: Mutex<JournalState>,
}

#[derive(Debug, Default)]
struct JournalState {
    /// Open for appending once something was written.
    file: Option<File>,
    /// The file's length: where a failed append is cut back to.
    len: u64,
    /// A failed append could not be cut back: the file ends in a torn line,
    /// so the next append starts on a new line.
    torn: bool,
    /// The start lines of the live records, by task.
    live: HashMap<TaskId, Vec<u8>>,
    /// Lines in the file now.
    lines: usize,
}

impl ForegroundJournal {
    /// The journal in `dir` (`<root>/foreground`, reached through the
    /// root's descriptor; unit tests may name it by path).
    pub(crate) fn new(dir: impl Into<Folder>) -> Self {
        ForegroundJournal {
            dir: dir.into(),
            state: Mutex::new(JournalState::default()),
        }
    }

    /// Records that a foreground process runs (its manifest, with its pid).
    pub(crate) fn record_start(&self, manifest: &Manifest) -> std::io::Result<()> {
        let line = LineOut::Start(manifest).to_bytes()?;
        let mut state = lock(&self.state);
        self.append(&mut state, &line)?;
        state.live.insert(manifest.info.id.clone(), line);
        Ok(())
    }

    /// Records that the process of task `id` is no longer only known here
    /// (it ended, or the task got a folder). Nothing for a task with no
    /// live record.
    pub(crate) fn record_end(&self, id: &TaskId) -> std::io::Result<()> {
        let mut state = lock(&self.state);
        if state.live.remove(id).is_none() {
            return Ok(());
        }
        if state.lines + 1 >= COMPACT_AT
            && state.lines + 1 > 2 * state.live.len()
            && self.rewrite(&mut state).is_ok()
        {
            return Ok(());
        }
        // (A rewrite that failed, on a full disk say, leaves the old file:
        // the end line is appended to it.)
        let line = LineOut::End(id).to_bytes()?;
        self.append(&mut state, &line)
    }

    /// Reads what an earlier host left (see [`read_journal`]) and starts a
    /// fresh journal holding those records, the older per-task files folded
    /// in. For `open`, before any task runs.
    pub(crate) fn load(&self) -> JournalRead {
        let read = read_journal_in(&self.dir);
        let mut state = lock(&self.state);
        state.live = read
            .live
            .iter()
            .filter_map(|m| {
                let line = LineOut::Start(m).to_bytes().ok()?;
                Some((m.info.id.clone(), line))
            })
            .collect();
        let journal_exists = self.dir.exists(JOURNAL_FILE);
        if !state.live.is_empty() || journal_exists {
            // Written before the older files go, so a crash in between
            // loses no record.
            if self.rewrite(&mut state).is_ok() {
                for file in &read.legacy_files {
                    if let Some(name) = file.file_name().and_then(|n| n.to_str()) {
                        let _ = self.dir.remove_file(name);
                    }
                }
            }
        }
        read
    }

    fn append(&self, state: &mut JournalState, line: &[u8]) -> std::io::Result<()> {
        if state.file.is_none() {
            self.dir.create()?;
            let file = self.dir.open_file(JOURNAL_FILE, Access::Append)?;
            state.lines = lines_in(&self.dir);
            state.len = file.metadata()?.len();
            state.file = Some(file);
        }
        let Some(file) = state.file.as_ref() else {
            return Err(std::io::Error::other("the journal is not open"));
        };
        // All or nothing: a line cut short by a full disk is cut off, so the
        // next line (once there is room) is whole and readable.
        if state.torn && file.set_len(state.len).is_ok() {
            state.torn = false;
        }
        let framed;
        let line = if state.torn {
            framed = [b"\n".as_slice(), line].concat();
            framed.as_slice()
        } else {
            line
        };
        match append_whole(file, state.len, line) {
            Ok(()) => {
                state.len += line.len() as u64;
                state.lines += 1;
                state.torn = false;
                Ok(())
            }
            Err(e) => {
                state.torn |= e.torn;
                Err(e.error)
            }
        }
    }

    /// Replaces the file with the live starts only (temp file, rename).
    fn rewrite(&self, state: &mut JournalState) -> std::io::Result<()> {
        self.dir.create()?;
        let temp = format!(".{JOURNAL_FILE}.tmp");
        let mut file = self.dir.open_file(&temp, Access::Replace)?;
        let body: Vec<u8> = state.live.values().flatten().copied().collect();
        file.write_all(&body)?;
        self.dir.rename(&temp, JOURNAL_FILE)?;
        // The renamed file is the journal now: the old descriptor names the
        // replaced one, so it goes (an append reopens the journal if the
        // open below fails).
        state.file = None;
        state.lines = state.live.len();
        state.len = body.len() as u64;
        state.torn = false;
        let file = self.dir.open_file(JOURNAL_FILE, Access::Append)?;
        state.file = Some(file);
        Ok(())
    }
}

fn lines_in(dir: &Folder) -> usize {
    dir.read(JOURNAL_FILE)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

/// Reads one line. A line that does not parse is read from the first `{"`
/// past its start from which it does: where a record glued onto a torn one
/// begins (a journal written before torn appends were cut off).
fn parse_line(line: &[u8]) -> serde_json::Result<Line> {
    serde_json::from_slice::<Line>(line).or_else(|e| {
        let starts = line.windows(2).enumerate().filter(|(_, w)| w == b"{\"");
        starts
            .map(|(i, _)| i)
            .filter(|i| *i > 0)
            .find_map(|i| serde_json::from_slice::<Line>(&line[i..]).ok())
            .ok_or(e)
    })
}

#[cfg(test)]
fn count_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::info::TaskInfo;

    fn manifest(id: &str) -> Manifest {
        let info: TaskInfo = serde_json::from_value(serde_json::json!({
            "id": format!("proc-{id}0000"), "kind": "process", "description": "sleep 1000", "owner": "o",
            "status": "running", "foreground": true, "detached": false,
            "keep_alive": false, "created_at_ms": 1, "duration_ms": 0,
            "output": {"total_bytes": 0, "stdout_bytes": 0, "stderr_bytes": 0,
                       "spilled": false, "omitted_bytes": 0, "disk_bytes": 0,
                       "memory_bytes": 0}
        }))
        .expect("a task info");
        Manifest::new(info, Some(7))
    }

    fn id(s: &str) -> TaskId {
        TaskId::parse(&format!("proc-{s}0000")).expect("an id")
    }

    #[test]
    fn starts_without_an_end_are_live_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = ForegroundJournal::new(dir.path().to_path_buf());
        journal.record_start(&manifest("a")).expect("start a");
        journal.record_start(&manifest("b")).expect("start b");
        journal.record_end(&id("a")).expect("end a");
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL_FILE))
            .expect("open");
        file.write_all(b"{\"start\": {\"vers").expect("torn line");
        let read = read_journal(dir.path());
        let live: Vec<_> = read
            .live
            .iter()
            .map(|m| {
                m.info
                    .id
                    .to_string()
                    .replace("proc-", "")
                    .replace("0000", "")
            })
            .collect();
        assert_eq!(live, ["b"]);
        assert!(read.problems.is_empty(), "{:?}", read.problems);
    }

    #[test]
    fn a_record_glued_onto_a_torn_line_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut body = b"{\"start\": {\"version\": 1, \"in".to_vec();
        body.extend(LineOut::Start(&manifest("b")).to_bytes().expect("line"));
        std::fs::write(dir.path().join(JOURNAL_FILE), body).expect("write");
        let read = read_journal(dir.path());
        assert_eq!(read.live.len(), 1);
        assert_eq!(read.live[0].info.id, id("b"));
    }

    #[test]
    fn the_journal_is_compacted_and_stays_correct() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = ForegroundJournal::new(dir.path().to_path_buf());
        journal.record_start(&manifest("keep")).expect("start");
        for i in 0..3 * COMPACT_AT {
            let name = format!("t{i}");
            journal.record_start(&manifest(&name)).expect("start");
            journal.record_end(&id(&name)).expect("end");
        }
        let lines = count_lines(&dir.path().join(JOURNAL_FILE));
        assert!(lines < COMPACT_AT + 2, "{lines} lines: not compacted");
        let live: Vec<_> = read_journal(dir.path())
            .live
            .iter()
            .map(|m| {
                m.info
                    .id
                    .to_string()
                    .replace("proc-", "")
                    .replace("0000", "")
            })
            .collect();
        assert_eq!(live, ["keep"]);
    }

    #[test]
    fn a_load_folds_older_record_files_into_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("proc-old0000.json");
        std::fs::write(&old, serde_json::to_vec(&manifest("old")).expect("json")).expect("write");
        let journal = ForegroundJournal::new(dir.path().to_path_buf());
        let read = journal.load();
        assert_eq!(read.live.len(), 1);
        assert!(!old.exists());
        let live: Vec<_> = read_journal(dir.path())
            .live
            .iter()
            .map(|m| {
                m.info
                    .id
                    .to_string()
                    .replace("proc-", "")
                    .replace("0000", "")
            })
            .collect();
        assert_eq!(live, ["old"]);
        journal.record_end(&id("old")).expect("end");
        assert!(read_journal(dir.path()).live.is_empty());
    }
}
