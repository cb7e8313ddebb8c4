//! Tests of the output bookkeeping alone: property tests over interleavings
//! of writes, spills, flushes, the cap and reads, and a race of a reader
//! thread against a writer that spills.

use std::fs::OpenOptions;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;

/// Byte `i` of the test stream: distinct enough that a misplaced byte shows.
fn byte(i: u64) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

fn limits(memory: usize, disk: u64, tail: usize) -> OutputLimits {
    OutputLimits {
        memory_limit: memory,
        disk_limit: disk,
        tail_window: tail,
        gather: true,
        track_activity: false,
    }
}

#[derive(Clone, Debug)]
enum Op {
    Write {
        len: usize,
        gather: bool,
        stderr: bool,
    },
    Spill,
    Flush,
    Read {
        max: usize,
    },
    Finish,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..3000, any::<bool>(), any::<bool>())
            .prop_map(|(len, gather, stderr)| Op::Write { len, gather, stderr }),
        1 => Just(Op::Spill),
        1 => Just(Op::Flush),
        4 => (1usize..5000).prop_map(|max| Op::Read { max }),
        1 => Just(Op::Finish),
    ]
}

/// A reader polling by cursor: checks every page against the stream.
struct Reader {
    cursor: u64,
    seen: u64,
    omitted: u64,
}

impl Reader {
    fn read(&mut self, buffer: &OutputBuffer, max: usize, head_cap: u64) -> usize {
        let page = buffer.page(self.cursor, max).expect("read");
        if page.omitted > 0 {
            // Only bytes past the head cap may ever be missing.
            assert!(
                self.cursor >= head_cap,
                "false gap: {} bytes omitted at cursor {} (head cap {head_cap})",
                page.omitted,
                self.cursor
            );
        }
        assert_eq!(page.cursor, self.cursor + page.omitted);
        for (i, b) in page.data.iter().enumerate() {
            assert_eq!(
                *b,
                byte(page.cursor + i as u64),
                "byte {}",
                page.cursor + i as u64
            );
        }
        self.omitted += page.omitted;
        self.seen += page.data.len() as u64;
        self.cursor = page.next_cursor;
        page.data.len()
    }
}

