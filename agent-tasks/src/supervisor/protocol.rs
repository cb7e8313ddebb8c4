//! The supervisor's control protocol: frames over any byte stream (the
//! task's control socket today; an ssh channel or a container exec's stdio
//! later), so a remote executor carries it unchanged.
//!
//! A frame is a 4-byte big-endian length of its JSON header, a 4-byte
//! big-endian length of its payload, the header (a [`Frame`], tagged by
//! `type`), then the payload: raw bytes (output, input, a snapshot's tail),
//! never escaped into JSON. Either side ends the stream by closing it.
//!
//! The host sends [`Frame::Attach`] first and gets [`Frame::Snapshot`]
//! back; from then on the supervisor sends every chunk of output it wrote
//! ([`Frame::Output`], after the bytes are in `output.log`), what its
//! writing met ([`Frame::WriteFailed`]), the process it started
//! ([`Frame::Started`]), answers to requests in the order asked
//! ([`Frame::Answer`]), and [`Frame::Ended`] once the exit record is saved.

use serde::{Deserialize, Serialize};

use crate::info::{CancelReason, Containment};
use crate::output::OutputSnapshot;

/// The largest header a peer may send (a snapshot's spans are the largest).
const MAX_HEADER: u32 = 16 << 20;
/// The largest payload a peer may send (a chunk of output, a tail window).
const MAX_PAYLOAD: u32 = 64 << 20;

/// One frame's header. The payload beside it is said per variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Frame {
    // Host → supervisor.
    /// A host attaches (the first frame of a connection). With
    /// `every_byte` it wants each chunk's bytes even when they are in the
    /// log already (it tees them to sinks of its own); else those come as
    /// their length alone.
    Attach { every_byte: bool },
    /// Input for the task (payload: the bytes; none with `eof`).
    Input { eof: bool },
    /// Send a signal to every process of the task (pause, resume).
    Signal { signal: i32 },
    /// Resize the task's terminal.
    Resize { cols: u16, rows: u16 },
    /// Stop the task, for this reason (the first reason wins).
    Cancel { reason: CancelReason },
    // Supervisor → host.
    /// The stream's state at the attach (payload: the tail window's bytes).
    Snapshot {
        output: OutputSnapshot,
        /// The task's process, once started.
        started: Option<Started>,
    },
    /// The task's process started.
    Started(Started),
    /// A chunk the supervisor wrote (payload: the bytes; none if `logged`).
    Output {
        stream: crate::sink::Stream,
        /// The chunk's length, when it went wholly into the log's head and
        /// the host did not ask for every byte: it reads them from the log.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        logged: Option<u64>,
    },
    /// Writing the log failed; nothing more is written to it.
    WriteFailed { error: String },
    /// The answer to the oldest unanswered `Signal` or `Resize`.
    Answer { error: Option<String> },
    /// The task ended and its exit record is saved.
    Ended,
}

/// The task's process as the supervisor started it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Started {
    pub pid: u32,
    pub containment: Option<Containment>,
    pub start_time: Option<u64>,
    pub limits: Option<crate::limits::LimitsInfo>,
}

/// Encodes `frame` with `payload` as it goes on the stream.
pub(crate) fn encode(frame: &Frame, payload: &[u8]) -> Vec<u8> {
    // Serializing these types cannot fail (no maps with non-string keys).
    let header = serde_json::to_vec(frame).unwrap_or_default();
    let mut out = Vec::with_capacity(8 + header.len() + payload.len());
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    out
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The stream ended (cleanly, between frames).
    Closed,
    /// The stream failed or ended inside a frame.
    Io(std::io::Error),
    /// The bytes are not a frame of this protocol.
    Invalid(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => write!(f, "the stream ended"),
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Invalid(e) => write!(f, "not a frame: {e}"),
        }
    }
}

fn lengths(prefix: [u8; 8]) -> Result<(usize, usize), ReadError> {
    let header = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let payload = u32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    if header > MAX_HEADER || payload > MAX_PAYLOAD {
        return Err(ReadError::Invalid(format!(
            "a header of {header} bytes and a payload of {payload} bytes"
        )));
    }
    Ok((header as usize, payload as usize))
}

fn decode(header: &[u8]) -> Result<Frame, ReadError> {
    serde_json::from_slice(header).map_err(|e| ReadError::Invalid(e.to_string()))
}

/// Reads one frame and its payload from an async stream.
pub(crate) async fn read_frame(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<(Frame, Vec<u8>), ReadError> {
    use tokio::io::AsyncReadExt;
    let mut prefix = [0u8; 8];
    let first = stream.read(&mut prefix).await.map_err(ReadError::Io)?;
    if first == 0 {
        return Err(ReadError::Closed);
    }
    stream
        .read_exact(&mut prefix[first..])
        .await
        .map_err(ReadError::Io)?;
    let (header_len, payload_len) = lengths(prefix)?;
    let mut header = vec![0u8; header_len];
    stream
        .read_exact(&mut header)
        .await
        .map_err(ReadError::Io)?;
    let mut payload = vec![0u8; payload_len];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(ReadError::Io)?;
    Ok((decode(&header)?, payload))
}

/// Reads one frame and its payload from a blocking stream.
pub(crate) fn read_frame_blocking(
    stream: &mut impl std::io::Read,
) -> Result<(Frame, Vec<u8>), ReadError> {
    let mut prefix = [0u8; 8];
    let first = loop {
        match stream.read(&mut prefix) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    };
    if first == 0 {
        return Err(ReadError::Closed);
    }
    stream
        .read_exact(&mut prefix[first..])
        .map_err(ReadError::Io)?;
    let (header_len, payload_len) = lengths(prefix)?;
    let mut header = vec![0u8; header_len];
    stream.read_exact(&mut header).map_err(ReadError::Io)?;
    let mut payload = vec![0u8; payload_len];
    stream.read_exact(&mut payload).map_err(ReadError::Io)?;
    Ok((decode(&header)?, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_through_a_byte_stream_however_it_is_cut() {
        let frames = vec![
            (Frame::Attach { every_byte: false }, Vec::new()),
            (
                Frame::Output {
                    stream: crate::sink::Stream::STDERR,
                    logged: None,
                },
                b"\x00\xffbinary\n".to_vec(),
            ),
            (
                Frame::Cancel {
                    reason: CancelReason::timeout(),
                },
                Vec::new(),
            ),
            (Frame::Input { eof: true }, Vec::new()),
            (Frame::Ended, Vec::new()),
        ];
        let mut bytes = Vec::new();
        for (frame, payload) in &frames {
            bytes.extend(encode(frame, payload));
        }
        // Byte by byte through a duplex pipe: every read is short.
        let (mut tx, mut rx) = tokio::io::duplex(1);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            tx.write_all(&bytes).await.expect("write");
        });
        for expected in &frames {
            assert_eq!(&read_frame(&mut rx).await.expect("a frame"), expected);
        }
        writer.await.expect("the writer");
        assert!(matches!(read_frame(&mut rx).await, Err(ReadError::Closed)));
    }

    #[test]
    fn a_stream_cut_inside_a_frame_or_with_a_huge_length_is_refused() {
        let mut bytes = encode(&Frame::Attach { every_byte: true }, b"abc");
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(
            read_frame_blocking(&mut &bytes[..]),
            Err(ReadError::Io(_))
        ));
        let huge = [0xffu8; 8];
        assert!(matches!(
            read_frame_blocking(&mut &huge[..]),
            Err(ReadError::Invalid(_))
        ));
    }
}
