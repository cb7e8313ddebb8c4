//! PTY mode of a [`ProcessTask`](super::ProcessTask): the child runs on a
//! pseudo-terminal (made by the `pty-process` crate) as the leader of a new
//! session whose controlling terminal it is. This file owns opening the
//! terminal and spawning on it, typing into it ([`feed_terminal`]), resizing
//! it ([`Terminal`]), reading its output ([`TerminalReader`]: the end of a
//! terminal's output is `EIO`, not a zero read), and the [`Key`]s a caller
//! can type by name.
//!
//! Everything else is the plain process task's: the same containment
//! (cgroup / subreaper / process group: the session leader leads its process
//! group too; the child joins its cgroup itself before it execs, so nothing
//! it starts is ever outside), the same read loop with its stop escalation, bounded drain
//! and pause/resume, so every promise of a process task holds under a PTY.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;

use super::{contain, ProcessTask};
use crate::context::{Message, TaskContext};
use crate::error::Error;
use crate::task::TaskOutcome;

/// The `TERM` a PTY task gets unless its environment sets one.
pub(crate) const DEFAULT_TERM: &str = "xterm-256color";

/// What the terminal's line discipline reads as the end of input (VEOF at
/// the start of a line): what [`Message::eof`] types under a PTY.
const CTRL_D: u8 = 0x04;

/// Refuses a terminal size of zero columns or rows.
pub(crate) fn check_terminal_size(cols: u16, rows: u16) -> Result<(), Error> {
    if cols == 0 {
        return Err(Error::invalid_argument(
            "cols",
            "a terminal needs at least 1 column",
        ));
    }
    if rows == 0 {
        return Err(Error::invalid_argument(
            "rows",
            "a terminal needs at least 1 row",
        ));
    }
    Ok(())
}

/// A terminal size given as wider numbers (a binding's): each of `cols` and
/// `rows` must be 1 to 65535, else `InvalidArgument` naming it.
///
/// ```
/// assert_eq!(agent_tasks::terminal_size(80, 24)?, (80, 24));
/// assert!(agent_tasks::terminal_size(70_000, 24).is_err());
/// # Ok::<(), agent_tasks::Error>(())
/// ```
pub fn terminal_size(cols: u64, rows: u64) -> Result<(u16, u16), Error> {
    let narrow = |name: &str, value: u64| {
        u16::try_from(value).map_err(|_| {
            Error::invalid_argument(
                name,
                format!("{value} is too large for a terminal (at most 65535)"),
            )
        })
    };
    let size = (narrow("cols", cols)?, narrow("rows", rows)?);
    check_terminal_size(size.0, size.1)?;
    Ok(size)
}