fn run(ops: &[Op], memory: usize, disk: u64, tail: usize, spilled: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = limits(memory, disk, tail);
    let buffer = OutputBuffer::new(dir.path().join("t"), limits, spilled);
    let head_cap = limits.head_cap();
    let mut total = 0u64;
    let mut reader = Reader {
        cursor: 0,
        seen: 0,
        omitted: 0,
    };
    let mut finished = false;
    for op in ops {
        match op {
            Op::Write {
                len,
                gather,
                stderr,
            } => {
                let bytes: Vec<u8> = (total..total + *len as u64).map(byte).collect();
                let stream = if *stderr {
                    Stream::STDERR
                } else {
                    Stream::STDOUT
                };
                let report = buffer.write(&stream, &bytes, *gather);
                assert!(report
                    .events
                    .iter()
                    .all(|e| !matches!(e, OutputEvent::WriteFailed(_))));
                if !finished {
                    total += *len as u64;
                }
            }
            Op::Spill => {
                let _ = buffer.spill();
            }
            Op::Flush => {
                let _ = buffer.flush();
            }
            Op::Read { max } => {
                reader.read(&buffer, *max, head_cap);
            }
            Op::Finish => {
                let _ = buffer.finish();
                finished = true;
            }
        }
        let stats = buffer.stats();
        assert_eq!(stats.total_bytes, total);
        if total <= head_cap {
            assert_eq!(stats.omitted_bytes, 0, "omitted under the cap");
        }
        assert!(stats.memory_bytes as usize <= memory.max(4096) + tail + 4096);
    }
    let _ = buffer.finish();
    while reader.read(&buffer, 4096, head_cap) > 0 {}
    assert_eq!(reader.cursor, total);
    assert_eq!(reader.seen + reader.omitted, total);
    // A reader that kept up may have read tail bytes that the cap has since
    // dropped for good: it missed at most what is missing now.
    let omitted_now = buffer.stats().omitted_bytes;
    assert!(reader.omitted <= omitted_now);
    // A finished stream holds no descriptor, and reads still work.
    assert!(lock(&buffer.writer).file.is_none());
    assert!(lock(&buffer.view).file.is_none());
    let mut again = Reader {
        cursor: 0,
        seen: 0,
        omitted: 0,
    };
    while again.read(&buffer, 7777, head_cap) > 0 {}
    assert_eq!(again.cursor, total);
    assert_eq!(again.omitted, omitted_now);
    assert_eq!(again.seen + again.omitted, total);
    // The log read back after a restart tells the same story.
    if buffer.stats().spilled {
        let restored =
            OutputBuffer::restore(dir.path().join("t"), limits, &buffer.stats(), false, None);
        let mut back = Reader {
            cursor: 0,
            seen: 0,
            omitted: 0,
        };
        while back.read(&restored, 5000, head_cap) > 0 {}
        assert_eq!(back.seen, again.seen);
        assert_eq!(back.omitted, again.omitted);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_byte_is_seen_once_or_counted_as_capped(
        ops in proptest::collection::vec(op(), 1..60),
        memory in prop_oneof![Just(1usize), 100usize..20_000],
        disk in prop_oneof![Just(u64::MAX / 4), 2u64..40_000],
        tail in prop_oneof![Just(0usize), 1usize..10_000],
        spilled in any::<bool>(),
    ) {
        run(&ops, memory, disk, tail, spilled);
    }
}

#[test]
fn a_reader_racing_spills_never_sees_a_gap() {
    for round in 0..20u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let buffer = Arc::new(OutputBuffer::new(
            dir.path().join("t"),
            limits(64 * 1024, u64::MAX / 4, 4096),
            false,
        ));
        const TOTAL: u64 = 2 * 1024 * 1024;
        let writer = {
            let buffer = buffer.clone();
            std::thread::spawn(move || {
                let mut at = 0u64;
                let mut n = 0u64;
                while at < TOTAL {
                    let len = (1 + (n * 7919 + round) % 9000).min(TOTAL - at);
                    let bytes: Vec<u8> = (at..at + len).map(byte).collect();
                    let report = buffer.write(&Stream::STDOUT, &bytes, n.is_multiple_of(3));
                    if report.flush_needed || n.is_multiple_of(5) {
                        let _ = buffer.flush();
                    }
                    if n == 3 + round {
                        let _ = buffer.spill(); // a detach in the middle
                    }
                    at += len;
                    n += 1;
                }
                let _ = buffer.finish();
            })
        };
        let mut reader = Reader {
            cursor: 0,
            seen: 0,
            omitted: 0,
        };
        loop {
            reader.read(&buffer, 1 + (reader.cursor as usize % 70_000), 0);
            assert_eq!(reader.omitted, 0, "a false gap in round {round}");
            if reader.cursor == TOTAL {
                break;
            }
        }
        writer.join().expect("writer");
        assert_eq!(reader.seen, TOTAL);
    }
}

#[test]
fn utf8_cuts() {
    let s = "héllo €".as_bytes();
    assert_eq!(complete_utf8_len(s), s.len());
    assert_eq!(complete_utf8_len(&s[..s.len() - 1]), s.len() - 3);
    assert_eq!(complete_utf8_len(&s[..2]), 1);
    assert_eq!(leading_continuation_bytes(&s[2..]), 1);
    assert_eq!(complete_utf8_len(b"\xff\xfe"), 2);
}

