//! Starting a child straight inside its task's cgroup: `clone3` with
//! `CLONE_INTO_CGROUP` (Linux 5.7), as a vfork (`CLONE_VM | CLONE_VFORK`,
//! the way glibc's `posix_spawn` starts a child), then `execve`.
//!
//! Why: moving a running process into a cgroup (a write to `cgroup.procs`)
//! takes the kernel's cgroup lock for writing, which costs 25–40 µs here on
//! every spawn, and leaves a window in which the new process runs outside
//! its cgroup. A child born inside has neither. glibc can do it only from
//! 2.39 on (`posix_spawnattr_setcgroup_np`), so the clone is done here.
//!
//! How, and what must hold:
//! * The child shares the host's memory and runs on a stack of its own
//!   (a buffer kept per thread) until its `execve`; the parent thread is
//!   suspended meanwhile. It does not share the host's signal handler
//!   table nor its descriptor table: the clone has neither `CLONE_SIGHAND`
//!   nor `CLONE_FILES`, so the child's resets of signal dispositions and
//!   its `dup2`s change its own copies only. Adding either flag would make
//!   those steps change the host. The child only makes system calls through libc
//!   wrappers that are async-signal-safe: no allocation, no lock, no panic.
//!   Everything it needs is prepared by the parent ([`ChildArgs`]).
//! * All signals are blocked in the parent thread around the clone, so no
//!   handler of the host runs in the child; the child sets every signal the
//!   host handles back to its default (and `SIGPIPE` too, as std does),
//!   keeps ignored ones ignored, then unblocks all and execs.
//! * The child leads its own process group; stdin, stdout and stderr are
//!   duplicated onto 0, 1 and 2; it changes to the working directory; a
//!   program name without a slash is looked up in the given search path as
//!   `execvp` does (without its `/bin/sh` retry, as `posix_spawn`).
//! * A failure before or at `execve` is written to shared memory and the
//!   child exits with 127; the parent reaps it and returns the error.
//! * The kernel returns a pidfd for the child (`CLONE_PIDFD`).
//! * Caveat (Linux through 6.18 at least): a child cloned into a cgroup
//!   whose `cgroup.kill` was ever written is killed before it runs. The
//!   pool never reuses such a cgroup (`super::cgroup`), and a child killed
//!   at birth is told apart ([`CloneError::KilledAtBirth`]): the caller then
//!   spawns another way.
//!
//! A child with no cgroup to go to is started the same way, without
//! `CLONE_INTO_CGROUP`: the clone still spares glibc's spawn the mapping of
//! a fresh stack, half of its signal resets, and `pidfd_open`.
//!
//! Only on x86_64 (the entry code of the child is assembly); elsewhere, or
//! when the kernel or a seccomp filter refuses `clone3`, the caller falls
//! back to `posix_spawn` (and moves the child into its cgroup after).

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::libc;

/// What the child needs, prepared by the parent. Read by the child through
/// shared memory while the parent is suspended.
pub(crate) struct ChildArgs<'a> {
    /// `argv[0]` is the program: a path if it holds a slash, else a name to
    /// look up in `search`.
    pub argv: &'a [*const c_char],
    pub envp: &'a [*const c_char],
    /// The directories to look a bare program name up in, `:`-separated
    /// (an empty entry is the working directory).
    pub search: &'a [u8],
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    pub cwd: Option<&'a CStr>,
    /// The task's v1 limit cgroups, joined by the child first thing.
    pub join: super::limits::JoinFds,
}

/// The `clone_args` of `clone3` (`linux/sched.h`), up to `cgroup`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The child's stack: room for its one frame (a path buffer and a few
/// structs) many times over.
const STACK_WORDS: usize = 64 * 1024 / 16;

thread_local! {
    /// The stack children of this thread run on (one at a time: the thread
    /// is suspended while its child uses it).
    static STACK: RefCell<Option<Box<[u128]>>> = const { RefCell::new(None) };
}

