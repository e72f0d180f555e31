//! The one read buffer a file source owns: a fixed-size window over the file being read, so
//! memory stays bounded however large the file, and records are handed out as slices of it.

use std::io::{self, Read};

pub(crate) struct ReadBuffer {
    data: Box<[u8]>,
    /// `data[start..end]` holds unconsumed bytes read from the input.
    start: usize,
    end: usize,
    /// Input offset of `data[start]`, i.e. bytes consumed so far.
    consumed: u64,
    input_ended: bool,
}

impl ReadBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        ReadBuffer { data: vec![0; capacity].into_boxed_slice(), start: 0, end: 0, consumed: 0, input_ended: false }
    }

    /// Forgets everything, ready for the next input.
    pub(crate) fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.consumed = 0;
        self.input_ended = false;
    }

    /// Bytes consumed from the current input.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Position in `data` of the first unconsumed byte; record slices are taken relative to it.
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    pub(crate) fn available(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// The backing storage, for handing out a record by its position.
    pub(crate) fn storage(&self) -> &[u8] {
        &self.data
    }

    /// Makes at least `wanted` bytes available unless the input ends first, and returns how many
    /// are available. `wanted` must not exceed the capacity (callers check record lengths against
    /// smaller limits first); a larger request is served up to the capacity.
    pub(crate) fn fill<R: Read>(&mut self, input: &mut R, wanted: usize) -> io::Result<usize> {
        let wanted = wanted.min(self.data.len());
        if self.end - self.start >= wanted {
            return Ok(self.end - self.start);
        }
        if self.start + wanted > self.data.len() {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < wanted && !self.input_ended {
            // Reading into all the free space keeps reads large and rare.
            match input.read(&mut self.data[self.end..]) {
                Ok(0) => self.input_ended = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    /// Marks `n` available bytes as used. The bytes stay in place until the next `fill`.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.consumed += n as u64;
    }

    /// Consumes `n` bytes, most of which need not fit the buffer (a large block nobody reads).
    /// Returns how many were skipped: fewer than `n` only when the input ended.
    pub(crate) fn skip<R: Read>(&mut self, input: &mut R, n: u64) -> io::Result<u64> {
        let mut skipped = 0;
        while skipped < n {
            let left = n - skipped;
            let available = self.fill(input, usize::try_from(left).unwrap_or(usize::MAX))?;
            if available == 0 {
                break;
            }
            let step = usize::try_from(left).unwrap_or(usize::MAX).min(available);
            self.consume(step);
            skipped += step as u64;
        }
        Ok(skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time, as pipes and sockets do.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn fill_compacts_and_keeps_order() {
        let input: Vec<u8> = (0..=255).collect();
        let mut src = Trickle(&input, 3);
        let mut buf = ReadBuffer::new(16);
        assert_eq!(buf.fill(&mut src, 16).unwrap(), 16);
        buf.consume(12);
        assert_eq!(buf.available(), &[12, 13, 14, 15]);
        // Needs compaction: 12 + 10 > 16.
        // Reads stop once enough is there: 4 kept + 2 trickles of 3.
        assert_eq!(buf.fill(&mut src, 10).unwrap(), 10);
        assert_eq!(buf.available(), &[12, 13, 14, 15, 16, 17, 18, 19, 20, 21]);
        assert_eq!(buf.consumed(), 12);
    }

    #[test]
    fn skip_past_the_buffer_and_stop_at_end() {
        let input: Vec<u8> = (0..100).collect();
        let mut src = &input[..];
        let mut buf = ReadBuffer::new(8);
        assert_eq!(buf.skip(&mut src, 50).unwrap(), 50);
        assert!(buf.fill(&mut src, 2).unwrap() >= 2);
        assert_eq!(&buf.available()[..2], &[50, 51]);
        assert_eq!(buf.skip(&mut src, 1000).unwrap(), 50);
        assert_eq!(buf.consumed(), 100);
        assert_eq!(buf.fill(&mut src, 1).unwrap(), 0);
    }
}