/// A read that starts in the log goes on into bytes gathered for it but
/// not written yet (they are in the tail), with their spans: what a reader
/// saw written is in one page from before it.
#[test]
fn a_read_from_the_log_goes_on_into_gathered_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = OutputBuffer::new(dir.path().join("t"), limits(1024, 1 << 20, 4096), true);
    let _ = buffer.write(&Stream::STDOUT, b"first\n", false);
    let report = buffer.write(&Stream::STDERR, b"ready\n", true);
    assert!(report.flush_needed, "the second write is gathered");
    assert_eq!(buffer.stats().disk_bytes, 6);
    let chunk = buffer.read(0, 1024).expect("read");
    assert_eq!(chunk.data, b"first\nready\n");
    let spans: Vec<(u64, u64)> = chunk.spans.iter().map(|s| (s.offset, s.len)).collect();
    assert_eq!(spans, [(0, 6), (6, 6)]);
    // A bound inside the gathered bytes is kept.
    let chunk = buffer.read(2, 6).expect("read");
    assert_eq!(chunk.data, b"rst\nre");
}

/// Reads the whole stream from 0.
fn read_whole(buffer: &OutputBuffer) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cursor = 0;
    loop {
        let chunk = buffer.read(cursor, 10_000).expect("read");
        assert_eq!(chunk.omitted, 0);
        if chunk.data.is_empty() {
            return out;
        }
        cursor = chunk.cursor + chunk.data.len() as u64;
        out.extend_from_slice(&chunk.data);
    }
}

#[test]
fn an_ended_stream_in_memory_moves_to_its_log_only_when_the_log_takes_it_all() {
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    // The log takes it: little memory after the end, the same bytes.
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = OutputBuffer::new(
        dir.path().join("t"),
        limits(1 << 20, u64::MAX / 4, 4096),
        false,
    );
    let _ = buffer.write(&Stream::STDOUT, &bytes, true);
    let report = buffer.finish();
    assert!(report
        .events
        .iter()
        .any(|e| matches!(e, OutputEvent::Spilled { .. })));
    assert!(buffer.stats().memory_bytes <= super::ENDED_OUTPUT_MEMORY as u64);
    assert_eq!(read_whole(&buffer), bytes);
    // A disk cap smaller than the output: the memory stays.
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = OutputBuffer::new(dir.path().join("t"), limits(1 << 20, 20_000, 4096), false);
    let _ = buffer.write(&Stream::STDOUT, &bytes, true);
    let _ = buffer.finish();
    assert!(!buffer.stats().spilled);
    assert_eq!(read_whole(&buffer), bytes);
    // A log that cannot be written (the root is gone): the memory stays.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let buffer = OutputBuffer::new(root.join("t"), limits(1 << 20, u64::MAX / 4, 4096), false);
    drop(dir);
    assert!(!root.exists());
    let _ = buffer.write(&Stream::STDOUT, &bytes, true);
    let report = buffer.finish();
    assert!(report
        .events
        .iter()
        .any(|e| matches!(e, OutputEvent::WriteFailed(_))));
    assert!(!buffer.stats().spilled);
    assert_eq!(read_whole(&buffer), bytes);
}