/// What the child writes back.
struct Shared<'a> {
    args: &'a ChildArgs<'a>,
    /// Set by the child's first instruction of ours: unset after the clone,
    /// the kernel killed the child before it ran (see [`CloneError`]).
    entered: AtomicBool,
    /// 0, or the errno of what failed.
    error: AtomicI32,
}

/// Whether this build starts children this way at all (x86_64 only).
pub(crate) const SUPPORTED: bool = cfg!(target_arch = "x86_64");

/// Starts the child described by `args`, inside the cgroup whose directory
/// is `cgroup` if one is given (else in the host's): its pid and pidfd. An
/// error of the clone itself (the kernel or a filter refused it) is
/// [`CloneError::Refused`]: the caller may spawn another way; a failure of
/// the child's setup or `execve` is [`CloneError::Failed`].
pub(crate) fn spawn(
    args: &ChildArgs,
    cgroup: Option<BorrowedFd>,
) -> Result<(u32, OwnedFd), CloneError> {
    if !SUPPORTED {
        return Err(CloneError::Refused(io::Error::from(
            io::ErrorKind::Unsupported,
        )));
    }
    let stack = STACK
        .try_with(|s| s.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_else(|| vec![0u128; STACK_WORDS].into_boxed_slice());
    let result = clone_with(args, cgroup, &stack);
    let _ = STACK.try_with(|s| *s.borrow_mut() = Some(stack));
    result
}

/// Why [`spawn`] did not start the child.
#[derive(Debug)]
pub(crate) enum CloneError {
    /// `clone3` was refused (too old a kernel, a seccomp filter, a cgroup
    /// that takes no process): nothing was started.
    Refused(io::Error),
    /// The child was started but could not run its program.
    Failed(io::Error),
    /// The kernel killed the child as it was made, before it ran. Linux
    /// (through 6.18 at least) does so to every child cloned into a cgroup
    /// whose `cgroup.kill` was ever written, or from a host whose own cgroup
    /// was (its `kill_seq` check compares the destination's count with the
    /// parent's). Nothing of the task ran: the caller spawns another way.
    KilledAtBirth,
}

fn clone_with(
    args: &ChildArgs,
    cgroup: Option<BorrowedFd>,
    stack: &[u128],
) -> Result<(u32, OwnedFd), CloneError> {
    use std::os::fd::AsRawFd;
    let shared = Shared {
        args,
        entered: AtomicBool::new(false),
        error: AtomicI32::new(0),
    };
    let mut pidfd: c_int = -1;
    let mut clone_args = CloneArgs {
        // Never CLONE_SIGHAND nor CLONE_FILES: the child's signal resets
        // and dup2s must change its own copies, not the host's.
        flags: CLONE_VM
            | CLONE_VFORK
            | CLONE_PIDFD
            | if cgroup.is_some() {
                CLONE_INTO_CGROUP
            } else {
                0
            },
        pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.as_ptr() as u64,
        stack_size: std::mem::size_of_val(stack) as u64,
        cgroup: cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
        ..CloneArgs::default()
    };
    // Every signal blocked in this thread (glibc's own ones too, which its
    // wrappers leave out), so none is handled in the child before it has
    // reset the handlers.
    let all: u64 = !0;
    let mut old: u64 = 0;
    // SAFETY: sets this thread's mask from, and saves it to, valid masks of
    // the kernel's size (8 bytes).
    let blocked = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            &mut old as *mut u64,
            8usize,
        )
    };
    if blocked != 0 {
        return Err(CloneError::Refused(io::Error::last_os_error()));
    }
    // SAFETY: `clone_args` is a valid `clone_args` of the size given, with
    // a stack that nothing else uses while the child runs on it (this thread
    // is suspended until the child execs or exits: CLONE_VFORK); `shared`
    // and everything it points to outlive the child's use of them, for the
    // same reason. `child_main` only makes async-signal-safe calls and never
    // returns.
    let ret = unsafe {
        clone3_run(
            &mut clone_args,
            std::mem::size_of::<CloneArgs>(),
            child_main,
            std::ptr::addr_of!(shared).cast_mut().cast::<c_void>(),
        )
    };
    // SAFETY: restores the mask saved above.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &old as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
    if ret < 0 {
        let errno = i32::try_from(-ret).unwrap_or(libc::EINVAL);
        return Err(CloneError::Refused(io::Error::from_raw_os_error(errno)));
    }
    // SAFETY: on success the kernel stored a new pidfd, owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // (A positive pid_t always fits.)
    let pid = u32::try_from(ret).unwrap_or_default();
    let reap = || {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(ret as i32), None);
    };
    if !shared.entered.load(Ordering::Acquire) {
        // Killed before it ran a single instruction of ours: nothing of the
        // task ran.
        reap();
        return Err(CloneError::KilledAtBirth);
    }
    let error = shared.error.load(Ordering::Acquire);
    if error != 0 {
        // The child exited (127) without running its program: reap it.
        reap();
        return Err(CloneError::Failed(io::Error::from_raw_os_error(error)));
    }
    Ok((pid, pidfd))
}

