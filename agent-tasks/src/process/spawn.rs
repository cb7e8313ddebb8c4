//! Starting a process task's child on pipes, and waiting for its exit.
//!
//! A child with a cgroup to go to is started straight inside it where the
//! kernel allows (`super::clone_into`). Otherwise the spawn is glibc's
//! `posix_spawn` (the vfork path std's `Command` takes too), called through
//! `nix`. Either way the child's environment is the host's own entries,
//! passed through untouched, plus the task's entries and its marker. std's `Command` instead copies the whole environment into a
//! map of owned strings, then into new C strings, on every spawn as soon as
//! one variable is set, and every task sets its marker; tokio then wraps
//! the child's pipes and pidfd once more. Doing it here costs a fraction of
//! that (see the spawn figures in the README). The child's exit is waited
//! for on a pidfd registered with the runtime.
//!
//! What the child gets, as with std: stdin from `/dev/null` or a pipe,
//! stdout and stderr on pipes, its own process group, an empty signal mask,
//! `SIGPIPE` at its default (a Rust or Python host ignores it); signals the
//! host ignores stay ignored. A program name without a slash is looked up in
//! the host's `PATH`, or in the task's own when its environment sets `PATH`
//! or is cleared (then `/bin:/usr/bin` without one), as std does.
//!
//! Caveats:
//! * The host's environment is read as it is (the C `environ`), without the
//!   lock std's `env` functions take: a host that changes its environment
//!   while other threads run breaks the contract of `std::env::set_var`,
//!   and races this spawn as it races any C code reading the environment
//!   (std's own spawn reads it the same way when no variable is set).
//! * The child is reaped here. A [`Child`] dropped before its exit was seen
//!   is reaped once it ends, by a task of the runtime, or else by a later
//!   spawn; a task's containment kills such a child first.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::libc;
use nix::spawn::{
    posix_spawn, posix_spawnp, PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags,
};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;
use rustix::process::{pidfd_open, PidfdFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::unix::pipe;

use super::clone_into::{self, ChildArgs, CloneError};
use super::kept;
use super::limits::{JoinFds, RootUsage};

/// The search path of a lookup when the child's environment has no `PATH`
/// (glibc's default for `execvp`).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// A command to start: program and arguments, working directory,
/// environment, and whether stdin is a pipe (else `/dev/null`).
#[derive(Debug)]
pub(crate) struct Spawn {
    /// `argv[0]` is the program.
    argv: Vec<CString>,
    cwd: Option<PathBuf>,
    env_clear: bool,
    /// Entries set on top of the host's environment (or of none); a later
    /// one wins over an earlier one of the same name.
    env: Vec<(OsString, OsString)>,
    piped_stdin: bool,
}

/// Why a string cannot be passed to the child.
fn nul_error(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} contains a NUL byte"),
    )
}