/// Runs `task` on a new pseudo-terminal of `cols` × `rows`.
pub(super) async fn run(
    task: Box<ProcessTask>,
    ctx: TaskContext,
    cols: u16,
    rows: u16,
) -> TaskOutcome {
    let (pty, pts) = match pty_process::open() {
        Ok(pair) => pair,
        Err(e) => return TaskOutcome::failed(format!("opening a pseudo-terminal: {e}")),
    };
    if let Err(e) = pty.resize(pty_process::Size::new(rows, cols)) {
        return TaskOutcome::failed(format!("setting the terminal size: {e}"));
    }
    // A second handle on the master, for resizing while the halves are busy
    // reading and writing.
    let resizer = match pty.as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => return TaskOutcome::failed(format!("duplicating the terminal: {e}")),
    };
    // Built before the ticket is taken, as a pipe task's: a bad command
    // fails without touching the spawn gate.
    if let Err(e) = task.build_base_command() {
        return TaskOutcome::failed(e);
    }
    let Some(ticket) = ctx.spawn_ticket() else {
        return TaskOutcome::failed(super::HOST_EXITING);
    };
    let host = ctx.host_limits();
    let limits = task.limits.or(host.defaults);
    let mut prepared = match contain::prepare(ctx.id().as_str(), task.containment, &limits, host) {
        Ok(prepared) => prepared,
        Err(e) => return TaskOutcome::failed(e),
    };
    // The v1 limit cgroups, joined in the same hook (always, or no spawn).
    let join = prepared.join_fds();
    // `pty-process` makes the child a session leader (setsid, which also
    // makes it lead a new process group) with the terminal as its
    // controlling terminal and its stdin, stdout and stderr. That runs in a
    // pre-exec hook, so the spawn is a fork, not posix_spawn. The slave end
    // is closed in the host when the spawn returns: the master then reads
    // the end once the task's last process lets go of the terminal.
    //
    // The child joins the task's cgroup in the same hook, before its exec,
    // so it and everything it starts are born inside: a move by the host
    // after the spawn would leave out what the child forked meanwhile (a
    // daemon that left the session and cleared its environment is found by
    // no walk). If it cannot join, nothing of the task ran (the hook failed
    // the exec): the spawn is tried again without the cgroup, under the
    // next containment.
    let mut procs_fd = prepared.cgroup_procs_for_child();
    if procs_fd.is_none() {
        // A cgroup the child cannot join itself would be joined late (by
        // the host, after the spawn): not claimed, the next containment is.
        prepared.without_cgroup();
    }
    let spawned = loop {
        let attempt = spawn_on(&task, ctx.id().as_str(), &pts, procs_fd.as_ref(), join);
        match attempt {
            Err(_) if procs_fd.is_some() => {
                procs_fd = None;
                prepared.without_cgroup();
            }
            other => break other,
        }
    };
    let born_inside = procs_fd.is_some();
    drop(procs_fd);
    drop(pts);
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            prepared.abandon();
            return TaskOutcome::failed(format!(
                "failed to start `{}` on a terminal: {e}",
                task.command_line()
            ));
        }
    };
    let Some(pid) = child.id() else {
        prepared.abandon();
        return TaskOutcome::failed("the process ended before its id could be read");
    };
    let procs = prepared.started(pid, born_inside, true);
    ctx.report_contained(pid, procs.mode(), procs.start_time(), procs.limits_info());
    drop(ticket);

    let (reader, writer) = pty.into_split();
    let child_exited = CancellationToken::new();
    let inbox = ctx.take_inbox().await;
    tokio::spawn(feed_terminal(
        writer,
        task.stdin.clone(),
        inbox,
        child_exited.clone(),
    ));
    let terminal = Terminal { master: resizer };
    task.drive(
        &ctx,
        child,
        procs,
        TerminalReader {
            master: reader,
            deferred: None,
        },
        None::<TerminalReader>,
        Some(terminal),
        child_exited,
    )
    .await
}

/// Spawns the task's command on the terminal `pts`, with the task's marker
/// in its environment; with `cgroup_procs` (the task cgroup's
/// `cgroup.procs`, open for writing), the child moves itself into the
/// cgroup before it execs, or fails the exec; so it does with the task's
/// v1 limit cgroups (`join`).
fn spawn_on(
    task: &ProcessTask,
    task_id: &str,
    pts: &pty_process::Pts,
    cgroup_procs: Option<&OwnedFd>,
    join: super::limits::JoinFds,
) -> Result<tokio::process::Child, String> {
    let mut cmd = task.build_base_command()?;
    let (marker, value) = contain::marker(task_id);
    cmd.env(marker, value);
    let mut cmd = pty_process::Command::from(cmd);
    let fd = cgroup_procs.map(|fd| fd.as_raw_fd());
    if fd.is_some() || !join.as_slice().is_empty() {
        // SAFETY: the hook runs in the forked child before its exec, where
        // only async-signal-safe calls are allowed: `join_cgroup` and
        // `join.join` make one write(2) per cgroup and read errno,
        // allocating nothing and taking no lock (`join` is a fixed array,
        // copied). The descriptors stay open in the host until the spawn
        // has returned, so the child's copies of them are valid.
        cmd = unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = fd {
                    join_cgroup(fd)?;
                }
                join.join().map_err(std::io::Error::from_raw_os_error)
            })
        };
    }
    cmd.spawn_borrowed(pts).map_err(|e| e.to_string())
}

/// In a forked child before its exec: moves the calling process into the
/// cgroup whose `cgroup.procs` is open as `procs` (`0` names the writer).
/// An error fails the exec: the child never runs outside its cgroup.
fn join_cgroup(procs: RawFd) -> std::io::Result<()> {
    // SAFETY: a write(2) of one byte from a static buffer to a descriptor
    // the caller keeps open; async-signal-safe.
    let written = unsafe { nix::libc::write(procs, b"0".as_ptr().cast(), 1) };
    match written {
        1 => Ok(()),
        n if n < 0 => Err(std::io::Error::last_os_error()),
        // A short write of one byte cannot happen; never run uncontained.
        _ => Err(std::io::Error::from_raw_os_error(nix::libc::EIO)),
    }
}

/// The master side of a task's terminal, kept for resizing.
pub(super) struct Terminal {
    master: OwnedFd,
}

impl Terminal {
    /// Sets the window size; the kernel sends `SIGWINCH` to the terminal's
    /// foreground process group.
    pub(super) fn resize(&self, cols: u16, rows: u16) -> Result<(), String> {
        let size = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&self.master, size)
            .map_err(|e| format!("resizing the terminal: {e}"))
    }
}