/// The child, on its own stack, in the host's memory: sets itself up and
/// runs its program. Never returns.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `Shared`, alive and unchanged while
    // this runs (the parent is suspended).
    let shared = unsafe { &*arg.cast::<Shared>() };
    shared.entered.store(true, Ordering::Release);
    let errno = setup_and_exec(shared.args);
    shared.error.store(errno.max(1), Ordering::Release);
    // SAFETY: ends the child without running anything of the host's.
    unsafe { libc::_exit(127) }
}

/// `errno`, after a libc call failed.
fn last_errno() -> c_int {
    // SAFETY: the calling thread's errno (the child runs with the parent
    // thread's thread pointer, so this is that thread's, suspended).
    unsafe { *libc::__errno_location() }
}

/// The kernel's `struct sigaction` (x86_64 and most others): what
/// `rt_sigaction` reads and writes, without glibc's wrapper, which refuses
/// glibc's own signals.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Sets the child up and execs; returns only on failure, with its errno.
///
/// Runs in the child, on the host's memory: every step below is a plain
/// system call, with no allocation, no lock and nothing that can panic
/// (no indexing or slicing that could go out of bounds: buffers are
/// written with checked `get_mut`s). It is safe to change the signal
/// dispositions and descriptors here only because the clone has neither
/// `CLONE_SIGHAND` nor `CLONE_FILES`: the child has its own copy of the
/// host's signal handler table and of its descriptor table, so nothing it
/// changes reaches the host.
fn setup_and_exec(args: &ChildArgs) -> c_int {
    reset_signal_handlers();
    // First: everything the child does from here on is counted and limited.
    if let Err(errno) = args.join.join() {
        return errno;
    }
    // SAFETY: makes the calling process (the child) lead a new group.
    if unsafe { libc::setpgid(0, 0) } != 0 {
        return last_errno();
    }
    if let Err(errno) = set_standard_fds(args) {
        return errno;
    }
    if let Some(dir) = args.cwd {
        // SAFETY: `dir` is a NUL-terminated string the parent keeps alive.
        if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
            return last_errno();
        }
    }
    unblock_all_signals();
    exec(args)
}

/// Sets every signal the host handles (and `SIGPIPE`) back to its default
/// in the child; ignored ones stay ignored, those already at their default
/// are left alone. Through the raw `rt_sigaction`: glibc's wrapper refuses
/// glibc's own signals.
fn reset_signal_handlers() {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut current = KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: reads the child's own disposition of `sig` into a valid
        // kernel `sigaction` of the kernel's mask size (8 bytes).
        let read = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<KernelSigaction>(),
                &mut current as *mut KernelSigaction,
                8usize,
            )
        };
        if read != 0 {
            continue;
        }
        let keep = current.handler == libc::SIG_DFL
            || (current.handler == libc::SIG_IGN && sig != libc::SIGPIPE);
        if !keep {
            // SAFETY: sets the child's own disposition (its own handler
            // table: no CLONE_SIGHAND) from a valid kernel `sigaction`.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &default as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                );
            }
        }
    }
}