impl Spawn {
    /// `program` with `args`; errors if one holds a NUL byte.
    pub fn new<'a>(
        program: &OsStr,
        args: impl IntoIterator<Item = &'a OsStr>,
    ) -> io::Result<Spawn> {
        let mut argv =
            vec![CString::new(program.as_bytes()).map_err(|_| nul_error("the program"))?];
        for arg in args {
            argv.push(CString::new(arg.as_bytes()).map_err(|_| nul_error("an argument"))?);
        }
        Ok(Spawn {
            argv,
            cwd: None,
            env_clear: false,
            env: Vec::new(),
            piped_stdin: false,
        })
    }

    /// Runs the child in `dir`.
    pub fn cwd(&mut self, dir: &Path) -> &mut Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Starts from an empty environment instead of the host's.
    pub fn env_clear(&mut self) -> &mut Self {
        self.env_clear = true;
        self
    }

    /// Sets a variable (a later one of the same name wins).
    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Gives the child a pipe for stdin instead of `/dev/null`.
    pub fn piped_stdin(&mut self) -> &mut Self {
        self.piped_stdin = true;
        self
    }

    /// The value the child's environment gives `PATH`, when it is not the
    /// host's: `Some(None)` for none at all.
    fn own_path(&self) -> Option<Option<&OsStr>> {
        let set = self
            .env
            .iter()
            .rev()
            .find(|(k, _)| k.as_bytes() == b"PATH")
            .map(|(_, v)| v.as_os_str());
        match set {
            Some(value) => Some(Some(value)),
            None if self.env_clear => Some(None),
            None => None,
        }
    }

    /// Starts the child with [`clone_into`] where the kernel allows it
    /// (straight inside the cgroup whose folder is `cgroup`, if one is
    /// given), else with `posix_spawn` (then the caller moves it in): the
    /// child, and whether it was born inside its cgroup. Must run inside a
    /// tokio runtime (its pipes and pidfd are registered with it).
    #[cfg(test)]
    pub fn spawn(&self, cgroup: Option<BorrowedFd<'_>>) -> io::Result<(Child, bool)> {
        let (child, cloned) = self.spawn_joining(cgroup, JoinFds::default())?;
        Ok((child, cloned && cgroup.is_some()))
    }

    /// [`Spawn::spawn`] for a child that also joins the v1 cgroups of
    /// `join` before its exec (its limits): the child, and whether it was
    /// started by [`clone_into`] (then it was born inside its cgroup, if
    /// one was given, and joined `join`; else the caller moves it in).
    pub fn spawn_joining(
        &self,
        cgroup: Option<BorrowedFd<'_>>,
        join: JoinFds,
    ) -> io::Result<(Child, bool)> {
        // (Registering the pipes and pidfd without one would panic.)
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "a process is started only inside a tokio runtime",
            ));
        }
        reap_orphans();
        // The entries set here, each once (the last of a name wins).
        let mut own: Vec<CString> = Vec::with_capacity(self.env.len());
        let mut own_keys: Vec<&[u8]> = Vec::with_capacity(self.env.len());
        for (key, value) in self.env.iter().rev() {
            let key = key.as_bytes();
            if own_keys.contains(&key) {
                continue;
            }
            let mut entry = Vec::with_capacity(key.len() + value.len() + 1);
            entry.extend_from_slice(key);
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            own.push(CString::new(entry).map_err(|_| nul_error("an environment variable"))?);
            own_keys.push(key);
        }
        let mut envp: Vec<&CStr> = Vec::with_capacity(64 + own.len());
        if !self.env_clear {
            // An entry of a name set here gives way (`NAME=…`, or a bare
            // `NAME`).
            let overridden = |entry: &[u8]| {
                own_keys.iter().any(|key| {
                    entry.starts_with(key) && entry.get(key.len()).is_none_or(|b| *b == b'=')
                })
            };
            for entry in host_environment() {
                if !overridden(entry.to_bytes()) {
                    envp.push(entry);
                }
            }
        }
        envp.extend(own.iter().map(CString::as_c_str));

        let stdin = if self.piped_stdin {
            Some(pipe_pair()?)
        } else {
            None
        };
        let (stdout_rx, stdout_tx) = pipe_pair()?;
        let (stderr_rx, stderr_tx) = pipe_pair()?;
        let null = if stdin.is_none() {
            Some(dev_null()?)
        } else {
            None
        };

        let stdin_fd = match (&stdin, &null) {
            (Some((rx, _)), _) => rx.as_raw_fd(),
            (None, Some(null)) => null.as_raw_fd(),
            (None, None) => return Err(io::Error::other("no stdin for the child")),
        };
        if clone_into::SUPPORTED && !CLONE_REFUSED.load(Ordering::Relaxed) {
            match self.clone_into(cgroup, join, &envp, stdin_fd, &stdout_tx, &stderr_tx) {
                Ok((pid, pidfd)) => {
                    drop((stdout_tx, stderr_tx, null));
                    // SAFETY: an `OwnedFd` stays open, and gives the same
                    // descriptor, for as long as the `AsyncFd` owns it.
                    let pidfd =
                        unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }.ok();
                    let child = self.child(pid, pidfd, stdin, stdout_rx, stderr_rx)?;
                    return Ok((child, true));
                }
                Err(CloneError::Failed(e)) => return Err(e),
                // The kernel would kill every child cloned this way (see
                // `CloneError::KilledAtBirth`): spawn as before, from now on.
                Err(CloneError::KilledAtBirth) => CLONE_REFUSED.store(true, Ordering::Relaxed),
                Err(CloneError::Refused(e)) => {
                    // Refused for good (an old kernel, a seccomp filter):
                    // not tried again. Other refusals: this time only.
                    let never = matches!(
                        e.raw_os_error(),
                        Some(libc::ENOSYS | libc::EPERM | libc::E2BIG | libc::EINVAL)
                    );
                    if never {
                        CLONE_REFUSED.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        // The program to run: looked up here when the child's PATH is not
        // the host's (glibc's lookup would use the host's).
        let program = self.argv[0].as_c_str();
        let looked_up = match self.own_path() {
            Some(path) if !program.to_bytes().contains(&b'/') => Some(self.look_up(program, path)?),
            _ => None,
        };

        let mut actions = PosixSpawnFileActions::init()?;
        actions.add_dup2(stdin_fd, 0)?;
        actions.add_dup2(stdout_tx.as_raw_fd(), 1)?;
        actions.add_dup2(stderr_tx.as_raw_fd(), 2)?;
        if let Some(dir) = &self.cwd {
            add_chdir(&mut actions, dir)?;
        }
        let mut attr = PosixSpawnAttr::init()?;
        attr.set_sigmask(&SigSet::empty())?;
        let mut default = SigSet::empty();
        default.add(Signal::SIGPIPE);
        attr.set_sigdefault(&default)?;
        attr.set_pgroup(Pid::from_raw(0))?;
        attr.set_flags(
            PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
                | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
                | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
        )?;

        let pid = match &looked_up {
            Some(path) => posix_spawn(path.as_c_str(), &actions, &attr, &self.argv, &envp)?,
            None => posix_spawnp(program, &actions, &attr, &self.argv, &envp)?,
        };
        // The child's ends close here; it holds its own copies.
        drop((stdout_tx, stderr_tx, null));
        let pid = u32::try_from(pid.as_raw()).map_err(|_| io::Error::other("a negative pid"))?;
        // Without a pidfd (a kernel before 5.3), the exit is polled for.
        let pidfd = open_pidfd(pid).ok();
        let child = self.child(pid, pidfd, stdin, stdout_rx, stderr_rx)?;
        Ok((child, false))
    }

    /// The [`Child`] of a started process, its pipes' parent ends
    /// registered with the runtime.
    fn child(
        &self,
        pid: u32,
        pidfd: Option<AsyncFd<OwnedFd>>,
        stdin: Option<(OwnedFd, OwnedFd)>,
        stdout_rx: OwnedFd,
        stderr_rx: OwnedFd,
    ) -> io::Result<Child> {
        // From here on a failure drops `child`, which reaps the process.
        let mut child = Child {
            pid,
            exit: None,
            usage: None,
            handed_over: false,
            pidfd,
            stdin: None,
            stdout: None,
            stderr: None,
        };
        if let Some((rx, tx)) = stdin {
            drop(rx);
            set_nonblocking(&tx)?;
            child.stdin = Some(pipe::Sender::from_owned_fd_unchecked(tx)?);
        }
        set_nonblocking(&stdout_rx)?;
        set_nonblocking(&stderr_rx)?;
        child.stdout = Some(pipe::Receiver::from_owned_fd_unchecked(stdout_rx)?);
        child.stderr = Some(pipe::Receiver::from_owned_fd_unchecked(stderr_rx)?);
        Ok(child)
    }

    /// Starts the child with [`clone_into::spawn`], inside `cgroup` if one
    /// is given.
    fn clone_into(
        &self,
        cgroup: Option<BorrowedFd<'_>>,
        join: JoinFds,
        envp: &[&CStr],
        stdin: std::os::fd::RawFd,
        stdout: &OwnedFd,
        stderr: &OwnedFd,
    ) -> Result<(u32, OwnedFd), CloneError> {
        let refused = CloneError::Refused;
        let argv: Vec<*const std::ffi::c_char> = self
            .argv
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let envp: Vec<*const std::ffi::c_char> = envp
            .iter()
            .map(|e| e.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        // Where a bare program name is looked up: the child's own PATH if
        // it is not the host's, else the host's.
        let host_path;
        let search: &[u8] = match self.own_path() {
            Some(Some(path)) => path.as_bytes(),
            Some(None) => DEFAULT_PATH,
            None => {
                host_path = std::env::var_os("PATH");
                host_path.as_deref().map_or(DEFAULT_PATH, OsStr::as_bytes)
            }
        };
        let cwd = match &self.cwd {
            Some(dir) => Some(
                CString::new(dir.as_os_str().as_bytes())
                    .map_err(|_| refused(nul_error("the working directory")))?,
            ),
            None => None,
        };
        let args = ChildArgs {
            argv: &argv,
            envp: &envp,
            search,
            stdin,
            stdout: stdout.as_raw_fd(),
            stderr: stderr.as_raw_fd(),
            cwd: cwd.as_deref(),
            join,
        };
        clone_into::spawn(&args, cgroup)
    }

    /// `program` looked up in `path` (`None`: the default search path), as
    /// `execvp` does in the child: the first executable file; relative
    /// entries are taken from the child's working directory.
    fn look_up(&self, program: &CStr, path: Option<&OsStr>) -> io::Result<CString> {
        let path = path.map_or(DEFAULT_PATH, OsStr::as_bytes);
        let mut denied = false;
        for dir in path.split(|b| *b == b':') {
            let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
            let mut candidate = Vec::with_capacity(dir.len() + program.to_bytes().len() + 1);
            candidate.extend_from_slice(dir);
            candidate.push(b'/');
            candidate.extend_from_slice(program.to_bytes());
            let as_path = Path::new(OsStr::from_bytes(&candidate));
            // What the child will see: relative to its working directory.
            let seen = match (&self.cwd, as_path.is_relative()) {
                (Some(cwd), true) => cwd.join(as_path),
                _ => as_path.to_path_buf(),
            };
            match std::fs::metadata(&seen) {
                Ok(meta) if meta.is_file() => {
                    if nix::unistd::access(&seen, nix::unistd::AccessFlags::X_OK).is_ok() {
                        return CString::new(candidate).map_err(|_| nul_error("the program"));
                    }
                    denied = true;
                }
                _ => {}
            }
        }
        Err(io::Error::from(if denied {
            Errno::EACCES
        } else {
            Errno::ENOENT
        }))
    }
}

/// The entries of the host's environment, as they are.
fn host_environment() -> Vec<&'static CStr> {
    let mut entries = Vec::with_capacity(64);
    // SAFETY: `environ` is the C library's array of the process's
    // environment, NULL-terminated, of NUL-terminated strings. Reading it
    // is what `getenv` and std's own spawn do; it is changed only by
    // `setenv`/`putenv`, whose callers must not run beside other threads
    // reading the environment (std's `set_var` contract). The strings are
    // never freed by the C library, so they outlive the spawn.
    unsafe {
        let mut entry = std::ptr::addr_of!(libc::environ).read();
        if entry.is_null() {
            return entries;
        }
        while !(*entry).is_null() {
            entries.push(CStr::from_ptr(*entry));
            entry = entry.add(1);
        }
    }
    entries
}

/// A pipe, both ends closed on exec: (read end, write end).
fn pipe_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

/// `/dev/null` for the child's stdin: a copy of the one kept open, else
/// opened for this spawn.
fn dev_null() -> io::Result<OwnedFd> {
    if let Some(Ok(file)) = kept::DEV_NULL.with_kept(|file| file.try_clone()) {
        return Ok(file.into());
    }
    Ok(std::fs::File::open("/dev/null")?.into())
}

/// The parent's end of a pipe does not block: the runtime polls it.
fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Makes the child change to `dir` before it runs its program.
fn add_chdir(actions: &mut PosixSpawnFileActions, dir: &Path) -> io::Result<()> {
    let dir =
        CString::new(dir.as_os_str().as_bytes()).map_err(|_| nul_error("the working directory"))?;
    let actions: *mut PosixSpawnFileActions = actions;
    // SAFETY: `PosixSpawnFileActions` is `repr(transparent)` over an
    // initialized `posix_spawn_file_actions_t`, so the pointer is to one;
    // glibc copies `dir` into the actions.
    let ret = unsafe {
        libc::posix_spawn_file_actions_addchdir_np(
            actions.cast::<libc::posix_spawn_file_actions_t>(),
            dir.as_ptr(),
        )
    };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

/// A pidfd of child `pid`, registered with the runtime: readable once the
/// child has exited.
fn open_pidfd(pid: u32) -> io::Result<AsyncFd<OwnedFd>> {
    let pid = rustix_pid(pid)?;
    let fd = pidfd_open(pid, PidfdFlags::NONBLOCK)?;
    // SAFETY: an `OwnedFd` stays open, and gives the same descriptor, for
    // as long as the `AsyncFd` owns it.
    Ok(unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?)
}

/// A started child: its pid, its pipes (taken by the caller), and its exit
/// once seen.
#[derive(Debug)]
pub(crate) struct Child {
    pid: u32,
    exit: Option<ExitStatus>,
    /// Its `rusage`, once reaped.
    usage: Option<RootUsage>,
    /// Already handed to a reaping task: dropped again (the runtime shut
    /// down), it is left to a later spawn.
    handed_over: bool,
    pidfd: Option<AsyncFd<OwnedFd>>,
    /// The write end of the child's stdin, if it was piped.
    pub stdin: Option<pipe::Sender>,
    pub stdout: Option<pipe::Receiver>,
    pub stderr: Option<pipe::Receiver>,
}

impl Child {
    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// The child's `rusage`, once it was reaped.
    pub fn usage(&self) -> Option<RootUsage> {
        self.usage
    }

    /// The child's exit status if it has exited (reaping it), without
    /// waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.exit {
            return Ok(Some(status));
        }
        let reaped = reap(self.pid)?;
        if let Some((status, usage)) = reaped {
            self.exit = Some(status);
            self.usage = Some(usage);
        }
        Ok(self.exit)
    }

    /// Waits for the child to exit, and reaps it.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let mut pause = POLL_FIRST;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            match &self.pidfd {
                Some(pidfd) => {
                    let mut ready = pidfd.readable().await?;
                    if let Some((status, usage)) = reap(self.pid)? {
                        self.exit = Some(status);
                        self.usage = Some(usage);
                        return Ok(status);
                    }
                    ready.clear_ready();
                }
                None => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(POLL_MOST);
                }
            }
        }
    }
}

