//! The root folder a manager locked, held as a descriptor, and the folders
//! under it. Every file a manager writes or reads under its root is opened
//! relative to that descriptor (`openat`, `mkdirat`, `renameat`,
//! `unlinkat`), never by path: if the root is removed while the manager
//! holds it and a folder is made again at the same path (which another
//! manager may then open and lock), the first manager's I/O stays in the
//! folder it locked (and fails once that is gone), so two managers never
//! write into one root and neither reads the other's files. Paths are kept
//! only to show to people (`log_path`, error texts).
//!
//! This module only opens, reads and writes; what goes where is the
//! store's, the journal's, the notifications' and the output's business.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Mode of the folders made under a root.
const DIR_MODE: u32 = 0o700;
/// Mode of the files made under a root.
const FILE_MODE: u32 = 0o600;

/// An open root folder: its descriptor, and its path for messages.
#[derive(Clone, Debug)]
pub(crate) struct RootDir {
    fd: Arc<OwnedFd>,
    path: Arc<PathBuf>,
}

impl RootDir {
    /// Opens the folder at `path`.
    pub(crate) fn open(path: &Path) -> std::io::Result<RootDir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(RootDir {
            fd: Arc::new(fd),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// The folder `dir` is open on (whatever is at `path` now), opened
    /// anew from that descriptor: an open file description of its own, so
    /// an `flock` on `dir` is not held by this one.
    pub(crate) fn reopen(dir: &impl AsFd, path: &Path) -> std::io::Result<RootDir> {
        let fd = rustix::fs::openat(
            dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(RootDir {
            fd: Arc::new(fd),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// The path the root was opened at (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The folder at `rel` under the root (`rel` is made of plain names the
    /// crate chose or validated, such as `tasks/<id>`; empty for the root
    /// itself). Nothing is opened until it is used.
    pub(crate) fn folder(&self, rel: impl Into<PathBuf>) -> Folder {
        Folder {
            root: self.clone(),
            rel: rel.into(),
        }
    }
}

/// A folder under a root, reached through the root's descriptor.
#[derive(Clone, Debug)]
pub(crate) struct Folder {
    root: RootDir,
    rel: PathBuf,
}

/// Appends `bytes` to `file` (open for appending, `len` bytes long) all or
/// nothing: if the write fails part way (a full disk), the part written is
/// cut off again, so the next append does not glue onto a torn line.
/// Returns the error; `Err` with the file still torn only if even the cut
/// failed (then [`AppendError::torn`] is set).
pub(crate) fn append_whole(
    file: &std::fs::File,
    len: u64,
    bytes: &[u8],
) -> Result<(), AppendError> {
    match (&*file).write_all(bytes) {
        Ok(()) => Ok(()),
        Err(error) => {
            let torn = file.set_len(len).is_err();
            Err(AppendError { error, torn })
        }
    }
}

/// A failed [`append_whole`].
#[derive(Debug)]
pub(crate) struct AppendError {
    pub error: std::io::Error,
    /// The part written could not be cut off: the file ends in a torn line.
    pub torn: bool,
}

impl From<AppendError> for std::io::Error {
    fn from(e: AppendError) -> Self {
        e.error
    }
}

#[cfg(test)]
impl From<PathBuf> for Folder {
    /// For unit tests that name a folder by path: the folder at `path`,
    /// reached through its parent opened as a root (which must exist).
    fn from(path: PathBuf) -> Folder {
        let parent = path.parent().expect("the folder has a parent");
        let name = path.file_name().expect("the folder has a name");
        RootDir::open(parent)
            .expect("the parent folder opens")
            .folder(name)
    }
}

/// How [`Folder::open_file`] opens a file.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Access {
    /// Read only; the file must exist.
    Read,
    /// Append (and read), created 0600 if missing.
    Append,
    /// Write from empty: created 0600 if missing, truncated if not.
    Replace,
}

impl Folder {
    /// The folder's path (for messages).
    pub(crate) fn path(&self) -> PathBuf {
        self.root.path().join(&self.rel)
    }

    /// `name` in this folder, relative to the root's descriptor.
    fn at(&self, name: &str) -> PathBuf {
        if self.rel.as_os_str().is_empty() {
            PathBuf::from(name)
        } else {
            self.rel.join(name)
        }
    }

    /// The relative path of the folder itself (`.` for the root).
    fn here(&self) -> &Path {
        if self.rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &self.rel
        }
    }

    /// Makes the folder (and the ones above it, under the root) with mode
    /// 0700 if missing.
    pub(crate) fn create(&self) -> std::io::Result<()> {
        let mut made = PathBuf::new();
        for part in self.rel.components() {
            made.push(part);
            match rustix::fs::mkdirat(&*self.root.fd, &made, Mode::from_raw_mode(DIR_MODE)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Opens the folder itself (for listing it, or syncing it).
    pub(crate) fn open_dir(&self) -> std::io::Result<OwnedFd> {
        Ok(rustix::fs::openat(
            &*self.root.fd,
            self.here(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    /// Opens `name` in the folder (see [`Access`]). The folder must exist.
    pub(crate) fn open_file(&self, name: &str, access: Access) -> std::io::Result<File> {
        let flags = match access {
            Access::Read => OFlags::RDONLY,
            Access::Append => OFlags::RDWR | OFlags::APPEND | OFlags::CREATE,
            Access::Replace => OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC,
        };
        let fd = rustix::fs::openat(
            &*self.root.fd,
            self.at(name),
            flags | OFlags::CLOEXEC,
            Mode::from_raw_mode(FILE_MODE),
        )?;
        Ok(File::from(fd))
    }

    /// The whole content of `name`.
    pub(crate) fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        let mut file = self.open_file(name, Access::Read)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Whether `name` exists in the folder (a failure to ask counts as no).
    pub(crate) fn exists(&self, name: &str) -> bool {
        rustix::fs::statat(&*self.root.fd, self.at(name), AtFlags::empty()).is_ok()
    }

    /// The length of file `name`.
    pub(crate) fn file_len(&self, name: &str) -> std::io::Result<u64> {
        let stat = rustix::fs::statat(&*self.root.fd, self.at(name), AtFlags::empty())?;
        Ok(u64::try_from(stat.st_size).unwrap_or(0))
    }

    /// Appends `bytes` to `name` (created 0600 if missing), all or nothing
    /// ([`append_whole`]). The folder is made if missing.
    pub(crate) fn append(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.create()?;
        let file = self.open_file(name, Access::Append)?;
        let len = file.metadata()?.len();
        append_whole(&file, len, bytes).map_err(Into::into)
    }

    /// Writes `name` atomically: a temp file in the folder, fsync, rename
    /// over `name`, then fsync of the folder so the rename itself is
    /// durable. The folder is made if missing.
    pub(crate) fn write_atomic(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.write_whole(name, bytes, true)
    }

    /// Writes `name` whole or not at all (a temp file renamed over it), with
    /// no fsync: for a record whose value ends with a machine crash anyway
    /// (a supervisor's spec and exit record: after a reboot its task is
    /// lost whatever they say), so a process crash never tears it and no
    /// spawn waits for the disk.
    pub(crate) fn write_whole_unsynced(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.write_whole(name, bytes, false)
    }

    fn write_whole(&self, name: &str, bytes: &[u8], sync: bool) -> std::io::Result<()> {
        self.create()?;
        let dir = self.open_dir()?;
        let (temp_name, temp) = create_temp(&dir, name)?;
        let written = (|| -> std::io::Result<()> {
            let mut temp = File::from(temp);
            temp.write_all(bytes)?;
            if sync {
                temp.sync_all()?;
            }
            rustix::fs::renameat(&dir, &temp_name, &dir, name)?;
            Ok(())
        })();
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&dir, &temp_name, AtFlags::empty());
        }
        written?;
        if sync {
            rustix::fs::fsync(&dir)?;
        }
        Ok(())
    }

    /// Renames `from` to `to` in the folder (replacing `to`).
    pub(crate) fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        Ok(rustix::fs::renameat(
            &*self.root.fd,
            self.at(from),
            &*self.root.fd,
            self.at(to),
        )?)
    }

    /// Removes file `name`; a missing one is an error of kind `NotFound`.
    pub(crate) fn remove_file(&self, name: &str) -> std::io::Result<()> {
        Ok(rustix::fs::unlinkat(
            &*self.root.fd,
            self.at(name),
            AtFlags::empty(),
        )?)
    }

    /// The names in the folder (`.` and `..` left out), and whether each
    /// is a folder. A missing folder is an error of kind `NotFound`.
    pub(crate) fn entries(&self) -> std::io::Result<Vec<(String, bool)>> {
        let dir = self.open_dir()?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir)? {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let name = name.to_string_lossy().into_owned();
            let is_dir = match entry.file_type() {
                FileType::Directory => true,
                // Some file systems do not say in the listing: ask.
                FileType::Unknown => {
                    rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok_and(
                        |stat| FileType::from_raw_mode(stat.st_mode) == FileType::Directory,
                    )
                }
                _ => false,
            };
            names.push((name, is_dir));
        }
        Ok(names)
    }

    /// Removes the folder and everything in it; a missing folder is fine.
    pub(crate) fn remove_all(&self) -> std::io::Result<()> {
        let entries = match self.entries() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        for (name, is_dir) in entries {
            if is_dir {
                self.root.folder(self.at(&name)).remove_all()?;
            } else {
                match self.remove_file(&name) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    other => other?,
                }
            }
        }
        match rustix::fs::unlinkat(&*self.root.fd, self.here(), AtFlags::REMOVEDIR) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Creates a fresh temp file for `name` in `dir` (0600, exclusive), and
/// returns its name. The names carry the pid and a counter, so two writers
/// of one process never share one; a name left by a crash is skipped.
fn create_temp(dir: &impl AsFd, name: &str) -> std::io::Result<(String, OwnedFd)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let temp_name = format!(".tmp-{name}-{}-{n}", std::process::id());
        match rustix::fs::openat(
            dir,
            temp_name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(FILE_MODE),
        ) {
            Ok(fd) => return Ok((temp_name, fd)),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_and_remade_root_is_not_written_through_the_old_descriptor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("root");
        std::fs::create_dir(&path).expect("mkdir");
        let root = RootDir::open(&path).expect("open");
        let tasks = root.folder("tasks/t1");
        tasks.write_atomic("a.json", b"1").expect("write");
        assert_eq!(tasks.read("a.json").expect("read"), b"1");
        assert_eq!(
            tasks.entries().expect("list"),
            [("a.json".to_string(), false)]
        );
        std::fs::remove_dir_all(&path).expect("rm");
        std::fs::create_dir(&path).expect("mkdir again");
        assert!(tasks.write_atomic("b.json", b"2").is_err());
        assert!(tasks.append("c.log", b"3").is_err());
        assert!(std::fs::read_dir(&path).expect("list").next().is_none());
    }

    #[test]
    fn remove_all_removes_a_tree_and_a_missing_one_is_fine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RootDir::open(dir.path()).expect("open");
        let folder = root.folder("tasks/t1");
        folder.append("events.jsonl", b"x\n").expect("append");
        folder.append("events.jsonl", b"y\n").expect("append");
        assert_eq!(folder.read("events.jsonl").expect("read"), b"x\ny\n");
        root.folder("tasks/t1/sub")
            .append("f", b"z")
            .expect("nested");
        folder.remove_all().expect("remove");
        assert!(!dir.path().join("tasks/t1").exists());
        folder.remove_all().expect("missing is fine");
    }
}