/// Puts the task's stdin, stdout and stderr on 0, 1 and 2 of the child's
/// own descriptor table (no CLONE_FILES).
fn set_standard_fds(args: &ChildArgs) -> Result<(), c_int> {
    for (fd, target) in [(args.stdin, 0), (args.stdout, 1), (args.stderr, 2)] {
        // SAFETY: descriptor calls on the child's own table, on descriptors
        // the parent keeps open until the child has exec'd.
        let done = unsafe {
            if fd == target {
                // Already in place: only keep it open across the exec.
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            }
        };
        if done < 0 {
            return Err(last_errno());
        }
    }
    Ok(())
}

/// Unblocks every signal in the child (the parent blocked all around the
/// clone), right before the exec.
fn unblock_all_signals() {
    let none: u64 = 0;
    // SAFETY: sets the calling thread's mask from a valid mask of the
    // kernel's size.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &none as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
}

/// Execs the program: by its path if it holds a slash, else, as `execvp`,
/// in each directory of the search path in turn (a denied one is
/// remembered, a missing one skipped, other errors end it). Returns only
/// on failure, with its errno.
fn exec(args: &ChildArgs) -> c_int {
    let Some(&program_ptr) = args.argv.first() else {
        return libc::EINVAL;
    };
    // SAFETY: `argv` is a NUL-terminated array of NUL-terminated strings,
    // and `envp` too, which the parent keeps alive until the exec.
    let program = unsafe { CStr::from_ptr(program_ptr) }.to_bytes();
    if program.contains(&b'/') {
        // SAFETY: as above.
        unsafe { libc::execve(program_ptr, args.argv.as_ptr(), args.envp.as_ptr()) };
        return last_errno();
    }
    let mut path = [0u8; 4096];
    let mut denied = false;
    for dir in args.search.split(|b| *b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        if !join_path(&mut path, dir, program) {
            continue;
        }
        // SAFETY: `path` is NUL-terminated by `join_path`; argv and envp
        // as above.
        unsafe { libc::execve(path.as_ptr().cast(), args.argv.as_ptr(), args.envp.as_ptr()) };
        match last_errno() {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            other => return other,
        }
    }
    if denied {
        libc::EACCES
    } else {
        libc::ENOENT
    }
}

/// Writes `dir/program` and a NUL into `buf`; false (and nothing usable)
/// if it does not fit. No slicing that could panic: the child must not.
fn join_path(buf: &mut [u8], dir: &[u8], program: &[u8]) -> bool {
    let bytes = dir.iter().chain(b"/").chain(program).chain(b"\0");
    for (at, &byte) in bytes.enumerate() {
        match buf.get_mut(at) {
            Some(slot) => *slot = byte,
            None => return false,
        }
    }
    true
}

