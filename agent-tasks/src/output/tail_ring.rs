//! A fixed-capacity ring of the most recent bytes of a stream. It grows on
//! demand up to its capacity (so ten thousand quiet tasks cost little), then
//! overwrites its oldest bytes.

#[derive(Debug)]
pub(crate) struct TailRing {
    buf: Vec<u8>,
    cap: usize,
    /// Where the next byte goes once the ring is full; also the oldest byte.
    next: usize,
}

impl TailRing {
    pub(crate) fn new(cap: usize) -> Self {
        TailRing {
            buf: Vec::new(),
            cap,
            next: 0,
        }
    }

    /// Bytes held now (at most the capacity).
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of memory allocated.
    pub(crate) fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        if self.cap == 0 || bytes.is_empty() {
            return;
        }
        if bytes.len() >= self.cap {
            self.buf.clear();
            self.buf.reserve_exact(self.cap);
            self.buf.extend_from_slice(&bytes[bytes.len() - self.cap..]);
            self.next = 0;
            return;
        }
        if self.buf.len() < self.cap {
            let take = (self.cap - self.buf.len()).min(bytes.len());
            let wanted = self.buf.len() + take;
            if wanted > self.buf.capacity() {
                // Grow geometrically but never past the ring's capacity.
                let target = (self.buf.capacity() * 2).max(wanted).min(self.cap);
                self.buf.reserve_exact(target - self.buf.len());
            }
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        while !bytes.is_empty() {
            let n = (self.cap - self.next).min(bytes.len());
            self.buf[self.next..self.next + n].copy_from_slice(&bytes[..n]);
            self.next = (self.next + n) % self.cap;
            bytes = &bytes[n..];
        }
    }

    /// Appends to `out` the `len` bytes that start `from` bytes after the
    /// oldest byte held.
    pub(crate) fn copy_range(&self, from: usize, len: usize, out: &mut Vec<u8>) {
        let held = self.buf.len();
        let from = from.min(held);
        let len = len.min(held - from);
        if len == 0 {
            return;
        }
        // While filling, `next` is 0 and the oldest byte sits at index 0.
        let start = (self.next + from) % held;
        let first = len.min(held - start);
        out.extend_from_slice(&self.buf[start..start + first]);
        out.extend_from_slice(&self.buf[..len - first]);
    }
}

#[cfg(test)]
mod tests {
    use super::TailRing;

    fn contents(r: &TailRing) -> Vec<u8> {
        let mut out = Vec::new();
        r.copy_range(0, r.len(), &mut out);
        out
    }

    #[test]
    fn keeps_the_last_bytes_whatever_the_chunking() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in [1, 3, 7, 64, 99, 100, 101, 5000] {
            let mut ring = TailRing::new(100);
            for c in data.chunks(chunk) {
                ring.push(c);
            }
            assert_eq!(contents(&ring), &data[data.len() - 100..], "chunk {chunk}");
            assert!(ring.allocated() <= 100);
            let mut part = Vec::new();
            ring.copy_range(30, 20, &mut part);
            assert_eq!(part, &data[data.len() - 70..data.len() - 50]);
        }
    }

    #[test]
    fn partial_fill() {
        let mut ring = TailRing::new(100);
        ring.push(b"hello ");
        ring.push(b"world");
        assert_eq!(contents(&ring), b"hello world");
    }
}