/// Without a pidfd, how often a child's exit is looked for: first, then at
/// most (the pause doubles in between).
const POLL_FIRST: std::time::Duration = std::time::Duration::from_millis(1);
const POLL_MOST: std::time::Duration = std::time::Duration::from_millis(50);

/// `pid` as rustix takes it.
fn rustix_pid(pid: u32) -> io::Result<rustix::process::Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::other("an invalid pid"))
}

/// Reaps child `pid` if it has exited: its status and its `rusage` (it
/// and the descendants it waited for), from `wait4`.
fn reap(pid: u32) -> io::Result<Option<(ExitStatus, RootUsage)>> {
    let pid = i32::try_from(pid).map_err(|_| io::Error::other("an invalid pid"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data; zeroes are a valid value of it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits (without blocking) for our own child `pid`, writing to
    // valid locals.
    let ret = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
    match ret {
        r if r < 0 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        _ => {
            let ms = |t: libc::timeval| {
                u64::try_from(t.tv_sec).unwrap_or(0) * 1000
                    + u64::try_from(t.tv_usec).unwrap_or(0) / 1000
            };
            let root = RootUsage {
                user_ms: ms(usage.ru_utime),
                system_ms: ms(usage.ru_stime),
                // (KiB on Linux.)
                max_rss_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
            };
            Ok(Some((ExitStatus::from_raw(status), root)))
        }
    }
}

/// Set once the kernel refused `clone3` in a way that will not change.
static CLONE_REFUSED: AtomicBool = AtomicBool::new(false);

/// Children dropped while they ran, with no runtime to wait for them: the
/// next spawn reaps those that have ended.
static ORPHANS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Reaps the dropped children that have ended since.
fn reap_orphans() {
    let mut orphans = crate::util::lock(&ORPHANS);
    if orphans.is_empty() {
        return;
    }
    // Kept: those still running (an error means it is not ours to reap
    // any more).
    orphans.retain(|&pid| matches!(reap(pid), Ok(None)));
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_some() || matches!(self.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        // Still running: reaped when it ends, so it does not stay a zombie.
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !self.handed_over => runtime,
            _ => {
                crate::util::lock(&ORPHANS).push(self.pid);
                return;
            }
        };
        let mut child = Child {
            pid: self.pid,
            exit: None,
            usage: None,
            handed_over: true,
            pidfd: self.pidfd.take(),
            stdin: None,
            stdout: None,
            stderr: None,
        };
        runtime.spawn(async move {
            // (A wait that fails leaves it to a later spawn.)
            if child.wait().await.is_err() {
                crate::util::lock(&ORPHANS).push(child.pid);
            }
            child.exit.get_or_insert(ExitStatus::from_raw(0));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn output(spawn: &Spawn) -> (String, ExitStatus) {
        let (mut child, _) = spawn.spawn(None).expect("spawning");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut text = String::new();
        stdout
            .read_to_string(&mut text)
            .await
            .expect("reading stdout");
        let status = child.wait().await.expect("waiting");
        (text, status)
    }

    fn shell(line: &str) -> Spawn {
        Spawn::new(OsStr::new("/bin/sh"), [OsStr::new("-c"), OsStr::new(line)]).expect("spawn")
    }

    #[tokio::test]
    async fn the_child_gets_the_hosts_environment_with_the_entries_set_on_top() {
        // The host's PATH is passed through; HOME is replaced; a later entry
        // of a name wins over an earlier one.
        let mut spawn = shell("echo \"$PATH|$HOME|$A\"");
        spawn.env("HOME", "/elsewhere").env("A", "1").env("A", "2");
        let (text, status) = output(&spawn).await;
        assert!(status.success());
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(text.trim_end(), format!("{path}|/elsewhere|2"));
        // Each variable once, whatever was set twice.
        let mut spawn = shell("env");
        spawn.env("HOME", "/x").env("HOME", "/y");
        let (text, _) = output(&spawn).await;
        let homes: Vec<&str> = text.lines().filter(|l| l.starts_with("HOME=")).collect();
        assert_eq!(homes, ["HOME=/y"]);
    }

    #[tokio::test]
    async fn a_cleared_environment_holds_only_the_entries_set() {
        let mut spawn = Spawn::new(OsStr::new("/usr/bin/env"), []).expect("spawn");
        spawn.env_clear().env("ONLY", "this");
        let (text, status) = output(&spawn).await;
        assert!(status.success());
        assert_eq!(text, "ONLY=this\n");
    }

    #[tokio::test]
    async fn a_program_is_looked_up_in_the_childs_own_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("only-here");
        std::fs::write(&script, "#!/bin/sh\necho found\n").expect("writing the script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("making it executable");
        let mut spawn = Spawn::new(OsStr::new("only-here"), []).expect("spawn");
        spawn.env("PATH", dir.path());
        let (text, status) = output(&spawn).await;
        assert!(status.success());
        assert_eq!(text, "found\n");
        // Not in the host's PATH: without the child's own, it is not found.
        let spawn = Spawn::new(OsStr::new("only-here"), []).expect("spawn");
        let err = spawn.spawn(None).expect_err("not in the host's PATH");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        // A cleared environment searches the default path.
        let mut spawn =
            Spawn::new(OsStr::new("sh"), [OsStr::new("-c"), OsStr::new("echo ok")]).expect("spawn");
        spawn.env_clear();
        let (text, _) = output(&spawn).await;
        assert_eq!(text, "ok\n");
    }

    #[tokio::test]
    async fn cwd_stdin_and_the_process_group_are_set_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spawn = shell("pwd; cat; echo; ps -o pgid= -p $$ | tr -d ' '; echo $$");
        spawn.cwd(dir.path()).piped_stdin();
        let (mut child, _) = spawn.spawn(None).expect("spawning");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"typed").await.expect("writing");
        drop(stdin);
        let mut text = String::new();
        let mut stdout = child.stdout.take().expect("stdout");
        stdout.read_to_string(&mut text).await.expect("reading");
        assert!(child.wait().await.expect("waiting").success());
        let lines: Vec<&str> = text.lines().collect();
        let real = dir.path().canonicalize().expect("canonical");
        assert_eq!(lines[0], real.to_string_lossy());
        assert_eq!(lines[1], "typed");
        // Its own process group: the group id is its pid.
        assert_eq!(lines[2], lines[3]);
        assert_eq!(lines[3], child.id().to_string());
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_and_a_signal_is_an_exit_status() {
        let spawn = Spawn::new(OsStr::new("/nonexistent/program"), []).expect("spawn");
        assert_eq!(
            spawn.spawn(None).expect_err("missing").kind(),
            io::ErrorKind::NotFound
        );
        let (_, status) = output(&shell("kill -9 $$")).await;
        assert_eq!(status.signal(), Some(9));
        let (_, status) = output(&shell("exit 3")).await;
        assert_eq!(status.code(), Some(3));
    }

    /// Runs `test` on a runtime of `workers` threads (0: the current one),
    /// with no other test of the cgroup pool beside it.
    fn with_the_pool_alone(workers: usize, test: impl std::future::Future<Output = ()>) {
        let _one_at_a_time = crate::util::lock(&super::super::cgroup::POOL_TESTS);
        let runtime = if workers == 0 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
        };
        runtime.expect("a runtime").block_on(test);
    }

    #[test]
    fn a_child_is_born_in_its_cgroup_and_a_killed_cgroup_is_not_used_again() {
        with_the_pool_alone(0, born_inside_and_killed_cgroups());
    }

    async fn born_inside_and_killed_cgroups() {
        use super::super::cgroup::{PoolUser, TaskCgroup};
        use std::os::fd::AsFd;
        let user = PoolUser::new();
        let Some(first) = TaskCgroup::create("process-spawn-test-a") else {
            eprintln!("no cgroup can be made here: nothing to test");
            user.release();
            return;
        };
        let dir = first.open_dir().expect("opening the cgroup");
        let (mut child, inside) = shell("exec sleep 100")
            .spawn(Some(dir.as_fd()))
            .expect("spawning");
        drop(dir);
        assert_eq!(
            inside,
            clone_into::SUPPORTED,
            "not started inside the cgroup"
        );
        // A cancel: the whole cgroup is killed.
        first.kill();
        let status = child.wait().await.expect("waiting");
        assert_eq!(status.signal(), Some(9));
        // Killed once, it is removed, not kept for the next task (a child
        // cloned into it would be killed at birth)...
        assert!(first.retire_empty(), "the empty cgroup was not retired");
        assert!(!first.dir().exists(), "a killed cgroup was kept");
        // ...so the next task is still started straight inside its own.
        let second = TaskCgroup::create("process-spawn-test-b").expect("a second cgroup");
        assert_ne!(second.dir(), first.dir());
        let dir = second.open_dir().expect("opening the cgroup");
        let (mut child, inside) = shell("true").spawn(Some(dir.as_fd())).expect("spawning");
        assert_eq!(inside, clone_into::SUPPORTED, "no longer started inside");
        assert!(child.wait().await.expect("waiting").success());
        assert!(second.retire_empty());
        user.release();
    }

    #[test]
    fn children_started_at_once_from_several_threads_each_get_their_own_setup() {
        with_the_pool_alone(4, many_at_once());
    }

    async fn many_at_once() {
        use super::super::cgroup::{PoolUser, TaskCgroup};
        use std::os::fd::AsFd;
        let user = PoolUser::new();
        let runs: Vec<_> = (0..48)
            .map(|i| {
                tokio::spawn(async move {
                    // Half into a cgroup each (cloned in), half without.
                    let cgroup = (i % 2 == 0)
                        .then(|| TaskCgroup::create(&format!("process-many-{i}")))
                        .flatten();
                    let dir = cgroup.as_ref().and_then(TaskCgroup::open_dir);
                    let mut spawn = shell("echo \"$N $(cat)\"");
                    spawn.env("N", i.to_string()).piped_stdin();
                    let (mut child, _) = spawn
                        .spawn(dir.as_ref().map(AsFd::as_fd))
                        .expect("spawning");
                    let mut stdin = child.stdin.take().expect("stdin");
                    stdin
                        .write_all(format!("in-{i}").as_bytes())
                        .await
                        .expect("writing");
                    drop(stdin);
                    let mut text = String::new();
                    let mut stdout = child.stdout.take().expect("stdout");
                    stdout.read_to_string(&mut text).await.expect("reading");
                    assert!(child.wait().await.expect("waiting").success());
                    if let Some(cgroup) = cgroup {
                        cgroup.retire_empty();
                    }
                    (i, text)
                })
            })
            .collect();
        for run in runs {
            let (i, text) = run.await.expect("a run");
            assert_eq!(text, format!("{i} in-{i}\n"));
        }
        user.release();
    }

    #[test]
    fn where_clone3_is_refused_the_child_is_spawned_then_moved_into_its_cgroup() {
        // As in a container whose seccomp filter refuses `clone3` (put
        // back however the test ends).
        struct Refused(bool);
        impl Drop for Refused {
            fn drop(&mut self) {
                CLONE_REFUSED.store(self.0, Ordering::SeqCst);
            }
        }
        with_the_pool_alone(0, async {
            let _put_back = Refused(CLONE_REFUSED.swap(true, Ordering::SeqCst));
            spawned_then_moved().await;
        });
    }

    async fn spawned_then_moved() {
        use super::super::cgroup::PoolUser;
        use super::super::contain;
        use crate::info::Containment;
        use std::os::fd::AsFd;
        let user = PoolUser::new();
        let prepared = contain::prepare(
            "process-fallback-test",
            Containment::Cgroup,
            &Default::default(),
            Default::default(),
        )
        .expect("no limits to refuse");
        let Some(dir) = prepared.cgroup_dir() else {
            eprintln!("no cgroup can be made here: nothing to test");
            user.release();
            return;
        };
        // It reads its cgroup once it is past its start (the move follows
        // the spawn at once; `cat` waits for the end of stdin).
        let mut spawn = shell("cat; cat /proc/self/cgroup");
        spawn.piped_stdin();
        let (mut child, inside) = spawn.spawn(Some(dir.as_fd())).expect("spawning");
        drop(dir);
        assert!(!inside, "cloned although clone3 counts as refused");
        let mut procs = prepared.started(child.id(), false, false);
        assert_eq!(procs.mode(), Containment::Cgroup);
        drop(child.stdin.take());
        let mut text = String::new();
        let mut stdout = child.stdout.take().expect("stdout");
        stdout.read_to_string(&mut text).await.expect("reading");
        assert!(child.wait().await.expect("waiting").success());
        assert!(
            text.contains("agent-tasks-h"),
            "not moved into its cgroup: {text}"
        );
        procs.finish();
        user.release();
    }

    #[tokio::test]
    async fn a_child_dropped_while_it_runs_is_reaped_when_it_ends() {
        let spawn = shell("sleep 0.3");
        let (child, _) = spawn.spawn(None).expect("spawning");
        let pid = child.id();
        drop(child);
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "the child should still run when dropped"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            // Gone from the process table once reaped (not a zombie).
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "child {pid} was not reaped"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
