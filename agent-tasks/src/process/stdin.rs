//! A process task's stdin: the bytes given at spawn, then steering messages
//! from the task's inbox, until the end of input.
//!
//! The rule `send` follows (it is refused with `NotReceiving` once the inbox
//! is closed): the inbox is closed, and messages still queued in it are
//! dropped, as soon as
//! * a [`Message::eof`] is taken from it (stdin is closed: the child reads
//!   EOF after the bytes sent before the marker),
//! * the child can no longer read: its end of the pipe is closed (noticed
//!   without writing, from the pipe's error state), or a write fails
//!   (`EPIPE`),
//! * the child process exits.
//!
//! A message accepted by `send` just before one of these is lost (a write to
//! a closed pipe cannot be reported back to a `send` that already returned);
//! every later `send` is refused.

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::unix::pipe;
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;

use crate::context::Message;

/// Feeds `initial` then the inbox's messages to the child's stdin, until the
/// end of input, a dead pipe, or `child_exited`. Dropping stdin on return
/// closes it (the child sees EOF).
pub(crate) async fn feed_stdin(
    mut stdin: pipe::Sender,
    initial: Option<Vec<u8>>,
    mut inbox: Option<Receiver<Message>>,
    child_exited: CancellationToken,
) {
    if let Some(bytes) = initial {
        let written = tokio::select! {
            written = write(&mut stdin, &bytes) => written,
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
                Some(m) if !m.is_eof() => {
                    if !write(&mut stdin, m.as_bytes()).await {
                        break;
                    }
                }
                // The end of input, or nobody can send any more.
                _ => break,
            },
            _ = reader_gone(&stdin) => break,
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

async fn write(stdin: &mut pipe::Sender, bytes: &[u8]) -> bool {
    stdin.write_all(bytes).await.is_ok() && stdin.flush().await.is_ok()
}

/// Resolves once the pipe's read end is closed (the child closed its stdin
/// or exited, with nobody else holding it): the pipe then reports an error
/// condition (`EPOLLERR`), kept apart from its writability, so waiting for
/// it neither spins nor disturbs the writes.
async fn reader_gone(stdin: &pipe::Sender) {
    loop {
        match stdin.ready(Interest::ERROR).await {
            Ok(ready) if ready.is_error() || ready.is_write_closed() => return,
            Ok(_) => tokio::task::yield_now().await,
            Err(_) => return,
        }
    }
}