/// The read half of the master, where the end of the output is a zero read:
/// Linux answers `EIO` once no process holds the slave end any more.
///
/// A terminal hands out at most about 4 KiB a read; what is ready is
/// gathered into one chunk (up to the caller's buffer), so a flood costs
/// one output write per buffer, not one per 4 KiB.
pub(super) struct TerminalReader {
    master: pty_process::OwnedReadPty,
    /// An error met while gathering, given by the next read (after the
    /// bytes gathered before it).
    deferred: Option<std::io::Error>,
}

/// A terminal's buffer has a fixed size.
impl super::OutputStream for TerminalReader {}

fn is_hangup(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(nix::errno::Errno::EIO as i32)
}

impl AsyncRead for TerminalReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.deferred.take() {
            return Poll::Ready(Err(e));
        }
        let start = buf.filled().len();
        match Pin::new(&mut self.master).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if is_hangup(&e) => return Poll::Ready(Ok(())),
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        // Gather what else is ready, without waiting: a `Pending` here only
        // registers a wake-up that the next read does not need.
        while buf.remaining() > 0 && buf.filled().len() > start {
            let before = buf.filled().len();
            match Pin::new(&mut self.master).poll_read(cx, buf) {
                Poll::Ready(Ok(())) if buf.filled().len() > before => {}
                Poll::Ready(Err(e)) if !is_hangup(&e) => {
                    self.deferred = Some(e);
                    break;
                }
                // The end (a zero read, `EIO`) is met again by the next
                // read, after these bytes are passed on.
                _ => break,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Types the bytes given at spawn, then the inbox's messages, into the
/// terminal until the child exits or a write fails. [`Message::eof`] types
/// Ctrl+D (the terminal's end of input at the start of a line); the
/// terminal stays open, so later messages are still typed.
async fn feed_terminal(
    mut writer: pty_process::OwnedWritePty,
    initial: Option<Vec<u8>>,
    mut inbox: Option<Receiver<Message>>,
    child_exited: CancellationToken,
) {
    if let Some(bytes) = initial {
        let written = tokio::select! {
            written = write(&mut writer, &bytes) => written,
            _ = child_exited.cancelled() => false,
        };
        if !written {
            close(&mut inbox);
            return;
        }
    }
    let Some(rx) = inbox.as_mut() else {
        return;
    };
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(m) => {
                    let bytes: &[u8] = if m.is_eof() { &[CTRL_D] } else { m.as_bytes() };
                    let written = tokio::select! {
                        written = write(&mut writer, bytes) => written,
                        _ = child_exited.cancelled() => false,
                    };
                    if !written {
                        break;
                    }
                }
                None => break,
            },
            _ = child_exited.cancelled() => break,
        }
    }
    close(&mut inbox);
}

fn close(inbox: &mut Option<Receiver<Message>>) {
    if let Some(rx) = inbox.as_mut() {
        rx.close();
    }
}

async fn write(writer: &mut pty_process::OwnedWritePty, bytes: &[u8]) -> bool {
    writer.write_all(bytes).await.is_ok() && writer.flush().await.is_ok()
}

/// A key typed into a task's terminal, by name: what a terminal sends for
/// it. Parse names with [`Key::parse`] (case-insensitive):
///
/// * `enter` (also `return`), `tab`, `backspace`, `escape` (`esc`), `space`;
/// * `up`, `down`, `left`, `right` (`ESC [ A` …, the normal cursor mode),
///   `home`, `end`, `pageup`, `pagedown`, `insert`, `delete`;
/// * `f1` … `f12`;
/// * `ctrl+<c>` (also `ctrl-<c>`, `c-<c>`, `^<c>`) for a letter `a`–`z`
///   or one of `@ [ \ ] ^ _ ? space`: Ctrl+C is `0x03` (the terminal turns
///   it into `SIGINT` for the foreground processes), Ctrl+D `0x04` (end of
///   input at the start of a line), Ctrl+Z `0x1a` (`SIGTSTP`);
/// * `alt+<c>` for one printable character (`ESC` then the character).
///
/// ```
/// use agent_tasks::Key;
///
/// assert_eq!(Key::parse("ctrl+c")?, Key::Ctrl('c'));
/// assert_eq!(Key::encode(&Key::parse_all(["up", "enter"])?)?, b"\x1b[A\r");
/// # Ok::<(), agent_tasks::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Key {
    /// Enter: `\r`, as a terminal sends it (the line discipline makes it
    /// `\n` for a program reading lines).
    Enter,
    /// Tab: `\t`.
    Tab,
    /// Backspace: `0x7f` (DEL, what terminals send).
    Backspace,
    /// Escape: `0x1b`.
    Escape,
    /// A space.
    Space,
    /// Cursor up: `ESC [ A`.
    Up,
    /// Cursor down: `ESC [ B`.
    Down,
    /// Cursor right: `ESC [ C`.
    Right,
    /// Cursor left: `ESC [ D`.
    Left,
    /// Home: `ESC [ H`.
    Home,
    /// End: `ESC [ F`.
    End,
    /// Page up: `ESC [ 5 ~`.
    PageUp,
    /// Page down: `ESC [ 6 ~`.
    PageDown,
    /// Insert: `ESC [ 2 ~`.
    Insert,
    /// Delete (forward): `ESC [ 3 ~`.
    Delete,
    /// A function key, 1 to 12.
    F(u8),
    /// Ctrl with a letter or one of `@ [ \ ] ^ _ ?` and space.
    Ctrl(char),
    /// Alt (meta) with a printable character: `ESC` then the character.
    Alt(char),
}

