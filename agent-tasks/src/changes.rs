//! Changed-file tracking: which files a task created, modified or deleted
//! in a folder, from size and mtime snapshots taken before and after it ran.
//! The walk honours `.gitignore` (via the `ignore` crate, the walker ripgrep
//! uses) and skips `.git`; it stops after a bounded number of files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

/// Files a snapshot looks at, at most; past this the result says `truncated`.
const MAX_FILES: usize = 100_000;

/// What a task changed in its tracked folder (paths relative to it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChangedFiles {
    /// The folder that was tracked.
    pub root: String,
    /// Files that exist now and did not before.
    pub created: Vec<String>,
    /// Files whose size or modification time changed.
    pub modified: Vec<String>,
    /// Files that existed before and do not now.
    pub deleted: Vec<String>,
    /// True if the folder held more files than a snapshot looks at.
    pub truncated: bool,
}

/// Size and modification time of every file under a folder.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    files: BTreeMap<PathBuf, (u64, u128)>,
    truncated: bool,
}

pub(crate) fn snapshot(root: &Path) -> Snapshot {
    let mut snap = Snapshot::default();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(true)
        .require_git(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .build();
    for entry in walker.flatten() {
        if snap.files.len() >= MAX_FILES {
            snap.truncated = true;
            break;
        }
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .to_path_buf();
        snap.files.insert(rel, (meta.len(), mtime));
    }
    snap
}

pub(crate) fn diff(root: &Path, before: &Snapshot, after: &Snapshot) -> ChangedFiles {
    let show = |p: &PathBuf| p.to_string_lossy().into_owned();
    let mut changes = ChangedFiles {
        root: root.display().to_string(),
        truncated: before.truncated || after.truncated,
        ..ChangedFiles::default()
    };
    for (path, meta) in &after.files {
        match before.files.get(path) {
            None => changes.created.push(show(path)),
            Some(old) if old != meta => changes.modified.push(show(path)),
            Some(_) => {}
        }
    }
    for path in before.files.keys() {
        if !after.files.contains_key(path) {
            changes.deleted.push(show(path));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_created_modified_deleted_and_honours_gitignore() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "target/\n*.log\n").expect("write");
        std::fs::write(root.join("keep.txt"), "same").expect("write");
        std::fs::write(root.join("edit.txt"), "old").expect("write");
        std::fs::write(root.join("gone.txt"), "bye").expect("write");
        let before = snapshot(root);
        std::fs::write(root.join("edit.txt"), "new content").expect("write");
        std::fs::remove_file(root.join("gone.txt")).expect("rm");
        std::fs::create_dir(root.join("src")).expect("mkdir");
        std::fs::write(root.join("src/new.rs"), "fn main() {}").expect("write");
        std::fs::create_dir(root.join("target")).expect("mkdir");
        std::fs::write(root.join("target/out.bin"), "ignored").expect("write");
        std::fs::write(root.join("build.log"), "ignored").expect("write");
        let after = snapshot(root);
        let changes = diff(root, &before, &after);
        assert_eq!(changes.created, vec!["src/new.rs"]);
        assert_eq!(changes.modified, vec!["edit.txt"]);
        assert_eq!(changes.deleted, vec!["gone.txt"]);
        assert!(!changes.truncated);
    }
}