/// A stream read back from a task that was lost past its cap: the head is
/// the log's, the rest of the saved count is reported omitted (the log may
/// hold a trailer the end began to write: it is not taken for stream
/// bytes), and a cursor past the saved count reads as the end.
#[test]
fn a_lost_capped_stream_keeps_its_saved_counts_and_answers_held_cursors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = limits(1024, 4096, 1024);
    let buffer = OutputBuffer::new(dir.path().join("t"), limits, true);
    let data: Vec<u8> = (0..20_000).map(byte).collect();
    let mut checkpoints = 0;
    for chunk in data.chunks(700) {
        let report = buffer.write(&Stream::STDOUT, chunk, false);
        checkpoints += report
            .events
            .iter()
            .filter(|e| matches!(e, OutputEvent::Checkpoint))
            .count();
    }
    let head = buffer.capped_head().expect("the cap was reached");
    assert_eq!(head, limits.head_cap());
    // (1 MiB between checkpoints: none in 20 kB.)
    assert_eq!(checkpoints, 0);
    let saved = buffer.stats();
    // The host dies as the end writes its trailer: more bytes in the log.
    let mut log = OpenOptions::new()
        .append(true)
        .open(buffer.log_path())
        .expect("log");
    log.write_all(b"\n[... torn trailer").expect("write");
    let restored = OutputBuffer::restore(dir.path().join("t"), limits, &saved, true, Some(head));
    let stats = restored.stats();
    assert_eq!(stats.total_bytes, 20_000);
    assert_eq!(stats.disk_bytes, head);
    assert_eq!(stats.omitted_bytes, 20_000 - head);
    assert_eq!(stats.stdout_bytes, 20_000);
    let first = restored.read(0, 100_000).expect("read");
    assert_eq!(first.data, data[..head as usize]);
    let rest = restored.read(head, 100_000).expect("read");
    assert!(rest.data.is_empty());
    assert_eq!(rest.omitted, 20_000 - head);
    // A cursor held from before the crash, past the saved count: the end.
    let page = restored.page(25_000, 100).expect("a held cursor");
    assert!(page.eof && page.data.is_empty());
    assert_eq!(page.next_cursor, 25_000);
}

/// Past the cap the counts are due for saving every `checkpoint_every`
/// bytes, so a crash loses at most that much of them.
#[test]
fn past_the_cap_a_checkpoint_is_due_every_so_many_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = limits(1024, 4096, 1024);
    let buffer = OutputBuffer::new(dir.path().join("t"), limits, true);
    let chunk = vec![b'x'; 64 * 1024];
    let mut checkpoints = Vec::new();
    for _ in 0..64 {
        let report = buffer.write(&Stream::STDOUT, &chunk, false);
        if report.events.contains(&OutputEvent::Checkpoint) {
            checkpoints.push(buffer.len());
        }
    }
    // 4 MiB past a cap at 3 KiB, one checkpoint every MiB.
    assert_eq!(checkpoints.len(), 3, "{checkpoints:?}");
    for pair in checkpoints.windows(2) {
        assert!(pair[1] - pair[0] >= limits.checkpoint_every());
    }
}

#[test]
fn a_page_holds_a_whole_character_however_small_or_split() {
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = OutputBuffer::new(dir.path().join("t"), limits(1 << 20, 1 << 20, 4096), false);
    // `é` written in two pieces, the first spilled and flushed to the log,
    // the second still in memory.
    let _ = buffer.write(&Stream::STDOUT, b"a\xc3", false);
    let _ = buffer.spill();
    let _ = buffer.flush();
    let _ = buffer.write(&Stream::STDOUT, b"\xa9\xe2\x9c", false);
    let page = buffer.page(1, 100).expect("page");
    assert_eq!(page.data, "é".as_bytes());
    assert_eq!(page.next_cursor, 3);
    assert_eq!(page.spans.iter().map(|s| s.len).sum::<u64>(), 2);
    // A limit under a character's width: that one character.
    let page = buffer.page(1, 1).expect("page");
    assert_eq!(page.data, "é".as_bytes());
    // The rest of `✓` is not written yet: nothing, until it is.
    let page = buffer.page(3, 1).expect("page");
    assert!(page.data.is_empty() && page.next_cursor == 3 && !page.eof);
    let _ = buffer.write(&Stream::STDOUT, b"\x93", false);
    let page = buffer.page(3, 1).expect("page");
    assert_eq!(page.data, "✓".as_bytes());
    // A stream that ends inside a character shows its last bytes as they are.
    let _ = buffer.write(&Stream::STDOUT, b"\xf0\x9f", false);
    let _ = buffer.finish();
    let page = buffer.page(6, 1).expect("page");
    assert_eq!(page.data, b"\xf0\x9f");
    assert!(page.eof);
}