impl Key {
    /// The key named `name` (see [`Key`] for the names). An unknown name is
    /// an `InvalidArgument` naming `keys`.
    pub fn parse(name: &str) -> Result<Key, Error> {
        let bad = |why: String| Error::invalid_argument("keys", why);
        let lower = name.trim().to_ascii_lowercase();
        let single = |rest: &str| -> Option<char> {
            if rest == "space" {
                return Some(' ');
            }
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        };
        for prefix in ["ctrl+", "ctrl-", "c-", "^"] {
            if let Some(rest) = lower.strip_prefix(prefix) {
                // `^` alone is not Ctrl; `c-` needs the one character after.
                let key = single(rest).map(Key::Ctrl).ok_or_else(|| {
                    bad(format!(
                        "`{name}`: Ctrl goes with one character, like `ctrl+c`"
                    ))
                })?;
                key.bytes()?;
                return Ok(key);
            }
        }
        for prefix in ["alt+", "alt-", "meta+", "m-"] {
            if let Some(rest) = lower.strip_prefix(prefix) {
                // Alt keeps the case the caller gave (Alt+B differs from Alt+b).
                let original = &name.trim()[prefix.len()..];
                let key = single(original)
                    .or_else(|| single(rest))
                    .map(Key::Alt)
                    .ok_or_else(|| {
                        bad(format!(
                            "`{name}`: Alt goes with one character, like `alt+b`"
                        ))
                    })?;
                key.bytes()?;
                return Ok(key);
            }
        }
        let key = match lower.as_str() {
            "enter" | "return" | "cr" => Key::Enter,
            "tab" => Key::Tab,
            "backspace" | "bs" => Key::Backspace,
            "escape" | "esc" => Key::Escape,
            "space" => Key::Space,
            "up" => Key::Up,
            "down" => Key::Down,
            "right" => Key::Right,
            "left" => Key::Left,
            "home" => Key::Home,
            "end" => Key::End,
            "pageup" | "page_up" | "pgup" => Key::PageUp,
            "pagedown" | "page_down" | "pgdn" => Key::PageDown,
            "insert" | "ins" => Key::Insert,
            "delete" | "del" => Key::Delete,
            other => match other.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                Some(n) if (1..=12).contains(&n) => Key::F(n),
                _ => {
                    return Err(bad(format!(
                        "unknown key `{}`; use enter, tab, backspace, escape, space, up, down, left, right, home, end, pageup, pagedown, insert, delete, f1-f12, ctrl+<letter>, alt+<char>",
                        name.chars().take(40).collect::<String>()
                    )))
                }
            },
        };
        Ok(key)
    }

    /// Every key of `names`, in order (see [`Key::parse`]).
    pub fn parse_all<I, S>(names: I) -> Result<Vec<Key>, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        names.into_iter().map(|n| Key::parse(n.as_ref())).collect()
    }

    /// The bytes a terminal sends for this key. `InvalidArgument` (naming
    /// `keys`) for a key that has none: `F(0)`, `Ctrl('1')`, `Alt` with a
    /// control character.
    pub fn bytes(&self) -> Result<Vec<u8>, Error> {
        let seq = |s: &str| Ok(s.as_bytes().to_vec());
        match *self {
            Key::Enter => seq("\r"),
            Key::Tab => seq("\t"),
            Key::Backspace => Ok(vec![0x7f]),
            Key::Escape => Ok(vec![0x1b]),
            Key::Space => seq(" "),
            Key::Up => seq("\x1b[A"),
            Key::Down => seq("\x1b[B"),
            Key::Right => seq("\x1b[C"),
            Key::Left => seq("\x1b[D"),
            Key::Home => seq("\x1b[H"),
            Key::End => seq("\x1b[F"),
            Key::PageUp => seq("\x1b[5~"),
            Key::PageDown => seq("\x1b[6~"),
            Key::Insert => seq("\x1b[2~"),
            Key::Delete => seq("\x1b[3~"),
            Key::F(n) => match n {
                1 => seq("\x1bOP"),
                2 => seq("\x1bOQ"),
                3 => seq("\x1bOR"),
                4 => seq("\x1bOS"),
                5 => seq("\x1b[15~"),
                6 => seq("\x1b[17~"),
                7 => seq("\x1b[18~"),
                8 => seq("\x1b[19~"),
                9 => seq("\x1b[20~"),
                10 => seq("\x1b[21~"),
                11 => seq("\x1b[23~"),
                12 => seq("\x1b[24~"),
                _ => Err(Error::invalid_argument(
                    "keys",
                    format!("there is no function key F{n} (F1 to F12)"),
                )),
            },
            Key::Ctrl(c) => match c.to_ascii_lowercase() {
                c @ 'a'..='z' => Ok(vec![c as u8 & 0x1f]),
                '@' | ' ' | '2' => Ok(vec![0]),
                '[' => Ok(vec![0x1b]),
                '\\' => Ok(vec![0x1c]),
                ']' => Ok(vec![0x1d]),
                '^' => Ok(vec![0x1e]),
                '_' => Ok(vec![0x1f]),
                '?' => Ok(vec![0x7f]),
                other => Err(Error::invalid_argument(
                    "keys",
                    format!(
                        "Ctrl+{other:?} is not a control key (a letter, or one of @ [ \\ ] ^ _ ?)"
                    ),
                )),
            },
            Key::Alt(c) if !c.is_control() => {
                let mut bytes = vec![0x1b];
                bytes.extend_from_slice(c.to_string().as_bytes());
                Ok(bytes)
            }
            Key::Alt(c) => Err(Error::invalid_argument(
                "keys",
                format!("Alt+{c:?}: Alt goes with a printable character"),
            )),
        }
    }

    /// The bytes of `keys` one after the other.
    pub fn encode(keys: &[Key]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        for key in keys {
            out.extend(key.bytes()?);
        }
        Ok(out)
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Enter => f.write_str("enter"),
            Key::Tab => f.write_str("tab"),
            Key::Backspace => f.write_str("backspace"),
            Key::Escape => f.write_str("escape"),
            Key::Space => f.write_str("space"),
            Key::Up => f.write_str("up"),
            Key::Down => f.write_str("down"),
            Key::Right => f.write_str("right"),
            Key::Left => f.write_str("left"),
            Key::Home => f.write_str("home"),
            Key::End => f.write_str("end"),
            Key::PageUp => f.write_str("pageup"),
            Key::PageDown => f.write_str("pagedown"),
            Key::Insert => f.write_str("insert"),
            Key::Delete => f.write_str("delete"),
            Key::F(n) => write!(f, "f{n}"),
            Key::Ctrl(c) => write!(f, "ctrl+{c}"),
            Key::Alt(c) => write!(f, "alt+{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_to_the_bytes_a_terminal_sends() {
        let bytes = |name: &str| Key::parse(name).and_then(|k| k.bytes()).ok();
        assert_eq!(bytes("ctrl+c"), Some(vec![3]));
        assert_eq!(bytes("C-d"), Some(vec![4]));
        assert_eq!(bytes("^Z"), Some(vec![0x1a]));
        assert_eq!(bytes("Enter"), Some(b"\r".to_vec()));
        assert_eq!(bytes("up"), Some(b"\x1b[A".to_vec()));
        assert_eq!(bytes("f5"), Some(b"\x1b[15~".to_vec()));
        assert_eq!(bytes("alt+B"), Some(b"\x1bB".to_vec()));
        assert_eq!(bytes("ctrl+space"), Some(vec![0]));
        for bad in [
            "", "ctrl+", "ctrl+1", "f13", "f0", "hyper+x", "alt+", "ctrl+ab",
        ] {
            match Key::parse(bad) {
                Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "keys", "{bad}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn display_names_parse_back() {
        for key in [
            Key::Enter,
            Key::PageDown,
            Key::F(12),
            Key::Ctrl('c'),
            Key::Alt('x'),
        ] {
            assert_eq!(Key::parse(&key.to_string()).ok(), Some(key));
        }
    }
}