/// `clone3(args, size)`; in the child, `child(arg)` on the new stack (it
/// must not return). The parent gets the child's pid, or `-errno`.
///
/// # Safety
/// `args` must be a valid `clone_args` of `size` bytes whose stack stays
/// unused by anything else while the child runs, and `child` must never
/// return.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
unsafe extern "C" fn clone3_run(
    args: *mut CloneArgs,
    size: usize,
    child: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> isize {
    // rdi = args, rsi = size (the syscall's own two arguments), rdx =
    // child, rcx = arg. `syscall` clobbers rcx and r11 only, in both
    // processes, so `arg` goes to r8 first; rdx survives. The child starts
    // with rax = 0 and rsp at the top of its new stack (16-byte aligned, so
    // the call below gives `child` the alignment the ABI promises).
    core::arch::naked_asm!(
        "mov r8, rcx",
        "mov eax, 435",
        "syscall",
        "test rax, rax",
        "jz 2f",
        "ret",
        "2:",
        "xor ebp, ebp",
        "mov rdi, r8",
        "call rdx",
        // Not reached: `child` exits. Exit anyway, never return.
        "mov edi, 127",
        "mov eax, 60",
        "syscall",
        "ud2",
    )
}

#[cfg(not(target_arch = "x86_64"))]
unsafe extern "C" fn clone3_run(
    _args: *mut CloneArgs,
    _size: usize,
    _child: extern "C" fn(*mut c_void) -> c_int,
    _arg: *mut c_void,
) -> isize {
    -(libc::ENOSYS as isize)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::os::fd::AsRawFd;

    #[test]
    fn join_path_writes_a_nul_terminated_path_or_refuses_what_does_not_fit() {
        let mut buf = [0xffu8; 12];
        assert!(join_path(&mut buf, b"/bin", b"true"));
        assert_eq!(&buf[..10], b"/bin/true\0");
        // "/usr/bin" + "/" + "true" + NUL is 14 bytes: no room, no panic.
        assert!(!join_path(&mut buf, b"/usr/bin", b"true"));
        assert!(join_path(&mut buf, b"/usr/bin", b"ls"));
        assert_eq!(&buf[..12], b"/usr/bin/ls\0");
        assert!(!join_path(&mut [], b"", b""));
    }

    /// Runs `argv` in the cgroup `dir`: its output and exit status.
    fn run(dir: &std::fs::File, argv: &[&str], search: &[u8]) -> Result<(String, i32), CloneError> {
        let argv: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(*a).expect("argv"))
            .collect();
        let mut ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let envp = [std::ptr::null()];
        let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        let null = std::fs::File::open("/dev/null").expect("/dev/null");
        let args = ChildArgs {
            argv: &ptrs,
            envp: &envp,
            search,
            stdin: null.as_raw_fd(),
            stdout: tx.as_raw_fd(),
            stderr: tx.as_raw_fd(),
            cwd: None,
            join: Default::default(),
        };
        let (pid, _pidfd) = spawn(&args, Some(dir.as_fd()))?;
        drop(tx);
        let mut text = String::new();
        std::fs::File::from(rx)
            .read_to_string(&mut text)
            .expect("reading");
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
        let code = match status {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
            other => panic!("the child ended with {other:?}"),
        };
        Ok((text, code))
    }

    #[test]
    fn a_child_starts_inside_the_cgroup_and_a_killed_cgroup_is_told_apart() {
        let Some(parent) = super::super::cgroup::own_cgroup_dir() else {
            eprintln!("no cgroup can be made here: nothing to test");
            return;
        };
        let name = format!("agent-tasks-test-clone-{}", std::process::id());
        let path = parent.join(&name);
        if std::fs::create_dir(&path).is_err() {
            eprintln!("no cgroup can be made here: nothing to test");
            return;
        }
        struct Remove(std::path::PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir(&self.0);
            }
        }
        let _remove = Remove(path.clone());
        let dir = std::fs::File::open(&path).expect("opening the cgroup");

        // Inside from the start: its own /proc/self/cgroup names the cgroup.
        let (text, code) = match run(&dir, &["/bin/cat", "/proc/self/cgroup"], b"") {
            Ok(ran) => ran,
            Err(CloneError::Refused(e)) => {
                eprintln!("clone3 refused here ({e}): nothing to test");
                return;
            }
            Err(e) => panic!("the clone failed: {e:?}"),
        };
        assert_eq!(code, 0);
        assert!(text.contains(&name), "not in the cgroup: {text}");

        // A bare name is looked up in the search path, a missing program
        // is the exec's error.
        let (_, code) = run(&dir, &["true"], b"/nonexistent:/usr/bin:/bin").expect("true runs");
        assert_eq!(code, 0);
        match run(&dir, &["/nonexistent/program"], b"") {
            Err(CloneError::Failed(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            other => panic!("expected the exec to fail: {other:?}"),
        }
        match run(
            &dir,
            &["no-such-program-anywhere"],
            b"/nonexistent:/usr/bin",
        ) {
            Err(CloneError::Failed(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            other => panic!("expected the lookup to fail: {other:?}"),
        }

        // Once `cgroup.kill` was written, a child cloned in is killed before
        // it runs (on kernels with that behaviour), and that is told apart.
        std::fs::write(path.join("cgroup.kill"), "1").expect("killing the empty cgroup");
        match run(&dir, &["true"], b"/usr/bin:/bin") {
            Err(CloneError::KilledAtBirth) => {}
            Ok((_, code)) => assert_eq!(code, 0, "a kernel without the behaviour runs it"),
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
}
